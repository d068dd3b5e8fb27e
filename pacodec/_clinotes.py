"""What the command line tells its user beyond errors: a cold kernel cache, a bitrate that came out
other than asked, an output name that promises another format; and a stdout writer that never
drops data.  Kept out of ``cli.py`` so that each command needs one call per concern.
"""
from __future__ import annotations

import importlib
import os
import sys

__all__ = ["note_cold_kernels", "cold_kernels", "check_rate", "refuse_audio_name",
           "binary_stdout", "ENCODE_KERNELS", "DECODE_KERNELS"]

#: the kernels that take the longest to compile, per command ("module.function")
ENCODE_KERNELS = ("ratecontrol.search_offset", "encoder.analyse_long")
DECODE_KERNELS = ("decoder.decode_run",)

#: extensions of audio formats other than pacodec's (what libsndfile and common codecs write)
AUDIO_EXTENSIONS = {"wav": "WAV", "wave": "WAV", "flac": "FLAC", "aiff": "AIFF", "aif": "AIFF",
                    "aifc": "AIFF", "ogg": "Ogg", "oga": "Ogg", "opus": "Opus", "mp3": "MP3",
                    "m4a": "AAC/MP4", "aac": "AAC", "rf64": "RF64", "w64": "W64", "caf": "CAF",
                    "au": "AU", "snd": "AU", "wv": "WavPack"}


def cold_kernels(names) -> bool:
    """Whether one of the kernels ``names`` has no valid entry in numba's cache nor among the
    kernels compiled when the wheel was built (so this run compiles it).  False when that cannot
    be told (JIT disabled, no cache, another numba)."""
    from ._jit import numba_free, shipped_kernels
    for name in names:
        mod, func = name.rsplit(".", 1)
        try:
            d = getattr(importlib.import_module(f"pacodec.{mod}"), func)
            if numba_free(d):               # build-time kernels, run without numba
                continue
            cache_file = d._cache._cache_file
            # {} when missing or stale; the kernels compiled at build time count as warm
            if not cache_file._load_index() and not shipped_kernels(d):
                return True
        except Exception:
            return False
    return False


#: set by ``cli.main``: True in the ``pacodec`` process, False for ``main([...])`` called from
#: Python (tests, other programs), which get no cold-cache note
PROCESS = False


def note_cold_kernels(names, quiet: bool) -> bool:
    """One line on stderr when this run will compile the kernels (a cold cache: the first run
    after installing or upgrading), unless ``quiet`` or not in the ``pacodec`` process.
    Returns whether it printed."""
    if quiet or not PROCESS or not cold_kernels(names):
        return False
    sys.stderr.write("pacodec: compiling the codec kernels (first run after installing; "
                     "about 20 s, later runs load them from the cache)...\n")
    sys.stderr.flush()
    return True


def check_rate(out: str, nbytes: int, seconds: float, asked: float | None, target: float | None,
               pcm_kbps: float, samplerate: int, channels: int, warn) -> float | None:
    """After a CBR/ABR encode: warn (``warn(msg)``) when the stream's bitrate differs from the
    one asked for by more than 5 % (and 0.5 kbit/s), or, when the rate was capped at 16-bit
    PCM's, when it still is not below PCM.  Returns the actual kbit/s (None: too short to say).

    ``asked``: the rate on the command line (None for VBR); ``target``: the rate the encoder was
    given (lower than ``asked`` when capped)."""
    if asked is None or target is None or seconds < 1.0:
        return None
    actual = 8 * nbytes / seconds / 1000
    name = "the stream" if out == "-" else out
    if target < asked:                             # capped: the cap's promise must hold
        if actual >= pcm_kbps:
            warn(f"{name}: {actual:.1f} kbit/s, not below 16-bit PCM's {pcm_kbps:g} kbit/s "
                 f"(the stream header and frame headers of a short input)")
        return actual
    if abs(actual - asked) <= max(0.05 * asked, 0.5):
        return actual
    if actual > asked:
        warn(f"{name}: {actual:.1f} kbit/s, not the {asked:g} kbit/s asked for: at {samplerate} "
             f"Hz x {channels} ch this audio does not code in less (frame headers and side "
             f"information); choose a higher rate, or fewer channels or a lower sample rate")
    else:
        warn(f"{name}: {actual:.1f} kbit/s, less than the {asked:g} kbit/s asked for (the "
             f"encoder needed no more for this audio)")
    return actual


def refuse_audio_name(path: str):
    """The error message for writing a pacodec stream under an audio format's extension
    (``-o x.flac``), or None for a name that is fine."""
    if path == "-":
        return None
    ext = os.path.splitext(os.path.basename(path))[1].lower().lstrip(".")
    kind = AUDIO_EXTENSIONS.get(ext)
    if kind is None:
        return None
    return (f"{path}: a .{ext} name promises a {kind} file, but encode writes a pacodec stream; "
            f"name it .pac (to get {kind}, decode a .pac: pacodec decode X.pac -o {path})")


class _FullWriter:
    """``write`` that writes everything or raises: an unbuffered stdout (``python -u``,
    ``PYTHONUNBUFFERED=1``) is a raw file whose ``write`` may write only part of the data
    (a pipe whose reader went away mid-write), and the rest would be dropped silently."""

    def __init__(self, raw):
        self.raw = raw

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            n = self.raw.write(view[done:])
            if n is None:                   # non-blocking and full: wait for room
                import select
                select.select([], [self.raw], [])
                continue
            done += n
        return done

    def flush(self):
        self.raw.flush()

    def __getattr__(self, name):
        return getattr(self.raw, name)


def binary_stdout():
    """Standard output for binary data, writing every byte of each ``write`` (or raising)."""
    out = sys.stdout.buffer
    import io
    if isinstance(out, io.RawIOBase):
        return _FullWriter(out)
    return out
