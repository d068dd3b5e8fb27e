"""The jobs of a tree: which files of IN_DIR are taken, and the output name of each in OUT_DIR."""
from __future__ import annotations

import fnmatch
import os

from .._frontend import output_name
from ..manifest import MANIFEST

__all__ = ["AUDIO_EXTS", "scan"]

#: extensions taken as audio when no --include is given (what libsndfile reads); a file with one
#: of these that libsndfile cannot open is a failure, other files are ignored
AUDIO_EXTS = frozenset("""wav wave flac ogg oga opus aif aiff aifc au snd caf w64 rf64 bwf mp3 mat
    mat4 mat5 paf pvf sd2 sds htk nist sph ircam sf voc xi avr wve mpc""".split())


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
        targets.setdefault(output_name(stem, suffix), []).append(rel)
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
