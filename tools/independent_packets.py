#!/usr/bin/env python3
"""An independent reader of pacodec's UDP packets (packet version 2), written from
bitstreams/FORMAT.md §9 alone.

It imports nothing of the ``pacodec`` package and shares no code with the reference receiver
(``pacodec.stream.session``).  It reads a sequence of datagrams, each with the source it came
from, and applies §9:

* the datagram layout: `tag` 0xA8, `flags` (bit 0 MAC, bit 1 several frames, bits 2-7 zero),
  `session` (never 0), `seq`, `timestamp`, the frame field and the 16-byte keyed-BLAKE2b `mac`;
* the drop rules: with a key, no flag bit 0 or a wrong `mac` (checked in constant time); a
  datagram shorter than 21 bytes (37 with a MAC), another `tag`, unknown flag bits,
  `session = 0`, and a flag-bit-1 field that is not 2 to 8 whole frames (§4 headers, each
  beginning with the sync word);
* session validation: while no session is alive, each (session, source) is a candidate holding
  its packets (4 at most, the least recently heard forgotten); a packet of a held `seq` is a
  duplicate, one more than 8 × its frames from the first held packet starts the holding again;
  the first to hold 3 packets is the session (its held frames accepted); then other sessions and
  sources are dropped; a session ends with its end-of-stream frame (once it is the highest frame
  seen) and the last 16 ended sessions are not accepted again;
* sequence validation (RFC 3550 A.1 style, 32-bit, counted in frames): 1 to 64 ahead of the
  highest `seq` seen accepted, 0 to 100 behind accepted if it brings frames not seen (128-frame
  replay window, only the frames not seen before of a packet of several frames), anything else
  a jump: held, and accepted when 3 consecutive packets (the jump packet and the next 2) are
  held; an accepted packet discards the held ones; the frames from the restart on are played
  after all accepted before.

The first draft was written from §9 as it stood; the points it found unclear were settled to
the reference receiver's behaviour and the text of §9 made precise (see FORMAT.md §9, §11).

**Out of scope**: the timing rules of §9 (the 2 s session timeout, playout deadlines and
concealment when a deadline passes, the jitter estimate).  The reader has no clock: a capture
is read as if every datagram arrived at once, in capture order, and the accepted frames are put
in `seq` order at the end.  The frames so collected are handed, in order, as a headerless byte
stream (§4.3) to the independent frame decoder (``tools/independent_decoder.py``'s
``decode_bytes``), which conceals the missing frames as §12 says.

Capture files (``bitstreams/vectors/packets/*.cap``): ``PKTC`` (4 ASCII bytes), then per
datagram: source id u16, length u16, the datagram's bytes (big-endian).

Usage: ``python tools/independent_packets.py [--key HEX] CAPTURE [OUT.wav]`` prints the accepted
frames' `seq` numbers and the missing ones, and writes the decoded audio (32-bit float WAV) if
OUT is given.
"""

import hashlib
import hmac
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

TAG = 0xA8                      # §9: packet version 2
FLAG_MAC = 0x01
FLAG_MULTI = 0x02
HEADER = 14
MAC_LEN = 16
MIN_FRAME = 7                   # §4: a frame is L + 7 bytes
PERSON = b"pacodec-udp-v2"
SYNC = b"\xca\x5e"              # §4
MOD = 1 << 32

PROBATION = 3                   # distinct packets to validate a session
PROBATION_SPAN = 8              # ... whose seq lie within 8 (x frames per packet)
MAX_AHEAD = 64
MAX_BEHIND = 100
WINDOW = 128                    # replay window, frames
JUMP_CONFIRM = 3                # consecutive packets continuing a jump
ENDED_MEMORY = 16               # ended sessions not accepted again
MAX_CANDIDATES = 4              # sessions on probation at a time (least recently heard forgotten)

CAPTURE_MAGIC = b"PKTC"


# ---------------------------------------------------------------- captures

def read_capture(data):
    """The datagrams of a capture: a list of (source id, bytes)."""
    if data[:4] != CAPTURE_MAGIC:
        raise ValueError("not a packet capture")
    out, p = [], 4
    while p < len(data):
        if p + 4 > len(data):
            raise ValueError("capture truncated")
        src, n = struct.unpack(">HH", data[p:p + 4])
        if p + 4 + n > len(data):
            raise ValueError("capture truncated")
        out.append((src, bytes(data[p + 4:p + 4 + n])))
        p += 4 + n
    return out


def write_capture(datagrams):
    """The bytes of a capture holding (source id, bytes) datagrams."""
    out = [CAPTURE_MAGIC]
    for src, d in datagrams:
        out.append(struct.pack(">HH", src, len(d)) + bytes(d))
    return b"".join(out)


# ---------------------------------------------------------------- datagrams

class Packet:
    __slots__ = ("flags", "session", "seq", "timestamp", "frames")

    def __init__(self, flags, session, seq, timestamp, frames):
        self.flags, self.session, self.seq = flags, session, seq
        self.timestamp, self.frames = timestamp, frames


def mac_of(data, key):
    """§9: the first 16 bytes of keyed BLAKE2b with personalisation "pacodec-udp-v2"."""
    return hashlib.blake2b(data, key=key, digest_size=16, person=PERSON).digest()


def split_frames(field):
    """§9, flag bit 1: the field as 2 to 8 whole frames delimited by their §4 headers (sync word,
    14-bit `length` L, a frame being L + 7 bytes), ending exactly with the last; None if not."""
    frames, p = [], 0
    while p < len(field):
        if p + MIN_FRAME > len(field) or field[p:p + 2] != SYNC:
            return None
        L = ((field[p + 2] & 0x3F) << 8) | field[p + 3]
        end = p + L + 7
        if end > len(field):
            return None
        frames.append(field[p:end])
        p = end
    if not 2 <= len(frames) <= 8:
        return None
    return frames


def parse(d, key=None):
    """One datagram: a Packet, or a string saying why it is dropped (§9's drop rules)."""
    if key is not None:                       # checked before any other field is used
        if len(d) < HEADER + MIN_FRAME + MAC_LEN or not d[1] & FLAG_MAC:
            return "unauthenticated"
        if not hmac.compare_digest(mac_of(d[:-MAC_LEN], key), d[-MAC_LEN:]):
            return "bad mac"
    if len(d) < HEADER + MIN_FRAME:
        return "short"
    if d[0] != TAG:
        return "bad tag"
    flags = d[1]
    if flags & ~(FLAG_MAC | FLAG_MULTI) & 0xFF:
        return "unknown flags"
    if flags & FLAG_MAC and len(d) < HEADER + MIN_FRAME + MAC_LEN:
        return "short"
    session, seq, ts = struct.unpack(">III", d[2:14])
    if session == 0:
        return "session 0"
    field = d[HEADER:len(d) - MAC_LEN] if flags & FLAG_MAC else d[HEADER:]
    if flags & FLAG_MULTI:
        frames = split_frames(field)
        if frames is None:
            return "bad multi-frame field"
    else:
        frames = [field]
    return Packet(flags, session, seq, ts, frames)


def is_end_of_stream(frame):
    """§4: frame type 2 (the top two bits of the byte after the sync word)."""
    return len(frame) >= 3 and frame[2] >> 6 == 2


# ---------------------------------------------------------------- receiver

def signed(d):
    """A 32-bit difference as a signed number."""
    d %= MOD
    return d - MOD if d >= MOD // 2 else d


class Candidate:
    """A (session, source) on probation: its held packets, the first being the reference."""

    def __init__(self):
        self.held = []


class Reader:
    """§9's receiver rules without the clock (see the module docstring).

    Accepted frames are numbered (run, n): a run begins when a session becomes valid or its
    sequence restarts after a jump (played after everything before it), and n is the frame's
    `seq` unwrapped near the highest seen in that run."""

    def __init__(self, key=None):
        self.key = key
        self.ended = []                 # the last 16 ended sessions
        self.dropped = {}               # reason -> count
        self.frames = {}                # (run, n) -> frame bytes: the accepted frames
        self.run = -1
        self.candidates = {}            # (session, source) -> Candidate, least recent first
        self.current = None             # (session, source) of the valid session, or None
        self.highest = None             # n of the highest frame seen (this run)
        self.seen = set()               # the replay window: n of the frames seen, last 128
        self.jump = []                  # held packets of a jump run, consecutive
        self.eos = None                 # n of an accepted end-of-stream frame (this run)
        self.most = 0                   # most frames in one packet of the current session
        self.events = set()             # which rules the datagrams exercised (RULE_OF, below)

    def _drop(self, why):
        self.dropped[why] = self.dropped.get(why, 0) + 1
        self.events.add(RULE_OF.get(why, why))
        return False

    def feed(self, source, d):
        """One datagram from `source`; True if it gave newly accepted frames."""
        pkt = parse(d, self.key)
        if isinstance(pkt, str):
            return self._drop(pkt)
        who = (pkt.session, source)
        if self.key is not None:
            self.events.add("mac_accept")
        elif pkt.flags & FLAG_MAC:
            self.events.add("mac_skipped")
        if self.current is not None:
            if who != self.current:
                return self._drop("other session" if pkt.session != self.current[0]
                                  else "other source")
            ok = self._sequence(pkt)
            if self.eos is not None and self.eos == self.highest:
                # the session ends with its end-of-stream frame (nothing later pending)
                self.ended = (self.ended + [pkt.session])[-ENDED_MEMORY:]
                self.current = None
            return ok
        return self._probation(who, pkt)

    # ------------------------------------------------------------ session validation
    def _probation(self, who, pkt):
        if pkt.session in self.ended:
            return self._drop("ended session")
        c = self.candidates.pop(who, None)
        if c is None:
            c = Candidate()
        elif any(q.seq == pkt.seq for q in c.held):
            self.candidates[who] = c
            return self._drop("duplicate")
        elif abs(signed(pkt.seq - c.held[0].seq)) > PROBATION_SPAN * len(pkt.frames):
            c.held = []                                 # not near the first: start again
            self.events.add("probation_restart")
        c.held.append(pkt)
        self.candidates[who] = c                        # the most recent last
        while len(self.candidates) > MAX_CANDIDATES:
            del self.candidates[next(iter(self.candidates))]
        if len(self.candidates) > 1:
            self.events.add("candidates")
        if len(c.held) < PROBATION:
            return False
        # valid: the session is followed from now on; its held frames are accepted
        self.candidates = {}
        self.current = who
        self.run += 1
        ref = c.held[0].seq
        frames = {}
        for q in c.held:
            x = ref + signed(q.seq - ref)
            for j, f in enumerate(q.frames):
                frames.setdefault(x + j, f)
        self.highest = max(frames)
        self.seen = set()
        self.jump = []
        self.eos = None
        self.most = 0
        self.events.add("probation")
        for q in c.held:
            self._packet_kind(q)
        for n in sorted(frames):
            self._keep(n, frames[n])
        return True

    def _packet_kind(self, pkt):
        self.events.add("multi_frame" if pkt.flags & FLAG_MULTI else "single_frame")
        if len(pkt.frames) < self.most and any(map(is_end_of_stream, pkt.frames)):
            self.events.add("short_last_packet")
        self.most = max(self.most, len(pkt.frames))

    def _keep(self, n, frame):
        self.seen.add(n)
        self.frames[(self.run, n)] = frame
        if is_end_of_stream(frame):
            self.eos = n

    # ------------------------------------------------------------ sequence validation
    def _sequence(self, pkt):
        d = signed(pkt.seq - self.highest)
        if 1 <= d <= MAX_AHEAD or -MAX_BEHIND <= d <= 0:
            x = self.highest + d
            new = [(x + j, f) for j, f in enumerate(pkt.frames)
                   if x + j not in self.seen and x + j > self.highest - WINDOW]
            self.highest = max(self.highest, x + len(pkt.frames) - 1)
            if not new:
                return self._drop("replay")
            self._packet_kind(pkt)
            if d <= 0:
                self.events.add("reorder")
            elif d > 1:
                self.events.add("gap")
            if len(new) < len(pkt.frames):
                self.events.add("partial_overlap")
            for n, f in new:
                self._keep(n, f)
            self.seen = {n for n in self.seen if n > self.highest - WINDOW}
            if self.jump:
                self.events.add("unconfirmed_jump")
            self.jump = []                              # an accepted packet ends a jump run
            return True
        # a jump: held; believed when 3 consecutive packets (it and the next 2) continue it
        if self.jump and pkt.seq == (self.jump[-1].seq + len(self.jump[-1].frames)) % MOD:
            self.jump.append(pkt)
        else:
            if self.jump:
                self.events.add("unconfirmed_jump")
            self.jump = [pkt]
        if len(self.jump) < JUMP_CONFIRM:
            return self._drop("jump")
        # the sequence restarts at the run's first packet, played after all before it
        held, self.jump = self.jump, []
        self.events.add("jump")
        for q in held:
            self._packet_kind(q)
        self.run += 1
        self.seen = set()
        self.eos = None
        n = held[0].seq
        for q in held:
            for f in q.frames:
                self._keep(n, f)
                n += 1
        self.highest = n - 1
        return True

    def result(self):
        """(accepted seqs in order, missing seqs, frames): `missing` lists the seqs between
        accepted frames of a run that were never accepted."""
        order = sorted(self.frames)
        missing = []
        for (r0, a), (r1, b) in zip(order, order[1:]):
            if r0 == r1:
                missing += [k % MOD for k in range(a + 1, b)]
        return [n % MOD for _, n in order], missing, [self.frames[k] for k in order]


#: drop reasons -> the rule names of the vectors' manifest (bitstreams/vectors/packets/)
RULE_OF = {"unauthenticated": "mac_drop", "bad mac": "mac_drop", "short": "drop_short",
           "bad tag": "drop_tag", "unknown flags": "drop_flags", "session 0": "drop_session0",
           "bad multi-frame field": "drop_multi_field", "other session": "foreign_session",
           "other source": "foreign_source", "ended session": "ended_session",
           "replay": "duplicate", "jump": "jump_dropped"}


def read(datagrams, key=None):
    """Run the reader over (source, bytes) datagrams: (accepted seqs, missing seqs, frames,
    drop counts)."""
    r = Reader(key)
    for src, d in datagrams:
        r.feed(src, d)
    seqs, missing, frames = r.result()
    return seqs, missing, frames, dict(r.dropped)


def exercised(datagrams, key=None):
    """The rules (RULE_OF's names and the manifest's) that reading these datagrams exercised."""
    r = Reader(key)
    for src, d in datagrams:
        r.feed(src, d)
    return r.events


def decode(frames):
    """The accepted frames, in order, as a headerless stream for the independent decoder."""
    import independent_decoder
    pcm, fs, _ = independent_decoder.decode_bytes(b"".join(frames))
    return pcm, fs


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    key = None
    if len(argv) >= 2 and argv[0] == "--key":
        key = bytes.fromhex(argv[1])
        argv = argv[2:]
    if len(argv) not in (1, 2):
        print("usage: independent_packets.py [--key HEX] CAPTURE [OUT.wav]", file=sys.stderr)
        return 2
    with open(argv[0], "rb") as f:
        datagrams = read_capture(f.read())
    seqs, missing, frames, dropped = read(datagrams, key)
    print("accepted", seqs)
    print("missing", missing)
    print("dropped", dropped)
    if len(argv) == 2:
        import independent_decoder
        pcm, fs = decode(frames)
        independent_decoder.write_float_wav(argv[1], pcm, fs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
