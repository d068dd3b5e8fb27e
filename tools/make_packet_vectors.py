#!/usr/bin/env python3
"""Make the UDP packet conformance vectors (FORMAT.md §9, packet version 2):
``bitstreams/vectors/packets/*.cap`` and their ``manifest.json``.

Each vector is a *capture*: the datagrams a receiver gets, in arrival order, each with the
source it came from.  Capture file: ``PKTC`` (4 ASCII bytes), then per datagram: source id
u16, length u16, the datagram (big-endian).  Source id ``s`` stands for one sender address.

The datagrams are made with pacodec's sender side: the encoder in low-delay mode
(``pacodec.Encoder(..., low_delay=True, group=1)``: no frame groups, as every streaming sender), its frames grouped ``frames_per_packet`` to a
datagram as ``pacodec.stream.sender`` groups them (the last packet may carry fewer) and packed
by ``pacodec.packet.pack_packet`` (``timestamp`` = the first frame's ``seq`` × the frame
size), then reordered, duplicated, dropped, forged or damaged as each case says.

The expected results are the reference receiver's: ``pacodec.stream.session.SessionFilter``
fed the capture in order with no clock (every datagram at time 0: the 2 s timeouts and the
playout deadlines of §9 are out of scope; when the end-of-stream frame is handed on, the
session is ended as the player ends it, ``end_current``), then the frames it handed on, in
``seq`` order, decoded by ``pacodec.decode`` as a headerless stream (§4.3).

Usage: ``python tools/make_packet_vectors.py [OUT_DIR]``.  Never edit the manifest by hand.
"""
import hashlib
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bitstreams" / "vectors" / "packets"
KEY = bytes(range(0x40, 0x60))                    # 32-byte pre-shared key of the MAC'd vectors
WRONG_KEY = bytes(range(0x60, 0x80))
SESSION = 0x5EC0_0001
OTHER_SESSION = 0x5EC0_0002

#: every §9 receiver rule the vectors must exercise (tests/test_packet_conformance.py checks
#: that each is in some vector's `covers`)
RULES = {
    "single_frame": "packets of one frame (no flag bit 1)",
    "multi_frame": "flag bit 1: 2..8 frames per packet, split by their §4 headers",
    "short_last_packet": "the last packet of a stream carries fewer frames",
    "probation": "a session becomes valid after 3 distinct packets within 8 (x frames per packet)",
    "probation_restart": "a packet farther than 8 (x its frames) from the first held restarts probation",
    "candidates": "several (session, source) on probation at once: the first valid one is followed",
    "mac_accept": "with a key, packets with a right MAC are accepted",
    "mac_drop": "with a key, a wrong MAC, another key's MAC or no MAC is dropped first",
    "mac_skipped": "without a key, a MAC is skipped unchecked",
    "reorder": "packets behind the highest seq (up to 100) accepted once, frames put in seq order",
    "duplicate": "a packet already seen is dropped (replay window of 128 frames)",
    "partial_overlap": "of a packet overlapping frames already seen only the new ones are taken",
    "gap": "packets 1..64 ahead accepted; the frames between are missing (concealed)",
    "foreign_session": "packets of another session are dropped while the session is alive",
    "foreign_source": "packets of the session from another source are dropped",
    "jump": "a seq jump is accepted once 3 consecutive packets (it and the next 2) continue it",
    "unconfirmed_jump": "a lone seq jump (not continued) is dropped",
    "ended_session": "packets of an ended session (after its end-of-stream frame) are dropped",
    "drop_short": "fewer than 21 bytes (37 with a MAC): a frame is at least 7 bytes",
    "drop_tag": "another tag (version 1's 0xA7, others)",
    "drop_flags": "unknown flag bits",
    "drop_session0": "session 0",
    "drop_multi_field": "a flag-bit-1 field that is not 2..8 whole frames",
}


# ----------------------------------------------------------------------------- captures
def write_capture(datagrams):
    """Capture bytes: b"PKTC", then per datagram source id u16, length u16, bytes."""
    return b"PKTC" + b"".join(struct.pack(">HH", src, len(d)) + bytes(d) for src, d in datagrams)


# ----------------------------------------------------------------------------- sender side
def signal(fs, channels, seconds, seed):
    """A deterministic test signal: a few tones, a decaying burst and a little noise."""
    rng = np.random.default_rng(seed)
    n = int(round(fs * seconds))
    t = np.arange(n) / fs
    x = np.zeros((n, channels))
    for c in range(channels):
        for f in rng.uniform(80, 0.4 * fs, 4):
            x[:, c] += 0.12 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28))
        k = n // 3
        x[k:, c] += 0.3 * np.exp(-40 * t[: n - k]) * rng.standard_normal(n - k)
        x[:, c] += 0.01 * rng.standard_normal(n)
    return x.astype(np.float32)


def encode(fs, channels, seconds, seed, bitrate):
    import pacodec
    enc = pacodec.Encoder(fs, channels, bitrate=bitrate, low_delay=True, group=1)
    frames = enc.encode(signal(fs, channels, seconds, seed)) + enc.flush()
    return [bytes(f) for f in frames], enc.frame_size


def packetize(frames, hop, per, session=SESSION, key=None, seq0=0):
    """The sender's datagrams: [(first seq, number of frames, bytes)]."""
    from pacodec.packet import pack_packet
    out = []
    for i in range(0, len(frames), per):
        group = frames[i:i + per]
        seq = seq0 + i
        d = pack_packet(session, seq, seq * hop, group[0] if len(group) == 1 else group, key)
        out.append((seq, len(group), d))
    return out


# ----------------------------------------------------------------------------- the cases
def case_single(frames, hop):
    pk = packetize(frames, hop, 1)
    return [(1, d) for _, _, d in pk], None, {"single_frame", "probation"}, \
        "one frame per packet, in order"


def case_multi(per):
    def make(frames, hop):
        pk = packetize(frames, hop, per)
        assert pk[-1][1] < per, "the last packet must be short"
        covers = {"multi_frame", "short_last_packet", "probation"}
        if pk[-1][1] == 1:
            covers.add("single_frame")                 # the short last packet holds one frame
        return [(1, d) for _, _, d in pk], None, covers, \
            f"{per} frames per packet, in order, the last packet short ({pk[-1][1]} frames)"
    return make


def case_mac(frames, hop):
    """Keyed: forged copies arrive before each genuine packet they imitate."""
    from pacodec.packet import pack_packet
    pk = packetize(frames, hop, 2, key=KEY)
    out = []
    for i, (seq, n, d) in enumerate(pk):
        if i == 4:                      # the frames with one payload byte changed, MAC kept
            bad = bytearray(d)
            bad[20] ^= 0x10
            out.append((1, bytes(bad)))
        if i == 6:                      # no MAC at all (flag bit 0 clear)
            out.append((1, pack_packet(SESSION, seq, seq * hop, list(frames[seq:seq + n]))))
        if i == 8:                      # MAC'd with another key
            out.append((1, pack_packet(SESSION, seq, seq * hop, list(frames[seq:seq + n]),
                                       WRONG_KEY)))
        if i == 10:                     # the MAC itself altered
            bad = bytearray(d)
            bad[-1] ^= 1
            out.append((1, bytes(bad)))
        if i == 0:                      # an unkeyed forgery before the session is valid
            out.append((1, pack_packet(SESSION, seq, seq * hop, list(reversed(frames[seq:seq + n])))))
        out.append((1, d))
    return out, KEY, {"multi_frame", "single_frame", "short_last_packet", "mac_accept", "mac_drop",
                      "probation"}, \
        ("2 frames per packet with the MAC (key in the manifest); forged packets (a changed "
         "payload byte, no MAC, another key's MAC, a changed MAC, an unkeyed one during "
         "probation) arrive just before the genuine packets they imitate")


def case_reorder(frames, hop):
    pk = [(1, d) for _, _, d in packetize(frames, hop, 1)]
    order = list(range(len(pk)))
    for a, b in ((5, 6), (9, 12), (20, 21)):         # swaps (within the window)
        order[a], order[b] = order[b], order[a]
    late = order.pop(order.index(15))
    order.insert(order.index(35), late)               # 20 behind when it arrives
    out = [pk[i] for i in order]
    out.insert(8, pk[7])                              # duplicate just after
    out.insert(30, pk[3])                             # an old duplicate
    out.insert(len(out) - 3, pk[15])                  # the late one again
    return out, None, {"single_frame", "reorder", "duplicate", "gap", "probation"}, \
        ("one frame per packet: swapped pairs, a packet 20 behind when it arrives, and "
         "duplicates (immediate, old, of the late packet)")


def case_overlap(frames, hop):
    """4 frames per packet; a packet re-sent with its frames regrouped to overlap."""
    from pacodec.packet import pack_packet
    pk = packetize(frames, hop, 4)
    out = [(1, d) for _, _, d in pk]
    s = pk[3][0] + 2                                   # frames s..s+3: two seen, two new later
    out.insert(4, (1, pack_packet(SESSION, s, s * hop, list(frames[s:s + 4]))))
    s2 = pk[5][0] + 1                                   # behind, after its packets arrived
    out.insert(8, (1, pack_packet(SESSION, s2, s2 * hop, list(frames[s2:s2 + 4]))))
    del out[6]                                         # packet 5 lost: the overlap fills part
    return out, None, {"multi_frame", "single_frame", "partial_overlap", "gap", "reorder",
                       "short_last_packet", "probation"}, \
        ("4 frames per packet; a packet of frames regrouped to overlap one seen and the next "
         "(only its new frames taken), packet 5 lost and partly refilled by a regrouped "
         "packet arriving later")


def case_gap(frames, hop):
    pk = packetize(frames, hop, 2)
    keep = [i for i in range(len(pk)) if i not in (5, 9, 10)]
    keep.remove(8)
    keep.insert(1, 8)               # seq 16, exactly 8 x 2 frames from the first: within span
    return [(1, pk[i][2]) for i in keep], None, {"multi_frame", "gap", "probation", "reorder"}, \
        ("2 frames per packet; on probation packets 0, 8 (seq 16: 8 x 2 frames away, "
         "within the span) and 1; packet 5 and packets 9-10 lost (gaps of 2 and 4 frames)")


def case_foreign(frames, hop):
    from pacodec.packet import pack_packet
    pk = packetize(frames, hop, 1)
    other = packetize(list(reversed(frames)), hop, 1, session=OTHER_SESSION)
    out = []
    for i, (seq, n, d) in enumerate(pk):
        out.append((1, d))
        if i >= 3 and i % 4 == 0:
            out.append((1, other[i][2]))               # another session, same source
        if i >= 3 and i % 4 == 2:
            out.append((2, other[i][2]))               # another session, another source
        if i >= 3 and i % 5 == 1 and i + 1 < len(pk):
            out.append((3, pack_packet(SESSION, i + 1, (i + 1) * hop, frames[-1 - i])))
            # ^ this session's next seq from another source, with another frame
    return out, None, {"single_frame", "foreign_session", "foreign_source", "probation"}, \
        ("one frame per packet; another session's packets (from the same and from another "
         "source) and packets with the session's id and next seq (but another frame) from "
         "another source interleaved")


def case_jump(frames, hop):
    from pacodec.packet import pack_packet
    J = 100000                                         # the sender's counter jumps by this
    out = []

    def wild(seq, i):
        out.append((1, pack_packet(SESSION, seq, seq * hop, frames[i])))

    for i, f in enumerate(frames):
        seq = i if i < 24 else i + J
        if 40 <= i <= 42:
            seq = i + 2 * J                            # an excursion of exactly 3 packets
        if i == 10:
            wild(5000, i)                              # a lone wild seq
        if i == 14:
            wild(7000, 14)                             # a run of 2 only
            wild(7001, 15)
        if i in (17, 18, 19):
            wild(9000 + i - 17, i)                     # 3 consecutive, but each followed by
        out.append((1, pack_packet(SESSION, seq, seq * hop, f)))   # an accepted packet
    return out, None, {"single_frame", "jump", "unconfirmed_jump", "probation"}, \
        (f"one frame per packet; dropped: a lone packet with seq 5000, a run of 2 (7000, 7001) "
         f"and a run 9000..9002 whose packets each precede an accepted packet (which ends the "
         f"run); from frame 24 on the seq jumps by {J} (accepted once 3 consecutive packets "
         f"continue the jump: the jump packet and the next 2); frames 40..42 with seq + {J} "
         f"more (a jump of exactly 3 packets: accepted) and then back (a jump again, "
         f"accepted after 3 more)")


def case_probation(frames, hop):
    """Two sessions and a second source on probation at once; a far packet restarts it."""
    from pacodec.packet import pack_packet
    other = list(reversed(frames))

    def pkt(session, seq, fr):
        return pack_packet(session, seq, seq * hop, fr[seq])

    out = [(1, pkt(SESSION, 0, frames)), (2, pkt(OTHER_SESSION, 0, other)),
           (3, pkt(SESSION, 0, other)),                # the session id from another source
           (1, pkt(SESSION, 10, other)),                # 10 from the first: probation restarts
                                                        # (a wrong frame: it must not be taken)
           (2, pkt(OTHER_SESSION, 1, other)), (3, pkt(SESSION, 1, other)),
           (1, pkt(SESSION, 1, frames)),                # 9 from 10: restarts again
           (1, pkt(SESSION, 1, frames)),                # a duplicate on probation
           (1, pkt(SESSION, 2, frames)), (1, pkt(SESSION, 3, frames)),   # valid: 1, 2, 3
           (2, pkt(OTHER_SESSION, 2, other)), (3, pkt(SESSION, 2, other))]
    for i in range(4, len(frames)):
        out.append((1, pkt(SESSION, i, frames)))
        if i == 6:
            out.append((1, pkt(SESSION, 0, frames)))    # the first packet, late: 6 behind
    return out, None, {"single_frame", "probation", "probation_restart", "candidates",
                       "duplicate", "foreign_session", "foreign_source", "reorder"}, \
        ("one frame per packet; on probation at once: the session from source 1, another "
         "session from source 2, the same session id from source 3 (2 packets each before "
         "the first becomes valid); the session's packets 0, 10 (another frame's bytes, more than 8 away: "
         "probation restarts), 1 (restarts again), 1 again (a duplicate), 2, 3 (valid: 1..3 accepted); "
         "packet 0 arrives late after packet 6 (accepted, 6 behind)")


def case_ended(frames, hop):
    pk = packetize(frames, hop, 2)
    out = [(1, d) for i, (_, _, d) in enumerate(pk) if i != 6]   # packet 6 lost
    out += [(1, pk[6][2])] + [(1, d) for _, _, d in pk[:4]]  # replays after the end
    return out, None, {"multi_frame", "gap", "ended_session", "probation"}, \
        ("2 frames per packet, packet 6 lost; after the end-of-stream frame packet 6 and the "
         "first 4 packets arrive (the session has ended: dropped)")


def case_malformed(frames, hop):
    from pacodec.packet import pack_packet
    pk = packetize(frames, hop, 1)
    bad = {}

    def before(i, d):
        bad.setdefault(i, []).append((1, d))

    def multi(seq, field):
        return struct.pack(">BBIII", 0xA8, 0x02, SESSION, seq, seq * hop) + field

    for i, (seq, n, d) in enumerate(pk):
        genuine = d
        # the damaged datagrams carry other frames (20 on): taking one would change the output
        d = pack_packet(SESSION, seq, seq * hop, frames[(seq + 20) % len(frames)])
        if i == 0:                                              # session 0, 3 in a row: no
            for s in range(3):                                  # session may come of them
                before(i, genuine[:2] + b"\0\0\0\0" + pk[s][2][6:])
        if i == 1:
            before(i, genuine[:19])                             # 19 bytes: short
        if i == 3:
            before(i, genuine[:20])                             # 20 bytes: a 6-byte field
        if i == 2:
            before(i, b"\xa7" + d[1:])                          # version 1's tag
        if i == 4:
            before(i, b"\x00" + d[1:])                          # another tag
        if i == 5:
            before(i, d[:1] + b"\x04" + d[2:])                  # unknown flag bit 2
        if i == 6:
            before(i, d[:1] + b"\x80" + d[2:])                  # unknown flag bit 7
        if i == 7:
            before(i, d[:2] + b"\0\0\0\0" + d[6:])              # session 0
        if i == 8:
            before(i, d[:1] + b"\x01" + d[2:36])                # MAC flag, 36 bytes (< 37)
        if i == 9:
            before(i, multi(seq, frames[seq + 20]))                  # flag bit 1, one frame
        if i == 10:
            before(i, multi(seq, b"".join(frames[seq + 20:seq + 29])))   # nine frames
        if i == 11:
            before(i, multi(seq, frames[seq + 20] + frames[seq + 21][:-1]))  # the last cut short
        if i == 12:
            before(i, multi(seq, frames[seq + 20] + frames[seq + 21] + b"\0"))   # a byte after
        if i == 13:
            before(i, multi(seq, frames[seq + 20] + b"\0\0" + frames[seq + 21][2:]))  # no sync word
        if i == 14:                                             # a MAC without a key: skipped
            pass
    out = []
    for i, (seq, n, d) in enumerate(pk):
        out += bad.get(i, [])
        if i == 14:
            d = pack_packet(SESSION, seq, seq * hop, frames[seq], WRONG_KEY)
        out.append((1, d))
    return out, None, {"single_frame", "drop_short", "drop_tag", "drop_flags", "drop_session0",
                       "drop_multi_field", "mac_skipped", "probation"}, \
        ("one frame per packet; first 3 packets of session 0 (seq 0..2); before genuine packets "
         "(each carrying other frames than the genuine one): datagrams of 19 and 20 bytes, tags 0xA7 and 0x00, "
         "flag bits 2 and 7, session 0, a MAC-flagged 36-byte datagram, flag-bit-1 fields of "
         "1 and 9 frames, with the last frame cut short, with a byte after it and without a "
         "sync word; one genuine packet carries a MAC the (keyless) receiver skips")


#: name -> (samplerate, channels, kbit/s, seconds, seed, case)
CASES = {
    "single_48k_stereo": (48000, 2, 96, 0.25, 1, case_single),
    "multi2_48k_stereo": (48000, 2, 96, 0.25, 2, case_multi(2)),
    "multi4_16k_mono": (16000, 1, 32, 0.42, 3, case_multi(4)),
    "multi8_48k_stereo": (48000, 2, 96, 0.3, 4, case_multi(8)),
    "mac_48k_stereo": (48000, 2, 96, 0.25, 5, case_mac),
    "reorder_48k_stereo": (48000, 2, 96, 0.25, 6, case_reorder),
    "overlap_16k_mono": (16000, 1, 32, 0.5, 7, case_overlap),
    "gap_16k_mono": (16000, 1, 32, 0.4, 8, case_gap),
    "foreign_48k_stereo": (48000, 2, 96, 0.2, 9, case_foreign),
    "jump_16k_mono": (16000, 1, 32, 0.4, 10, case_jump),
    "ended_16k_mono": (16000, 1, 32, 0.3, 11, case_ended),
    "probation_48k_stereo": (48000, 2, 96, 0.2, 13, case_probation),
    "malformed_48k_stereo": (48000, 2, 96, 0.2, 12, case_malformed),
}


# ----------------------------------------------------------------------------- reference receiver
def addr(src):
    return ("192.0.2.%d" % src, 5004)


def reference_receive(datagrams, key=None):
    """The reference receiver, without a clock: [(seq, frame)] in seq order, and its counters."""
    from pacodec.stream.session import SessionFilter
    f = SessionFilter(key)
    got = {}
    for src, d in datagrams:
        acc = f.accept(d, addr(src), 0.0)
        ended = False
        for ext, _ts, frame in acc.packets:
            if ext not in got:
                got[ext] = bytes(frame)
            ended |= len(frame) >= 3 and frame[2] >> 6 == 2
        if ended:
            f.end_current()             # the player ends the session with its end-of-stream frame
    order = sorted(got)
    return [(e % (1 << 32), got[e]) for e in order], f.stats() if hasattr(f, "stats") else {}


def reference_decode(frames):
    import pacodec
    pcm, fs = pacodec.decode(b"".join(frames))
    return np.ascontiguousarray(pcm, dtype=np.float32), fs


def missing_of(seqs):
    """Seqs absent between consecutive accepted ones (forward steps of at most 64 only: a jump
    restarts the count)."""
    out = []
    for a, b in zip(seqs, seqs[1:]):
        d = (b - a) % (1 << 32)
        if 1 < d <= 64:
            out += [(a + k) % (1 << 32) for k in range(1, d)]
    return out


def non_normative(frames, hop, delay, n_out):
    """Output ranges depending on concealment (FORMAT.md §11): for each gap in the frames' 8-bit
    seq numbers, the concealed frames and the next accepted frame, as output samples."""
    bad = []
    index = 0
    prev = None
    for f in frames:
        s = f[4]
        if prev is not None:
            g = (s - prev - 1) % 256
            if g:
                lo = index * hop - delay                 # first concealed frame's position
                index += g
                hi = (index + 1) * hop - delay           # through the next accepted frame
                lo, hi = max(lo, 0), min(hi, n_out)
                if hi > lo:
                    bad.append([lo, hi])
        prev = s
        index += 1
    return bad


def normative_sha(pcm, bad):
    y = pcm.copy()
    for lo, hi in bad:
        y[lo:hi] = 0
    y = y + np.float32(0)                                   # -0 -> +0 (they compare equal)
    return hashlib.sha256(y.astype("<f4").tobytes()).hexdigest()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else OUT
    out.mkdir(parents=True, exist_ok=True)
    import pacodec
    vectors = []
    for name, (fs, ch, rate, seconds, seed, case) in CASES.items():
        frames, hop = encode(fs, ch, seconds, seed, rate)
        datagrams, key, covers, made = case(frames, hop)
        cap = write_capture(datagrams)
        (out / f"{name}.cap").write_bytes(cap)
        got, stats = reference_receive(datagrams, key)
        seqs = [s for s, _ in got]
        accepted_frames = [f for _, f in got]
        pcm, rfs = reference_decode(accepted_frames)
        delay = pacodec.Encoder(fs, ch, bitrate=rate, low_delay=True).delay
        bad = non_normative(accepted_frames, hop, delay, len(pcm))
        vectors.append({
            "name": name, "capture": f"{name}.cap",
            "capture_sha256": hashlib.sha256(cap).hexdigest(),
            "key": key.hex() if key else None,
            "datagrams": len(datagrams),
            "made_with": {"samplerate": fs, "channels": ch, "bitrate": rate, "seconds": seconds,
                          "encoder": f"pacodec.Encoder({fs}, {ch}, bitrate={rate}, low_delay=True, group=1)",
                          "frames_sent": len(frames), "frame_size": hop, "signal_seed": seed,
                          "edit": made},
            "covers": sorted(covers),
            "accepted": seqs,
            "missing": missing_of(seqs),
            "stream_sha256": hashlib.sha256(b"".join(accepted_frames)).hexdigest(),
            "samplerate": rfs, "channels": int(pcm.shape[1]), "frames": int(pcm.shape[0]),
            "output_sha256": hashlib.sha256(pcm.astype("<f4").tobytes()).hexdigest(),
            "non_normative": bad,
            "normative_sha256": normative_sha(pcm, bad),
        })
    manifest = {
        "packet_version": 2,
        "format": "FORMAT.md §9 (packets), §4.3 (the accepted frames as a headerless stream)",
        "capture_file": ("'PKTC', then per datagram: source id u16, length u16, the datagram's "
                         "bytes (big-endian); datagrams in arrival order; each source id is one "
                         "sender address"),
        "receiver": ("pacodec.stream.session.SessionFilter (key = the vector's key) fed every "
                     "datagram in order with no clock; end_current() once the end-of-stream "
                     "frame was handed on; the frames handed on, in seq order (extended), "
                     "decoded by pacodec.decode as one headerless byte stream"),
        "out_of_scope": ("the timing rules of §9: the 2 s session timeout, playout deadlines, "
                         "the jitter estimate (every datagram arrives at once, in capture order)"),
        "rules": RULES,
        "fields": {
            "accepted": "seq of every accepted frame, in seq order",
            "missing": "seqs between accepted ones never accepted (not across a jump)",
            "stream_sha256": "SHA-256 of the accepted frames concatenated in seq order",
            "output_sha256": "SHA-256 of the reference decoding: float32 little-endian, "
                             "channels interleaved",
            "non_normative": "output sample ranges [first, end) that depend on concealment "
                             "(§11, §12)",
            "normative_sha256": "SHA-256 of the same with the non_normative samples set to +0 "
                                "and every -0 made +0: what a conforming decoder must match",
        },
        "vectors": vectors,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    total = sum(os.path.getsize(out / v["capture"]) for v in vectors)
    print(f"{len(vectors)} vectors, {total} bytes of captures")
    for v in vectors:
        print(v["name"], v["datagrams"], "datagrams,", len(v["accepted"]), "frames accepted,",
              "missing", v["missing"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
