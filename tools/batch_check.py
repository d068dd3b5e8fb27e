"""The ``pacodec batch`` acceptance check on a tree made from ../shared/corpus.

    python tools/batch_check.py --work /tmp/batchcheck [--corpus ../shared/corpus] [--files 220]

1. Builds IN (seeded): cuts of 1-4 s from every corpus clip, resampled to 8-48 kHz, mono or
   stereo, WAV or FLAC, one directory per clip, plus a few corrupt files (random bytes, a
   truncated WAV, an empty FLAC, NaN samples, an unsupported rate).
2. ``pacodec batch IN OUT -d 1 -j 1``, ``-j 2`` and ``--dask local:2`` into separate trees,
   timed; prints files/s and audio hours per hour from each run's summary record.
3. ``-j 2`` again into a fresh tree, SIGKILLed once half the files are in the manifest, then
   rerun: checks that no file finished before the kill was encoded again (manifest, inode and
   mtime), that no partial output is left, that the corrupt files are listed and exit status 1.
4. Checks that every tree holds the same outputs byte for byte.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

HERE = os.path.dirname(os.path.abspath(__file__))
RATES = [8000, 16000, 22050, 32000, 44100, 48000]


def build_tree(corpus, root, nfiles, seed=7):
    rng = np.random.default_rng(seed)
    clips = sorted(f for f in os.listdir(corpus) if f.endswith(".flac"))
    per = -(-nfiles // len(clips))
    n = 0
    for name in clips:
        x, fs = sf.read(os.path.join(corpus, name), always_2d=True)
        d = os.path.join(root, os.path.splitext(name)[0])
        os.makedirs(d, exist_ok=True)
        for k in range(per):
            if n >= nfiles:
                break
            secs = rng.uniform(1.0, 4.0)
            length = min(len(x), int(secs * fs))
            start = int(rng.integers(0, max(1, len(x) - length)))
            y = x[start:start + length]
            rate = int(rng.choice(RATES))
            if rate != fs:
                g = np.gcd(rate, fs)
                y = resample_poly(y, rate // g, fs // g, axis=0)
            if rng.random() < 0.5 or y.shape[1] == 1:
                y = y.mean(axis=1, keepdims=True)
            ext = "flac" if rng.random() < 0.5 else "wav"
            sf.write(os.path.join(d, f"{k:03d}_{rate}.{ext}"), np.clip(y, -1, 1), rate,
                     subtype="PCM_16")
            n += 1
    bad = os.path.join(root, "corrupt")
    os.makedirs(bad, exist_ok=True)
    with open(os.path.join(bad, "random.wav"), "wb") as f:
        f.write(rng.bytes(5000))
    sf.write(os.path.join(bad, "truncated.wav"), rng.standard_normal((44100, 2)) * .1, 44100)
    with open(os.path.join(bad, "truncated.wav"), "r+b") as f:
        f.truncate(30)
    open(os.path.join(bad, "empty.flac"), "wb").close()
    z = rng.standard_normal((22050, 1)) * .1
    z[1000] = np.nan
    sf.write(os.path.join(bad, "nan.wav"), z, 22050, subtype="FLOAT")
    sf.write(os.path.join(bad, "rate37k.wav"), z[:5000] * 0, 37000)
    return n, 5


def run(cmd, **kw):
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return p, time.monotonic() - t


def manifest(out):
    recs = []
    with open(os.path.join(out, "pacodec-manifest.jsonl"), "rb") as f:
        for line in f:
            try:
                recs.append(json.loads(line))
            except ValueError:
                pass
    return recs


def tree_hashes(out):
    h = {}
    for d, _, files in os.walk(out):
        for name in files:
            if name.endswith(".pac"):
                p = os.path.join(d, name)
                h[os.path.relpath(p, out)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return h


def partials(out):
    return [os.path.join(d, f) for d, _, files in os.walk(out) for f in files
            if ".pacodec-partial-" in f]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/batchcheck")
    ap.add_argument("--corpus", default=os.path.join(HERE, "..", "..", "shared", "corpus"))
    ap.add_argument("--files", type=int, default=220)
    ap.add_argument("--skip", default="", help="comma list of runs to skip: j1,j2,dask,kill")
    a = ap.parse_args()
    skip = set(a.skip.split(","))
    shutil.rmtree(a.work, ignore_errors=True)
    src = os.path.join(a.work, "in")
    ngood, nbad = build_tree(a.corpus, src, a.files)
    audio_h = sum(sf.info(os.path.join(d, f)).duration for d, _, fs in os.walk(src)
                  for f in fs if "corrupt" not in d) / 3600
    print(f"tree: {ngood} good + {nbad} corrupt files, {audio_h * 60:.1f} min of audio, {src}")
    pac = [sys.executable, "-m", "pacodec", "batch"]
    base = ["-d", "1", "--quiet"]
    rows, trees = [], {}
    for label, opts in [("-j 1", ["-j", "1"]), ("-j 2", ["-j", "2"]), ("--dask local:2", ["--dask", "local:2"])]:
        key = {"-j 1": "j1", "-j 2": "j2", "--dask local:2": "dask"}[label]
        if key in skip:
            continue
        out = os.path.join(a.work, "out_" + key)
        p, wall = run(pac + [src, out] + base + opts)
        s = [r for r in manifest(out) if r["type"] == "summary"][-1]
        ts = sorted(r["t"] for r in manifest(out) if r["type"] in ("file", "error"))
        steady = (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else float("nan")
        s["steady_files_per_second"] = steady
        s["startup_seconds"] = s["wall_seconds"] - (ts[-1] - ts[0])
        ok = sum(1 for r in manifest(out) if r["type"] == "file")
        print(f"{label}: exit {p.returncode}, {ok} encoded, {s['failed']} failed, process wall "
              f"{wall:.1f} s, summary {s['wall_seconds']:.1f} s, {s['files_per_second']:.2f} files/s, "
              f"{s['audio_hours_per_hour']:.1f} audio h/h, DCR {100 * s['dcr']:.2f} %; after the "
              f"first file {steady:.2f} files/s (start-up {s['startup_seconds']:.1f} s)", flush=True)
        assert p.returncode == 1 and ok == ngood and s["failed"] == nbad, p.stderr[-2000:]
        rows.append((label, s, wall))
        trees[key] = tree_hashes(out)
    if "kill" not in skip:
        out = os.path.join(a.work, "out_kill")
        proc = subprocess.Popen(pac + [src, out] + base + ["-j", "2"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        mpath = os.path.join(out, "pacodec-manifest.jsonl")
        while proc.poll() is None:
            if os.path.exists(mpath) and sum(1 for r in manifest(out) if r["type"] == "file") >= ngood // 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(1.0)                         # workers get SIGTERM from the kernel (PDEATHSIG)
        first = {r["input"]: r for r in manifest(out) if r["type"] == "file"}
        left = partials(out)
        stat = {r["output"]: os.stat(os.path.join(out, r["output"])) for r in first.values()}
        print(f"SIGKILL after {len(first)} of {ngood} files; partial outputs right after the kill: "
              f"{len(left)}", flush=True)
        p, wall = run(pac + [src, out] + base + ["-j", "2"])
        recs = manifest(out)
        runs = [i for i, r in enumerate(recs) if r["type"] == "run"]
        second = [r for r in recs[runs[-1]:] if r["type"] == "file"]
        again = [r["input"] for r in second if r["input"] in first]
        touched = [o for o, st in stat.items()
                   if (os.stat(os.path.join(out, o)).st_ino, os.stat(os.path.join(out, o)).st_mtime_ns)
                   != (st.st_ino, st.st_mtime_ns)]
        fails = [ln for ln in p.stderr.splitlines() if ln.startswith("pacodec: failed:")]
        print(f"rerun: exit {p.returncode}, {len(second)} encoded, re-encoded finished files: "
              f"{len(again)}, outputs touched: {len(touched)}, partials left: {len(partials(out))}, "
              f"failures listed: {len(fails)}", flush=True)
        for ln in fails:
            print("  " + ln)
        assert not again and not touched and not partials(out) and p.returncode == 1
        assert len(first) + len(second) == ngood and len(fails) == nbad
        trees["kill"] = tree_hashes(out)
    ref = next(iter(trees.values()), None)
    for k, h in trees.items():
        print(f"{k}: {len(h)} outputs, identical to {next(iter(trees))}: {h == ref}")
        assert h == ref
    print("\n| run | files/s | audio h/h | after the first file: files/s | start-up s | "
          "process wall s |\n|---|---|---|---|---|---|")
    for label, s, wall in rows:
        print(f"| `{label}` | {s['files_per_second']:.2f} | {s['audio_hours_per_hour']:.0f} | "
              f"{s['steady_files_per_second']:.2f} | {s['startup_seconds']:.1f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
