"""pacodec — a perceptual audio codec (MDCT, psychoacoustic allocation, Huffman coding).

The public API is small and soundfile-like::

    import pacodec
    data = pacodec.encode(x, 44100)                 # x: (frames, channels) float array; VBR
    y, fs = pacodec.decode(data)
    pacodec.write("out.pac", x, 44100); y, fs = pacodec.read("out.pac")

plus the streaming classes :class:`Encoder`, :class:`Decoder` and :class:`PacFile`.  Submodules
are imported lazily so ``import pacodec`` stays cheap (numba loads on first use).
"""
from __future__ import annotations

__version__ = "0.7.0.dev0"

__all__ = [
    "__version__", "encode", "decode", "read", "write", "info", "blocks", "Encoder", "Decoder",
    "PacFile", "Info", "PacodecError", "FormatError", "UnsupportedError", "EncoderInputError",
    "SUPPORTED_RATES", "minimum_bitrate",
]

from .errors import EncoderInputError, FormatError, PacodecError, UnsupportedError  # noqa: E402

from .config import SUPPORTED_RATES  # noqa: E402  (light: no numba)

_LAZY = {
    "encode": "api", "decode": "api", "read": "api", "write": "api", "info": "pacfile",
    "blocks": "api", "Info": "pacfile", "Encoder": "encoder", "Decoder": "decoder",
    "PacFile": "pacfile", "minimum_bitrate": "ratelimit",
}


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'pacodec' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
