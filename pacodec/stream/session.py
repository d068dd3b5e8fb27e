"""Which packets a receiver believes: sessions, source lock and sequence validation.

A :class:`SessionFilter` takes every datagram the receiver's socket returns, with its source
address, and hands on only the packets of **one** sender stream:

1. *Authentication* (with a key): the MAC is checked first (:func:`.packet.unpack`); a packet
   that fails changes nothing but the ``unauthenticated`` counter.
2. *Session lock*: the receiver follows one ``(session id, source address)``.  Packets of any
   other session or address are counted (``foreign``) and dropped while that session is alive.
   The session is over when its end-of-stream frame was played (:meth:`end_current`), when its
   configuration cannot be played (:meth:`refuse_current`), or when no valid packet came for
   ``silence`` seconds.  Then a new session is accepted after ``probation`` packets with
   consecutive sequence numbers (held back and handed on once it is valid, so none is lost).
   Sessions that ended are remembered (the last 16) and not accepted again (replays).
3. *Sequence validation* of the locked session, after RFC 3550 Appendix A.1 with 32-bit
   sequence numbers: a packet up to ``max_dropout`` ahead of the highest one seen is accepted
   (a gap); one up to ``max_misorder`` behind is accepted if it was not seen before (a replay
   window of 128 remembers which were); anything else is a *jump*, dropped unless ``confirm``
   consecutive packets continue it (then the sequence restarts there and those packets are
   handed on).

A packet may carry several consecutive frames (FORMAT.md §9, flag bit 1): its ``seq`` is its
first frame's, the frames after it are ``seq + 1``, ...; the checks above apply to the packet
(its first frame's number; a new session's packets must then lie within ``PROBATION_SPAN``
packets' worth of frames of each other) and every frame it carries is handed on.

Sequence numbers handed on are *extended* (they count on across wraps and restarts; their low
32 bits are the frame's ``seq``), so the jitter buffer never has to guess.  Every structure here has a fixed bound, whatever arrives.

Threading: :meth:`accept` is called by the network thread, :meth:`end_current` /
:meth:`refuse_current` by the playout thread; an internal lock serialises them.
"""
import collections
import threading
import time

from ..errors import FormatError
from . import packet as pk
from .counters import Counted

__all__ = ["SessionFilter", "Accepted"]

MOD = 1 << 32
REPLAY_WINDOW = 128
PROBATION_SPAN = 8      # a new session's first packets must lie this close together


def _signed(delta):
    delta %= MOD
    return delta - MOD if delta >= MOD // 2 else delta

# event: None (packets of the current session), "new" (a new session starts with these
# packets: reset the jitter buffer and the decoder), "restart" (the sequence jumped: reset the
# jitter buffer, keep the decoder)
Accepted = collections.namedtuple("Accepted", "event packets")   # packets: [(ext_seq, ts, frame)]
_NOTHING = Accepted(None, ())


class _Source:
    __slots__ = ("session", "addr", "max_seq", "max_ext", "seen", "bad_seq", "bad_run",
                 "held", "probation", "last_valid", "valid")

    def __init__(self, session, addr, seq, now, probation):
        self.session = session
        self.addr = addr
        self.max_seq = seq
        self.max_ext = seq
        self.seen = 1
        self.bad_seq = None
        self.bad_run = 0
        self.held = []
        self.probation = probation
        self.last_valid = now
        self.valid = False


class SessionFilter(Counted):
    #: ``replayed``: duplicates and packets too old for the replay window; ``jumps``: packets
    #: dropped as unconfirmed sequence jumps
    COUNTERS = ("unauthenticated", "malformed", "foreign", "replayed", "jumps", "restarts",
                "sessions", "accepted")

    def __init__(self, key=None, *, probation=3, max_dropout=64, max_misorder=100, confirm=3,
                 silence=2.0, max_candidates=4, clock=time.monotonic):
        self.key = key
        self.probation = max(1, int(probation))
        self.max_dropout = int(max_dropout)
        self.max_misorder = min(int(max_misorder), REPLAY_WINDOW - 1)
        self.confirm = max(1, int(confirm))
        self.silence = float(silence)
        self.max_candidates = int(max_candidates)
        self._clock = clock
        self._lock = threading.Lock()
        self.current = None
        self._ended = False
        self._candidates = collections.OrderedDict()
        self._retired = collections.deque(maxlen=16)
        self._ext_base = 0             # extended numbers keep rising across sessions/restarts
        self.zero_counters()
        self.last_error = None

    # ------------------------------------------------------------------ helpers
    def _next_base(self):
        """A multiple of 2**32 well above every extended number handed out so far: extended
        numbers are ``base + seq``, so their low 32 bits are the packets' own ``seq``."""
        return ((self._ext_base >> 32) + 2) << 32

    def _alive(self, now):
        c = self.current
        return c is not None and not self._ended and now - c.last_valid <= self.silence

    def _mark(self, src, ext):
        """Replay window: True if ``ext`` is new (and records it)."""
        if ext > src.max_ext:
            shift = ext - src.max_ext
            src.seen = ((src.seen << shift) | 1) & ((1 << REPLAY_WINDOW) - 1) \
                if shift < REPLAY_WINDOW else 1
            src.max_ext = ext
            return True
        back = src.max_ext - ext
        if back >= REPLAY_WINDOW or (src.seen >> back) & 1:
            return False
        src.seen |= 1 << back
        return True

    # ------------------------------------------------------------------ network thread
    def accept(self, data, addr, now=None):
        """Classify one datagram; returns :data:`Accepted` (``packets`` may be empty)."""
        if now is None:
            now = self._clock()
        try:
            p = pk.unpack(data, self.key)
            # one frame, or (flag bit 1) the frames seq, seq + 1, ... (unpack split and checked
            # them: p.frames does not split again)
            frames = p.frames if data[1] & pk.FLAG_FRAMES else [p.frame]
        except FormatError as e:
            with self._lock:
                if self.key is not None and str(e) in ("unauthenticated packet", "bad MAC"):
                    self.unauthenticated += 1
                else:
                    self.malformed += 1
                self.last_error = str(e)
            return _NOTHING
        with self._lock:
            c = self.current
            if c is not None and c.session == p.session and c.addr == addr and not self._ended:
                return self._in_session(c, p, frames, now)
            if self._alive(now):
                self.foreign += 1
                return _NOTHING
            return self._candidate(p, frames, addr, now)

    def _candidate(self, p, frames, addr, now):
        if p.session in self._retired:
            self.replayed += 1
            return _NOTHING
        key = (p.session, addr)
        src = self._candidates.get(key)
        if src is None:
            src = _Source(p.session, addr, p.seq, now, self.probation)
            self._candidates[key] = src
            while len(self._candidates) > self.max_candidates:
                self._candidates.popitem(last=False)
        else:
            ref = src.held[0][0]
            d = _signed(p.seq - ref)
            if any(q == p.seq for q, _, _ in src.held):   # (a packet's first frame)
                self.replayed += 1
                return _NOTHING
            if abs(d) > PROBATION_SPAN * len(frames):   # not near the others: probation restarts
                src.held = []
                src.probation = self.probation
        self._candidates.move_to_end(key)
        src.held.append((p.seq, p.timestamp, frames))
        src.probation -= 1
        if src.probation > 0:
            return _NOTHING
        # valid: this is the session now (its held packets are handed on, in seq order)
        del self._candidates[key]
        if self.current is not None:
            self._retired.append(self.current.session)
            self._ext_base = max(self._ext_base, self.current.max_ext)
        self._candidates.clear()
        base = self._next_base()
        ref = src.held[0][0]
        out = sorted({base + ref + _signed(q - ref) + i: (ts, fr)
                      for q, ts, frs in src.held for i, fr in enumerate(frs)}.items())
        out = [(ext, ts, fr) for ext, (ts, fr) in out]
        top = out[-1][0]
        src.max_ext = top
        src.max_seq = top % MOD
        src.seen = 0
        for ext, _, _ in out:
            src.seen |= 1 << (top - ext)
        src.held = []
        src.valid = True
        src.last_valid = now
        self._ext_base = top
        self.current = src
        self._ended = False
        self.sessions += 1
        self.accepted += len(out)
        return Accepted("new", out)

    def _in_session(self, c, p, frames, now):
        n = len(frames)
        udelta = (p.seq - c.max_seq) % MOD
        if 0 < udelta <= self.max_dropout:
            ext = c.max_ext + udelta
        elif udelta == 0 or udelta >= MOD - self.max_misorder:
            ext = c.max_ext - ((MOD - udelta) % MOD)
        else:
            # a jump: only believed when `confirm` consecutive packets continue it
            if c.bad_seq is not None and p.seq == c.bad_seq:
                c.bad_run += 1
                c.held.append((p.timestamp, frames))
            else:
                c.bad_run = 1
                c.held = [(p.timestamp, frames)]
            c.bad_seq = (p.seq + n) % MOD
            if c.bad_run < self.confirm:
                self.jumps += 1
                return _NOTHING
            self.jumps += 1 - len(c.held)     # the held packets are handed on after all
            self._ext_base = max(self._ext_base, c.max_ext)
            base = self._next_base()
            held = [(ts, fr) for ts, frs in c.held for fr in frs]
            start = base + (p.seq + n - len(held)) % MOD
            out = [(start + i, ts, fr) for i, (ts, fr) in enumerate(held)]
            c.max_seq = (p.seq + n - 1) % MOD
            c.max_ext = out[-1][0]
            self._ext_base = c.max_ext
            c.seen = (1 << len(out)) - 1
            c.held = []
            c.bad_seq = None
            c.bad_run = 0
            c.last_valid = now
            self.restarts += 1
            self.accepted += len(out)
            return Accepted("restart", out)
        if ext + n - 1 > c.max_ext:
            c.max_seq = (p.seq + n - 1) % MOD
        out = [(ext + i, p.timestamp, fr) for i, fr in enumerate(frames) if self._mark(c, ext + i)]
        if not out:
            self.replayed += 1
            return _NOTHING
        c.bad_seq = None
        c.bad_run = 0
        c.held = []
        c.last_valid = now
        self.accepted += len(out)
        return Accepted(None, out)

    # ------------------------------------------------------------------ playout thread
    def end_current(self):
        """The current session's end-of-stream frame was played: a new one may start now."""
        with self._lock:
            if self.current is not None and not self._ended:
                self._retired.append(self.current.session)
                self._ended = True

    refuse_current = end_current

    # ------------------------------------------------------------------ introspection
    @property
    def locked(self):
        with self._lock:
            return self._alive(self._clock())

    @property
    def session_id(self):
        c = self.current
        return None if c is None else c.session

    @property
    def source(self):
        c = self.current
        return None if c is None else c.addr

    def stats(self):
        return {**self.counters(),
                "session": None if self.current is None else f"{self.current.session:08x}"}
