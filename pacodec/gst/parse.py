"""``pacodecparse``: a pacodec byte stream (a ``.pac`` file) split into header and frames."""
from __future__ import annotations

from ..errors import FormatError
from ._base import (_NOFLAGS, PAC_CAPS, FrameIndex, Gst, _container, _Element, _ns, _pac_caps,
                    _template)


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
        self._scanner = _container().Scanner()
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
        ct = _container()
        if self._ended:
            return Gst.FlowReturn.OK
        sc = self._scanner
        sc.feed(data)
        if self._at_start:
            hdr = sc.read_header(final=False)
            if hdr is None:
                return Gst.FlowReturn.OK
            self._at_start = False
            if isinstance(hdr, FormatError):
                self.warn(f"pacodecparse: ignoring a bad stream header ({hdr})")
            elif hdr:
                self._configure(hdr.config)
                self._total = hdr.total_length
                if sc.metadata is not None:          # FORMAT.md §3.3: tags for players
                    self.srcpad.push_event(Gst.Event.new_tag(_tag_list(sc.metadata)))
                elif sc.metadata_error is not None:
                    self.warn(f"pacodecparse: ignoring the tags ({sc.metadata_error})")
                ret = self.push(sc.header_bytes, 0, 0, Gst.BufferFlags.HEADER)
                if ret != Gst.FlowReturn.OK:
                    return ret
        ret = Gst.FlowReturn.OK
        try:
            for kind, off, fr in sc.events():
                if kind != ct.SCAN_FRAME:
                    self._discont = True
                    continue
                raw = bytes(sc.buf[sc.pos:sc.pos + fr.size])
                ret = self._frame(fr, raw)
                if ret != Gst.FlowReturn.OK or self._ended:
                    break
        except FormatError as e:       # nothing that syncs in MAX_SYNC_SEARCH bytes
            self.error(Gst.stream_error_quark, Gst.StreamError.WRONG_TYPE, f"pacodecparse: {e}")
            return Gst.FlowReturn.ERROR
        return ret

    def _frame(self, fr, raw):
        ct = _container()
        if fr.ftype == ct.FRAME_CONFIG and self._cfg is None:
            try:
                self._configure(ct.unpack_config_frame(fr)[0])
            except FormatError:
                return Gst.FlowReturn.OK
        if self._cfg is None:
            return Gst.FlowReturn.OK          # joined mid-stream: wait for a config frame
        if fr.ftype == ct.FRAME_GROUP:
            return self._group(fr)
        self._frames += 1
        rate, hop = self._cfg.samplerate, self._cfg.hop
        flags = Gst.BufferFlags.DISCONT if self._discont else _NOFLAGS
        self._discont = False
        if fr.ftype == ct.FRAME_EOS:
            self._ended = True                # like `pacodec decode`: nothing after the end
            return self.push(raw, None, 0, flags)
        if fr.ftype != ct.FRAME_CONFIG:
            flags |= Gst.BufferFlags.DELTA_UNIT
        k, _ = self._index.locate(fr)
        pts = None if k is None else _ns(k * hop, rate)
        return self.push(raw, pts, _ns(hop, rate), flags)

    def _group(self, fr):
        """A frame group (FORMAT.md §4, version 8) leaves as its members, each a plain audio
        frame with its own sequence number (downstream elements and packets carry single
        frames); a group of an earlier version or with an invalid count or lengths is damaged."""
        ct = _container()
        try:
            if self._cfg.version < ct.GROUP_VERSION:
                raise FormatError("frame type 3 before version 8")
            members = ct.group_members(fr.payload)
        except FormatError:
            self._discont = True
            return Gst.FlowReturn.OK
        ret = Gst.FlowReturn.OK
        for k, p in enumerate(members):
            seq = (fr.seq + k) & 0xFF
            raw = ct.pack_audio_frame(seq, p)
            ret = self._frame(ct.Frame(ct.FRAME_AUDIO, seq, p, len(raw)), raw)
            if ret != Gst.FlowReturn.OK:
                break
        return ret

    def on_eos(self):
        if not self._frames and not self._failed:
            self.error(Gst.stream_error_quark, Gst.StreamError.WRONG_TYPE,
                       "pacodecparse: no pacodec frame found in the input (not a .pac stream?)")
            return Gst.FlowReturn.ERROR
        return Gst.FlowReturn.OK


# Vorbis comment names -> GStreamer tags (the rest are left out)
_GST_TAGS = {"TITLE": "title", "ARTIST": "artist", "ALBUM": "album", "DATE": "datetime",
             "GENRE": "genre", "COMMENT": "comment", "COPYRIGHT": "copyright",
             "LICENSE": "license", "TRACKNUMBER": "track-number"}


def _tag_list(meta):
    """A stream-scope ``Gst.TagList`` of the metadata block: the common tags, and the loudness
    as ReplayGain track gain (``replaygain-track-gain``, dB to -18 LUFS; reference level 89 dB
    SPL, the ReplayGain equivalent)."""
    tl = Gst.TagList.new_empty()
    tl.set_scope(Gst.TagScope.STREAM)
    for key, value in meta.comments:
        name = _GST_TAGS.get(key)
        if name == "track-number":
            digits = value.split("/")[0].strip()
            if digits.isdigit() and int(digits) < 2 ** 32:
                from gi.repository import GObject
                tl.add_value(Gst.TagMergeMode.APPEND, name,
                             GObject.Value(GObject.TYPE_UINT, int(digits)))
        elif name == "datetime":
            dt = Gst.DateTime.new_from_iso8601_string(value.strip())
            if dt is not None:
                tl.add_value(Gst.TagMergeMode.APPEND, name, dt)
        elif name is not None:
            tl.add_value(Gst.TagMergeMode.APPEND, name, value)
    if meta.gain is not None:
        tl.add_value(Gst.TagMergeMode.REPLACE, "replaygain-track-gain", float(meta.gain))
        tl.add_value(Gst.TagMergeMode.REPLACE, "replaygain-reference-level", 89.0)
    return tl
