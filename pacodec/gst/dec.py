"""``pacodecdec``: pacodec frames to F32LE audio, with concealment and gapless trimming."""
from __future__ import annotations

import numpy as np

from ..conceal import MAX_CONCEAL
from ..errors import FormatError
from ._base import (_NOFLAGS, PAC_ANY_CAPS, RAW_OUT_CAPS, FrameIndex, GLib, GObject, Gst,
                    _container, _Element, _ns, _sns, _template)


class PacodecDec(_Element):
    __gtype_name__ = "PacodecDec"
    __gstmetadata__ = (
        "pacodec audio decoder", "Codec/Decoder/Audio",
        "Decodes pacodec frames (one per buffer; header buffers allowed) to F32LE; conceals lost "
        "or damaged frames (found from the frames' sequence numbers) and trims the encoder delay "
        "and the end padding (gapless).",
        "pacodec")
    __gsttemplates__ = (_template("sink", Gst.PadDirection.SINK, PAC_ANY_CAPS),
                        _template("src", Gst.PadDirection.SRC, RAW_OUT_CAPS))
    __gproperties__ = {
        "concealed": (int, "Concealed", "Frames concealed so far (lost or damaged)", 0,
                      GLib.MAXINT, 0, GObject.ParamFlags.READABLE),
        "damaged": (int, "Damaged", "Buffers dropped because they were not a valid frame", 0,
                    GLib.MAXINT, 0, GObject.ParamFlags.READABLE),
    }

    def __init__(self):
        super().__init__()
        self.concealed = self.damaged = 0
        self._seen = self._decoded = 0
        self._end = None          # timestamp just after the last output buffer
        self.reset()

    def reset(self):
        import pacodec
        self._dec = pacodec.Decoder()
        self._tl = self._dec.timeline   # delay and end trimming, held last frame (§6.3)
        self._index = FrameIndex()
        self._next = None         # index of the frame expected next
        self._origin = None       # timestamp of input sample 0 of this stream (ns, may be < 0)
        self._pos = None          # input position of the next output sample

    def chain(self, data, buf):
        ct = _container()
        self._seen += 1
        if data[:4] == ct.MAGIC:
            try:
                self._tl.total = ct.unpack_header(data).total_length
            except FormatError as e:
                self.warn(f"pacodecdec: ignoring a bad stream header ({e})")
            return Gst.FlowReturn.OK
        try:
            fr = ct.parse_frame_at(data, 0)
        except FormatError:
            fr = None
        if fr is None or fr.size != len(data) or fr.ftype == ct.FRAME_GROUP:
            # (a frame group, FORMAT.md §4, comes split into its members by pacodecparse: one
            # here is counted as damaged, like any buffer that is not one frame)
            self.damaged += 1       # its loss shows as a sequence gap at the next good frame
            return Gst.FlowReturn.OK
        if fr.ftype == ct.FRAME_EOS:
            try:
                self._tl.total = ct.unpack_eos_frame(fr)
            except FormatError:
                pass
            ret = self._out([self._tl.release()])
            self.reset()            # a new stream may follow (a restarted sender)
            return ret
        k, restarted = self._index.locate(fr)
        if k is None:
            return Gst.FlowReturn.OK
        if restarted:
            ret = self._out([self._tl.release()])
            self.reset()
            k, _ = self._index.locate(fr)
            if ret != Gst.FlowReturn.OK:
                return ret
        dec, outs = self._dec, []
        if self._next is not None and k > self._next:
            lost = k - self._next
            if lost <= MAX_CONCEAL:
                outs.extend(self._place(self._next + j, dec.decode_packet(None))
                            for j in range(lost))
                self.concealed += lost
            else:                   # too long to conceal: a timestamp jump
                outs.append(self._tl.release())
        self._next = k + 1
        pcm = dec.decode_packet(data)
        if not len(pcm):
            return self._out(outs)  # no config yet
        self._decoded += 1
        if self._origin is None:
            n = k * dec.frame_size
            if buf.pts != Gst.CLOCK_TIME_NONE:
                self._origin = buf.pts - _sns(n, dec.samplerate)
            else:
                self._origin = (self._end or 0) - _sns(max(0, n - dec.delay), dec.samplerate)
        outs.append(self._place(k, pcm))
        return self._out(outs)

    def _place(self, k, pcm):
        """The samples of frame ``k`` that lie in ``[0, total)`` of the input, by the decoder's
        time line (the latest frame is held back while the total is unknown)."""
        dec = self._dec
        return self._tl.place(pcm, k * dec.frame_size - dec.delay)

    def _out(self, chunks):
        dec = self._dec
        for c in chunks:
            if c is None or not len(c[0]):
                continue
            pcm, a = c
            rate, ch = dec.samplerate, dec.channels
            mask = ", channel-mask=(bitmask)0x0" if ch > 2 else ""
            self.set_src_caps(Gst.Caps.from_string(
                f"audio/x-raw, format=(string)F32LE, layout=(string)interleaved, "
                f"rate=(int){rate}, channels=(int){ch}{mask}"))
            pts = max(0, self._origin + _sns(a, rate))
            end = max(pts, self._origin + _sns(a + len(pcm), rate))
            flags = Gst.BufferFlags.DISCONT if a != self._pos else _NOFLAGS
            self._pos, self._end = a + len(pcm), end
            ret = self.push(np.ascontiguousarray(pcm, dtype="<f4").tobytes(), pts, end - pts, flags)
            if ret != Gst.FlowReturn.OK:
                return ret
        return Gst.FlowReturn.OK

    def on_eos(self):
        ret = self._out([self._tl.release()])
        if self._seen and not self._decoded:
            self.error(Gst.stream_error_quark, Gst.StreamError.DECODE,
                       "pacodecdec: no decodable pacodec frame arrived (no config frame)")
            return Gst.FlowReturn.ERROR
        return ret

    def latency_ns(self):
        dec = self._dec
        return _ns(dec.frame_size, dec.samplerate) if dec.frame_size else 0
