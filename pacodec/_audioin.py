"""Opening the audio input of a command (``pacodec encode``, ``listen``): a path or ``-``, with
one-line errors that name it, and standard input streamed in constant memory.  Shared by the
command-line front-ends (see :mod:`pacodec._frontend`); soundfile loads on use.
"""
from __future__ import annotations

import os
import sys

from ._frontend import CliError

__all__ = ["sniff_audio", "refuse_terminal_input", "open_input_audio"]


#: leading bytes of the audio formats people hand to the wrong command
_MAGICS = ((b"RIFF", 8, b"WAVE", "WAV"), (b"RF64", 8, b"WAVE", "WAV (RF64)"),
           (b"fLaC", 0, b"", "FLAC"), (b"OggS", 0, b"", "Ogg"), (b"FORM", 8, b"AIFF", "AIFF"),
           (b"FORM", 8, b"AIFC", "AIFF"), (b"ID3", 0, b"", "MP3"), (b"caff", 0, b"", "CAF"),
           (b"riff", 0, b"", "W64"))


def sniff_audio(head: bytes):
    """The name of the audio format ``head`` (a file's first bytes) starts, or None."""
    for magic, at, sub, name in _MAGICS:
        if head.startswith(magic) and (not sub or head[at:at + len(sub)] == sub):
            return name
    return None


def refuse_terminal_input():
    """Like gzip -d: binary input is not read from a terminal (a forgotten redirect)."""
    if sys.stdin is not None and sys.stdin.isatty():
        raise CliError("refusing to read binary data from a terminal; redirect a file (< FILE) "
                       "or pipe one in")


def _read_head(fd, n):
    """Up to ``n`` bytes from ``fd`` (fewer only at end of input)."""
    head = b""
    while len(head) < n:
        b = os.read(fd, n - len(head))
        if not b:
            break
        head += b
    return head


def _seekable_fd(fd) -> bool:
    try:
        os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return False
    import stat
    return stat.S_ISREG(os.fstat(fd).st_mode)


def _stdin_audio_source():
    """Something libsndfile can open that streams standard input in constant memory.

    A regular file on stdin is opened directly.  From a pipe, the first bytes are read to see
    the format, then a thread copies them and the rest of stdin into an OS pipe that libsndfile
    reads as it decodes (64 KB at a time).  FLAC is the exception: libsndfile cannot decode it
    from a pipe, so it is spooled to an unnamed temporary file first (disk, not memory).
    """
    import threading
    fd = sys.stdin.fileno()
    if _seekable_fd(fd):
        return fd, None
    head = _read_head(fd, 12)
    if sniff_audio(head) == "FLAC":
        import tempfile
        spool = tempfile.TemporaryFile()
        spool.write(head)
        while True:
            b = os.read(fd, 1 << 16)
            if not b:
                break
            spool.write(b)
        spool.seek(0)
        return spool, spool
    r, w = os.pipe()

    def pump():
        try:
            os.write(w, head)
            while True:
                b = os.read(fd, 1 << 16)
                if not b:
                    break
                while b:
                    b = b[os.write(w, b):]
        except OSError:                 # the reader stopped (error or end of what it needs)
            pass
        finally:
            os.close(w)

    threading.Thread(target=pump, name="stdin-pump", daemon=True).start()
    return r, r


def open_input_audio(path):
    import soundfile as sf
    closefd = False
    if path == "-":
        refuse_terminal_input()
        src, keep = _stdin_audio_source()
        closefd = isinstance(keep, int)
        name = "<stdin>"
    else:
        if not os.path.exists(path):
            raise CliError(f"{path}: no such file")
        if os.path.isdir(path):
            raise CliError(f"{path} is a directory")
        with open(path, "rb") as fh:     # a plain OSError (permission denied...), not libsndfile's
            head = fh.read(4)
        if head == b"PACD":
            raise CliError(f"{path}: this is a pacodec stream already "
                           f"(did you mean 'pacodec decode'?)")
        src, name = path, path
    try:
        f = sf.SoundFile(src, closefd=closefd) if isinstance(src, int) else sf.SoundFile(src)
    except (RuntimeError, sf.LibsndfileError, TypeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CliError(f"{name}: not a readable audio file ({msg})") from None
    f.display_name = name
    return f
