"""MDCT / IMDCT (orthonormal, TDAC) with an FFT-based fast algorithm in numba kernels.

Definition (FORMAT.md §6), for a block ``z`` of ``2N`` windowed samples::

    X[k] = sqrt(2/N) * sum_{n<2N} z[n] cos(pi/N (n + 1/2 + N/2)(k + 1/2)),   k < N

and the IMDCT is the same sum over ``k``; windowing the IMDCT output again and overlap-adding
consecutive blocks (hop ``N``) reconstructs the input exactly when the window obeys the
Princen-Bradley condition (see :mod:`pacodec.window`).

Fast path: fold the ``2N`` block into ``N`` samples (TDAC folding), then a DCT-IV of size ``N``
computed with an ``N/2``-point complex radix-2 FFT between a pre- and post-twiddle.  numba has no
FFT in nopython mode; a small iterative radix-2 FFT here keeps whole frames inside one kernel call
(all sizes are powers of two), which measured faster than calling scipy.fft per block from Python.
"""
from __future__ import annotations

from functools import lru_cache

from collections import namedtuple

import numpy as np

from ._jit import njit

__all__ = ["Plan", "PlanArrays", "plan", "mdct", "imdct", "mdct_direct", "imdct_direct",
           "mdct_kernel", "mdst_kernel", "imdct_kernel"]

#: The arrays of a :class:`Plan`, as one argument for kernels.  Bundles are built with their
#: namedtuple (the field names) and passed as plain tuples, which the kernel unpacks by name:
#: numba dispatches a plain tuple of arrays ~3x faster than a namedtuple (type fingerprint).
PlanArrays = namedtuple("PlanArrays", "pre post rev tw")
#: an array position as an unsigned integer (see :func:`fft_inplace`)
U = np.uint64


class Plan:
    """Precomputed twiddles and bit-reversal for MDCTs with ``n`` coefficients."""

    def __init__(self, n: int):
        if n < 4 or n & (n - 1):
            raise ValueError("MDCT size must be a power of two >= 4")
        self.n = n
        h = n // 2
        m = np.arange(h)
        self.pre = np.exp(-1j * np.pi * (4 * m + 1) / (4 * n))
        self.post = np.exp(-1j * np.pi * m / n) * np.sqrt(2.0 / n)
        bits = h.bit_length() - 1
        rev = np.zeros(h, dtype=np.int64)
        for i in range(h):
            r, x = 0, i
            for _ in range(bits):
                r = (r << 1) | (x & 1)
                x >>= 1
            rev[i] = r
        self.rev = rev
        self.tw = np.exp(-2j * np.pi * np.arange(max(h // 2, 1)) / h)
        self.arrays = tuple(PlanArrays(self.pre, self.post, self.rev, self.tw))


@lru_cache(maxsize=None)
def plan(n: int) -> Plan:
    return Plan(n)


@njit(inline="always")
def fft_inplace(a, rev, tw):
    """Iterative radix-2 decimation-in-time FFT of ``a`` (complex, power-of-two length)."""
    n = a.shape[0]
    # positions are indexed unsigned (U): never negative, so numba tests none for counting from
    # the end of the array (the same arithmetic; only the address computation is shorter)
    for i in range(n):
        j = rev[i]
        if j > i:
            t = a[i]
            a[i] = a[U(j)]
            a[U(j)] = t
    size = 2
    while size <= n:
        half = size // 2
        step = n // size
        # the butterflies of one stage touch disjoint pairs, so their order changes no value:
        # the early stages (many short groups) run twiddle by twiddle, each twiddle loaded once
        if half < step:
            for k in range(half):
                w = tw[U(k * step)]
                for i in range(k, n, size):
                    u = a[U(i)]
                    v = a[U(i + half)] * w
                    a[U(i)] = u + v
                    a[U(i + half)] = u - v
        else:
            for start in range(0, n, size):
                for k in range(half):
                    w = tw[U(k * step)]
                    u = a[U(start + k)]
                    v = a[U(start + k + half)] * w
                    a[U(start + k)] = u + v
                    a[U(start + k + half)] = u - v
        size *= 2


@njit(inline="always")
def dct4(v, out, pre, post, rev, tw, work):
    """Orthonormal DCT-IV of ``v`` (length N) into ``out``; ``work`` is complex scratch of N/2."""
    n = v.shape[0]
    h = n // 2
    for m in range(h):
        work[m] = complex(v[U(2 * m)], v[U(n - 1 - 2 * m)]) * pre[m]
    fft_inplace(work, rev, tw)
    for m in range(h):
        y = work[m] * post[m]
        out[U(2 * m)] = y.real
        out[U(n - 1 - 2 * m)] = -y.imag


@njit
def mdct_kernel(z, out, pre, post, rev, tw, fold, work):
    """MDCT of the windowed block ``z`` (2N) into ``out`` (N).  ``fold``: real scratch of N."""
    n = out.shape[0]
    h = n // 2
    for i in range(h):
        fold[i] = -z[U(3 * h - 1 - i)] - z[U(3 * h + i)]
        fold[U(h + i)] = z[i] - z[U(n - 1 - i)]
    dct4(fold, out, pre, post, rev, tw, work)


@njit
def mdst_kernel(z, out, pre, post, rev, tw, fold, work):
    """MDST of the windowed block ``z`` (2N) into ``out`` (N): the MDCT of the time-reversed block
    with the even bins negated, folded from ``z`` itself (the same sums as folding a reversed
    copy, :func:`mdct_kernel`'s, without making it).  ``fold``: real scratch of N."""
    n = out.shape[0]
    h = n // 2
    m = 2 * n - 1
    for i in range(h):
        fold[i] = -z[U(h + i)] - z[U(h - 1 - i)]      # -zr[3h - 1 - i] - zr[3h + i], zr[j] = z[m - j]
        fold[U(h + i)] = z[U(m - i)] - z[U(2 * h + i)]   # zr[i] - zr[n - 1 - i]
    dct4(fold, out, pre, post, rev, tw, work)
    for i in range(0, n, 2):
        out[i] = -out[i]


@njit
def imdct_kernel(x, y, pre, post, rev, tw, u, work):
    """IMDCT of ``x`` (N) into the unwindowed block ``y`` (2N).  ``u``: real scratch of N."""
    n = x.shape[0]
    h = n // 2
    dct4(x, u, pre, post, rev, tw, work)
    for i in range(h):
        y[i] = u[h + i]
        y[h + i] = -u[n - 1 - i]
        y[n + i] = -u[h - 1 - i]
        y[3 * h + i] = -u[i]


def mdct(z: np.ndarray) -> np.ndarray:
    """MDCT of one windowed block (length 2N) -> N coefficients (driver for the kernel)."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    n = z.shape[0] // 2
    p = plan(n)
    out = np.empty(n)
    mdct_kernel(z, out, p.pre, p.post, p.rev, p.tw, np.empty(n), np.empty(n // 2, np.complex128))
    return out


def imdct(x: np.ndarray) -> np.ndarray:
    """IMDCT of N coefficients -> 2N unwindowed samples (driver for the kernel)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = x.shape[0]
    p = plan(n)
    y = np.empty(2 * n)
    imdct_kernel(x, y, p.pre, p.post, p.rev, p.tw, np.empty(n), np.empty(n // 2, np.complex128))
    return y


def _basis(n: int) -> np.ndarray:
    t = np.arange(2 * n)[:, None]
    k = np.arange(n)[None, :]
    return np.sqrt(2.0 / n) * np.cos(np.pi / n * (t + 0.5 + n / 2) * (k + 0.5))


def mdct_direct(z: np.ndarray) -> np.ndarray:
    """The O(N^2) definition, for tests."""
    return np.asarray(z, dtype=np.float64) @ _basis(len(z) // 2)


def imdct_direct(x: np.ndarray) -> np.ndarray:
    """The O(N^2) definition, for tests."""
    return _basis(len(x)) @ np.asarray(x, dtype=np.float64)
