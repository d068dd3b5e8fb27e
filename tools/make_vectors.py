#!/usr/bin/env python3
"""Make the conformance vectors of the current format in bitstreams/vectors/v8/ and their manifest
(FORMAT.md §11).  Earlier formats' vectors (bitstreams/vectors/v3/ to v7/) are frozen: they were made
by the release of that format and are never regenerated.

    python tools/make_vectors.py            # rewrite every vector, reference and manifest.json

Each vector is a small ``.pac`` byte stream made by the pacodec encoder from the shipped CC0 clips
or a synthetic signal, sometimes edited afterwards (header removed, bytes corrupted, frames
removed, the metadata block damaged).  Its reference decoding is the reference decoder's binary32 output, stored as a 32-bit
float WAV (``NAME.ref.wav``).  ``manifest.json`` is generated here and never edited by hand: it
records how each vector was made (the exact encoder arguments and edits), what it covers
(computed by walking its frames with the independent, spec-only parser below, not by the
decoder), and which output samples are not normative (concealed frames, FORMAT.md §11/§12).

Run it only when the format or the normative decoder changes on purpose, and say so in
FORMAT.md's change log.  Encoder changes do not require it: the vectors are fixed bitstreams.
"""
from __future__ import annotations

import binascii
import hashlib
import json
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pacodec  # noqa: E402

OUT = ROOT / "bitstreams" / "vectors" / "v8"
# version 8 codes with version 7's codebooks (FORMAT.md §3.2); pacodec/data/ ships a copy
CODEBOOKS = ROOT / "bitstreams" / "codebooks_v7.json"
FORMAT_VERSION = 8


# ----------------------------------------------------------------------------- a spec-only walker
# Everything below implements FORMAT.md §4.3, §5 and §7 from the text (no pacodec code), to
# describe a vector truthfully: which frames are accepted, their indices and output positions,
# the gaps, and what the payloads use.

RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)
ZWICKER = [0, 100, 200, 300, 400, 510, 630, 770, 920, 1080, 1270, 1480, 1720, 2000, 2320, 2700,
           3150, 3700, 4400, 5300, 6400, 7700, 9500, 12000, 15500, 20500, 27000, 48000]
BOOKS = {1: (4, 1), 2: (4, 2), 3: (2, 4), 4: (2, 7), 5: (2, 12), 6: (2, 16)}


def crc16(b):
    return binascii.crc_hqx(bytes(b), 0)


def canonical(lengths):
    """{(length, code): symbol} of a canonical code (§7.1)."""
    order = sorted((l, s) for s, l in enumerate(lengths) if l > 0)
    table, code, prev = {}, 0, order[0][0]
    for n, (l, s) in enumerate(order):
        if n:
            code = (code + 1) << (l - prev)
        table[(l, code)] = s
        prev = l
    return table


def load_codes():
    d = json.loads(CODEBOOKS.read_text())
    return {"book": [canonical(r) for r in d["book_index"]], "sf": [canonical(r) for r in d["scalefactor"]],
            "spec": {int(k): [canonical(row) for row in v] for k, v in d["spectral"].items()},
            "pair": [canonical(r) for r in d["book_pair"]], "ms": [canonical(r) for r in d["ms_group"]]}


def band_edges(fs, m, w=4):
    """§5.1; ``w``: the least band width W (a long transform's 4 << min_band, a short one's 4)."""
    f = []
    for i in range(27):
        f += [ZWICKER[i], (ZWICKER[i] + ZWICKER[i + 1]) // 2]
    f.append(48000)
    edges = [0]
    for x in f[1:]:
        b = (x * 4 * m + fs) // (2 * fs)
        b = ((b + 2) // 4) * 4
        if b >= m:
            break
        if b - edges[-1] >= w:
            edges.append(b)
    return edges + [m]


def parse_config(b):
    v = b[0]
    rate_i, ch = b[1] >> 4, (b[1] & 15) + 1
    hl, ol = b[2] >> 4, b[2] & 15
    short, shape, quant = b[3] >> 7, (b[3] >> 6) & 1, (b[3] >> 4) & 3
    # §3.1: version 5's min_band is bits 3..2 of byte 3; in versions 3 and 4 all four are reserved
    min_band, res = ((b[3] >> 2) & 3, b[3] & 3) if v >= 5 else (0, b[3] & 15)
    mu, delay = int.from_bytes(b[4:6], "big"), int.from_bytes(b[6:8], "big")
    n, vv = 1 << hl, 1 << ol
    ok = (v in (3, 4, 5, 6, 7, FORMAT_VERSION) and rate_i < 11 and ch <= 8 and 5 <= hl <= 11 and 5 <= ol <= hl
          and quant < 3 and res == 0 and mu >= 1 and delay == n - (n - vv) // 2
          and (not short or (vv == n and n >= 128)))
    return ok, dict(version=v, samplerate=RATES[rate_i] if rate_i < 11 else None, channels=ch,
                    N=n, V=vv, short_blocks=short, window_shape=("sine", "kbd")[shape],
                    quantizer=("uniform", "mulaw", "power", "?")[quant], mu=mu, delay=delay,
                    min_band=min_band)


class Bits:
    def __init__(self, data):
        self.data, self.pos, self.end = data, 0, 8 * len(data)

    def u(self, n):
        if self.pos + n > self.end:
            raise ValueError("past the end")
        v = 0
        for _ in range(n):
            v = (v << 1) | ((self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    def se(self, table):
        code = 0
        for l in range(1, 25):
            code = (code << 1) | self.u(1)
            if (l, code) in table:
                return table[(l, code)]
        raise ValueError("invalid code")


def parse_payload(p, cfg, codes, stats):
    """Parse one audio payload (§5.3); raises ValueError when invalid; fills ``stats``."""
    r = Bits(p)
    n, ch = cfg["N"], cfg["channels"]
    is_short, ls, rs = r.u(1), r.u(1), r.u(1)
    gflags = r.u(7) if is_short else 0
    if (is_short or ls or rs) and not cfg["short_blocks"]:
        raise ValueError("short window without short_blocks")
    if is_short and not (ls and rs):
        raise ValueError("short frame without short slopes")
    if is_short:
        edges = band_edges(cfg["samplerate"], n // 8)
        glen = [1]
        for w in range(1, 8):
            if (gflags >> (7 - w)) & 1:
                glen.append(1)
            else:
                glen[-1] += 1
    else:
        edges, glen = band_edges(cfg["samplerate"], n, 4 << cfg["min_band"]), [1]
    nb, G = len(edges) - 1, len(glen)
    width = [glen[g] * (edges[b + 1] - edges[b]) for g in range(G) for b in range(nb)]
    mb = [r.u(6) for _ in range(ch)]
    if max(mb) > nb:
        raise ValueError("max_band > nbands")
    modes = []
    for pp in range(ch // 2):
        m = r.u(2)
        if m == 3:
            raise ValueError("ms_mode 3")
        modes.append(m)
        if m == 2:            # §5.3 version 6: groups of up to 4 flags, §7.2 ms_row(prev, n)
            total, k, prev = G * max(mb[2 * pp], mb[2 * pp + 1]), 0, 0
            while k < total:
                k_n = min(4, total - k)
                v = r.se(codes["ms"][2 * (k_n - 1) + prev])
                if v >= 1 << k_n:
                    raise ValueError("ms_group symbol out of range")
                prev = v & 1
                stats["ms_group_lengths"].add(k_n)
                k += k_n
    books_used, esc, noise, qmax = set(), 0, 0, 0
    allbooks, allmags = [], []      # per channel: books by unit, decoded magnitudes by unit
    for c in range(ch):
        units = [g * nb + b for g in range(G) for b in range(mb[c])]
        ctx, books, k = 0, {}, 0
        stats["unit_counts"].add("odd" if len(units) % 2 else "even")
        while k < len(units):
            u = units[k]
            region = min(7, 8 * (u % nb) // nb)
            if k + 1 < len(units):   # §7.2: pair_row(ctx, partner, b, nbands)
                pt = 8 if c % 2 == 0 else (allbooks[c - 1][u] if u % nb < mb[c - 1] else 0)
                stats["partners"].add(pt)
                v = r.se(codes["pair"][72 * region + 9 * ctx + pt])
                if v >= 64:
                    raise ValueError("book_pair symbol out of range")
                books[u], books[units[k + 1]] = v // 8, v % 8
                ctx, k = v % 8, k + 2
            else:                    # §7.2: book_row(ctx, b, nbands), R = 8 regions
                books[u] = ctx = r.se(codes["book"][8 * region + ctx])
                k += 1
        allbooks.append({u: books.get(u, 0) for u in range(G * nb)})
        first, prev, pbook = True, 0, 0
        cls = [0, 0, 0, 1, 1, 2, 2, 3]
        for u in units:
            if books[u]:      # §7.2: sf_row(pbook, book)
                v = r.u(8) if first else prev + r.se(codes["sf"][4 * cls[pbook] + cls[books[u]]]) - 60
                if not 0 <= v <= 255:
                    raise ValueError("scalefactor out of range")
                first, prev, pbook = False, v, books[u]
        mags = {}
        for u in units:
            bk = books[u]
            books_used.add(bk)
            noise += bk == 7
            if not 1 <= bk <= 6:
                continue
            dim, lav = BOOKS[bk]
            # §5.3 pmode: the partner unit (channel c - 1) has spectral values, or not, or none
            pm = 0 if c % 2 == 0 else (2 if 1 <= allbooks[c - 1][u] <= 6 else 1)
            mags[u] = []
            s = -1                # §7.3: the row by the magnitudes of the tuple before
            for k in range(width[u] // dim):
                t = 0 if s < 0 else 1 if s == 0 else 2 if s == 1 else 3 if s <= 3 else 4
                stats["tuple_contexts"].add(t)
                pc = pm           # §7.3 partner_class: the partner's magnitudes at these positions
                if pm == 2:
                    psum = sum(allmags[c - 1][u][dim * k:dim * k + dim])
                    pc = 2 if psum == 0 else 3 if psum == 1 else 4 if psum <= 3 else 5
                stats["partner_classes"].add(pc)
                sym = r.se(codes["spec"][bk][6 * t + pc])
                m = [(sym // (lav + 1) ** (dim - 1 - i)) % (lav + 1) for i in range(dim)]
                for x in m:
                    if x:
                        r.u(1)
                for i in range(dim):
                    if bk == 6 and m[i] == 16:
                        nz = 0
                        while r.u(1) == 0:
                            nz += 1
                            if nz > 14:
                                raise ValueError("escape prefix too long")
                        m[i] = ((1 << (nz + 2)) | r.u(nz + 2)) - 4 + 16
                        if m[i] > 8191:
                            raise ValueError("escape value too large")
                        esc += 1
                qmax = max(qmax, *m)
                s = sum(m)
                mags[u] += m
        allmags.append(mags)
    stats["frames"] += 1
    stats["short_frames"] += is_short
    stats["long_nbands" if not is_short else "short_nbands"] = nb
    if is_short:
        stats["group_patterns"].add(format(gflags, "07b"))
    stats["window_flags"].add(f"{is_short}{ls}{rs}")
    stats["ms_modes"].update(modes)
    stats["books"].update(books_used)
    stats["escapes"] += esc
    stats["noise_units"] += noise
    stats["max_abs_q"] = max(stats["max_abs_q"], qmax)
    stats["stuffing_frames"] += (len(p) - (r.pos + 7) // 8) > 0


def u7(b):
    """FORMAT.md §3.3: bytes of 7 bits, most significant first (None: a top bit is set)."""
    v = 0
    for x in b:
        if x > 127:
            return None
        v = v * 128 + x
    return v


def parse_metadata(data, at):
    """The metadata block at ``at`` (§3.3): {"comments", "loudness", "size"} or {"damaged"}."""
    L = u7(data[at + 4:at + 6]) if len(data) >= at + 6 else None
    if L is None or at + L + 9 > len(data):
        return {"damaged": "length"}
    crc = u7(data[at + 6 + L:at + 9 + L])
    if crc is None or crc != crc16(data[at:at + 6 + L]):
        return {"damaged": "crc"}
    body = data[at + 6:at + 6 + L]
    v = u7(body[:3]) if L >= 3 else None
    if v is None or (len(body) > 3 and body[-1] != 0):
        return {"damaged": "body"}
    comments = []
    for raw in body[3:].split(b"\0")[:-1]:
        key, eq, value = raw.partition(b"=")
        if not eq or not key or any(c < 0x20 or c > 0x7D for c in key):
            return {"damaged": "comment"}
        try:
            comments.append([key.decode("ascii").upper(), value.decode("utf-8")])
        except UnicodeDecodeError:
            return {"damaged": "utf-8"}
    return {"comments": comments, "loudness": None if v == 0 else (v - 1048576) / 256,
            "size": L + 9}


def walk(data):
    """Follow FORMAT.md §4.3 over the whole byte stream (frame acceptance and the time line);
    returns (config, coverage stats, emitted frames [[position, normative, cut]]), where ``cut`` is
    the total length known when the frame's samples were output (None: not cut), §6.3."""
    codes = load_codes()
    st = dict(frames=0, short_frames=0, config_frames=0, group_patterns=set(), window_flags=set(),
              tuple_contexts=set(), partners=set(), unit_counts=set(), ms_group_lengths=set(),
              partner_classes=set(),
              ms_modes=set(), books=set(), escapes=0, noise_units=0, max_abs_q=0,
              stuffing_frames=0, damaged_candidates=0, invalid_payloads=0, concealed=0,
              spliced=0, header=False, total_in_header=False, end_of_stream=False,
              first_index=None, metadata=None, long_nbands=None, short_nbands=None,
              group_counts=set(), grouped_frames=0, lacing_runs=set(), damaged_groups=0,
              groups_before_join=0)
    cfg = total = None
    had_header = from_header = started = False
    next_seq = next_index = None
    pos = last_end = 0
    emitted = []                 # [output position of the frame's first sample, normative, cut]

    def emit(normative):
        nonlocal pos
        # §6.3: cut at the total known now; while it is unknown the latest frame is held back
        # and cut by the total the end-of-stream frame brings, earlier ones are not cut
        emitted.append([pos, normative, total])
        pos += cfg["N"]
    after_gap = False
    p = 0
    if data[:4] == b"PACD":
        st["header"] = True
        if crc16(data[:18]) == int.from_bytes(data[18:20], "big"):
            ok, c = parse_config(data[4:12])
            if ok:
                cfg, had_header = c, True
                from_header = True
                t = int.from_bytes(data[12:18], "big")
                total = None if t == 2 ** 48 - 1 else t
                st["total_in_header"] = total is not None
        p = 20
        if cfg is not None and cfg["version"] >= 4 and data[20:24] == b"PACM":
            meta = parse_metadata(data, 20)
            st["metadata"] = meta
            if "size" in meta:
                p = 20 + meta.pop("size")

    def gap(seq, start):
        nonlocal pos
        g = (seq - next_seq) % 256
        if not g:
            return False
        free, per = (16, 2) if cfg["version"] >= 8 else (8, 8)       # §12
        k = min(g, free + max(0, start - last_end) // per)
        for _ in range(k):
            emit(False)
        pos += (g - k) * cfg["N"]
        st["concealed"] += k
        st["spliced"] += g - k
        return True

    while p < len(data):
        if data[p:p + 2] != b"\xca\x5e":
            q = data.find(b"\xca\x5e", p + 1)
            p = q if q >= 0 else len(data)
            continue
        end = p + 7 + (((data[p + 2] & 63) << 8) | data[p + 3]) if p + 5 <= len(data) else 1 << 62
        ftype = data[p + 2] >> 6 if p + 2 < len(data) else 0
        if p + 5 > len(data) or end > len(data) or crc16(data[p + 2:end - 2]) != int.from_bytes(
                data[end - 2:end], "big"):
            st["damaged_candidates"] += 1
            p += 1
            continue
        seq, pl = data[p + 4], data[p + 5:end - 2]
        members = None
        if ftype == 3:                  # §4: an audio group in version 8, damaged before
            if cfg is None:
                st["groups_before_join"] += 1
                p = end
                continue
            members = group_members(pl) if cfg["version"] >= 8 else None
            if members is None:
                st["damaged_groups"] += 1
                p += 1
                continue
        if ftype == 2:
            if len(pl) != 6 or (total is not None and int.from_bytes(pl, "big") != total):
                p += 1
                continue
            total = int.from_bytes(pl, "big")
            if emitted and emitted[-1][2] is None:
                emitted[-1][2] = total          # the held frame is released cut at the total
            st["end_of_stream"] = True
            if started:
                gap(seq, p)
            break
        index = None
        if ftype == 1:
            ok, c = parse_config(pl[:8]) if len(pl) >= 12 else (False, None)
            if not ok or (cfg is not None and c != cfg and not (from_header and not started)) \
                    or int.from_bytes(pl[8:12], "big") % 256 != seq:
                p += 1
                continue
            cfg, index = c, int.from_bytes(pl[8:12], "big")
            from_header = False
            if not started:
                next_index, next_seq = index + 1, (seq + 1) % 256
            pl = pl[12:]
            st["config_frames"] += 1
        if cfg is None:
            p = end
            continue
        if index is None:
            index = (seq if had_header else 0) if next_index is None else \
                next_index + (seq - next_seq) % 256
        try:
            if members is None:
                parse_payload(pl, cfg, codes, st)
            else:                       # every member first: a group is decoded whole (§4)
                trial = {k: set(v) if isinstance(v, set) else v for k, v in st.items()}
                for m in members:
                    parse_payload(m, cfg, codes, trial)
        except ValueError:
            st["invalid_payloads"] += 1
            if members is not None:
                st["damaged_groups"] += 1
            p += 1
            continue
        if members is not None:
            st.update(trial)
            st["group_counts"].add(len(members))
            st["grouped_frames"] += len(members)
            q = 1
            for _ in range(len(members) - 1):       # the lacing runs' byte counts
                r = 1
                while pl[q] == 255:
                    q, r = q + 1, r + 1
                q += 1
                st["lacing_runs"].add(r)
        if not started:
            started, pos = True, index * cfg["N"] - cfg["delay"]
            st["first_index"] = index
        else:
            after_gap = gap(seq, p)
        for k in range(len(members) if members is not None else 1):
            next_seq, next_index, last_end = (seq + k + 1) % 256, index + k + 1, end
            emit(not after_gap)
            after_gap = False
        p = end
    return cfg, st, emitted


def group_members(pl):
    """§4: the member payloads of an audio group, or None when it is damaged."""
    if not pl or not 2 <= pl[0] <= 16:
        return None
    n, q, lengths = pl[0], 1, []
    for _ in range(n - 1):
        length = 0
        while True:
            if q >= len(pl):
                return None
            b = pl[q]
            q += 1
            length += b
            if b < 255:
                break
        lengths.append(length)
    last = len(pl) - q - sum(lengths)
    if last < 0:
        return None
    out = []
    for length in lengths + [last]:
        out.append(pl[q:q + length])
        q += length
    return out


def output_ranges(emitted, n):
    """Map emitted frames to output sample indices (§6.3 keep rule); returns (length,
    non-normative [first, end) ranges merged)."""
    out, bad = 0, []
    for p0, normative, total in emitted:
        lo = max(p0, 0)
        hi = p0 + n if total is None else min(p0 + n, total)
        if hi <= lo:
            continue
        if not normative:
            if bad and bad[-1][1] == out:
                bad[-1][1] = out + hi - lo
            else:
                bad.append([out, out + hi - lo])
        out += hi - lo
    return out, bad


# ----------------------------------------------------------------------------- signals and edits
def clip(name, seconds, start=0.0):
    p = ROOT / "pacodec" / "data" / name          # shipped clips, else the tests' own
    x, fs = sf.read(p if p.exists() else ROOT / "tests" / "data" / name, always_2d=True)
    a = int(start * fs)
    return x[a:a + int(seconds * fs)], fs


def resample(x, fs, to):
    from math import gcd
    g = gcd(fs, to)
    return resample_poly(x, to // g, fs // g, axis=0)


def frames_of(data, start):
    """[(offset, size, type)] of an intact stream's frames from ``start``."""
    out, p = [], start
    while p < len(data):
        size = 7 + (((data[p + 2] & 63) << 8) | data[p + 3])
        out.append((p, size, data[p + 2] >> 6))
        p += size
    return out


def encode(x, fs, kw):
    enc = pacodec.Encoder(fs, x.shape[1], total_frames=len(x), **kw)
    frames = b"".join(enc.encode(x)) + b"".join(enc.flush())
    return enc.header() + frames           # after flush: the metadata block has the loudness


TAGS = {"TITLE": "Prélude — ピアノ ✓", "ARTIST": ["Ann", "Bo"], "ALBUM": "Vectors",
        "TRACKNUMBER": "7", "DATE": "2026", "COMMENT": "two\nlines", "X-EMPTY": ""}


def damage_metadata(data):
    """One byte of the metadata block's first comment flipped: its CRC fails."""
    b = bytearray(data)
    b[20 + 9 + 6] ^= 0x01
    return bytes(b), "metadata block byte 15 (in its first comment) flipped: its CRC fails"


def headerless_from_second_config(data):
    fr = [f for f in frames_of(data, 20) if f[2] == 1]
    return data[fr[1][0]:], f"header and the frames before the config frame at byte {fr[1][0]} removed"


def damage(data):
    """Corrupt, drop and forge frames of an intact stream; returns (bytes, description)."""
    fr = frames_of(data, 20)
    b = bytearray(data)
    edits = []
    # frame 5: one byte of its payload flipped (fails its CRC)
    off, size, _ = fr[5]
    b[off + 9] ^= 0x40
    edits.append(f"frame 5 (byte {off}): payload byte flipped (CRC fails)")
    # frame 12: CRC-valid but invalid payload (max_band of channel 0 set to 63 > nbands)
    off, size, t = fr[12]
    s = off + 5 + (12 if t == 1 else 0)
    first = b[s] >> 5                   # is_short, left_short, right_short
    nbits = 3 + (7 if first & 4 else 0)
    v = int.from_bytes(b[s:s + 4], "big")
    v |= 63 << (32 - nbits - 6)
    b[s:s + 4] = v.to_bytes(4, "big")
    b[off + size - 2:off + size] = crc16(b[off + 2:off + size - 2]).to_bytes(2, "big")
    edits.append(f"frame 12 (byte {off}): max_band[0] = 63, CRC recomputed (valid CRC, invalid payload)")
    # frames 18-19 removed (lost), 37 bytes of garbage where they were
    a, e = fr[18][0], fr[20][0]
    garbage = bytes(np.random.default_rng(3).integers(0, 256, 37, dtype=np.uint8))
    b[a:e] = garbage
    edits.append(f"frames 18-19 (bytes {a}..{e - 1}) replaced by 37 garbage bytes")
    # the last audio frame before the end-of-stream frame removed
    off, size, _ = fr[-2]
    off -= (e - a) - len(garbage)
    del b[off:off + size]
    edits.append(f"last audio frame ({len(fr) - 2}) removed")
    return bytes(b), "; ".join(edits)


def damage_groups(data):
    """Damage audio groups (FORMAT.md §4, §12) of an intact grouped stream; (bytes, description)."""
    fr = frames_of(data, 20)
    groups = [f for f in fr if f[2] == 3]
    b = bytearray(data)
    edits = []

    def fix(off, size):
        b[off + size - 2:off + size] = crc16(b[off + 2:off + size - 2]).to_bytes(2, "big")

    off, size, _ = groups[2]
    b[off + 20] ^= 0x10
    edits.append(f"group 2 (byte {off}): a member byte flipped (CRC fails)")
    off, size, _ = groups[5]
    b[off + 5] = 1
    fix(off, size)
    edits.append(f"group 5 (byte {off}): count 1, CRC recomputed")
    off, size, _ = groups[8]
    b[off + 5] = 17
    fix(off, size)
    edits.append(f"group 8 (byte {off}): count 17, CRC recomputed")
    off, size, _ = groups[11]
    b[off + 6:off + 9] = b"\xff\xff\xff"
    fix(off, size)
    edits.append(f"group 11 (byte {off}): first lengths 255, 255, 255 (they overrun the payload), "
                 "CRC recomputed")
    off, size, _ = groups[14]
    n = b[off + 5]
    q, lengths = off + 6, []
    for _ in range(n - 1):               # lengths below 255 in this vector
        lengths.append(b[q])
        q += 1
    s = q + lengths[0]                   # member 1: max_band[0] = 63 (no short blocks: 3 flag bits)
    v = int.from_bytes(b[s:s + 4], "big") | (63 << (32 - 3 - 6))
    b[s:s + 4] = v.to_bytes(4, "big")
    fix(off, size)
    edits.append(f"group 14 (byte {off}): member 1's max_band[0] = 63, CRC recomputed (the whole "
                 "group is damaged)")
    return bytes(b), "; ".join(edits)


def headerless_groups(data):
    """The header and the frames before the first group after frame 20 removed: groups come
    before the stream's second config frame (skipped before joining, FORMAT.md §4.3)."""
    fr = frames_of(data, 20)
    start = next(f[0] for f in fr[20:] if f[2] == 3)
    return data[start:], f"header and the frames before the group at byte {start} removed"


def vectors():
    """(name, signal, rate, encoder kwargs, edit or None, signal description)."""
    rng = np.random.default_rng(11)
    piano, fs = clip("piano.flac", 0.3, 0.2)
    drums, _ = clip("amen_drums.flac", 0.4, 0.0)
    yield "stereo_44k_power", piano, fs, dict(bitrate=128, quantizer="power"), None, \
        "piano.flac 0.2-0.5 s"
    yield "stereo_44k_power_short", drums, fs, dict(bitrate=96, quantizer="power"), None, \
        "amen_drums.flac 0-0.4 s"
    yield "stereo_44k_uniform_kbd", piano, fs, dict(bitrate=96, quantizer="uniform",
                                                    window_shape="kbd"), None, "piano.flac 0.2-0.5 s"
    yield "stereo_48k_mulaw_lowdelay", resample(piano, fs, 48000), 48000, dict(
        bitrate=128, quantizer="mulaw", low_delay=True), None, "piano.flac 0.2-0.5 s at 48 kHz"
    p15, _ = clip("piano.flac", 1.5, 0.2)
    yield "mono_8k_uniform_1s5", resample(p15.mean(1, keepdims=True), fs, 8000), 8000, dict(
        bitrate=16, quantizer="uniform"), None, "piano.flac 0.2-1.7 s, mono, 8 kHz"
    yield "mono_96k_power_vbr", resample(drums[:, :1], fs, 96000)[: 96000 // 4], 96000, dict(
        quality=5, quantizer="power"), None, "amen_drums.flac 0-0.25 s, left, 96 kHz"
    t = np.arange(int(0.3 * 22050)) / 22050
    three = np.stack([0.3 * np.sin(2 * np.pi * f * t) for f in (330, 550, 880)], 1)
    three += 0.02 * rng.standard_normal(three.shape)
    yield "3ch_22k_mulaw_mu1000", three, 22050, dict(bitrate=96, quantizer="mulaw", mu=1000), \
        None, "three sines 330/550/880 Hz + noise (seed 11)"
    d16, _ = clip("amen_drums.flac", 0.5, 0.4)
    yield "stereo_16k_power_abr", resample(d16, fs, 16000), 16000, dict(
        bitrate=32, mode="abr", quantizer="power"), None, "amen_drums.flac 0.4-0.9 s at 16 kHz"
    yield "stereo_16k_ms_all", _tones(rng), 16000, dict(bitrate=64, quantizer="uniform"), None, \
        "one sine per band (random phases, seed 11), identical in both channels (M/S mode 1)"
    yield "stereo_32k_grouping", _bursts(rng), 32000, dict(bitrate=96, quantizer="power"), None, \
        "decaying noise bursts at varied offsets in quiet tones (many short-block groupings)"
    p15s, _ = clip("piano.flac", 1.3, 0.2)
    yield "stereo_16k_headerless_joined", resample(p15s, fs, 16000), 16000, dict(
        bitrate=48, quantizer="uniform"), headerless_from_second_config, \
        "piano.flac 0.2-1.5 s at 16 kHz"
    yield "8ch_16k", _eight(rng), 16000, dict(bitrate=160, quantizer="power"), None, \
        "8 channels: piano, drums and sines, pairs partly correlated, 0.25 s"
    d1, _ = clip("amen_drums.flac", 1.0, 0.9)
    yield "stereo_16k_damaged", resample(d1, fs, 16000), 16000, dict(
        bitrate=48, quantizer="mulaw"), damage, "amen_drums.flac 0.9-1.9 s at 16 kHz"
    tn = np.arange(int(0.5 * 8000)) / 8000
    burst = (0.3 * np.sin(2 * np.pi * 300 * tn) * (tn < 0.15))[:, None]
    yield "mono_8k_cbr_stuffing", burst, 8000, dict(bitrate=32, quantizer="uniform"), None, \
        "0.15 s of a 300 Hz sine, then digital silence (CBR stuffing bytes, escapes)"
    pt, _ = clip("piano.flac", 0.6, 0.2)
    yield "stereo_16k_tags", resample(pt, fs, 16000), 16000, dict(
        bitrate=48, quantizer="uniform", tags=TAGS), None, "piano.flac 0.2-0.8 s at 16 kHz"
    yield "stereo_16k_tags_damaged", resample(pt, fs, 16000), 16000, dict(
        bitrate=48, quantizer="uniform", tags=TAGS), damage_metadata, \
        "piano.flac 0.2-0.8 s at 16 kHz"
    # version 5: every min_band (FORMAT.md §3.1, §5.1) -- the ones above have the encoder's
    # choice (1 in the normal mode, 0 in low delay); these set it (Encoder(min_band=))
    d3, _ = clip("amen_drums.flac", 0.3, 0.0)
    yield "stereo_44k_min_band0", d3, fs, dict(bitrate=96, quantizer="power", min_band=0), None, \
        "amen_drums.flac 0-0.3 s"
    d25, _ = clip("amen_drums.flac", 0.25, 0.5)
    yield "stereo_48k_min_band2", resample(d25, fs, 48000), 48000, dict(
        bitrate=64, quantizer="uniform", min_band=2), None, "amen_drums.flac 0.5-0.75 s at 48 kHz"
    mix = 0.5 * (clip("piano.flac", 0.3, 0.2)[0] + clip("amen_drums.flac", 0.3, 0.1)[0])
    yield "mono_44k_min_band3", mix.mean(1, keepdims=True), fs, dict(
        bitrate=32, quantizer="mulaw", min_band=3), None, \
        "piano.flac 0.2-0.5 s + amen_drums.flac 0.1-0.4 s, mono"
    p10, _ = clip("piano.flac", 1.0, 0.3)
    yield "mono_8k_min_band2", resample(p10.mean(1, keepdims=True), fs, 8000), 8000, dict(
        bitrate=16, quantizer="power", min_band=2), None, "piano.flac 0.3-1.3 s, mono, 8 kHz"
    d4, _ = clip("amen_drums.flac", 0.4, 0.2)
    yield "stereo_16k_lowdelay_min_band1", resample(d4, fs, 16000), 16000, dict(
        bitrate=40, quantizer="uniform", low_delay=True, min_band=1), None, \
        "amen_drums.flac 0.2-0.6 s at 16 kHz"
    p5, _ = clip("piano.flac", 0.5, 0.4)
    yield "mono_8k_lowdelay_min_band3", resample(p5.mean(1, keepdims=True), fs, 8000), 8000, \
        dict(bitrate=16, quantizer="uniform", low_delay=True, min_band=3), None, \
        "piano.flac 0.4-0.9 s, mono, 8 kHz"
    # version 8: audio groups (FORMAT.md §4).  The low-delay vectors above have the encoder's
    # default (config.default_group: 4 at 48 kHz, 8 at 8 and 16 kHz); these set the group size
    g12, _ = clip("piano.flac", 1.2, 0.2)
    yield "mono_8k_lowdelay_groups_1s2", resample(g12.mean(1, keepdims=True), fs, 8000), 8000, \
        dict(bitrate=16, quantizer="power", low_delay=True), None, \
        "piano.flac 0.2-1.4 s, mono, 8 kHz (groups of 8, partial ones before the second config " \
        "frame and at the end)"
    g3, _ = clip("amen_drums.flac", 0.15, 0.3)
    g3 = resample(g3.mean(1, keepdims=True), fs, 16000)
    for g in (2, 3, 5, 6, 7, 16):
        yield f"mono_16k_lowdelay_group{g}", g3, 16000, dict(
            bitrate=32, quantizer="uniform", low_delay=True, group=g), None, \
            "amen_drums.flac 0.3-0.45 s, mono, 16 kHz"
    g96, _ = clip("piano.flac", 0.08, 0.3)
    yield "mono_96k_lowdelay_group3_lacing", resample(g96.mean(1, keepdims=True), fs, 96000), \
        96000, dict(bitrate=448, quantizer="power", low_delay=True, group=3), None, \
        "piano.flac 0.3-0.38 s, mono, 96 kHz (members of 255 bytes and more: two lacing bytes)"
    gd, _ = clip("amen_drums.flac", 0.4, 0.5)
    yield "mono_48k_lowdelay_groups_damaged", resample(gd.mean(1, keepdims=True), fs, 48000), \
        48000, dict(bitrate=48, quantizer="mulaw", low_delay=True), damage_groups, \
        "amen_drums.flac 0.5-0.9 s, mono, 48 kHz"
    gh, _ = clip("piano.flac", 1.3, 0.1)
    yield "mono_48k_lowdelay_groups_headerless", resample(gh.mean(1, keepdims=True), fs, 48000), \
        48000, dict(bitrate=48, quantizer="uniform", low_delay=True), headerless_groups, \
        "piano.flac 0.1-1.4 s, mono, 48 kHz"


def _tones(rng):
    fs, m = 16000, 512
    n = int(0.3 * fs)
    t = np.arange(n) / fs
    e = band_edges(fs, m)               # W = 4: one tone per band of version 4's layout
    freqs = [(e[b] + e[b + 1]) / 2 * fs / (2 * m) for b in range(len(e) - 1)]
    w = sum(0.3 / len(freqs) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in freqs)
    return np.stack([w, w], 1)


def _bursts(rng):
    fs = 32000
    n = int(0.4 * fs)
    t = np.arange(n) / fs
    x = np.stack([0.05 * np.sin(2 * np.pi * 500 * t), 0.05 * np.sin(2 * np.pi * 700 * t)], 1)
    for k, at in enumerate((1100, 3500, 6000, 7700, 9300, 11000)):
        length = 200 + 150 * k
        env = np.exp(-np.arange(length) / (40 + 30 * k))
        x[at:at + length] += 0.7 * env[:, None] * rng.standard_normal((length, 2))
    return x


def _eight(rng):
    fs = 16000
    n = fs // 4
    p, pfs = clip("piano.flac", 0.25, 0.3)
    d, _ = clip("amen_drums.flac", 0.25, 0.0)
    p, d = resample(p, pfs, fs)[:n], resample(d, pfs, fs)[:n]
    t = np.arange(n) / fs
    s = [0.2 * np.sin(2 * np.pi * f * t) for f in (220, 1500)]
    cols = [p[:, 0], p[:, 1], d[:, 0], d[:, 1], s[0], s[0] * 0.9 + 0.01 * rng.standard_normal(n),
            s[1], 0.1 * rng.standard_normal(n)]
    return np.stack(cols, 1)


# ----------------------------------------------------------------------------- main
def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_float_wav(path, y, fs):
    """A minimal 32-bit float WAV (fmt tag 3, fact, data), byte-for-byte reproducible (libsndfile
    adds a PEAK chunk with a timestamp)."""
    y = np.ascontiguousarray(y, dtype="<f4")
    ch = y.shape[1]
    data = y.tobytes()
    fmt = struct.pack("<HHIIHH", 3, ch, fs, fs * ch * 4, ch * 4, 32)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"fact" + struct.pack("<II", 4, len(y)) + b"data" + struct.pack("<I", len(data)) + data)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def reference_decode(data):
    dec = pacodec.Decoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = [dec.feed(data), dec.finish()]
    return np.concatenate(y).astype(np.float32, copy=False), dec.samplerate


def reference_metadata(data):
    dec = pacodec.Decoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dec.feed(data)
        dec.finish()
    return dec.metadata


def covers(cfg, st, data):
    """The manifest's ``covers`` object: the stream's config and what its frames exercise."""
    return {
        "config": {k: cfg[k] for k in ("samplerate", "channels", "N", "V", "short_blocks",
                                       "window_shape", "quantizer", "mu", "min_band")},
        "long_nbands": st["long_nbands"], "short_nbands": st["short_nbands"],
        "bytes": len(data), "header": st["header"], "total_length_in_header": st["total_in_header"],
        "end_of_stream": st["end_of_stream"], "first_frame_index": st["first_index"],
        "audio_frames": st["frames"], "config_frames": st["config_frames"],
        "short_frames": st["short_frames"], "group_patterns": sorted(st["group_patterns"]),
        "window_flags_seen": sorted(st["window_flags"]), "ms_modes": sorted(st["ms_modes"]),
        "books": sorted(st["books"]), "tuple_contexts": sorted(st["tuple_contexts"]),
        "book_pair_partners": sorted(st["partners"]), "channel_unit_counts": sorted(st["unit_counts"]),
        "ms_group_lengths": sorted(st["ms_group_lengths"]),
        "spectral_partner_classes": sorted(st["partner_classes"]),
        "escapes": st["escapes"], "noise_units": st["noise_units"],
        "max_abs_q": st["max_abs_q"], "frames_with_stuffing": st["stuffing_frames"],
        "rejected_candidates": st["damaged_candidates"],
        "crc_valid_invalid_payloads": st["invalid_payloads"],
        "concealed_frames": st["concealed"], "spliced_frames": st["spliced"],
        "group_counts": sorted(st["group_counts"]), "grouped_frames": st["grouped_frames"],
        "group_lacing_run_bytes": sorted(st["lacing_runs"]),
        "damaged_groups": st["damaged_groups"], "groups_before_join": st["groups_before_join"],
        **({"metadata_block": "damaged" if "damaged" in st["metadata"] else "valid"}
           if st["metadata"] is not None else {})}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in list(OUT.glob("*.pac")) + list(OUT.glob("*.ref.wav")):
        old.unlink()
    manifest = {
        "generated_by": "tools/make_vectors.py (do not edit by hand)",
        "format_version": FORMAT_VERSION,
        "codebooks": "bitstreams/codebooks_v7.json", "codebooks_sha256": sha(CODEBOOKS),
        "reference_format": "WAV, 32-bit IEEE float (format tag 3), channels interleaved",
        "tolerance": 0,
        "rule": "decode the whole .pac as one byte stream (FORMAT.md §4.3); same frames and "
                "channels as the reference; every sample outside non_normative equals it "
                "(bit-exact; FORMAT.md §11 also admits one binary32 ulp or 2^-40 for a decoder "
                "whose IMDCT algorithm is not §6.2.1's)",
        "not_covered": {
            "padded tuples": "cannot occur: every unit is a multiple of 4 coefficients wide "
                             "(FORMAT.md §5.1, §7.3)",
            "concealed samples": "not normative (FORMAT.md §12); see non_normative"},
        "vectors": []}
    for name, x, fs, kw, edit, what in vectors():
        data = encode(x, fs, kw)
        made = {"signal": what, "samples": int(len(x)), "encoder": dict(
            samplerate=fs, channels=int(x.shape[1]), total_frames=int(len(x)), **kw)}
        clean = data
        if edit is not None:
            data, how = edit(data)
            made["edit"] = how
        pac = OUT / f"{name}.pac"
        pac.write_bytes(data)
        y, fs2 = reference_decode(data)
        cfg, st, emitted = walk(data)
        n_out, bad = output_ranges(emitted, cfg["N"])
        if n_out != len(y):
            raise SystemExit(f"{name}: the walker's time line ({n_out}) disagrees with the "
                             f"decoder ({len(y)}): fix one of them")
        meta, dec_meta = st["metadata"], reference_metadata(data)
        if meta is not None and "damaged" not in meta:
            if dec_meta is None or [list(c) for c in dec_meta.comments] != meta["comments"] \
                    or dec_meta.loudness != meta["loudness"]:
                raise SystemExit(f"{name}: the walker's metadata disagrees with the decoder's")
        elif dec_meta is not None:
            raise SystemExit(f"{name}: the decoder took metadata from a damaged block")
        if edit is damage_metadata:  # the audio of a stream with a damaged block: untouched
            yc, _ = reference_decode(clean)
            if not np.array_equal(y, yc):
                raise SystemExit(f"{name}: a damaged metadata block changed the audio")
        if edit in (damage, damage_groups):   # outside the non-normative ranges: the intact one
            yc, _ = reference_decode(clean)
            keep = np.ones(len(y), bool)
            for a, b in bad:
                keep[a:b] = False
            if len(yc) != len(y) or not np.array_equal(y[keep], yc[keep]):
                raise SystemExit(f"{name}: normative samples differ from the intact stream's")
        ref = OUT / f"{name}.ref.wav"
        write_float_wav(ref, y, fs2)
        back, _ = sf.read(ref, dtype="float32", always_2d=True)
        assert np.array_equal(back, y)
        manifest["vectors"].append({
            "name": name, "pac": pac.name, "reference": ref.name,
            "pac_sha256": sha(pac), "reference_sha256": sha(ref),
            "samplerate": fs2, "channels": int(y.shape[1]), "frames": int(len(y)),
            "made_with": made, "covers": covers(cfg, st, data), "non_normative": bad,
            **({"metadata": st["metadata"]} if st["metadata"] is not None else {})})
        print(f"{name}: {len(data)} bytes, {len(y)} x {y.shape[1]} @ {fs2}, "
              f"{sum(b - a for a, b in bad)} non-normative samples")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"total {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
