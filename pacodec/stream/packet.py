"""UDP packet layout, version 2 (FORMAT.md §9): session id, sequence number, timestamp, one
codec frame, and (with a pre-shared key) a truncated keyed-BLAKE2b MAC.

    offset  size  field
    0       1     tag        0xA8 (packet version 2; version 1 used 0xA7 and is not accepted)
    1       1     flags      bit 0: a MAC follows the frame; other bits 0
    2       4     session    random per sender stream, big-endian, never 0
    6       4     seq        frame counter, big-endian, wraps at 2**32
    10      4     timestamp  first input sample of the frame, big-endian, wraps at 2**32
    14      n     frame      exactly one frame (§4)
    14+n    16    mac        only with flag bit 0: BLAKE2b(key=K, digest_size=16,
                             person=b"pacodec-udp-v2") of bytes 0 .. 14+n-1

A key file holds the key as hexadecimal text (32 to 128 hex digits = 16 to 64 bytes; blank lines,
surrounding white space and lines starting with ``#`` are ignored), e.g. made with
``python -c "import secrets; print(secrets.token_hex(32))" > stream.key``.
"""
import collections
import hashlib
import hmac
import os
import secrets
import struct

from ..errors import FormatError

__all__ = ["PACKET_TAG", "PACKET_VERSION", "HEADER", "MAC_SIZE", "FLAG_MAC", "Packet",
           "pack", "unpack", "load_key", "parse_key", "new_session_id"]

PACKET_VERSION = 2
PACKET_TAG = 0xA8
OLD_PACKET_TAG = 0xA7
HEADER = struct.Struct(">BBIII")
FLAG_MAC = 0x01
MAC_SIZE = 16
MAC_PERSON = b"pacodec-udp-v2"
MIN_FRAME = 6                 # a frame header (4 bytes) and its CRC (2 bytes) at least
MAX_KEY_FILE = 4096

Packet = collections.namedtuple("Packet", "session seq timestamp frame authenticated")


def new_session_id():
    """A random non-zero 32-bit session id."""
    while True:
        s = secrets.randbits(32)
        if s:
            return s


def _mac(key, data):
    return hashlib.blake2b(data, key=key, digest_size=MAC_SIZE, person=MAC_PERSON).digest()


def pack(session, seq, timestamp, frame, key=None):
    """One datagram (bytes).  ``key`` (bytes) adds the MAC."""
    head = HEADER.pack(PACKET_TAG, FLAG_MAC if key else 0, session & 0xFFFFFFFF,
                       seq & 0xFFFFFFFF, timestamp & 0xFFFFFFFF)
    body = head + bytes(frame)
    return body + _mac(key, body) if key else body


def unpack(data, key=None):
    """``Packet`` from a datagram, or :class:`FormatError`.

    With ``key``, a packet without a MAC or with a wrong one is rejected (the MAC is checked
    before any other field is looked at beyond the tag and flags).  Without a key a MAC is
    skipped unchecked (``authenticated`` is then False).
    """
    data = bytes(data)
    if len(data) < HEADER.size + MIN_FRAME:
        raise FormatError("packet too short")
    tag, flags = data[0], data[1]
    if tag != PACKET_TAG:
        if tag == OLD_PACKET_TAG:
            raise FormatError("version 1 packet (sender too old)")
        raise FormatError("not a pacodec packet")
    has_mac = bool(flags & FLAG_MAC)
    if key:
        if not has_mac:
            raise FormatError("unauthenticated packet")
        if len(data) < HEADER.size + MIN_FRAME + MAC_SIZE:
            raise FormatError("packet too short")
        body, tag_bytes = data[:-MAC_SIZE], data[-MAC_SIZE:]
        if not hmac.compare_digest(_mac(key, body), tag_bytes):
            raise FormatError("bad MAC")
    elif has_mac:
        if len(data) < HEADER.size + MIN_FRAME + MAC_SIZE:
            raise FormatError("packet too short")
        body = data[:-MAC_SIZE]
    else:
        body = data
    if flags & ~FLAG_MAC:
        raise FormatError("unknown packet flags")
    _, _, session, seq, ts = HEADER.unpack_from(body)
    if session == 0:
        raise FormatError("session id 0")
    return Packet(session, seq, ts, body[HEADER.size:], bool(key))


def parse_key(text):
    """Key bytes from key-file text (see the module docstring)."""
    lines = [ln.strip() for ln in str(text).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(lines) != 1:
        raise ValueError("key file must hold one line of hexadecimal digits")
    try:
        key = bytes.fromhex(lines[0])
    except ValueError:
        raise ValueError("key file must hold hexadecimal digits only") from None
    if not 16 <= len(key) <= 64:
        raise ValueError(f"key must be 16 to 64 bytes (32 to 128 hex digits), not {len(key)}")
    return key


def load_key(path):
    """Read a key file (at most 4 KiB)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise ValueError(f"cannot read key file {path}: {e.strerror or e}") from None
    if len(raw) > MAX_KEY_FILE:
        raise ValueError(f"key file {path} is too large")
    try:
        return parse_key(raw.decode("ascii"))
    except UnicodeDecodeError:
        raise ValueError(f"key file {path} must be hexadecimal text") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
