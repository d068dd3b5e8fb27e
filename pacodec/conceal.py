"""Concealment of lost frames (not normative: FORMAT.md §12 leaves the method to the decoder).

A :class:`Concealer` belongs to one :class:`~pacodec.decoder.Decoder`.  The decoder calls
:meth:`Concealer.observe` after every frame it decodes and :meth:`Concealer.conceal` for a run of
lost frames; the concealer returns the PCM of each replacement frame, made through the decoder's
synthesis (so the overlap-add state stays continuous).  Everything about *how* a frame is
replaced lives here; the decoder only decides *how many* frames are lost and trims the result.

Two methods (``method=``):

``"pitch"`` (opt-in: ``Decoder(conceal="pitch")``; measured better by
ViSQOL, worse by the 2f-model at low loss rates, so not the default).  The concealer keeps the last ``HISTORY`` output samples.  For a lost frame
it looks for a period in them (normalised autocorrelation of the mono mix, lags 2.5-20 ms) and
continues the signal by repeating its last period over the lost frame's whole window span (the
phase carries on from the last sample heard, as CELT's PLC does); that time signal is windowed
with the frame's own window and transformed with the MDCT, so the decoder's overlap-add joins it
to the frames around it.  How much of the frame is this periodic continuation and how much is the
"spectral" noise below (equal energy, uncorrelated) follows the period's correlation: tonal and
voiced sound is continued, noise stays noise.  The gain fades smoothly within the frames:
``PITCH_DECAY`` per consecutive lost frame after the first.

``"spectral"`` (default, the method before): repeat the last long spectrum with random
signs, fading by :data:`CONCEAL_DECAY` per consecutive lost frame; once the gain has faded below
-180 dB, zero spectra (the overlap tail of the last good frame still plays out).
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

__all__ = ["Concealer", "CONCEAL_DECAY", "MAX_CONCEAL", "CONCEAL_SEED", "DEFAULT_METHOD",
           "METHODS"]

CONCEAL_DECAY = 0.6          # gain per consecutive lost frame (about -4.4 dB)
MAX_CONCEAL = 256            # frames concealed for one gap at most
CONCEAL_SEED = 7919          # seed of the sign generator (any fixed value: output is reproducible)
FADED = 1e-9                 # gain below which a concealed frame is silence (-180 dB)
METHODS = ("spectral", "pitch")   # Decoder(conceal=...), pacodec receive/live --conceal
DEFAULT_METHOD = "spectral"   # "pitch" wins on ViSQOL, loses on the 2f-model (module docstring)
PITCH_FIRST = 0.8            # "pitch": gain at the end of the first lost frame ...
PITCH_DECAY = 0.8            # ... and per further consecutive lost frame (about -1.9 dB)
PITCH_MIN, PITCH_MAX = 0.0025, 0.020    # period search range, seconds
PITCH_FLO, PITCH_FHI = 1000.0, 2000.0   # periodic below, noise above, a crossfade between (Hz)
HISTORY = 4096               # output samples kept (>= 2 * PITCH_MAX at 96 kHz)

# synth(coefs (channels, hop), is_short, left_short, right_short) -> pcm (hop, channels) float32
Synth = Callable[[np.ndarray, int, int, int], np.ndarray]


class Concealer:
    """Replaces lost frames of one stream.

    ``observe(coefs, is_short, right_short)`` after each decoded frame (natural-order spectrum,
    ``(channels, hop)``); ``conceal(count, following=None)`` yields one hop of PCM per lost frame (at most
    :data:`MAX_CONCEAL` per call); ``reset()`` forgets the signal (a new stream).
    ``concealed`` counts the frames replaced so far.
    """

    def __init__(self, channels: int, hop: int, synth: Synth, *, seed: int = CONCEAL_SEED,
                 windows=None, offset: int = 0, samplerate: int = 48000, method=None):
        self._synth = synth
        self._last = np.zeros((channels, hop))       # last long spectrum
        self._rng = np.random.default_rng(seed)
        self.concealed = 0
        self.method = method or DEFAULT_METHOD
        if windows is None:                          # the pitch method needs the windows
            self.method = "spectral"
        self._windows = windows                      # (4, 2 * hop): index 2 * ls + rs
        self._offset = int(offset)                   # block position of the first output sample
        self._hop = hop
        self._lags = (max(2, int(PITCH_MIN * samplerate)),
                      min(int(PITCH_MAX * samplerate), HISTORY // 2 - 1))
        self._hist = np.zeros((HISTORY, channels))
        self._rate = samplerate
        self._bandw = None
        self._filled = 0
        self.reset()

    def reset(self):
        """Forget the last spectrum and the fade (the sign generator keeps running)."""
        self._last[:] = 0.0
        self._lost_run = 0
        self._prev_short = False
        self._hist[:] = 0.0
        self._filled = 0
        self._period = None

    def _remember(self, pcm):
        if pcm is None or self.method != "pitch":    # only the pitch method reads the history
            return
        n = len(pcm)
        if n >= HISTORY:
            self._hist[:] = pcm[-HISTORY:]
        else:
            self._hist[:-n] = self._hist[n:]
            self._hist[-n:] = pcm
        self._filled = min(HISTORY, self._filled + n)

    def observe(self, coefs: np.ndarray, is_short: int, right_short: int, pcm=None):
        """A frame was decoded: remember its spectrum (long frames only) and output (``pcm``,
        for the pitch method) and end the fade."""
        if not is_short:
            self._last[:] = coefs
        self._prev_short = bool(right_short)
        self._lost_run = 0
        self._period = None
        self._remember(pcm)

    def _find_period(self):
        """``(period, correlation)`` of the recent output (mono mix), or ``(None, 0)``."""
        lo, hi = self._lags
        w = hi
        if self._filled < w + hi + 1:
            return None, 0.0
        x = self._hist.mean(axis=1)
        a = x[-w:]
        ea = float(a @ a)
        if ea <= 1e-12:
            return None, 0.0
        seg = x[-w - hi:len(x) - lo]                 # candidates b_T = x[-w-T : -T]
        cand = np.lib.stride_tricks.sliding_window_view(seg, w)[::-1]   # row j: lag lo + j
        num = cand @ a
        eb = np.einsum("ij,ij->i", cand, cand)
        r = num / np.sqrt(ea * eb + 1e-30)
        j = int(np.argmax(r))
        # prefer the shortest lag almost as good (a multiple of the period repeats less often
        # but the same way; the shortest keeps the continuation closest to the last sound)
        peak = np.zeros(len(r), bool)
        peak[1:-1] = (r[1:-1] >= r[:-2]) & (r[1:-1] >= r[2:])
        good = np.flatnonzero(peak & (r >= 0.9 * r[j]))
        j = int(good[0]) if len(good) else j
        return lo + j, float(r[j])

    def _pitch_frame(self, g0, g1):
        """MDCT coefficients of the periodic continuation over the lost frame's window span,
        with the gain going from ``g0`` to ``g1`` across it; and the periodic weight."""
        if self._period is None:
            self._period, self._corr = self._find_period()
        T = self._period
        if T is None:
            return None, 0.0
        weight = float(np.clip((self._corr - 0.4) / 0.4, 0.0, 1.0))
        if weight <= 0.0:
            return None, 0.0
        n, s = self._hop, self._offset
        span = 2 * n - s
        idx = np.arange(span) % T
        ext = self._hist[HISTORY - T + idx]            # (span, channels)
        ramp = np.linspace(g0, g1, span)[:, None]
        z = np.zeros((2 * n, ext.shape[1]))
        z[s:] = ext * ramp
        win = self._windows[2 * int(self._prev_short)]
        from .mdct import mdct
        coefs = np.stack([mdct(z[:, c] * win) for c in range(z.shape[1])])
        return coefs, weight

    def conceal(self, count: int, following: tuple[np.ndarray, int] | None = None
                ) -> Iterator[np.ndarray]:
        """Yield the PCM of ``min(count, MAX_CONCEAL)`` replacement frames, one hop each.

        ``following`` is ``(coefs, is_short)`` of the frame after the gap when it is already
        decoded (byte-stream mode); the current method repeats its spectrum when it is long.
        """
        if following is not None and not following[1]:
            self._last[:] = following[0]
        for _ in range(min(count, MAX_CONCEAL)):
            self._lost_run += 1
            self.concealed += 1
            if self.method == "pitch":
                coefs = self._pitch_coefs()
            else:
                g = CONCEAL_DECAY ** self._lost_run
                if g > FADED:
                    signs = self._rng.integers(0, 2, self._last.shape) * 2.0 - 1.0
                    coefs = self._last * signs * g
                else:
                    coefs = np.zeros_like(self._last)
            pcm = self._synth(coefs, 0, int(self._prev_short), 0)
            self._prev_short = False
            self._remember(pcm)
            yield pcm

    def _pitch_coefs(self):
        k = self._lost_run
        g0 = PITCH_FIRST * PITCH_DECAY ** max(0, k - 2) if k > 1 else 1.0
        g1 = PITCH_FIRST * PITCH_DECAY ** (k - 1)
        if g1 <= FADED:
            return np.zeros_like(self._last)
        periodic, weight = self._pitch_frame(g0, g1)
        signs = self._rng.integers(0, 2, self._last.shape) * 2.0 - 1.0
        # the noise part fades like the spectral method did (noise held long sounds wrong)
        noise = self._last * signs * (CONCEAL_DECAY ** k)
        if periodic is None:
            return noise
        w = weight * self._band_weight()
        return w * periodic + np.sqrt(np.maximum(0.0, 1.0 - w * w)) * noise

    def _band_weight(self):
        """Per-coefficient share of the periodic continuation: all of it below PITCH_FLO, none
        above PITCH_FHI (a period estimate a fraction of a sample off turns high partials'
        phase around within a frame; noise with the right envelope does less harm there)."""
        if self._bandw is None:
            n = self._hop
            f = (np.arange(n) + 0.5) * (self._rate / 2.0) / n
            self._bandw = np.clip((PITCH_FHI - f) / max(PITCH_FHI - PITCH_FLO, 1.0), 0.0, 1.0)
        return self._bandw
