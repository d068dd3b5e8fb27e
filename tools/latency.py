#!/usr/bin/env python3
"""Latency benchmark of the real-time commands (a benchmark: it prints, it asserts nothing).

Runs against a private JACK server with the dummy driver (48 kHz, 256-frame periods, no sound
card), feeding a chirp marker + a recording into a virtual microphone and recording the
virtual speaker (see tests/jackserver.py):

* ``pacodec live`` mic -> speaker round trip, normal and ``--low-delay``
  (targets: <= 80 ms normal, <= 30 ms low-delay);
* ``pacodec send`` -> ``pacodec receive`` on 127.0.0.1, mic -> speaker, including the jitter
  buffer, normal and low-delay;
* CPU: the codec thread's time per second of audio (pacodec's own counter) and the whole
  process's CPU time (user + system, start-up and warm-up included) per second it ran.

Latency is measured twice per run, at a marker before the music and at one after it (the
pipelines adapt their buffers in between).  Xruns are counted from the server's reports while
the signal plays; a loaded machine produces many, and each may add latency.

    python tools/latency.py [--runs N] [--json OUT.json] [--only live,live-ld,sr,sr-ld]

Needs: apt packages jackd2 libportaudio2, pip package JACK-Client.
"""
import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import jackserver as js  # noqa: E402

SCENARIOS = {
    "live": ("pacodec live", dict(kind="live", low_delay=False), 80.0),
    "live-ld": ("pacodec live --low-delay", dict(kind="live", low_delay=True), 30.0),
    "sr": ("send -> receive", dict(kind="sr", low_delay=False), None),
    "sr-ld": ("send -> receive --low-delay", dict(kind="sr", low_delay=True), None),
}


def run_one(name, tmp):
    _, kw, _ = SCENARIOS[name]
    kw = dict(kw)
    kind = kw.pop("kind")
    if kind == "live":
        r = js.run_live(tmp, **kw)
        stats = r.get("stats") or {}
        cpu_codec = stats.get("cpu_per_second")
        cpu_proc = (r["cpu_seconds"] / stats["elapsed"]
                    if r.get("cpu_seconds") and stats.get("elapsed") else None)
        extra = {"underruns": stats.get("underruns"), "reported_ms": stats.get("latency_ms")}
    else:
        r = js.run_send_receive(tmp, source="mic", receiver_output="device", **kw)
        tx, rx = r.get("tx") or {}, r.get("rx") or {}
        cpu_codec = (tx.get("cpu_per_second") or 0) + (rx.get("cpu_per_second") or 0)
        cpu_proc = None
        if r.get("tx_cpu_seconds") and tx.get("elapsed") and r.get("rx_cpu_seconds"):
            cpu_proc = r["tx_cpu_seconds"] / tx["elapsed"] + r["rx_cpu_seconds"] / rx["elapsed"]
        extra = {"buffer_target_ms": rx.get("target_ms"), "jitter_ms": rx.get("jitter_ms"),
                 "concealed": rx.get("concealed"), "lost": rx.get("lost")}
    return {"latency_ms": r.get("latency_ms"), "end_latency_ms": r.get("end_latency_ms"),
            "xruns": r.get("xruns"), "cor_median": r.get("cor_median"),
            "cpu_codec": cpu_codec, "cpu_process": cpu_proc, **extra}


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    ok, why = js.jack_available()
    if not ok:
        print(f"latency.py: {why}", file=sys.stderr)
        return 1
    results = {}
    with tempfile.TemporaryDirectory(prefix="pacodec-latency-") as tmp:
        for name in args.only.split(","):
            runs = []
            for i in range(args.runs):
                d = Path(tmp) / f"{name}-{i}"
                d.mkdir()
                try:
                    runs.append(run_one(name, d))
                except Exception as exc:   # a benchmark reports, it does not stop
                    runs.append({"error": repr(exc)})
                print(f"{name} run {i + 1}: {json.dumps(runs[-1])}", file=sys.stderr)
            results[name] = runs
    print(f"\nJACK dummy driver, {js.RATE} Hz, {js.PERIOD}-frame periods "
          f"({1000 * js.PERIOD / js.RATE:.2f} ms); median of {args.runs} runs")
    print(f"{'scenario':30} {'start ms':>9} {'end ms':>8} {'target':>7} {'xruns':>6} "
          f"{'codec CPU':>9} {'proc CPU':>9} {'corr':>6}")
    for name, runs in results.items():
        label, _, target = SCENARIOS[name]
        good = [r for r in runs if "error" not in r]

        def med(key):
            vals = [r[key] for r in good if r.get(key) is not None]
            return statistics.median(vals) if vals else None
        print(f"{label:30} {fmt(med('latency_ms')):>9} {fmt(med('end_latency_ms')):>8} "
              f"{'<=' + format(target, '.0f') if target else '-':>7} {fmt(med('xruns'), '.0f'):>6} "
              f"{fmt(med('cpu_codec'), '.1%'):>9} {fmt(med('cpu_process'), '.1%'):>9} "
              f"{fmt(med('cor_median'), '.3f'):>6}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
