"""A batch run: the jobs to do (resume from the manifest), run on the chosen workers, each record
appended to the manifest as it comes, progress on the terminal, and the run's summary."""
from __future__ import annotations

import os
import time

from ..errors import PacodecError
from ..manifest import (MANIFEST, ManifestWriter, latest_files, read_records, settings_key,
                        up_to_date)
from .score import scorers
from .tree import scan
from .workers import dask_close, dask_connect, run_dask, run_local

__all__ = ["BatchResult", "run_batch", "summary_line"]


def clean_partials(out_dir):
    """Remove the partial files of dead writers (a killed run's) in every directory of
    ``out_dir``; a live writer's (another process holding its lock) stay."""
    from ..pacfile import clean_stale_partials
    removed = []
    for root, dirs, _ in os.walk(out_dir):
        removed += clean_stale_partials(root)
    return removed


def _hms(s):
    s = int(max(0, s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _audio(seconds):
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


class _Progress:
    """files, audio hours, ETA on the progress line (terminals only)."""

    def __init__(self, jobs, enabled):
        from .._frontend import Progress
        self.line = Progress(enabled=enabled, width=24)
        self.n = len(jobs)
        self.total_bytes = sum(j["size"] for j in jobs) or 1
        self.done = self.failed = 0
        self.bytes = 0
        self.audio = 0.0
        self.t0 = time.monotonic()
        self.last = 0.0

    def update(self, job, rec):
        self.done += 1
        self.bytes += job["size"]
        if rec["type"] == "file":
            self.audio += rec.get("duration") or 0.0
        else:
            self.failed += 1
        now = time.monotonic()
        if not self.line.on or (now - self.last < 0.2 and self.done < self.n):
            return
        self.last = now
        el = now - self.t0
        frac = self.bytes / self.total_bytes
        eta = el * (1 - frac) / frac if frac > 0 else 0
        est = self.audio / frac if frac > 0 else 0
        fail = f", {self.failed} failed" if self.failed else ""
        self.line.show(frac, f"{self.done}/{self.n} files{fail}, {_audio(self.audio)} of "
                             f"~{_audio(est)} audio, ETA {_hms(eta)}   ")

    def close(self):
        self.line.done()


class BatchResult:
    """What :func:`run_batch` did: ``encoded``/``skipped``/``failed`` lists of manifest records
    (``skipped`` holds the jobs found up to date), ``ignored`` (paths not taken as audio), the
    ``summary`` record and the manifest path."""

    def __init__(self):
        self.encoded, self.skipped, self.failed, self.ignored, self.todo = [], [], [], [], []
        self.summary = {}
        self.manifest = None

    @property
    def ok(self):
        return not self.failed


def run_batch(in_dir, out_dir, settings: dict, *, jobs: int | None = None, dask: str | None = None,
              include=(), exclude=(), dry_run=False, verify=False, score=(), score_path=None,
              force=False, progress=False, log=None) -> BatchResult:
    """Encode (``settings`` from :func:`encode_settings`) or decode (:func:`decode_settings`)
    the tree ``in_dir`` into ``out_dir``; returns a :class:`BatchResult`.

    ``out_dir`` is the batch's own: outputs there are replaced when their input or the settings
    changed.  So a directory that is not empty and has no manifest is refused unless ``force``."""
    in_dir, out_dir = os.path.abspath(in_dir), os.path.abspath(out_dir)
    if not os.path.isdir(in_dir):
        raise PacodecError(f"{in_dir}: not a directory")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise PacodecError(f"{out_dir} exists and is not a directory")
    if in_dir == out_dir:
        raise PacodecError("the output directory must differ from the input directory")
    decode = settings["kind"] == "decode"
    if score and decode:
        raise PacodecError("--score applies to encoding")
    if score:
        try:
            scorers(score, score_path)
        except ImportError as e:
            raise PacodecError(str(e)) from None
    res = BatchResult()
    found, res.ignored = scan(in_dir, out_dir, decode=decode, include=include, exclude=exclude,
                              fmt=settings.get("format", "wav"))
    res.manifest = os.path.join(out_dir, MANIFEST)
    key = settings_key(settings)
    latest = latest_files(read_records(res.manifest))
    for job in found:
        job["settings"] = settings
        if score:
            job["score"], job["score_path"] = list(score), score_path
        if up_to_date(job, latest.get(job["input"]), key, verify):
            res.skipped.append(job)
        else:
            res.todo.append(job)
    res.todo.sort(key=lambda j: (-j["size"], j["input"]))        # largest first
    if dry_run:
        return res
    if (not force and not os.path.exists(res.manifest) and os.path.isdir(out_dir)
            and any(not n.startswith(".") for n in os.listdir(out_dir))):
        raise PacodecError(f"{out_dir} is not empty and has no {MANIFEST}: refusing to write "
                           f"into it (its files could be replaced; use --force to go ahead)")
    conn = dask_connect(dask) if dask and res.todo else None   # fail before writing anything
    try:
        os.makedirs(out_dir, exist_ok=True)
        writer = ManifestWriter(res.manifest)
    except BaseException:
        if conn:
            dask_close(conn)
        raise
    t0 = time.monotonic()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        clean_partials(out_dir)               # leftovers of a killed run
        workers = 1 if dask is None and jobs == 1 else (jobs or os.cpu_count() or 1)
        backend = f"dask {dask}" if dask else f"local -j {workers}"
        writer.append({"type": "run", "in_dir": in_dir, "out_dir": out_dir, "settings": settings,
                       "settings_key": key, "started": started, "backend": backend,
                       "to_do": len(res.todo), "up_to_date": len(res.skipped)})
        prog = _Progress(res.todo, progress)
        it = run_dask(res.todo, conn, log) if conn else run_local(res.todo, workers)
        try:
            for job, rec in it:
                rec["source"] = job["src"]
                rec["t"] = round(time.time(), 3)           # when the coordinator got it
                writer.append(rec)
                (res.encoded if rec["type"] == "file" else res.failed).append(rec)
                prog.update(job, rec)
        finally:
            prog.close()
        wall = time.monotonic() - t0
        clean_partials(out_dir)
        res.summary = _summary(res, latest, wall, backend)
        writer.append(res.summary)
    finally:
        writer.close()
    return res


def _summary(res, before, wall, backend):
    current = {j["input"]: before.get(j["input"]) for j in res.skipped}
    current.update({r["input"]: r for r in res.encoded})
    recs = [r for r in current.values() if r is not None]
    pcm = sum(r["frames"] * r["channels"] * 2 for r in recs)
    out = sum(r["output_size"] for r in recs)
    run_audio = sum(r["duration"] for r in res.encoded)
    s = {"type": "summary", "files": len(recs), "processed": len(res.encoded),
         "up_to_date": len(res.skipped), "failed": len(res.failed),
         "failures": [{"input": r["input"], "error": r["error"]} for r in res.failed],
         "audio_hours": round(sum(r["duration"] for r in recs) / 3600, 9),
         "output_bytes": out, "pcm16_bytes": pcm,
         "dcr": round(1 - out / pcm, 6) if pcm else None,
         "run_audio_hours": round(run_audio / 3600, 9), "wall_seconds": round(wall, 3),
         "files_per_second": round(len(res.encoded) / wall, 4) if wall > 0 else None,
         "audio_hours_per_hour": round(run_audio / wall, 3) if wall > 0 else None,
         "backend": backend, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    quality = {}
    for r in recs:
        for k, v in (r.get("quality") or {}).items():
            quality.setdefault(k, []).append(v)
    if quality:
        s["quality_mean"] = {k: round(sum(v) / len(v), 4) for k, v in quality.items()}
    return s


def summary_line(res: BatchResult, decode=False) -> str:
    s = res.summary
    verb = "decoded" if decode else "encoded"
    parts = [f"{s['processed']} {verb}", f"{s['up_to_date']} up to date", f"{s['failed']} failed"]
    line = (f"pacodec batch: {', '.join(parts)}; {s['files']} files, {s['audio_hours']:.3f} h "
            f"of audio")
    if not decode and s.get("dcr") is not None:
        line += f", DCR {100 * s['dcr']:.2f} %"
    if s["processed"]:
        line += (f"; this run {s['wall_seconds']:.1f} s, {s['files_per_second']:.2f} files/s, "
                 f"{s['audio_hours_per_hour']:.1f} audio h/h")
    for k, v in (s.get("quality_mean") or {}).items():
        line += f"; mean {k} {v:.3f}"
    return line
