"""Adaptive jitter buffer for sequenced audio packets.

A :class:`JitterBuffer` sits between the network thread, which :meth:`~JitterBuffer.insert`\\ s
packets as they arrive (in any order, with gaps and duplicates), and the playout thread, which
:meth:`~JitterBuffer.pop`\\ s exactly one frame each time the output needs one.  The playout
clock is the consumer's (the sound card, or the wall clock when writing a file), so the buffer
never sleeps and never decides *when* to play, only *what*.

Each ``pop`` returns a :class:`Playout` whose ``kind`` says what the decoder must do:

``"frame"``
    decode ``payload`` (the packet for ``seq``).
``"lost"``
    the packet for ``seq`` is missing, later packets are here and its *deadline* has passed:
    its expected arrival (estimated from the later packets' arrival times, one frame duration
    per sequence number) plus the target delay.  Conceal one frame
    (``Decoder.decode_packet(None)``); the packet is given up, so if it still comes it counts
    as *late* — and the target grows to cover that lateness for ``boost_hold`` seconds.
``"underrun"``
    nothing at all is buffered ahead of the playout point (a delay spike, or the sender
    paused), or the packet is missing but its deadline has not passed (reordering while the
    buffer holds less than its target): conceal one frame but do **not** give up the packet —
    playout is stretched by one frame and the latency grows, which is how the buffer adapts
    upwards.
``"skip"``
    the buffer has stayed deeper than its target (plus one frame) for a whole adaptation
    window: decode ``payload`` to keep the decoder's state continuous; the consumer
    time-compresses its output into the next frame's (the receiver does) or drops it.
    The surplus is skipped frame after frame on the following pops, which shortens the
    latency (adaptation downwards); consumers should pop again at once after a skip.
``"wait"``
    not playing yet (filling up to the target, or re-buffering after a long underrun):
    output silence, no decoder call.

Target depth.  The relative transit delay of packet *i* is ``d_i = arrival_i -
seq_i * frame_duration`` (from the sequence number: a forged timestamp moves nothing); its spread over the recent window (its ``quantile``-th value minus its
``low_quantile``-th value) is the jitter the buffer must absorb.  The target delay is that spread plus
``margin``, clamped to ``[min_delay, max_delay]``, and rounded up to whole frames (at least
one).  Playback starts once the buffered span reaches the target (or the oldest packet has
waited the target delay).

Sequence numbers are unwrapped modulo ``2**seq_bits`` so that a long stream keeps counting
(``seq_bits=None``: the caller gives extended numbers, as the receiver's session filter does).
Packets more than ``capacity`` ahead of the playout point are refused (``overflow``); every
structure is bounded.

Threading: ``insert`` and ``pop`` may be called from different threads; each holds an internal
lock for a few microseconds and does no I/O.  Do not call either from an audio callback.
"""
import collections
import math
import threading
import time

import numpy as np

from .counters import Counted

__all__ = ["JitterBuffer", "Playout"]

Playout = collections.namedtuple("Playout", "kind seq payload")


class JitterBuffer(Counted):
    COUNTERS = ("received", "played", "lost", "late", "duplicates", "underruns", "skipped",
                "rebuffers", "resyncs", "overflowed")

    def __init__(self, *, clock_rate=None, frame_samples=None, min_delay=0.0, max_delay=1.0,
                 margin=0.010, quantile=0.97, low_quantile=0.1, window=2.0, seq_bits=32, capacity=1024,
                 rebuffer_after=0.5, boost_hold=10.0, clock=time.monotonic):
        if not 0 <= min_delay <= max_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")
        self.min_delay = float(min_delay)
        self.max_delay = float(max_delay)
        self.margin = float(margin)
        self.quantile = float(quantile)
        self.low_quantile = float(low_quantile)
        self.window = float(window)
        self.seq_modulus = None if seq_bits is None else 1 << int(seq_bits)
        self.capacity = int(capacity)
        self.rebuffer_after = float(rebuffer_after)
        self._clock = clock
        self._lock = threading.Lock()
        self._packets = {}            # extended seq -> (timestamp, payload)
        self._high = None             # highest extended seq seen
        self._next = None             # next extended seq to play
        self._state = "wait"          # "wait" (buffering) or "play"
        self._first_arrival = None    # arrival time of the oldest packet while buffering
        self._given_up = collections.OrderedDict()  # recently given-up seqs (to tell late from dup)
        self._played = collections.OrderedDict()    # recently played seqs
        self._delays = collections.deque(maxlen=512)  # relative transit delays, recent window
        self._depth_window = collections.deque(maxlen=4096)  # recent buffered spans seen by pop()
        self._underrun_run = 0
        self._catch_up = False
        self._skip_budget = 0
        self._last_arrival = 0.0
        self._boost = 0                # target frames a late packet asked for ...
        self._boost_at = 0.0           # ... at this arrival time
        self.boost_hold = float(boost_hold)
        self.clock_rate = None
        self.frame_samples = None
        self.frame_duration = None
        # statistics (read them at any time; they are plain ints/floats)
        self.zero_counters()
        self.jitter = 0.0
        self.target_frames = 1
        self.first_seq = None          # first sequence number handed out by pop()
        self.last_seq = None           # highest sequence number handed out by pop()
        if clock_rate is not None and frame_samples is not None:
            self.configure(clock_rate, frame_samples)

    # ------------------------------------------------------------------ configuration
    def configure(self, clock_rate, frame_samples):
        """Tell the buffer the timestamp rate (samples/s) and the samples per frame."""
        with self._lock:
            self.clock_rate = float(clock_rate)
            self.frame_samples = int(frame_samples)
            self.frame_duration = self.frame_samples / self.clock_rate
            self._delays.clear()
            self._update_target()

    @property
    def configured(self):
        return self.frame_duration is not None

    # ------------------------------------------------------------------ network side
    def _unwrap(self, seq):
        m = self.seq_modulus
        if m is None:                  # the caller hands extended sequence numbers already
            return seq
        seq %= m
        if self._high is None:
            return seq
        delta = (seq - self._high) % m
        if delta >= m // 2:
            delta -= m
        return self._high + delta

    def insert(self, seq, timestamp, payload, arrival=None):
        """Add one packet; return ``"ok"``, ``"late"``, ``"duplicate"`` or ``"overflow"``."""
        if arrival is None:
            arrival = self._clock()
        with self._lock:
            ext = self._unwrap(int(seq))
            if ext in self._packets or ext in self._played:
                self.duplicates += 1
                return "duplicate"
            if ext in self._given_up or (self._next is not None and ext < self._next):
                self._given_up.pop(ext, None)
                self.late += 1
                if self._next is not None and self._state == "play" and self.frame_duration:
                    # it missed its deadline by this many frames: hold that much more for a
                    # while (reordering of this depth is then absorbed, not lost)
                    self._boost = min(max(self._boost, self._next - ext + 1),
                                      self._max_frames())
                    self._boost_at = arrival
                    self._update_target()
                return "late"
            lowest = self._next if self._next is not None else (
                min(self._packets) if self._packets else ext)
            if len(self._packets) >= self.capacity or ext >= lowest + self.capacity:
                self.overflowed += 1
                return "overflow"
            self.received += 1
            self._packets[ext] = (timestamp, payload, arrival)
            if self._high is None or ext > self._high:
                self._high = ext
            if self._first_arrival is None:
                self._first_arrival = arrival
            # transit delay relative to the frame's place in the stream: from the sequence
            # number, not the timestamp (a forged timestamp must not move the target)
            self._last_arrival = arrival
            if self.frame_duration:
                self._delays.append((arrival, arrival - ext * self.frame_duration))
                while self._delays and arrival - self._delays[0][0] > self.window:
                    self._delays.popleft()
                self._update_target()
            return "ok"

    def _update_target(self):
        if not self.frame_duration:
            return
        if len(self._delays) >= 2:
            d = np.fromiter((x[1] for x in self._delays), dtype=float, count=len(self._delays))
            # spread of the late side: a few packets arriving early (a burst after a stall,
            # the encoder's flush) must not inflate it, hence a low quantile, not the minimum
            lo, hi = np.quantile(d, (self.low_quantile, self.quantile))
            self.jitter = float(hi - lo)
        delay = min(max(self.jitter + self.margin, self.min_delay), self.max_delay)
        self.target_frames = max(1, math.ceil(delay / self.frame_duration - 1e-9))
        if self._boost and self._last_arrival - self._boost_at < self.boost_hold:
            self.target_frames = max(self.target_frames, self._boost)
        else:
            self._boost = 0

    def _max_frames(self):
        return max(1, math.ceil(self.max_delay / self.frame_duration - 1e-9))

    # ------------------------------------------------------------------ playout side
    def _span(self):
        if self._high is None or self._next is None or self._high < self._next:
            return 0
        return self._high - self._next + 1

    @staticmethod
    def _remember(od, key, limit=4096):
        od[key] = True
        if len(od) > limit:
            od.popitem(last=False)

    def _deadline(self, seq):
        """When the missing packet ``seq`` is due for playout at the latest: its expected arrival
        (from the packets after it that came: the earliest estimate) plus the target delay."""
        fd = self.frame_duration
        if not fd:
            return -math.inf
        expected = min(v[2] - (k - seq) * fd for k, v in self._packets.items() if k > seq)
        return expected + self.target_frames * fd

    def _take(self, kind):
        seq = self._next
        ts_payload = self._packets.pop(seq)
        self._next += 1
        self._remember(self._played, seq)
        if kind == "frame":
            self.played += 1
        else:
            self.skipped += 1
        return Playout(kind, seq, ts_payload[1])

    def pop(self, now=None):
        """Return the next :class:`Playout` (see the module docstring for the kinds)."""
        if now is None:
            now = self._clock()
        with self._lock:
            out = self._pop(now)
            if out.seq is not None and out.kind != "underrun":
                if self.first_seq is None:
                    self.first_seq = out.seq
                if self.last_seq is None or out.seq > self.last_seq:
                    self.last_seq = out.seq
            return out

    def _pop(self, now):
        if True:
            if self._state == "wait":
                if not self._packets:
                    return Playout("wait", None, None)
                lowest = min(self._packets)
                if self._next is None or self._next < lowest:
                    self._next = lowest
                span = self._span()
                waited = now - (self._first_arrival if self._first_arrival is not None else now)
                target_delay = self.target_frames * (self.frame_duration or 0.0)
                if span < self.target_frames and waited < target_delay:
                    return Playout("wait", None, None)
                self._state = "play"
                self._underrun_run = 0
                self._depth_window.clear()
                self._catch_up = True
            # playing
            span = self._span()
            if self._catch_up:
                # more than the target piled up before playback (re)started (e.g. while the
                # receiver was joining): drop the surplus at once rather than one per window
                if len(self._packets) > self.target_frames and self._next in self._packets:
                    return self._take("skip")
                self._catch_up = False
            if self.frame_duration:
                self._depth_window.append(span)
                needed = max(2, int(round(self.window / self.frame_duration)))
                if len(self._depth_window) > needed:
                    self._depth_window.popleft()
                if (len(self._depth_window) >= needed and self._next in self._packets
                        and min(self._depth_window) > self.target_frames + 1):
                    # the buffer never went below target + surplus for a whole window: that
                    # surplus is pure latency, drop it now (in one go: skipped frames cost
                    # the consumer no playout time)
                    self._skip_budget = min(self._depth_window) - self.target_frames - 1
                    self._depth_window.clear()
                if self._skip_budget > 0:
                    if self._next in self._packets:
                        self._skip_budget -= 1
                        return self._take("skip")
                    self._skip_budget = 0
            if self._next in self._packets:
                self._underrun_run = 0
                return self._take("frame")
            if span > 0 and self._underrun_run < self.target_frames and \
                    now < self._deadline(self._next):
                # later packets are here but this one's deadline has not passed yet (the
                # buffer holds less than the target delay): it may still come (reordering).
                # Stretch (conceal without giving it up), which deepens the buffer to its target.
                self._underrun_run += 1
                self.underruns += 1
                return Playout("underrun", self._next, None)
            if span > 0:   # later packets are here, this one is missing
                lowest = min(self._packets)
                gap_limit = (max(1, int(self.rebuffer_after / self.frame_duration))
                             if self.frame_duration else 64)
                if lowest - self._next > gap_limit:
                    # a discontinuity (the sender restarted or a long outage): jump, do not
                    # conceal every missing frame one by one
                    self.resyncs += 1
                    self._next = lowest
                    self._underrun_run = 0
                    return self._take("frame")
                seq = self._next
                self._next += 1
                self.lost += 1
                self._underrun_run = 0
                self._remember(self._given_up, seq)
                return Playout("lost", seq, None)
            # nothing buffered ahead: stretch
            self._underrun_run += 1
            limit = (max(1, int(self.rebuffer_after / self.frame_duration))
                     if self.frame_duration else 1)
            if self._underrun_run > limit:
                self._state = "wait"
                self._first_arrival = None
                self.rebuffers += 1
                return Playout("wait", None, None)
            self.underruns += 1
            return Playout("underrun", self._next, None)

    def reset(self):
        """Forget every buffered packet and the sequence position (a new session, or a
        sequence restart): the next packets start like the first ones.  Counters and the
        measured jitter stay."""
        with self._lock:
            self._packets.clear()
            self._given_up.clear()
            self._played.clear()
            self._high = None
            self._next = None
            self._state = "wait"
            self._first_arrival = None
            self._underrun_run = 0
            self._skip_budget = 0
            self._depth_window.clear()

    def end_of_stream(self):
        """The sender said the stream ended: stop playing (no concealment) until packets come
        again; a new stream then starts like the first one."""
        with self._lock:
            self._state = "wait"
            self._first_arrival = None
            self._underrun_run = 0

    def pop_any(self):
        """Return the oldest buffered packet at once (``Playout("frame", ...)``) or ``None``.

        Used while joining a stream, before the decoder knows the stream parameters and so
        before :meth:`configure` can be called; timing is ignored.
        """
        with self._lock:
            if not self._packets:
                return None
            lowest = min(self._packets)
            if self._next is None or self._next < lowest:
                self._next = lowest
            while self._next not in self._packets:
                self._remember(self._given_up, self._next)
                self._next += 1
            return self._take("frame")

    # ------------------------------------------------------------------ introspection
    @property
    def state(self):
        return self._state

    @property
    def depth(self):
        """Frames buffered ahead of the playout point (span from next to highest)."""
        with self._lock:
            if self._next is None:
                return len(self._packets)
            return self._span()

    def stats(self):
        """A dict snapshot of the counters."""
        return {
            **self.counters(), "depth_frames": self.depth, "target_frames": self.target_frames,
            "jitter_ms": round(self.jitter * 1000.0, 3),
            "first_seq": self.first_seq, "last_seq": self.last_seq,
        }
