"""Integrated loudness after ITU-R BS.1770-4 (EBU R 128), measured while encoding.

K-weighting (a high shelf of about +4 dB above 1.5 kHz, then a 38 Hz high pass) as two biquads
designed for any sample rate from the analog prototype of BS.1770 (at 48 kHz they equal the
coefficients printed in the recommendation); mean squares over 400 ms blocks stepped by 100 ms;
an absolute gate at -70 LUFS and a relative gate 10 LU below the absolute-gated loudness.

    m = LoudnessMeter(48000, 2)
    m.feed(x)                # x: (frames, channels), any number of calls
    m.integrated()           # LUFS, or None (shorter than one block, or all below -70 LUFS)

Channel weights: 1.0 for every channel, except a 6-channel input, taken as 5.1 in the WAVE
order (L R C LFE Ls Rs): the LFE is left out and the surrounds weigh 1.41 (BS.1770 table 3).
Memory: one mean square per channel and 100 ms step.
"""
from __future__ import annotations

import math

import numpy as np

from ._jit import njit

__all__ = ["LoudnessMeter", "integrated_loudness"]

ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0


def k_weighting_sos(samplerate: int) -> np.ndarray:
    """The K-weighting filter (pre-filter and RLB high pass) as second-order sections."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / samplerate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh ** 0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0,
             (vh - vb * k / q + k * k) / a0, 1.0, 2.0 * (k * k - 1.0) / a0,
             (1.0 - k / q + k * k) / a0]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / samplerate)
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def channel_weights(channels: int) -> np.ndarray:
    w = np.ones(channels)
    if channels == 6:
        w[:] = (1.0, 1.0, 1.0, 0.0, 1.41, 1.41)
    return w


@njit
def sos_filter(sos, x, z, y):
    """``y[:] = `` each channel of ``x`` (frames, channels) through the second-order sections
    ``sos`` (rows b0 b1 b2 a0 a1 a2, a0 = 1), state ``z`` (channels, sections, 2) updated in
    place: transposed direct form II in the same order of operations as
    ``scipy.signal.sosfilt``, so each channel is bit-identical to it (a test checks); a kernel
    so that encoding need not import scipy.signal (~0.5 s).  The channels go sample by sample
    side by side: their recursions are independent, so the processor overlaps them."""
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[n, c]
            for s in range(sos.shape[0]):
                w = sos[s, 0] * v + z[c, s, 0]
                z[c, s, 0] = sos[s, 1] * v - sos[s, 4] * w + z[c, s, 1]
                z[c, s, 1] = sos[s, 2] * v - sos[s, 5] * w
                v = w
            y[n, c] = v


class LoudnessMeter:
    """Streaming BS.1770 integrated loudness (see the module doc)."""

    def __init__(self, samplerate: int, channels: int):
        self.samplerate, self.channels = int(samplerate), int(channels)
        self._sos = k_weighting_sos(self.samplerate)
        self._zi = np.zeros((channels, len(self._sos), 2))   # start from silence
        self._step = max(1, int(round(0.1 * self.samplerate)))
        self._acc = np.zeros(channels)                    # sum of squares of the open step
        self._fill = 0                                    # samples in the open step
        self._steps: list = []                            # per step: mean square per channel
        self._weights = channel_weights(channels)

    def feed(self, x) -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        if not len(x):
            return
        # y keeps x's memory order (the sums below are numpy's, whose order follows it)
        y = np.empty_like(x)
        yc = y if y.flags.c_contiguous else np.empty(x.shape)
        sos_filter(self._sos, np.ascontiguousarray(x), self._zi, yc)
        if yc is not y:
            y[...] = yc
        y *= y
        pos = 0
        while pos < len(y):
            take = min(self._step - self._fill, len(y) - pos)
            self._acc += y[pos:pos + take].sum(axis=0)
            self._fill += take
            pos += take
            if self._fill == self._step:
                self._steps.append(self._acc / self._step)
                self._acc = np.zeros(self.channels)
                self._fill = 0

    def integrated(self) -> float | None:
        """Integrated loudness in LUFS of what was fed, or None if no block passes the gates."""
        if len(self._steps) < 4:
            return None
        s = np.asarray(self._steps)                       # (steps, channels)
        c = np.cumsum(np.vstack([np.zeros(self.channels), s]), axis=0)
        z = (c[4:] - c[:-4]) / 4                          # 400 ms blocks, 100 ms apart
        power = z @ self._weights
        with np.errstate(divide="ignore"):
            lk = -0.691 + 10 * np.log10(power)
        keep = lk > ABSOLUTE_GATE
        if not keep.any():
            return None
        rel = -0.691 + 10 * math.log10(float(power[keep].mean())) + RELATIVE_GATE
        keep &= lk > rel
        return float(-0.691 + 10 * math.log10(float(power[keep].mean())))


def integrated_loudness(x, samplerate: int) -> float | None:
    """BS.1770 integrated loudness (LUFS) of a whole signal ``(frames, channels)``."""
    x = np.asarray(x)
    m = LoudnessMeter(samplerate, 1 if x.ndim == 1 else x.shape[1])
    m.feed(x)
    return m.integrated()
