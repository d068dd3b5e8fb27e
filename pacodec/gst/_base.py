"""What the pacodec GStreamer elements share: caps, the frame-index tracker, the element base.

Each element lives in its own module (enc, dec, parse, pay, depay); :mod:`.elements` collects
them for gst-python's loader (``python/*.py``).

Stream representation: an ``audio/x-pacodec, framed=(boolean)true`` stream is an optional stream
header buffer (flagged HEADER, FORMAT.md §3) followed by exactly one frame (§4) per buffer.
``pacodecenc`` sends the header first so that ``pacodecenc ! filesink`` writes a regular ``.pac``
file; every later buffer is a self-contained frame (sync word ... CRC) and the configuration is
repeated in-band, so frames alone are enough to decode (``pacodecpay`` drops the header).
Buffers of config frames are sync points; other frames carry DELTA_UNIT.  Frame ``k`` is
timestamped ``base + k * hop / rate`` (``base``: the first input timestamp), lasting one hop.

All coding is done by :class:`pacodec.Encoder` / :class:`pacodec.Decoder` and
:mod:`pacodec.container`; these classes only move buffers, timestamps and events.
"""
from __future__ import annotations

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, GObject, Gst  # noqa: E402

from ..config import MAX_CHANNELS, SUPPORTED_RATES  # noqa: E402  (light: no numba)
from ..errors import FormatError  # noqa: E402  (light: no numba)

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

LATE_WINDOW = 64       # a frame/packet at most this far behind is late; further: a new stream
_RW = GObject.ParamFlags.READWRITE
_NOFLAGS = Gst.BufferFlags(0)


def _container():
    """pacodec.container, imported on first use (it loads numba; plugin scans stay fast)."""
    from .. import container
    return container


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
        ct = _container()
        restarted = False
        if fr.ftype == ct.FRAME_CONFIG:
            try:
                k = ct.config_frame_index(fr)
            except FormatError:
                return None, False
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

    # ---------------------------------------------------------------- properties
    # A property "some-name" is the attribute ``some_name``; "key-file" also loads the key
    # (``_key``) that pacodecpay / pacodecdepay sign and check packets with.
    def do_get_property(self, pspec):
        return getattr(self, pspec.name.replace("-", "_"))

    def do_set_property(self, pspec, value):
        setattr(self, pspec.name.replace("-", "_"), value)
        if pspec.name == "key-file":
            from ..stream.packet import load_key
            self._key = load_key(value) if value else None

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
