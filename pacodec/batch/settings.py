"""The settings record of a batch (what the manifest stores and resume compares) and the coding
options it means for an input."""
from __future__ import annotations

__all__ = ["encode_settings", "decode_settings", "encoder_kwargs", "coding_options"]


def encode_settings(*, bitrate=None, abr=None, quality=None, distance=None, quantizer=None,
                    mu=None, window=None, low_delay=False) -> dict:
    """The canonical settings record of an encode (what resume compares): the options as
    :func:`pacodec.options.resolve` settles them (defaults, conflicts), in the manifest's form."""
    from .. import __version__
    from ..options import resolve
    o = resolve(bitrate=bitrate, abr=abr, quality=quality, distance=distance,
                quantizer=quantizer, mu=mu, window_shape=window, low_delay=low_delay)
    rate = {"mode": o.mode, **{("bitrate" if k == "abr" else k): v
                               for k, v in o.rate_option().items()}}
    return {"kind": "encode", **rate, "quantizer": o.quantizer, "mu": o.mu,
            "window": o.window_shape, "low_delay": o.low_delay, "pacodec": __version__}


def decode_settings(*, fmt="wav", float_=False, strict=False) -> dict:
    from .. import __version__
    return {"kind": "decode", "format": fmt, "float": bool(float_), "strict": bool(strict),
            "pacodec": __version__}


def _resolve_keywords(s: dict) -> dict:
    """The keywords of :func:`pacodec.options.resolve` of a settings record."""
    rate = {k: s[k] for k in ("quality", "distance") if k in s} or {
        "abr" if s["mode"] == "abr" else "bitrate": s["bitrate"]}
    return dict(rate, quantizer=s["quantizer"], mu=s["mu"] if s["quantizer"] == "mulaw" else None,
                window_shape=s["window"], low_delay=s["low_delay"])


def encoder_kwargs(s: dict) -> dict:
    """The :class:`~pacodec.Encoder` keywords of a settings record."""
    from ..options import resolve
    return resolve(**_resolve_keywords(s)).encoder_kwargs()


def coding_options(s: dict, samplerate, channels):
    """The coding options of a settings record for an input (with the input's limits)."""
    from ..ratelimit import coding_options
    return coding_options(samplerate, channels, **_resolve_keywords(s))
