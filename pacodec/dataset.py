"""Random access to a tree of ``.pac`` files made by ``pacodec batch``, for training loops.

    from pacodec.dataset import PacDataset
    ds = PacDataset("corpus_pac")                 # index from corpus_pac/pacodec-manifest.jsonl
    len(ds); x, fs = ds[17]                       # float32 (frames, channels), sample rate
    ds.record(17)["input"]                        # the manifest record: original path, rate, DCR...
    x, fs = ds.read(17, start=2.0, duration=1.0)  # a crop, by seeking (only that part is decoded)
    crops = PacDataset("corpus_pac", duration=1.0, random_offset=True, seed=3)

The index comes from the manifest (the latest record of each input whose output still exists),
sorted by output path, so it is the same in every process; a tree without a manifest is indexed
by listing its ``.pac`` files.  The object holds only paths and records (no open files), so it
pickles and can be handed to worker processes (``multiprocessing``, a PyTorch ``DataLoader`` with
``num_workers``, ...); every item opens its file, seeks, decodes and closes it.  No deep-learning
package is needed or imported.

Random crops draw from one ``numpy`` generator per process: after a fork or a pickle every
worker starts from the same ``seed``, so give each worker its own with :meth:`reseed` (e.g. in
a ``worker_init_fn``) if crops should differ between workers.
"""
from __future__ import annotations

import os

import numpy as np

from .manifest import MANIFEST, latest_files, load_manifest
from .pacfile import PacFile

__all__ = ["PacDataset"]


class PacDataset:
    """A ``.pac`` tree as a sequence of ``(array, samplerate)`` items.

    ``duration`` (seconds) crops every item: from ``offset`` seconds, or from a uniformly random
    start with ``random_offset=True``; ``pad=True`` zero-pads items shorter than ``duration``.
    ``dtype`` is the array type (decoded audio is float32); ``mono=True`` averages the channels
    (arrays then are ``(frames,)``).
    """

    def __init__(self, root, *, duration: float | None = None, offset: float = 0.0,
                 random_offset: bool = False, pad: bool = False, mono: bool = False,
                 dtype="float32", seed: int = 0):
        self.root = os.path.abspath(os.fspath(root))
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"{self.root}: not a directory")
        if duration is not None and duration <= 0:
            raise ValueError("duration must be positive")
        if offset < 0:
            raise ValueError("offset must be >= 0")
        self.duration, self.offset, self.random_offset = duration, float(offset), random_offset
        self.pad, self.mono, self.dtype, self.seed = pad, mono, np.dtype(dtype), seed
        self.records = self._index()
        self._rng = None

    def _index(self):
        if os.path.exists(os.path.join(self.root, MANIFEST)):
            latest = latest_files(load_manifest(self.root), kind="encode")
            recs = [r for r in latest.values()
                    if os.path.isfile(os.path.join(self.root, *r["output"].split("/")))]
        else:
            recs = []
            for d, dirs, files in os.walk(self.root):
                dirs.sort()
                for name in sorted(files):
                    if name.endswith(".pac") and not name.startswith("."):
                        rel = os.path.relpath(os.path.join(d, name), self.root)
                        recs.append({"output": rel.replace(os.sep, "/")})
        return sorted(recs, key=lambda r: r["output"])

    def __len__(self):
        return len(self.records)

    def path(self, i: int) -> str:
        return os.path.join(self.root, *self.records[i]["output"].split("/"))

    def record(self, i: int) -> dict:
        """The manifest record of item ``i`` (original ``input`` path, rate, channels, DCR...)."""
        return self.records[i]

    def reseed(self, seed: int) -> None:
        """Use a new random generator for random crops (e.g. one per worker process)."""
        self.seed = seed
        self._rng = None

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"item {i} out of range (dataset has {n})")
        i %= n
        start = self.offset
        if self.duration is not None and self.random_offset:
            total = self.records[i].get("duration")
            if total is None:
                with PacFile(self.path(i)) as f:
                    total = (f.frames or 0) / f.samplerate
            if self._rng is None:
                self._rng = np.random.default_rng(self.seed)
            start = float(self._rng.uniform(0.0, max(0.0, total - self.duration)))
        return self.read(i, start=start, duration=self.duration)

    def read(self, i: int, *, start: float = 0.0, duration: float | None = None):
        """Item ``i`` from ``start`` seconds for ``duration`` seconds (None: to the end), decoding
        only from the config frame before ``start``."""
        with PacFile(self.path(i)) as f:
            fs = f.samplerate
            if start > 0:
                f.seek_time(start)
            want = -1 if duration is None else int(round(duration * fs))
            x = f.read(want)
        if duration is not None and self.pad and len(x) < want:
            x = np.concatenate([x, np.zeros((want - len(x), x.shape[1]), x.dtype)])
        if self.mono:
            x = x.mean(axis=1)
        return x.astype(self.dtype, copy=False), fs

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_rng"] = None
        return state

    def __repr__(self):
        crop = "" if self.duration is None else f", duration={self.duration}"
        return f"PacDataset({self.root!r}, {len(self)} items{crop})"
