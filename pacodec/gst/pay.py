"""``pacodecpay``: pacodec frames wrapped in pacodec's UDP packets (FORMAT.md §9)."""
from __future__ import annotations

from ..errors import FormatError
from ._base import (_RW, PAC_ANY_CAPS, PACKET_CAPS, FrameIndex, Gst, _container, _Element,
                    _template)


class PacodecPay(_Element):
    __gtype_name__ = "PacodecPay"
    __gstmetadata__ = (
        "pacodec UDP payloader", "Codec/Payloader/Network",
        "Wraps each pacodec frame in pacodec's UDP packet (tag, session, 32-bit frame number, "
        "sample timestamp, optional MAC; FORMAT.md section 9), as 'pacodec send' sends them; "
        "drops the stream header.",
        "pacodec")
    __gsttemplates__ = (_template("sink", Gst.PadDirection.SINK, PAC_ANY_CAPS),
                        _template("src", Gst.PadDirection.SRC, PACKET_CAPS))
    __gproperties__ = {
        "key-file": (str, "Key file", "Pre-shared key file (hex): every packet carries a MAC",
                     "", _RW),
    }

    def __init__(self):
        super().__init__()
        self.key_file = ""
        self._key = None
        self.reset()

    def reset(self):
        from ..stream.packet import new_session_id
        self._index = FrameIndex()
        self._hop = None
        self._session = new_session_id()

    def on_caps(self, caps):
        self.set_src_caps(Gst.Caps.from_string(PACKET_CAPS))
        return True

    def chain(self, data, buf):
        ct = _container()
        if data[:4] == ct.MAGIC:
            return Gst.FlowReturn.OK
        try:
            fr = ct.parse_frame_at(data, 0)
        except FormatError:
            fr = None
        if fr is None or fr.ftype == ct.FRAME_GROUP:
            # packets carry no frame groups (FORMAT.md §9): pacodecparse splits a file's groups
            # into their frames before they get here
            return Gst.FlowReturn.OK
        if fr.ftype == ct.FRAME_EOS:
            k = self._index.next
            self._index = FrameIndex()
        else:
            if fr.ftype == ct.FRAME_CONFIG:
                try:
                    self._hop = ct.unpack_config_frame(fr)[0].hop
                except FormatError:
                    return Gst.FlowReturn.OK
            k, _ = self._index.locate(fr)
        if k is None or self._hop is None:
            return Gst.FlowReturn.OK
        from ..stream.packet import pack
        return self.push(pack(self._session, k, k * self._hop, data, self._key), buf.pts,
                         buf.duration)
