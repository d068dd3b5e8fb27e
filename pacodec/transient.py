"""Transient detector (encoder only): decides which frames switch to short blocks.

The region a short frame would cover (``hop + short_hop`` samples around the centre of the block)
is cut into segments of half a short block; after a first-difference high-pass, a segment whose
energy exceeds ``ATTACK_RATIO`` times the mean of the four segments before it (and an absolute
floor) is an attack.  The returned index is the short window holding the attack, used to group
windows (windows before the attack, the attack, and after).
"""
from __future__ import annotations

import numpy as np

from ._jit import njit

__all__ = ["detect_attack", "ATTACK_RATIO", "ATTACK_FLOOR"]

ATTACK_RATIO = 10.0          # 10 dB jump in high-passed energy
ATTACK_FLOOR = 1e-6          # mean-square level below which nothing is an attack (-60 dBFS)


@njit
def detect_attack(x, start, seg_len, n_seg, short_hop):
    """Return the short window (0..7) holding the strongest attack in ``n_seg`` segments of
    ``x[start:...]`` (x: one channel, padded input), or -1 if there is none.  ``x`` must hold the
    4 segments before ``start``; the caller guarantees the bounds."""
    best = -1
    best_ratio = ATTACK_RATIO
    h0 = h1 = h2 = h3 = 0.0        # energies of the last 4 segments, slot (j + 4) % 4
    for j in range(-4, n_seg):
        s = start + j * seg_len
        e = 0.0
        for n in range(s, s + seg_len):
            d = x[n] - x[n - 1]
            e += d * d
        e /= seg_len
        if j >= 0:
            ref = (h0 + h1 + h2 + h3) * 0.25
            if e > ATTACK_FLOOR and e > best_ratio * (ref + 1e-12):
                best_ratio = e / (ref + 1e-12)
                best = j
        slot = (j + 4) % 4
        if slot == 0:
            h0 = e
        elif slot == 1:
            h1 = e
        elif slot == 2:
            h2 = e
        else:
            h3 = e
    if best < 0:
        return -1
    # segment j spans short window (j*seg_len - short_hop/2) // short_hop of the frame's 8 windows
    w = (best * seg_len - short_hop // 2) // short_hop
    return min(7, max(0, w))
