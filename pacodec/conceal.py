"""Concealment of lost frames (not normative: FORMAT.md §12 leaves the method to the decoder).

A :class:`Concealer` belongs to one :class:`~pacodec.decoder.Decoder`.  The decoder calls
:meth:`Concealer.observe` after every frame it decodes and :meth:`Concealer.conceal` for a run of
lost frames; the concealer returns the PCM of each replacement frame, made through the decoder's
synthesis (so the overlap-add state stays continuous).  Everything about *how* a frame is
replaced lives here; the decoder only decides *how many* frames are lost and trims the result.

The method: repeat the last long spectrum with random signs, fading by :data:`CONCEAL_DECAY` per
consecutive lost frame; once the gain has faded below -180 dB, zero spectra (the overlap tail of
the last good frame still plays out).
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

__all__ = ["Concealer", "CONCEAL_DECAY", "MAX_CONCEAL", "CONCEAL_SEED"]

CONCEAL_DECAY = 0.6          # gain per consecutive lost frame (about -4.4 dB)
MAX_CONCEAL = 256            # frames concealed for one gap at most
CONCEAL_SEED = 7919          # seed of the sign generator (any fixed value: output is reproducible)
FADED = 1e-9                 # gain below which a concealed frame is silence (-180 dB)

# synth(coefs (channels, hop), is_short, left_short, right_short) -> pcm (hop, channels) float32
Synth = Callable[[np.ndarray, int, int, int], np.ndarray]


class Concealer:
    """Replaces lost frames of one stream.

    ``observe(coefs, is_short, right_short)`` after each decoded frame (natural-order spectrum,
    ``(channels, hop)``); ``conceal(count, following=None)`` yields one hop of PCM per lost frame (at most
    :data:`MAX_CONCEAL` per call); ``reset()`` forgets the signal (a new stream).
    ``concealed`` counts the frames replaced so far.
    """

    def __init__(self, channels: int, hop: int, synth: Synth, *, seed: int = CONCEAL_SEED):
        self._synth = synth
        self._last = np.zeros((channels, hop))       # last long spectrum
        self._rng = np.random.default_rng(seed)
        self.concealed = 0
        self.reset()

    def reset(self):
        """Forget the last spectrum and the fade (the sign generator keeps running)."""
        self._last[:] = 0.0
        self._lost_run = 0
        self._prev_short = False

    def observe(self, coefs: np.ndarray, is_short: int, right_short: int):
        """A frame was decoded: remember its spectrum (long frames only) and end the fade."""
        if not is_short:
            self._last[:] = coefs
        self._prev_short = bool(right_short)
        self._lost_run = 0

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
            g = CONCEAL_DECAY ** self._lost_run
            if g > FADED:
                signs = self._rng.integers(0, 2, self._last.shape) * 2.0 - 1.0
                coefs = self._last * signs * g
            else:
                coefs = np.zeros_like(self._last)
            pcm = self._synth(coefs, 0, int(self._prev_short), 0)
            self._prev_short = False
            yield pcm
