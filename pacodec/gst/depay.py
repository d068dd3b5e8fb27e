"""``pacodecdepay``: pacodec UDP packets unwrapped into frames."""
from __future__ import annotations

from ..errors import FormatError
from ._base import (_NOFLAGS, _RW, LATE_WINDOW, PAC_CAPS, PACKET_CAPS, GLib, GObject, Gst,
                    _container, _Element, _ns, _pac_caps, _template)


class PacodecDepay(_Element):
    __gtype_name__ = "PacodecDepay"
    __gstmetadata__ = (
        "pacodec UDP depayloader", "Codec/Depayloader/Network",
        "Unwraps pacodec UDP packets into frames; drops late and duplicate packets and frames "
        "before the first config frame; marks gaps DISCONT (pacodecdec conceals them).",
        "pacodec")
    __gsttemplates__ = (_template("sink", Gst.PadDirection.SINK, PACKET_CAPS),
                        _template("src", Gst.PadDirection.SRC, PAC_CAPS))
    __gproperties__ = {
        "stop-at-end": (bool, "Stop at end", "End this pipeline's stream (EOS) when the "
                        "sender's end-of-stream frame arrives", False, _RW),
        "dropped": (int, "Dropped", "Packets dropped (late, duplicate, invalid, "
                    "unauthenticated, other sessions)", 0,
                    GLib.MAXINT, 0, GObject.ParamFlags.READABLE),
        "key-file": (str, "Key file", "Pre-shared key file (hex): accept only packets with "
                     "its MAC", "", _RW),
    }

    def __init__(self):
        super().__init__()
        self.stop_at_end = False
        self.dropped = 0
        self.key_file = ""
        self._key = None
        self.reset()

    def reset(self):
        self._last = None
        self._cfg = None
        self._session = None

    def chain(self, data, buf):
        ct = _container()
        from ..stream.packet import FLAG_FRAMES, unpack
        try:
            p = unpack(data, self._key)
            seq, frame = p.seq, p.frame
            # packets of several frames (FORMAT.md §9, flag bit 1; `pacodec send
            # --frames-per-packet`) are not depayloaded here: dropped and counted
            fr = None if data[1] & FLAG_FRAMES else ct.parse_frame_at(frame, 0)
        except FormatError:
            fr = None
        if fr is None:
            self.dropped += 1
            return Gst.FlowReturn.OK
        if self._session is not None and p.session != self._session:
            # one session at a time (a new one after this one's end-of-stream frame)
            self.dropped += 1
            return Gst.FlowReturn.OK
        self._session = p.session
        # packets behind the last one: late or duplicate; far behind: a new sender
        d = None if self._last is None else ((seq - self._last + 2**31) & 0xFFFFFFFF) - 2**31
        if d is not None and -LATE_WINDOW <= d <= 0:
            self.dropped += 1
            return Gst.FlowReturn.OK
        if fr.ftype == ct.FRAME_CONFIG:
            try:
                self._cfg = ct.unpack_config_frame(fr)[0]
            except FormatError:
                self.dropped += 1
                return Gst.FlowReturn.OK
            self.set_src_caps(_pac_caps(self._cfg.samplerate, self._cfg.channels))
        elif self._cfg is None:
            return Gst.FlowReturn.OK          # joined mid-stream: wait for a config frame
        flags = Gst.BufferFlags.DISCONT if d != 1 else _NOFLAGS
        if fr.ftype != ct.FRAME_CONFIG:
            flags |= Gst.BufferFlags.DELTA_UNIT
        self._last = seq
        ret = self.push(frame, buf.pts, _ns(self._cfg.hop, self._cfg.samplerate), flags)
        if fr.ftype == ct.FRAME_EOS:
            self.reset()
            if self.stop_at_end and ret == Gst.FlowReturn.OK:
                return Gst.FlowReturn.EOS     # the source then sends EOS through us
        return ret
