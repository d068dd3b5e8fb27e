"""Streaming WAV writer for the CLI: constant memory, correct beyond 4 GiB (RF64), pipe-friendly.

The header is written first and the samples block by block as they are decoded, so nothing but
the current block is ever held.  The 32-bit sizes of a RIFF/WAVE file end at 4 GiB; beyond that
the file is written as RF64 (EBU Tech 3285/3306: ``RF64`` id, 64-bit sizes in a ``ds64`` chunk),
which libsndfile, ffmpeg and sox read.

* **Seekable output** (a file): the header reserves a 28-byte ``JUNK`` chunk where a ``ds64``
  chunk fits (the layout EBU 3306 recommends).  On close the sizes are patched in; if the file
  passed 4 GiB, ``RIFF`` becomes ``RF64`` and ``JUNK`` becomes ``ds64``.  Whatever the stream
  claims about its length, the sizes written are the ones of the samples actually written.
* **Pipe** (``-o -``), length known (the stream header has it): exact sizes up front -- RIFF, or
  RF64 when the data would pass 4 GiB.  At most the declared number of sample frames is
  written: one that runs long is cut, with a warning.  A stream that ends early is *not* padded
  (the output holds the decoded audio, as a file output does); a warning says that the header
  declares more than followed.  (The CLI avoids that case when it can: a seekable input that
  does not end with its end-of-stream frame gets the "length unknown" header below.)
* **Pipe, length unknown**: RIFF with both sizes 0xFFFFFFFF, the "streaming" header that ffmpeg,
  sox and libsndfile write to pipes and read to the end of the data.  (Past 4 GiB only readers
  that read to EOF see everything; write to a file for exact sizes.)
"""
from __future__ import annotations

import struct

import numpy as np

__all__ = ["WavWriter", "RIFF_LIMIT"]

RIFF_LIMIT = 0xFFFFFFFF      # largest RIFF chunk size a 32-bit WAV can state
_UNKNOWN32 = 0xFFFFFFFF


class WavWriter:
    """Write float32 blocks ``(n, channels)`` as 16-bit PCM or 32-bit float WAV to ``fh``.

    ``frames``: the number of sample frames that will be written, if known (used for pipes);
    ``seekable``: whether ``fh`` can be patched on close; ``limit``: RIFF size above which RF64
    is used (tests inject a small one instead of writing 4 GiB).
    """

    def __init__(self, fh, samplerate: int, channels: int, *, float32: bool = False,
                 frames: int | None = None, seekable: bool = False, limit: int = RIFF_LIMIT,
                 warn=None, tags=None):
        self.fh = fh
        # tags: a LIST/INFO chunk after the data, written on close (seekable output only)
        self._info = _info_chunk(tags) if tags and seekable else b""
        self.channels = channels
        self.float32 = float32
        self.width = 4 if float32 else 2
        self.block_align = self.width * channels
        self.seekable = seekable
        self.limit = limit
        self.expected = None if seekable else frames
        self.warn = warn or (lambda msg: None)
        self.written = 0                     # sample frames
        fmt_body = struct.pack("<HHIIHH", 3 if float32 else 1, channels, samplerate,
                               samplerate * self.block_align, self.block_align, 8 * self.width)
        if float32:
            fmt_body += struct.pack("<H", 0)          # cbSize: non-PCM formats have it
        self._fmt = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body
        self._fact = float32                          # non-PCM: a fact chunk with the length
        # bytes before the samples: RIFF/RF64 + size + WAVE, JUNK/ds64, fmt, [fact], data + size
        self.head_size = 12 + 36 + len(self._fmt) + (12 if float32 else 0) + 8
        fh.write(self._header(self.expected))

    def _riff_size(self, frames):
        nbytes = frames * self.block_align
        tail = len(self._info) + (nbytes & 1) if self._info else 0
        return self.head_size - 8 + nbytes + tail

    def _header(self, frames, final=False) -> bytes:
        if frames is None and not final:
            if self.seekable:
                rf64, riff, data, count = False, 0, 0, 0        # patched on close
            else:
                rf64, riff, data, count = False, _UNKNOWN32, _UNKNOWN32, _UNKNOWN32
        else:
            nbytes = frames * self.block_align
            rf64 = self._riff_size(frames) > self.limit
            riff, data, count = self._riff_size(frames), nbytes, frames
        if rf64:
            head = b"RF64" + struct.pack("<I", _UNKNOWN32) + b"WAVE"
            head += b"ds64" + struct.pack("<IQQQI", 28, riff, data, count, 0)
            data32, count32 = _UNKNOWN32, _UNKNOWN32
        else:
            head = b"RIFF" + struct.pack("<I", riff) + b"WAVE"
            head += b"JUNK" + struct.pack("<I", 28) + bytes(28)
            data32, count32 = data, count
        head += self._fmt
        if self._fact:
            head += b"fact" + struct.pack("<II", 4, min(count32, _UNKNOWN32))
        head += b"data" + struct.pack("<I", data32)
        assert len(head) == self.head_size
        return head

    def write(self, block) -> None:
        b = np.asarray(block, dtype=np.float32)
        if self.expected is not None:
            room = self.expected - self.written
            if len(b) > room:
                if room >= 0 and not getattr(self, "_cut", False):
                    self.warn(f"the stream holds more samples than its header declares "
                              f"({self.expected}); the output stops there")
                    self._cut = True
                b = b[:max(room, 0)]
        if not len(b):
            return
        if self.float32:
            raw = b.astype("<f4", copy=False)
        else:
            t = b * np.float32(32768.0)          # in place after this: one temporary
            np.rint(t, out=t)
            np.clip(t, -32768, 32767, out=t)
            raw = t.astype("<i2")
        self.fh.write(raw.tobytes())
        self.written += len(b)

    def close(self) -> None:
        if self.expected is not None and self.written < self.expected:
            missing = self.expected - self.written
            self.warn(f"the stream ended {missing} samples short of its declared length; the "
                      f"WAV header written first declares {self.expected} samples, the data "
                      f"holds {self.written}")
        if self.seekable:
            if self._info:
                pad = b"\0" if (self.written * self.block_align) & 1 else b""
                self.fh.write(pad + self._info)
            end = self.fh.tell()
            self.fh.seek(0)
            self.fh.write(self._header(self.written, final=True))
            self.fh.seek(end)
        self.fh.flush()


# Vorbis comment name -> RIFF INFO id (the ones libsndfile reads back)
_INFO_IDS = {"TITLE": b"INAM", "ARTIST": b"IART", "ALBUM": b"IPRD", "TRACKNUMBER": b"ITRK",
             "DATE": b"ICRD", "GENRE": b"IGNR", "COMMENT": b"ICMT", "COPYRIGHT": b"ICOP"}


def _info_chunk(tags: dict) -> bytes:
    """A ``LIST`` chunk of type ``INFO`` for the tags it has ids for (UTF-8, as libsndfile)."""
    body = b""
    for key, value in tags.items():
        cid = _INFO_IDS.get(key.upper())
        if cid is None or not value:
            continue
        text = value.encode("utf-8") + b"\0"
        body += cid + struct.pack("<I", len(text)) + text + (b"\0" if len(text) & 1 else b"")
    return b"LIST" + struct.pack("<I", 4 + len(body)) + b"INFO" + body if body else b""
