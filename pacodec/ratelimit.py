"""The coding options checked against the input: what every front-end calls once it knows the
input's sample rate and channel count.

:func:`coding_options` is :func:`pacodec.options.resolve` with the input's limits (the rule
"the input's limits" there): a CBR/ABR rate above 16-bit PCM's is capped, one below
:func:`minimum_bitrate` refused.  The lowest rate is measured with the encoder, which imports
:mod:`pacodec.options`; so the measurement lives here, above both, and is handed to the
resolver.  ``pacodec encode``/``batch``/``listen``, :func:`pacodec.encode`/:func:`pacodec.write`,
``PacFile(..., "w")`` and ``pacodecenc`` use it; :class:`pacodec.Encoder` itself codes the
rate it is given.
"""
from __future__ import annotations

import functools
import math

from .options import CodingOptions, resolve

__all__ = ["coding_options", "minimum_bitrate", "CODING_KEYWORDS"]

#: the keywords of :func:`coding_options` (the coding options of :class:`pacodec.Encoder`)
CODING_KEYWORDS = ("bitrate", "abr", "quality", "distance", "mode", "quantizer", "mu",
                   "window_shape", "low_delay")


def coding_options(samplerate, channels, **options) -> CodingOptions:
    """:func:`~pacodec.options.resolve` ``options`` for an input of ``samplerate`` Hz and
    ``channels`` channels: the options, with a CBR/ABR rate capped at 16-bit PCM's (see
    :attr:`~pacodec.options.CodingOptions.note`) or refused below :func:`minimum_bitrate`."""
    return resolve(**options, samplerate=samplerate, channels=channels,
                   minimum_bitrate=minimum_bitrate)


def minimum_bitrate(samplerate, channels, *, low_delay=False, **config) -> float:
    """The lowest CBR/ABR rate (kbit/s) that leaves room for audio in this configuration.

    Every frame carries a header, a CRC and per-band side information even when it codes
    nothing: 48 kHz with 8 channels spends ~5.6 kbit/s on frames of silence alone, so
    ``bitrate=6`` there would decode to digital silence.  This measures the size of such an
    empty frame with the real encoder and asks for half as much again for the audio itself,
    rounded up.  (Measured once per configuration and process.)
    """
    return _minimum_bitrate(samplerate, channels, bool(low_delay), tuple(sorted(config.items())))


@functools.lru_cache(maxsize=64)
def _minimum_bitrate(samplerate, channels, low_delay, config) -> float:
    import numpy as np

    from .encoder import Encoder
    enc = Encoder(samplerate, channels, distance=50.0, low_delay=low_delay, group=1,
                  **dict(config))
    hop = enc.frame_size
    frames = enc.encode(np.zeros((4 * hop, enc.channels)))
    empty = min(len(f) for f in frames[1:]) if len(frames) > 1 else len(frames[0])
    return float(math.ceil(1.5 * 8 * empty * samplerate / hop / 1000))
