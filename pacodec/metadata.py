"""The metadata block of ``bitstreams/FORMAT.md`` §3.3 (format version 4): comments
(``KEY=value``) and the encoder input's integrated loudness, between the stream header and the
first frame.

The main names: :class:`Metadata` (with the ReplayGain 2.0 gain), :func:`normalize_tags`,
:func:`pack_metadata`/:func:`unpack_metadata`, :func:`metadata_size` and :func:`frames_start`
(the offset of the first frame: after the header of :mod:`pacodec.container` and this block).
A module of its own beside the container: its job (tags, loudness) is not framing, and the
encoder, ``batch`` and the fuzzer build blocks without the rest of the container.  It uses the
container's CRC and header size; the container's header reader
(:meth:`pacodec.container.Scanner.read_header`) imports it on use, so the two do not import each
other at load time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .container import HEADER_SIZE, MAGIC, crc16
from .errors import FormatError, UnsupportedError

__all__ = [
    "META_MAGIC", "META_MAX_BODY", "META_MAX_SIZE", "Metadata", "normalize_tags", "pack_metadata",
    "unpack_metadata", "metadata_size", "frames_start", "REPLAYGAIN_REFERENCE",
]

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
