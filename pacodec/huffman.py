"""Canonical Huffman coding of symbols and of quantized spectral units (FORMAT.md §7).

Kernels here write/read one symbol with a row of the packed :class:`~pacodec.tables.CodebookSet`,
and one *unit* (a scalefactor band of one window group) with a spectral book: tuples of magnitudes
(4 or 2 values per codeword), then one sign bit per non-zero value, then the Exp-Golomb suffix of
every escaped value (book 6).  Each tuple's code is the row of its book chosen by the magnitudes
of the tuple before it in the unit (FORMAT.md §7.3, :func:`~pacodec.tables.tuple_context`) and,
from version 7, by the *partner*'s values at the same positions (the first channel of a channel
pair, :func:`~pacodec.tables.partner_class`; ``pq`` is that channel's row and ``pm`` the unit's
partner mode, PARTNER_NONE for a first or unpaired channel): the encoder's kernels use the
current format's contexts, :func:`read_unit` those of the stream's version.
Decoding is canonical (count / first code per length), so no decoding tree is stored, and every
table index is checked against the table bounds.

``code_lengths`` builds length-limited Huffman code lengths from symbol counts; it is used by
``tools/train_huffman.py`` to make the codebook files in ``pacodec/data/``.
"""
from __future__ import annotations

import heapq

import numpy as np

from ._jit import njit
from .bitio import get_bits, put_bits
from .tables import (ESC_BOOK, ESC_VALUE, LUT_BITS, MAX_QUANT, SPECTRAL_BOOKS, partner_class,
                     spectral_row, spectral_row_v, tuple_context)

__all__ = ["put_symbol", "get_symbol", "unit_bits", "write_unit", "read_unit", "code_lengths",
           "BOOK_DIM", "BOOK_LAV"]

ESC_K = 2               # Exp-Golomb order of the escape suffix
ESC_MAX_PREFIX = 14     # longest zero prefix a decoder accepts (bounds the loop)

#: Dimension and largest directly coded magnitude per book id (index 0 and 7 unused).
BOOK_DIM = np.array([0] + [SPECTRAL_BOOKS[b][0] for b in range(1, 7)] + [0], dtype=np.int64)
BOOK_LAV = np.array([0] + [SPECTRAL_BOOKS[b][1] for b in range(1, 7)] + [0], dtype=np.int64)


def _tuple_digits():
    """``[book, sym, j]``: magnitude ``j`` of the tuple coded as symbol ``sym`` of ``book`` (its
    base-(lav + 1) digits, most significant first), for every symbol a book can have; read_unit
    looks them up instead of dividing by a base it knows only at run time (two integer
    divisions per value were a fifth of the decode)."""
    nsym = max((lav + 1) ** dim for dim, lav in SPECTRAL_BOOKS.values())
    d = np.zeros((len(BOOK_DIM), nsym, 4), dtype=np.int64)
    s = np.arange(nsym)
    for b, (dim, lav) in SPECTRAL_BOOKS.items():
        for j in range(dim):
            d[b, :, j] = (s // (lav + 1) ** (dim - 1 - j)) % (lav + 1)
    return d


TUPLE_DIGITS = _tuple_digits()


@njit
def put_symbol(buf, st, codes, lengths, row, sym):
    n = lengths[row, sym]
    if n == 0:          # a symbol the book cannot code: an encoder bug, flagged as overflow
        st[1] = 1
        return
    put_bits(buf, st, codes[row, sym], n)


@njit(inline="always")
def get_symbol(buf, st, count, first, offset, symbols, lut, row):
    """Decode one symbol with book ``row``; sets ``st[1]`` on an invalid code or truncation.
    ``lut``: the book's first-look-up table (:func:`~pacodec.tables.decode_lut`)."""
    if st[1] != 0:
        return 0
    # a codeword of up to LUT_BITS bits that lies inside the limit: one look-up of the next
    # LUT_BITS bits (a hit is what the bit-by-bit loop below returns, after the same bits)
    pos = st[0]
    if pos + LUT_BITS <= st[2]:
        b = pos >> 3
        w = np.int64(buf[b]) << 8
        if b + 1 < buf.shape[0]:
            w |= np.int64(buf[b + 1])
        e = lut[row, (w >> (16 - LUT_BITS - (pos & 7))) & ((1 << LUT_BITS) - 1)]
        if e != 0:
            st[0] = pos + (e & 31)
            return e >> 5
    # bit by bit as get_bits(buf, st, 1) would read them (same checks, same st on every exit),
    # without a call per bit
    end = st[2]
    code = 0
    maxlen = count.shape[1] - 1
    for l in range(1, maxlen + 1):
        if pos >= end:
            st[0] = pos
            st[1] = 1
            return 0
        code = (code << 1) | ((np.int64(buf[pos >> 3]) >> (7 - (pos & 7))) & 1)
        pos += 1
        d = code - first[row, l]
        if d >= 0 and d < count[row, l]:
            st[0] = pos
            i = offset[row, l] + d
            if i < 0 or i >= symbols.shape[1]:
                st[1] = 1
                return 0
            return symbols[row, i]
    st[0] = pos
    st[1] = 1
    return 0


@njit(inline="always")
def _esc_bits(e):
    m = e + (1 << ESC_K)
    nb = 0
    while (m >> nb) > 0:
        nb += 1
    return 2 * nb - 1 - ESC_K


@njit
def unit_bits(q, start, end, book, lengths, pq, pm):
    """Bits that coding ``q[start:end]`` with spectral ``book`` costs; -1 if it cannot code it.
    ``pq``/``pm``: the partner's row and the unit's partner mode (see above).

    The rate loop's most frequent computation (every candidate book of every unit whose
    scalefactor a trial changed), so each book has a copy of :func:`_unit_bits` with its
    constants (tuple size, largest value, escapes or not) known to the compiler: the loop over a
    tuple's values unrolled, no test of the book per value; the same bits."""
    if book == 1:
        return _unit_bits(q, start, end, 1, lengths, pq, pm)
    if book == 2:
        return _unit_bits(q, start, end, 2, lengths, pq, pm)
    if book == 3:
        return _unit_bits(q, start, end, 3, lengths, pq, pm)
    if book == 4:
        return _unit_bits(q, start, end, 4, lengths, pq, pm)
    if book == 5:
        return _unit_bits(q, start, end, 5, lengths, pq, pm)
    if book == 6:
        return _unit_bits(q, start, end, 6, lengths, pq, pm)
    return _unit_bits(q, start, end, book, lengths, pq, pm)


@njit(inline="always")
def _unit_bits(q, start, end, book, lengths, pq, pm):
    """:func:`unit_bits`' body, for any ``book``.  ``q`` is indexed with unsigned positions (as
    in :func:`_write_unit` and :func:`~pacodec.tables.partner_class`): a unit's are never
    negative, and numba then tests no index for counting from the end."""
    dim = BOOK_DIM[book]
    lav = BOOK_LAV[book]
    base = lav + 1
    bits = 0
    prev = -1
    i = start
    while i < end:
        row = spectral_row(book, tuple_context(prev), partner_class(pm, pq, i, dim, end))
        prev = 0
        sym = 0
        for j in range(dim):
            v = abs(q[np.uint64(i + j)]) if i + j < end else 0
            prev += v
            if book == ESC_BOOK:
                if v > MAX_QUANT:
                    return -1
            elif v > lav:
                return -1
            if book == ESC_BOOK and v >= ESC_VALUE:
                bits += _esc_bits(v - ESC_VALUE)
                v = ESC_VALUE
            if v != 0:
                bits += 1
            sym = sym * base + v
        n = lengths[np.uint64(row), np.uint64(sym)]
        if n == 0:
            return -1
        bits += n
        i += dim
    return bits


@njit
def write_unit(buf, st, q, start, end, book, codes, lengths, pq, pm):
    """Write ``q[start:end]`` with spectral ``book`` (the caller checked it fits the book);
    ``pq``/``pm`` as for :func:`unit_bits`.  A copy of :func:`_write_unit` per book, as there."""
    if book == 1:
        _write_unit(buf, st, q, start, end, 1, codes, lengths, pq, pm)
    elif book == 2:
        _write_unit(buf, st, q, start, end, 2, codes, lengths, pq, pm)
    elif book == 3:
        _write_unit(buf, st, q, start, end, 3, codes, lengths, pq, pm)
    elif book == 4:
        _write_unit(buf, st, q, start, end, 4, codes, lengths, pq, pm)
    elif book == 5:
        _write_unit(buf, st, q, start, end, 5, codes, lengths, pq, pm)
    elif book == 6:
        _write_unit(buf, st, q, start, end, 6, codes, lengths, pq, pm)
    else:
        _write_unit(buf, st, q, start, end, book, codes, lengths, pq, pm)


@njit(inline="always")
def _write_unit(buf, st, q, start, end, book, codes, lengths, pq, pm):
    """:func:`write_unit`'s body, for any ``book``.  A tuple's codeword and its sign bits (one
    per non-zero value, in order) go out in one :func:`~pacodec.bitio.put_bits` (the same bits
    as the codeword and then each sign; only a buffer overflow, an encoder error, would leave
    other bytes), and an escape's zero prefix and suffix in another."""
    dim = BOOK_DIM[book]
    lav = BOOK_LAV[book]
    base = lav + 1
    prev = -1
    i = start
    while i < end:
        row = spectral_row(book, tuple_context(prev), partner_class(pm, pq, i, dim, end))
        prev = 0
        sym = 0
        signs = 0
        ns = 0
        for j in range(dim):
            v = abs(q[np.uint64(i + j)]) if i + j < end else 0
            prev += v
            if v != 0:
                signs = 2 * signs + (1 if q[np.uint64(i + j)] < 0 else 0)
                ns += 1
            if book == ESC_BOOK and v >= ESC_VALUE:
                v = ESC_VALUE
            sym = sym * base + v
        n = lengths[np.uint64(row), np.uint64(sym)]
        if n == 0:          # a symbol the book cannot code: an encoder bug, flagged as overflow
            st[1] = 1
            if ns:
                put_bits(buf, st, signs, ns)
        elif n + ns <= 32:
            put_bits(buf, st, (codes[np.uint64(row), np.uint64(sym)] << ns) | signs, n + ns)
        else:
            put_bits(buf, st, codes[np.uint64(row), np.uint64(sym)], n)
            put_bits(buf, st, signs, ns)
        if book == ESC_BOOK:
            for j in range(dim):
                if i + j < end:
                    v = abs(q[np.uint64(i + j)])
                    if v >= ESC_VALUE:
                        m = v - ESC_VALUE + (1 << ESC_K)
                        nb = 0
                        while (m >> nb) > 0:
                            nb += 1
                        # nb - 1 - ESC_K zeros, then m's nb bits
                        put_bits(buf, st, m, 2 * nb - 1 - ESC_K)
        i += dim


@njit(inline="always")
def read_unit(buf, st, q, start, end, book, ctx, count, first, offset, symbols, lut, pq, pm):
    """Read a unit written by :func:`write_unit` into ``q[start:end]`` (caller checked bounds),
    with the context parameters ``ctx`` of the stream's version (:mod:`pacodec.tables`) and the
    partner's decoded row ``pq`` (same length as ``q``) and partner mode ``pm``."""
    dim = BOOK_DIM[book]
    lav = BOOK_LAV[book]
    base = lav + 1
    # no scratch array: the values go straight into q[i:i + dim] (the part inside the unit)
    prev = -1
    i = start
    while i < end:
        row = spectral_row_v(ctx, book, tuple_context(prev), partner_class(pm, pq, i, dim, end))
        sym = get_symbol(buf, st, count, first, offset, symbols, lut, row)
        if st[1] != 0:
            return
        n = min(dim, end - i)         # the tuple's values inside the unit
        if 0 <= sym < TUPLE_DIGITS.shape[1]:
            for j in range(n):
                q[i + j] = TUPLE_DIGITS[book, sym, j]
        else:                         # not a symbol of any valid book: the same digits, divided
            for j in range(dim - 1, -1, -1):
                if j < n:
                    q[i + j] = sym % base
                sym //= base
        # a sign bit per non-zero value, read as get_bits(buf, st, 1) would (past the limit:
        # the error flag, nothing read), without branching on the value or the bit
        pos = st[0]
        lim = st[2]
        for j in range(n):
            v = q[i + j]
            if pos < lim:
                nz = np.int64(v != 0)
                s = (np.int64(buf[pos >> 3]) >> (7 - (pos & 7))) & nz
                q[i + j] = (v ^ -s) + s
                pos += nz
            elif v != 0:
                st[1] = 1
                break
        st[0] = pos
        if book == ESC_BOOK:
            for j in range(n):
                if abs(q[i + j]) == ESC_VALUE:
                    nz = 0
                    while get_bits(buf, st, 1) == 0:
                        if st[1] != 0:
                            return
                        nz += 1
                        if nz > ESC_MAX_PREFIX:
                            st[1] = 1
                            return
                    # the 1 just read is the top bit of m (nb = nz + ESC_K + 1 bits)
                    m = (1 << (nz + ESC_K)) | get_bits(buf, st, nz + ESC_K)
                    v = m - (1 << ESC_K) + ESC_VALUE
                    if v > MAX_QUANT:
                        st[1] = 1
                        return
                    q[i + j] = -v if q[i + j] < 0 else v
        prev = 0                      # the magnitudes of this tuple (escapes included)
        for j in range(n):
            prev += abs(q[i + j])
        i += dim


def code_lengths(counts, maxlen: int = 20) -> list[int]:
    """Length-limited Huffman code lengths for ``counts`` (every symbol gets a code)."""
    counts = [max(int(c), 0) + 1 for c in counts]
    n = len(counts)
    if n == 1:
        return [1]
    while True:
        heap = [(c, i, (i,)) for i, c in enumerate(counts)]
        heapq.heapify(heap)
        lengths = [0] * n
        tie = n
        while len(heap) > 1:
            c1, _, s1 = heapq.heappop(heap)
            c2, _, s2 = heapq.heappop(heap)
            for s in s1 + s2:
                lengths[s] += 1
            heapq.heappush(heap, (c1 + c2, tie, s1 + s2))
            tie += 1
        if max(lengths) <= maxlen:
            return lengths
        counts = [(c + 1) // 2 for c in counts]
