"""One file's work, in whichever process runs it: encode or decode it, score it, and return its
manifest record (:func:`run_job`)."""
from __future__ import annotations

import os
import socket
import time

from ..errors import PacodecError
from ..manifest import settings_key, sha256
from .score import score_file
from .settings import coding_options

__all__ = ["run_job", "warm", "one_line"]

_WARM = False


def warm():
    """Load (or compile) the numba kernels once per process before the first real file."""
    global _WARM
    if _WARM:
        return True
    import numpy as np

    from ..api import decode, encode
    x = np.random.default_rng(0).standard_normal((4096, 2)) * 0.05
    decode(encode(x, 44100, distance=1.0))
    decode(encode(x[:, :1], 16000, bitrate=32))
    _WARM = True
    return True


def one_line(e) -> str:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, OSError) and e.strerror:
        msg = e.strerror + (f": {e.filename}" if e.filename else "")
    return msg


def _file_tags(snd, rec) -> dict:
    """The input's tags as ``pacodec encode`` copies them; tags too large for the stream are
    dropped (noted in the record) rather than failing the job."""
    from .. import container as ct
    from ..errors import UnsupportedError
    from ..tags import read_file_tags
    tags = read_file_tags(snd)
    try:
        ct.pack_metadata(ct.Metadata(ct.normalize_tags(tags)))
    except UnsupportedError as e:
        rec["tags_dropped"] = str(e)
        return {}
    return tags


def encode_file(job, rec):
    import soundfile as sf

    from ..encoder import Encoder
    from ..pacfile import atomic_output
    s = job["settings"]
    try:
        snd = sf.SoundFile(job["src"])
    except (RuntimeError, TypeError, sf.LibsndfileError) as e:
        msg = one_line(e)
        if msg.startswith("Error opening ") and "': " in msg:    # the path is already shown
            msg = msg.split("': ", 1)[1]
        raise PacodecError(f"not a readable audio file ({msg.rstrip('.')})") from None
    with snd:
        total = snd.frames if snd.seekable() else None
        opts = coding_options(s, snd.samplerate, snd.channels)   # the input's limits too
        if opts.note:
            rec["note"] = opts.note
        tags = _file_tags(snd, rec)
        enc = Encoder(snd.samplerate, snd.channels, total_frames=total, tags=tags,
                      loudness=True, **opts.encoder_kwargs())
        os.makedirs(os.path.dirname(job["dst"]), exist_ok=True)
        done = 0
        with atomic_output(job["dst"], force=True, inputs=[job["src"]]) as fh:
            fh.write(enc.header())
            while True:
                x = snd.read(1 << 16, dtype="float64", always_2d=True)
                if not len(x):
                    break
                for fr in enc.encode(x):
                    fh.write(fr)
                done += len(x)
            for fr in enc.flush():
                fh.write(fr)
            fh.seek(0)
            fh.write(enc.header())          # its metadata block now holds the loudness
        rate, ch, fmt = snd.samplerate, snd.channels, f"{snd.format}/{snd.subtype}"
    out_size = os.path.getsize(job["dst"])
    secs = done / rate
    pcm = done * ch * 2
    rec.update(samplerate=rate, channels=ch, frames=done, duration=round(secs, 6),
               input_format=fmt, output_size=out_size,
               output_sha256=sha256(job["dst"]),
               bitrate_kbps=round(8 * out_size / secs / 1000, 3) if secs else None,
               dcr=round(1 - out_size / pcm, 6) if pcm else None)
    if job.get("score"):
        rec["quality"] = score_file(job, rate)


def decode_file(job, rec):
    import warnings

    import numpy as np
    import soundfile as sf

    from ..pacfile import PacFile, atomic_output
    s = job["settings"]
    fmt = {"wav": "WAV", "flac": "FLAC"}[s["format"]]
    subtype = "FLOAT" if s["float"] else "PCM_16"
    os.makedirs(os.path.dirname(job["dst"]), exist_ok=True)
    with warnings.catch_warnings(record=True), PacFile(job["src"], strict=s["strict"]) as f:
        warnings.simplefilter("always")
        done = 0
        with atomic_output(job["dst"], force=True, inputs=[job["src"]]) as fh:
            with sf.SoundFile(fh, "w", samplerate=f.samplerate, channels=f.channels,
                              format=fmt, subtype=subtype) as snd:
                if f.tags:
                    from ..tags import write_file_tags
                    write_file_tags(snd, f.tags)
                for b in f.blocks(1 << 16):
                    if subtype != "FLOAT":
                        b = np.clip(b, -1.0, 32767 / 32768)
                    snd.write(b)
                    done += len(b)
        problems = f.problems
    out_size = os.path.getsize(job["dst"])
    rec.update(samplerate=f.samplerate, channels=f.channels, frames=done,
               duration=round(done / f.samplerate, 6), output_size=out_size,
               output_sha256=sha256(job["dst"]), problems=problems[:20])


def run_job(job: dict) -> dict:
    """Encode or decode one file (runs in a worker).  Returns its manifest record: ``type`` is
    ``"file"``, or ``"error"`` with a one-line ``error`` (a bad file never raises)."""
    warm()
    rec = {"type": "file", "input": job["input"], "output": job["output"],
           "settings": job["settings"], "settings_key": settings_key(job["settings"]),
           "host": socket.gethostname(), "pid": os.getpid()}
    t0 = time.perf_counter()
    try:
        st = os.stat(job["src"])
        rec.update(input_size=st.st_size, input_mtime_ns=st.st_mtime_ns,
                   input_sha256=sha256(job["src"]))
        if job["settings"]["kind"] == "encode":
            encode_file(job, rec)
        else:
            decode_file(job, rec)
    except (PacodecError, OSError, ValueError, ImportError, RuntimeError, MemoryError) as e:
        return {"type": "error", "input": job["input"], "output": job["output"],
                "error": one_line(e), "host": rec["host"]}
    except Exception as e:             # a bug: still one line, and the batch carries on
        return {"type": "error", "input": job["input"], "output": job["output"],
                "error": f"{type(e).__name__}: {one_line(e)}", "host": rec["host"]}
    rec["seconds"] = round(time.perf_counter() - t0, 4)
    return rec
