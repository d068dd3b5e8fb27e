"""kill -9 / resume stress check of ``pacodec batch`` (issue #25).

    python tools/batch_stress.py --work /tmp/batchstress [--cycles 50] [--files 150] [-j 2]

1. Builds IN (seeded, synthetic, no corpus needed): short clips (0.2-0.7 s) in nested folders at
   16, 22.05, 44.1 and 48 kHz, mono and stereo, WAV and FLAC, plus 3 bad files (random bytes, a
   truncated WAV, an empty FLAC).
2. ``pacodec batch IN REF -d 1 -j N`` uninterrupted: the reference tree.
3. Each cycle: ``pacodec batch IN OUT -d 1 -j N`` into a fresh OUT, started in its own process
   group; once a random share (0-95 %) of the good files is in the manifest, plus a random delay
   of up to 0.1 s, the whole group (coordinator and workers) gets SIGKILL.  When no process of
   the group is left, the same command runs again, and the check is: it exits 1 listing exactly
   the 3 bad files, no ``pacodec-partial`` file is left anywhere in OUT, no output that had a
   manifest record before the kill was written again (manifest, inode, mtime), and OUT's
   ``.pac`` files equal REF's byte for byte.

Prints one line per cycle and a summary; exit status 0 only if every cycle passed.  The command
run is ``python -m pacodec`` of this interpreter, so PYTHONPATH chooses the pacodec tested.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

BAD = ("bad/random.wav", "bad/truncated.wav", "bad/empty.flac")


class StressError(Exception):
    pass


def build_tree(root, nfiles, seed):
    import numpy as np
    import soundfile as sf
    rng = np.random.default_rng(seed)
    rates = [16000, 22050, 44100, 48000]
    folders = ["music", "music/live", "speech", "speech/a/b", "fx"]
    for i in range(nfiles):
        rate = rates[i % len(rates)]
        ch = 1 + (i // len(rates)) % 2
        ext = "flac" if (i // 8) % 2 else "wav"
        n = int(rng.uniform(0.2, 0.7) * rate)
        t = np.arange(n) / rate
        tone = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t)[:, None]
        x = np.clip(tone + 0.05 * rng.standard_normal((n, ch)), -1, 1)
        d = os.path.join(root, folders[i % len(folders)])
        os.makedirs(d, exist_ok=True)
        sf.write(os.path.join(d, f"clip_{i:03d}_{rate // 1000}k.{ext}"), x, rate,
                 subtype="PCM_16")
    os.makedirs(os.path.join(root, "bad"), exist_ok=True)
    with open(os.path.join(root, BAD[0]), "wb") as f:
        f.write(rng.bytes(4000))
    sf.write(os.path.join(root, BAD[1]), rng.standard_normal((22050, 2)) * 0.1, 22050)
    with open(os.path.join(root, BAD[1]), "r+b") as f:
        f.truncate(30)
    open(os.path.join(root, BAD[2]), "wb").close()


def manifest(out):
    recs = []
    try:
        with open(os.path.join(out, "pacodec-manifest.jsonl"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return recs
    for line in data.split(b"\n"):
        try:
            recs.append(json.loads(line))
        except ValueError:
            pass                     # empty or torn last line
    return recs


def file_records(out):
    return {r["input"]: r for r in manifest(out) if r.get("type") == "file"}


def pac_tree(out):
    h = {}
    for root, _, names in os.walk(out):
        for n in names:
            if n.endswith(".pac") and not n.startswith("."):
                p = os.path.join(root, n)
                with open(p, "rb") as f:
                    h[os.path.relpath(p, out)] = hashlib.sha256(f.read()).hexdigest()
    return h


def partials(out):
    return sorted(os.path.relpath(os.path.join(r, n), out)
                  for r, _, names in os.walk(out) for n in names if "pacodec-partial" in n)


def group_alive(pgid):
    """Whether any process of process group ``pgid`` is left (zombies count as gone)."""
    if os.path.isdir("/proc/self"):
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def batch_cmd(src, out, jobs):
    return [sys.executable, "-m", "pacodec", "batch", src, out, "-d", "1", "-j", str(jobs),
            "--quiet"]


def run_to_end(src, out, jobs, timeout):
    t = time.monotonic()
    p = subprocess.run(batch_cmd(src, out, jobs), capture_output=True, text=True,
                       timeout=timeout)
    return p, time.monotonic() - t


def check_run(p, out, what):
    """The run exited 1 with the 3 bad files as its failures; a list of problems."""
    problems = []
    if p.returncode != 1:
        tail = (p.stderr.strip().splitlines() or [""])[-1]
        problems.append(f"{what} exited {p.returncode} (expected 1): {tail}")
    summ = [r for r in manifest(out) if r.get("type") == "summary"]
    failed = sorted(f["input"] for f in summ[-1]["failures"]) if summ else None
    if failed != sorted(BAD):
        problems.append(f"{what} failures {failed}, expected {sorted(BAD)}")
    return problems


def kill_and_resume(src, out, jobs, ngood, rng, timeout):
    """One cycle; returns (description, problems, stats)."""
    shutil.rmtree(out, ignore_errors=True)
    share = rng.uniform(0.0, 0.95)
    target = int(share * ngood)
    delay = rng.uniform(0.0, 0.1)
    proc = subprocess.Popen(batch_cmd(src, out, jobs), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    pgid = proc.pid
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if len(file_records(out)) >= target:
                time.sleep(delay)
                break
            time.sleep(0.02)
    finally:
        with _suppress():
            os.killpg(pgid, signal.SIGKILL)
        proc.wait()
    finished_first = proc.returncode is not None and proc.returncode >= 0
    while group_alive(pgid):                  # the workers die on their own (SIGKILL too)
        if time.monotonic() > deadline:
            raise StressError(f"processes of group {pgid} still alive after the kill")
        time.sleep(0.02)
    before = file_records(out)
    left = partials(out)
    stats = {}
    for k, r in before.items():
        try:
            st = os.stat(os.path.join(out, r["output"]))
            stats[k] = (st.st_ino, st.st_mtime_ns)
        except OSError:
            stats[k] = None
    p, _ = run_to_end(src, out, jobs, timeout)
    problems = check_run(p, out, "resume")
    recs = manifest(out)
    start = max((i for i, r in enumerate(recs) if r.get("type") == "run"), default=0)
    again = sorted({r["input"] for r in recs[start:] if r.get("type") == "file"} & set(before))
    for k, st in stats.items():
        r = before[k]
        try:
            now = os.stat(os.path.join(out, r["output"]))
            now = (now.st_ino, now.st_mtime_ns)
        except OSError:
            now = None
        if now != st and k not in again:
            again.append(k)
    if again:
        problems.append(f"{len(again)} finished output(s) written again: {again[:3]}")
    after = partials(out)
    if after:
        problems.append(f"{len(after)} partial file(s) left after the resume: {after[:3]}")
    desc = (f"killed at {len(before)}/{ngood} finished (target {target}, +{delay:.2f} s)"
            + (", run had already ended" if finished_first else "")
            + f", {len(left)} partial(s) after the kill")
    return desc, problems, {"left_after_kill": len(left), "left_after_resume": len(after),
                            "reencoded": len(again), "finished_before": len(before)}


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="batch_stress.py",
        description="kill -9 / resume stress check of 'pacodec batch': no partial file left, "
                    "nothing finished encoded again, the tree identical to an uninterrupted "
                    "run's.")
    ap.add_argument("--work", required=True, help="scratch directory (IN, REF, OUT go there)")
    ap.add_argument("--cycles", type=int, default=50, help="kill/resume cycles (default 50)")
    ap.add_argument("--files", type=int, default=150, help="good files in the tree (default 150)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the tree and the kill points")
    ap.add_argument("--timeout", type=float, default=900,
                    help="seconds allowed for one run (default 900)")
    ap.add_argument("--keep-going", action="store_true",
                    help="run every cycle even after one failed")
    a = ap.parse_args(argv)
    if a.cycles < 1 or a.files < 1 or a.jobs < 1:
        ap.error("--cycles, --files and -j must be at least 1")
    try:
        return _run(a)
    except StressError as e:
        print(f"batch_stress: error: {e}", file=sys.stderr)
        return 2
    except (OSError, subprocess.SubprocessError, ImportError, RuntimeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"batch_stress: error: {type(e).__name__}: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("batch_stress: interrupted", file=sys.stderr)
        return 130


def _run(a):
    work = os.path.abspath(a.work)
    os.makedirs(work, exist_ok=True)
    src, ref, out = (os.path.join(work, d) for d in ("in", "ref", "out"))
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(ref, ignore_errors=True)
    build_tree(src, a.files, a.seed)
    p, secs = run_to_end(src, ref, a.jobs, a.timeout)
    problems = check_run(p, ref, "reference run")
    if problems:
        raise StressError(problems[0])
    want = pac_tree(ref)
    if len(want) != a.files:
        raise StressError(f"the reference run wrote {len(want)} outputs for {a.files} files")
    import pacodec
    print(f"pacodec {pacodec.__version__} from {os.path.dirname(pacodec.__file__)}")
    print(f"tree: {a.files} good + {len(BAD)} bad files; reference run -j {a.jobs}: "
          f"{secs:.1f} s")
    rng = random.Random(a.seed)
    totals = {"left_after_kill": 0, "left_after_resume": 0, "reencoded": 0, "finished_before": 0}
    failed = bad_trees = 0
    t0 = time.monotonic()
    for c in range(1, a.cycles + 1):
        desc, problems, st = kill_and_resume(src, out, a.jobs, a.files, rng, a.timeout)
        for k in totals:
            totals[k] += st[k]
        if pac_tree(out) != want:
            bad_trees += 1
            problems.append("the tree differs from the uninterrupted run's")
        status = "ok" if not problems else "FAIL: " + "; ".join(problems)
        print(f"cycle {c:3d}: {desc}: {status}", flush=True)
        if problems:
            failed += 1
            if not a.keep_going:
                break
    print(f"{c} cycles in {time.monotonic() - t0:.0f} s: {failed} failed; partial files left "
          f"after a resume: {totals['left_after_resume']} (after the kills: "
          f"{totals['left_after_kill']}); finished outputs encoded again: "
          f"{totals['reencoded']} (of {totals['finished_before']} finished before the kills); "
          f"trees differing from the uninterrupted run: {bad_trees}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
