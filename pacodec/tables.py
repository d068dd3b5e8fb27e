"""Normative tables: scalefactor band edges and Huffman codebooks.

Band edges are computed by the integer algorithm of FORMAT.md §5 (no floating point, so every
decoder derives the same edges).  The Huffman code lengths are trained on real recordings by
``tools/train_huffman.py``; the normative files are ``bitstreams/codebooks_v7.json`` (version 7),
``bitstreams/codebooks_v6.json`` (version 6, frozen),
``bitstreams/codebooks.json`` (versions 4, 5, frozen) and
``bitstreams/codebooks_v3.json`` (version 3, frozen), shipped as byte-identical copies in
``pacodec/data/`` (loaded with ``importlib.resources``; canonical codes are rebuilt from the
lengths, FORMAT.md §7; tests/test_conformance.py checks the copies).  The code *contexts* of each
version -- which row of which code a symbol uses -- are below.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np

from ._jit import njit

__all__ = [
    "CRITICAL_BAND_EDGES_HZ", "band_edges", "band_centres_hz", "load_codebooks",
    "SPECTRAL_BOOKS", "NOISE_BOOK", "N_BOOKS", "ESC_BOOK", "ESC_VALUE", "MAX_QUANT", "SF_DELTA_MAX",
    "BOOK_REGIONS", "TUPLE_CONTEXTS", "SF_CLASS", "SF_CLASSES", "CONTEXTS", "CTX", "context_params",
    "n_rows", "book_row", "sf_row", "spectral_row", "book_row_v", "sf_row_v", "spectral_row_v",
    "tuple_context", "ROW_SF", "ROW_SPECTRAL", "N_SF_ROWS", "NO_PARTNER", "PAIR_ROWS_PER_REGION",
    "MS_GROUP", "N_MS_ROWS", "pair_row_v", "ms_row_v", "pair_row", "ms_row", "ROW_PAIR", "ROW_MS",
    "PARTNER_CLASSES", "PARTNER_NONE", "PARTNER_EMPTY", "PARTNER_CODED", "partner_class",
    "spectral_partner", "book_partner",
]

#: Zwicker's critical band edges in Hz (the Bark scale).  FORMAT.md §5.
CRITICAL_BAND_EDGES_HZ = (0, 100, 200, 300, 400, 510, 630, 770, 920, 1080, 1270, 1480, 1720, 2000,
                          2320, 2700, 3150, 3700, 4400, 5300, 6400, 7700, 9500, 12000, 15500,
                          20500, 27000, 48000)

#: Spectral codebooks: book id -> (dimension, largest magnitude it codes directly).
#: Book 6 codes 0..15 directly and 16 is the escape symbol (Exp-Golomb suffix, FORMAT.md §7.3).
SPECTRAL_BOOKS = {1: (4, 1), 2: (4, 2), 3: (2, 4), 4: (2, 7), 5: (2, 12), 6: (2, 16)}
ESC_BOOK = 6
ESC_VALUE = 16
NOISE_BOOK = 7          # unit is substituted by noise of the signalled RMS
N_BOOKS = 8             # book ids 0..7; 0 = all-zero unit
MAX_QUANT = 8191        # largest quantized magnitude the format allows
SF_DELTA_MAX = 60       # scalefactor deltas are coded in -60..60


@lru_cache(maxsize=None)
def band_edges(samplerate: int, size: int, min_width: int = 4) -> np.ndarray:
    """Scalefactor band edges (bins) of a transform with ``size`` coefficients at ``samplerate``.

    Half-critical-band edges (each critical band split at its integer midpoint) are mapped to bins
    by rounding ``f * 2 * size / samplerate`` half up, snapped to multiples of 4 bins, and an
    edge is kept only ``min_width`` bins or more above the last one kept; closed by ``size``.
    ``min_width`` is :attr:`StreamConfig.long_band_width <pacodec.config.StreamConfig.long_band_width>`
    for a long transform (4, 8, 16 or 32: the config's ``min_band``, version 5) and 4 for a
    short one (FORMAT.md §5.1).
    """
    half = []
    e = CRITICAL_BAND_EDGES_HZ
    for i in range(len(e) - 1):
        half.append(e[i])
        half.append((e[i] + e[i + 1]) // 2)
    half.append(e[-1])
    edges = [0]
    for f in half[1:]:
        b = (f * 4 * size + samplerate) // (2 * samplerate)      # round(f*2*size/fs)
        b = ((b + 2) // 4) * 4                                    # snap to a multiple of 4
        if b >= size:
            break
        if b - edges[-1] >= min_width:
            edges.append(b)
    # every edge is a multiple of 4 below ``size`` (a power of two >= 16), so the last band is
    # at least 4 bins wide (it may be narrower than ``min_width``): no edge is ever dropped
    # (FORMAT.md §5.1)
    edges.append(size)
    return np.asarray(edges, dtype=np.int64)


@lru_cache(maxsize=None)
def band_centres_hz(samplerate: int, size: int, min_width: int = 4) -> np.ndarray:
    e = band_edges(samplerate, size, min_width)
    return (e[:-1] + e[1:]) * 0.5 * samplerate / (2.0 * size)


def _canonical_rows(lengths: np.ndarray, maxlen: int):
    """Canonical Huffman codes (FORMAT.md §7.1) of every row of ``lengths`` (rows x alphabet, 0 =
    the symbol has no code) at once, with the arrays of canonical decoding: per row and length
    the count of codewords, the first codeword and the index of its symbol in ``symbols`` (the
    symbols sorted by (length, symbol)); beyond a row's longest codeword all three are 0.  The
    codeword of the ``r``-th symbol of length ``l`` is ``first[l] + r``, ``first[l] = (first[l-1]
    + count[l-1]) << 1``: the ``canonical`` procedure of §7.1, without a loop over symbols."""
    n, width = lengths.shape
    rows = np.arange(n)[:, None]
    count = np.bincount((rows * (maxlen + 1) + lengths).ravel(),
                        minlength=n * (maxlen + 1)).reshape(n, maxlen + 1).astype(np.int64)
    count[:, 0] = 0
    first = np.zeros((n, maxlen + 1), dtype=np.int64)
    offset = np.zeros((n, maxlen + 1), dtype=np.int64)
    code = np.zeros(n, dtype=np.int64)
    idx = np.zeros(n, dtype=np.int64)
    for l in range(1, maxlen + 1):
        code <<= 1
        first[:, l] = code
        offset[:, l] = idx
        code += count[:, l]
        idx += count[:, l]
    beyond = np.arange(maxlen + 1)[None, :] > lengths.max(axis=1)[:, None]
    first[beyond] = 0
    offset[beyond] = 0
    key = np.where(lengths > 0, lengths * width + np.arange(width)[None, :], (maxlen + 1) * width)
    order = np.argsort(key, axis=1, kind="stable")
    used = np.arange(width)[None, :] < np.count_nonzero(lengths, axis=1)[:, None]
    symbols = np.where(used, order, 0)
    ls = np.take_along_axis(lengths, order, axis=1)
    pos = np.arange(width)[None, :]
    cw = first[rows, ls] + pos - offset[rows, ls]
    codes = np.zeros((n, width), dtype=np.int64)
    codes[np.broadcast_to(rows, (n, width))[used], order[used]] = cw[used]
    return codes, count, first, offset, symbols


#: codewords up to this many bits are decoded with one look-up (:func:`decode_lut`); at most 9
#: (the look-up reads two bytes)
LUT_BITS = 8


def decode_lut(count, first, offset, symbols):
    """``lut[row, p]`` = ``(symbol << 5) | length`` of the codeword of ``row`` that the
    :data:`LUT_BITS`-bit value ``p`` begins with, or 0 where the bit-by-bit canonical decode
    (:func:`~pacodec.huffman.get_symbol`) would read more than LUT_BITS bits or find an invalid
    symbol index: those are left to it.  So a hit returns exactly what the bit-by-bit decode
    returns, after the same number of bits."""
    rows, width = symbols.shape
    lut = np.zeros((rows, 1 << LUT_BITS), dtype=np.int64)
    done = np.zeros(lut.shape, dtype=bool)
    p = np.arange(1 << LUT_BITS, dtype=np.int64)[None, :]
    for l in range(1, min(LUT_BITS, count.shape[1] - 1) + 1):
        d = (p >> (LUT_BITS - l)) - first[:, l:l + 1]
        hit = ~done & (d >= 0) & (d < count[:, l:l + 1])
        i = offset[:, l:l + 1] + d
        ok = hit & (i >= 0) & (i < width)
        r, c = np.nonzero(ok)
        lut[r, c] = (symbols[r, i[r, c]] << 5) | l
        done |= hit
    return lut.astype(np.int16)             # (288 << 5) | 24 at most


class CodebookSet:
    """All the codebooks of a format version packed into 2-D arrays (row = code) for the kernels,
    with ``ctx``, the version's context parameters (:func:`context_params`).  ``rows``: each
    code's list of lengths (FORMAT.md §7.1's lists, in row order)."""

    MAXLEN = 24
    BLOCK = 64          # rows packed at a time

    def __init__(self, rows: list, ctx: np.ndarray):
        self.ctx = ctx
        n = len(rows)
        width = max(len(r) for r in rows)
        L = self.MAXLEN
        # the wide arrays (rows x the largest alphabet, 289) in the narrowest types their
        # values fit: versions 6 and 7 have 700-850 rows, 8 MB as int64 (a decoder's or
        # encoder's whole RSS is about 100 MB); numba widens them to int64 in arithmetic
        self.lengths = np.zeros((n, width), dtype=np.int16)         # 0..24
        for i, r in enumerate(rows):
            self.lengths[i, :len(r)] = r
        if self.lengths.max() > L or self.lengths.min() < 0:
            raise ValueError("code length outside the format's limits")
        self.codes = np.zeros((n, width), dtype=np.int32)           # < 2^24
        self.symbols = np.zeros((n, width), dtype=np.int16)         # < 289
        self.count = np.zeros((n, L + 1), dtype=np.int64)
        self.first = np.zeros((n, L + 1), dtype=np.int64)
        self.offset = np.zeros((n, L + 1), dtype=np.int64)
        self.lut = np.zeros((n, 1 << LUT_BITS), dtype=np.int16)
        # a block of rows at a time: the int64 temporaries of a whole set would raise the
        # process's peak memory by more than the tables themselves
        for a in range(0, n, self.BLOCK):
            b = min(n, a + self.BLOCK)
            codes, count, first, offset, symbols = _canonical_rows(
                self.lengths[a:b].astype(np.int64), L)
            self.codes[a:b] = codes
            self.symbols[a:b] = symbols
            self.count[a:b] = count
            self.first[a:b] = first
            self.offset[a:b] = offset
            self.lut[a:b] = decode_lut(count, first, offset, symbols)

    def arrays(self):
        return self.lengths, self.codes, self.count, self.first, self.offset, self.symbols


#: Code contexts (FORMAT.md §7.2).  A book index is coded with the row of the previous unit's book
#: and the *region* of its band, ``min(R - 1, R * b // nbands)``; a scalefactor delta with the row of
#: the pair (class of the previous coded unit's book, class of this unit's book), classes by
#: SF_CLASS; a spectral tuple (version 4) with a row of its book chosen by the magnitudes of the
#: tuple before it in the unit (:func:`tuple_context`).  What differs between versions is held in
#: a small parameter array a kernel takes (``ctx``): [R, first scalefactor row, first spectral row,
#: T spectral rows per book].  Row layout: 8R book-index rows (``8 * region + previous book``),
#: SF_CLASSES^2 scalefactor rows, then T rows per spectral book 1..6.
SF_CLASS = np.array([0, 0, 0, 1, 1, 2, 2, 3], dtype=np.int64)    # book -> class (book 0 unused)
SF_CLASSES = 4
N_SF_ROWS = SF_CLASSES * SF_CLASSES
#:
#: Version 6 adds two codes after those rows: book indices are coded two units at a time (one
#: ``book_pair`` symbol ``8 * first + second``) with a row of the region, the previous book and
#: the *partner* -- the book of the same unit in the other channel of a channel pair, already
#: decoded (:data:`NO_PARTNER` for a pair's first channel and an unpaired one); a channel's last
#: unit, when its count is odd, keeps the single ``book_index`` code.  M/S flags are coded four at
#: a time (``ms_group``), with a row of the group's length and the flag before it (§5.3, §7.2).
#: ``ctx`` carries the first row of each (0: the version has no such code).
#:
#: Version 7 adds the *partner* to the spectral rows too: a tuple of a pair's second channel is
#: coded with a row of its book, its tuple context and :func:`partner_class` -- the magnitudes of
#: the first channel's tuple at the same positions (P = 6 classes; 0, "no partner", for a first or
#: unpaired channel: versions 4-6's rows are those of class 0).
#: version -> (regions R, spectral contexts T, codebook file in pacodec/data and bitstreams/,
#: paired side codes, spectral partner classes P); version 5 has version 4's codes and contexts
#: (it differs in the band layout, §5.1)
CONTEXTS = {3: (4, 1, "codebooks_v3.json", False, 1), 4: (8, 5, "codebooks.json", False, 1),
            5: (8, 5, "codebooks.json", False, 1), 6: (8, 5, "codebooks_v6.json", True, 1),
            7: (8, 5, "codebooks_v7.json", True, 6), 8: (8, 5, "codebooks_v7.json", True, 6)}
#: version 8 differs from 7 only in its frame groups (FORMAT.md §4): version 7's codes
BOOK_REGIONS, TUPLE_CONTEXTS = CONTEXTS[7][:2]      # what the encoder writes (version 7)
PARTNER_CLASSES = CONTEXTS[7][4]
#: the partner value of a unit whose channel has no partner decoded before it
NO_PARTNER = N_BOOKS
#: book-pair rows per region: previous book x partner (0..7 or NO_PARTNER)
PAIR_ROWS_PER_REGION = N_BOOKS * (N_BOOKS + 1)
#: M/S flags per ms_group symbol, and its rows: group length 1..MS_GROUP x the flag before it
MS_GROUP = 4
N_MS_ROWS = 2 * MS_GROUP


def context_params(version: int) -> np.ndarray:
    """The ``ctx`` array of a format version (see above): [R, first scalefactor row, first
    spectral row, T, first book-pair row, first ms-group row (these two 0 before version 6),
    spectral partner classes P (1 before version 7)]."""
    R, T, _, paired, P = CONTEXTS[version]
    row_pair = N_BOOKS * R + N_SF_ROWS + T * P * len(SPECTRAL_BOOKS)
    row_ms = row_pair + R * PAIR_ROWS_PER_REGION
    return np.array([R, N_BOOKS * R, N_BOOKS * R + N_SF_ROWS, T,
                     row_pair if paired else 0, row_ms if paired else 0, P], dtype=np.int64)


def n_rows(version: int) -> int:
    """Rows of a format version's packed codebook set (book index, scalefactor, spectral, and
    from version 6 book pairs and M/S groups)."""
    ctx = context_params(version)
    if ctx[5]:                                  # the M/S-group rows come last
        return int(ctx[5]) + N_MS_ROWS
    return int(ctx[2] + ctx[3] * ctx[6] * len(SPECTRAL_BOOKS))


#: the encoder's contexts (version 7); the decoder takes those of the stream's version
CTX = context_params(7)
ROW_SF = int(CTX[1])
ROW_SPECTRAL = int(CTX[2])
ROW_PAIR = int(CTX[4])
ROW_MS = int(CTX[5])


@njit(inline="always")
def _region(ctx, b, nbands):
    """The region of band ``b`` of ``nbands``: ``min(R - 1, R * b // nbands)`` (§7.2)."""
    R = ctx[0]
    r = (R * b) // nbands
    return R - 1 if r > R - 1 else r


@njit(inline="always")
def book_row_v(ctx, prev, b, nbands):
    """Row of the book-index code of band ``b`` (of ``nbands``) after a unit of book ``prev``."""
    return N_BOOKS * _region(ctx, b, nbands) + prev


@njit(inline="always")
def pair_row_v(ctx, prev, partner, b, nbands):
    """Row of the book-pair code (version 6) whose first unit is of band ``b`` (of ``nbands``),
    after a unit of book ``prev``, the first unit's partner book ``partner`` (or NO_PARTNER)."""
    return ctx[4] + PAIR_ROWS_PER_REGION * _region(ctx, b, nbands) + (N_BOOKS + 1) * prev + partner


@njit(inline="always")
def ms_row_v(ctx, prev_flag, n):
    """Row of the M/S-group code (version 6) of a group of ``n`` flags (1..MS_GROUP) after a
    flag ``prev_flag`` (0 for the pair's first group)."""
    return ctx[5] + 2 * (n - 1) + prev_flag


@njit(inline="always")
def sf_row_v(ctx, prev_book, book):
    """Row of the scalefactor-delta code of a unit of ``book`` after a coded unit of ``prev_book``."""
    return ctx[1] + SF_CLASSES * SF_CLASS[prev_book] + SF_CLASS[book]


@njit(inline="always")
def tuple_context(prev_sum):
    """Spectral context of a tuple (version 4) from the magnitude sum of the tuple before it in
    its unit; -1 for the unit's first tuple: 0 first, 1 sum 0, 2 sum 1, 3 sum 2..3, 4 sum >= 4.
    Counted by comparisons, without a branch: the sums of music's tuples follow no pattern a
    branch predictor learns, and the encoder's rate loop costs thousands of tuples a frame
    (``int`` of each: as Python, numpy's bools would add as *or*)."""
    return (int(prev_sum >= 0) + int(prev_sum >= 1) + int(prev_sum >= 2)
            + int(prev_sum >= 4))


@njit(inline="always")
def spectral_row_v(ctx, book, t, pc):
    """Row of spectral ``book`` (1..6) in tuple context ``t`` (0..4; version 3 has one row) and
    partner class ``pc`` (0..5, :func:`partner_class`; before version 7 every class is 0)."""
    T = ctx[3]
    P = ctx[6]
    if t > T - 1:
        t = T - 1
    if pc > P - 1:
        pc = P - 1
    return ctx[2] + T * P * (book - 1) + P * t + pc


#: a unit's partner mode (FORMAT.md §7.3, version 7): no partner (a pair's first channel or an
#: unpaired one), a partner unit without spectral values (book 0 or 7, or beyond its max_band),
#: a partner unit with spectral values (the class then follows its tuple's magnitudes)
PARTNER_NONE, PARTNER_EMPTY, PARTNER_CODED = 0, 1, 2


@njit(inline="always")
def book_partner(books, max_band, c, u, b):
    """The partner of unit ``u`` (band ``b``) of channel ``c`` (FORMAT.md §5.3, version 6): the
    book of the same unit in channel ``c - 1`` when ``c`` is the second channel of a pair (0 at
    or beyond that channel's max_band), NO_PARTNER for a pair's first channel or an unpaired one."""
    if c % 2 == 0:
        return NO_PARTNER
    if b >= max_band[c - 1]:
        return 0
    return books[c - 1, u]


@njit(inline="always")
def spectral_partner(books, max_band, c, u, b):
    """The partner mode of unit ``u`` (band ``b``) of channel ``c``'s spectral values (§5.3's
    pmode, version 7), from its :func:`book_partner`: PARTNER_NONE without a partner,
    PARTNER_CODED when the partner unit has spectral values (book 1..6), PARTNER_EMPTY when not."""
    pb = book_partner(books, max_band, c, u, b)
    if pb == NO_PARTNER:
        return PARTNER_NONE
    if 1 <= pb <= 6:
        return PARTNER_CODED
    return PARTNER_EMPTY


@njit(inline="always")
def partner_class(pm, pq, i, dim, end):
    """The partner class of the tuple at ``i`` (``dim`` values, inside a unit ending at ``end``)
    of a unit whose partner mode is ``pm``: 0 none, 1 empty, 2..5 for the magnitude sum of the
    partner's values ``pq[i : min(i + dim, end)]`` being 0, 1, 2..3, 4 or more."""
    if pm != PARTNER_CODED:
        return pm
    s = 0
    for j in range(dim):
        if i + j < end:
            s += abs(pq[np.uint64(i + j)])     # unsigned: no test for a negative index
    return 2 + int(s >= 1) + int(s >= 2) + int(s >= 4)


@njit(inline="always")
def book_row(prev, b, nbands):
    """:func:`book_row_v` with the encoder's (version 7) contexts."""
    return book_row_v(CTX, prev, b, nbands)


@njit(inline="always")
def sf_row(prev_book, book):
    """:func:`sf_row_v` with the encoder's (version 7) contexts."""
    return sf_row_v(CTX, prev_book, book)


@njit(inline="always")
def pair_row(prev, partner, b, nbands):
    """:func:`pair_row_v` with the encoder's (version 7) contexts."""
    return pair_row_v(CTX, prev, partner, b, nbands)


@njit(inline="always")
def ms_row(prev_flag, n):
    """:func:`ms_row_v` with the encoder's (version 7) contexts."""
    return ms_row_v(CTX, prev_flag, n)


@njit(inline="always")
def spectral_row(book, t, pc):
    """:func:`spectral_row_v` with the encoder's (version 7) contexts."""
    return spectral_row_v(CTX, book, t, pc)


def spectral_alphabet(book: int) -> int:
    dim, lav = SPECTRAL_BOOKS[book]
    return (lav + 1) ** dim


def load_codebooks(path: str | None = None, version: int = 8) -> CodebookSet:
    """The codebooks of a format version (see :func:`_load_codebooks`); version 8 shares
    version 7's (one object, built once)."""
    return _load_codebooks(path, 7 if version == 8 else version)


@lru_cache(maxsize=None)
def _load_codebooks(path: str | None = None, version: int = 7) -> CodebookSet:
    """Load the trained code lengths of a format version (``pacodec/data/codebooks_v7.json`` for
    version 7, ``codebooks_v6.json`` for version 6, ``codebooks.json`` for versions 4 and 5, ``codebooks_v3.json`` for version 3;
    ``path`` overrides the file) as a :class:`CodebookSet` whose ``ctx`` holds the version's
    context parameters."""
    R, T, name, paired, P = CONTEXTS[version]
    if path is None:
        text = resources.files("pacodec").joinpath("data/" + name).read_text()
    else:
        with open(path) as fh:
            text = fh.read()
    data = json.loads(text)
    # a spectral book's entry is its list of rows (version 4), or one row's lengths (version 3)
    spectral = {k: (v if v and isinstance(v[0], list) else [v]) for k, v in data["spectral"].items()}
    if (len(data["book_index"]) != N_BOOKS * R or len(data["scalefactor"]) != N_SF_ROWS
            or any(len(spectral[str(b)]) != T * P for b in SPECTRAL_BOOKS)
            or paired and (len(data.get("book_pair", ())) != R * PAIR_ROWS_PER_REGION
                           or len(data.get("ms_group", ())) != N_MS_ROWS)):
        raise ValueError(f"codebook file does not match format version {version}'s contexts")
    rows = data["book_index"] + data["scalefactor"]
    for b in sorted(SPECTRAL_BOOKS):
        rows += spectral[str(b)]
    if paired:
        rows += data["book_pair"] + data["ms_group"]
    return CodebookSet(rows, context_params(version))
