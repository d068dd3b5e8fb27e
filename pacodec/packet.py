"""UDP packets, ``bitstreams/FORMAT.md`` §9 (packet version 2): a 14-byte header (tag, flags,
session, seq, timestamp), one frame of :mod:`pacodec.container` or with flag bit 1 two to eight
consecutive frames, and with flag bit 0 a keyed-BLAKE2b MAC.

The main names: :func:`pack_packet`/:func:`unpack_packet`, :class:`Packet`, :func:`split_frames`,
:func:`packet_mac`.  Keys and session ids, and these functions under their streaming names, are
:mod:`pacodec.stream.packet`'s.
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import struct

from .container import CRC_SIZE, FRAME_GROUP, FRAME_HEADER_SIZE, SYNC_BYTES
from .errors import FormatError

__all__ = [
    "pack_packet", "unpack_packet", "Packet", "split_frames", "PACKET_FLAG_FRAMES",
    "PACKET_MAX_FRAMES", "packet_mac", "PACKET_TAG", "PACKET_VERSION",
]

# UDP packet version 2: tag 0xA8, flags, session, seq, timestamp (>BBIII), one frame, and with
# flag bit 0 a 16-byte keyed-BLAKE2b MAC (person b"pacodec-udp-v2") over everything before it.
PACKET_VERSION = 2
PACKET_TAG = 0xA8
OLD_PACKET_TAG = 0xA7             # version 1: refused with its own message
PACKET_HEADER = struct.Struct(">BBIII")
PACKET_FLAG_MAC = 0x01
PACKET_FLAG_FRAMES = 0x02         # the frame field holds 2..PACKET_MAX_FRAMES frames (§9)
PACKET_MAX_FRAMES = 8
PACKET_MAC_SIZE = 16
PACKET_MAC_PERSON = b"pacodec-udp-v2"
PACKET_MIN_FRAME = FRAME_HEADER_SIZE + CRC_SIZE        # a frame header and its CRC at least

class Packet(collections.namedtuple("Packet", "session seq timestamp frame authenticated")):
    """A datagram's fields; ``frame`` is its whole frame field (one frame, or with flag bit 1
    several, §9): :attr:`frames` splits it.  :func:`unpack_packet` keeps the frames it split to
    check a flagged field's count (outside the five fields), so they are split once."""

    @property
    def frames(self) -> list:
        """The frames of the packet, in order (``seq``, ``seq + 1``, ...)."""
        frames = self.__dict__.get("_frames")
        return split_frames(self.frame) if frames is None else list(frames)


def split_frames(field) -> list:
    """The consecutive frames (§4) of a packet's frame field, each as ``bytes``, by their sync
    words and length fields (their CRCs are the decoder's to check); :class:`FormatError` when
    the field is not a whole number of frames."""
    field = bytes(field)
    out = []
    pos = 0
    while pos < len(field):
        if len(field) - pos < PACKET_MIN_FRAME or field[pos:pos + 2] != SYNC_BYTES:
            raise FormatError("bad frame in packet")
        size = (((field[pos + 2] & 0x3F) << 8) | field[pos + 3]) + FRAME_HEADER_SIZE + CRC_SIZE
        if pos + size > len(field):
            raise FormatError("bad frame in packet")
        out.append(field[pos:pos + size])
        pos += size
    return out


def packet_mac(key: bytes, data: bytes) -> bytes:
    """The MAC of a packet's bytes before the MAC (§9)."""
    return hashlib.blake2b(data, key=key, digest_size=PACKET_MAC_SIZE,
                           person=PACKET_MAC_PERSON).digest()


def pack_packet(session: int, seq: int, timestamp: int, frame, key: bytes | None = None) -> bytes:
    """One datagram (§9).  ``key`` (bytes) adds the MAC.  ``frame``: one frame, or a list of
    1..PACKET_MAX_FRAMES consecutive frames (``seq`` and ``timestamp`` are the first one's;
    two or more set flag bit 1)."""
    flags = PACKET_FLAG_MAC if key else 0
    if isinstance(frame, (list, tuple)):
        if not 1 <= len(frame) <= PACKET_MAX_FRAMES:
            raise ValueError(f"a packet carries 1 to {PACKET_MAX_FRAMES} frames, not {len(frame)}")
        if len(frame) > 1:
            flags |= PACKET_FLAG_FRAMES
        frame = b"".join(bytes(f) for f in frame)
    head = PACKET_HEADER.pack(PACKET_TAG, flags, session & 0xFFFFFFFF,
                              seq & 0xFFFFFFFF, timestamp & 0xFFFFFFFF)
    body = head + bytes(frame)
    return body + packet_mac(key, body) if key else body


def unpack_packet(data, key: bytes | None = None) -> Packet:
    """:class:`Packet` from a datagram, or :class:`FormatError`.

    With ``key``, a packet without a MAC or with a wrong one is rejected (the MAC is checked
    before any field beyond the tag and flags is looked at).  Without a key a MAC is skipped
    unchecked (``authenticated`` is then False).
    """
    data = bytes(data)
    if len(data) < PACKET_HEADER.size + PACKET_MIN_FRAME:
        raise FormatError("packet too short")
    tag, flags = data[0], data[1]
    if tag != PACKET_TAG:
        if tag == OLD_PACKET_TAG:
            raise FormatError("version 1 packet (sender too old)")
        raise FormatError("not a pacodec packet")
    has_mac = bool(flags & PACKET_FLAG_MAC)
    if has_mac and len(data) < PACKET_HEADER.size + PACKET_MIN_FRAME + PACKET_MAC_SIZE:
        raise FormatError("packet too short")
    if key:
        if not has_mac:
            raise FormatError("unauthenticated packet")
        body, tag_bytes = data[:-PACKET_MAC_SIZE], data[-PACKET_MAC_SIZE:]
        if not hmac.compare_digest(packet_mac(key, body), tag_bytes):
            raise FormatError("bad MAC")
    else:
        body = data[:-PACKET_MAC_SIZE] if has_mac else data
    if flags & ~(PACKET_FLAG_MAC | PACKET_FLAG_FRAMES):
        raise FormatError("unknown packet flags")
    _, _, session, seq, ts = PACKET_HEADER.unpack_from(body)
    if session == 0:
        raise FormatError("session id 0")
    frame = body[PACKET_HEADER.size:]
    p = Packet(session, seq, ts, frame, bool(key))
    if flags & PACKET_FLAG_FRAMES:
        p._frames = split_frames(frame)
        if not 2 <= len(p._frames) <= PACKET_MAX_FRAMES:
            raise FormatError("bad frame count in packet")
        if any(f[2] >> 6 == FRAME_GROUP for f in p._frames):
            raise FormatError("frame group in packet")
    elif len(frame) > 2 and frame[2] >> 6 == FRAME_GROUP:
        # §9: a packet carries plain frames; a frame group (type 3, FORMAT.md §4) belongs in
        # files only (a receiver plays one frame per packet slot)
        raise FormatError("frame group in packet")
    return p
