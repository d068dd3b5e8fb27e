"""The GStreamer type finder for pacodec streams (``.pac`` files), so that ``decodebin``,
``playbin``, ``gst-play-1.0`` and every GStreamer application recognise them.

:func:`identify` looks at a stream's first bytes only, with the standard library (no numpy or
numba: type finding runs for every file any GStreamer application opens):

* the stream header (FORMAT.md §3): the magic ``PACD`` and a matching CRC-16 over its first 18
  bytes -- certain; the magic with a failing CRC (a damaged header, which a decoder skips) --
  likely;
* a stream without a header (FORMAT.md §4.3: a recorded live stream) that starts at a frame
  sync word: the frame (``0xCA5E``, a type other than 3, its CRC over type .. payload, §4.2)
  and, if the data reaches that far, the frame after it.  Two valid frames in a row are nearly
  certain (two 16-bit sync words and two 16-bit CRCs), one alone is possible.

The caps found are ``audio/x-pacodec, framed=(boolean)false`` (a byte stream): only
``pacodecparse`` accepts them, which splits it into frames (``framed=true``) for
``pacodecdec``.  Registration (:func:`register`) is done by ``python/pacodectypefind.py`` when
GStreamer's Python loader loads the plugin.
"""
from __future__ import annotations

import binascii

__all__ = ["identify", "register", "CAPS", "NAME", "EXTENSIONS"]

NAME = "pacodec_typefind"
CAPS = "audio/x-pacodec, framed=(boolean)false"
EXTENSIONS = "pac"

_MAGIC = b"PACD"
_HEADER_SIZE = 20
_SYNC = b"\xca\x5e"
_MAX_FRAME = (1 << 14) - 1 + 7          # 14-bit payload length + 7 bytes of frame overhead

#: probabilities as GStreamer's GstTypeFindProbability values (no GStreamer import needed here)
MAXIMUM, NEARLY_CERTAIN, LIKELY, POSSIBLE = 100, 99, 80, 50


def _crc16(data: bytes) -> int:
    return binascii.crc_hqx(data, 0)        # CRC-16/XMODEM, FORMAT.md §4.2


def _frame_size(buf: bytes, pos: int):
    """Size of a CRC-valid frame at ``pos`` of ``buf``, 0 if the bytes there are not one, or
    None if ``buf`` ends before the frame could be checked."""
    if len(buf) < pos + 5:
        return None
    if buf[pos:pos + 2] != _SYNC:           # any type: 3 is a frame group (version 8)
        return 0
    size = (((buf[pos + 2] & 0x3F) << 8) | buf[pos + 3]) + 7
    if len(buf) < pos + size:
        return None
    crc = int.from_bytes(buf[pos + size - 2:pos + size], "big")
    return size if _crc16(buf[pos + 2:pos + size - 2]) == crc else 0


def identify(peek) -> int | None:
    """How sure it is that the stream is pacodec, as a GstTypeFindProbability value (None: it
    is not).  ``peek(offset, size)`` returns that many bytes of the stream, or None when the
    stream does not have them."""
    head = peek(0, _HEADER_SIZE)
    if head is not None and head[:4] == _MAGIC:
        crc = int.from_bytes(head[18:20], "big")
        return MAXIMUM if _crc16(bytes(head[:18])) == crc else LIKELY
    head = peek(0, 5)
    if head is None or bytes(head[:2]) != _SYNC:
        return None
    first = (((head[2] & 0x3F) << 8) | head[3]) + 7
    data = None
    for size in (first + 5, first):         # with the next frame's head, or the frame alone
        data = peek(0, size)
        if data is not None:
            break
    if data is None:
        return None
    data = bytes(data)
    if not _frame_size(data, 0):
        return None
    if len(data) == first:                  # the stream ends after one frame
        return POSSIBLE
    if data[first:first + 2] != _SYNC:
        return POSSIBLE                     # damaged bytes after a valid frame
    second = (((data[first + 2] & 0x3F) << 8) | data[first + 3]) + 7
    whole = peek(0, first + second)
    if whole is None:                       # the second frame runs past the end: truncated
        return POSSIBLE
    return NEARLY_CERTAIN if _frame_size(bytes(whole), first) else POSSIBLE


def _peek_function(find, lib):
    """``peek(offset, size)`` for a ``Gst.TypeFind``, through the C function.

    PyGObject cannot call ``Gst.TypeFind.peek`` usefully: it takes the ``size`` argument for the
    length of the returned array (an output) and always asks for 0 bytes.  The C function is
    called with ctypes instead, on the struct's address, which PyGObject gives as the wrapper's
    hash (checked against ``get_length`` before it is trusted)."""
    import ctypes
    ptr = hash(find)
    if ptr <= 0 or lib.gst_type_find_get_length(ctypes.c_void_p(ptr)) != find.get_length():
        return lambda offset, size: None

    def peek(offset, size):
        data = lib.gst_type_find_peek(ctypes.c_void_p(ptr), offset, size)
        return ctypes.string_at(data, size) if data else None
    return peek


def _libgstreamer():
    import ctypes
    try:                     # already loaded in this process: no library search needed
        lib = ctypes.CDLL("libgstreamer-1.0.so.0")
    except OSError:
        import ctypes.util
        lib = ctypes.CDLL(ctypes.util.find_library("gstreamer-1.0"))
    lib.gst_type_find_get_length.restype = ctypes.c_uint64
    lib.gst_type_find_get_length.argtypes = [ctypes.c_void_p]
    lib.gst_type_find_peek.restype = ctypes.c_void_p
    lib.gst_type_find_peek.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint]
    return lib


def register(Gst, plugin=None) -> bool:
    """Register the type finder with GStreamer (``Gst`` is ``gi.repository.Gst``), under
    ``plugin`` when the loader provides one.  Returns what ``Gst.type_find_register`` does."""
    lib = _libgstreamer()
    caps = Gst.Caps.from_string(CAPS)

    def typefind(find, *_):
        prob = identify(_peek_function(find, lib))
        if prob is not None:
            find.suggest(prob, caps)

    return Gst.type_find_register(plugin, NAME, Gst.Rank.PRIMARY, typefind, EXTENSIONS, caps)
