"""Keys and session ids for UDP packets.  The packet layout itself (version 2, FORMAT.md §9) is
owned by :mod:`pacodec.packet` (``pack_packet``/``unpack_packet``); ``pack``/``unpack`` here
are those functions under their streaming names.

A key file holds the key as hexadecimal text (32 to 128 hex digits = 16 to 64 bytes; blank lines,
surrounding white space and lines starting with ``#`` are ignored), e.g. made with
``python -c "import secrets; print(secrets.token_hex(32))" > stream.key``.
"""
import os
import secrets

from ..packet import PACKET_MAC_SIZE as MAC_SIZE
from ..packet import PACKET_TAG, PACKET_VERSION, Packet
from ..packet import PACKET_FLAG_FRAMES as FLAG_FRAMES
from ..packet import PACKET_FLAG_MAC as FLAG_MAC
from ..packet import PACKET_MAX_FRAMES as MAX_FRAMES
from ..packet import PACKET_HEADER as HEADER
from ..packet import pack_packet as pack
from ..packet import unpack_packet as unpack

__all__ = ["PACKET_TAG", "PACKET_VERSION", "HEADER", "MAC_SIZE", "FLAG_MAC", "FLAG_FRAMES",
           "MAX_FRAMES", "Packet",
           "pack", "unpack", "load_key", "parse_key", "new_session_id"]

MAX_KEY_FILE = 4096


def new_session_id():
    """A random non-zero 32-bit session id."""
    while True:
        s = secrets.randbits(32)
        if s:
            return s


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
