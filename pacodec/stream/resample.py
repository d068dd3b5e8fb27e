"""Streaming sample-rate conversion for playback on devices that cannot run at the stream's
rate (a JACK server fixed at 48 kHz playing a 44.1 kHz stream, for instance).

:class:`StreamResampler` is a rational polyphase FIR resampler (``up/down`` in lowest terms)
that keeps its input history between calls, so feeding a stream block by block gives exactly
the output of feeding it at once.  It allocates per call and belongs in the codec/playout
thread, never in an audio callback.
"""
from math import gcd

import numpy as np

__all__ = ["StreamResampler"]


class StreamResampler:
    def __init__(self, rate_in, rate_out, channels, taps_per_phase=24, cutoff=0.95):
        g = gcd(int(rate_in), int(rate_out))
        self.up = int(rate_out) // g
        self.down = int(rate_in) // g
        self.channels = int(channels)
        L = self.up
        J = int(taps_per_phase)
        n = J * L
        from scipy.signal import firwin
        h = firwin(n, cutoff / max(self.up, self.down), window=("kaiser", 8.0)) * L
        # polyphase table: H[p, j] = h[p + j*L]
        self._H = h.reshape(J, L).T.astype(np.float64).copy()
        self._J = J
        # input history: the last J-1 samples before the current block (zeros at the start)
        self._hist = np.zeros((J - 1, self.channels))
        self._consumed = 0     # absolute index of the first sample after the history
        self._next_out = 0     # absolute index of the next output sample
        # group delay, in output samples, so that callers can compensate if they care
        self.delay = (n - 1) / 2 / self.down

    def process(self, x):
        """Resample the next block ``x`` ((n, channels) float); returns (m, channels) float32."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.channels)
        buf = np.concatenate([self._hist, x])
        base = self._consumed - (self._J - 1)          # absolute index of buf[0]
        end = self._consumed + len(x)                   # absolute index after the last input
        L, M = self.up, self.down
        # outputs n whose newest needed input floor(n*M/L) < end
        n_end = -(-(end * L) // M)                      # ceil(end*L/M)
        n = np.arange(self._next_out, n_end)
        if len(n) == 0:
            self._keep(buf, end)
            return np.zeros((0, self.channels), np.float32)
        t = n * M
        i0 = t // L
        p = t % L
        idx = (i0 - base)[:, None] - np.arange(self._J)[None, :]     # (N, J)
        X = buf[idx]                                                 # (N, J, ch)
        y = np.einsum("nj,njc->nc", self._H[p], X)
        self._next_out = int(n_end)
        self._keep(buf, end)
        return y.astype(np.float32)

    def _keep(self, buf, end):
        k = self._J - 1
        self._hist = buf[len(buf) - k:].copy() if len(buf) >= k else np.concatenate(
            [np.zeros((k - len(buf), self.channels)), buf])
        self._consumed = end
