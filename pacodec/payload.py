"""The audio payload of ``bitstreams/FORMAT.md`` §5: §5.1 scalefactor bands, §5.2 window
groups, units and coding order, §5.3 syntax (block info, stereo flags, book indices,
scalefactors, spectral data; the codes themselves are :mod:`pacodec.huffman`'s, §7).

The main names: the kernels :func:`write_payload`, :func:`payload_bits` (its exact size, for
rate control) and :func:`read_payload`; :class:`Layout`/:func:`layout_for` (band tables and the
coding order of long and short frames) and :func:`group_lengths`.  Nothing else reads or writes
a layout.  The frame around a payload is :mod:`pacodec.container`'s.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._jit import njit
from .bitio import get_bits, put_bits
from .config import StreamConfig
from .huffman import get_symbol, put_symbol, read_unit, write_unit
from .tables import (MS_GROUP, N_BOOKS, NOISE_BOOK, PARTNER_NONE, SF_DELTA_MAX, book_partner,
                     book_row, book_row_v, ms_row, ms_row_v, pair_row, pair_row_v, sf_row,
                     sf_row_v, spectral_partner)

__all__ = ["write_payload", "payload_bits", "read_payload", "Layout", "layout_for",
           "group_lengths", "MS_NONE", "MS_ALL", "MS_BANDS"]

MS_NONE, MS_ALL, MS_BANDS = 0, 1, 2


# ----------------------------------------------------------------------------- payload syntax §5.3
@njit
def write_payload(buf, st, is_short, left_short, right_short, group_flags, max_band, ms_mode,
                  ms_flags, books, sf, q, ub, nbands, ngroups, codes, lengths):
    """Write the audio payload of one frame (§5).  Returns nothing; ``st[0]`` is the bit count.

    ``books``/``sf``: (channels, units) with unit = group * nbands + band; ``q``: (channels, N)
    quantized values in coding order; ``ub``: unit bounds into that order.
    """
    nch = max_band.shape[0]
    put_bits(buf, st, is_short, 1)
    put_bits(buf, st, left_short, 1)
    put_bits(buf, st, right_short, 1)
    if is_short:
        put_bits(buf, st, group_flags, 7)
    for c in range(nch):
        put_bits(buf, st, max_band[c], 6)
    for p in range(nch // 2):
        put_bits(buf, st, ms_mode[p], 2)
        if ms_mode[p] == 2:
            # the flags four at a time (version 6): a group's flags MSB first, its row by its
            # length and the flag before it
            mb = max(max_band[2 * p], max_band[2 * p + 1])
            total = ngroups * mb
            pf = 0
            for i in range(0, total, MS_GROUP):
                n = min(MS_GROUP, total - i)
                v = _ms_group(ms_flags, p, i, n, mb, nbands)
                put_symbol(buf, st, codes, lengths, ms_row(pf, n), v)
                pf = v & 1
    for c in range(nch):
        mb = max_band[c]
        # the book indices two units at a time (version 6), the first unit's partner book (the
        # same unit of channel c - 1 when c is a pair's second channel) in the row; an odd
        # count's last unit alone, with the single code
        ctx = 0
        pend = -1
        pband = 0
        for g in range(ngroups):
            for b in range(mb):
                u = g * nbands + b
                if pend < 0:
                    pend = u
                    pband = b
                    continue
                pt = book_partner(books, max_band, c, pend, pband)
                put_symbol(buf, st, codes, lengths, pair_row(ctx, pt, pband, nbands),
                           N_BOOKS * books[c, pend] + books[c, u])
                ctx = books[c, u]
                pend = -1
        if pend >= 0:
            put_symbol(buf, st, codes, lengths, book_row(ctx, pband, nbands), books[c, pend])
        first = True
        prev = 0
        pbk = 0
        for g in range(ngroups):
            for b in range(mb):
                u = g * nbands + b
                if books[c, u] != 0:
                    if first:
                        put_bits(buf, st, sf[c, u], 8)
                        first = False
                    else:
                        put_symbol(buf, st, codes, lengths, sf_row(pbk, books[c, u]),
                                   sf[c, u] - prev + SF_DELTA_MAX)
                    prev = sf[c, u]
                    pbk = books[c, u]
        for g in range(ngroups):
            for b in range(mb):
                u = g * nbands + b
                bk = books[c, u]
                if bk != 0 and bk != NOISE_BOOK:
                    write_unit(buf, st, q[c], ub[u], ub[u + 1], bk, codes, lengths,
                               q[c - 1] if c % 2 else q[c],
                               spectral_partner(books, max_band, c, u, b))


@njit(inline="always")
def _ms_group(ms_flags, p, i, n, mb, nbands):
    """The ms_group symbol (§5.3, version 6) of pair ``p``'s flags ``i .. i+n-1`` in coding order
    (``mb`` bands per window group): the first flag the most significant bit."""
    v = 0
    for k in range(i, i + n):
        v = 2 * v + ms_flags[p, (k // mb) * nbands + k % mb]
    return v


@njit(inline="always")
def payload_bits(is_short, max_band, ms_mode, ms_flags, books, sf, q, ub, nbands, ngroups,
                 lengths, ubits):
    """The exact bit count :func:`write_payload` would write (without writing), for rate control.
    ``ubits[c, u]`` holds each spectral unit's coded size when the caller already knows it."""
    nch = max_band.shape[0]
    bits = 3 + (7 if is_short else 0) + 6 * nch
    for p in range(nch // 2):
        bits += 2
        if ms_mode[p] == 2:
            mb = max(max_band[2 * p], max_band[2 * p + 1])
            total = ngroups * mb
            pf = 0
            for i in range(0, total, MS_GROUP):
                n = min(MS_GROUP, total - i)
                v = _ms_group(ms_flags, p, i, n, mb, nbands)
                bits += lengths[ms_row(pf, n), v]
                pf = v & 1
    for c in range(nch):
        mb = max_band[c]
        ctx = 0
        pend = -1
        pband = 0
        first = True
        prev = 0
        pbk = 0
        for g in range(ngroups):
            for b in range(mb):
                u = g * nbands + b
                bk = books[c, u]
                if pend < 0:
                    pend = u
                    pband = b
                else:
                    pt = book_partner(books, max_band, c, pend, pband)
                    bits += lengths[pair_row(ctx, pt, pband, nbands), N_BOOKS * books[c, pend] + bk]
                    ctx = bk
                    pend = -1
                if bk != 0:
                    if first:
                        bits += 8
                        first = False
                    else:
                        bits += lengths[sf_row(pbk, bk), sf[c, u] - prev + SF_DELTA_MAX]
                    prev = sf[c, u]
                    pbk = bk
                    if bk != NOISE_BOOK:
                        bits += ubits[c, u]
        if pend >= 0:
            bits += lengths[book_row(ctx, pband, nbands), books[c, pend]]
    return bits


@njit(inline="always")
def read_payload(buf, st, nch, is_short_allowed, nbands_long, nbands_short, hdr, max_band, ms_mode,
                 ms_flags, books, sf, q, ub_long, ub_short_tab, ctx, count, first, offset, symbols,
                 lut):
    """Parse the audio payload of one frame (§5), validating every field and index.  ``ctx`` and
    the code tables are those of the stream's version (:func:`~pacodec.tables.load_codebooks`).

    ``hdr`` receives [is_short, left_short, right_short, group_flags, ngroups, nbands].  Returns 0
    on success or an error code (1 = truncated/invalid code, 2 = field out of range).  On return
    ``books``/``sf``/``q`` hold the units of the frame; ``q`` is in coding order, whose unit bounds
    the caller derives from ``hdr`` (``ub_short_tab[group_flags]`` for short frames).
    """
    is_short = get_bits(buf, st, 1)
    hdr[0] = is_short
    hdr[1] = get_bits(buf, st, 1)
    hdr[2] = get_bits(buf, st, 1)
    gflags = 0
    if is_short:
        if not is_short_allowed:
            return 2
        gflags = get_bits(buf, st, 7)
    hdr[3] = gflags
    if st[1] != 0:
        return 1
    if is_short:
        ngroups = 1
        for w in range(7):
            if (gflags >> (6 - w)) & 1:
                ngroups += 1
        nbands = nbands_short
    else:
        ngroups = 1
        nbands = nbands_long
    hdr[4] = ngroups
    hdr[5] = nbands
    nunits = ngroups * nbands
    if nunits > books.shape[1]:
        return 2
    for c in range(nch):
        mb = get_bits(buf, st, 6)
        if mb > nbands:
            return 2
        max_band[c] = mb
    for p in range(nch // 2):
        m = get_bits(buf, st, 2)
        if m > 2:
            return 2
        ms_mode[p] = m
        for u in range(nunits):
            ms_flags[p, u] = 1 if m == 1 else 0
        if m == 2:
            mb = max(max_band[2 * p], max_band[2 * p + 1])
            if ctx[5] == 0:
                for g in range(ngroups):
                    for b in range(mb):
                        ms_flags[p, g * nbands + b] = get_bits(buf, st, 1)
            else:
                # version 6: MS_GROUP flags per symbol (the last group shorter)
                total = ngroups * mb
                pf = 0
                i = 0
                while i < total:
                    n = min(MS_GROUP, total - i)
                    v = get_symbol(buf, st, count, first, offset, symbols, lut,
                                   ms_row_v(ctx, pf, n))
                    if st[1] != 0:
                        return 1
                    if v < 0 or v >= (1 << n):
                        return 2
                    for j in range(n):
                        f = (v >> (n - 1 - j)) & 1
                        k = i + j
                        ms_flags[p, (k // mb) * nbands + k % mb] = f
                        pf = f
                    i += n
    if st[1] != 0:
        return 1
    for c in range(nch):
        mb = max_band[c]
        for u in range(nunits):
            books[c, u] = 0
            sf[c, u] = 0
        for i in range(q.shape[1]):
            q[c, i] = 0
        pctx = 0
        total = ngroups * mb
        i = 0
        while i < total:
            u = (i // mb) * nbands + i % mb
            b = i % mb
            if ctx[4] != 0 and i + 1 < total:
                # version 6: a pair of units (§5.3), the first unit's partner book in the row
                pt = book_partner(books, max_band, c, u, b)
                v = get_symbol(buf, st, count, first, offset, symbols, lut,
                               pair_row_v(ctx, pctx, pt, b, nbands))
                if st[1] != 0:
                    return 1
                if v < 0 or v >= N_BOOKS * N_BOOKS:
                    return 2
                books[c, u] = v // N_BOOKS
                pctx = v % N_BOOKS
                books[c, ((i + 1) // mb) * nbands + (i + 1) % mb] = pctx
                i += 2
                continue
            bk = get_symbol(buf, st, count, first, offset, symbols, lut,
                            book_row_v(ctx, pctx, b, nbands))
            if st[1] != 0:
                return 1
            if bk < 0 or bk >= N_BOOKS:
                return 2
            books[c, u] = bk
            pctx = bk
            i += 1
        firstsf = True
        prev = 0
        pbk = 0
        for g in range(ngroups):
            for b in range(mb):
                u = g * nbands + b
                if books[c, u] != 0:
                    if firstsf:
                        v = get_bits(buf, st, 8)
                        firstsf = False
                    else:
                        d = get_symbol(buf, st, count, first, offset, symbols, lut,
                                       sf_row_v(ctx, pbk, books[c, u]))
                        v = prev + d - SF_DELTA_MAX
                    if st[1] != 0:
                        return 1
                    if v < 0 or v > 255:
                        return 2
                    sf[c, u] = v
                    prev = v
                    pbk = books[c, u]
        for g in range(ngroups):
            for b in range(mb):
                u = g * nbands + b
                bk = books[c, u]
                if bk != 0 and bk != NOISE_BOOK:
                    if is_short:
                        s = ub_short_tab[gflags, u]
                        e = ub_short_tab[gflags, u + 1]
                    else:
                        s = ub_long[u]
                        e = ub_long[u + 1]
                    if s < 0 or e > q.shape[1] or s > e:
                        return 2
                    pm = PARTNER_NONE
                    if ctx[6] > 1:
                        pm = spectral_partner(books, max_band, c, u, b)
                    read_unit(buf, st, q[c], s, e, bk, ctx, count, first, offset, symbols, lut,
                              q[c - 1] if c % 2 else q[c], pm)
                    if st[1] != 0:
                        return 1
    return 0


# ----------------------------------------------------------------------------- frame layout §5.2
@lru_cache(maxsize=None)
def layout_for(cfg: StreamConfig) -> "Layout":
    """The (cached) :class:`Layout` of a configuration."""
    return Layout(cfg)


class Layout:
    """Band tables and the coding order of long and short frames for one :class:`StreamConfig`.

    Long frames code bands in order.  Short frames code, for each window group and band, the band's
    bins of every window in the group one after another (window-major), so every unit is one
    contiguous range of the coding-order vector.  ``perm_short[gflags]`` maps coding order to the
    natural ``window * short_hop + bin`` order; ``ub_short[gflags]`` holds the unit bounds.
    """

    def __init__(self, cfg: StreamConfig):
        from .config import SHORT_BLOCKS
        from .tables import band_edges
        n = cfg.hop
        self.n = n
        self.edges_long = band_edges(cfg.samplerate, n, cfg.long_band_width)   # §5.1
        self.nb_long = len(self.edges_long) - 1
        self.ub_long = self.edges_long.copy()
        self.max_units = self.nb_long
        if cfg.short_blocks:
            ns = cfg.short_hop
            es = band_edges(cfg.samplerate, ns)
            self.edges_short = es
            self.nb_short = nbs = len(es) - 1
            self.max_units = max(self.nb_long, SHORT_BLOCKS * nbs)
            self.ub_short = np.zeros((128, SHORT_BLOCKS * nbs + 1), dtype=np.int64)
            self.perm_short = np.zeros((128, n), dtype=np.int64)
            for gflags in range(128):
                _short_order(gflags, es, ns, self.ub_short[gflags], self.perm_short[gflags])
        else:
            self.edges_short = np.zeros(2, dtype=np.int64)
            self.nb_short = 0
            self.ub_short = np.zeros((1, 2), dtype=np.int64)
            self.perm_short = np.zeros((1, n), dtype=np.int64)


def _short_order(gflags, es, ns, ub, perm):
    """Unit bounds and coding-order permutation of a short frame with these grouping bits.

    Coding order sorts the natural positions ``window * ns + bin`` by (window group, band,
    window, bin).  Plain numpy, not a kernel: it runs once per configuration, and a kernel
    would cost every process a compile (or cache load) for it.
    """
    nb = es.shape[0] - 1
    group = np.cumsum([0] + [(gflags >> (7 - w)) & 1 for w in range(1, 8)])   # per window
    band = np.repeat(np.arange(nb), np.diff(es))                                # per bin
    win = np.repeat(np.arange(8), ns)
    bins = np.tile(np.arange(ns), 8)
    perm[:] = np.lexsort((bins, win, band[bins], group[win]))
    sizes = np.bincount(group, minlength=8)[:group[-1] + 1]                     # group lengths
    counts = (sizes[:, None] * np.diff(es)[None, :]).ravel()                    # per unit
    u = counts.shape[0]
    ub[:u] = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ub[u:] = ns * 8


def group_lengths(gflags: int) -> list[int]:
    """Window group lengths from the 7 grouping bits (bit for window w=1..7, MSB first: 1 = w
    starts a new group)."""
    lengths = [1]
    for w in range(1, 8):
        if (gflags >> (7 - w)) & 1:
            lengths.append(1)
        else:
            lengths[-1] += 1
    return lengths
