"""Helpers for tools/bench.py: measured child processes, test inputs, statistics, Markdown.

Peak RSS of a child is taken from GNU time (``/usr/bin/time -f '%M ...'``), not from
``os.wait4`` / ``resource.getrusage(RUSAGE_CHILDREN)``: on Linux a child's ``ru_maxrss``
starts from the RSS of the process it was forked from (the high-water mark survives
``fork`` and ``exec``), so a child forked straight from the benchmark would be charged with
the benchmark's own arrays, and RUSAGE_CHILDREN is a maximum over all children, not a sum,
so deltas of it do not work either.  GNU time is a small C program, so the process it forks
starts at ~1 MB.  Without /usr/bin/time the wait4 value is used and flagged as an upper bound.
Wall time is measured here with ``time.perf_counter`` around the whole child.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

GNU_TIME = "/usr/bin/time"


# --------------------------------------------------------------------------- processes

@dataclasses.dataclass
class Run:
    """One measured child process."""

    cmd: list[str]
    wall: float            # seconds, perf_counter around the whole child
    rss_mb: float | None   # peak resident set size in MiB
    user: float | None     # CPU seconds
    sys: float | None
    returncode: int
    stderr: str            # last lines of the child's stderr
    rss_method: str        # 'gnu-time' or 'wait4 (upper bound)'

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def have_gnu_time() -> bool:
    return os.access(GNU_TIME, os.X_OK)


def run_measured(cmd: list[str], *, env: dict | None = None, stdout_path: str | None = None,
                 timeout: float | None = None) -> Run:
    """Run ``cmd`` once; measure wall time and peak RSS of that child only."""
    stdout = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    try:
        if have_gnu_time():
            fd, tfile = tempfile.mkstemp(prefix="bench-time-", suffix=".txt")
            os.close(fd)
            full = [GNU_TIME, "-o", tfile, "-f", "BENCH %M %U %S %x", *cmd]
            t0 = time.perf_counter()
            try:
                p = subprocess.run(full, stdin=subprocess.DEVNULL, stdout=stdout,
                                   stderr=subprocess.PIPE, env=env, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                return Run(cmd, time.perf_counter() - t0, None, None, None, -9,
                           f"timeout after {timeout} s: {exc}", "gnu-time")
            wall = time.perf_counter() - t0
            rss = user = sys_ = None
            rc = p.returncode
            try:
                lines = Path(tfile).read_text().splitlines()
                last = [ln for ln in lines if ln.startswith("BENCH ")][-1].split()
                rss = int(last[1]) / 1024.0
                user, sys_ = float(last[2]), float(last[3])
                rc = int(last[4])
            except (OSError, IndexError, ValueError):
                pass
            finally:
                try:
                    os.unlink(tfile)
                except OSError:
                    pass
            # GNU time exits 127 when the command is not found
            return Run(cmd, wall, rss, user, sys_, rc, _tail(p.stderr), "gnu-time")
        # fallback: wait4 (contaminated by this process's RSS at fork time -> upper bound)
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout,
                                 stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            return Run(cmd, 0.0, None, None, None, 127, str(exc), "wait4 (upper bound)")
        err = p.stderr.read() if p.stderr else b""
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        return Run(cmd, wall, ru.ru_maxrss / 1024.0, ru.ru_utime, ru.ru_stime, p.returncode,
                   _tail(err), "wait4 (upper bound)")
    finally:
        if stdout_path:
            stdout.close()


def _tail(b: bytes, n: int = 6) -> str:
    text = b.decode("utf-8", "replace").strip().splitlines()
    return "\n".join(text[-n:])


def quick_output(cmd: list[str], timeout: float = 20.0) -> str | None:
    """First line of a command's stdout+stderr (for version strings), None if it fails."""
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (p.stdout + p.stderr).decode("utf-8", "replace").strip().splitlines()
    return out[0].strip() if out else ""


# --------------------------------------------------------------------------- statistics

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def percentile(xs, q: float):
    """Linear-interpolated percentile (same as numpy's default), q in 0..100."""
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


# --------------------------------------------------------------------------- inputs

def _corpus_stamp(files: list[Path]) -> str:
    h = hashlib.sha1(b"bench-inputs-v1")
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def make_long_input(corpus: Path, out: Path, *, min_seconds=180.0, max_seconds=240.0,
                    samplerate=44100, channels=2, log=print) -> tuple[Path, list[str]]:
    """Concatenate the corpus clips of the wanted rate/channels, repeated to 3-4 minutes.

    Returns (path, names of the clips used).  Cached: rebuilt only when the corpus changes.
    """
    import numpy as np
    import soundfile as sf

    clips = []
    for f in sorted(corpus.glob("*.flac")):
        info = sf.info(str(f))
        if info.samplerate == samplerate and info.channels == channels:
            clips.append(f)
    if not clips:
        raise SystemExit(f"no {samplerate} Hz {channels}-channel clips in {corpus}")
    stamp = _corpus_stamp(clips)
    manifest = out.with_suffix(".json")
    if out.exists() and manifest.exists():
        try:
            if json.loads(manifest.read_text()).get("stamp") == stamp:
                return out, [c.name for c in clips]
        except (OSError, ValueError):
            pass
    log(f"building {out} from {len(clips)} clips of {corpus}")
    parts = [sf.read(str(c), dtype="int16", always_2d=True)[0] for c in clips]
    one = np.concatenate(parts)
    reps = max(1, math.ceil(min_seconds * samplerate / len(one)))
    data = np.tile(one, (reps, 1))[: int(max_seconds * samplerate)]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    sf.write(str(tmp), data, samplerate, subtype="PCM_16", format="WAV")
    os.replace(tmp, out)
    manifest.write_text(json.dumps({"stamp": stamp, "clips": [c.name for c in clips],
                                    "repeats": reps, "seconds": len(data) / samplerate}))
    return out, [c.name for c in clips]


def ensure_pcm16_wav(src: Path, workdir: Path, log=print) -> Path:
    """Peers read 16-bit WAV; convert anything else (FLAC, float WAV, ...) once."""
    import soundfile as sf

    info = sf.info(str(src))
    if info.format == "WAV" and info.subtype == "PCM_16":
        return src
    dst = workdir / f"input-{src.stem}.wav"
    if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
        return dst
    log(f"converting {src} to 16-bit WAV {dst}")
    stream_repeat(src, dst, info.frames / info.samplerate)
    return dst


def stream_repeat(src: Path, dst: Path, seconds: float, block: int = 1 << 16) -> Path:
    """Write ``seconds`` of ``src`` (looped) to a 16-bit WAV without holding it in memory."""
    import soundfile as sf

    with sf.SoundFile(str(src)) as fin:
        total = int(round(seconds * fin.samplerate))
        fmt = "RF64" if total * fin.channels * 2 > 0xFFFF0000 else "WAV"
        tmp = dst.with_name(dst.name + ".part")
        with sf.SoundFile(str(tmp), "w", samplerate=fin.samplerate, channels=fin.channels,
                          subtype="PCM_16", format=fmt) as fout:
            left = total
            while left > 0:
                buf = fin.read(min(block, left), dtype="int16", always_2d=True)
                if len(buf) == 0:
                    fin.seek(0)
                    continue
                fout.write(buf)
                left -= len(buf)
    os.replace(tmp, dst)
    return dst


def derived_input(base: Path, dst: Path, seconds: float) -> Path:
    """Cached ``seconds``-long file cut/looped from ``base``."""
    import soundfile as sf

    if dst.exists() and dst.stat().st_mtime >= base.stat().st_mtime:
        info = sf.info(str(dst))
        if abs(info.frames / info.samplerate - seconds) < 1e-3:
            return dst
    return stream_repeat(base, dst, seconds)


def duration(path: Path) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate


# --------------------------------------------------------------------------- formatting

def fmt(x, spec=".2f", na="n/a"):
    if x is None:
        return na
    if isinstance(x, str):
        return x
    return format(x, spec)


def md_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def which_all(names: list[str]) -> list[str]:
    return [n for n in names if shutil.which(n) is None]
