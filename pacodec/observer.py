"""What the encoder decided for each frame, for tools that watch it (``Encoder(observer=...)``).

``Encoder(..., observer=fn)`` calls ``fn(record)`` once per audio or config frame, right after
the frame's payload is written, with a :class:`FrameRecord`: the frame's block decisions, per
channel and unit the books, scalefactors and quantized values it coded, and the payload's size
in bits (before any CBR/ABR stuffing).  ``tools/bitstats.py`` (where the bits go) and
``tools/train_huffman.py`` (symbol counts) are built on it.

The arrays are the encoder's own working buffers, valid only during the call: copy what you
keep.  Units are numbered ``g * nbands + b`` (group, band); only the first ``nbands * ngroups``
columns of ``books``/``sf`` and the first ``max_band[c]`` bands of each group of channel ``c``
are coded (FORMAT.md §5).  The observer runs in the encoding thread and must not raise.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["FrameRecord"]


class FrameRecord(NamedTuple):
    #: the frame's index in the stream (0, 1, ...)
    index: int
    #: short blocks (1) or one long block (0), and the window shapes of its edges
    is_short: int
    left_short: int
    right_short: int
    #: the 7 grouping flags of a short frame (0 for a long one)
    group_flags: int
    #: (channels,) bands coded per group
    max_band: np.ndarray
    #: (channel pairs,) M/S mode and (pairs, units) per-unit M/S flags
    ms_mode: np.ndarray
    ms_flags: np.ndarray
    #: (channels, units) book index and scalefactor of each unit
    books: np.ndarray
    sf: np.ndarray
    #: (channels, hop) quantized values in coding order
    q: np.ndarray
    #: unit bounds into that order: unit u is q[c, unit_bounds[u]:unit_bounds[u + 1]]
    unit_bounds: np.ndarray
    nbands: int
    ngroups: int
    #: bits of the payload as written (§5; framing and stuffing not included)
    payload_bits: int
