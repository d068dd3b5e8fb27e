"""Rate control (encoder only): the outer loop around :func:`~pacodec.allocation.allocate`.

For CBR/ABR the frame's budget comes from a bit reservoir (:class:`RateControl`, a leaky bucket:
CBR holds 6144 bits per channel like AAC's buffer model, ABR two seconds); the distance offset
``o`` is searched (:func:`search_offset`) so the frame fits, starting from a running offset that
tracks the reservoir's fullness.  VBR fixes ``o = 20 log10(distance)``.  Each trial offset
allocates every channel (:func:`code_at`) and costs the payload from code lengths
(:func:`~pacodec.payload.payload_bits`), without writing it.
"""
from __future__ import annotations

import math

from ._jit import njit
from .allocation import allocate, partner_books
from .payload import payload_bits

__all__ = ["code_at", "search_offset", "RateControl", "SEARCH_MIN", "SEARCH_MAX"]


@njit
def code_at(offset, fu, out, scr):
    """Allocate every channel at ``offset`` dB; returns the payload's exact bit count.  ``fu``,
    ``out``, ``scr``: the frame, the result and the scratch (:mod:`pacodec.allocation`'s
    :data:`~pacodec.allocation.FrameUnits`, :data:`~pacodec.allocation.Allocation`,
    :data:`~pacodec.allocation.AllocScratch`); the scratch carries the frame's earlier trials
    (see :func:`search_offset`); ``scr.trial`` records the offset (and whether a search of a
    unit left its coarsest fitting scalefactor for its values' range)."""
    scr.trial[0] = offset
    scr.trial[1] = 0.0
    gain = 10.0 ** (offset / 10.0)
    nbands = fu.nbands
    books = out.books
    for c in range(fu.cod.shape[0]):
        allocate(fu, out, scr, c, gain)
        # max_band ends at the last band any group codes: trailing zero units cost book indices
        last = 0
        for g in range(fu.ngroups):
            for b in range(last, fu.max_band):
                if books[c, g * nbands + b] != 0:
                    last = b + 1
        out.max_bands[c] = last
    partner_books(fu, out, scr)     # version 7: second channels costed with their partner
    return payload_bits(fu.is_short, out.max_bands, fu.ms_mode, fu.ms_flags, books, out.sf, out.q,
                        fu.ub, nbands, fu.ngroups, fu.lengths, out.ubits)


SEARCH_STEP = 4.0
SEARCH_MIN, SEARCH_MAX = -40.0, 120.0
SEARCH_RESOLUTION = 0.5
ACCEPT = 0.97           # a frame within 3 % under its target ends the search


@njit
def search_offset(target, start, vbr, fu, out, scr):
    """The smallest distance offset (best quality) whose payload fits ``target`` bits.

    VBR starts at its fixed offset and only moves up when the frame is too large; CBR/ABR
    bracket from ``start`` (the previous frame's offset) in SEARCH_STEP dB steps, then bisect to
    SEARCH_RESOLUTION.  On return ``out`` holds the returned offset's allocation.  The search of
    a frame starts afresh (every unit's hint -1, which also empties its memo of quantizations);
    later trial offsets, and :func:`code_at` calls for the same frame after it, reuse what the
    earlier ones quantized and costed (:func:`~pacodec.allocation.allocate`).
    """
    scr.hint[:, :] = -1
    o = start
    bits = code_at(o, fu, out, scr)
    if vbr and bits <= target:
        return o, bits
    # bracket: lo_o gives too many bits (lo_bits), hi_o fits (hi_bits)
    if bits <= target:
        hi_o, hi_bits = o, bits
        lo_o, lo_bits = o, -1
        if bits >= ACCEPT * target:
            return o, bits
        while True:
            if hi_o <= SEARCH_MIN:
                return hi_o, hi_bits
            lo_o = max(SEARCH_MIN, hi_o - SEARCH_STEP)
            lo_bits = code_at(lo_o, fu, out, scr)
            if lo_bits > target:
                break
            hi_o, hi_bits = lo_o, lo_bits
            if hi_bits >= ACCEPT * target:
                return hi_o, hi_bits
    else:
        lo_o, lo_bits = o, bits
        while True:
            hi_o = lo_o + SEARCH_STEP
            hi_bits = code_at(hi_o, fu, out, scr)
            if hi_bits <= target or hi_o >= SEARCH_MAX:
                break
            lo_o, lo_bits = hi_o, hi_bits
        if hi_bits > target:
            return hi_o, hi_bits
    # regula falsi inside the bracket: bits fall roughly linearly with the offset in dB
    while hi_o - lo_o > SEARCH_RESOLUTION and hi_bits < ACCEPT * target:
        f = (lo_bits - target) / max(lo_bits - hi_bits, 1)
        f = min(0.8, max(0.2, f))
        mid = lo_o + f * (hi_o - lo_o)
        b = code_at(mid, fu, out, scr)
        if b <= target:
            hi_o, hi_bits = mid, b
        else:
            lo_o, lo_bits = mid, b
    # out holds hi_o's allocation when the last trial was hi_o: allocating it again would find
    # every unit's scalefactor where it is (a search that starts at a scalefactor that fits and
    # whose next does not, or at 0 that does not fit, stays there), unless a unit's values did not
    # fit the format's range at its coarsest fitting scalefactor (then the search moved it on)
    if scr.trial[0] == hi_o and scr.trial[1] == 0.0:
        return hi_o, hi_bits
    bits = code_at(hi_o, fu, out, scr)
    return hi_o, bits


class RateControl:
    """Frame budgets for CBR, ABR and VBR.

    CBR/ABR: a leaky bucket of ``capacity`` bits (the reservoir) fills by ``bits_per_frame`` per
    frame and drains by what each frame uses.  A frame's target is the per-frame rate scaled by
    how demanding the frame is (its perceptual entropy against the running mean, square-rooted
    and limited to 0.6..2.0x) plus a pull that keeps the reservoir about half full, never more
    than the reservoir holds.  The encoder then searches the smallest distance offset whose
    frame fits the target.  VBR has a fixed offset and only the format's frame-size limit.
    """

    PE_SMOOTH = 0.9

    def __init__(self, settings, cfg):
        self.mode = settings.mode
        self.fps = cfg.samplerate / cfg.hop
        self.pe_avg = None
        if self.mode == "vbr":
            self.offset = 20.0 * math.log10(settings.distance)
            self.bits_per_frame = None
            self.capacity = 0.0
        else:
            self.bits_per_frame = settings.bitrate * 1000.0 / self.fps
            if self.mode == "cbr":
                self.capacity = max(6144.0 * cfg.channels, 2.0 * self.bits_per_frame)
            else:
                self.capacity = max(2.0 * self.fps * self.bits_per_frame, 6144.0 * cfg.channels)
            self.offset = 0.0
        self.fill = 0.0 if self.mode == "vbr" else self.capacity * 0.5

    def budget(self):
        """(max_bits, min_bits) this frame may use in total (including framing)."""
        if self.mode == "vbr":
            return None, 0
        hi = self.bits_per_frame + self.fill
        lo = self.bits_per_frame + self.fill - self.capacity
        return hi, lo

    def target(self, pe: float) -> float:
        """Bits (framing included) this frame should use, given its perceptual entropy."""
        B = self.bits_per_frame
        if self.pe_avg is None:
            self.pe_avg = max(pe, 1.0)
        demand = min(2.0, max(0.6, math.sqrt(max(pe, 1.0) / self.pe_avg)))
        self.pe_avg = self.PE_SMOOTH * self.pe_avg + (1 - self.PE_SMOOTH) * max(pe, 1.0)
        pull = 0.25 * (self.fill - 0.5 * self.capacity)
        hi, lo = self.budget()
        return min(hi, max(lo, B * demand + pull))

    def commit(self, bits: int):
        """Account a written frame of ``bits``."""
        if self.mode == "vbr":
            return
        self.fill += self.bits_per_frame - bits
        self.fill = min(self.fill, self.capacity)

    def adjust(self, bits: int):
        """Account ``bits`` more (or, negative, fewer) than the frames committed so far charged
        (a frame group's framing, once the group is closed: FORMAT.md §4)."""
        if self.mode == "vbr":
            return
        self.fill = min(self.fill - bits, self.capacity)
