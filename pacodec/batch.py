"""``pacodec batch``: encode (or decode) a whole directory tree, in parallel, resumably.

    pacodec batch IN_DIR OUT_DIR -d 1 -j 4          # local process pool, largest files first
    pacodec batch IN_DIR OUT_DIR -d 1 --dask tcp://scheduler:8786
    pacodec batch --decode OUT_DIR RESTORED_DIR     # .pac tree -> WAV (or --format flac)
    pacodec batch --report OUT_DIR                  # report.md + histograms from the manifest

The output tree mirrors the input tree: one ``.pac`` per audio file.  Every output is written
through :func:`pacodec.pacfile.atomic_output` (temporary file, fsync, rename), so an output either
is complete or does not exist.

**Manifest.**  ``OUT_DIR/pacodec-manifest.jsonl`` (JSON Lines) gets one record per file as it
finishes, each appended with a single ``write`` on an ``O_APPEND`` descriptor and fsynced, so a
process killed at any moment leaves a valid prefix (a torn last line is cut off on the next run).
Record types: ``run`` (one per invocation: directories, settings, start time), ``file`` (one per
finished file), ``error`` (a file that failed) and ``summary`` (totals at the end of a run).  Only
the coordinating process writes it, and it holds an exclusive lock on it while running.

**Resume.**  A file is skipped when the latest ``file`` record for its input path has the same
settings, the input still has the recorded size and modification time (or, if only the time
changed, the same SHA-256), and the output exists with the recorded size (``--verify``: and the
recorded SHA-256).  Anything else is encoded again; names on disk are never trusted on their own.
Partial files whose writer is gone (their ``flock`` is free) are removed anywhere in OUT_DIR when
a run starts and again when it ends, whether or not the run writes into their directory.

**Workers.**  ``-j N`` runs N worker processes, warm before their first file (on Linux forked
from the coordinator after it loaded numba's kernels; elsewhere spawned, each warming itself),
fed largest-first; ``-j 1`` runs in-process.  ``--dask ADDRESS``
sends the same per-file tasks to a ``dask.distributed`` scheduler; the workers must see the
input and output directories under the same absolute paths (shared storage).  ``--dask local:N``
starts a ``LocalCluster`` of N single-threaded worker processes.  Only the coordinator writes
the manifest in every case, so resume works the same way.

This module imports only the standard library at import time (``pacodec --help`` stays light).
"""
from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import socket
import sys
import time

__all__ = ["MANIFEST", "encode_settings", "scan", "load_manifest", "run_batch", "run_job",
           "report", "add_parser", "cmd_batch", "BatchResult"]

#: extensions taken as audio when no --include is given (what libsndfile reads); a file with one
#: of these that libsndfile cannot open is a failure, other files are ignored
AUDIO_EXTS = frozenset("""wav wave flac ogg oga opus aif aiff aifc au snd caf w64 rf64 bwf mp3 mat
    mat4 mat5 paf pvf sd2 sds htk nist sph ircam sf voc xi avr wve mpc""".split())
ENV_SCORE_PATH = "PACODEC_SCORE_PATH"

from .manifest import (COORDINATOR_FDS, MANIFEST, ManifestWriter, latest_files,  # noqa: E402
                       load_manifest, read_records, settings_key, sha256, up_to_date)


class BatchError(Exception):
    """A problem with the whole batch (not one file): bad directories, manifest locked..."""


def _error(msg):
    from .errors import PacodecError
    return PacodecError(msg)


# ---------------------------------------------------------------------------------- settings
def encode_settings(*, bitrate=None, abr=None, quality=None, distance=None, quantizer=None,
                    mu=None, window=None, low_delay=False) -> dict:
    """The canonical settings record of an encode (what resume compares): the options as
    :func:`pacodec.options.resolve` settles them (defaults, conflicts), in the manifest's form."""
    from . import __version__
    from .options import resolve
    o = resolve(bitrate=bitrate, abr=abr, quality=quality, distance=distance,
                quantizer=quantizer, mu=mu, window_shape=window, low_delay=low_delay)
    rate = {"mode": o.mode, **{("bitrate" if k == "abr" else k): v
                               for k, v in o.rate_option().items()}}
    return {"kind": "encode", **rate, "quantizer": o.quantizer, "mu": o.mu,
            "window": o.window_shape, "low_delay": o.low_delay, "pacodec": __version__}


def decode_settings(*, fmt="wav", float_=False, strict=False) -> dict:
    from . import __version__
    return {"kind": "decode", "format": fmt, "float": bool(float_), "strict": bool(strict),
            "pacodec": __version__}


def _resolve_keywords(s: dict) -> dict:
    """The keywords of :func:`pacodec.options.resolve` of a settings record."""
    rate = {k: s[k] for k in ("quality", "distance") if k in s} or {
        "abr" if s["mode"] == "abr" else "bitrate": s["bitrate"]}
    return dict(rate, quantizer=s["quantizer"], mu=s["mu"] if s["quantizer"] == "mulaw" else None,
                window_shape=s["window"], low_delay=s["low_delay"])


def _encoder_kwargs(s: dict) -> dict:
    """The :class:`~pacodec.Encoder` keywords of a settings record."""
    from .options import resolve
    return resolve(**_resolve_keywords(s)).encoder_kwargs()


def _coding_options(s: dict, samplerate, channels):
    """The coding options of a settings record for an input (with the input's limits)."""
    from .ratelimit import coding_options
    return coding_options(samplerate, channels, **_resolve_keywords(s))


# ---------------------------------------------------------------------------------- scanning
def _matches(rel, patterns):
    base = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(base, p) for p in patterns)


def scan(in_dir, out_dir, *, decode=False, include=(), exclude=(), fmt="wav"):
    """The jobs for a tree: ``(jobs, ignored)``; each job a dict with ``src``/``dst`` (absolute),
    ``input``/``output`` (relative, '/'-separated) and ``size``.  Sorted by input path."""
    in_dir = os.path.abspath(in_dir)
    out_dir = os.path.abspath(out_dir)
    found, ignored = [], []
    for root, dirs, files in os.walk(in_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and os.path.abspath(os.path.join(root, d)) != out_dir)
        for name in sorted(files):
            if name.startswith(".") or name == MANIFEST:
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, in_dir).replace(os.sep, "/")
            ext = os.path.splitext(name)[1].lower().lstrip(".")
            if include:
                wanted = _matches(rel, include)
            else:
                wanted = (ext == "pac") if decode else (ext in AUDIO_EXTS)
            if not wanted or (exclude and _matches(rel, exclude)) or not os.path.isfile(path):
                ignored.append(rel)
                continue
            found.append((rel, path))
    suffix = ".pac" if not decode else "." + fmt
    targets = {}
    for rel, _ in found:
        stem = rel[:-4] if decode and rel.lower().endswith(".pac") else rel
        targets.setdefault(os.path.splitext(stem)[0] + suffix, []).append(rel)
    out_of = {}
    for target, rels in targets.items():
        if len(rels) == 1:
            out_of[rels[0]] = target
        else:                          # a.wav and a.flac: keep the whole name, a.wav.pac, a.flac.pac
            for rel in rels:
                stem = rel[:-4] if decode and rel.lower().endswith(".pac") else rel
                out_of[rel] = stem + suffix
    jobs = []
    for rel, path in found:
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0
        jobs.append({"input": rel, "output": out_of[rel], "src": path,
                     "dst": os.path.join(out_dir, *out_of[rel].split("/")), "size": size})
    return jobs, ignored


_PARENT = None          # in a pool worker: the coordinator's pid
_IN_JOB = False         # in a pool worker: inside run_job, where a SIGTERM must unwind


# ---------------------------------------------------------------------------------- workers
_WARM = False


def _warm():
    """Load (or compile) the numba kernels once per process before the first real file."""
    global _WARM
    if _WARM:
        return True
    import numpy as np

    from .api import decode, encode
    x = np.random.default_rng(0).standard_normal((4096, 2)) * 0.05
    decode(encode(x, 44100, distance=1.0))
    decode(encode(x[:, :1], 16000, bitrate=32))
    _WARM = True
    return True


def _worker_init():
    """Pool worker start: die with the coordinator, clean up on SIGTERM, then warm up."""
    import signal
    global _PARENT
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the coordinator decides what Ctrl-C does
    _PARENT = os.getppid()
    for fd in list(COORDINATOR_FDS):                # forked: drop the manifest lock's copies
        with contextlib.suppress(OSError):
            os.close(fd)
    COORDINATOR_FDS.clear()

    def _term(signum, frame):
        if not _IN_JOB:
            # between jobs (waiting for work, or sending a result back, where the pool's
            # worker loop would swallow an exception and wait forever for a dead coordinator)
            os._exit(128 + signum)
        raise SystemExit(128 + signum)               # unwinds atomic_output: partial removed
    signal.signal(signal.SIGTERM, _term)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    _warm()


def _short(e) -> str:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, OSError) and e.strerror:
        msg = e.strerror + (f": {e.filename}" if e.filename else "")
    return msg


def _scorers(names, path):
    """name -> score(ref, sr, deg, sr) for the requested metrics; ImportError if one is missing.
    ``path`` (or $PACODEC_SCORE_PATH) is put on sys.path first, for the scorer modules
    ``visqol.py`` (``score``) and ``mushra2f.py`` (``score2f``)."""
    path = path or os.environ.get(ENV_SCORE_PATH)
    if path:
        for p in reversed(path.split(os.pathsep)):
            if p and p not in sys.path:
                sys.path.insert(0, p)
    out = {}
    for name in names:
        if name == "visqol":
            from . import quality
            if quality.available():
                out[name] = lambda r, sr, d, sr2: quality.visqol(r, d, sr)
                continue
            try:
                import visqol as mod
            except ImportError:
                raise ImportError("ViSQOL is not installed (see README 'Measuring quality', "
                                  f"or put visqol.py on --score-path / ${ENV_SCORE_PATH})") from None
            out[name] = mod.score
        elif name == "2f":
            try:
                import importlib.util
                import mushra2f as mod
                for dep in ("seabass", "resampy"):
                    if importlib.util.find_spec(dep) is None:
                        raise ImportError(dep)
                out[name] = mod.score2f
            except ImportError:
                raise ImportError("the 2f-model is not available: pip install seabass-2f resampy "
                                  f"and put mushra2f.py on --score-path / ${ENV_SCORE_PATH}") \
                    from None
        else:
            raise ImportError(f"unknown quality metric {name!r} (visqol, 2f)")
    return out


def _score(job, rate):
    import soundfile as sf

    from .api import read
    ref, _ = sf.read(job["src"], always_2d=True)
    deg, _ = read(job["dst"])
    scores = {}
    for name, fn in _scorers(job.get("score") or (), job.get("score_path")).items():
        scores[name] = round(float(fn(ref, rate, deg, rate)), 4)
    return scores


def _file_tags(snd, rec) -> dict:
    """The input's tags as ``pacodec encode`` copies them; tags too large for the stream are
    dropped (noted in the record) rather than failing the job."""
    from . import bitstream as bs
    from .errors import UnsupportedError
    from .tags import read_file_tags
    tags = read_file_tags(snd)
    try:
        bs.pack_metadata(bs.Metadata(bs.normalize_tags(tags)))
    except UnsupportedError as e:
        rec["tags_dropped"] = str(e)
        return {}
    return tags


def _encode_file(job, rec):
    import soundfile as sf

    from .encoder import Encoder
    from .pacfile import atomic_output
    s = job["settings"]
    try:
        snd = sf.SoundFile(job["src"])
    except (RuntimeError, TypeError, sf.LibsndfileError) as e:
        msg = _short(e)
        if msg.startswith("Error opening ") and "': " in msg:    # the path is already shown
            msg = msg.split("': ", 1)[1]
        raise _error(f"not a readable audio file ({msg.rstrip('.')})") from None
    with snd:
        total = snd.frames if snd.seekable() else None
        opts = _coding_options(s, snd.samplerate, snd.channels)   # the input's limits too
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
        rec["quality"] = _score(job, rate)


def _decode_file(job, rec):
    import warnings

    import numpy as np
    import soundfile as sf

    from .pacfile import PacFile, atomic_output
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
                    from .tags import write_file_tags
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
    from .errors import PacodecError
    _warm()
    rec = {"type": "file", "input": job["input"], "output": job["output"],
           "settings": job["settings"], "settings_key": settings_key(job["settings"]),
           "host": socket.gethostname(), "pid": os.getpid()}
    t0 = time.perf_counter()
    try:
        st = os.stat(job["src"])
        rec.update(input_size=st.st_size, input_mtime_ns=st.st_mtime_ns,
                   input_sha256=sha256(job["src"]))
        if job["settings"]["kind"] == "encode":
            _encode_file(job, rec)
        else:
            _decode_file(job, rec)
    except (PacodecError, OSError, ValueError, ImportError, RuntimeError, MemoryError) as e:
        return {"type": "error", "input": job["input"], "output": job["output"],
                "error": _short(e), "host": rec["host"]}
    except Exception as e:             # a bug: still one line, and the batch carries on
        return {"type": "error", "input": job["input"], "output": job["output"],
                "error": f"{type(e).__name__}: {_short(e)}", "host": rec["host"]}
    rec["seconds"] = round(time.perf_counter() - t0, 4)
    return rec


def _pool_job(job):
    """``run_job`` in a pool worker: a SIGTERM (the coordinator stopping, or dying) ends the
    process once ``atomic_output`` has removed the partial file, instead of taking more work."""
    global _IN_JOB
    if _PARENT is not None and os.getppid() != _PARENT:
        os._exit(1)                                  # orphaned: the coordinator is gone
    try:
        _IN_JOB = True
        return run_job(job)
    except SystemExit as e:
        os._exit(e.code if isinstance(e.code, int) else 1)
    finally:
        _IN_JOB = False


def _clean_partials(out_dir):
    """Remove the partial files of dead writers (a killed run's) in every directory of
    ``out_dir``; a live writer's (another process holding its lock) stay."""
    from .pacfile import clean_stale_partials
    removed = []
    for root, dirs, _ in os.walk(out_dir):
        removed += clean_stale_partials(root)
    return removed


def _run_local(jobs, n):
    """Yield (job, record) as files finish, on ``n`` spawned worker processes (in-process for 1)."""
    if not jobs:
        return
    if n <= 1:
        _warm()
        for job in jobs:
            yield job, run_job(job)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool
    # Linux: fork from this process once its kernels are loaded, so workers start warm; other
    # systems spawn, and each worker warms itself in _worker_init
    fork = sys.platform.startswith("linux")
    if fork:
        _warm()
    ex = ProcessPoolExecutor(n, mp_context=mp.get_context("fork" if fork else "spawn"),
                             initializer=_worker_init)
    futs = {}
    ok = False
    try:
        for job in jobs:                       # already largest-first: the pool keeps that order
            futs[ex.submit(_pool_job, job)] = job
        for fut in as_completed(futs):
            job = futs[fut]
            try:
                rec = fut.result()
            except BrokenProcessPool:
                rec = {"type": "error", "input": job["input"], "output": job["output"],
                       "error": "a worker process died (out of memory or killed?)"}
            yield job, rec
        ok = True
    finally:
        if not ok:                             # interrupted: stop the workers, which clean up
            for f in futs:
                f.cancel()
            for p in list(getattr(ex, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    p.terminate()
        ex.shutdown(wait=True, cancel_futures=True)


def _dask_connect(address):
    """(client, cluster or None) for ``tcp://HOST:PORT`` or ``local:N``; one-line errors."""
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise _error('--dask needs dask.distributed: pip install "pacodec[dask]"') from None
    import logging
    if address.startswith("local:") or address == "local":
        try:
            n = int(address.partition(":")[2] or os.cpu_count() or 1)
            if n < 1:
                raise ValueError
        except ValueError:
            raise _error(f"--dask local:N needs a positive number of workers, got {address!r}") \
                from None
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        return Client(cluster), cluster
    try:
        timeout = dask.config.get("distributed.comm.timeouts.connect")
        return Client(address, timeout=timeout), None
    except Exception as e:              # OSError, TimeoutError, ValueError (bad address)...
        raise _error(f"cannot reach the Dask scheduler at {address}: {_short(e)}") from None


def _run_dask(jobs, conn, log=None):
    from dask.distributed import as_completed
    client, cluster = conn
    futs = {}
    try:
        if log:
            log(f"dask: {len(client.scheduler_info()['workers'])} worker(s) at "
                f"{client.scheduler.address}")
        client.run(_warm)
        token = hashlib.sha1(f"{os.getpid()}-{time.time()}".encode()).hexdigest()[:10]
        for i, job in enumerate(jobs):
            fut = client.submit(run_job, job, key=f"pacodec-batch-{token}-{i}", pure=False,
                                priority=len(jobs) - i)      # higher runs first: largest first
            futs[fut] = job
        for fut in as_completed(list(futs)):
            job = futs[fut]
            try:
                rec = fut.result()
            except Exception as e:                 # the worker died or the task was lost
                rec = {"type": "error", "input": job["input"], "output": job["output"],
                       "error": f"dask task failed: {_short(e)}"}
            yield job, rec
    finally:
        with contextlib.suppress(Exception):
            client.cancel(list(futs))
        _dask_close(conn)


def _dask_close(conn):
    client, cluster = conn
    with contextlib.suppress(Exception):
        client.close()
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close()


# ---------------------------------------------------------------------------------- progress
def _hms(s):
    s = int(max(0, s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _audio(seconds):
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


class _Progress:
    """files, audio hours, ETA on the progress line (terminals only)."""

    def __init__(self, jobs, enabled):
        from ._frontend import Progress
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


# ---------------------------------------------------------------------------------- the batch
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
        raise _error(f"{in_dir}: not a directory")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise _error(f"{out_dir} exists and is not a directory")
    if in_dir == out_dir:
        raise _error("the output directory must differ from the input directory")
    decode = settings["kind"] == "decode"
    if score and decode:
        raise _error("--score applies to encoding")
    if score:
        try:
            _scorers(score, score_path)
        except ImportError as e:
            raise _error(str(e)) from None
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
        raise _error(f"{out_dir} is not empty and has no {MANIFEST}: refusing to write into it "
                     f"(its files could be replaced; use --force to go ahead)")
    conn = _dask_connect(dask) if dask and res.todo else None   # fail before writing anything
    try:
        os.makedirs(out_dir, exist_ok=True)
        writer = ManifestWriter(res.manifest)
    except BaseException:
        if conn:
            _dask_close(conn)
        raise
    t0 = time.monotonic()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        _clean_partials(out_dir)               # leftovers of a killed run
        workers = 1 if dask is None and jobs == 1 else (jobs or os.cpu_count() or 1)
        backend = f"dask {dask}" if dask else f"local -j {workers}"
        writer.append({"type": "run", "in_dir": in_dir, "out_dir": out_dir, "settings": settings,
                       "settings_key": key, "started": started, "backend": backend,
                       "to_do": len(res.todo), "up_to_date": len(res.skipped)})
        prog = _Progress(res.todo, progress)
        it = _run_dask(res.todo, conn, log) if conn else _run_local(res.todo, workers)
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
        _clean_partials(out_dir)
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


# ---------------------------------------------------------------------------------- report
def report(out_dir, *, plots=True):
    """Write ``report.md`` (and ``report-dcr.png``, ``report-quality.png`` when matplotlib is
    installed) into ``out_dir`` from its manifest.  Returns ``(markdown path, [png paths], note)``."""
    out_dir = os.path.abspath(out_dir)
    records = load_manifest(out_dir)
    if not records:
        raise _error(f"no manifest in {out_dir} (run 'pacodec batch IN_DIR {out_dir}' first)")
    latest = latest_files(records)
    errors = {}
    for r in records:
        if r.get("type") == "error":
            errors[r["input"]] = r
        elif r.get("type") == "file":
            errors.pop(r["input"], None)
    recs = sorted(latest.values(), key=lambda r: r["input"])
    enc = [r for r in recs if r["settings"].get("kind") == "encode"]
    pcm = sum(r["frames"] * r["channels"] * 2 for r in enc)
    out = sum(r["output_size"] for r in enc)
    hours = sum(r["duration"] for r in recs) / 3600
    summaries = [r for r in records if r.get("type") == "summary"]
    lines = [f"# pacodec batch report: {out_dir}", "",
             "| | |", "|---|---|",
             f"| files | {len(recs)} |",
             f"| audio | {hours:.3f} h |",
             f"| failed (latest attempt) | {len(errors)} |"]
    if enc:
        dur = sum(r["duration"] for r in enc)
        lines += [f"| 16-bit PCM size | {pcm / 1e6:.2f} MB |",
                  f"| compressed size | {out / 1e6:.2f} MB |",
                  f"| total DCR | {100 * (1 - out / pcm):.2f} % |" if pcm else "| total DCR | - |",
                  f"| mean bitrate | {8 * out / dur / 1000:.1f} kbit/s |" if dur else ""]
        settings = sorted({r["settings_key"] for r in enc})
        lines.append(f"| settings | {'; '.join(f'`{s}`' for s in settings)} |")
    summaries = [s for s in summaries if s.get("processed")]
    if summaries:
        s = summaries[-1]
        if s.get("files_per_second") is not None:
            lines.append(f"| last run | {s['processed']} files in {s['wall_seconds']:.1f} s "
                         f"({s['files_per_second']:.2f} files/s, {s['audio_hours_per_hour']:.1f} "
                         f"audio h/h, {s['backend']}) |")
    lines = [ln for ln in lines if ln]
    metrics = sorted({k for r in enc for k in (r.get("quality") or {})})
    if enc:
        dcrs = sorted(r["dcr"] for r in enc if r.get("dcr") is not None)
        if dcrs:
            q = lambda p: dcrs[min(len(dcrs) - 1, int(p * len(dcrs)))]  # noqa: E731
            lines += ["", "## DCR per file", "",
                      f"min {100 * dcrs[0]:.2f} %, 10th percentile {100 * q(.1):.2f} %, median "
                      f"{100 * q(.5):.2f} %, max {100 * dcrs[-1]:.2f} %"]
    for m in metrics:
        vals = sorted((r["quality"][m], r["input"]) for r in enc if m in (r.get("quality") or {}))
        lines += ["", f"## Quality: {m}", "",
                  f"{len(vals)} files, mean {sum(v for v, _ in vals) / len(vals):.3f}, min "
                  f"{vals[0][0]:.3f}", "", "| lowest | file |", "|---|---|"]
        lines += [f"| {v:.3f} | {name} |" for v, name in vals[:10]]
    if errors:
        lines += ["", "## Failures", ""]
        lines += [f"- `{r['input']}`: {r['error']}" for r in sorted(errors.values(),
                                                                     key=lambda r: r["input"])]
    pngs, note = [], None
    if plots and enc:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            note = ('matplotlib is not installed (pip install "pacodec[plot]"): histograms '
                    'skipped, report.md written')
        else:
            def histograms(name, panels, title=None):
                """One PNG of histograms, a panel per ``(values, xlabel)``."""
                fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.5),
                                         squeeze=False)
                for ax, (values, xlabel) in zip(axes[0], panels):
                    ax.hist(values, bins=30)
                    ax.set_xlabel(xlabel)
                    ax.set_ylabel("files")
                if title:
                    axes[0][0].set_title(title)
                fig.tight_layout()
                path = os.path.join(out_dir, name)
                fig.savefig(path, dpi=100)
                plt.close(fig)
                pngs.append(path)

            histograms("report-dcr.png",
                       [([100 * r["dcr"] for r in enc if r.get("dcr") is not None],
                         "DCR (%) per file")], "data compression rate vs 16-bit PCM")
            lines += ["", "![DCR histogram](report-dcr.png)"]
            if metrics:
                histograms("report-quality.png",
                           [([r["quality"][m] for r in enc if m in (r.get("quality") or {})],
                             f"{m} per file") for m in metrics])
                lines += ["", "![quality histogram](report-quality.png)"]
    md = os.path.join(out_dir, "report.md")
    from .pacfile import atomic_output
    with atomic_output(md, force=True) as fh:
        fh.write(("\n".join(lines) + "\n").encode())
    return md, pngs, note


# ---------------------------------------------------------------------------------- CLI
def add_parser(sub):
    """Register ``pacodec batch`` on the CLI's subparsers."""
    b = sub.add_parser(
        "batch", help="encode or decode a directory tree (parallel, resumable, manifest)",
        description="Mirror IN_DIR into OUT_DIR, one .pac per audio file, with a manifest "
                    "(OUT_DIR/pacodec-manifest.jsonl) that a rerun resumes from.  "
                    "'pacodec batch --report DIR' summarises a finished tree.")
    b.add_argument("paths", nargs="+", metavar="DIR", help="IN_DIR OUT_DIR (--report: DIR)")
    from .options import add_arguments
    add_arguments(b)
    b.add_argument("-j", "--jobs", type=int, metavar="N",
                   help="worker processes (default: all cores; 1 = in this process)")
    b.add_argument("--dask", metavar="ADDRESS",
                   help="run on a Dask cluster: tcp://HOST:PORT (workers must see the same "
                        "paths) or local:N for a LocalCluster of N processes")
    b.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="only files matching GLOB (relative path or name; repeatable)")
    b.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files matching GLOB (repeatable)")
    b.add_argument("-n", "--dry-run", action="store_true",
                   help="list what would be done; write nothing")
    b.add_argument("--verify", action="store_true",
                   help="resume only over outputs whose SHA-256 matches the manifest")
    b.add_argument("--score", metavar="METRICS",
                   help="comma-separated quality metrics per file: visqol, 2f (optional packages)")
    b.add_argument("--score-path", metavar="DIR",
                   help=f"directory with the scorer modules visqol.py / mushra2f.py "
                        f"(default ${ENV_SCORE_PATH})")
    b.add_argument("--decode", action="store_true", help="decode a .pac tree to WAV/FLAC")
    b.add_argument("--format", choices=["wav", "flac"], default="wav",
                   help="--decode output format (default wav)")
    b.add_argument("--float", action="store_true", help="--decode: 32-bit float WAV")
    b.add_argument("--strict", action="store_true",
                   help="--decode: a damaged frame fails the file instead of being concealed")
    b.add_argument("--report", action="store_true",
                   help="write OUT_DIR/report.md and DCR/quality histograms (PNG) from the "
                        "manifest (alone with one DIR: report only)")
    b.add_argument("-f", "--force", action="store_true",
                   help="write into an OUT_DIR that has files but no manifest")
    b.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    b.set_defaults(func=cmd_batch)
    return b


def _print_report(out_dir):
    md, pngs, note = report(out_dir)
    print(f"pacodec batch: report {md}" + "".join(f", {p}" for p in pngs), file=sys.stderr)
    if note:
        print(f"pacodec: warning: {note}", file=sys.stderr)


def cmd_batch(args):
    if args.report and len(args.paths) == 1:
        _print_report(args.paths[0])
        return 0
    if len(args.paths) != 2:
        raise _error("batch needs IN_DIR and OUT_DIR (or --report DIR)")
    if args.jobs is not None and args.jobs < 1:
        raise _error("-j needs a positive number of workers")
    if args.dask and args.jobs is not None:
        raise _error("give -j or --dask, not both (Dask workers are set up on the cluster)")
    if args.decode:
        from .options import rate_given
        if rate_given(args):
            raise _error("rate options apply to encoding, not --decode")
        if args.float and args.format == "flac":
            raise _error("FLAC cannot hold float samples; drop --float or use --format wav")
        settings = decode_settings(fmt=args.format, float_=args.float, strict=args.strict)
    else:
        settings = encode_settings(bitrate=args.bitrate, abr=args.abr, quality=args.quality,
                                   distance=args.distance, quantizer=args.quantizer, mu=args.mu,
                                   window=args.window, low_delay=args.low_delay)
        _check_settings(settings)
    score = [s.strip() for s in args.score.split(",") if s.strip()] if args.score else []
    in_dir, out_dir = args.paths
    tty = sys.stderr.isatty() and not args.quiet
    res = run_batch(in_dir, out_dir, settings, jobs=args.jobs, dask=args.dask,
                    include=args.include, exclude=args.exclude, dry_run=args.dry_run,
                    verify=args.verify, score=score, score_path=args.score_path,
                    force=args.force, progress=tty,
                    log=None if args.quiet else (lambda m: print(m, file=sys.stderr)))
    verb = "decode" if args.decode else "encode"
    if args.dry_run:
        for j in res.todo:
            print(f"{verb} {j['input']} -> {j['output']}")
        mb = sum(j["size"] for j in res.todo) / 1e6
        print(f"pacodec batch: would {verb} {len(res.todo)} files ({mb:.1f} MB), "
              f"{len(res.skipped)} up to date, {len(res.ignored)} other files ignored "
              f"(dry run: nothing written)", file=sys.stderr)
        return 0
    if not args.quiet:
        print(summary_line(res, args.decode), file=sys.stderr)
        print(f"pacodec batch: manifest {res.manifest}", file=sys.stderr)
    for r in res.encoded:
        if r.get("note") and not args.quiet:
            print(f"pacodec: warning: {r['input']}: {r['note']}", file=sys.stderr)
    for r in res.failed:
        print(f"pacodec: failed: {r['input']}: {r['error']}", file=sys.stderr)
    if args.report:
        _print_report(out_dir)
    return 0 if res.ok else 1


def _check_settings(settings):
    """Reject bad encoder parameters once, before any worker starts."""
    from .encoder import Encoder
    Encoder(48000, 1, **_encoder_kwargs(settings))
