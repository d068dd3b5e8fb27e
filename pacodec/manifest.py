"""The manifest of a ``pacodec batch`` output tree: ``OUT_DIR/pacodec-manifest.jsonl``.

JSON Lines, one record per line: ``run`` (one per invocation), ``file`` (a finished file: its
input and output paths, sizes, times, SHA-256s, settings), ``error`` (a file that failed) and
``summary`` (totals at the end of a run).  Only the coordinating process writes it
(:class:`ManifestWriter`: one ``write`` per record on an ``O_APPEND`` descriptor, fsynced, under
an exclusive lock), so a process killed at any moment leaves a valid prefix; a torn last line is
cut off by the next writer and skipped by readers.  :func:`up_to_date` is the resume rule.

Readers: :mod:`pacodec.batch` (resume, reports) and :mod:`pacodec.dataset` (the index of a tree).
Standard library only.
"""
from __future__ import annotations

import hashlib
import json
import os

from .errors import PacodecError

__all__ = ["MANIFEST", "read_records", "load_manifest", "latest_files", "ManifestWriter",
           "COORDINATOR_FDS", "sha256", "up_to_date", "settings_key"]

MANIFEST = "pacodec-manifest.jsonl"


def settings_key(s: dict) -> str:
    """A settings record as the one string that resume compares."""
    return json.dumps(s, sort_keys=True, separators=(",", ":"))


def read_records(path) -> list[dict]:
    """The records of the manifest file ``path`` ([] if there is none); a torn last line is skipped."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:             # a torn last line (the writer was killed mid-append)
            continue
    return out


def load_manifest(path_or_dir) -> list[dict]:
    """All records of a manifest (a path, or a directory holding ``pacodec-manifest.jsonl``)."""
    path = os.fspath(path_or_dir)
    if os.path.isdir(path):
        path = os.path.join(path, MANIFEST)
    return read_records(path)


def latest_files(records, kind=None) -> dict:
    """input path -> its latest ``file`` record (an ``error`` record after it removes it)."""
    latest = {}
    for r in records:
        if r.get("type") == "file" and (kind is None or r.get("settings", {}).get("kind") == kind):
            latest[r["input"]] = r
        elif r.get("type") == "error":
            latest.pop(r.get("input"), None)
    return latest


#: descriptors only the coordinator may hold (the manifest and its lock): a forked worker closes
#: its copies, or a worker still alive after its coordinator died would keep the next run out
COORDINATOR_FDS: set = set()


class ManifestWriter:
    """Appends one JSON line per record with a single write on an O_APPEND descriptor, then fsync:
    a kill at any point leaves complete lines plus at most one torn line, which ``open`` cuts off."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        COORDINATOR_FDS.add(self.fd)
        try:
            import fcntl
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:            # not POSIX: no lock
            pass
        except OSError:
            os.close(self.fd)
            raise PacodecError(f"{path} is in use by another 'pacodec batch' (one run per output "
                         f"directory at a time)") from None
        size = os.lseek(self.fd, 0, os.SEEK_END)
        if size:
            os.lseek(self.fd, max(0, size - 1), os.SEEK_SET)
            if os.read(self.fd, 1) != b"\n":          # torn last line: cut it off
                with open(path, "rb") as f:
                    keep = f.read().rfind(b"\n") + 1
                os.ftruncate(self.fd, keep)
                os.fsync(self.fd)

    def append(self, record: dict):
        line = (json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
                + "\n").encode()
        n = os.write(self.fd, line)
        while n < len(line):               # a short write to a regular file (disk nearly full)
            n += os.write(self.fd, line[n:])
        os.fsync(self.fd)

    def close(self):
        if self.fd is not None:
            COORDINATOR_FDS.discard(self.fd)
            os.close(self.fd)
            self.fd = None


def sha256(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                return h.hexdigest()
            h.update(b)


def up_to_date(job, rec, settings_key, verify):
    """Whether ``rec`` (the input's latest manifest record) still describes a finished output."""
    if rec is None or rec.get("settings_key") != settings_key or rec.get("output") != job["output"]:
        return False
    try:
        st = os.stat(job["src"])
        out_size = os.path.getsize(job["dst"])
    except OSError:
        return False
    if st.st_size != rec.get("input_size") or out_size != rec.get("output_size"):
        return False
    if st.st_mtime_ns != rec.get("input_mtime_ns"):
        # touched or copied: the same content counts as the same input
        if not rec.get("input_sha256") or sha256(job["src"]) != rec["input_sha256"]:
            return False
    if verify and sha256(job["dst"]) != rec.get("output_sha256"):
        return False
    return True
