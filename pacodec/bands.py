"""Band energy kept where the shape quantizes to zero: noise filling (format 4, FORMAT.md §8.6).

A coarsely quantized unit loses the energy of every coefficient that rounds to zero, so the
decoded band comes out quieter than the original (measured: the PEAQ ear model behind the
2f-model counts those bands).  Format 4 signals, per channel and frame, a fill level ``nf``
(NF_BITS bits, 0 = off); the decoder gives the zero positions of every spectral unit noise whose
measured RMS is ``NF_LEVEL[nf]`` times the unit's first reconstruction level (``|q| = 1``) (:func:`fill_zeros`), from the same frame-seeded
generator as noise substitution (§8.4).  The encoder picks the level from what the zeros of the
frame's units actually held (:func:`choose_fill`).
"""
from __future__ import annotations

import math

import numpy as np

from ._jit import njit
from .quantize import dequantize_unit, first_level
from .tables import NOISE_BOOK

__all__ = ["NF_BITS", "NF_LEVEL", "fill_zeros", "choose_fill", "xorshift"]

NF_BITS = 3
#: RMS of the fill relative to the unit's step, by level (normative, §8.6): 2^((l - 8) / 2)
NF_LEVEL = np.array([0.0] + [2.0 ** ((l - 8) / 2.0) for l in range(1, 1 << NF_BITS)])
#: The encoder's choice: this quantile (weighted by zero count) of the units' ideal levels, so
#: most units are filled at or below what they lost (a band made louder than the original is
#: what the ear model counts; one slightly too quiet costs less)
FILL_QUANTILE = 0.5


@njit(inline="always")
def xorshift(state):
    """One step of the xorshift32 generator (§8.4); returns the new state."""
    x = state[0]
    x ^= (x << np.uint32(13)) & np.uint32(0xFFFFFFFF)
    x ^= x >> np.uint32(17)
    x ^= (x << np.uint32(5)) & np.uint32(0xFFFFFFFF)
    state[0] = x
    return x


@njit(inline="always")
def fill_zeros(q, s, e, level, rng, out):
    """Noise at RMS ``level`` in the positions ``s..e-1`` where ``q`` is 0 (§8.6): the generator
    steps once per zero position; the fill's measured RMS over those positions is scaled to
    ``level`` exactly."""
    acc = 0.0
    nz = 0
    for i in range(s, e):
        if q[i] == 0:
            r = (np.float64(xorshift(rng)) / 2147483648.0) - 1.0
            out[i] = r
            acc += r * r
            nz += 1
    if nz == 0:
        return
    g = level * math.sqrt(nz / max(acc, 1e-30))
    for i in range(s, e):
        if q[i] == 0:
            out[i] *= g


@njit
def choose_fill(q, books, sf, ub, nunits, energy, quantizer, mu, scratch, hist):
    """The fill level of one channel (0..7): per spectral unit, the RMS its zero positions need
    for the unit to keep its energy (``energy[u]`` minus what the nonzero values reconstruct),
    relative to the unit's step, as a level (rounded down); the FILL_QUANTILE of those levels,
    weighted by zero count.  ``scratch``: N floats; ``hist``: 8 floats."""
    for j in range(hist.shape[0]):
        hist[j] = 0.0
    total = 0.0
    for u in range(nunits):
        bk = books[u]
        if bk == 0 or bk == NOISE_BOOK:
            continue
        s = ub[u]
        e = ub[u + 1]
        nz = 0
        for i in range(s, e):
            if q[i] == 0:
                nz += 1
        if nz == 0:
            continue
        dequantize_unit(q, s, e, sf[u], quantizer, mu, scratch)
        rec = 0.0
        for i in range(s, e):
            rec += scratch[i] * scratch[i]
        a = math.sqrt(max(energy[u] - rec, 0.0) / nz) / first_level(sf[u], quantizer, mu)
        lv = int(math.floor(2.0 * math.log2(max(a, 1e-9)) + 8.0))
        hist[min(7, max(0, lv))] += nz
        total += nz
    acc = 0.0
    for lv in range(hist.shape[0]):
        acc += hist[lv]
        if acc > 0.0 and acc >= FILL_QUANTILE * total:
            return lv
    return 0
