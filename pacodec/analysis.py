"""Developer analysis: where the bits go (encoder-side diagnostics, not part of the format).

:func:`nmr_per_band` encodes a signal and reports, for every long frame and scalefactor band, the
noise-to-mask ratio: the energy of the actual quantization error (or of the noise substitute)
over the masking threshold the psychoacoustic model computed.  0 dB means the noise sits exactly
at the threshold; the distance offset of the rate control moves the whole picture up or down.
"""
from __future__ import annotations

import numpy as np

from .decoder import reconstruct
from .encoder import Encoder

__all__ = ["nmr_per_band"]


class _Probe(Encoder):
    """An encoder that records, per long frame, the noise and threshold of every band."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.rows = []
        self._rng_probe = np.array([12345], dtype=np.uint32)

    def _encode_frame(self):
        frame = super()._encode_frame()
        lay = self.layout
        if self._hdr_short:
            self.rows.append(np.full(lay.nb_long, np.nan))
            return frame
        nb = lay.nb_long
        qi = self.config.quantizer_code
        nmr = np.zeros((self.channels, nb))
        rec = np.zeros(self.config.hop)
        for c in range(self.channels):
            reconstruct(self._q[c], self._books[c], self._sf[c], lay.ub_long, nb, qi,
                        float(self.config.mu), self._rng_probe, rec)
            err = (self._cod[c] - rec) ** 2
            for b in range(nb):
                s, e = lay.ub_long[b], lay.ub_long[b + 1]
                thr = self._units["thr"][c, b]
                nmr[c, b] = 10 * np.log10(max(err[s:e].sum(), 1e-20) / max(thr, 1e-20))
        self.rows.append(nmr.mean(axis=0))
        return frame

    def _analyse_short(self, blk, attack):
        self._hdr_short = True
        return super()._analyse_short(blk, attack)

    def _analyse_long(self, blk, left_short, right_short):
        self._hdr_short = False
        return super()._analyse_long(blk, left_short, right_short)


def nmr_per_band(data, samplerate, bitrate=128.0, **encoder_args):
    """Encode ``data`` and return ``(band_centres_hz, nmr_db)`` with ``nmr_db`` shaped
    (frames, bands), averaged over channels; short frames are NaN rows."""
    from .tables import band_centres_hz
    x = np.asarray(data, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    enc = _Probe(samplerate, x.shape[1], bitrate=bitrate, **encoder_args)
    enc.encode(x)
    enc.flush()
    return (band_centres_hz(samplerate, enc.config.hop, enc.config.long_band_width),
            np.array(enc.rows))
