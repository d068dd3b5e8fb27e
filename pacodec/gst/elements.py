"""The pacodec GStreamer elements, one module each, collected for gst-python's loader
(``python/*.py`` import this module and take their factory from :data:`FACTORIES`).

Stream representation: an ``audio/x-pacodec, framed=(boolean)true`` stream is an optional stream
header buffer (flagged HEADER, FORMAT.md §3) followed by exactly one frame (§4) per buffer.
All coding is done by :class:`pacodec.Encoder` / :class:`pacodec.Decoder` and
:mod:`pacodec.bitstream`; the elements only move buffers, timestamps and events.
"""
from __future__ import annotations

<<<<<<< HEAD
from ._base import FrameIndex, Gst  # noqa: F401  (re-exported)
from .dec import PacodecDec
from .depay import PacodecDepay
from .enc import PacodecEnc
from .parse import PacodecParse
from .pay import PacodecPay

__all__ = ["PacodecEnc", "PacodecDec", "PacodecParse", "PacodecPay", "PacodecDepay", "FACTORIES"]
=======
import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, GObject, Gst  # noqa: E402

import numpy as np  # noqa: E402

from ..config import MAX_CHANNELS, SUPPORTED_RATES  # noqa: E402  (light: no numba)

Gst.init(None)

_RATES = "{ " + ", ".join(str(r) for r in SUPPORTED_RATES) + " }"
_CH = f"[ 1, {MAX_CHANNELS} ]"
RAW_IN_CAPS = (f"audio/x-raw, format=(string){{ F32LE, S16LE }}, layout=(string)interleaved, "
               f"rate=(int){_RATES}, channels=(int){_CH}")
RAW_OUT_CAPS = (f"audio/x-raw, format=(string)F32LE, layout=(string)interleaved, "
                f"rate=(int){_RATES}, channels=(int){_CH}")
PAC_CAPS = f"audio/x-pacodec, framed=(boolean)true, rate=(int){_RATES}, channels=(int){_CH}"
PAC_ANY_CAPS = "audio/x-pacodec, framed=(boolean)true"
PACKET_CAPS = "application/x-pacodec-packet"

MAX_CONCEAL = 256      # lost frames concealed one by one; a longer outage is a timestamp jump
LATE_WINDOW = 64       # a frame/packet at most this far behind is late; further: a new stream
_RW = GObject.ParamFlags.READWRITE
_NOFLAGS = Gst.BufferFlags(0)


def _bs():
    """pacodec.bitstream, imported on first use (it loads numba; plugin scans stay fast)."""
    from .. import bitstream
    return bitstream


def _template(name, direction, caps):
    return Gst.PadTemplate.new(name, direction, Gst.PadPresence.ALWAYS,
                               Gst.Caps.from_string(caps))


def _ns(samples, rate):
    return Gst.util_uint64_scale(int(samples), Gst.SECOND, int(rate))


def _sns(samples, rate):
    """Signed sample count -> nanoseconds."""
    return int(samples) * Gst.SECOND // int(rate)


def _pac_caps(rate, channels):
    return Gst.Caps.from_string(
        f"audio/x-pacodec, framed=(boolean)true, rate=(int){rate}, channels=(int){channels}")


class FrameIndex:
    """Absolute index of each frame of one stream: exact from config frames (their
    ``frame_index``), from 8-bit sequence-number deltas in between.

    ``locate`` returns ``(k, restarted)``, or ``(None, False)`` for a frame to drop: nothing is
    known yet (no config frame seen), a stale/duplicate frame, or a sequence jump of 128 or more
    (a long outage: wait for the next config frame, at most one second away).
    """

    def __init__(self):
        self.next = None

    def locate(self, fr):
        bs = _bs()
        restarted = False
        if fr.ftype == bs.FRAME_CONFIG:
            k = int.from_bytes(fr.payload[bs.CONFIG_SIZE:bs.CONFIG_SIZE + 4], "big")
            if self.next is not None and k < self.next:
                if self.next - k <= LATE_WINDOW:
                    return None, False        # late or duplicate
                restarted = True              # the sender started a new stream
        elif self.next is None:
            return None, False
        else:
            gap = (fr.seq - self.next) & 0xFF
            if gap >= 128:
                return None, False
            k = self.next + gap
        self.next = k + 1
        return k, restarted


class _Element(Gst.Element):
    """Two always-pads (templates "sink" and "src") and the plumbing the pacodec elements share:
    output caps before the segment, element errors, exceptions turned into errors, a fresh
    state for each run, latency and duration answers."""

    __gtype_name__ = "PacodecElement"

    def __init__(self):
        super().__init__()
        # gst_element_factory_create() expects a new element to hold a floating reference, which
        # the bin it is added to takes over; PyGObject sinks it for the Python wrapper, so
        # GStreamer printed "The created element should be floating" for every element.  Give
        # the creator its own floating reference again (the wrapper keeps its own).
        if not self.is_floating():
            GObject.Object._ref(self)
            GObject.Object._force_floating(self)
        templates = {t.name_template: t for t in type(self).__gsttemplates__}
        self.sinkpad = Gst.Pad.new_from_template(templates["sink"], "sink")
        self.sinkpad.set_chain_function_full(self._chain_safe, None)
        self.sinkpad.set_event_function_full(self._sink_event_safe, None)
        self.add_pad(self.sinkpad)
        self.srcpad = Gst.Pad.new_from_template(templates["src"], "src")
        self.srcpad.set_query_function_full(self._src_query, None)
        self.add_pad(self.srcpad)
        self._out_caps = None
        self._pending_segment = None
        self._failed = False

    def do_change_state(self, transition):
        if transition == Gst.StateChange.READY_TO_PAUSED:     # a fresh run
            self._failed = False
            self._out_caps = self._pending_segment = None
            self.reset()
        return Gst.Element.do_change_state(self, transition)

    # ---------------------------------------------------------------- helpers
    def error(self, domain, code, text, debug=""):
        """Post an element error (gst-launch prints ``ERROR: from element ...: text``)."""
        self._failed = True
        err = GLib.Error.new_literal(domain(), text, int(code))
        self.post_message(Gst.Message.new_error(self, err, debug or text))

    def warn(self, text):
        """Post an element warning (the stream goes on)."""
        err = GLib.Error.new_literal(Gst.stream_error_quark(), text, int(Gst.StreamError.DECODE))
        self.post_message(Gst.Message.new_warning(self, err, text))

    def set_src_caps(self, caps):
        """Push ``caps`` if they changed, then a segment held back until caps were known."""
        if self._out_caps is None or not self._out_caps.is_equal(caps):
            self._out_caps = caps
            self.srcpad.push_event(Gst.Event.new_caps(caps))
        if self._pending_segment is not None:
            ev, self._pending_segment = self._pending_segment, None
            self.srcpad.push_event(ev)

    def hold_segment(self, event):
        """Forward a segment (made TIME if needed) now, or after the output caps are known."""
        seg = event.parse_segment()
        if seg.format != Gst.Format.TIME:
            seg = Gst.Segment()
            seg.init(Gst.Format.TIME)
            event = Gst.Event.new_segment(seg)
        if self._out_caps is None:
            self._pending_segment = event
            return True
        return self.srcpad.push_event(event)

    def push(self, data: bytes, pts=None, duration=None, flags=_NOFLAGS):
        buf = Gst.Buffer.new_wrapped(bytes(data))
        buf.pts = Gst.CLOCK_TIME_NONE if pts is None else int(pts)
        buf.duration = Gst.CLOCK_TIME_NONE if duration is None else int(duration)
        if flags:
            buf.set_flags(flags)
        return self.srcpad.push(buf)

    # ---------------------------------------------------------------- pad functions
    def _chain_safe(self, pad, parent, buf):
        if self._failed:
            return Gst.FlowReturn.ERROR
        try:
            return self.chain(buf.extract_dup(0, buf.get_size()), buf)
        except Exception as e:    # never let a Python error reach GStreamer as "OK"
            self.error(Gst.stream_error_quark, Gst.StreamError.FAILED,
                       f"{self.get_name()}: {type(e).__name__}: {e}")
            return Gst.FlowReturn.ERROR

    def _sink_event_safe(self, pad, parent, event):
        try:
            return self.sink_event(pad, parent, event)
        except Exception as e:
            self.error(Gst.stream_error_quark, Gst.StreamError.FAILED,
                       f"{self.get_name()}: {type(e).__name__}: {e}")
            return False

    def sink_event(self, pad, parent, event):
        t = event.type
        if t == Gst.EventType.CAPS:
            return not self._failed and self.on_caps(event.parse_caps())
        if t == Gst.EventType.SEGMENT:
            return self.hold_segment(event)
        if t == Gst.EventType.EOS:
            if not self._failed:
                ret = self.on_eos()
                if ret not in (Gst.FlowReturn.OK, Gst.FlowReturn.EOS, Gst.FlowReturn.FLUSHING):
                    return False
        if t == Gst.EventType.FLUSH_STOP:
            self.reset()
        return pad.event_default(parent, event)

    def _src_query(self, pad, parent, query):
        if query.type == Gst.QueryType.LATENCY:
            ok = self.sinkpad.peer_query(query)
            extra = self.latency_ns()
            if ok and extra:
                live, lo, hi = query.parse_latency()
                query.set_latency(live, lo + extra, hi if hi == Gst.CLOCK_TIME_NONE else hi + extra)
            return ok
        if query.type == Gst.QueryType.DURATION and self.duration_ns() is not None:
            fmt = query.parse_duration()[0]
            if fmt == Gst.Format.TIME:
                query.set_duration(fmt, self.duration_ns())
                return True
        return pad.query_default(parent, query)

    # ---------------------------------------------------------------- to override
    def chain(self, data: bytes, buf) -> Gst.FlowReturn:
        raise NotImplementedError

    def on_caps(self, caps) -> bool:
        return True            # input caps are not forwarded; each element sets its own

    def on_eos(self):
        return Gst.FlowReturn.OK

    def reset(self):
        pass

    def latency_ns(self):
        return 0

    def duration_ns(self):
        return None


# ==================================================================================== encoder
_ENC_PROPS = {      # pygobject consumes __gproperties__; the defaults are read from here
    "bitrate": (float, "Bitrate", "Target bitrate in kbit/s for all channels (CBR, or ABR "
                "with abr=true); used when quality and distance are unset", 6.0, 2048.0,
                128.0, _RW),
    "abr": (bool, "ABR", "Average bitrate (large bit reservoir) instead of constant bitrate",
            False, _RW),
    "quality": (float, "Quality", "VBR quality 0..10 (10 best); -1 = unset (use bitrate)",
                -1.0, 10.0, -1.0, _RW),
    "distance": (float, "Distance", "VBR perceptual distance 0.05..50 (1.0 = noise at the "
                 "masking threshold); 0 = unset; overrides quality", 0.0, 50.0, 0.0, _RW),
    "quantizer": (str, "Quantizer", "Quantizer: power, uniform or mulaw", "power", _RW),
    "mu": (int, "Mu", "mu-law parameter (quantizer=mulaw)", 1, 65535, 255, _RW),
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
        p = self._props
        kw = dict(quantizer=p["quantizer"], mu=p["mu"], low_delay=p["low-delay"])
        if p["distance"] > 0:
            kw["distance"] = p["distance"]
        elif p["quality"] >= 0:
            kw["quality"] = p["quality"]
        else:
            kw.update(bitrate=p["bitrate"], mode="abr" if p["abr"] else "cbr")
        try:
            self._enc = pacodec.Encoder(rate, ch, **kw)
        except pacodec.PacodecError as e:
            self.error(Gst.library_error_quark, Gst.LibraryError.SETTINGS, f"pacodecenc: {e}")
            return Gst.FlowReturn.ERROR
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
        bs = _bs()
        rate, hop = self._enc.samplerate, self._enc.frame_size
        for f in frames:
            ftype = f[2] >> 6
            flags = Gst.BufferFlags.DISCONT if self._k == 0 else _NOFLAGS
            if ftype != bs.FRAME_CONFIG:
                flags |= Gst.BufferFlags.DELTA_UNIT
            dur = 0 if ftype == bs.FRAME_EOS else _ns(hop, rate)
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


# ==================================================================================== decoder
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

    def do_get_property(self, pspec):
        return getattr(self, pspec.name)

    def reset(self):
        import pacodec
        self._dec = pacodec.Decoder()
        self._index = FrameIndex()
        self._next = None         # index of the frame expected next
        self._total = None        # samples in the stream, from the header or the end frame
        self._held = None         # latest (pcm, position) while the total length is unknown
        self._origin = None       # timestamp of input sample 0 of this stream (ns, may be < 0)
        self._pos = None          # input position of the next output sample

    def chain(self, data, buf):
        bs = _bs()
        self._seen += 1
        if data[:4] == bs.MAGIC:
            try:
                self._total = bs.unpack_header(data).total_length
            except bs.FormatError as e:
                self.warn(f"pacodecdec: ignoring a bad stream header ({e})")
            return Gst.FlowReturn.OK
        try:
            fr = bs.parse_frame_at(data, 0)
        except bs.FormatError:
            fr = None
        if fr is None or fr.size != len(data):
            self.damaged += 1       # its loss shows as a sequence gap at the next good frame
            return Gst.FlowReturn.OK
        if fr.ftype == bs.FRAME_EOS:
            if len(fr.payload) == 6:
                self._total = int.from_bytes(fr.payload, "big")
            ret = self._out([self._release()])
            self.reset()            # a new stream may follow (a restarted sender)
            return ret
        k, restarted = self._index.locate(fr)
        if k is None:
            return Gst.FlowReturn.OK
        if restarted:
            ret = self._out([self._release()])
            self.reset()
            k, _ = self._index.locate(fr)
            if ret != Gst.FlowReturn.OK:
                return ret
        dec, outs = self._dec, []
        if self._next is not None and k > self._next:
            lost = k - self._next
            if lost <= MAX_CONCEAL:
                outs.extend(self._trim(self._next + j, dec.decode_packet(None))
                            for j in range(lost))
                self.concealed += lost
            else:                   # too long to conceal: a timestamp jump
                outs.append(self._release())
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
        outs.append(self._trim(k, pcm))
        return self._out(outs)

    def _trim(self, k, pcm):
        """Keep the samples of frame ``k`` that lie in ``[0, total)`` of the input (§6.3); while
        the total is unknown, hold the latest frame back (only the last one is padded)."""
        dec = self._dec
        a = k * dec.frame_size - dec.delay
        lo = max(0, -a)
        pcm, a = pcm[lo:], a + lo
        if self._total is not None:
            return pcm[:max(0, self._total - a)], a
        held, self._held = self._held, (pcm, a)
        return held

    def _release(self):
        if self._held is None:
            return None
        (pcm, a), self._held = self._held, None
        return (pcm if self._total is None else pcm[:max(0, self._total - a)]), a

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
        ret = self._out([self._release()])
        if self._seen and not self._decoded:
            self.error(Gst.stream_error_quark, Gst.StreamError.DECODE,
                       "pacodecdec: no decodable pacodec frame arrived (no config frame)")
            return Gst.FlowReturn.ERROR
        return ret

    def latency_ns(self):
        dec = self._dec
        return _ns(dec.frame_size, dec.samplerate) if dec.frame_size else 0


# ==================================================================================== parser
class PacodecParse(_Element):
    __gtype_name__ = "PacodecParse"
    __gstmetadata__ = (
        "pacodec stream parser", "Codec/Parser/Audio",
        "Splits a pacodec byte stream (a .pac file) into the stream header and one frame per "
        "buffer, with timestamps; skips damaged bytes (sync word + CRC search).",
        "pacodec")
    __gsttemplates__ = (_template("sink", Gst.PadDirection.SINK, "audio/x-pacodec"),
                        _template("src", Gst.PadDirection.SRC, PAC_CAPS))

    def __init__(self):
        super().__init__()
        self._frames = 0
        self.reset()

    def reset(self):
        self._buf = bytearray()
        self._at_start = True     # a stream header may come next
        self._index = FrameIndex()
        self._cfg = None
        self._total = None
        self._discont = True
        self._ended = False

    def duration_ns(self):
        if self._cfg is None or self._total is None:
            return None
        return _ns(self._total, self._cfg.samplerate)

    def _configure(self, cfg):
        self._cfg = cfg
        self.set_src_caps(_pac_caps(cfg.samplerate, cfg.channels))

    def chain(self, data, buf):
        bs = _bs()
        if self._ended:
            return Gst.FlowReturn.OK
        b = self._buf
        b += data
        pos = 0
        if self._at_start:
            if len(b) < 4:
                return Gst.FlowReturn.OK
            if b[:4] == bs.MAGIC:
                if len(b) < bs.HEADER_SIZE:
                    return Gst.FlowReturn.OK
                try:
                    hdr = bs.unpack_header(bytes(b[:bs.HEADER_SIZE]))
                except bs.FormatError as e:
                    self.warn(f"pacodecparse: ignoring a bad stream header ({e})")
                else:
                    self._configure(hdr.config)
                    self._total = hdr.total_length
                    ret = self.push(b[:bs.HEADER_SIZE], 0, 0, Gst.BufferFlags.HEADER)
                    if ret != Gst.FlowReturn.OK:
                        return ret
                    pos = bs.HEADER_SIZE
            self._at_start = False
        ret = Gst.FlowReturn.OK
        while ret == Gst.FlowReturn.OK and not self._ended:
            nxt = bs.find_sync(b, pos)
            if nxt < 0:         # keep a last byte that may begin a sync word
                end = len(b) - (1 if b and b[-1] == bs.SYNC >> 8 else 0)
                self._discont |= end > pos
                pos = max(pos, end)
                break
            self._discont |= nxt > pos
            pos = nxt
            try:
                fr = bs.parse_frame_at(b, pos)
            except bs.FormatError:
                pos += 1
                self._discont = True
                continue
            if fr is None:
                break
            ret = self._frame(fr, bytes(b[pos:pos + fr.size]))
            pos += fr.size
        del b[:pos]
        return ret

    def _frame(self, fr, raw):
        bs = _bs()
        if fr.ftype == bs.FRAME_CONFIG and self._cfg is None:
            try:
                self._configure(bs.unpack_config(fr.payload[:bs.CONFIG_SIZE]))
            except bs.FormatError:
                return Gst.FlowReturn.OK
        if self._cfg is None:
            return Gst.FlowReturn.OK          # joined mid-stream: wait for a config frame
        self._frames += 1
        rate, hop = self._cfg.samplerate, self._cfg.hop
        flags = Gst.BufferFlags.DISCONT if self._discont else _NOFLAGS
        self._discont = False
        if fr.ftype == bs.FRAME_EOS:
            self._ended = True                # like `pacodec decode`: nothing after the end
            return self.push(raw, None, 0, flags)
        if fr.ftype != bs.FRAME_CONFIG:
            flags |= Gst.BufferFlags.DELTA_UNIT
        k, _ = self._index.locate(fr)
        pts = None if k is None else _ns(k * hop, rate)
        return self.push(raw, pts, _ns(hop, rate), flags)

    def on_eos(self):
        if not self._frames and not self._failed:
            self.error(Gst.stream_error_quark, Gst.StreamError.WRONG_TYPE,
                       "pacodecparse: no pacodec frame found in the input (not a .pac stream?)")
            return Gst.FlowReturn.ERROR
        return Gst.FlowReturn.OK


# ==================================================================================== UDP
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

    def do_get_property(self, pspec):
        return getattr(self, pspec.name.replace("-", "_"))

    def do_set_property(self, pspec, value):
        setattr(self, pspec.name.replace("-", "_"), value)
        if pspec.name == "key-file":
            from ..stream.packet import load_key
            self._key = load_key(value) if value else None

    def reset(self):
        from ..stream.packet import new_session_id
        self._index = FrameIndex()
        self._hop = None
        self._session = new_session_id()

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
                self._hop = bs.unpack_config(fr.payload[:bs.CONFIG_SIZE]).hop
            k, _ = self._index.locate(fr)
        if k is None or self._hop is None:
            return Gst.FlowReturn.OK
        from ..stream.packet import pack
        return self.push(pack(self._session, k, k * self._hop, data, self._key), buf.pts,
                         buf.duration)


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

    def do_get_property(self, pspec):
        return getattr(self, pspec.name.replace("-", "_"))

    def do_set_property(self, pspec, value):
        setattr(self, pspec.name.replace("-", "_"), value)
        if pspec.name == "key-file":
            from ..stream.packet import load_key
            self._key = load_key(value) if value else None

    def reset(self):
        self._last = None
        self._cfg = None
        self._session = None

    def chain(self, data, buf):
        bs = _bs()
        from ..stream.packet import unpack
        try:
            p = unpack(data, self._key)
            seq, frame = p.seq, p.frame
            fr = bs.parse_frame_at(frame, 0)
        except bs.FormatError:
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
        if fr.ftype == bs.FRAME_CONFIG:
            try:
                self._cfg = bs.unpack_config(fr.payload[:bs.CONFIG_SIZE])
            except bs.FormatError:
                self.dropped += 1
                return Gst.FlowReturn.OK
            self.set_src_caps(_pac_caps(self._cfg.samplerate, self._cfg.channels))
        elif self._cfg is None:
            return Gst.FlowReturn.OK          # joined mid-stream: wait for a config frame
        flags = Gst.BufferFlags.DISCONT if d != 1 else _NOFLAGS
        if fr.ftype != bs.FRAME_CONFIG:
            flags |= Gst.BufferFlags.DELTA_UNIT
        self._last = seq
        ret = self.push(frame, buf.pts, _ns(self._cfg.hop, self._cfg.samplerate), flags)
        if fr.ftype == bs.FRAME_EOS:
            self.reset()
            if self.stop_at_end and ret == Gst.FlowReturn.OK:
                return Gst.FlowReturn.EOS     # the source then sends EOS through us
        return ret

>>>>>>> cli

FACTORIES = {
    "pacodecenc": ("pacodecenc", Gst.Rank.PRIMARY, PacodecEnc),
    "pacodecdec": ("pacodecdec", Gst.Rank.PRIMARY, PacodecDec),
    "pacodecparse": ("pacodecparse", Gst.Rank.PRIMARY, PacodecParse),
    "pacodecpay": ("pacodecpay", Gst.Rank.NONE, PacodecPay),
    "pacodecdepay": ("pacodecdepay", Gst.Rank.NONE, PacodecDepay),
}
