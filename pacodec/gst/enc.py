"""``pacodecenc``: raw audio to a pacodec stream (header buffer, then one frame per buffer)."""
from __future__ import annotations

import numpy as np

from ..config import (DEFAULT_BITRATE, DEFAULT_MU, DEFAULT_QUALITY, DEFAULT_QUANTIZER,
                      MAX_CHANNELS, QUANTIZERS, SUPPORTED_RATES, WINDOW_SHAPES)
from . import encoder_options
from ._base import (_NOFLAGS, _RW, PAC_CAPS, RAW_IN_CAPS, Gst, _container, _Element, _ns, _pac_caps,
                    _template)

# pygobject consumes __gproperties__; the defaults are read from here.  Only the properties a
# user sets are coding options (pacodec.gst.encoder_options, the rules of pacodec.options):
# none set is VBR at the default quality, as `pacodec encode` without options.
_ENC_PROPS = {
    "bitrate": (float, "Bitrate", "CBR bitrate in kbit/s for all channels (ABR with abr=true); "
                "setting it selects CBR, which live links need (unset: VBR at quality)", 6.0,
                2048.0, DEFAULT_BITRATE, _RW),
    "abr": (bool, "ABR", "Average bitrate (large bit reservoir) at bitrate instead of constant "
            "bitrate", False, _RW),
    "quality": (float, "Quality", "VBR quality 0..10 (10 best); the mode when no rate property "
                "is set; -1 = unset", -1.0, 10.0, DEFAULT_QUALITY, _RW),
    "distance": (float, "Distance", "VBR perceptual distance 0.05..50 (1.0 = noise at the "
                 "masking threshold); 0 = unset", 0.0, 50.0, 0.0, _RW),
    "quantizer": (str, "Quantizer", f"Quantizer: {', '.join(QUANTIZERS)} (mu alone: mulaw)",
                  DEFAULT_QUANTIZER, _RW),
    "mu": (int, "Mu", "mu-law parameter (quantizer=mulaw)", 1, 65535, DEFAULT_MU, _RW),
    "window": (str, "Window", f"Window slope shape: {', '.join(WINDOW_SHAPES)}", "sine", _RW),
    "low-delay": (bool, "Low delay", "Low-delay mode: quarter-size frames, half overlap, no "
                  "block switching (8 ms algorithmic delay at 48 kHz)", False, _RW),
}


class PacodecEnc(_Element):
    __gtype_name__ = "PacodecEnc"
    __gstmetadata__ = (
        "pacodec audio encoder", "Codec/Encoder/Audio",
        "Encodes raw audio with pacodec: the stream header first (flagged HEADER), then one "
        "self-delimited frame per buffer; the configuration is repeated in-band every second.",
        "pacodec")
    __gsttemplates__ = (_template("sink", Gst.PadDirection.SINK, RAW_IN_CAPS),
                        _template("src", Gst.PadDirection.SRC, PAC_CAPS))
    __gproperties__ = _ENC_PROPS

    def __init__(self):
        super().__init__()
        self._props = {name: spec[-2] for name, spec in _ENC_PROPS.items()}
        self._set = {}            # the properties set by the user: the coding options
        self._fmt = None          # (dtype, rate, channels) from the caps
        self.sinkpad.set_query_function_full(self._sink_query, None)
        self.reset()

    def _sink_query(self, pad, parent, query):
        # CAPS queries answer the template (so audioconvert/audioresample pick a supported
        # format), but any raw audio is *accepted*: caps forced on us by upstream (wavparse of a
        # 7000 Hz file) then reach on_caps, which explains the problem in an element error
        # instead of a bare "not-negotiated" from the source.
        if query.type == Gst.QueryType.ACCEPT_CAPS:
            caps = query.parse_accept_caps()
            query.set_accept_caps_result(
                caps.get_size() == 1 and caps.get_structure(0).get_name() == "audio/x-raw")
            return True
        return pad.query_default(parent, query)

    def do_get_property(self, pspec):
        return self._props[pspec.name]

    def do_set_property(self, pspec, value):
        self._props[pspec.name] = value
        self._set[pspec.name] = value

    def coding_options(self, samplerate=None, channels=None):
        """The resolved coding options of the properties set (:func:`pacodec.gst.encoder_options`),
        for an input of ``samplerate`` and ``channels`` when given."""
        return encoder_options(self._set, samplerate, channels)

    def reset(self):
        self._enc = None
        self._k = 0
        self._base = None

    def on_caps(self, caps):
        s = caps.get_structure(0)
        fmt, rate, ch = s.get_value("format"), s.get_value("rate"), s.get_value("channels")
        if (fmt not in ("F32LE", "S16LE") or rate not in SUPPORTED_RATES
                or not isinstance(ch, int) or not 1 <= ch <= MAX_CHANNELS
                or s.get_value("layout") not in (None, "interleaved")):
            self.error(Gst.core_error_quark, Gst.CoreError.NEGOTIATION,
                       f"pacodecenc: cannot encode {rate} Hz, {ch} channel(s), {fmt} "
                       f"{s.get_value('layout')}: pacodec takes F32LE or S16LE interleaved audio, "
                       f"1-{MAX_CHANNELS} channels, at {', '.join(map(str, SUPPORTED_RATES))} Hz "
                       "(insert audioconvert ! audioresample)", caps.to_string())
            return False
        new = ("<f4" if fmt == "F32LE" else "<i2", rate, ch)
        if self._enc is not None and new[1:] != self._fmt[1:]:
            self.error(Gst.core_error_quark, Gst.CoreError.NEGOTIATION,
                       "pacodecenc: the sample rate or channel count changed mid-stream; a pacodec "
                       "stream has one configuration")
            return False
        self._fmt = new
        self.set_src_caps(_pac_caps(rate, ch))
        return True

    def _start(self):
        import pacodec
        _, rate, ch = self._fmt
        try:
            opts = self.coding_options(rate, ch)
            # group=1: each frame is pushed as soon as it is coded (a stream element, not a
            # file writer; packets carry no frame groups, FORMAT.md §9)
            self._enc = pacodec.Encoder(rate, ch, group=1, **opts.encoder_kwargs())
        except pacodec.PacodecError as e:
            self.error(Gst.library_error_quark, Gst.LibraryError.SETTINGS, f"pacodecenc: {e}")
            return Gst.FlowReturn.ERROR
        if opts.note:
            self.warn(f"pacodecenc: {opts.note}")
        return self.push(self._enc.header(), self._base, 0, Gst.BufferFlags.HEADER)

    def chain(self, data, buf):
        if self._fmt is None:
            self.error(Gst.core_error_quark, Gst.CoreError.NEGOTIATION,
                       "pacodecenc: received audio before caps")
            return Gst.FlowReturn.NOT_NEGOTIATED
        dtype, _, ch = self._fmt
        if self._enc is None:
            self._base = buf.pts if buf.pts != Gst.CLOCK_TIME_NONE else 0
            ret = self._start()
            if ret != Gst.FlowReturn.OK:
                return ret
        x = np.frombuffer(data, dtype=dtype)
        x = x[:len(x) - len(x) % ch].reshape(-1, ch)
        return self._push_frames(self._enc.encode(x))

    def _push_frames(self, frames):
        ct = _container()
        rate, hop = self._enc.samplerate, self._enc.frame_size
        for f in frames:
            ftype = ct.frame_type(f)
            flags = Gst.BufferFlags.DISCONT if self._k == 0 else _NOFLAGS
            if ftype != ct.FRAME_CONFIG:
                flags |= Gst.BufferFlags.DELTA_UNIT
            dur = 0 if ftype == ct.FRAME_EOS else _ns(hop, rate)
            ret = self.push(f, self._base + _ns(self._k * hop, rate), dur, flags)
            self._k += 1
            if ret != Gst.FlowReturn.OK:
                return ret
        return Gst.FlowReturn.OK

    def on_eos(self):
        if self._enc is None:
            return Gst.FlowReturn.OK
        ret = self._push_frames(self._enc.flush())
        self._enc = None          # a following stream (after a flush) starts with a new header
        return ret

    def latency_ns(self):
        # a frame leaves once its hop plus the transient look-ahead is in: under two hops
        if self._fmt is None:
            return 0
        hop = self._enc.frame_size if self._enc else 2048
        return _ns(2 * hop, self._fmt[1])
