#!/usr/bin/env python3
"""Latency benchmark of the real-time commands (a benchmark: it prints, it asserts nothing).

Runs against a private JACK server with the dummy driver (48 kHz, ``--period`` frames per period,
default 64 = 1.33 ms; no sound card), feeding a chirp marker + a recording into a virtual
microphone and recording the virtual speaker (see tests/jackserver.py):

* ``live``: ``pacodec live`` mic -> speaker in its default, low-delay mode (target <= 10 ms);
  ``live-normal``: with ``--normal-delay`` (target <= 80 ms);
* ``sr``: ``pacodec send`` -> ``pacodec receive`` on 127.0.0.1, mic -> speaker, default
  jitter buffer, no loss, low-delay mode (target <= 20 ms); ``sr-normal``: ``--normal-delay``;
* CPU: the codec thread's time per second of audio (pacodec's own counter) and the whole
  process's CPU time (user + system, start-up and warm-up included) per second it ran.

Latency is measured twice per run, at a marker before the music and at one after it (the
pipelines adapt their buffers in between).  Xruns are counted from the server's reports while
the signal plays; a loaded machine produces many, and each may add latency.  ``--blocksize N``
passes ``--blocksize N`` to the pacodec commands (default 0: the device's own, the period).

    python tools/latency.py [--runs N] [--period FRAMES] [--json OUT.json]
                            [--only live,live-normal,sr,sr-normal] [--blocksize N]
                            [--frames-per-packet N]

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

#: name -> (label, scenario, target ms or None)
SCENARIOS = {
    "live": ("pacodec live (low delay)", dict(kind="live", low_delay=None), 10.0),
    "live-normal": ("pacodec live --normal-delay", dict(kind="live", low_delay=False), 80.0),
    "sr": ("send -> receive (low delay)", dict(kind="sr", low_delay=None), 20.0),
    "sr-normal": ("send -> receive --normal-delay", dict(kind="sr", low_delay=False), None),
}
DEFAULT_PERIOD = 64


def run_one(name, tmp, period=DEFAULT_PERIOD, blocksize=0, frames_per_packet=1):
    _, kw, _ = SCENARIOS[name]
    kw = dict(kw)
    kind = kw.pop("kind")
    extra = ("--blocksize", str(blocksize)) if blocksize else ()
    if kind == "live":
        r = js.run_live(tmp, period=period, extra_args=extra, **kw)
        stats = r.get("stats") or {}
        cpu_codec = stats.get("cpu_per_second")
        cpu_proc = (r["cpu_seconds"] / stats["elapsed"]
                    if r.get("cpu_seconds") and stats.get("elapsed") else None)
        extra = {"underruns": stats.get("underruns"), "reported_ms": stats.get("latency_ms"),
                 "frame_size": stats.get("frame_size")}
    else:
        tx_extra = extra + (("--frames-per-packet", str(frames_per_packet))
                            if frames_per_packet > 1 else ())
        r = js.run_send_receive(tmp, source="mic", receiver_output="device", period=period,
                                tx_extra=tx_extra, rx_extra=extra, **kw)
        tx, rx = r.get("tx") or {}, r.get("rx") or {}
        cpu_codec = (tx.get("cpu_per_second") or 0) + (rx.get("cpu_per_second") or 0)
        cpu_proc = None
        if r.get("tx_cpu_seconds") and tx.get("elapsed") and r.get("rx_cpu_seconds"):
            cpu_proc = r["tx_cpu_seconds"] / tx["elapsed"] + r["rx_cpu_seconds"] / rx["elapsed"]
        extra = {"buffer_target_ms": rx.get("target_ms"), "jitter_ms": rx.get("jitter_ms"),
                 "concealed": rx.get("concealed"), "lost": rx.get("lost"),
                 "underruns": rx.get("underruns")}
    return {"latency_ms": r.get("latency_ms"), "end_latency_ms": r.get("end_latency_ms"),
            "xruns": r.get("xruns"), "cor_median": r.get("cor_median"),
            "cpu_codec": cpu_codec, "cpu_process": cpu_proc, **extra}


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def _period(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 16 <= v <= 4096 or v & (v - 1):
        raise argparse.ArgumentTypeError(f"must be a power of two in 16..4096, got {v}")
    return v


def _whole(lo, hi=None):
    """An argparse type: a whole number in lo..hi (hi: no upper limit when None)."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if v < lo or (hi is not None and v > hi):
            if lo == 0 and hi is None:
                raise argparse.ArgumentTypeError(f"must not be negative, got {v}")
            span = f"at least {lo}" if hi is None else f"in {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"must be {span}, got {v}")
        return v
    return parse


def _scenarios(text):
    names = [n for n in text.replace(" ", "").split(",") if n]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario(s) {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(SCENARIOS)}")
    return names


def build_parser():
    ap = argparse.ArgumentParser(prog="python tools/latency.py",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=_whole(1), default=3, help="runs per scenario (default 3)")
    ap.add_argument("--only", type=_scenarios, default=list(SCENARIOS),
                    help=f"comma-separated scenarios from {','.join(SCENARIOS)} (default all)")
    ap.add_argument("--period", type=_period, default=DEFAULT_PERIOD,
                    help=f"JACK period in frames at {js.RATE} Hz (default {DEFAULT_PERIOD})")
    ap.add_argument("--blocksize", type=_whole(0), default=0,
                    help="--blocksize for the pacodec commands (default 0: the device's)")
    ap.add_argument("--frames-per-packet", type=_whole(1, 8), default=1, metavar="N",
                    help="send -> receive: frames per UDP packet (`send --frames-per-packet`, "
                         "default 1)")
    ap.add_argument("--json", metavar="PATH", help="write every run's figures here")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.runs < 1:
        print("latency.py: --runs must be at least 1", file=sys.stderr)
        return 2
    if not 1 <= args.frames_per_packet <= 8:
        print("latency.py: --frames-per-packet must be 1 to 8", file=sys.stderr)
        return 2
    ok, why = js.jack_available()
    if not ok:
        print(f"latency.py: {why}", file=sys.stderr)
        return 1
    results = {}
    with tempfile.TemporaryDirectory(prefix="pacodec-latency-") as tmp:
        for name in args.only:
            runs = []
            for i in range(args.runs):
                d = Path(tmp) / f"{name}-{i}"
                d.mkdir()
                try:
                    runs.append(run_one(name, d, period=args.period, blocksize=args.blocksize,
                                        frames_per_packet=args.frames_per_packet))
                except Exception as exc:   # a benchmark reports, it does not stop
                    runs.append({"error": repr(exc)})
                print(f"{name} run {i + 1}: {json.dumps(runs[-1])}", file=sys.stderr)
            results[name] = runs
    print(f"\nJACK dummy driver, {js.RATE} Hz, {args.period}-frame periods "
          f"({1000 * args.period / js.RATE:.2f} ms); median of {args.runs} runs"
          + (f"; {args.frames_per_packet} frames per packet" if args.frames_per_packet > 1 else ""))
    print(f"{'scenario':32} {'start ms':>9} {'end ms':>8} {'target':>7} {'xruns':>6} "
          f"{'codec CPU':>9} {'proc CPU':>9} {'corr':>6}")
    for name, runs in results.items():
        label, _, target = SCENARIOS[name]
        good = [r for r in runs if "error" not in r]

        def med(key):
            vals = [r[key] for r in good if r.get(key) is not None]
            return statistics.median(vals) if vals else None
        print(f"{label:32} {fmt(med('latency_ms')):>9} {fmt(med('end_latency_ms')):>8} "
              f"{'<=' + format(target, '.0f') if target else '-':>7} {fmt(med('xruns'), '.0f'):>6} "
              f"{fmt(med('cpu_codec'), '.1%'):>9} {fmt(med('cpu_process'), '.1%'):>9} "
              f"{fmt(med('cor_median'), '.3f'):>6}")
    if args.json:
        Path(args.json).write_text(json.dumps({"period": args.period, "rate": js.RATE,
                                               "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
