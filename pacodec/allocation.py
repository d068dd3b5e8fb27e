"""Bit allocation of one channel and frame at a given distance offset (encoder only).

Allocation (per channel and frame, :func:`allocate`): every unit (band of a window group) gets the
coarsest scalefactor whose *measured* quantization noise stays within ``T_u * w_b * 10^(o/10)``, where
``T_u`` is the masking threshold of the unit, ``w_b`` the low-frequency tilt of its band (TILT_DB)
and ``o`` the frame's distance offset in dB (0 dB = noise at the tilted threshold); a unit above its
threshold also keeps the SNR floor of its band (FLOOR_DB) until the offset passes 15 dB; its
values are rounded so the reconstruction is no louder than the unit (:func:`quantize_matched`).
A unit whose energy is below that allowance is zero, unless it is non-tonal and within 10 dB of
its masking threshold (ZERO_FILL, from 48 kbit/s per channel): then, like a noise-like unit above
the noise-substitution start that is masked or cheap to describe that way, it is coded as noise
of its RMS (book 7, a scalefactor and no spectral data).  The coded units' books are then
chosen together (:func:`rd_scalefactors`, a Viterbi search over each unit's two smallest fitting
books) for the fewest bits of spectral data, context-coded book indices and scalefactor deltas.

Rate control (the search of the offset ``o`` per frame, and the frame budgets) is
:mod:`pacodec.ratecontrol`; it allocates a frame at several offsets.  What one offset computed
serves the next (:data:`AllocScratch`): each unit's quantizations by scalefactor
(:func:`_quantize_memo`), its search's start (the last result), the quantized values of its last
two scalefactors and the bits of its candidate books, so an offset costs only the quantizations
and book costs that no earlier offset of the frame made.  The result is the same, bit for bit, as
allocating each offset from scratch with those starts.
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from ._jit import njit
from .huffman import BOOK_LAV, unit_bits
from .quantize import QUANT_POWER, QUANT_UNIFORM, SF_BIAS, quantize_unit_fast, quantize_unit_rounded
from .tables import (MAX_QUANT, NOISE_BOOK, PARTNER_CODED, PARTNER_NONE, SF_DELTA_MAX, book_row,
                     sf_row, spectral_partner)

#: an array position as an unsigned integer: numba then tests no index for counting from the end
U = np.uint64

__all__ = ["allocate", "stereo_decision", "bandwidth_hz", "PNS_START_HZ", "pns_rule", "HF_NOISE_HZ",
           "HF_NOISE_TON", "HF_STEADY_DB", "band_weights", "FrameUnits", "Allocation",
           "AllocScratch", "alloc_scratch", "long_band_min"]

#: Units the allocation leaves at zero (energy within the allowance) decode as silence, and the PEAQ
#: ear model behind the 2f-model hears every 0.5-Bark band whose excitation drops by 1 dB or more
#: in a 21-ms block: on dense mixes at 128 kbit/s that was 90 % of its counted distortion
#: (weirdo: 12 738 "too quiet" steps against 1 380 "too loud", mostly 1-6 kHz; a band's energy
#: 10-20 dB low in 30 % of frames at 3.7-4.7 kHz).  So a zero unit below ``max_band`` whose
#: energy is above ZERO_FILL times its masking threshold and which is not tonal (tonality below
#: ZERO_FILL_TON) is coded as noise of its RMS (book 7) instead, at any frequency, from
#: ZERO_FILL_KBPS per channel up (pns_rule).  Whole clips, CBR, the corpus's even half chosen
#: on, its odd half confirming: 128 kbit/s 2f +3.9 / +1.7, ViSQOL +0.0003 / +0.0004; 96 kbit/s
#: (odd half) 2f +2.6, ViSQOL -0.001; 64 kbit/s 2f +1.5 / +1.8 but ViSQOL -0.005 / -0.017
#: (journeys_end -0.13: the noise units' scalefactors cost the coded units bits there), so not
#: below 48 kbit/s per channel.
ZERO_FILL = 0.1
ZERO_FILL_TON = 0.5
ZERO_FILL_KBPS = 48.0
#: In a long frame of the normal mode whose high band is steady (the largest of the middle hop's
#: 16 high-passed segment energies within HF_STEADY_DB of the smallest, in every channel:
#: :func:`~pacodec.transient.hf_unsteadiness`), every unit from HF_NOISE_HZ up with a tonality
#: below HF_NOISE_TON is coded as noise of its RMS (book 7; silent where its energy is below
#: ZERO_FILL times its masking threshold) -- whatever the rate loop's offset.  Above 13 kHz the
#: coded waveform had 6-8 dB SNR at 96 kbit/s (loyalists: ~30 kbit/s there, where Opus keeps
#: ~0 dB and 3-5 dB more SNR from 0.5 to 9.5 kHz); noise of the right energy costs only its
#: scalefactor, and the bits go below.  Without the steadiness test hi-hats and tabla strokes were
#: smeared over the frame (even half, CBR 96: 2f +1.3 but ViSQOL -0.020, tabla -0.066).  Chosen
#: on the even half at CBR 96 (whole clips): 5 dB 2f +0.42, ViSQOL +0.0003; 6 dB +0.72 / -0.0007;
#: tonality below 0.3 +0.27 / +0.0010; from 11 kHz at 8 dB +0.80 / -0.0069.  Confirmed on the odd
#: half (+0.39 / -0.0026) and in the default mode at equal rate (all 39 clips: +0.37 / -0.0012).
HF_NOISE_HZ = 13000.0
HF_NOISE_TON = 0.5
HF_STEADY_DB = 5.0
#: Mid/side keeps each channel's level only while the side is coded well: the left/right
#: difference of a unit's energies is the cross term of mid and side (E_L - E_R = 2<M, S>), and a
#: side that decodes as zero, as coarse values or as noise independent of the mid loses it, so
#: one channel comes out too loud and the other too quiet -- the short-time band levels the PEAQ
#: ear model scores channel by channel (a decoder keeping each channel's unit energies lifted
#: loyalists at 96 kbit/s from 63.7 to 88.2, keeping the M/S units' only to 64.6).  So a unit is
#: coded as M/S only when |E_L - E_R| <= MS_BALANCE * (E_L + E_R) (the louder within 1.8 dB).
#: Chosen on six dense mixes of the even half (CBR 96, whole clips; 0.2: 2f +0.39, ViSQOL
#: +0.0024; 0.4: +0.41 / +0.0007); confirmed on the odd half (2f +1.84, ViSQOL +0.0044; loyalists
#: +14.1, revelation +8.1, orchestral_elfland +5.7 2f and +0.040 ViSQOL; worst -0.2 / -0.0020)
#: and in the default mode at equal rate (all 39 clips: 2f +0.87, ViSQOL +0.0082).
MS_BALANCE = 0.2
PNS_START_HZ = 5000.0
PNS_TONALITY = 0.35     # units below this tonality may be substituted by noise
PNS_SMR = 2.0           # ...when their energy is within 3 dB of the allowance
# at 40 kbit/s per channel and below (pns_rule): from 3.5 kHz, tonality below 0.5
PNS_START_LOW_HZ = 3500.0
PNS_TONALITY_LOW = 0.5
ENERGY_LO, ENERGY_HI = 10 ** -0.1, 10 ** 0.1   # coded units keep their energy within +-1 dB
#: A unit above its masking threshold (and not noise-substituted) keeps at least this SNR, in dB:
#: FLOOR_DB[0] for bands centred below FLOOR_BARK[0], falling linearly in Bark to FLOOR_DB[1] at
#: FLOOR_BARK[1] and above (400 Hz -> 3.2 kHz).  Was a flat 6 dB: at 64 kbit/s the rate loop sits
#: beyond the model's thresholds almost everywhere, so this floor *is* the allocation there, and a
#: flat one left 5-7 dB SNR in every band where Opus keeps 15-21 dB below 1 kHz.  12 -> 4 dB measured
#: on 6 clips (5 s excerpts, incl. 3 dense mixes) at 64 kbit/s: mean ViSQOL +0.08, 2f-model +8.1,
#: no clip worse than -0.005 / -0.1; 18 -> 3 dB raised 2f further but lost ViSQOL (-0.13 on a mix).
FLOOR_DB = (12.0, 4.0)
FLOOR_BARK = (4.0, 16.0)
FLOOR_GAIN_INV = 10 ** -1.5   # the floor holds up to a distance offset of 15 dB, then relaxes dB for dB
#: Low-frequency tilt of the allowed noise: the masking threshold is lowered by TILT_DB[0] below
#: TILT_BARK[0] (300 Hz), by 0 dB from TILT_BARK[1] (4.4 kHz) up, linearly in Bark between.  The
#: model's threshold follows the band energy (flat SNR); the 2f-model (PEAQ ear model, 0.25-Bark
#: bands, a third of them below 1 kHz where bits are cheap) hears that noise and ViSQOL does not
#: mind the bits moving down.  Measured with the floor above: see the commit message.
TILT_DB = (14.0, 0.0)
TILT_BARK = (3.0, 18.0)
#: A unit wider than one critical band has its allowed noise divided by its width in Bark (to the
#: power WIDE_EXP).  Only short windows (and the low-delay mode's 256-sample frames) have such
#: units (long units are half-Bark; a short window's lowest band at 44.1 kHz is 0-689 Hz, 6.3
#: Bark, then 4.3, 2.7, 1.8 ...): the noise spreads evenly over the unit while a bass and its
#: harmonics do not, and the PEAQ ear model's 0.25-Bark bands hear it between them (breakbeat,
#: hi-hats over a steady bass, scored 59 at 128 kbit/s with short blocks and 74 without).  With
#: the short windows' tonality taken from the last long frame (psychoacoustic.py): 12 percussive
#: clips at CBR 64 / 128, 2f +1.3 / +1.0, ViSQOL +0.002 / +0.001; exponent 1.5 lost on the worst
#: clip at 64 (bell -2.4, ViSQOL -0.012).  All 39 clips, both modes: README ("What moved it").
WIDE_EXP = 1.0


#: Energy-matched rounding (uniform quantizer): rounding to nearest makes a coarsely quantized
#: unit louder than the original (a magnitude just above half a step is reconstructed at a whole
#: step), and the PEAQ ear model behind the 2f-model counts every 0.25-Bark band whose excitation
#: rises by 1 dB or more.  When a unit's reconstruction is louder than MATCH_HI times its energy,
#: the rounding offset is lowered in ROUND_STEP steps down to ROUND_MIN until it is not, keeping
#: the offset whose energy is closer to the original (in dB).  Lower offsets also cost fewer bits.
MATCH_HI = 1.0
ROUND_STEP = 0.05
ROUND_MIN = 0.2


@njit(inline="always")
def quantize_matched(c, xa, s, e, sf, quantizer, mu, q, energy):
    """Quantize ``c[s:e]`` with scalefactor ``sf`` into ``q``, rounding so the reconstruction's
    energy stays near ``energy`` (see MATCH_HI); returns (noise, max |q|, reconstruction energy)."""
    return quantize_matched_alt(c, xa, s, e, sf, quantizer, mu, q, energy, q, False)


@njit(inline="always")
def quantize_matched_alt(c, xa, s, e, sf, quantizer, mu, q, energy, alt, two):
    """:func:`quantize_matched` with a second buffer ``alt`` (used when ``two``): the rounding
    passes write over the older of ``q`` and ``alt``, so when the last pass overshot and the
    one before it is closer, that one is copied back (``alt[s:e]``) instead of quantized again
    (~12 % of the passes at 128 kbit/s).  The result is the same: the offsets step down from
    exactly 0.5 and ``r + ROUND_STEP`` is the previous pass's offset (checked)."""
    noise, qmax, rec = quantize_unit_fast(c, xa, s, e, sf, quantizer, mu, q)
    if quantizer != QUANT_UNIFORM or rec <= energy * MATCH_HI:
        return noise, qmax, rec
    r = 0.5
    prev_rec = rec
    prev_noise = noise
    prev_qmax = qmax
    prev_alt = False        # whether the previous pass's values are in alt (else in q)
    in_alt = False          # ...and the returned one's
    while r > ROUND_MIN + 1e-9:
        prev_r = r
        r -= ROUND_STEP
        in_alt = two and not prev_alt
        noise, qmax, rec = quantize_unit_rounded(c, xa, s, e, sf, quantizer, mu,
                                                 alt if in_alt else q, r)
        if rec <= energy * MATCH_HI:
            # the last offset overshot: keep whichever of the two is closer in dB
            if rec * prev_rec < energy * energy * MATCH_HI * MATCH_HI:
                if two and r + ROUND_STEP == prev_r:
                    noise, qmax, rec = prev_noise, prev_qmax, prev_rec
                    in_alt = prev_alt
                else:
                    noise, qmax, rec = quantize_unit_rounded(c, xa, s, e, sf, quantizer, mu, q,
                                                             r + ROUND_STEP)
                    in_alt = False
            break
        prev_rec = rec
        prev_noise = noise
        prev_qmax = qmax
        prev_alt = in_alt
    if in_alt:
        for i in range(s, e):
            q[U(i)] = alt[U(i)]
    return noise, qmax, rec


@njit(inline="always")
def _fits(noise, rec, energy, allowed):
    """A quantization is acceptable when its noise stays within the allowance and it keeps the
    unit's energy within ENERGY_TOLERANCE (a coherent level error is not masked like noise)."""
    return noise <= allowed and rec >= energy * ENERGY_LO and rec <= energy * ENERGY_HI


@njit(inline="always")
def _quantize_memo(c, xa, s, e, sf, quantizer, mu, q, energy, scr, ch, u):
    """:func:`quantize_matched` of unit ``u`` of channel ``ch`` at ``sf``, remembered for the
    frame's later trial offsets: a scalefactor this frame's search already tried returns its
    (noise, max |q|, reconstruction energy) from ``scr`` and quantizes nothing; a new one goes to
    ``q`` or ``scr.qb`` (``scr.qsf``/``scr.qbsf`` say which scalefactor each holds, -1: none).  The tried scalefactors of a unit are one run
    ``scr.mlo..scr.mhi`` (every search walks in 1-steps from the last result)."""
    lo = scr.mlo[ch, u]
    hi = scr.mhi[ch, u]
    if lo <= sf <= hi:
        return scr.mnoise[ch, u, sf], scr.mqmax[ch, u, sf], scr.mrec[ch, u, sf]
    # into whichever of q and scr.qb holds the older quantization: a walk's result is its last
    # or its last but one, which then need not be quantized again (:func:`_search_sf`)
    if scr.qlast[ch, u] == 0:
        noise, qmax, rec = quantize_matched_alt(c, xa, s, e, sf, quantizer, mu, scr.qb[ch], energy,
                                                 scr.qalt[ch], True)
        scr.qbsf[ch, u] = sf
        scr.qlast[ch, u] = 1
    else:
        noise, qmax, rec = quantize_matched_alt(c, xa, s, e, sf, quantizer, mu, q, energy,
                                                 scr.qalt[ch], True)
        scr.qsf[ch, u] = sf
        scr.qlast[ch, u] = 0
    if lo > hi:
        scr.mlo[ch, u] = sf
        scr.mhi[ch, u] = sf
    elif sf == hi + 1:
        scr.mhi[ch, u] = sf
    elif sf == lo - 1:
        scr.mlo[ch, u] = sf
    else:
        return noise, qmax, rec
    scr.mnoise[ch, u, sf] = noise
    scr.mrec[ch, u, sf] = rec
    scr.mqmax[ch, u, sf] = qmax
    return noise, qmax, rec


@njit(inline="always")
def _search_sf(c, xa, s, e, allowed, energy, quantizer, mu, q, scr, ch, u):
    """Coarsest scalefactor whose quantization of c[s:e] :func:`_fits` the allowance; on return
    ``q[s:e]`` holds that quantization.

    Starts from the unit's hint ``scr.hint[ch, u]`` (its scalefactor at the previous offset of the
    rate loop, or -1 for the high-resolution estimate ``delta^2 w / 12 = allowed``) and walks 1.5
    dB steps.  The quantizations come from :func:`_quantize_memo` (a hint of -1 starts the unit's
    memo afresh), so a trial offset re-quantizes only at scalefactors the frame has not tried.
    """
    w = e - s
    hint = scr.hint[ch, u]
    if hint >= 0:
        sf = hint
    else:
        scr.mlo[ch, u] = 1          # a new frame: forget the last one's quantizations
        scr.mhi[ch, u] = 0
        scr.qsf[ch, u] = -1
        scr.qbsf[ch, u] = -1
        scr.cand[ch, u, 0] = -1
        scr.cand[ch, u, 6] = -1
        scr.pkey[ch, u, 0, 0] = -1  # ...and its books' bits with the partner's context
        scr.pkey[ch, u, 1, 0] = -1
        d0 = math.sqrt(12.0 * allowed / w)
        sf = int(math.floor(4.0 * math.log2(max(d0, 1e-30)) + SF_BIAS))
        if quantizer == QUANT_POWER:
            sf -= 3
    sf = min(255, max(0, sf))
    noise, qmax, rec = _quantize_memo(c, xa, s, e, sf, quantizer, mu, q, energy, scr, ch, u)
    if not _fits(noise, rec, energy, allowed):
        while sf > 0 and not _fits(noise, rec, energy, allowed):
            sf -= 1
            noise, qmax, rec = _quantize_memo(c, xa, s, e, sf, quantizer, mu, q, energy, scr, ch, u)
    else:
        while sf < 255:
            n2, q2, r2 = _quantize_memo(c, xa, s, e, sf + 1, quantizer, mu, q, energy, scr, ch, u)
            if not _fits(n2, r2, energy, allowed):
                noise, qmax, rec = _quantize_memo(c, xa, s, e, sf, quantizer, mu, q, energy,
                                                  scr, ch, u)
                break
            sf += 1
            noise, qmax = n2, q2
    while qmax > MAX_QUANT and sf < 255:
        sf += 1
        scr.trial[1] = 1.0      # a search from sf need not end at sf (ratecontrol.search_offset)
        noise, qmax, rec = _quantize_memo(c, xa, s, e, sf, quantizer, mu, q, energy, scr, ch, u)
    if scr.qsf[ch, u] != sf:
        if scr.qbsf[ch, u] == sf:
            qb = scr.qb[ch]
            for i in range(s, e):
                q[U(i)] = qb[U(i)]
        else:
            quantize_matched_alt(c, xa, s, e, sf, quantizer, mu, q, energy, scr.qalt[ch], True)
        scr.qsf[ch, u] = sf
    return sf, qmax


@njit(inline="always")
def _two_books(q, s, e, qmax, lengths):
    """The two smallest books that can code ``q[s:e]`` (largest magnitude ``qmax`` > 0) and their
    bits: (book, bits, book, bits), bits -1 where the book cannot code the unit, book -1 where
    there is no second book."""
    b1 = -1
    n1 = -1
    b2 = -1
    n2 = -1
    tried = 0
    for bk in range(1, 7):
        if BOOK_LAV[bk] < qmax and bk != 6:
            continue
        # costed without the partner's context (version 7's rows for first channels): the
        # second channel of a pair is costed again once its partner is final (partner_books)
        bits = unit_bits(q, s, e, bk, lengths, q, PARTNER_NONE)
        if tried == 0:
            b1 = bk
            n1 = bits
        else:
            b2 = bk
            n2 = bits
        tried += 1
        if tried == 2:          # the two smallest books that can code the unit
            break
    return b1, n1, b2, n2


@njit(inline="always")
def _pick_book(qmax, b1, n1, b2, n2):
    """The cheaper of :func:`_two_books`' pair (the first on a tie): (book, bits); (0, 0) for an
    all-zero unit, (-1, 2^60) when neither codes it."""
    if qmax == 0:
        return 0, 0
    best = -1
    best_bits = 1 << 60
    if b1 >= 0 and n1 >= 0 and n1 < best_bits:
        best = b1
        best_bits = n1
    if b2 >= 0 and n2 >= 0 and n2 < best_bits:
        best = b2
        best_bits = n2
    return best, best_bits


@njit(inline="always")
def _unit_books(q, s, e, qmax, lengths, scr, ch, u, sf):
    """:func:`_two_books` of unit ``u`` quantized at ``sf``, kept in ``scr.cand[ch, u, :6]`` (scalefactor,
    book, bits, book, bits, max |q|) for :func:`rd_scalefactors` and the frame's later trials;
    ``scr.cand[ch, u, 6:]`` keeps the scalefactor's before (a search that returns to it, as the
    rate loop's last trial often does, costs nothing: the two swap)."""
    cand = scr.cand[ch, u]
    if cand[0] != sf and cand[6] == sf:
        for k in range(6):
            t = cand[k]
            cand[k] = cand[6 + k]
            cand[6 + k] = t
    elif cand[0] != sf:
        for k in range(6):
            cand[6 + k] = cand[k]
        b1, n1, b2, n2 = _two_books(q, s, e, qmax, lengths)
        cand[0] = sf
        cand[1] = b1
        cand[2] = n1
        cand[3] = b2
        cand[4] = n2
        cand[5] = qmax
    return cand[1], cand[2], cand[3], cand[4]


#: Rate-distortion scalefactor choice (:func:`rd_scalefactors`): a coded unit may take its
#: coarsest fitting scalefactor or up to SF_RD_FINER steps finer (never coarser, so no unit's noise
#: rises above its allowance) when the finer step costs fewer bits in all: scalefactor delta,
#: book index and spectral data together.  Measured on 10 clips (5 s, CBR 64/128 kbit/s): 3 finer
#: steps saved ~4 % of the side information but lost 2f-model points on the dense mixes at 64
#: (wanderer -2.2, heroes_rite -2.4, the_city_falls -2.3; ViSQOL -0.11 on silvan_sanctuary) for
#: no measured reason (the per-band SNR rose slightly everywhere); 1 step lost 1.3-1.9.  So 0: the
#: search only picks each unit's book for the fewest bits with the book-index contexts.
SF_RD_FINER = 0
#: ...and among paths of equal bits the finer one wins; each finer step is credited this many bits
SF_RD_FINER_CREDIT = 0.0
_RD_STATES = 2 * (SF_RD_FINER + 1)      # (scalefactor, book) candidates per unit
_RD_INF = 1e18


#: One frame's units as allocation reads them, every channel (``cod``/``xa``/``thr``/``energy``/
#: ``ton``: (channels, ...)); nothing in it changes during the frame's rate loop.  ``noise_band``:
#: the first band of the frame's high-band noise (HF_NOISE_HZ), or one past the last band (none).
FrameUnits = namedtuple("FrameUnits", "cod xa ub nbands ngroups thr energy ton floor quantizer mu "
                        "max_band pns_band pns_ton zero_fill lengths is_short ms_mode ms_flags "
                        "noise_band")
#: What allocation writes, (channels, units) or (channels, N): books, scalefactors, quantized
#: values in coding order, each spectral unit's bits, and per channel the last coded band + 1.
Allocation = namedtuple("Allocation", "books sf q ubits max_bands")
#: Scratch of one frame's allocations, kept across its trial offsets (:func:`alloc_scratch`).
AllocScratch = namedtuple("AllocScratch", "hint qsf qb qbsf qlast cand mlo mhi mnoise mrec mqmax "
                                          "rdi rdf trial qalt pkey pbits")


def alloc_scratch(channels, max_units, n):
    """:data:`AllocScratch` for frames of up to ``max_units`` units and ``n`` coefficients: per
    channel and unit the hint (last scalefactor, -1: none yet this frame), the scalefactor ``q``
    holds (-1: none), a second buffer of quantized values ``qb`` (the scalefactor it holds, and
    which of the two was written last), the book candidates at a scalefactor
    (:func:`_unit_books`), the memo of quantizations (:func:`_quantize_memo`: run ``mlo..mhi``,
    noise, reconstruction energy, max |q| per scalefactor); the Viterbi arrays of
    :func:`rd_scalefactors`; and the last trial's offset and whether a unit's search went past
    its coarsest fitting scalefactor (``trial``, :func:`~pacodec.ratecontrol.code_at`); a third
    buffer of quantized values for the energy-matched rounding's passes (``qalt``,
    :func:`quantize_matched_alt`); per unit of a pair's second channel the bits of its books
    costed with the partner's context and what they were costed at (``pbits``, ``pkey``:
    :func:`partner_books`)."""
    cu = (channels, max_units)
    return AllocScratch(hint=np.full(cu, -1, dtype=np.int64), qsf=np.full(cu, -1, dtype=np.int64),
                        qb=np.zeros((channels, n), dtype=np.int64),
                        qbsf=np.full(cu, -1, dtype=np.int64), qlast=np.zeros(cu, dtype=np.int64),
                        cand=np.full(cu + (12,), -1, dtype=np.int64),
                        mlo=np.ones(cu, dtype=np.int64), mhi=np.zeros(cu, dtype=np.int64),
                        mnoise=np.zeros(cu + (256,)), mrec=np.zeros(cu + (256,)),
                        mqmax=np.zeros(cu + (256,), dtype=np.int64),
                        rdi=np.zeros((4, max_units, _RD_STATES), dtype=np.int64),
                        rdf=np.zeros((max_units, _RD_STATES)), trial=np.zeros(2),
                        qalt=np.zeros((channels, n), dtype=np.int64),
                        pkey=np.full(cu + (2, 3), -1, dtype=np.int64),
                        pbits=np.full(cu + (2, 8), -2, dtype=np.int64))


@njit(inline="always")
def _channel(fu, out, ch):
    """Channel ``ch``'s rows of the frame and the result: coefficients, magnitudes, unit
    energies; books, scalefactors, quantized values, spectral bits."""
    return fu.cod[ch], fu.xa[ch], fu.energy[ch], out.books[ch], out.sf[ch], out.q[ch], out.ubits[ch]


@njit
def rd_scalefactors(fu, out, scr, ch):
    """Re-choose the scalefactors and books of channel ``ch``'s coded units for the fewest bits.

    On entry ``sf``/``books`` hold each unit's coarsest fitting scalefactor and best book.  Each
    coded unit's candidates are (scalefactor, book) pairs: that scalefactor or up to SF_RD_FINER
    steps finer, each with the two smallest books that code it (at the unit's own scalefactor
    the ones :func:`allocate` kept in ``scr.cand``); noise units keep theirs.  A Viterbi search
    over the units in coding order (FORMAT.md §5.3) minimises the exact Huffman bits of the
    scalefactor deltas, the context-coded book indices and the spectral data.  Finer steps only
    lower a unit's noise, so the result is never worse than the start and never larger.
    ``rdi[0..3, i, j]``: scalefactor, book, spectral bits, back pointer of candidate ``j`` of the
    ``i``-th coded unit; ``rdf[i, j]``: path cost.
    """
    c, xa, energy, books, sf, q, ubits = _channel(fu, out, ch)
    ub = fu.ub
    nbands = fu.nbands
    nunits = nbands * fu.ngroups
    max_band = fu.max_band
    lengths = fu.lengths
    rdi = scr.rdi
    rdf = scr.rdf
    S = rdi.shape[2]
    n = 0
    prev_seq = -1           # previous unit in coding order (below max_band)
    prev_chain = -1
    for u in range(nunits):
        b = u % nbands
        if b >= max_band:
            continue
        bk0 = books[u]
        if bk0 != 0:
            s = ub[u]
            e = ub[u + 1]
            i = n
            m = 0
            if bk0 == NOISE_BOOK:
                rdi[0, i, 0] = sf[u]
                rdi[1, i, 0] = NOISE_BOOK
                rdi[2, i, 0] = 0
                m = 1
            else:
                for j in range(SF_RD_FINER + 1):
                    v = sf[u] - j
                    if v < 0:
                        break
                    cand = scr.cand[ch, u]
                    if cand[0] == v:                # the books allocate() weighed at v
                        qmax = cand[5]
                    else:
                        noise, qmax, rec = quantize_matched(c, xa, s, e, v, fu.quantizer, fu.mu,
                                                            q, energy[u])
                        scr.qsf[ch, u] = v
                    if qmax > MAX_QUANT or qmax == 0:
                        if j == 0:
                            m = 0
                        break
                    if cand[0] == v:
                        b1, n1, b2, n2 = cand[1], cand[2], cand[3], cand[4]
                    else:
                        b1, n1, b2, n2 = _two_books(q, s, e, qmax, lengths)
                    if b1 >= 0 and n1 >= 0:
                        rdi[0, i, m] = v
                        rdi[1, i, m] = b1
                        rdi[2, i, m] = n1
                        m += 1
                    if b2 >= 0 and n2 >= 0:
                        rdi[0, i, m] = v
                        rdi[1, i, m] = b2
                        rdi[2, i, m] = n2
                        m += 1
                if m == 0:      # cannot happen for a unit allocate() coded; keep it as it is
                    rdi[0, i, 0] = sf[u]
                    rdi[1, i, 0] = bk0
                    rdi[2, i, 0] = ubits[u]
                    m = 1
            for j in range(m, S):
                rdi[1, i, j] = -1
            adjacent = prev_chain >= 0 and prev_chain == prev_seq
            # the band after the previous coded unit (a zero unit's when not adjacent)
            nb_prev = 0
            if prev_chain >= 0:
                nb_prev = prev_chain % nbands + 1
                if nb_prev >= max_band:
                    nb_prev = 0
            # book-index rows after book 0 (book_row(pb, ...) is that row + pb): no division
            # per transition; tests/test_bitio_huffman.py holds the layout to that
            row_b = book_row(0, b, nbands)
            row_prev = book_row(0, nb_prev, nbands)
            for j in range(m):
                bk = rdi[1, i, j]
                own = rdi[2, i, j] - SF_RD_FINER_CREDIT * (sf[u] - rdi[0, i, j])
                if n == 0:
                    rdf[i, j] = own + lengths[row_b, bk]
                    rdi[3, i, j] = -1
                    continue
                best = _RD_INF
                arg = -1
                for k in range(S):
                    pb = rdi[1, i - 1, k]
                    if pb < 0 or rdf[i - 1, k] >= _RD_INF:
                        continue
                    d = rdi[0, i, j] - rdi[0, i - 1, k]
                    if d > SF_DELTA_MAX or d < -SF_DELTA_MAX:
                        continue
                    t = rdf[i - 1, k] + lengths[sf_row(pb, bk), d + SF_DELTA_MAX]
                    if adjacent:
                        t += lengths[row_b + pb, bk]
                    else:
                        t += lengths[row_prev + pb, 0] + lengths[row_b, bk]
                    if t < best:
                        best = t
                        arg = k
                rdf[i, j] = best + own
                rdi[3, i, j] = arg
            for j in range(m, S):
                rdf[i, j] = _RD_INF
            prev_chain = u
            n += 1
        prev_seq = u
    if n == 0:
        return
    # the exit of the last coded unit into a following zero unit
    best = _RD_INF
    arg = -1
    for k in range(S):
        if rdi[1, n - 1, k] < 0:
            continue
        t = rdf[n - 1, k]
        if prev_chain != prev_seq:
            bn = prev_chain % nbands + 1
            if bn >= max_band:
                bn = 0
            t += lengths[book_row(rdi[1, n - 1, k], bn, nbands), 0]
        if t < best:
            best = t
            arg = k
    if arg < 0 or best >= _RD_INF:
        # no codable path (deltas beyond the code's range): restore the starting choice
        arg = -2
    # back-track, writing the choice from the last coded unit to the first
    i = n - 1
    for u in range(nunits - 1, -1, -1):
        b = u % nbands
        if b >= max_band or books[u] == 0:
            continue
        if arg == -2:
            j = 0
            for k in range(S):
                if rdi[1, i, k] >= 0 and rdi[0, i, k] == sf[u] and rdi[2, i, k] < rdi[2, i, j]:
                    j = k
        else:
            j = arg
            arg = rdi[3, i, j]
        v = rdi[0, i, j]
        bk = rdi[1, i, j]
        if bk != NOISE_BOOK:
            if scr.qsf[ch, u] != v:
                quantize_matched_alt(c, xa, ub[u], ub[u + 1], v, fu.quantizer, fu.mu, q, energy[u],
                                     scr.qalt[ch], True)
                scr.qsf[ch, u] = v
            ubits[u] = rdi[2, i, j]
        sf[u] = v
        books[u] = bk
        i -= 1


@njit(inline="always")
def allocate(fu, out, scr, ch, gain):
    """Scalefactors, books and quantized values of channel ``ch`` for offset ``gain`` (linear):
    ``fu`` the frame (:data:`FrameUnits`; ``zero_fill``: ZERO_FILL or 0 (off) by :func:`pns_rule`),
    ``out`` the result (:data:`Allocation`), ``scr`` the frame's scratch (:data:`AllocScratch`,
    whose hints and memo carry work from one trial offset of the frame to the next)."""
    c, xa, energy, books, sf, q, ubits = _channel(fu, out, ch)
    thr = fu.thr[ch]
    tonality = fu.ton[ch]
    ub = fu.ub
    nbands = fu.nbands
    floor = fu.floor
    quantizer = fu.quantizer
    mu = fu.mu
    max_band = fu.max_band
    pns_band = fu.pns_band
    pns_ton = fu.pns_ton
    noise_band = fu.noise_band
    zero_fill = fu.zero_fill
    lengths = fu.lengths
    nunits = nbands * fu.ngroups
    for u in range(nunits):
        s = ub[u]
        e = ub[u + 1]
        b = u % nbands
        books[u] = 0
        sf[u] = 0
        if b >= max_band or e <= s:
            continue
        E = energy[u]
        if b >= noise_band and tonality[u] < HF_NOISE_TON:
            if E > 1e-12 and E > thr[u] * ZERO_FILL:
                books[u] = NOISE_BOOK
            continue
        A = thr[u] * gain * floor[1, b]
        noisy = b >= pns_band and tonality[u] < pns_ton
        if E > thr[u] and not noisy:
            # audible above its masking threshold: keeps MIN_SNR, relaxed dB for dB only beyond
            # FLOOR_OFFSET so the rate loop can always meet its budget
            A = min(A, E * floor[0, b] * max(1.0, gain * FLOOR_GAIN_INV))
        if E <= A:
            if E > 1e-12 and ((noisy and E > thr[u])
                              or (zero_fill > 0.0 and E > thr[u] * zero_fill
                                  and tonality[u] < ZERO_FILL_TON)):
                books[u] = NOISE_BOOK
            continue
        if noisy and E < A * PNS_SMR:
            books[u] = NOISE_BOOK
            continue
        v, qmax = _search_sf(c, xa, s, e, A, E, quantizer, mu, q, scr, ch, u)
        sf[u] = v
        scr.hint[ch, u] = v
        bk, bits = 0, 0
        if qmax != 0:
            b1, n1, b2, n2 = _unit_books(q, s, e, qmax, lengths, scr, ch, u, v)
            bk, bits = _pick_book(qmax, b1, n1, b2, n2)
        books[u] = bk
        ubits[u] = bits
    # units without spectral data are zero (q is not cleared before the search: the search
    # reuses what it holds, scr.qsf)
    for u in range(nunits):
        if books[u] == 0 or books[u] == NOISE_BOOK:
            for i in range(ub[u], ub[u + 1]):
                q[U(i)] = 0
            scr.qsf[ch, u] = -1
    # noise units carry their RMS level as the scalefactor
    for u in range(nunits):
        if books[u] == NOISE_BOOK:
            w = ub[u + 1] - ub[u]
            rms = math.sqrt(energy[u] / w)
            v = int(math.floor(4.0 * math.log2(max(rms, 1e-30)) + SF_BIAS + 0.5))
            sf[u] = min(255, max(0, v))
    rd_scalefactors(fu, out, scr, ch)
    # keep scalefactor deltas codable; a clamped unit is requantized with its new scalefactor
    prev = -1
    for u in range(nunits):
        if books[u] == 0:
            continue
        if prev >= 0:
            v = sf[u]
            if v > prev + SF_DELTA_MAX:
                v = prev + SF_DELTA_MAX
            elif v < prev - SF_DELTA_MAX:
                v = prev - SF_DELTA_MAX
            if v != sf[u]:
                sf[u] = v
                if books[u] != NOISE_BOOK:
                    s = ub[u]
                    e = ub[u + 1]
                    noise, qmax, rec = quantize_matched(c, xa, s, e, v, quantizer, mu, q, energy[u])
                    scr.qsf[ch, u] = -1
                    if qmax > MAX_QUANT:
                        for i in range(s, e):
                            q[i] = min(MAX_QUANT, max(-MAX_QUANT, q[i]))
                        qmax = MAX_QUANT
                    b1, n1, b2, n2 = _two_books(q, s, e, qmax, lengths)
                    bk, bits = _pick_book(qmax, b1, n1, b2, n2)
                    books[u] = bk
                    ubits[u] = bits
                    if bk == 0:
                        continue
        prev = sf[u]


@njit(inline="always")
def stereo_decision(cl, cr, ub, nunits, thr_l, thr_r, e_l, e_r, flags):
    """Per unit, 1 where mid/side needs fewer bits (by a perceptual-entropy estimate) and keeps
    the channels' balance (MS_BALANCE); flagged units are transformed to M/S in place, with the
    pair's lower threshold for both."""
    n_ms = 0
    for u in range(nunits):
        em = 0.0
        es = 0.0
        for i in range(ub[u], ub[u + 1]):
            m = (cl[i] + cr[i]) * 0.7071067811865476
            s = (cl[i] - cr[i]) * 0.7071067811865476
            em += m * m
            es += s * s
        t = min(thr_l[u], thr_r[u])
        pe_lr = math.log(max(e_l[u] / thr_l[u], 1.0)) + math.log(max(e_r[u] / thr_r[u], 1.0))
        pe_ms = math.log(max(em / t, 1.0)) + math.log(max(es / t, 1.0))
        balanced = abs(e_l[u] - e_r[u]) <= MS_BALANCE * (e_l[u] + e_r[u])
        flags[u] = 1 if pe_ms < pe_lr and balanced else 0
        n_ms += flags[u]
        if flags[u]:
            for i in range(ub[u], ub[u + 1]):
                a = cl[i]
                b = cr[i]
                cl[i] = (a + b) * 0.7071067811865476
                cr[i] = (a - b) * 0.7071067811865476
            thr_l[u] = t
            thr_r[u] = t
            e_l[u] = em
            e_r[u] = es
    return n_ms


def band_weights(z, span):
    """Per band, from its centre ``z`` and width ``span`` in Bark: row 0 the largest noise/energy
    ratio a unit above its masking threshold may have (the SNR floor, relaxed by the rate loop only
    beyond FLOOR_GAIN_INV), row 1 the factor on its masking threshold (the low-frequency tilt, and
    the division by a band's width beyond one critical band).  See FLOOR_DB, TILT_DB, WIDE_EXP."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty((2, z.size))
    for row, (db, bark) in enumerate(((FLOOR_DB, FLOOR_BARK), (TILT_DB, TILT_BARK))):
        t = np.clip((z - bark[0]) / (bark[1] - bark[0]), 0.0, 1.0)
        out[row] = 10.0 ** (-(db[0] + (db[1] - db[0]) * t) / 10.0)
    out[1] /= np.maximum(1.0, np.asarray(span, dtype=np.float64)) ** WIDE_EXP
    return out


def pns_rule(kbps_per_channel: float):
    """(start frequency, tonality limit, zero-unit factor or 0) of noise substitution at this
    bitrate per channel (ZERO_FILL from ZERO_FILL_KBPS up)."""
    # measured with tools/compare.py, 22 clips (5 s), against 5 kHz / 0.35: at 32 kbit/s per
    # channel 3.5 kHz / 0.5 gave ViSQOL +0.054, 2f +5.2 (tabla -1.8 2f); at 64 kbit/s per channel
    # 2f -0.31 (bell -2.3), so the old rule stays there.  Later starts or a stricter limit lost
    # on both metrics.
    zero_fill = ZERO_FILL if kbps_per_channel >= ZERO_FILL_KBPS else 0.0
    if kbps_per_channel <= 40.0:
        return PNS_START_LOW_HZ, PNS_TONALITY_LOW, zero_fill
    return PNS_START_HZ, PNS_TONALITY, zero_fill


def bandwidth_hz(kbps_per_channel: float) -> float:
    """Audio bandwidth the encoder codes at this bitrate per channel (beyond it: nothing)."""
    # measured on the corpus (tools/compare.py): at 32 kbit/s per channel a 17 kHz band scored
    # +0.16 mean ViSQOL over 13 kHz; full band was worse at every rate below 80 kbit/s/channel
    pts = [(8, 5000), (16, 9000), (24, 13000), (32, 17000), (48, 17500), (64, 18500), (80, 20000),
           (96, 22000)]
    x = kbps_per_channel
    if x <= pts[0][0]:
        return pts[0][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[-1][1]


def long_band_min(cfg, settings) -> int:
    """The ``min_band`` the encoder signals (FORMAT.md §3.1, §5.1: a long transform's bands are
    at least ``4 << min_band`` bins wide) for this stream configuration and rate control
    settings (:class:`~pacodec.config.EncoderSettings`).  The one place of the rule.

    8 bins (1) in both modes.  Normal mode: at 44.1 kHz the 17 bands of 4 bins below ~1.5 kHz
    become 8 wide (46 -> 35 long bands): fewer book indices and scalefactors, and the bits go to
    the spectrum (SNR +1..4 dB per critical band from 100 Hz to 2 kHz on a dense mix at 64
    kbit/s).  Chosen on six dense mixes of the corpus's even half at CBR 64 (2f +5.0, ViSQOL
    +0.0015; 16 bins +7.6 but ViSQOL -0.0023, weirdo -0.024); all 39 clips, CBR against format
    4: 2f +3.7 / +1.1 and ViSQOL +0.0033 / +0.0007 at 64 / 128 kbit/s (README,
    docs/quality-history.md).
    Low-delay mode (256-sample frames at 48 kHz, where scalefactors and book indices were 40 %
    and 22 % of a dense mix at 64 kbit/s with 4-bin bands): 8 bins chosen on eight clips of the
    even half against 4 and 16, confirmed on eight of the odd half (`tools/compare.py
    --low-delay`, CBR 64/96/128, whole clips): in the means at 64/96/128 2f +11.2/+8.0/+7.1
    and ViSQOL +0.097/+0.092/+0.012 (choosing half), +11.9/+11.4/+11.0 and
    +0.066/+0.052/+0.012 (confirming half); per clip all up but three within the noise
    (ViSQOL -0.006 and -0.005, 2f -0.1, at 128).  16 bins raised 2f further at 64 kbit/s but
    lost ViSQOL (per clip down to -0.33) (docs/quality-history.md, "Session 15").
    ``settings`` is there for a rule by rate or mode (not used yet)."""
    return 1


@njit(inline="always")
def _partner_bits(q, s, e, book, lengths, pq, pm, pbits, memo):
    """:func:`~pacodec.huffman.unit_bits` of ``q[s:e]`` with ``book`` and the partner's context,
    from ``pbits[book]`` when ``memo`` and it was costed before (-2: not yet), else costed (and
    kept there when ``memo``)."""
    if memo and pbits[book] != -2:
        return pbits[book]
    n = unit_bits(q, s, e, book, lengths, pq, pm)
    if memo:
        pbits[book] = n
    return n


@njit
def partner_books(fu, out, scr):
    """The spectral book of each coded unit of a channel pair's second channel, costed with the
    partner's context (FORMAT.md §7.3, version 7: a tuple's row follows the first channel's
    values at the same positions).  :func:`allocate` costs every channel's units without it (the
    partner is not final while a channel is allocated); once every channel is, this costs the
    unit's candidate books (:func:`_unit_books`, where they are those of its scalefactor) with
    the context, keeps the cheaper and sets ``out.ubits``, so that
    :func:`~pacodec.payload.payload_bits` counts exactly what the writer writes.

    A unit's bits depend only on its values and, with a coded partner, the partner's: where
    both hold the quantization of their scalefactor (``scr.qsf``: not a clamped unit), a book's
    bits are kept (``scr.pbits``) for the frame's later trials under the key (scalefactor,
    partner mode, partner's scalefactor or -1) in ``scr.pkey`` (reset with the unit's memo of
    quantizations, :func:`_search_sf`), so a unit that a trial left as it was, or returned to
    (the last two keys are kept), is not costed again.  Same bits as costing every time."""
    nb = fu.nbands
    books = out.books
    for c in range(1, books.shape[0], 2):
        qc = out.q[c]
        pq = out.q[c - 1]
        for g in range(fu.ngroups):
            for b in range(out.max_bands[c]):
                u = g * nb + b
                bk = books[c, u]
                if bk == 0 or bk == NOISE_BOOK:
                    continue
                pm = spectral_partner(books, out.max_bands, c, u, b)
                s = fu.ub[u]
                e = fu.ub[u + 1]
                sfc = out.sf[c, u]
                memo = scr.qsf[c, u] == sfc
                psf = -1
                if pm == PARTNER_CODED:
                    psf = out.sf[c - 1, u]
                    if scr.qsf[c - 1, u] != psf:
                        memo = False
                pbits = scr.pbits[c, u, 0]
                if memo:
                    key = scr.pkey[c, u]
                    if key[0, 0] != sfc or key[0, 1] != pm or key[0, 2] != psf:
                        # the older entry becomes the newer, its key or a fresh one
                        old = key[1, 0] == sfc and key[1, 1] == pm and key[1, 2] == psf
                        pb1 = scr.pbits[c, u, 1]
                        for k in range(3):
                            t = key[0, k]
                            key[0, k] = key[1, k]
                            key[1, k] = t
                        for k in range(pbits.shape[0]):
                            t = pbits[k]
                            pbits[k] = pb1[k]
                            pb1[k] = t
                        if not old:
                            key[0, 0] = sfc
                            key[0, 1] = pm
                            key[0, 2] = psf
                            for k in range(pbits.shape[0]):
                                pbits[k] = -2
                best = bk
                best_bits = _partner_bits(qc, s, e, bk, fu.lengths, pq, pm, pbits, memo)
                cand = scr.cand[c, u]
                if cand[0] == sfc:
                    for k in (1, 3):
                        alt = cand[k]
                        if alt > 0 and alt != bk:
                            n = _partner_bits(qc, s, e, alt, fu.lengths, pq, pm, pbits, memo)
                            if n >= 0 and (best_bits < 0 or n < best_bits):
                                best = alt
                                best_bits = n
                books[c, u] = best
                out.ubits[c, u] = best_bits
