"""The public functions, in the style of python-soundfile: arrays shaped ``(frames, channels)``.

    data = pacodec.encode(x, 44100)                     # -> bytes of a .pac stream (VBR)
    y, fs = pacodec.decode(data)                        # -> float32 (frames, channels), rate
    pacodec.write("a.pac", x, 44100, bitrate=96)        # atomic: temp file + rename
    pacodec.write("a.pac", x, 44100, tags={"TITLE": "A song"})   # tags + loudness
    y, fs = pacodec.read("a.pac")
    pacodec.info("a.pac")                               # -> Info (rate, channels, duration, ...)
    for block in pacodec.blocks("a.pac", blocksize=4096): ...

All of them are thin wrappers over :class:`pacodec.Encoder`, :class:`pacodec.Decoder` and
:class:`pacodec.PacFile`.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .decoder import Decoder
from .encoder import Encoder
from .errors import EncoderInputError
from .options import resolve
from .pacfile import Info, PacFile, info
from .ratelimit import coding_options, minimum_bitrate

__all__ = ["encode", "decode", "read", "write", "info", "blocks", "Info", "minimum_bitrate"]


def _as_2d(data):
    x = np.asarray(data)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise EncoderInputError(f"audio must be shaped (frames,) or (frames, channels), got {x.shape}")
    return x


def encode(data, samplerate, bitrate=None, *, abr=None, quality=None, distance=None,
           mode=None, quantizer=None, mu=None, low_delay=False, window_shape="sine", tags=None,
           loudness=None) -> bytes:
    """Encode an array ``(frames, channels)`` (or ``(frames,)``) to the bytes of a ``.pac`` stream.

    Without a rate option: VBR at the default quality (about 120-125 kbit/s on 44.1 kHz stereo
    music).  ``bitrate`` (kbit/s for all channels) codes CBR, ``abr`` an average bitrate
    (also ``bitrate=B, mode="abr"``); ``quality`` (0..10, 10 best) or ``distance`` select VBR.
    One rate option at most; the rules are those of :mod:`pacodec.options` (a CBR/ABR rate
    above 16-bit PCM's is capped there with a ``UserWarning``, one too low for the input is an
    error).
    ``tags={"TITLE": ...}`` are stored in the stream with the measured loudness
    (``loudness=True`` measures it without tags).
    """
    x = _as_2d(data)
    opts = coding_options(samplerate, x.shape[1], bitrate=bitrate, abr=abr, mode=mode,
                          quality=quality, distance=distance, quantizer=quantizer, mu=mu,
                          low_delay=low_delay, window_shape=window_shape)
    if opts.note:
        warnings.warn(f"pacodec: {opts.note}", UserWarning, stacklevel=2)
    enc = Encoder(samplerate, x.shape[1], total_frames=len(x), tags=tags, loudness=loudness,
                  **opts.encoder_kwargs())
    parts = enc.encode(x)
    parts += enc.flush()
    return enc.header() + b"".join(parts)       # the header last: it holds the loudness


def decode(data, *, strict: bool = False):
    """Decode the bytes of a ``.pac`` stream -> ``(float32 array (frames, channels), samplerate)``."""
    dec = Decoder(strict=strict)
    a = dec.feed(data)
    b = dec.finish()
    out = np.concatenate([a, b]) if len(a) and len(b) else (a if len(a) else b)
    if out.shape[1] != dec.channels:
        out = np.zeros((0, dec.channels), dtype=np.float32)
    return out, dec.samplerate


def read(file, *, start: float = 0.0, stop: float | None = None, strict: bool = False):
    """Read a ``.pac`` file (path or binary file object) -> ``(data, samplerate)``."""
    for name, t in (("start", start), ("stop", stop)):
        if t is not None and not (isinstance(t, (int, float, np.integer, np.floating))
                                  and math.isfinite(t)):
            raise ValueError(f"{name} must be a finite number of seconds, got {t!r}")
    with PacFile(file, strict=strict) as f:
        if start:
            f.seek_time(start)
        frames = -1 if stop is None else max(0, int(round((stop - start) * f.samplerate)))
        return f.read(frames), f.samplerate


def write(file, data, samplerate, bitrate=None, *, mode=None, force=True, tags=None,
          loudness=None, **options) -> None:
    """Encode ``data`` and write it to ``file`` (a path: written atomically; or a file object).

    The coding options, ``tags`` and ``loudness`` are those of :func:`encode` (no rate option:
    VBR at the default quality).  Like
    ``soundfile.write``, an existing file is replaced -- atomically, so the old one stays
    intact until the new one is complete; ``force=False`` refuses instead."""
    x = _as_2d(data)
    opts = resolve(bitrate=bitrate, mode=mode, **options)    # PacFile's own `mode` is "w"
    with PacFile(file, "w", samplerate=samplerate, channels=x.shape[1], force=force,
                 total_frames=len(x), tags=tags, loudness=loudness,
                 **opts.encoder_kwargs()) as f:
        f.write(x)


def blocks(file, blocksize: int = 4096, *, strict: bool = False):
    """Yield decoded blocks of ``blocksize`` frames (the last may be shorter)."""
    with PacFile(file, strict=strict) as f:
        yield from f.blocks(blocksize)
