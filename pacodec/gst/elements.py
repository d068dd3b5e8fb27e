"""The pacodec GStreamer elements, one module each, collected for gst-python's loader
(``python/*.py`` import this module and take their factory from :data:`FACTORIES`).

Stream representation: an ``audio/x-pacodec, framed=(boolean)true`` stream is an optional stream
header buffer (flagged HEADER, FORMAT.md §3) followed by exactly one frame (§4) per buffer.
All coding is done by :class:`pacodec.Encoder` / :class:`pacodec.Decoder` and
:mod:`pacodec.container`; the elements only move buffers, timestamps and events.
"""
from __future__ import annotations

from ._base import FrameIndex, Gst  # noqa: F401  (re-exported)
from .dec import PacodecDec
from .depay import PacodecDepay
from .enc import PacodecEnc
from .parse import PacodecParse
from .pay import PacodecPay

__all__ = ["PacodecEnc", "PacodecDec", "PacodecParse", "PacodecPay", "PacodecDepay", "FACTORIES"]

FACTORIES = {
    "pacodecenc": ("pacodecenc", Gst.Rank.PRIMARY, PacodecEnc),
    "pacodecdec": ("pacodecdec", Gst.Rank.PRIMARY, PacodecDec),
    "pacodecparse": ("pacodecparse", Gst.Rank.PRIMARY, PacodecParse),
    "pacodecpay": ("pacodecpay", Gst.Rank.NONE, PacodecPay),
    "pacodecdepay": ("pacodecdepay", Gst.Rank.NONE, PacodecDepay),
}
