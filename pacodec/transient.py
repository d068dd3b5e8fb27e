"""Temporal envelope analysis (encoder only): the transient detector, which decides which frames
switch to short blocks, and the steadiness test of a long frame's high band (noise substitution
there, :data:`~pacodec.allocation.HF_NOISE_HZ`).

The region a short frame would cover (``hop + short_hop`` samples around the centre of the block)
is cut into segments of half a short block; after a first-difference high-pass, a segment is an
attack when its energy exceeds

* ``ATTACK_RATIO`` times the mean of the four segments before it (a 10 dB jump), and
* ``HISTORY_RATIO`` times the loudest of the ``HISTORY`` segments before it, and
* an absolute floor.

The second test is what keeps a periodic sound with a sharp edge in each period (a low synth
bass: a sawtooth at 50 Hz has one step every 20 ms) long: each edge jumps 10 dB over the smooth
ramp just before it, but not over the previous period's edge.  Without it the detector fired on
every frame of such a bass (``bass_voxy`` of the corpus: 100 % short frames, 2 % with it; tb303
58 % → 23 %), and short blocks there cost both bits and the frequency resolution a bass needs.
``HISTORY`` = 16 segments is 1024 samples, 21–23 ms at 44.1–48 kHz: a period of a 43–47 Hz tone.

The returned index is the short window holding the attack: the encoder starts a new window group
there (see ``GROUP_SPLIT_DB`` in :mod:`.encoder` for the only other split).
"""
from __future__ import annotations

import numpy as np

from ._jit import njit

__all__ = ["detect_attack", "hf_unsteadiness", "ATTACK_RATIO", "ATTACK_FLOOR", "HISTORY",
           "HISTORY_RATIO", "STEADY_SEGMENTS"]

ATTACK_RATIO = 10.0          # 10 dB jump in high-passed energy over the last 4 segments
ATTACK_FLOOR = 1e-6          # mean-square level below which nothing is an attack (-60 dBFS)
#: an array position as an unsigned integer: numba then tests no index for counting from the end
U = np.uint64
HISTORY = 16                 # segments whose loudest an attack must also exceed ...
HISTORY_RATIO = 2.0          # ... by 3 dB
STEADY_SEGMENTS = 16         # hf_unsteadiness: segments per hop


@njit
def detect_attack(x, start, seg_len, n_seg, short_hop, energies):
    """Return the short window (0..7) holding the strongest attack in ``n_seg`` segments of
    ``x[start:...]`` (x: one channel, padded input), or -1 if there is none.  ``energies``:
    scratch of at least ``n_seg + HISTORY`` values.  Segments of the history that would start
    before ``x[1]`` count as silent; ``x`` must hold every sample up to the last segment (the
    caller guarantees it)."""
    for j in range(-HISTORY, n_seg):
        s = start + j * seg_len
        e = 0.0
        if s >= 1:
            for n in range(s, s + seg_len):
                d = x[U(n)] - x[U(n - 1)]       # unsigned positions: no negative-index test
                e += d * d
            e /= seg_len
        energies[j + HISTORY] = e
    best = -1
    best_ratio = ATTACK_RATIO
    for j in range(n_seg):
        i = j + HISTORY
        e = energies[i]
        ref = (energies[i - 1] + energies[i - 2] + energies[i - 3] + energies[i - 4]) * 0.25
        loudest = 0.0
        for h in range(i - HISTORY, i):
            loudest = max(loudest, energies[h])
        if e > ATTACK_FLOOR and e > best_ratio * (ref + 1e-12) and e > HISTORY_RATIO * loudest:
            best_ratio = e / (ref + 1e-12)
            best = j
    if best < 0:
        return -1
    # segment j spans short window (j*seg_len - short_hop/2) // short_hop of the frame's 8 windows
    w = (best * seg_len - short_hop // 2) // short_hop
    return min(7, max(0, w))


@njit
def hf_unsteadiness(x, start, avail, hop):
    """How unsteady the high band of one channel's long block is: the ratio of the largest to the
    smallest energy of the ``STEADY_SEGMENTS`` segments of the block's middle hop
    (``x[start + hop/2 : start + 3*hop/2]``, where its window is above 0.7) after a fourth-order
    difference (a high-pass: 0 dB at a quarter of the sampling rate, -12 dB at an eighth, -28 dB
    at a twenty-second).  Samples at or past ``start + avail`` count as zero; 1.0 for a silent
    block.  Stationary noise gives 3-5 dB (the spread of 16 short energy estimates); a hi-hat or a
    click in the hop 10-40 dB."""
    seg = hop // STEADY_SEGMENTS
    mx = 0.0
    mn = 1e300
    for j in range(STEADY_SEGMENTS):
        s = start + hop // 2 + j * seg
        e = 0.0
        for i in range(s, s + seg):
            if i < 4 or i - start >= avail:
                continue
            d = (x[U(i)] - 4.0 * x[U(i - 1)] + 6.0 * x[U(i - 2)] - 4.0 * x[U(i - 3)]
                 + x[U(i - 4)])                 # unsigned positions: no negative-index test
            e += d * d
        mx = max(mx, e)
        mn = min(mn, e)
    if mx <= 1e-20:
        return 1.0
    return mx / max(mn, 1e-30)
