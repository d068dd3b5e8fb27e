"""Scalefactors and the three quantizers (FORMAT.md §8).

A unit (scalefactor band of one window group) has an integer scalefactor ``sf`` in 0..255 and the
step ``delta = 2 ** ((sf - SF_BIAS) / 4)`` (1.5 dB per step).  With ``u = |x| / delta`` each quantizer
is a monotonic map ``F`` with ``q = floor(F(u) + r)`` and reconstruction ``|x^| = delta * F^-1(|q|)``:

* ``uniform``: ``F(u) = u``, r = 0.5
* ``power``  : ``F(u) = u ** 0.75``, r = 0.4054 (AAC's rounding offset), reconstruction ``|q| ** (4/3)``
* ``mulaw``  : ``F(u) = K ln(1 + mu u / K) / ln(1 + mu)`` with K = 256, r = 0.5: logarithmic
  companding of the step-normalised amplitude (fine steps near zero, constant relative precision
  above ``u ~ K / mu``); reconstruction ``(K / mu) ((1 + mu) ** (|q| / K) - 1)``.

Decoding (:func:`dequantize_unit`) is normative; quantizing is the encoder's business.
"""
from __future__ import annotations

import math

import numpy as np

from ._jit import njit

__all__ = ["SF_BIAS", "SF_MAX", "QUANT_UNIFORM", "QUANT_MULAW", "QUANT_POWER", "MU_K", "step",
           "quantize_unit", "quantize_unit_fast", "quantize_unit_rounded", "dequantize_unit"]

SF_BIAS = 100
SF_MAX = 255
QUANT_UNIFORM, QUANT_MULAW, QUANT_POWER = 0, 1, 2
MU_K = 256.0
POWER_OFFSET = 0.4054


@njit(inline="always")
def step(sf):
    return 2.0 ** ((sf - SF_BIAS) * 0.25)


@njit
def quantize_unit(x, start, end, sf, quantizer, mu, q):
    """Quantize ``x[start:end]`` with scalefactor ``sf`` into ``q``; returns (noise energy, max |q|)."""
    delta = step(sf)
    inv = 1.0 / delta
    lmu = math.log(1.0 + mu)
    noise = 0.0
    qmax = 0
    for i in range(start, end):
        a = abs(x[i])
        u = a * inv
        if quantizer == QUANT_POWER:
            k = int(math.floor(u ** 0.75 + POWER_OFFSET))
            r = delta * k ** (4.0 / 3.0)
        elif quantizer == QUANT_MULAW:
            k = int(math.floor(MU_K * math.log(1.0 + mu * u / MU_K) / lmu + 0.5))
            r = delta * (MU_K / mu) * (math.exp(lmu * k / MU_K) - 1.0)
        else:
            k = int(math.floor(u + 0.5))
            r = delta * k
        e = a - r
        noise += e * e
        if k > qmax:
            qmax = k
        q[i] = -k if x[i] < 0 else k
    return noise, qmax


#: |q|^(4/3) for every magnitude the format allows (power-law reconstruction by lookup)
POW43 = np.arange(8192, dtype=np.float64) ** (4.0 / 3.0)


@njit(inline="always")
def magnitudes(x, quantizer, out):
    """Per-coefficient precomputation for :func:`quantize_unit_fast`: ``|x|^0.75`` for the power
    quantizer (so a scalefactor change is one multiply), ``|x|`` otherwise."""
    for i in range(x.shape[0]):
        a = abs(x[i])
        out[i] = a ** 0.75 if quantizer == QUANT_POWER else a
    return out


@njit
def quantize_unit_fast(x, xa, start, end, sf, quantizer, mu, q):
    """:func:`quantize_unit` with ``xa = magnitudes(x)`` precomputed (the encoder's hot loop);
    also returns the energy of the reconstruction."""
    if quantizer == QUANT_UNIFORM:
        return _quantize_uniform(x, start, end, sf, q, 0.5)
    if quantizer == QUANT_MULAW:
        noise, qmax = quantize_unit(x, start, end, sf, quantizer, mu, q)
        rec = 0.0
        delta = step(sf)
        lmu = math.log(1.0 + mu)
        for i in range(start, end):
            r = delta * (MU_K / mu) * (math.exp(lmu * abs(q[i]) / MU_K) - 1.0)
            rec += r * r
        return noise, qmax, rec
    delta = step(sf)
    inv34 = delta ** -0.75
    noise = 0.0
    rec = 0.0
    qmax = 0
    for i in range(start, end):
        k = int(xa[i] * inv34 + POWER_OFFSET)
        if k < 8192:
            r = delta * POW43[k]
        else:
            r = delta * k ** (4.0 / 3.0)
        e = abs(x[i]) - r
        noise += e * e
        rec += r * r
        if k > qmax:
            qmax = k
        q[i] = -k if x[i] < 0 else k
    return noise, qmax, rec


#: step(sf) for every scalefactor, computed once: CPython's float power is the C library's pow,
#: which the kernels call too, so the values are the same bits; looking them up spares the
#: encoder's uniform quantizer and the dequantizer a pow per pass over a unit
STEPS = np.array([2.0 ** ((sf - SF_BIAS) * 0.25) for sf in range(SF_MAX + 1)])


@njit(inline="always")
def step_of(sf):
    """:func:`step` looked up in :data:`STEPS` for the scalefactors the format codes (0..255;
    the same bits: see there), computed otherwise (a caller's test value)."""
    if 0 <= sf <= SF_MAX:
        return STEPS[sf]
    return step(sf)


@njit(inline="always")
def _quantize_uniform(x, start, end, sf, q, r):
    """The uniform quantizer with rounding offset ``r`` (0.5 = round to nearest, as
    :func:`quantize_unit`): (noise energy, max |q|, reconstruction energy) in one pass."""
    delta = step_of(sf)
    inv = 1.0 / delta
    noise = 0.0
    rec = 0.0
    qmax = 0
    for i in range(start, end):
        # an unsigned index: the unit's positions are never negative, and numba then spares
        # the test for a negative (from-the-end) index at each access
        j = np.uint64(i)
        xi = x[j]
        a = abs(xi)
        # a * inv + r >= 0, so truncating is flooring: int() is one instruction where
        # math.floor is a libm call on the build-time kernels' generic x86-64 target (no SSE4.1)
        k = int(a * inv + r)
        v = delta * k
        e = a - v
        noise += e * e
        rec += v * v
        if k > qmax:
            qmax = k
        q[j] = -k if xi < 0 else k
    return noise, qmax, rec


@njit
def quantize_unit_rounded(x, xa, start, end, sf, quantizer, mu, q, r):
    """:func:`quantize_unit_fast` with the uniform quantizer's rounding offset ``r`` (0.5 =
    round to nearest; smaller values widen the zero bin and round every magnitude down more
    often, lowering the reconstruction's energy).  Other quantizers ignore ``r``."""
    if quantizer != QUANT_UNIFORM:
        return quantize_unit_fast(x, xa, start, end, sf, quantizer, mu, q)
    return _quantize_uniform(x, start, end, sf, q, r)

#: |k|^(4/3) for every magnitude the format allows (0..8191, tables.MAX_QUANT), for the power
#: quantizer's normative reconstruction ``delta * pow(k, 4.0/3.0)`` (FORMAT.md §8): computed with
#: CPython's float power, which is the C library's pow that the kernels call, so the entries are
#: the same bits as the kernel's pow (checked by tests/test_kernels.py).  Not POW43: numpy's
#: array power is not always libm's pow to the last bit.
DEQ43 = np.array([float(k) ** (4.0 / 3.0) for k in range(8192)])


@njit(inline="always")
def dequantize_unit(q, start, end, sf, quantizer, mu, out):
    """Reconstruct ``out[start:end]`` from ``q[start:end]`` (normative)."""
    delta = step_of(sf)
    lmu = math.log(1.0 + mu)
    for i in range(start, end):
        k = abs(q[i])
        if quantizer == QUANT_POWER:
            r = delta * (DEQ43[k] if k < 8192 else k ** (4.0 / 3.0))
        elif quantizer == QUANT_MULAW:
            r = delta * (MU_K / mu) * (math.exp(lmu * k / MU_K) - 1.0)
        else:
            r = delta * k
        out[i] = -r if q[i] < 0 else r
