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

The package, by job: :mod:`.settings` (the settings record), :mod:`.tree` (what is taken and
where it goes), :mod:`.jobs` (one file's work) and :mod:`.score` (quality metrics),
:mod:`.workers` (in-process, a local pool or Dask), :mod:`.run` (resume, the manifest, progress,
the summary), :mod:`.report` and :mod:`.command` (the CLI); the manifest itself is
:mod:`pacodec.manifest`.  Every module imports only the standard library at import time
(``pacodec --help`` stays light).
"""
from __future__ import annotations

from ..manifest import MANIFEST, latest_files, load_manifest
from .command import add_parser, cmd_batch
from .jobs import run_job
from .report import report
from .run import BatchResult, run_batch, summary_line
from .settings import decode_settings, encode_settings
from .tree import scan

__all__ = ["MANIFEST", "encode_settings", "decode_settings", "scan", "load_manifest",
           "latest_files", "run_batch", "run_job", "report", "summary_line", "add_parser",
           "cmd_batch", "BatchResult"]
