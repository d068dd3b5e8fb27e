#!/usr/bin/env python3
"""Cold and warm start of the ``pacodec`` command: encode + decode of a 1-second file.

    python tools/coldstart.py                 # 3 cold and 3 warm rounds, median, one table
    python tools/coldstart.py --runs 5 --json cold.json

Cold = the first ``pacodec encode`` then ``pacodec decode`` after a fresh install: each round
gets a new, empty ``NUMBA_CACHE_DIR``, so every kernel the two commands need is compiled (and
written to that cache).  Warm = the same two commands again with that cache filled.  The input
is a generated 1-s 44.1 kHz stereo 16-bit WAV (two tones plus seeded noise); the default options
(128 kbit/s CBR) are used.  Python's own ``.pyc`` files are warm in both cases.

Each process is measured for wall time (perf_counter around it), CPU time (user + sys of the
child from ``os.wait4``) and peak RSS (``ru_maxrss``, the same call).  On a shared machine
wall time includes waiting for a core; CPU time does not, so it is the honest figure under
load: report both.  Nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def make_input(path: str, seconds: float = 1.0, rate: int = 44100) -> None:
    import numpy as np
    import soundfile as sf
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], 1)
    x += np.random.default_rng(0).normal(0, 0.01, x.shape)
    sf.write(path, x, rate, subtype="PCM_16")


def run(cmd: list[str], env: dict, cwd: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child; exits on failure.  Its peak RSS (MB) is
    appended to ``RSS``."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"coldstart: {' '.join(cmd)} failed:\n{err.decode(errors='replace')}")
    RSS.append(ru.ru_maxrss / 1024)
    return wall, ru.ru_utime + ru.ru_stime


RSS: list[float] = []


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="cold rounds (each with a new cache) "
                    "and warm rounds (default 3)")
    ap.add_argument("--json", help="also write the raw figures here")
    ap.add_argument("--pacodec", default=None,
                    help="command to run (default: this Python with -m pacodec)")
    args = ap.parse_args(argv)
    base = args.pacodec.split() if args.pacodec else [sys.executable, "-m", "pacodec"]
    work = tempfile.mkdtemp(prefix="pacodec-coldstart-")
    try:
        wav, pac, out = (os.path.join(work, n) for n in ("x.wav", "x.pac", "y.wav"))
        make_input(wav)
        enc = base + ["encode", "--quiet", "--force", wav, "-o", pac]
        dec = base + ["decode", "--force", pac, "-o", out]
        rows = {"cold": [], "warm": []}
        for i in range(args.runs):
            cache = tempfile.mkdtemp(prefix="numba-", dir=work)
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            # run in the scratch directory: `python -m` puts the current directory first on
            # sys.path, so a source tree there would shadow the installed (or PYTHONPATH) one
            cold = run(enc, env, work) + run(dec, env, work)
            warm = run(enc, env, work) + run(dec, env, work)
            rows["cold"].append(cold + tuple(RSS[-4:-2]))
            rows["warm"].append(warm + tuple(RSS[-2:]))
            print(f"round {i + 1}: cold enc {cold[0]:.2f}/{cold[1]:.2f} dec {cold[2]:.2f}/"
                  f"{cold[3]:.2f}  warm enc {warm[0]:.2f}/{warm[1]:.2f} dec {warm[2]:.2f}/"
                  f"{warm[3]:.2f}  (wall/CPU s)", file=sys.stderr, flush=True)
            shutil.rmtree(cache, ignore_errors=True)
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = float("nan")
        import pacodec
        where = os.path.dirname(pacodec.__file__)
        med = {k: [statistics.median(r[j] for r in v) for j in range(6)] for k, v in rows.items()}
        print(f"1-s 44.1 kHz stereo file, median of {args.runs}, load average {load:.1f} on "
              f"{os.cpu_count()} cores, pacodec from {where}")
        print("| start | encode wall / CPU s | decode wall / CPU s | together wall / CPU s | "
              "peak RSS enc / dec MB |")
        print("|---|---|---|---|---|")
        for k, m in med.items():
            print(f"| {k} | {m[0]:.2f} / {m[1]:.2f} | {m[2]:.2f} / {m[3]:.2f} | "
                  f"{m[0] + m[2]:.2f} / {m[1] + m[3]:.2f} | {m[4]:.0f} / {m[5]:.0f} |")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"rounds": rows, "median": med, "load": load,
                           "columns": ["enc_wall", "enc_cpu", "dec_wall", "dec_cpu", "enc_rss_mb",
                                       "dec_rss_mb"]}, fh,
                          indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
