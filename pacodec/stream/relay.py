"""A lossy, reordering UDP relay for testing streams on one machine.

``LossyRelay(forward_to=("127.0.0.1", 50000), loss=0.05, reorder=0.02, seed=1)`` listens on a
free loopback port (:attr:`LossyRelay.address`) and forwards every datagram to ``forward_to``,
except that, decided by a seeded ``random.Random`` per datagram in arrival order:

* with probability ``loss`` the datagram is dropped;
* otherwise, with probability ``reorder``, it is held back and sent after the next
  ``reorder_depth`` datagrams that are forwarded (so it arrives out of order, but only a few
  packets late);
* optionally every forwarded datagram is delayed by ``uniform(0, jitter)`` seconds.

The same input sequence and seed always give the same drops.  ``dropped``, ``reordered`` and
``forwarded`` count datagrams; if ``seq_of`` (a function bytes -> sequence number) is given,
``dropped_seqs`` lists the sequence numbers that were dropped.

It only ever talks to the addresses it is given (use loopback) and stops by itself after
``duration`` seconds if :meth:`stop` is not called first.  Threading: one internal thread;
``start``/``stop`` from any one controlling thread.
"""
import heapq
import random
import threading
import time

from .counters import Counted
from .transport import UdpTransport

__all__ = ["LossyRelay"]


class LossyRelay(Counted):
    COUNTERS = ("received", "forwarded", "dropped", "reordered")

    def __init__(self, forward_to, *, listen=("127.0.0.1", 0), loss=0.0, reorder=0.0,
                 reorder_depth=3, jitter=0.0, seed=0, seq_of=None, duration=600.0):
        if not 0.0 <= loss <= 1.0 or not 0.0 <= reorder <= 1.0:
            raise ValueError("loss and reorder are probabilities")
        self.forward_to = forward_to
        self.loss = loss
        self.reorder = reorder
        self.reorder_depth = max(1, int(reorder_depth))
        self.jitter = float(jitter)
        self.seq_of = seq_of
        self.duration = float(duration)
        self._rng = random.Random(seed)
        self._in = UdpTransport(bind=listen, timeout=0.02)
        self._out = UdpTransport(peer=forward_to)
        self._stop = threading.Event()
        self._thread = None
        self.zero_counters()
        self.dropped_seqs = []
        self.reordered_seqs = []

    @property
    def address(self):
        return self._in.address

    def start(self):
        self._thread = threading.Thread(target=self._run, name="pacodec-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=2.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._in.close()
        self._out.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _seq(self, data):
        if self.seq_of is None:
            return None
        try:
            return self.seq_of(data)
        except Exception:
            return None

    def _run(self):
        deadline = time.monotonic() + self.duration
        held = []      # [countdown, data] packets held back for reordering
        timed = []     # heap of (send_time, n, data) when jitter is on
        n = 0

        def emit(data):
            nonlocal n
            if self.jitter > 0.0:
                heapq.heappush(timed, (time.monotonic() + self._rng.uniform(0, self.jitter),
                                       n, data))
                n += 1
            else:
                self._out.send(data)
                self.forwarded += 1

        while not self._stop.is_set() and time.monotonic() < deadline:
            data = self._in.recv(0.005 if timed else 0.02)
            now = time.monotonic()
            while timed and timed[0][0] <= now:
                self._out.send(heapq.heappop(timed)[2])
                self.forwarded += 1
            if data is None:
                continue
            self.received += 1
            r_loss = self._rng.random()
            r_reorder = self._rng.random()
            if r_loss < self.loss:
                self.dropped += 1
                seq = self._seq(data)
                if seq is not None:
                    self.dropped_seqs.append(seq)
                continue
            if r_reorder < self.reorder:
                self.reordered += 1
                seq = self._seq(data)
                if seq is not None:
                    self.reordered_seqs.append(seq)
                held.append([self.reorder_depth, data])
                continue
            emit(data)
            for h in held:
                h[0] -= 1
            for h in [h for h in held if h[0] <= 0]:
                held.remove(h)
                emit(h[1])
        for h in held:       # flush what is still held back
            emit(h[1])
        for _, _, data in sorted(timed):
            self._out.send(data)
            self.forwarded += 1
