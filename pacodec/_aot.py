"""Compile the codec's kernels when the wheel is built, so a fresh install starts warm.

    python -m pacodec._aot OUTDIR

``setup.py`` runs this on the package it is about to put in the wheel (``build/lib``), with
``OUTDIR`` = ``pacodec/_kernels`` there: it encodes and decodes a few generated signals through
the same entry points as the ``pacodec`` command and ``pacodec demo`` (stereo 44.1 kHz with an
attack, so short windows are coded too, at the default VBR and at 128 kbit/s CBR; mono 48 kHz),
then saves every kernel signature that compiled into ``OUTDIR``
(:func:`pacodec._jit.write_shipped`), and the form of them that loads without numba
(:func:`pacodec._nfload.export`).
What this does not reach (streaming, other options) compiles on first use, as before.
See ``pacodec/_jit.py`` for how the result is found, checked and loaded.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile


def _signal(seconds: float, rate: int, channels: int):
    import numpy as np
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t[:, None] * (1 + 0.5 * np.arange(channels)))
    x += np.random.default_rng(0).normal(0, 0.01, x.shape)
    x[len(x) // 2:len(x) // 2 + 64] += 0.6             # an attack: short windows
    return x


def exercise(work: str) -> None:
    """Encode and decode through the command line's and the Python API's paths."""
    import soundfile as sf

    from . import cli
    from .api import read, write
    for name, rate, channels, rate_opts in (("stereo", 44100, 2, []),
                                            ("stereo", 44100, 2, ["-b", "128"]),
                                            ("mono", 48000, 1, [])):
        wav, pac, out = (os.path.join(work, f"{name}.{ext}") for ext in ("wav", "pac", "out.wav"))
        x = _signal(1.5, rate, channels)
        sf.write(wav, x, rate, subtype="PCM_16")
        for argv in (["encode", "--quiet", "--force", *rate_opts, wav, "-o", pac],
                     ["decode", "--quiet", "--force", pac, "-o", out]):
            if cli.main(argv):
                raise RuntimeError(f"pacodec {' '.join(argv)} failed")
        write(pac, x, rate)                             # pacodec demo's path
        read(pac)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit("usage: python -m pacodec._aot OUTDIR")
    if "numba" in sys.modules:
        sys.exit("pacodec._aot: run it in a process of its own (numba is already imported)")
    out = os.path.abspath(argv[0])
    with tempfile.TemporaryDirectory(prefix="pacodec-aot-") as work:
        # compile everything here, for LLVM's generic model of this CPU family; load nothing
        # (neither an earlier build's kernels nor this machine's numba cache)
        os.environ.update(PACODEC_KERNELS="off", NUMBA_CPU_NAME="generic",
                          NUMBA_CACHE_DIR=os.path.join(work, "numba-cache"))
        os.environ.pop("NUMBA_CPU_FEATURES", None)
        os.environ.pop("NUMBA_DISABLE_JIT", None)
        from . import _jit, _nfload
        exercise(work)
        n = _jit.write_shipped(out)
        try:
            nf, skipped = _nfload.export(out, _jit.dispatchers, _jit.package_fingerprint())
        except Exception as e:      # numba's internals changed: numba loads the kernels
            shutil.rmtree(os.path.join(out, _nfload.SUBDIR), ignore_errors=True)
            print(f"pacodec: warning: the kernels' numba-free form was not written: {e!r}")
            nf, skipped = 0, {}
    print(f"pacodec: {n} kernel signatures compiled for the generic CPU into {out} "
          f"({nf} loadable without numba)")
    for name, why in sorted(skipped.items()):
        print(f"pacodec: {name}: {len(why)} signature(s) need numba "
              f"({', '.join(sorted(set(why)))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
