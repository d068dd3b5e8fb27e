"""The exceptions pacodec raises.  All derive from :class:`PacodecError`.

``FormatError`` and ``UnsupportedError`` also derive from ``ValueError`` so that code which
already catches ``ValueError`` around audio I/O keeps working (the python-soundfile convention).
"""

__all__ = ["PacodecError", "FormatError", "VersionError", "UnsupportedError", "EncoderInputError"]


class PacodecError(Exception):
    """Base class of every error pacodec raises on purpose."""


class FormatError(PacodecError, ValueError):
    """The input is not a valid pacodec stream (bad magic, CRC, syntax, truncation...)."""


class VersionError(FormatError):
    """A pacodec stream (CRC-valid header or config frame) of a format version this decoder does
    not implement.  Not damage: decoding cannot go on, so it is never concealed or skipped."""


class UnsupportedError(PacodecError, ValueError):
    """A parameter is outside what the format supports (sample rate, channels, bitrate...)."""


class EncoderInputError(PacodecError, ValueError):
    """The audio given to the encoder cannot be encoded (NaN/Inf samples, wrong shape...)."""
