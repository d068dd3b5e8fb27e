"""The container layer of ``bitstreams/FORMAT.md``: §3 stream header, §3.1 config block, §3.2 the
versions read, §3.3 metadata block; §4 frames (sync word, type, length, sequence number, the
payloads by type: the config frame's block and frame index, the end-of-stream length), §4.1
synchronisation (the frame scanner: sync search with each candidate's CRC checked in constant
time by numba kernels), §4.2 CRC-16/XMODEM; ``scan_frames`` is the forward search of §10 seeking.
Version 8's audio groups (§4, type 3: several audio payloads under one header and CRC, their
lengths in lacing form) are packed and split here (:func:`pack_group_frame`,
:func:`group_members`); the scanner finds a type-3 frame like any other, and whether it is a
group or damaged (it depends on the stream's version, §4.3) is its reader's rule.
§4.3's decoding state (configuration, frame index, gaps) is the decoder's.

The main names: :func:`pack_header`/:func:`unpack_header`, :func:`pack_config`/
:func:`unpack_config`, :class:`Metadata` with :func:`pack_metadata`/:func:`unpack_metadata`,
:func:`normalize_tags` and :func:`frames_start`, :func:`pack_frame`/:func:`parse_frame_at` and the
``pack_*_frame``/``unpack_*_frame`` helpers, :func:`crc16`, :class:`Scanner`, :func:`scan_frames`.

The metadata block (§3.3) is here, not in a module of its own: FORMAT.md makes it part of the
stream header (§3), the header reader (:meth:`Scanner.read_header`) reads header and block as the
stream's head, and the block is sized and checked with the header's CRC, so a separate module and
this one would import each other.  UDP packets (§9) are :mod:`pacodec.packet`'s; the audio payload
inside a frame (§5) is :mod:`pacodec.payload`'s.
"""
from __future__ import annotations

import binascii
from dataclasses import dataclass

import numpy as np

from ._jit import njit
from .bitio import BitReader, BitWriter
from .config import MIN_BAND_VERSION, QUANTIZERS, SUPPORTED_RATES, WINDOW_SHAPES, StreamConfig
from .errors import FormatError, UnsupportedError, VersionError

__all__ = [
    "MAGIC", "SYNC", "FORMAT_VERSION", "UNKNOWN_LENGTH", "FRAME_AUDIO", "FRAME_CONFIG", "FRAME_EOS",
    "HEADER_SIZE", "FRAME_HEADER_SIZE", "CRC_SIZE", "MAX_PAYLOAD", "CONFIG_SIZE", "StreamHeader",
    "crc16", "pack_config", "unpack_config", "pack_header", "unpack_header", "pack_frame",
    "parse_frame_at", "find_sync", "frame_type", "frame_overhead", "pack_audio_frame", "pack_config_frame",
    "pack_eos_frame", "frame_config", "config_frame_index", "unpack_config_frame", "unpack_eos_frame", "Scanner",
    "MAX_FRAME_SIZE", "scan_frames", "SCAN_FRAME", "SCAN_DAMAGED", "SCAN_TRUNCATED", "MAX_SYNC_SEARCH",
    "SUPPORTED_VERSIONS", "FRAME_GROUP", "GROUP_VERSION", "MIN_GROUP", "MAX_GROUP", "lacing",
    "lacing_size", "pack_group_frame", "group_members", "group_overhead",
    "META_MAGIC", "META_MAX_BODY", "META_MAX_SIZE", "Metadata", "normalize_tags", "pack_metadata",
    "unpack_metadata", "metadata_size", "frames_start", "REPLAYGAIN_REFERENCE",
]

MAGIC = b"PACD"                 # §3
FORMAT_VERSION = 8             # §3.1; version 8: frame groups (§4, type 3)
#: version 7 differs from 8 only in having no frame groups (its type 3 is damaged), version 6
#: from 7 only in the spectral codes' rows (§7.3), version 5 from 6 only in the payload's side
#: codes (§5.3, §7.2), version 4 from 5 in
#: having no min_band field (its bits are reserved), version 3 from 4 in its codes and in having
#: no metadata block (§3.2, §13)
SUPPORTED_VERSIONS = (3, 4, 5, 6, 7, FORMAT_VERSION)
SYNC = 0xCA5E                   # §4
SYNC_BYTES = b"\xca\x5e"
FRAME_AUDIO, FRAME_CONFIG, FRAME_EOS = 0, 1, 2
#: §4: type 3 is an audio group from version 8 on (before, and before the version is known, a
#: type-3 frame is damaged)
FRAME_GROUP = 3
GROUP_VERSION = 8
MIN_GROUP, MAX_GROUP = 2, 16     # members of a group (its count byte)
CONFIG_SIZE = 8
CONFIG_PREFIX = CONFIG_SIZE + 4   # config frames: config block + 32-bit frame index (§4.1)
EOS_SIZE = 6                      # end-of-stream payload: 48-bit total length (§4.1)
HEADER_SIZE = 4 + CONFIG_SIZE + 6 + 2
FRAME_HEADER_SIZE = 5
CRC_SIZE = 2
MAX_PAYLOAD = (1 << 14) - 1
MAX_FRAME_SIZE = FRAME_HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE
UNKNOWN_LENGTH = (1 << 48) - 1


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM (poly 0x1021, init 0, no reflection) — §4."""
    return binascii.crc_hqx(data, 0)


# ----------------------------------------------------------------------------- config block §3.1
def pack_config(cfg: StreamConfig) -> bytes:
    w = BitWriter(CONFIG_SIZE)
    w.write(cfg.version, 8)
    w.write(SUPPORTED_RATES.index(cfg.samplerate), 4)
    w.write(cfg.channels - 1, 4)
    w.write(cfg.hop.bit_length() - 1, 4)
    w.write(cfg.overlap.bit_length() - 1, 4)
    w.write(int(cfg.short_blocks), 1)
    w.write(WINDOW_SHAPES.index(cfg.window_shape), 1)
    w.write(QUANTIZERS.index(cfg.quantizer), 2)
    w.write(cfg.min_band, 2)          # version 5; reserved (0) in versions 3 and 4
    w.write(0, 2)
    w.write(cfg.mu, 16)
    w.write(cfg.delay, 16)
    return w.getvalue()


def unpack_config(data: bytes) -> StreamConfig:
    """Parse and validate a config block; raises :class:`FormatError` on any invalid field."""
    if len(data) < CONFIG_SIZE:
        raise FormatError("config block is truncated")
    r = BitReader(data[:CONFIG_SIZE], "config block")
    version = r.read(8)
    if version not in SUPPORTED_VERSIONS:
        raise VersionError(f"unsupported pacodec format version {version} (this decoder reads "
                           f"version {', '.join(map(str, SUPPORTED_VERSIONS))})")
    rate_i, ch = r.read(4), r.read(4) + 1
    hop_l, ov_l = r.read(4), r.read(4)
    short, shape, quant = r.read(1), r.read(1), r.read(2)
    # §3.1: min_band is the first two of the four bits after the quantizer from version 5 on;
    # before, all four are reserved
    min_band, reserved = (r.read(2), r.read(2)) if version >= MIN_BAND_VERSION else (0, r.read(4))
    mu, delay = r.read(16), r.read(16)
    if rate_i >= len(SUPPORTED_RATES):
        raise FormatError(f"invalid sample rate index {rate_i}")
    if quant >= len(QUANTIZERS):
        raise FormatError(f"invalid quantizer {quant}")
    if reserved:
        raise FormatError("reserved config bits are set")
    if not (5 <= hop_l <= 11 and 5 <= ov_l <= hop_l):
        raise FormatError(f"invalid frame size fields (hop 2^{hop_l}, overlap 2^{ov_l})")
    try:
        cfg = StreamConfig(samplerate=SUPPORTED_RATES[rate_i], channels=ch, hop=1 << hop_l,
                           overlap=1 << ov_l, short_blocks=bool(short),
                           window_shape=WINDOW_SHAPES[shape], quantizer=QUANTIZERS[quant], mu=mu,
                           version=version, min_band=min_band)
    except UnsupportedError as e:
        raise FormatError(f"invalid config: {e}") from None
    if delay != cfg.delay:
        raise FormatError(f"invalid encoder delay {delay} (expected {cfg.delay})")
    return cfg


# ----------------------------------------------------------------------------- stream header §3
@dataclass(frozen=True)
class StreamHeader:
    config: StreamConfig
    total_length: int | None       # samples per channel, None = unknown (see the EOS frame)


def pack_header(cfg: StreamConfig, total_length: int | None) -> bytes:
    n = UNKNOWN_LENGTH if total_length is None else int(total_length)
    if total_length is not None and not 0 <= n < UNKNOWN_LENGTH:
        raise UnsupportedError("stream too long for the format")
    body = MAGIC + pack_config(cfg) + n.to_bytes(6, "big")
    return body + crc16(body).to_bytes(2, "big")


def unpack_header(data: bytes) -> StreamHeader:
    if len(data) < 4 or data[:4] != MAGIC:
        raise FormatError("not a pacodec stream (bad magic)")
    if len(data) < HEADER_SIZE:
        raise FormatError("stream header is truncated")
    body = bytes(data[:HEADER_SIZE - 2])
    if crc16(body) != int.from_bytes(data[HEADER_SIZE - 2:HEADER_SIZE], "big"):
        raise FormatError("stream header CRC mismatch")
    cfg = unpack_config(body[4:4 + CONFIG_SIZE])
    n = int.from_bytes(body[4 + CONFIG_SIZE:], "big")
    return StreamHeader(cfg, None if n == UNKNOWN_LENGTH else n)


# ----------------------------------------------------------------------------- metadata block §3.3
META_MAGIC = b"PACM"
META_MIN_VERSION = 4
META_MAX_BODY = (1 << 14) - 1           # u7(2) length field
META_FIXED = 4 + 2 + 3                  # magic, length, crc
META_MAX_SIZE = META_FIXED + META_MAX_BODY
META_LOUDNESS_SIZE = 3
META_LOUDNESS_ZERO = 1 << 20            # u7(3) value of 0 LUFS; 0 = no loudness
REPLAYGAIN_REFERENCE = -18.0            # LUFS: ReplayGain 2.0's reference level (§3.3)


def _u7(value: int, n: int) -> bytes:
    """``value`` in ``n`` bytes of 7 bits each, big-endian, top bit 0 (§3.3)."""
    return bytes((value >> (7 * (n - 1 - i))) & 0x7F for i in range(n))


def _read_u7(data, what: str) -> int:
    v = 0
    for b in data:
        if b & 0x80:
            raise FormatError(f"metadata block has a byte with the top bit set in its {what} field")
        v = (v << 7) | b
    return v


def _valid_key(key: str) -> bool:
    return bool(key) and all(0x20 <= ord(c) <= 0x7D and c != "=" for c in key)


@dataclass(frozen=True)
class Metadata:
    """The metadata block (§3.3): comments ``(KEY, value)`` in stream order (a key may repeat)
    and the integrated loudness of the encoder's input in LUFS (None: not measured)."""
    comments: tuple = ()
    loudness: float | None = None

    @property
    def tags(self) -> dict:
        """``{KEY: value}``; the values of a repeated key joined by ``"; "``."""
        out: dict = {}
        for k, v in self.comments:
            out[k] = v if k not in out else out[k] + "; " + v
        return out

    @property
    def gain(self) -> float | None:
        """The ReplayGain 2.0 track gain in dB: ``-18 LUFS - loudness`` (§3.3)."""
        return None if self.loudness is None else REPLAYGAIN_REFERENCE - self.loudness


def normalize_tags(tags) -> tuple:
    """``(KEY, value)`` pairs from a mapping (a value may be a list: one comment each) or an
    iterable of pairs; keys upper-cased.  Raises :class:`UnsupportedError` for a key or value the
    format cannot carry (§3.3)."""
    items = tags.items() if hasattr(tags, "items") else tags
    out = []
    for key, value in items:
        if not isinstance(key, str) or not _valid_key(key):
            raise UnsupportedError(f"invalid tag name {key!r}: use 1 or more of the ASCII "
                                   "characters space..'}' except '='")
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if not isinstance(v, str):
                v = str(v)
            if "\0" in v:
                raise UnsupportedError(f"tag {key.upper()}: its value contains a NUL character")
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise UnsupportedError(f"tag {key.upper()}: its value is not valid Unicode text") \
                    from None
            out.append((key.upper(), v))
    return tuple(out)


def pack_metadata(meta: Metadata) -> bytes:
    """The metadata block.  Raises :class:`UnsupportedError` when it exceeds ``META_MAX_BODY``."""
    comments = normalize_tags(meta.comments)
    if meta.loudness is None or not np.isfinite(meta.loudness):
        v = 0
    else:
        v = min(max(int(round(meta.loudness * 256)) + META_LOUDNESS_ZERO, 1), (1 << 21) - 1)
    body = bytearray(_u7(v, META_LOUDNESS_SIZE))
    for k, val in comments:
        body += (k + "=" + val).encode("utf-8") + b"\0"
    if len(body) > META_MAX_BODY:
        raise UnsupportedError(f"the tags take {len(body) - META_LOUDNESS_SIZE} bytes; a stream "
                               f"carries at most {META_MAX_BODY - META_LOUDNESS_SIZE} "
                               "(FORMAT.md §3.3): shorten or drop some")
    block = META_MAGIC + _u7(len(body), 2) + bytes(body)
    return block + _u7(crc16(block), 3)


def metadata_size(data) -> int | None:
    """Size of the metadata block at the start of ``data`` from its length field, or None when
    fewer than 6 bytes are there.  Raises :class:`FormatError` if the length field is invalid."""
    if len(data) < 6:
        return None
    return META_FIXED + _read_u7(data[4:6], "length")


def frames_start(data) -> int:
    """Offset of the first frame of an intact stream: after its header and metadata block."""
    pos = HEADER_SIZE if bytes(data[:4]) == MAGIC else 0
    if pos and bytes(data[pos:pos + 4]) == META_MAGIC:
        pos += metadata_size(data[pos:pos + 6])
    return pos


def unpack_metadata(data) -> Metadata:
    """Parse and check the metadata block that is exactly ``data``; raises :class:`FormatError`
    when it is damaged (§3.3: the whole block is then ignored)."""
    data = bytes(data)
    if data[:4] != META_MAGIC:
        raise FormatError("not a metadata block")
    size = metadata_size(data)
    if size is None or len(data) < size:
        raise FormatError("metadata block is truncated")
    n = size - 3
    crc = _read_u7(data[n:size], "crc")
    if crc != crc16(data[:n]):
        raise FormatError("metadata block CRC mismatch")
    body = data[6:n]
    if len(body) < META_LOUDNESS_SIZE:
        raise FormatError("metadata block is too short for its loudness field")
    v = _read_u7(body[:META_LOUDNESS_SIZE], "loudness")
    loud = None if v == 0 else (v - META_LOUDNESS_ZERO) / 256
    rest = body[META_LOUDNESS_SIZE:]
    if rest and rest[-1] != 0:
        raise FormatError("metadata block has an unterminated last comment")
    comments = []
    for raw in rest.split(b"\0")[:-1]:
        key, eq, value = raw.partition(b"=")
        try:
            k = key.decode("ascii")
            val = value.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("metadata block has a comment that is not valid UTF-8") from None
        if not eq or not _valid_key(k):
            raise FormatError("metadata block has a comment without a valid KEY=")
        comments.append((k.upper(), val))
    return Metadata(tuple(comments), loud)


# ----------------------------------------------------------------------------- frames §4
def pack_frame(ftype: int, seq: int, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise FormatError("frame payload too large")
    head = bytes([(SYNC >> 8), SYNC & 0xFF, (ftype << 6) | (len(payload) >> 8), len(payload) & 0xFF,
                  seq & 0xFF])
    crc = crc16(head[2:] + payload)
    return head + payload + crc.to_bytes(2, "big")


@dataclass
class Frame:
    ftype: int
    seq: int
    payload: bytes
    size: int                      # total bytes including header and CRC


def parse_frame_at(buf, pos: int):
    """Parse the frame starting at ``buf[pos]``.

    Returns a :class:`Frame`, ``None`` if more bytes are needed, or raises :class:`FormatError`
    (bad sync, CRC mismatch) — the caller resyncs on the next sync word.  A type-3 frame is
    returned like any other: whether it is a group (version 8) or damaged is the caller's rule
    (§4.3: it depends on the stream's version).
    """
    if len(buf) - pos < FRAME_HEADER_SIZE:
        return None
    if buf[pos] != SYNC >> 8 or buf[pos + 1] != SYNC & 0xFF:
        raise FormatError("no sync word")
    ftype = buf[pos + 2] >> 6
    length = ((buf[pos + 2] & 0x3F) << 8) | buf[pos + 3]
    end = pos + FRAME_HEADER_SIZE + length + CRC_SIZE
    if len(buf) < end:
        return None
    # CRC over a view, copy only a frame that passes: a flood of false sync words claiming long
    # frames costs one CRC each, not three copies too
    with memoryview(buf) as view:
        ok = crc16(view[pos + 2:end - CRC_SIZE]) == (buf[end - 2] << 8 | buf[end - 1])
    if not ok:
        raise FormatError("frame CRC mismatch")
    return Frame(ftype, buf[pos + 4], bytes(buf[pos + FRAME_HEADER_SIZE:end - CRC_SIZE]), end - pos)


def find_sync(buf, start: int) -> int:
    """Offset of the next sync word at or after ``start``, or -1."""
    return bytes(buf).find(SYNC_BYTES, start) if not isinstance(buf, (bytes, bytearray)) \
        else buf.find(SYNC_BYTES, start)


def frame_type(frame: bytes) -> int:
    """The type field of a packed frame (``frame[0:2]`` is the sync word)."""
    return frame[2] >> 6


# ----------------------------------------------------------------------------- frame payloads §4.1
def frame_overhead(ftype: int) -> int:
    """Bytes a frame of this type takes beyond its audio payload (header, CRC, config prefix)."""
    return FRAME_HEADER_SIZE + CRC_SIZE + (CONFIG_PREFIX if ftype == FRAME_CONFIG else 0)


def pack_audio_frame(seq: int, payload: bytes) -> bytes:
    return pack_frame(FRAME_AUDIO, seq, payload)


def lacing(n: int) -> bytes:
    """A member's length in lacing form (§4): ``n // 255`` bytes 255, then ``n mod 255``."""
    return b"\xff" * (n // 255) + bytes([n % 255])


def lacing_size(n: int) -> int:
    """Bytes of :func:`lacing` ``(n)``."""
    return n // 255 + 1


def group_overhead(lengths) -> int:
    """Bytes the frame of these member payload lengths adds beyond them: header and CRC, and
    for a group (2 or more) its count byte and the lacing of all members but the last."""
    lengths = list(lengths)
    if len(lengths) < 2:
        return FRAME_HEADER_SIZE + CRC_SIZE
    return FRAME_HEADER_SIZE + CRC_SIZE + 1 + sum(lacing_size(n) for n in lengths[:-1])


def pack_group_frame(seq: int, payloads) -> bytes:
    """The audio group (§4, version 8) of the audio payloads ``payloads`` (2..16 of them), the
    first with sequence number ``seq``; one payload is packed as a plain audio frame."""
    payloads = list(payloads)
    if len(payloads) == 1:
        return pack_audio_frame(seq, payloads[0])
    if not MIN_GROUP <= len(payloads) <= MAX_GROUP:
        raise FormatError(f"a group holds {MIN_GROUP} to {MAX_GROUP} frames, not {len(payloads)}")
    body = bytes([len(payloads)]) + b"".join(lacing(len(p)) for p in payloads[:-1])
    return pack_frame(FRAME_GROUP, seq, body + b"".join(payloads))


def group_members(payload) -> list:
    """The member payloads of an audio group's payload (§4); raises :class:`FormatError` when
    the count is not 2..16 or the lengths overrun the payload (the group is damaged)."""
    n = len(payload)
    if n < 1:
        raise FormatError("empty group frame")
    count = payload[0]
    if not MIN_GROUP <= count <= MAX_GROUP:
        raise FormatError(f"invalid group count {count}")
    p = 1
    lengths = []
    for _ in range(count - 1):
        size = 0
        while True:
            if p >= n:
                raise FormatError("group lengths overrun the frame")
            b = payload[p]
            p += 1
            size += b
            if b < 255:
                break
        lengths.append(size)
    rest = n - p - sum(lengths)
    if rest < 0:
        raise FormatError("group lengths overrun the frame")
    lengths.append(rest)
    out = []
    for size in lengths:
        out.append(bytes(payload[p:p + size]))
        p += size
    return out


def pack_config_frame(cfg: StreamConfig, index: int, payload: bytes = b"") -> bytes:
    """A config frame: config block, 32-bit frame index, then the audio payload of frame
    ``index`` (its sequence number is ``index mod 256``)."""
    return pack_frame(FRAME_CONFIG, index & 0xFF,
                      pack_config(cfg) + (index & 0xFFFFFFFF).to_bytes(4, "big") + payload)


def pack_eos_frame(seq: int, total_length: int) -> bytes:
    """The end-of-stream frame: the stream's length in samples per channel (48 bits)."""
    return pack_frame(FRAME_EOS, seq, int(total_length).to_bytes(EOS_SIZE, "big"))


def frame_config(fr: "Frame") -> StreamConfig:
    """The config block of a config frame, validated (the frame index is not checked)."""
    config_frame_index(fr)
    return unpack_config(fr.payload[:CONFIG_SIZE])


def config_frame_index(fr: "Frame") -> int:
    """The frame index of a config frame, without validating its config block."""
    if len(fr.payload) < CONFIG_PREFIX:
        raise FormatError("config frame is truncated")
    return int.from_bytes(fr.payload[CONFIG_SIZE:CONFIG_PREFIX], "big")


def unpack_config_frame(fr: "Frame") -> tuple[StreamConfig, int, bytes]:
    """``(config, frame index, audio payload)`` of a config frame, validated."""
    index = config_frame_index(fr)
    cfg = unpack_config(fr.payload[:CONFIG_SIZE])
    if index & 0xFF != fr.seq:
        raise FormatError("config frame index disagrees with its sequence number")
    return cfg, index, fr.payload[CONFIG_PREFIX:]


def unpack_eos_frame(fr: "Frame") -> int:
    """The total length (samples per channel) an end-of-stream frame carries."""
    if len(fr.payload) != EOS_SIZE:
        raise FormatError("invalid end-of-stream frame")
    return int.from_bytes(fr.payload, "big")


# ----------------------------------------------------------------------------- the frame scanner
SCAN_FRAME, SCAN_DAMAGED, SCAN_TRUNCATED, SCAN_RUN = range(4)
# A valid stream carries a config frame at least once a second (§4); the densest valid second is
# 96 kHz / 32-sample hops x 16 390-byte frames = 49 MB.  Input that shows no CRC-valid frame in
# its first MAX_SYNC_SEARCH bytes is not a pacodec stream: scanners give up instead of reading on
# (``/dev/zero`` would otherwise be read forever).
MAX_SYNC_SEARCH = 1 << 26


class Scanner:
    """The one frame scanner (§4): finds frames in a byte stream by sync word, length and CRC and
    resynchronises after garbage.  The decoder, ``info``, ``PacFile`` seeking and
    ``pacodecparse`` all read frames through it.

    :meth:`feed` appends bytes; :meth:`events` yields ``(kind, offset, value)`` with ``offset``
    the stream offset, until it needs more input (or, ``final``, at the end of the input):

    - ``SCAN_FRAME, offset, Frame``: a frame that passes its CRC; the scan resumes after it, or
      one byte after its start if the caller calls :meth:`reject` (it found the frame invalid);
    - ``SCAN_DAMAGED, offset, (nbytes, bad, reason)``: a run of bytes that are not frames, before
      the next frame (or truncation, or the end): ``bad`` sync words in it whose frame failed,
      ``reason`` what is wrong at its start ("not a frame (no sync word)", "frame CRC
      mismatch").  A run may span several :meth:`feed` calls;
    - ``SCAN_TRUNCATED, offset, nbytes`` (``final`` only): a frame running past the end.
    - ``SCAN_RUN, offset, nbytes``: frames a ``run`` callback of :meth:`events` consumed
      (the decoder's many-frames-per-call path).

    Cost: the scan runs in a numba kernel; a sync candidate's CRC is checked in constant time
    from prefix CRCs, whatever length it claims, so false sync words cost O(1) each.  Memory:
    the unscanned rest of the input, at most one frame (``MAX_PAYLOAD`` + 7 bytes) plus the last
    chunk fed (and 4 bytes per buffered byte of prefix CRCs).  Before the first CRC-valid frame,
    more than ``MAX_SYNC_SEARCH`` bytes raise :class:`FormatError`.
    """

    def __init__(self, offset: int = 0):
        self.buf = bytearray()
        self.base = offset           # stream offset of buf[0]
        self.pos = 0                 # scan position in buf
        self.synced = False          # a CRC-valid frame was seen
        self._reject = False
        self._run = None             # the damaged run being scanned: [offset, bad candidates, reason]
        self._P = np.zeros(1 << 14, dtype=np.int32)     # prefix CRCs of the buffer
        self._res = np.zeros(5, dtype=np.int64)
        self.header_bytes = None     # the stream header read by read_header
        self.metadata = None         # its metadata block (§3.3), if valid
        self.metadata_error = None   # or why the block there is damaged

    @property
    def offset(self) -> int:
        """Stream offset of the scan position."""
        return self.base + self.pos

    def feed(self, data):
        if self.pos:
            del self.buf[:self.pos]
            self.base += self.pos
            self.pos = 0
        self.buf += data

    def reject(self):
        """The frame just yielded is invalid: resume the scan one byte after its start."""
        self._reject = True

    def skip(self, nbytes: int):
        self.pos += nbytes

    def clear(self):
        """Drop the rest of the buffered input (after an end-of-stream frame)."""
        self.base += len(self.buf)
        self.buf.clear()
        self.pos = 0

    def read_header(self, final: bool):
        """At the start of a stream: ``None`` (more bytes needed), ``False`` (no header: frames
        start at once), a :class:`StreamHeader`, or a :class:`FormatError` for a damaged header
        (its bytes are skipped).  A truncated header at the end of the input raises."""
        buf = self.buf
        if len(buf) - self.pos < 4 and not final:
            return None
        if bytes(buf[self.pos:self.pos + 4]) != MAGIC:
            return False
        if len(buf) - self.pos < HEADER_SIZE:
            if not final:
                return None
            raise FormatError("stream header is truncated")
        head = bytes(buf[self.pos:self.pos + HEADER_SIZE])
        try:
            hdr = unpack_header(head)
        except FormatError as e:
            self.pos += HEADER_SIZE
            return e
        # the metadata block (§3.3) of a version >= 4 stream: skipped by its length when valid;
        # a damaged one stays in the input, where the search skips it like garbage (it holds no
        # sync word)
        start = self.pos + HEADER_SIZE
        if hdr.config.version >= META_MIN_VERSION:
            magic = bytes(buf[start:start + 4])
            if len(magic) < 4 and META_MAGIC.startswith(magic) and not final:
                return None
            if magic == META_MAGIC:
                try:
                    size = metadata_size(buf[start:start + 6])
                    if size is None or len(buf) - start < size:
                        if not final:
                            return None
                        raise FormatError("metadata block is truncated")
                    self.metadata = unpack_metadata(buf[start:start + size])
                    self.header_bytes = head
                    self.pos = start + size
                    return hdr
                except FormatError as e:
                    self.metadata_error = e
        self.header_bytes = head
        self.pos = start
        return hdr

    def has_sync(self) -> bool:
        return self.buf.find(SYNC_BYTES, self.pos) >= 0

    def _give_up(self):
        if not self.synced and self.base + self.pos > MAX_SYNC_SEARCH:
            raise FormatError(f"no pacodec frame in the first {MAX_SYNC_SEARCH >> 20} MiB of the "
                              "input (not a pacodec stream)")

    def events(self, final: bool = False, run=None):
        """Yield the scan events up to the end of the buffered input (see the class doc).

        ``run(view, pos, n, final, P, p0)``, if given, is offered the input wherever a frame may
        start (no damaged run is open): it may consume clean frames from ``pos`` on, scanning
        them with :func:`_scan` over this prefix-CRC array ``P``, and returns where it stopped
        (``pos``: it consumed nothing).  What it consumed is reported as one ``SCAN_RUN, offset,
        nbytes`` event."""
        buf = self.buf
        p0 = self.pos
        n = len(buf)
        if n - p0 + 1 > len(self._P):
            self._P = None
            self._P = np.zeros(n - p0 + 1 + (n - p0) // 4, dtype=np.int32)
        P = self._P
        res = self._res
        # the numpy view pins the bytearray's size: it is dropped before every yield, so a
        # consumer that stops iterating early can still feed() afterwards
        view = np.frombuffer(buf, dtype=np.uint8) if n else _EMPTY
        crc_prefix(view, p0, n, _CRC_TABLE, P)
        while self.pos < n:
            pos = self.pos
            if run is not None and self._run is None:
                stop = run(view, pos, n, final, P, p0)
                if stop > pos:
                    self.synced = True
                    self.pos = stop
                    view = None
                    yield SCAN_RUN, self.base + pos, stop - pos
                    view = np.frombuffer(buf, dtype=np.uint8)
                    continue
            _scan(view, pos, n, final, P, p0, _CRC_XPOW, res)
            status, stop, size, nbad, reason = int(res[0]), int(res[1]), int(res[2]), \
                int(res[3]), int(res[4])
            if reason >= 0:                    # damaged bytes in [pos, stop)
                if self._run is None:
                    self._run = [self.base + pos, 0, reason]
                self._run[1] += nbad
            self.pos = stop
            if status == _NEED:
                break
            if self._run is not None:
                view = None
                yield self._close_run()
                view = np.frombuffer(buf, dtype=np.uint8)
            if status == SCAN_TRUNCATED:
                nxt = buf.find(SYNC_BYTES, stop + 1)
                self.pos = nxt if nxt >= 0 else n
                view = None
                yield SCAN_TRUNCATED, self.base + stop, n - stop
                view = np.frombuffer(buf, dtype=np.uint8)
                continue
            self.synced = True
            self._reject = False
            fr = Frame(buf[stop + 2] >> 6, buf[stop + 4],
                       bytes(buf[stop + FRAME_HEADER_SIZE:stop + size - CRC_SIZE]), size)
            view = None
            yield SCAN_FRAME, self.base + stop, fr
            view = np.frombuffer(buf, dtype=np.uint8)
            self.pos = stop + (1 if self._reject else size)
            self._reject = False
        view = None
        self._give_up()
        if final and self._run is not None:
            yield self._close_run()

    def _close_run(self):
        start, nbad, reason = self._run
        self._run = None
        return SCAN_DAMAGED, start, (self.base + self.pos - start, nbad, _REASONS[reason])


_NEED = -1
_REASONS = ("not a frame (no sync word)", "frame CRC mismatch", "reserved frame type")
_EMPTY = np.zeros(1, dtype=np.uint8)


def _crc_table():
    t = np.zeros(256, dtype=np.int64)
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t[i] = c & 0xFFFF
    return t


@njit(inline="always")
def _mulmod(a, b):
    """``a * b mod G`` for 16-bit polynomials over GF(2), G = x^16 + x^12 + x^5 + 1 (§4)."""
    r = 0
    for i in range(15, -1, -1):
        r <<= 1
        if r & 0x10000:
            r ^= 0x11021
        if (b >> i) & 1:
            r ^= a
    return r


def _crc_xpow():
    """``x^(8 L) mod G`` for every byte length L a frame's CRC can cover."""
    # multiplying by x^8 mod G is the CRC register step with a zero byte (one table look-up
    # instead of a 16-step _mulmod in Python: this runs at every import)
    table = _CRC_TABLE.tolist()
    xp = [1]
    r = 1
    for _ in range(1, MAX_PAYLOAD + FRAME_HEADER_SIZE):
        r = ((r << 8) & 0xFFFF) ^ table[r >> 8]
        xp.append(r)
    return np.array(xp, dtype=np.int64)


_CRC_TABLE = _crc_table()
_CRC_XPOW = _crc_xpow()


@njit
def crc_prefix(buf, start, n, table, P):
    """``P[i - start]`` = the CRC-16/XMODEM register after ``buf[start:i]`` (from 0).  The CRC
    of ``buf[a:b]`` is then ``P[b] ^ P[a] * x^(8(b - a)) mod G`` (the CRC is linear and starts
    from 0), so every sync candidate is checked in constant time whatever length it claims."""
    r = 0
    P[0] = 0
    for i in range(start, n):
        r = ((r << 8) & 0xFFFF) ^ table[((r >> 8) ^ int(buf[i])) & 0xFF]
        P[i - start + 1] = r


@njit
def _scan(buf, pos, n, final, P, p0, xpow, res):
    """Scan ``buf[pos:n]`` up to the next CRC-valid frame (FORMAT.md §4 framing).

    ``res`` receives [status, stop, size, bad candidates, first damage reason or -1]: status
    SCAN_FRAME (a frame of ``size`` bytes at ``stop``), _NEED (more input needed from ``stop``
    on; ``stop == n`` when all is consumed) or SCAN_TRUNCATED (``final``: the candidate at
    ``stop`` runs past the end).  Bytes in ``[pos, stop)`` are damaged: garbage and sync words
    whose frame fails its CRC.  A type-3 frame is found like any other (whether it is a group,
    version 8, or damaged is the caller's rule, §4.3)."""
    nbad = 0
    reason = -1
    status = _NEED
    size = 0
    while pos < n:
        if buf[pos] != 0xCA or (pos + 1 < n and buf[pos + 1] != 0x5E):
            if reason < 0:
                reason = 0
            q = pos + 1
            while q + 1 < n and not (buf[q] == 0xCA and buf[q + 1] == 0x5E):
                q += 1
            if q + 1 >= n:
                # no sync word in the rest: keep a last byte that may begin one
                pos = n - 1 if (not final and buf[n - 1] == 0xCA) else n
                break
            pos = q
            continue
        if n - pos < FRAME_HEADER_SIZE:
            status = SCAN_TRUNCATED if final else _NEED
            break
        b2 = int(buf[pos + 2])         # int(): plain-Python runs (.py_func) must not wrap uint8
        length = ((b2 & 0x3F) << 8) | int(buf[pos + 3])
        end = pos + FRAME_HEADER_SIZE + length + CRC_SIZE
        if end > n:
            status = SCAN_TRUNCATED if final else _NEED
            break
        a = pos + 2 - p0
        b = end - CRC_SIZE - p0
        crc = int(P[b]) ^ _mulmod(int(P[a]), int(xpow[b - a]))
        if crc != ((int(buf[end - 2]) << 8) | int(buf[end - 1])):
            nbad += 1
            if reason < 0:
                reason = 1
            pos += 1
            continue
        status = SCAN_FRAME
        size = end - pos
        break
    res[0] = status
    res[1] = pos
    res[2] = size
    res[3] = nbad
    res[4] = reason


def scan_frames(fh, start: int = 0, stop: int | None = None, chunk: int = 1 << 16):
    """Yield ``(offset, Frame)`` for every CRC-valid frame of the seekable binary file ``fh``
    that starts in ``[start, stop)`` (garbage and damaged candidates are skipped)."""
    fh.seek(start)
    sc = Scanner(start)
    sc.synced = True               # a search from the middle of a stream: no give-up bound
    while True:
        if stop is not None and sc.offset >= stop:
            return
        data = fh.read(chunk)
        if data:
            sc.feed(data)
        for kind, off, val in sc.events(final=not data):
            if kind == SCAN_FRAME:
                if stop is not None and off >= stop:
                    return
                yield off, val
        if not data:
            return
