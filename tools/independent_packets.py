#!/usr/bin/env python3
"""An independent reader of pacodec's UDP packets (packet version 2), written from
bitstreams/FORMAT.md §9 alone.

It imports nothing of the ``pacodec`` package and shares no code with the reference receiver
(``pacodec.stream.session``).  It reads a sequence of datagrams, each with the source it came
from, and applies §9:

* the datagram layout: `tag` 0xA8, `flags` (bit 0 MAC, bit 1 several frames, bits 2-7 zero),
  `session` (never 0), `seq`, `timestamp`, the frame field and the 16-byte keyed-BLAKE2b `mac`;
* the drop rules: with a key, no flag bit 0 or a wrong `mac` (checked first, in constant time);
  a datagram shorter than 20 bytes (36 with a MAC), another `tag`, unknown flag bits,
  `session = 0`, and a flag-bit-1 field that is not 2 to 8 whole frames (§4 headers);
* session validation: 3 distinct packets whose `seq` lie within 8 (× the frames per packet) of
  each other; one session from one source at a time; the last 16 ended sessions are not
  accepted again (a session ends with its end-of-stream frame);
* sequence validation (RFC 3550 A.1 style, 32-bit, counted in frames): 1 to 64 ahead of the
  highest `seq` seen accepted, up to 100 behind accepted once (128-frame replay window, only the
  frames not seen before of a packet of several frames), anything else a jump, accepted when 3
  consecutive packets continue it.

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
        if p + 5 > len(field) or field[p:p + 2] != SYNC:
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
        if len(d) < HEADER + 6 + MAC_LEN or not d[1] & FLAG_MAC:
            return "unauthenticated"
        if not hmac.compare_digest(mac_of(d[:-MAC_LEN], key), d[-MAC_LEN:]):
            return "bad mac"
    if len(d) < HEADER + 6:
        return "short"
    if d[0] != TAG:
        return "bad tag"
    flags = d[1]
    if flags & ~(FLAG_MAC | FLAG_MULTI) & 0xFF:
        return "unknown flags"
    if flags & FLAG_MAC and len(d) < HEADER + 6 + MAC_LEN:
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


class Reader:
    """§9's receiver rules without the clock (see the module docstring).  Frame numbers are kept
    unwrapped ("extended") so that the accepted frames can be put in order at the end."""

    def __init__(self, key=None):
        self.key = key
        self.ended = []                 # the last 16 ended sessions
        self.dropped = {}               # reason -> count
        self.frames = {}                # extended seq -> frame bytes (the accepted frames)
        self._reset()

    def _reset(self):
        self.source = None
        self.session = None
        self.valid = False
        self.candidates = []            # probation: distinct packets
        self.highest = None             # extended seq of the highest frame seen
        self.seen = set()               # extended seqs inside the replay window
        self.jump = None                # [next expected seq, packets continuing it]
        self._eos = None                # extended seq of the accepted end-of-stream frame

    def _drop(self, why):
        self.dropped[why] = self.dropped.get(why, 0) + 1
        return False

    def feed(self, source, d):
        """One datagram from `source`; True if it gave newly accepted frames."""
        pkt = parse(d, self.key)
        if isinstance(pkt, str):
            return self._drop(pkt)
        if self.session is None:
            if pkt.session in self.ended:
                return self._drop("ended session")
            self.source, self.session = source, pkt.session
        elif (source, pkt.session) != (self.source, self.session):
            return self._drop("other session")
        ok = self._sequence(pkt) if self.valid else self._probation(pkt)
        if self.eos is not None and self.eos == self.highest:
            # the session ends with its end-of-stream frame, nothing later pending
            self.ended = (self.ended + [self.session])[-ENDED_MEMORY:]
            frames = self.frames
            self._reset()
            self.frames = frames
        return ok

    @property
    def eos(self):
        return self._eos

    # session validation
    def _probation(self, pkt):
        if any(p.seq == pkt.seq for p in self.candidates):
            return self._drop("duplicate")
        self.candidates.append(pkt)
        span = PROBATION_SPAN * max(len(p.frames) for p in self.candidates)
        near = sorted((signed(p.seq - pkt.seq), p) for p in self.candidates
                      if abs(signed(p.seq - pkt.seq)) <= span)
        if not any(near[i + PROBATION - 1][0] - near[i][0] <= span
                   for i in range(len(near) - PROBATION + 1)):
            return False
        self.valid = True
        self.candidates = []
        first = near[0][1]
        self.highest = first.seq - 1          # extended numbers start at the first seq
        for _, p in near:
            self._take(p)
        return True

    def _unwrap(self, seq):
        """The extended seq nearest the highest seen."""
        return self.highest + signed(seq - self.highest)

    def _take(self, pkt):
        """Accept the packet's frames not seen before (replay window of 128 frames)."""
        x = self._unwrap(pkt.seq)
        new = False
        for j, f in enumerate(pkt.frames):
            s = x + j
            if s in self.seen or s <= self.highest - WINDOW:
                continue
            self.seen.add(s)
            self.frames[s] = f
            new = True
            if is_end_of_stream(f):
                self._eos = s
        self.highest = max(self.highest, x + len(pkt.frames) - 1)
        self.seen = {s for s in self.seen if s > self.highest - WINDOW}
        return new

    # sequence validation
    def _sequence(self, pkt):
        d = signed(pkt.seq - self.highest)
        if 1 <= d <= MAX_AHEAD or -MAX_BEHIND <= d <= 0:
            self.jump = None
            if self._take(pkt):
                return True
            return self._drop("replay")
        # a jump: accepted when 3 consecutive packets continue it
        if self.jump is not None and pkt.seq == self.jump[0]:
            held = self.jump[1] + [pkt]
            if len(held) > JUMP_CONFIRM:
                self.jump = None
                self.highest = self._unwrap(held[0].seq) - 1    # the sequence restarts there
                self.seen = set()
                for p in held:
                    self._take(p)
                return True
            self.jump = [(pkt.seq + len(pkt.frames)) % MOD, held]
            return False
        self.jump = [(pkt.seq + len(pkt.frames)) % MOD, [pkt]]
        return self._drop("jump")

    def result(self):
        """(accepted seqs in order, missing seqs between the first and the last, frames)."""
        order = sorted(self.frames)
        have = set(order)
        missing = [s % MOD for s in range(order[0], order[-1] + 1) if s not in have] if order else []
        return [s % MOD for s in order], missing, [self.frames[s] for s in order]


def read(datagrams, key=None):
    """Run the reader over (source, bytes) datagrams: (accepted seqs, missing seqs, frames,
    drop counts)."""
    r = Reader(key)
    for src, d in datagrams:
        r.feed(src, d)
    seqs, missing, frames = r.result()
    return seqs, missing, frames, dict(r.dropped)


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
