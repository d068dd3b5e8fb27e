"""Window slopes and the block windows of window switching (FORMAT.md §6).

A block of ``2*hop`` samples is windowed by a rising slope of length ``L`` centred at ``hop/2`` and
a falling slope of length ``R`` centred at ``3*hop/2``; outside the slopes the window is 0 (before
the rising / after the falling slope) or 1.  Long blocks use ``L = R = overlap``; a frame next to a
short frame uses the short slope on that side (``START``/``STOP`` shapes in AAC terms), so the
Princen-Bradley condition ``w(n)^2 + w(n+L)^2 = 1`` holds across every frame boundary and the
MDCT reconstructs perfectly.  Slopes are sine or Kaiser-Bessel-derived (alpha = 4).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["slope", "block_window", "KBD_ALPHA"]

KBD_ALPHA = 4.0


@lru_cache(maxsize=None)
def slope(length: int, shape: str = "sine") -> np.ndarray:
    """The rising half of a ``2*length`` window: ``length`` samples from ~0 to ~1."""
    n = np.arange(length)
    if shape == "sine":
        w = np.sin(np.pi / (2 * length) * (n + 0.5))
    elif shape == "kbd":
        k = np.kaiser(length + 1, np.pi * KBD_ALPHA)
        c = np.cumsum(k)
        w = np.sqrt(c[:length] / c[length])
    else:
        raise ValueError(f"unknown window shape {shape!r}")
    w.setflags(write=False)
    return w


@lru_cache(maxsize=None)
def block_window(hop: int, left: int, right: int, shape: str = "sine") -> np.ndarray:
    """The ``2*hop`` window of a block with rising slope ``left`` and falling slope ``right``."""
    w = np.zeros(2 * hop)
    a = hop // 2 - left // 2
    w[a:a + left] = slope(left, shape)
    b = 3 * hop // 2 - right // 2
    w[a + left:b] = 1.0
    w[b:b + right] = slope(right, shape)[::-1]
    w.setflags(write=False)
    return w
