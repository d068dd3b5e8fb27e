"""``pacodecpay``: pacodec frames wrapped in pacodec's UDP packets (FORMAT.md §9)."""
from __future__ import annotations

from ._base import (PAC_ANY_CAPS, PACKET_CAPS, FrameIndex, Gst, _bs, _Element, _template)


class PacodecPay(_Element):
    __gtype_name__ = "PacodecPay"
    __gstmetadata__ = (
        "pacodec UDP payloader", "Codec/Payloader/Network",
        "Wraps each pacodec frame in pacodec's UDP packet (tag, 32-bit frame number, sample "
        "timestamp; FORMAT.md section 9), as 'pacodec send' sends them; drops the stream header.",
        "pacodec")
    __gsttemplates__ = (_template("sink", Gst.PadDirection.SINK, PAC_ANY_CAPS),
                        _template("src", Gst.PadDirection.SRC, PACKET_CAPS))

    def __init__(self):
        super().__init__()
        self.reset()

    def reset(self):
        self._index = FrameIndex()
        self._hop = None

    def on_caps(self, caps):
        self.set_src_caps(Gst.Caps.from_string(PACKET_CAPS))
        return True

    def chain(self, data, buf):
        bs = _bs()
        if data[:4] == bs.MAGIC:
            return Gst.FlowReturn.OK
        try:
            fr = bs.parse_frame_at(data, 0)
        except bs.FormatError:
            fr = None
        if fr is None:
            return Gst.FlowReturn.OK
        if fr.ftype == bs.FRAME_EOS:
            k = self._index.next
            self._index = FrameIndex()
        else:
            if fr.ftype == bs.FRAME_CONFIG:
                try:
                    self._hop = bs.unpack_config_frame(fr)[0].hop
                except bs.FormatError:
                    return Gst.FlowReturn.OK
            k, _ = self._index.locate(fr)
        if k is None or self._hop is None:
            return Gst.FlowReturn.OK
        return self.push(bs.pack_packet(k, k * self._hop, data), buf.pts, buf.duration)
