#!/usr/bin/env python3
"""An independent pacodec decoder, written from bitstreams/FORMAT.md alone.

It reads nothing of the ``pacodec`` package (no import, no shared code): only the normative text
and the codebook files it names (``bitstreams/codebooks_v7.json`` for versions 7 and 8,
``bitstreams/codebooks_v6.json`` for version 6, ``bitstreams/codebooks.json`` for versions 4
and 5, ``bitstreams/codebooks_v3.json`` for version 3).  Each function implements one section of FORMAT.md and names it; the arithmetic is
binary64, evaluated in the order the text writes it (numpy is used only for element-wise
operations, one operation per ufunc call, so no fused multiply-add or reassociation can change a
result).

Usage: ``python tools/independent_decoder.py IN.pac OUT.wav`` writes a 32-bit float WAV laid out
as the references are (§6.2, §11).  Bad input gives a one-line error on stderr and exit status 1;
warnings (damaged frames, a damaged metadata block) go to stderr.
"""

import json
import math
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BITSTREAMS = os.path.join(os.path.dirname(HERE), "bitstreams")
CODEBOOK_FILES = {8: "codebooks_v7.json", 7: "codebooks_v7.json", 6: "codebooks_v6.json",
                  5: "codebooks.json", 4: "codebooks.json", 3: "codebooks_v3.json"}   # §7.1
SUPPORTED_VERSIONS = (3, 4, 5, 6, 7, 8)                                  # §3.2

SYNC = b"\xca\x5e"                                                      # §4
RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)  # §3.1
F32MAX = (2 - 2.0 ** -23) * 2.0 ** 127                                  # §6.2


class DecodeError(Exception):
    """A stream this decoder cannot decode (the one-line errors of §3.2, §4.3)."""


class Invalid(Exception):
    """An invalid audio payload (§5.3): its frame is damaged (§12)."""


# ---------------------------------------------------------------------------------------------
# §4.2 CRC-16/XMODEM


def _crc_table():
    table = []
    for b in range(256):
        r = b << 8
        for _ in range(8):
            r = ((r << 1) ^ 0x1021 if r & 0x8000 else r << 1) & 0xFFFF
        table.append(r)
    return table


_CRC_TABLE = _crc_table()


def crc16(data):
    """§4.2: polynomial 0x1021, initial 0, no reflection, no final XOR (byte-table form)."""
    r = 0
    for b in data:
        r = ((r << 8) & 0xFFFF) ^ _CRC_TABLE[(r >> 8) ^ b]
    return r


def u16(b):
    return int.from_bytes(b[:2], "big")


def u32(b):
    return int.from_bytes(b[:4], "big")


def u48(b):
    return int.from_bytes(b[:6], "big")


# ---------------------------------------------------------------------------------------------
# §3.1 Config block


class Config:
    """A parsed config block (§3.1) and everything derived from it (band tables §5.1, windows
    §6.1, codes §7).  Rebuilt from scratch whenever the configuration in use changes (§4.3)."""

    def __init__(self, raw):
        self.raw = bytes(raw)
        b = self.raw
        self.version = b[0]
        self.rate_index = b[1] >> 4
        self.channels_minus1 = b[1] & 15
        self.hop_log2 = b[2] >> 4
        self.overlap_log2 = b[2] & 15
        self.short_blocks = b[3] >> 7
        self.window_shape = (b[3] >> 6) & 1
        self.quantizer = (b[3] >> 4) & 3
        if self.version >= 5:                        # §3.1 (versions 5 to 7): bits 3..2 of
                                                     # byte 3, then 2 reserved
            self.min_band = (b[3] >> 2) & 3
            self.reserved = b[3] & 3
        else:                                        # versions 3, 4: 4 reserved bits, min_band 0
            self.min_band = 0
            self.reserved = b[3] & 15
        self.mu = u16(b[4:6])
        self.delay = u16(b[6:8])

    def valid(self):
        """§3.1: every field in range (an unsupported version is refused before this, §3.2)."""
        if self.version not in SUPPORTED_VERSIONS:
            return False
        if self.rate_index > 10 or self.channels_minus1 > 7:
            return False
        if not 5 <= self.hop_log2 <= 11:
            return False
        if not 5 <= self.overlap_log2 <= self.hop_log2:
            return False
        N, V = 1 << self.hop_log2, 1 << self.overlap_log2
        if self.short_blocks and not (V == N and N >= 128):
            return False
        if self.quantizer == 3 or self.reserved != 0 or self.mu == 0:
            return False
        return self.delay == N - (N - V) // 2

    def derive(self):
        """Everything a decoder computes from the configuration (§5.1, §6.1, §7)."""
        self.fs = RATES[self.rate_index]
        self.C = self.channels_minus1 + 1
        self.N = 1 << self.hop_log2
        self.V = 1 << self.overlap_log2
        self.s = (self.N - self.V) // 2                                  # §6.2, §6.3
        self.W = 4 << self.min_band                                      # §5.1 (long only)
        self.edges_long = band_edges(self.N, self.fs, self.W)            # §5.1
        self.edges_short = band_edges(self.N // 8, self.fs, 4)
        self.codes = load_codes(self.version)                            # §7.1
        self.R = 8 if self.version >= 4 else 4                           # §7.1, §7.2
        return self


# ---------------------------------------------------------------------------------------------
# §3.3 Metadata block (versions 4 to 7)


def u7(b):
    """§3.3: k bytes of 7 bits each, most significant first (None if a byte is >= 0x80)."""
    v = 0
    for x in b:
        if x >= 0x80:
            return None
        v = v * 128 + x
    return v


def read_metadata_block(B, at):
    """§3.3: returns (metadata, block length) for a valid block at `at`, or (None, reason)."""
    if len(B) < at + 6:
        return None, "truncated"
    L = u7(B[at + 4:at + 6])
    if L is None:
        return None, "length bytes"
    end = at + L + 9
    if end > len(B):
        return None, "truncated"
    crc = u7(B[end - 3:end])
    if crc is None:
        return None, "crc bytes"
    if crc != crc16(B[at:at + 6 + L]):
        return None, "crc"
    if L < 3:
        return None, "length"
    body = B[at + 6:at + 6 + L]
    v = u7(body[0:3])
    if v is None:
        return None, "loudness bytes"
    comments_part = body[3:]
    comments = []
    if comments_part:
        if comments_part[-1] != 0:
            return None, "comments"
        for item in comments_part[:-1].split(b"\x00"):
            eq = item.find(b"=")
            if eq < 1:
                return None, "comments"
            key = item[:eq]
            if any(not (0x20 <= x <= 0x7D) or x == 0x3D for x in key):
                return None, "comments"
            try:
                value = item[eq + 1:].decode("utf-8", errors="strict")
            except UnicodeDecodeError:
                return None, "comments"
            comments.append((key.decode("ascii").upper(), value))
    loudness = None if v == 0 else (v - 1048576) / 256
    return {"comments": comments, "loudness": loudness}, L + 9


# ---------------------------------------------------------------------------------------------
# §5.1 Scalefactor bands

ZWICKER = [0, 100, 200, 300, 400, 510, 630, 770, 920, 1080, 1270, 1480, 1720, 2000, 2320, 2700,
           3150, 3700, 4400, 5300, 6400, 7700, 9500, 12000, 15500, 20500, 27000, 48000]


def band_edges(M, fs, W):
    F = []
    for i in range(27):
        F += [ZWICKER[i], (ZWICKER[i] + ZWICKER[i + 1]) // 2]
    F += [48000]
    edges = [0]
    for f in F[1:]:
        b = (f * 4 * M + fs) // (2 * fs)
        b = ((b + 2) // 4) * 4
        if b >= M:
            break
        if b - edges[-1] >= W:
            edges.append(b)
    edges.append(M)
    return edges


# ---------------------------------------------------------------------------------------------
# §7.1 Canonical Huffman codes

_CODES_CACHE = {}


def canonical(lengths):
    """§7.1: {(length, codeword): symbol} of one code; lengths[sym] = 0 means no code."""
    order = sorted((l, sym) for sym, l in enumerate(lengths) if l > 0)
    table = {}
    code = 0
    prev_len = order[0][0] if order else 0
    for n, (l, sym) in enumerate(order):
        if n > 0:
            code = (code + 1) << (l - prev_len)
        table[(l, code)] = sym
        prev_len = l
    return table


def load_codes(version):
    if version not in _CODES_CACHE:
        with open(os.path.join(BITSTREAMS, CODEBOOK_FILES[version]), encoding="utf-8") as f:
            d = json.load(f)
        spectral = {}
        for k, rows in d["spectral"].items():
            if version < 4:
                rows = [rows]                                            # one row (§7.1)
            # versions 4 to 6: 5 rows (tuple context t); version 7: 5 x 6 rows, row 6*t + pc
            spectral[int(k)] = [canonical(r) for r in rows]
        codes = {
            "book_index": [canonical(r) for r in d["book_index"]],
            "scalefactor": [canonical(r) for r in d["scalefactor"]],
            "spectral": spectral,
        }
        if version >= 6:                                                 # versions 6, 7 (§7.1)
            codes["book_pair"] = [canonical(r) for r in d["book_pair"]]
            codes["ms_group"] = [canonical(r) for r in d["ms_group"]]
        _CODES_CACHE[version] = codes
    return _CODES_CACHE[version]


class BitReader:
    """§2: u(n) reads MSB first; reading past the end makes the frame invalid (§5.3)."""

    def __init__(self, data):
        self.val = int.from_bytes(data, "big")
        self.nbits = 8 * len(data)
        self.pos = 0

    def u(self, n):
        if n == 0:
            return 0
        if self.pos + n > self.nbits:
            raise Invalid("read past the end of the payload")
        self.pos += n
        return (self.val >> (self.nbits - self.pos)) & ((1 << n) - 1)

    def se(self, table):
        """§7.1: read bits one at a time until the code matches a codeword of that length."""
        code = 0
        for l in range(1, 25):
            if self.pos >= self.nbits:
                raise Invalid("Huffman code runs past the payload")
            code = (code << 1) | ((self.val >> (self.nbits - self.pos - 1)) & 1)
            self.pos += 1
            sym = table.get((l, code))
            if sym is not None:
                return sym
        raise Invalid("invalid Huffman code")


# ---------------------------------------------------------------------------------------------
# §5.2 Window groups, units and coding order


def groups_of(group_flags):
    starts = [0]
    for w in range(1, 8):
        if (group_flags >> (7 - w)) & 1:
            starts.append(w)
    lens = [(starts[i + 1] if i + 1 < len(starts) else 8) - starts[i] for i in range(len(starts))]
    return starts, lens


def unit_layout(cfg, is_short, group_flags):
    """§5.2: (G, nbands, start[u], end[u], natural[] or None)."""
    N = cfg.N
    if not is_short:
        e = cfg.edges_long
        nb = len(e) - 1
        return 1, nb, e[:-1], e[1:], None
    e = cfg.edges_short
    nb = len(e) - 1
    g_start, g_len = groups_of(group_flags)
    S = N // 8
    start, end, natural = [], [], []
    pos = 0
    for g in range(len(g_start)):
        for b in range(nb):
            start.append(pos)
            for w in range(g_start[g], g_start[g] + g_len[g]):
                for k in range(e[b], e[b + 1]):
                    natural.append(w * S + k)
                    pos += 1
            end.append(pos)
    return len(g_start), nb, start, end, natural


# ---------------------------------------------------------------------------------------------
# §5.3 Syntax (+ §7.2 contexts, §7.3 spectral books)

SPECTRAL = {1: (4, 1), 2: (4, 2), 3: (2, 4), 4: (2, 7), 5: (2, 12), 6: (2, 16)}   # §7.3 dim, lav
SF_CLASS = [0, 0, 0, 1, 1, 2, 2, 3]                                               # §7.2


def book_row(R, ctx, b, nbands):
    region = min(R - 1, (R * b) // nbands)
    return 8 * region + ctx


def pair_row(R, ctx, pt, b, nbands):
    """§7.2 (versions 6, 7): the row of a `book_pair` symbol, 0..72R-1."""
    region = min(R - 1, (R * b) // nbands)
    return 72 * region + 9 * ctx + pt


def ms_row(prev, n):
    """§7.2 (versions 6, 7): the row of an `ms_group` symbol of n flags, 0..7."""
    return 2 * (n - 1) + prev


def sf_row(pbook, book):
    return 4 * SF_CLASS[pbook] + SF_CLASS[book]


def tuple_context(s):
    if s < 0:
        return 0
    if s == 0:
        return 1
    if s == 1:
        return 2
    if s <= 3:
        return 3
    return 4


def partner_class(pm, qp, t, dim):
    """§7.3 (version 7): the partner class 0..5 of the tuple at position t; pm = pmode(c, u),
    qp = q[c-1], the partner channel's decoded values (escapes included), read only when pm == 2."""
    if pm < 2:
        return pm                        # 0: no partner, 1: the partner unit has no spectral values
    p = 0
    for i in range(dim):
        p += abs(qp[t + i])
    if p == 0:
        return 2
    if p == 1:
        return 3
    if p <= 3:
        return 4
    return 5


def spectral_unit(br, cfg, q, start, end, book, pm=0, qp=None):
    """§7.3: the tuples of one unit into q[start:end]; pm = pmode(c, u) and qp = q[c-1]
    (version 7 only, §5.3)."""
    dim, lav = SPECTRAL[book]
    base = lav + 1
    rows = cfg.codes["spectral"][book]
    s = -1
    for t in range(start, end, dim):
        if cfg.version == 3:
            row = 0
        elif cfg.version <= 6:
            row = tuple_context(s)
        else:
            row = 6 * tuple_context(s) + partner_class(pm, qp, t, dim)
        sym = br.se(rows[row])
        m = [(sym // base ** (dim - 1 - i)) % base for i in range(dim)]
        sign = [br.u(1) if m[i] != 0 else 0 for i in range(dim)]
        if book == 6:
            for i in range(dim):
                if m[i] == 16:                                           # escape, Exp-Golomb 2
                    nz = 0
                    while br.u(1) == 0:
                        nz += 1
                        if nz > 14:
                            raise Invalid("escape too long")
                    m[i] = ((1 << (nz + 2)) | br.u(nz + 2)) - 4 + 16
                    if m[i] > 8191:
                        raise Invalid("escape above 8191")
        for i in range(dim):
            q[t + i] = -m[i] if m[i] != 0 and sign[i] else m[i]
        s = sum(m)


def partner(books, c, u):
    """§5.3 (versions 6, 7): the book of unit u in channel c - 1 for an odd c (the pair's second
    channel; 0 at or beyond that channel's max_band), 8 for an even c (a pair's first channel or
    the unpaired last channel)."""
    return books[c - 1][u] if c % 2 == 1 else 8


def pmode(books, c, u):
    """§5.3 (version 7): the partner mode of unit u's spectral values: 0 for an even c; for an
    odd c, 2 when partner(c, u) is 1..6 (the same unit of channel c - 1 has spectral values, read
    before channel c's), 1 otherwise (0 or 7)."""
    if c % 2 == 0:
        return 0
    return 2 if 1 <= partner(books, c, u) <= 6 else 1


def audio_payload(P, cfg):
    """§5.3: parse one audio payload; raises Invalid for an invalid frame."""
    br = BitReader(P)
    C = cfg.C
    is_short = br.u(1)
    left_short = br.u(1)
    right_short = br.u(1)
    group_flags = br.u(7) if is_short else 0
    if (is_short or left_short or right_short) and not cfg.short_blocks:
        raise Invalid("short window without short_blocks")
    if is_short and not (left_short and right_short):
        raise Invalid("short frame without short slopes")
    G, nbands, start, end, natural = unit_layout(cfg, is_short, group_flags)
    nunits = G * nbands
    max_band = []
    for c in range(C):
        mb = br.u(6)
        if mb > nbands:
            raise Invalid("max_band > nbands")
        max_band.append(mb)
    ms = []
    for p in range(C // 2):
        mode = br.u(2)
        if mode == 3:
            raise Invalid("ms_mode 3")
        flags = [1 if mode == 1 else 0] * nunits
        if mode == 2:
            units = [g * nbands + b for g in range(G)
                     for b in range(max(max_band[2 * p], max_band[2 * p + 1]))]
            if cfg.version <= 5:
                for u in units:
                    flags[u] = br.u(1)
            else:                                        # versions 6, 7: groups of up to 4 flags
                prev = 0
                for k in range(0, len(units), 4):
                    n = min(4, len(units) - k)
                    v = br.se(cfg.codes["ms_group"][ms_row(prev, n)])
                    if v >= 1 << n:
                        raise Invalid("ms_group symbol out of range")
                    for j in range(n):
                        flags[units[k + j]] = (v >> (n - 1 - j)) & 1   # first flag = MSB
                    prev = flags[units[k + n - 1]]
        ms.append(flags)
    books, sfs, qs = [], [], []
    for c in range(C):
        book = [0] * nunits
        sf = [0] * nunits
        q = [0] * cfg.N
        units = [g * nbands + b for g in range(G) for b in range(max_band[c])]
        ctx = 0
        k = 0
        while k < len(units):
            u = units[k]
            b = u % nbands
            if cfg.version >= 6 and k + 1 < len(units):    # two units, one symbol
                v = br.se(cfg.codes["book_pair"][pair_row(cfg.R, ctx, partner(books, c, u), b,
                                                          nbands)])
                if v >= 64:
                    raise Invalid("book_pair symbol out of range")
                book[u] = v // 8
                book[units[k + 1]] = v % 8
                ctx = v % 8
                k += 2
            else:                                          # one unit (from version 6: odd last)
                book[u] = br.se(cfg.codes["book_index"][book_row(cfg.R, ctx, b, nbands)])
                ctx = book[u]
                k += 1
        first = True
        prev = pbook = 0
        for g in range(G):
            for b in range(max_band[c]):
                u = g * nbands + b
                if book[u] == 0:
                    continue
                if first:
                    sf[u] = br.u(8)
                    first = False
                else:
                    sf[u] = prev + br.se(cfg.codes["scalefactor"][sf_row(pbook, book[u])]) - 60
                    if not 0 <= sf[u] <= 255:
                        raise Invalid("scalefactor out of range")
                prev = sf[u]
                pbook = book[u]
        for g in range(G):
            for b in range(max_band[c]):
                u = g * nbands + b
                if 1 <= book[u] <= 6:
                    pm = pmode(books, c, u) if cfg.version >= 7 else 0
                    spectral_unit(br, cfg, q, start[u], end[u], book[u], pm,
                                  qs[c - 1] if pm == 2 else None)
        books.append(book)
        sfs.append(sf)
        qs.append(q)
    # the rest of the payload is ignored (§5.3)
    return {
        "is_short": is_short, "left_short": left_short, "right_short": right_short,
        "start": start, "end": end, "natural": natural, "nunits": nunits,
        "ms": ms, "book": books, "sf": sfs, "q": qs,
    }


# ---------------------------------------------------------------------------------------------
# §8 Reconstruction


def delta(sf):
    """§8.1"""
    return math.pow(2.0, (sf - 100) * 0.25)


class Xorshift32:
    """§8.4: reseeded at every audio frame from its frame index."""

    def __init__(self, i):
        z = ((i % 2 ** 32) * 0x9E3779B9 + 0x6A09E667) % 2 ** 32
        self.z = 1 if z == 0 else z

    def next(self):
        z = self.z
        z ^= (z << 13) & 0xFFFFFFFF
        z ^= z >> 17
        z ^= (z << 5) & 0xFFFFFFFF
        self.z = z
        return z


def dequantize(cfg, sf, k):
    """§8.2: the magnitude r for |q| = k in a unit of scalefactor sf."""
    d = delta(sf)
    if cfg.quantizer == 0:
        return d * k
    if cfg.quantizer == 2:
        return d * math.pow(k, 4.0 / 3.0)
    mu = float(cfg.mu)
    return d * (256.0 / mu) * (math.exp(math.log(1.0 + mu) * k / 256.0) - 1.0)


def reconstruct(cfg, fr, index):
    """§8.1-§8.5 and the short-frame reordering of §5.2: X[c] in natural order (binary64)."""
    N, C = cfg.N, cfg.C
    start, end = fr["start"], fr["end"]
    rng = Xorshift32(index)                                              # §8.4 reseed
    x = []
    for c in range(C):
        xc = [0.0] * N
        book, sf, q = fr["book"][c], fr["sf"][c], fr["q"][c]
        for u in range(fr["nunits"]):
            bk = book[u]
            s, e = start[u], end[u]
            if 1 <= bk <= 6:                                             # §8.2
                cache = {}
                for i in range(s, e):
                    k = abs(q[i])
                    r = cache.get(k)
                    if r is None:
                        r = cache[k] = dequantize(cfg, sf[u], k)
                    xc[i] = -r if q[i] < 0 else r
            elif bk == 7:                                                # §8.4 noise
                acc = 0.0
                for j in range(s, e):
                    r = rng.next() / 2147483648.0 - 1.0
                    xc[j] = r
                    acc += r * r
                g = delta(sf[u]) * math.sqrt(float(e - s) / max(acc, 1e-30))
                for j in range(s, e):
                    xc[j] = xc[j] * g
            # §8.3: book 0 and units at or beyond max_band stay 0
        x.append(xc)
    for p in range(C // 2):                                              # §8.5 mid/side
        a, b = x[2 * p], x[2 * p + 1]
        for u, flag in enumerate(fr["ms"][p]):
            if flag:
                for j in range(start[u], end[u]):
                    m, t = a[j], b[j]
                    a[j] = (m + t) * 0.7071067811865476
                    b[j] = (m - t) * 0.7071067811865476
    X = np.array(x, dtype=np.float64).reshape(C, N)
    if fr["natural"] is not None:                                        # §5.2 reorder
        nat = np.empty_like(X)
        nat[:, np.array(fr["natural"])] = X
        X = nat
    return X


# ---------------------------------------------------------------------------------------------
# §6.1 Windows

_SLOPES = {}


def bessel_i0(x):
    """I0 by its power series sum (x/2)^(2k) / (k!)^2 (§11 allows any accurate I0)."""
    term = 1.0
    total = 1.0
    y = (x / 2.0) * (x / 2.0)
    k = 1
    while True:
        term = term * y / (k * k)
        new = total + term
        if new == total:
            return total
        total = new
        k += 1


def slope(S, shape):
    """§6.1: w_S(n), n = 0..S-1, binary64."""
    key = (S, shape)
    if key not in _SLOPES:
        pi = math.pi
        if shape == 0:
            w = [math.sin(pi / (2 * S) * (n + 0.5)) for n in range(S)]
        else:
            beta = pi * 4.0
            h = S / 2
            i0b = bessel_i0(beta)
            K = []
            for j in range(S + 1):
                t = (j - h) / h
                K.append(bessel_i0(beta * math.sqrt(1 - t * t)) / i0b)
            cs = []
            acc = 0.0
            for j in range(S + 1):
                acc = acc + K[j]
                cs.append(acc)
            w = [math.sqrt(cs[n] / cs[S]) for n in range(S)]
        _SLOPES[key] = np.array(w, dtype=np.float64)
    return _SLOPES[key]


def block_window(cfg, left_short, right_short):
    """§6.1: the 2N-value window W of a long frame."""
    N = cfg.N
    Lw = N // 8 if left_short else cfg.V
    Rw = N // 8 if right_short else cfg.V
    a = N // 2 - Lw // 2
    b = 3 * N // 2 - Rw // 2
    W = np.zeros(2 * N)
    W[a:a + Lw] = slope(Lw, cfg.window_shape)
    W[a + Lw:b] = 1.0
    W[b:b + Rw] = slope(Rw, cfg.window_shape)[::-1]                     # w_Rw(b + Rw - 1 - i)
    return W


def short_window(cfg):
    S = cfg.N // 8
    w = slope(S, cfg.window_shape)
    return np.concatenate([w, w[::-1]])


# ---------------------------------------------------------------------------------------------
# §6.2.1 The reference IMDCT algorithm (complex numbers as pairs of binary64 arrays)

_IMDCT_TABLES = {}


def imdct_tables(M):
    if M not in _IMDCT_TABLES:
        pi = math.pi
        h = M // 2
        pre_re, pre_im, post_re, post_im = [], [], [], []
        for m in range(h):
            t = (pi * (4 * m + 1)) / (4 * M)
            pre_re.append(math.cos(t))
            pre_im.append(-math.sin(t))
            t = (pi * m) / M
            r = math.sqrt(2.0 / M)
            post_re.append(math.cos(t) * r)
            post_im.append(-math.sin(t) * r)
        tw_re, tw_im = [], []
        for k in range(max(h // 2, 1)):
            t = (2 * pi * k) / h
            tw_re.append(math.cos(t))
            tw_im.append(-math.sin(t))
        bits = h.bit_length() - 1
        rev = [int(format(i, "0%db" % bits)[::-1], 2) if bits else 0 for i in range(h)]
        f = lambda v: np.array(v, dtype=np.float64)                     # noqa: E731
        _IMDCT_TABLES[M] = (f(pre_re), f(pre_im), f(post_re), f(post_im), f(tw_re), f(tw_im),
                            np.array(rev, dtype=np.int64))
    return _IMDCT_TABLES[M]


def cmul(a, b, c, d):
    """(a, b) * (c, d) = (a*c - b*d, a*d + b*c), each operation rounded separately."""
    ac = a * c
    bd = b * d
    ad = a * d
    bc = b * c
    return ac - bd, ad + bc


def imdct(x):
    """§6.2.1: M binary64 coefficients -> 2M values."""
    M = len(x)
    h = M // 2
    pre_re, pre_im, post_re, post_im, tw_re, tw_im, rev = imdct_tables(M)
    Are, Aim = cmul(x[0::2], x[::-1][0::2], pre_re, pre_im)             # (x[2m], x[M-1-2m])
    Are = Are[rev]                                                       # bit-reversal swaps
    Aim = Aim[rev]
    size = 2
    while size <= h:
        half = size // 2
        step = h // size
        ure = Are.reshape(-1, size)[:, :half]
        uim = Aim.reshape(-1, size)[:, :half]
        vre, vim = cmul(Are.reshape(-1, size)[:, half:], Aim.reshape(-1, size)[:, half:],
                        tw_re[0:half * step:step], tw_im[0:half * step:step])
        Are = np.concatenate([ure + vre, ure - vre], axis=1).reshape(-1)
        Aim = np.concatenate([uim + vim, uim - vim], axis=1).reshape(-1)
        size *= 2
    Yre, Yim = cmul(Are, Aim, post_re, post_im)
    U = np.empty(M)
    U[0::2] = Yre                                                        # U[2m] = Y.re
    U[::-1][0::2] = -Yim                                                 # U[M-1-2m] = -Y.im
    y = np.empty(2 * M)
    y[0:h] = U[h:M]                                                      # y[i] = U[h+i]
    y[h:M] = -U[::-1][0:h]                                               # y[h+i] = -U[M-1-i]
    y[M:M + h] = -U[h - 1::-1] if h > 0 else U[0:0]                      # y[M+i] = -U[h-1-i]
    y[M + h:2 * M] = -U[0:h]                                             # y[3h+i] = -U[i]
    return y


# ---------------------------------------------------------------------------------------------
# §4.3 Decoding a byte stream, §6.2 synthesis, §6.3 time line, §12 damaged input


class Decoder:
    def __init__(self, B, warn=None):
        self.B = bytes(B)
        self.warn = warn or (lambda msg: None)
        self.cfg = None
        self.total = None
        self.from_header = False
        self.started = False
        self.next_seq = None
        self.next_index = None
        self.pos = 0
        self.ola = None
        self.last_end = 0
        self.held = None
        self.out = []                     # list of (n, C) float32 arrays
        self.nout = 0                     # samples per channel in self.out
        self.non_normative = []           # output sample ranges [first, end) of §11 (concealed)
        self.after_gap = False
        self.metadata = None
        self.metadata_damaged = None
        # concealment state (§12, not normative)
        self.last_long_X = None
        self.last_right_short = 0
        self.lost_run = 0
        self.conceal_rng = np.random.default_rng(0)

    # -- configuration -------------------------------------------------------------------------
    def set_cfg(self, raw):
        """Adopt a configuration and rebuild what derives from it: N, V, C, fs, delay, band
        tables, windows, codes, and the overlap buffer (C x 2N zeros; §4.3).  `total` is kept."""
        if self.cfg is not None and self.cfg.raw == bytes(raw):
            return
        self.cfg = Config(raw).derive()
        self.ola = np.zeros((self.cfg.C, 2 * self.cfg.N))
        self.last_long_X = None

    # -- §6.3 ------------------------------------------------------------------------------------
    def emit(self, samples, concealed=False):
        """§6.3; ``concealed``: the samples depend on concealment (§11's non_normative)."""
        N = self.cfg.N
        first = max(0, -self.pos)                                        # positions p >= 0
        S = samples[first:]
        Spos = self.pos + first
        if self.total is not None:
            keep = max(0, min(len(S), self.total - Spos))
            if keep:
                self.output(S[:keep], concealed)
        else:
            if self.held is not None:
                self.output(self.held[1], self.held[2])
            self.held = (Spos, S, concealed)
        self.pos += N

    def release(self):
        if self.held is not None:
            Spos, S, concealed = self.held
            if self.total is not None:
                S = S[:max(0, min(len(S), self.total - Spos))]
            if len(S):
                self.output(S, concealed)
            self.held = None

    def output(self, S, concealed):
        """Append to the output; record the output sample numbers of concealed samples (§11)."""
        if not len(S):
            return
        if concealed:
            if self.non_normative and self.non_normative[-1][1] == self.nout:
                self.non_normative[-1][1] += len(S)
            else:
                self.non_normative.append([self.nout, self.nout + len(S)])
        self.out.append(S)
        self.nout += len(S)

    # -- §6.2 ------------------------------------------------------------------------------------
    def synthesize(self, X, is_short, left_short, right_short):
        cfg = self.cfg
        N, C = cfg.N, cfg.C
        out = np.empty((N, C), dtype=np.float32)
        if is_short:
            S = N // 8
            Ws = short_window(cfg)
        else:
            W = block_window(cfg, left_short, right_short)
        for c in range(C):
            ola = self.ola[c]
            if is_short:
                for j in range(8):
                    y = imdct(X[c, j * S:j * S + S])
                    o = N // 2 - N // 16 + j * S
                    ola[o:o + 2 * S] += y * Ws
            else:
                y = imdct(X[c])
                ola += y * W
            v = ola[cfg.s:cfg.s + N]
            out[:, c] = np.clip(v, -F32MAX, F32MAX).astype(np.float32)  # binary32, nearest-even
            ola[0:N] = ola[N:2 * N]
            ola[N:2 * N] = 0.0
        return out

    # -- §12 -------------------------------------------------------------------------------------
    def conceal(self):
        """Not normative (§12): the recommended concealment, approximately."""
        self.lost_run += 1
        cfg = self.cfg
        g = 0.6 ** self.lost_run
        if self.last_long_X is None or g < 1e-9:
            X = np.zeros((cfg.C, cfg.N))
        else:
            signs = np.where(self.conceal_rng.random(self.last_long_X.shape) < 0.5, -1.0, 1.0)
            X = self.last_long_X * signs * g
        out = self.synthesize(X, 0, self.last_right_short, 0)
        self.last_right_short = 0
        return out

    def handle_gap(self, seq, start):
        gap = (seq - self.next_seq) % 256
        if gap == 0:
            return
        if self.cfg.version >= 8:                                        # frames in groups
            free, per = 16, 2
        else:
            free, per = 8, 8
        n = min(gap, free + max(0, start - self.last_end) // per)
        for _ in range(n):
            self.emit(self.conceal(), concealed=True)
        self.after_gap = True                    # §11: the next frame's N samples too
        self.pos += (gap - n) * self.cfg.N

    # -- §4.3 ------------------------------------------------------------------------------------
    def decode(self):
        B = self.B
        p = 0
        if B[0:4] == b"PACD":
            if len(B) < 20:
                raise DecodeError("stream header is truncated")
            header_cfg = False
            if crc16(B[0:18]) == u16(B[18:20]):
                if B[4] not in SUPPORTED_VERSIONS:
                    raise DecodeError(unsupported(B[4]))
                c = Config(B[4:12])
                if c.valid():
                    self.set_cfg(B[4:12])
                    t = u48(B[12:18])
                    self.total = None if t == 2 ** 48 - 1 else t
                    self.from_header = True
                    header_cfg = True
                else:
                    self.warn("stream header has an invalid config block: skipped")
            else:
                self.warn("stream header CRC mismatch: skipped")
            p = 20
            if header_cfg and self.cfg.version >= 4 and B[20:24] == b"PACM":        # §3.3
                md, n = read_metadata_block(B, 20)
                if md is not None:
                    self.metadata = md
                    p = 20 + n
                else:
                    self.metadata_damaged = n
                    self.warn("metadata block damaged (%s)" % n)
        elif SYNC not in B:
            raise DecodeError("not a pacodec stream")
        while p < len(B):
            if B[p:p + 2] != SYNC:
                p = B.find(SYNC, p)
                if p < 0:
                    p = len(B)
                continue
            if p + 5 > len(B):
                p += 1
                continue
            ftype = B[p + 2] >> 6
            L = (B[p + 2] & 63) << 8 | B[p + 3]
            seq = B[p + 4]
            end = p + 5 + L + 2
            if end > len(B) or crc16(B[p + 2:end - 2]) != u16(B[end - 2:end]):
                p += 1                                                   # damaged (§4.1)
                continue
            if self.handle_frame(ftype, seq, B[p + 5:end - 2], p, end) == "DAMAGED":
                p += 1
                continue
            if ftype == 2:
                break
            p = end
        if self.cfg is None:
            raise DecodeError("no pacodec stream found")
        self.release()
        C = self.cfg.C
        pcm = np.concatenate(self.out) if self.out else np.zeros((0, C), dtype=np.float32)
        return pcm, self.cfg.fs

    def handle_frame(self, ftype, seq, P, start, end):
        if ftype == 2:                                                   # end of stream
            if len(P) != 6:
                return "DAMAGED"
            n = u48(P)
            if self.total is not None and n != self.total:
                return "DAMAGED"
            self.total = n
            self.release()
            if self.started:
                self.handle_gap(seq, start)
            return "OK"
        if ftype == 3:                                                   # audio group (§4)
            if self.cfg is None:
                return "OK"                                              # not joined yet
            if self.cfg.version < 8:
                return "DAMAGED"
            try:
                members = group_members(P)
            except Invalid as e:
                self.warn("group at byte %d: %s" % (start, e))
                return "DAMAGED"
            return self.handle_audio(seq, members, start, end, None)
        index = None
        if ftype == 1:                                                   # audio + config
            if len(P) < 12:
                return "DAMAGED"
            if P[0] not in SUPPORTED_VERSIONS:
                if self.cfg is None:
                    raise DecodeError(unsupported(P[0]))
                return "DAMAGED"
            if not Config(P[0:8]).valid():
                return "DAMAGED"
            if self.cfg is not None and bytes(P[0:8]) != self.cfg.raw:
                if not (self.from_header and not self.started):
                    return "DAMAGED"
                self.warn("the header's config contradicts the in-band one")
            index = u32(P[8:12])
            if index % 256 != seq:
                return "DAMAGED"
            self.set_cfg(P[0:8])
            self.from_header = False
            P = P[12:]
            if not self.started:
                self.next_index = index + 1
                self.next_seq = (seq + 1) % 256
        if self.cfg is None:
            return "OK"                                                  # not joined yet
        return self.handle_audio(seq, [P], start, end, index)

    def handle_audio(self, seq, members, start, end, index):
        """§4.3 handle_audio: one audio frame, or the members of a group (decoded whole or not
        at all: every member is parsed before any is synthesised)."""
        if index is None:
            if self.next_index is None:                                  # cfg is the header's
                index = seq
            else:
                index = self.next_index + ((seq - self.next_seq) % 256)
        parsed = []
        for k, P in enumerate(members):
            try:
                fr = audio_payload(P, self.cfg)
                X = reconstruct(self.cfg, fr, index + k)
            except Invalid as e:
                self.warn("frame at byte %d: invalid payload (%s)" % (start, e))
                return "DAMAGED"
            parsed.append((fr, X))
        if not self.started:
            self.started = True
            self.pos = index * self.cfg.N - self.cfg.delay
        else:
            self.handle_gap(seq, start)
        for k, (fr, X) in enumerate(parsed):
            self.next_seq = (seq + k + 1) % 256
            self.next_index = index + k + 1
            self.last_end = end
            out = self.synthesize(X, fr["is_short"], fr["left_short"], fr["right_short"])
            if not fr["is_short"]:
                self.last_long_X = X
            self.last_right_short = fr["right_short"]
            self.lost_run = 0
            self.emit(out, concealed=self.after_gap)
            self.after_gap = False
        return "OK"


def group_members(P):
    """§4, audio group: the member payloads of a group's payload P, or Invalid."""
    L = len(P)
    if L == 0:
        raise Invalid("empty group")
    n = P[0]
    if n < 2 or n > 16:
        raise Invalid("group count %d" % n)
    p = 1
    lengths = []
    for _ in range(n - 1):
        length = 0
        while True:
            if p >= L:
                raise Invalid("group lengths run past the payload")
            b = P[p]
            p += 1
            length += b
            if b < 255:
                break
        lengths.append(length)
    last = L - p - sum(lengths)
    if last < 0:
        raise Invalid("group lengths overrun the payload")
    lengths.append(last)
    members = []
    for length in lengths:
        members.append(P[p:p + length])
        p += length
    return members


def unsupported(v):
    return "unsupported pacodec format version %d (this decoder reads version %s)" % (
        v, ", ".join(str(x) for x in SUPPORTED_VERSIONS))


def decode_bytes(B, warn=None):
    """Decode a whole byte stream (§4.3): returns (samples as (n, C) float32, fs, decoder).

    ``decoder.non_normative`` lists the output sample ranges ``[first, end)`` that depend on
    concealment (§11, §12): the concealed frames of every gap and the next accepted frame."""
    d = Decoder(B, warn)
    pcm, fs = d.decode()
    return pcm, fs, d


def write_float_wav(path, pcm, fs):
    """§11: WAV of 32-bit IEEE float samples (format tag 3), channels interleaved: RIFF header,
    a 16-byte `fmt ` chunk, a `fact` chunk (samples per channel) and the `data` chunk."""
    n, C = pcm.shape
    data = np.ascontiguousarray(pcm, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, C, fs, fs * 4 * C, 4 * C, 32)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"fact" + struct.pack("<II", 4, n)
            + b"data" + struct.pack("<I", len(data)) + data)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: independent_decoder.py IN.pac OUT.wav", file=sys.stderr)
        return 2
    try:
        with open(argv[0], "rb") as f:
            B = f.read()
        pcm, fs, _ = decode_bytes(B, warn=lambda m: print("warning: " + m, file=sys.stderr))
        write_float_wav(argv[1], pcm, fs)
    except (OSError, DecodeError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
