"""Psychoacoustic model (encoder only): masking threshold and SMR per scalefactor band.

Per transform window, from the MDCT power spectrum ``P[k] = X[k]^2``:

1. band energies ``E_b`` over the scalefactor bands (half critical bands, ``tables.band_edges``);
2. tonality ``t_b``: the larger of the band's spectral flatness measure (SFM in dB over -25 dB
   -> 1, Johnston) and its predictability across frames (long windows: the unpredictability
   measure of ISO 11172-3 psychoacoustic model 2 on the complex MDCT + MDST spectrum,
   energy-weighted and spread over the bands like the energy, :func:`predicted_tonality`).
   Short windows cannot be predicted (one frame of them at a time); they take the tonality of
   the last long frame that had a prediction, energy-weighted over the long bands that fall in
   each short band and scaled by that frame's share of the window's band energy
   (``encoder.analyse_short``): a steady bass under a hi-hat stays tonal, a drum hit is noise.
   The flatness of a 4-bin band cannot tell a sinusoid from noise (a pure tone measured 0.25);
   the prediction does (tone ~1, noise ~0).  Measured against the flatness alone (22 clips, first
   5 s): 2f-model +0.8 at 64 and +1.3 at 128 kbit/s (piano +9, solo_instruments +8), ViSQOL
   -0.003 / +0.000 mean, but heroes_rite at 64 kbit/s -0.03;
3. masking offset ``O_b = t_b (14.5 + z_b) + (1 - t_b) 5.5`` dB (tone-masking-noise vs
   noise-masking-tone, Johnston 1988), with ``z_b`` the band centre in Bark (Zwicker);
4. spreading over the Bark scale with Schroeder's function
   ``SF(dz) = 15.81 + 7.5 (dz + 0.474) - 17.5 sqrt(1 + (dz + 0.474)^2)`` dB, a cross-band term
   lowered by the outer/middle ear's low-frequency attenuation of the masker against the maskee
   (``EAR_LF_DB``: a deep bass masks less above it than its raw energy says);
5. ``T_b = max(sum_j E_j SF(z_b - z_j) 10^(-O_j/10), ATH_b)`` with Terhardt's threshold in quiet
   (a full-scale sine taken as 96 dB SPL; held flat above 9 kHz, see ``ATH_CAP_HZ``);
6. temporal terms on long windows: pre-echo control ``T_b <= 2 T_b(prev)`` (a threshold may not
   rise faster than 3 dB per frame, so an onset inside a long block keeps its quiet start clean)
   and post-masking ``T_b >= 0.05 T_b(prev)`` (a -13 dB per frame decay of the last threshold).

The result is the allowed noise energy per band; ``SMR_b = E_b / T_b``.  Noise substitution's
tonality per band is the larger of the flatness measure and the band's own predicted tonality,
so a tone that is predictable across frames is never replaced by noise.
"""
from __future__ import annotations

import math
from collections import namedtuple
from functools import lru_cache

import numpy as np

from ._jit import njit
from .tables import band_edges

__all__ = ["bark", "ath_db", "BandModel", "band_model", "thresholds", "predicted_tonality",
           "TonalState", "TonalScratch", "hypot", "PRE_ECHO_RISE", "POST_DECAY"]

PRE_ECHO_RISE = 2.0
#: Terhardt's curve rises steeply above ~10 kHz (105 dB SPL at 18 kHz); with full scale taken as
#: 96 dB SPL it would discard high-frequency content that is audible at ordinary listening levels.
#: Holding it flat above 9 kHz raised the corpus mean ViSQOL by +0.03 at 64 and +0.12 at 128 kbps
#: (tools/compare.py); 6 and 12 kHz were measured too and were no better.
ATH_CAP_HZ = 9000.0
POST_DECAY = 0.05
NMT_DB = 5.5
FULL_SCALE_SPL = 96.0
#: Low-frequency outer/middle-ear attenuation, dB at 1 kHz of the f^-0.8 term (PEAQ: -0.6 * 3.64)
EAR_LF_DB = -0.6 * 3.64


def bark(f):
    """Zwicker & Terhardt's critical band rate in Bark."""
    f = np.asarray(f, dtype=np.float64)
    return 13.0 * np.arctan(0.00076 * f) + 3.5 * np.arctan((f / 7500.0) ** 2)


def ath_db(f):
    """Terhardt's threshold in quiet (dB SPL) at ``f`` Hz, held at its ATH_CAP_HZ value above."""
    k = np.minimum(np.maximum(np.asarray(f, dtype=np.float64), 20.0), ATH_CAP_HZ) / 1000.0
    return 3.64 * k ** -0.8 - 6.5 * np.exp(-0.6 * (k - 3.3) ** 2) + 1e-3 * k ** 4


class BandModel:
    """The per-(rate, size) constants of the model: band Bark centres, ATH, spreading matrix."""

    def __init__(self, samplerate: int, size: int, min_width: int = 4):
        self.edges = band_edges(samplerate, size, min_width)
        nb = len(self.edges) - 1
        fbin = (np.arange(size) + 0.5) * samplerate / (2.0 * size)
        centres = 0.5 * (self.edges[:-1] + self.edges[1:]) * samplerate / (2.0 * size)
        self.z = bark(centres)
        hz = self.edges * samplerate / (2.0 * size)
        #: each band's width in Bark (a short window's lowest band at 44.1 kHz, 0-689 Hz: 6.3)
        self.span = bark(hz[1:]) - bark(hz[:-1])
        ath_bins = ath_db(fbin)
        # A full-scale sine (amplitude 1) has ~size/2 energy in the orthonormal MDCT.
        self.ath = np.array([size / 2.0 * 10 ** ((ath_bins[self.edges[b]:self.edges[b + 1]].min()
                                                  - FULL_SCALE_SPL) / 10.0) for b in range(nb)])
        dz = self.z[None, :] - self.z[:, None]          # [masker j, maskee b]
        x = dz + 0.474
        sf_db = 15.81 + 7.5 * x - 17.5 * np.sqrt(1.0 + x * x)
        self.spread = np.where(sf_db > -60.0, 10.0 ** (sf_db / 10.0), 0.0)
        # Outer/middle-ear attenuation of low frequencies (the f^-0.8 term of Terhardt's threshold
        # in quiet, which PEAQ applies to its input): a masker is heard through it, so a deep bass
        # masks the bands above it less than its raw energy says.  Applied as the difference of
        # masker and maskee attenuation, only where it lowers a term (a band's own masking and
        # downward spreading are unchanged).  Without it the spreading of a 40-60 Hz bass let
        # noise 25-35 dB above the signal into 300-900 Hz (breakbeat at 128 kbit/s; PEAQ's
        # excitation there rose 25 dB for ~0.25 s after each beat).
        w_db = EAR_LF_DB * (np.maximum(centres, 20.0) / 1000.0) ** -0.8
        self.spread = self.spread * 10.0 ** (np.minimum(0.0, w_db[:, None] - w_db[None, :]) / 10.0)
        self.offset_tonal = 14.5 + self.z


@lru_cache(maxsize=None)
def band_model(samplerate: int, size: int, min_width: int = 4) -> BandModel:
    """The model over the bands of ``tables.band_edges(samplerate, size, min_width)``."""
    return BandModel(samplerate, size, min_width)


@njit
def thresholds(X, edges, spread, offset_tonal, ath, energy, thr, tonality, spread_sum, ptonal):
    """Band energies, tonality and masking threshold (allowed noise energy) of one window.

    ``spread`` is the spreading matrix ``[masker, maskee]``, ``offset_tonal`` the TMN offset per
    band in dB; ``spread_sum`` is scratch of at least one value per band;
    ``ptonal`` the band's tonality from prediction across frames (:func:`predicted_tonality`,
    zeros where there is none).  A band's tonality is the larger of that and the flatness
    measure; ``tonality`` (used for noise substitution) holds the larger of the flatness measure
    and the band's own (unspread) predicted tonality."""
    nb = edges.shape[0] - 1
    for b in range(nb):
        s = edges[b]
        e = edges[b + 1]
        acc = 0.0
        lacc = 0.0
        for k in range(s, e):
            xk = X[np.uint64(k)]            # unsigned: no test for a negative index
            p = xk * xk + 1e-20
            acc += p
            lacc += math.log(p)
        w = e - s
        energy[b] = acc
        sfm_db = 10.0 / math.log(10.0) * (lacc / w - math.log(acc / w))
        t = sfm_db / -25.0
        tonality[b] = min(1.0, max(0.0, t))
    # the predicted tonality, energy-weighted and spread like the energy (model 2 spreads its
    # unpredictability so): a weak band next to a strong partial takes the partial's tonality
    for j in range(nb):
        thr[j] = energy[j] * ptonal[j]
    for b in range(nb):
        es = 0.0
        ts = 0.0
        for j in range(nb):
            es += energy[j] * spread[j, b]
            ts += thr[j] * spread[j, b]
        spread_sum[b] = ts / es if es > 0.0 else 0.0
    # each masker's energy lowered by its offset (tonal vs noise-like), then spread
    for j in range(nb):
        t = max(tonality[j], spread_sum[j])
        o = t * offset_tonal[j] + (1.0 - t) * NMT_DB
        thr[j] = energy[j] * 10.0 ** (-o / 10.0)
    for b in range(nb):
        acc = 0.0
        for j in range(nb):
            acc += thr[j] * spread[j, b]
        spread_sum[b] = acc          # kept apart: thr[] still holds the masker values
    for b in range(nb):
        thr[b] = max(spread_sum[b], ath[b])
        # noise substitution's tonality: a band that is predictable across frames (a steady tone
        # near its own noise floor, whose flatness is low) is tonal too, so never substituted
        tonality[b] = max(tonality[b], ptonal[b])


#: Range limits of the scaled hypot below: the thresholds glibc's libm (2.35 on) uses around
#: the same algorithm, so that the results have its bits
_HYPOT_SCALE = 2.0 ** -600
_HYPOT_LARGE = 2.0 ** 511
_HYPOT_TINY = 2.0 ** -459
_HYPOT_EPS = 2.0 ** -54


@njit(inline="always")
def _hypot_kernel(ax, ay):
    """Borges' corrected hypot for ``ax >= ay`` in range (C. F. Borges, "An Improved Algorithm
    for hypot(a, b)", arXiv:1904.09481, 2019, the variant without fused multiply-add, which is
    what glibc's libm computes on x86-64 from 2.35 on): ``sqrt(ax^2 + ay^2)`` and one
    correction step.  glibc picks one of two corrections
    by a branch on ``h <= 2 ay``, which a spectrum's bins take at random; here both are
    computed and the one glibc takes is selected, with the same operations in the same order."""
    h = math.sqrt(ax * ax + ay * ay)
    d1 = h - ay
    t1a = ax * (2.0 * d1 - ax)
    t2a = (d1 - 2.0 * (ax - ay)) * d1
    d2 = h - ax
    t1b = 2.0 * d2 * (ax - 2.0 * ay)
    t2b = (4.0 * d2 - ay) * ay + d2 * d2
    m = 1.0 * (h <= 2.0 * ay)
    t1 = m * t1a + (1.0 - m) * t1b
    t2 = m * t2a + (1.0 - m) * t2b
    h2 = 2.0 * h
    # h > 0 wherever glibc calls its kernel; the guard is for _bins_in_range's other bins
    return h - (t1 + t2) / (h2 if h2 > 0.0 else 1.0)


@njit(inline="always")
def hypot(x, y):
    """``sqrt(x^2 + y^2)`` by Borges' algorithm, with the bits of glibc's ``hypot`` (2.35 on, x86-64; what numba's
    ``abs(complex)`` calls there) without a library call and its unpredictable branch per
    call: :func:`predicted_tonality` takes two per spectral bin, and on music the call was
    ~80 % of that kernel's time (``tests/test_kernels.py`` checks the bits against the C
    library's).  Infinities give inf, NaNs NaN, as there."""
    if not (math.isfinite(x) and math.isfinite(y)):
        if math.isinf(x) or math.isinf(y):
            return math.inf
        return x + y
    ax = abs(x)
    ay = abs(y)
    if ax < ay:
        ax, ay = ay, ax
    if ax > _HYPOT_LARGE:
        if ay <= ax * _HYPOT_EPS:
            return ax + ay
        return _hypot_kernel(ax * _HYPOT_SCALE, ay * _HYPOT_SCALE) / _HYPOT_SCALE
    if ay < _HYPOT_TINY:
        if ax >= ay / _HYPOT_EPS:
            return ax + ay
        return _hypot_kernel(ax / _HYPOT_SCALE, ay / _HYPOT_SCALE) * _HYPOT_SCALE
    if ay <= ax * _HYPOT_EPS:
        return ax + ay
    return _hypot_kernel(ax, ay)


#: One channel's state of :func:`predicted_tonality` (per bin, arrays of N): the magnitudes of the
#: last two frames' complex spectra and the real and imaginary parts of their unit phasors.
TonalState = namedtuple("TonalState", "r1 r2 p1r p1i p2r p2i")
#: Scratch of :func:`predicted_tonality`, per bin: this frame's magnitude and unit phasor, the
#: weighted unpredictability and weight, and whether the bin needs the scalar path.
TonalScratch = namedtuple("TonalScratch", "r ur ui ec e bad")


@njit(inline="always")
def _in_range(x, y, ax, ay):
    """Whether glibc's ``hypot(x, y)`` takes its kernel unscaled, with ``ax``, ``ay`` the larger
    and smaller magnitude: no NaN, no infinity, neither huge nor tiny, not one so much smaller
    that it vanishes (see :func:`hypot`)."""
    return ((x == x) & (y == y) & (ax <= _HYPOT_LARGE) & (ay >= _HYPOT_TINY)
            & (ay > ax * _HYPOT_EPS))


@njit(inline="always")
def _bin(x, y, r1, r2, p1, p2):
    """One bin of :func:`predicted_tonality`, as written down: (magnitude, unit phasor, the
    unpredictability ``c`` weighted by the energy ``e = r^2``, ``e``) from the bin's complex value
    ``x + jy`` and its state (magnitudes ``r1``, ``r2`` and unit phasors ``p1``, ``p2`` of the
    last two frames)."""
    r = hypot(x, y)
    u = complex(x / r, y / r) if r > 1e-30 else complex(1.0, 0.0)
    # phase 2 phi1 - phi2 without trigonometry: u1^2 conj(u2)
    rh = 2.0 * r1 - r2
    d = complex(x, y) - rh * p1 * p1 * p2.conjugate()
    c = hypot(d.real, d.imag) / (r + abs(rh) + 1e-30)
    e = r * r
    return r, u, e * c, e


@njit(error_model="numpy")
def _bins_in_range(X, Y, st, scr):
    """:func:`_bin` of every bin, with the same operations in the same order (numba's complex
    product ``(a c - b d, a d + b c)``, a real factor as ``complex(rh, 0)``), but no branch:
    both hypots take glibc's unscaled kernel and ``bad`` marks the bins where glibc would not
    (their values here are wrong; :func:`predicted_tonality` redoes them); the phasor's division
    is made and then selected.  So the loop runs two bins at a time on SSE2 (the divisions and
    square roots were most of its time).  No division here can be by zero (as Python it would
    raise); ``error_model="numpy"`` only spares the compiled loop numba's check of each."""
    r1, r2, p1r, p1i, p2r, p2i = st
    rr, ur, ui, ec, ee, bad = scr
    for k in range(X.shape[0]):
        x = X[k]
        y = Y[k]
        ax = max(abs(x), abs(y))
        ay = min(abs(x), abs(y))
        r = _hypot_kernel(ax, ay)
        big = r > 1e-30
        rs = r if big else 1.0
        qx = x / rs
        qy = y / rs
        rr[k] = r
        ur[k] = qx if big else 1.0
        ui[k] = qy if big else 0.0
        rh = 2.0 * r1[k] - r2[k]
        a_r = rh * p1r[k] - 0.0 * p1i[k]        # rh * p1
        a_i = rh * p1i[k] + 0.0 * p1r[k]
        b_r = a_r * p1r[k] - a_i * p1i[k]       # ... * p1
        b_i = a_r * p1i[k] + a_i * p1r[k]
        c_i = -p2i[k]                           # ... * conj(p2)
        d_r = x - (b_r * p2r[k] - b_i * c_i)
        d_i = y - (b_r * c_i + b_i * p2r[k])
        bx = max(abs(d_r), abs(d_i))
        by = min(abs(d_r), abs(d_i))
        c = _hypot_kernel(bx, by) / (r + abs(rh) + 1e-30)
        e = r * r
        ec[k] = e * c
        ee[k] = e
        bad[k] = not (_in_range(x, y, ax, ay) & _in_range(d_r, d_i, bx, by))


@njit
def predicted_tonality(X, Y, st, npred, edges, out, scr):
    """Tonality per band from how predictable each bin is across frames (ISO 11172-3
    psychoacoustic model 2's unpredictability measure), from the complex spectrum ``X + jY``
    (MDCT + MDST of the same windowed block).

    Per bin the magnitude and phase are extrapolated linearly from the two previous frames
    (:func:`_bin`; ``st``: :data:`TonalState`, updated): ``c = |X - X_pred| / (|X| + |X_pred|)``
    is 0 for a stationary sinusoid and ~1 for noise.  The band's energy-weighted ``c`` maps to
    ``t = -0.299 - 0.43 ln c`` clipped to 0..1.  ``npred`` is the number of previous frames
    analysed with the same window (below 2: ``out`` is 0).  ``scr``: :data:`TonalScratch`.
    The bins go through :func:`_bins_in_range` and those it marks through :func:`_bin`; the
    band sums then run in bin order, so every value is the one :func:`_bin` bin by bin gives."""
    r1, r2, p1r, p1i, p2r, p2i = st
    rr, ur, ui, ec, ee, bad = scr
    _bins_in_range(X, Y, st, scr)
    for k in range(X.shape[0]):
        if bad[k]:
            r, u, ec[k], ee[k] = _bin(X[k], Y[k], r1[k], r2[k], complex(p1r[k], p1i[k]),
                                      complex(p2r[k], p2i[k]))
            rr[k] = r
            ur[k] = u.real
            ui[k] = u.imag
    for b in range(edges.shape[0] - 1):
        t = 0.0
        if npred >= 2:
            num = 0.0
            den = 0.0
            for k in range(edges[b], edges[b + 1]):
                num += ec[k]
                den += ee[k]
            if den > 1e-30 and num > 0.0:
                t = -0.299 - 0.43 * math.log(num / den)
        out[b] = min(1.0, max(0.0, t))
    for k in range(X.shape[0]):
        r2[k] = r1[k]
        r1[k] = rr[k]
        p2r[k] = p1r[k]
        p2i[k] = p1i[k]
        p1r[k] = ur[k]
        p1i[k] = ui[k]
