"""Normative tables: scalefactor band edges and Huffman codebooks.

Band edges are computed by the integer algorithm of FORMAT.md §5 (no floating point, so every
decoder derives the same edges).  The Huffman code lengths are trained on real recordings by
``tools/train_huffman.py`` and shipped as ``pacodec/data/codebooks.json`` (loaded with
``importlib.resources``; canonical codes are rebuilt from the lengths, FORMAT.md §7).
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
    "BOOK_REGIONS", "SF_CLASS", "SF_CLASSES", "book_row", "sf_row",
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
def band_edges(samplerate: int, size: int) -> np.ndarray:
    """Scalefactor band edges (bins) of a transform with ``size`` coefficients at ``samplerate``.

    Half-critical-band edges (each critical band split at its integer midpoint) are mapped to bins
    by rounding ``f * 2 * size / samplerate`` half up, snapped to multiples of 4 bins, deduplicated,
    and closed by ``size``.
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
        if b - edges[-1] >= 4:
            edges.append(b)
    # every edge is a multiple of 4 below ``size`` (a power of two >= 16), so the last band is
    # at least 4 bins wide: no edge is ever dropped (FORMAT.md §5.1)
    edges.append(size)
    return np.asarray(edges, dtype=np.int64)


@lru_cache(maxsize=None)
def band_centres_hz(samplerate: int, size: int) -> np.ndarray:
    e = band_edges(samplerate, size)
    return (e[:-1] + e[1:]) * 0.5 * samplerate / (2.0 * size)


def _canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical Huffman codes for the code lengths (0 = symbol unused).  FORMAT.md §7.1."""
    codes = np.zeros(len(lengths), dtype=np.int64)
    order = sorted((int(l), s) for s, l in enumerate(lengths) if l > 0)
    code = 0
    prev_len = order[0][0] if order else 0
    for i, (l, s) in enumerate(order):
        if i:
            code = (code + 1) << (l - prev_len)
        prev_len = l
        codes[s] = code
    return codes


def _decode_tables(lengths: np.ndarray, maxlen: int):
    """Arrays for canonical decoding: count per length, first code per length, sorted symbols."""
    count = np.zeros(maxlen + 1, dtype=np.int64)
    for l in lengths:
        if l > 0:
            count[l] += 1
    first = np.zeros(maxlen + 1, dtype=np.int64)
    offset = np.zeros(maxlen + 1, dtype=np.int64)
    code = 0
    idx = 0
    for l in range(1, maxlen + 1):
        code <<= 1
        first[l] = code
        offset[l] = idx
        code += count[l]
        idx += count[l]
    symbols = np.array([s for l, s in sorted((int(l), s) for s, l in enumerate(lengths) if l > 0)],
                       dtype=np.int64)
    return count, first, offset, symbols


class Codebook:
    """One canonical Huffman code as flat arrays a numba kernel can take."""

    def __init__(self, lengths):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.codes = _canonical_codes(self.lengths)
        self.maxlen = int(self.lengths.max())
        self.count, self.first, self.offset, self.symbols = _decode_tables(self.lengths, self.maxlen)


class CodebookSet:
    """All the codebooks of the format packed into 2-D arrays (row = book) for the kernels."""

    MAXLEN = 24

    def __init__(self, books: list[Codebook]):
        n = len(books)
        width = max(len(b.lengths) for b in books)
        L = self.MAXLEN
        self.lengths = np.zeros((n, width), dtype=np.int64)
        self.codes = np.zeros((n, width), dtype=np.int64)
        self.count = np.zeros((n, L + 1), dtype=np.int64)
        self.first = np.zeros((n, L + 1), dtype=np.int64)
        self.offset = np.zeros((n, L + 1), dtype=np.int64)
        self.symbols = np.zeros((n, width), dtype=np.int64)
        for i, b in enumerate(books):
            if b.maxlen > L:
                raise ValueError("code length exceeds the format's limit")
            k = len(b.lengths)
            self.lengths[i, :k] = b.lengths
            self.codes[i, :k] = b.codes
            m = b.maxlen + 1
            self.count[i, :m] = b.count
            self.first[i, :m] = b.first
            self.offset[i, :m] = b.offset
            self.symbols[i, :len(b.symbols)] = b.symbols

    def arrays(self):
        return self.lengths, self.codes, self.count, self.first, self.offset, self.symbols


#: Code contexts (FORMAT.md §7.2, version 3).  A book index is coded with the row of the previous
#: unit's book and the *region* of its band, ``min(BOOK_REGIONS - 1, BOOK_REGIONS * b // nbands)``;
#: a scalefactor delta with the row of the pair (class of the previous coded unit's book, class of
#: this unit's book), classes by SF_CLASS.
BOOK_REGIONS = 4
SF_CLASS = np.array([0, 0, 0, 1, 1, 2, 2, 3], dtype=np.int64)    # book -> class (book 0 unused)
SF_CLASSES = 4
#: Row layout of the packed codebook set: rows 0 .. 8*BOOK_REGIONS-1 = book-index codes (row
#: ``8 * region + previous book``); then SF_CLASSES^2 scalefactor-delta codes (row
#: ``ROW_SF + SF_CLASSES * class(previous) + class(this)``); then spectral books 1..6.
ROW_BOOK_CONTEXT = 0
ROW_SF = N_BOOKS * BOOK_REGIONS
N_SF_ROWS = SF_CLASSES * SF_CLASSES
ROW_SPECTRAL = ROW_SF + N_SF_ROWS - 1     # row of spectral book b is ROW_SPECTRAL + b


@njit
def book_row(prev, b, nbands):
    """Row of the book-index code of band ``b`` (of ``nbands``) after a unit of book ``prev``."""
    r = (BOOK_REGIONS * b) // nbands
    if r > BOOK_REGIONS - 1:
        r = BOOK_REGIONS - 1
    return N_BOOKS * r + prev


@njit
def sf_row(prev_book, book):
    """Row of the scalefactor-delta code of a unit of ``book`` after a coded unit of ``prev_book``."""
    return ROW_SF + SF_CLASSES * SF_CLASS[prev_book] + SF_CLASS[book]


def spectral_alphabet(book: int) -> int:
    dim, lav = SPECTRAL_BOOKS[book]
    return (lav + 1) ** dim


@lru_cache(maxsize=None)
def load_codebooks(path: str | None = None) -> CodebookSet:
    """Load the trained code lengths (``pacodec/data/codebooks.json``) as a :class:`CodebookSet`."""
    if path is None:
        text = resources.files("pacodec").joinpath("data/codebooks.json").read_text()
    else:
        with open(path) as fh:
            text = fh.read()
    data = json.loads(text)
    if len(data["book_index"]) != N_BOOKS * BOOK_REGIONS or len(data["scalefactor"]) != N_SF_ROWS:
        raise ValueError("codebook file does not match this format version's contexts")
    books = [Codebook(row) for row in data["book_index"]]
    books += [Codebook(row) for row in data["scalefactor"]]
    for b in sorted(SPECTRAL_BOOKS):
        books.append(Codebook(data["spectral"][str(b)]))
    return CodebookSet(books)
