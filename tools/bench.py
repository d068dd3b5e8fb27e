#!/usr/bin/env python3
"""Speed and memory benchmark: pacodec against oggenc, LAME, opusenc and ffmpeg's AAC.

    python tools/bench.py                       # 3-4 min corpus file, 3 runs, Markdown on stdout
    python tools/bench.py --runs 5 --json bench.json
    python tools/bench.py --rss-scaling         # also 1-min vs 60-min peak RSS (writes ~1.3 GB)
    python tools/bench.py --input song.flac     # your own long file instead of the corpus

What it measures
  * Whole-process wall seconds (median of --runs, after one untimed warm-up run per command,
    runs interleaved across codecs), x real time, and peak RSS of every encode and decode,
    on a 3-4 minute 44.1 kHz stereo file made by looping the corpus' 44.1 kHz stereo clips.
    Peak RSS comes from GNU time (/usr/bin/time), see tools/_benchutil.py for why not wait4.
  * pacodec start-up: `--help`, `--version`, a 1-second file, cold (fresh, empty
    NUMBA_CACHE_DIR, so every kernel compiles) and warm (the normal cache, already filled).
  * In-process throughput of pacodec.Encoder / pacodec.Decoder on the long file after
    warm-up (no interpreter start, no import, no JIT).
  * Per-frame time of the streaming path: Encoder.encode on one hop of samples plus
    Decoder.decode_packet on the frames it returns, p50/p99, normal and low-delay modes.
  * With --rss-scaling: peak RSS of pacodec encode/decode for a 1-minute vs a 60-minute file.

Timings are printed, never asserted; PASS/FAIL lines compare against the targets of the speed
issue. A missing peer shows as n/a; a missing pacodec is reported loudly and its rows are n/a.
Generated inputs are cached in --workdir (default /tmp/pacodec-bench).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _benchutil as bu  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- codecs

class Codec:
    def __init__(self, name, ext, tools, enc, dec, enc_text, dec_text):
        self.name, self.ext, self.tools = name, ext, tools
        self._enc, self._dec = enc, dec
        self.enc_text, self.dec_text = enc_text, dec_text

    def enc(self, src, dst, kbps, sr):
        return self._enc(str(src), str(dst), kbps, sr)

    def dec(self, src, dst, kbps, sr):
        return self._dec(str(src), str(dst), kbps, sr)

    def missing(self):
        return [t for t in self.tools if shutil.which(t) is None and not os.access(t, os.X_OK)]


FF = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]

PEERS = [
    Codec("oggenc", "ogg", ["oggenc", "oggdec"],
          lambda i, o, b, sr: ["oggenc", "-Q", "-b", str(b), "-o", o, i],
          lambda i, o, b, sr: ["oggdec", "-Q", "-o", o, i],
          "oggenc -Q -b 128 -o OUT.ogg IN.wav", "oggdec -Q -o OUT.wav IN.ogg"),
    Codec("lame", "mp3", ["lame"],
          lambda i, o, b, sr: ["lame", "--quiet", "--abr", str(b), i, o],
          lambda i, o, b, sr: ["lame", "--quiet", "--decode", i, o],
          "lame --quiet --abr 128 IN.wav OUT.mp3", "lame --quiet --decode IN.mp3 OUT.wav"),
    Codec("opusenc", "opus", ["opusenc", "opusdec"],
          lambda i, o, b, sr: ["opusenc", "--quiet", "--bitrate", str(b), i, o],
          lambda i, o, b, sr: ["opusdec", "--quiet", "--rate", str(sr), i, o],
          "opusenc --quiet --bitrate 128 IN.wav OUT.opus",
          "opusdec --quiet --rate 44100 IN.opus OUT.wav"),
    Codec("ffmpeg-aac", "m4a", ["ffmpeg"],
          lambda i, o, b, sr: FF + ["-i", i, "-c:a", "aac", "-b:a", f"{b}k", o],
          lambda i, o, b, sr: FF + ["-i", i, o],
          "ffmpeg -i IN.wav -c:a aac -b:a 128k OUT.m4a", "ffmpeg -i IN.m4a OUT.wav"),
]


def pacodec_codec(cmd: list[str]) -> Codec:
    return Codec("pacodec", "pac", [cmd[0]],
                 lambda i, o, b, sr: cmd + ["encode", i, "-o", o, "-b", str(b), "--force"],
                 lambda i, o, b, sr: cmd + ["decode", i, "-o", o, "--force"],
                 "pacodec encode IN.wav -o OUT.pac -b 128 --force",
                 "pacodec decode IN.pac -o OUT.wav --force")


def find_pacodec(opt: str | None) -> tuple[list[str] | None, str]:
    """The pacodec command line, or (None, reason)."""
    if opt:
        cmd = shlex.split(opt)
    else:
        beside = Path(sys.executable).parent / "pacodec"
        exe = str(beside) if os.access(beside, os.X_OK) else shutil.which("pacodec")
        if exe is None:
            return None, ("no `pacodec` executable beside this Python or on PATH "
                          "(pip install -e . ; needs [project.scripts] pacodec = ...)")
        cmd = [exe]
    try:
        p = subprocess.run(cmd + ["--version"], capture_output=True, timeout=300,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"`{' '.join(cmd)} --version` failed: {exc}"
    if p.returncode != 0:
        err = (p.stderr or p.stdout).decode("utf-8", "replace").strip().splitlines()
        return None, f"`{' '.join(cmd)} --version` exited {p.returncode}: {err[-1] if err else ''}"
    return cmd, (p.stdout or p.stderr).decode().strip()


def pacodec_python(cmd: list[str]) -> str:
    """The interpreter that runs the pacodec script (its shebang), else this one."""
    try:
        first = Path(cmd[0]).read_bytes()[:200].split(b"\n")[0]
        if first.startswith(b"#!"):
            interp = first[2:].decode().strip().split()[0]
            if os.access(interp, os.X_OK):
                return interp
    except OSError:
        pass
    return sys.executable


def source_stamp(pkg_dir: str | None):
    """Newest mtime of the package's .py files (numba's cache is keyed on them)."""
    if not pkg_dir:
        return None
    return max((p.stat().st_mtime for p in Path(pkg_dir).rglob("*.py")), default=None)


def numba_cache_files(pkg_dir: str | None) -> int | None:
    if not pkg_dir:
        return None
    roots = [Path(pkg_dir)]
    if os.environ.get("NUMBA_CACHE_DIR"):
        roots.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    n = 0
    for r in roots:
        if r.exists():
            n += sum(1 for p in r.rglob("*") if p.suffix in (".nbi", ".nbc"))
    return n


# --------------------------------------------------------------------------- whole process

def summarize(runs: list[bu.Run], seconds: float) -> dict:
    ok = [r for r in runs if r.ok]
    if not ok:
        return {"ok": False, "error": runs[-1].stderr if runs else "not run",
                "returncode": runs[-1].returncode if runs else None}
    wall = bu.median([r.wall for r in ok])
    return {"ok": True, "wall_s": wall, "xrt": seconds / wall if wall else None,
            "rss_mb": max(r.rss_mb for r in ok if r.rss_mb is not None)
            if any(r.rss_mb is not None for r in ok) else None,
            "cpu_s": bu.median([(r.user or 0) + (r.sys or 0) for r in ok]),
            "walls": [round(r.wall, 4) for r in ok], "runs": len(ok),
            "rss_method": ok[0].rss_method}


def bench_whole_process(codecs: list[Codec], src: Path, outdir: Path, args, seconds, sr) -> dict:
    res = {}
    enc_runs = {c.name: [] for c in codecs}
    dec_runs = {c.name: [] for c in codecs}
    out = {c.name: outdir / f"long.{c.ext}" for c in codecs}
    wav = {c.name: outdir / f"long.{c.name}.wav" for c in codecs}
    alive = list(codecs)
    # one warm-up (untimed) per command: page cache, numba cache, first-run effects
    for c in list(alive):
        log(f"warm-up {c.name}")
        r = bu.run_measured(c.enc(src, out[c.name], args.bitrate, sr), timeout=args.timeout)
        if r.ok:
            r = bu.run_measured(c.dec(out[c.name], wav[c.name], args.bitrate, sr), timeout=args.timeout)
        if not r.ok:
            log(f"  {c.name} failed (rc={r.returncode}): {r.stderr}")
            res[c.name] = {"encode": summarize([r], seconds), "decode": {"ok": False}}
            alive.remove(c)
    for i in range(args.runs):
        for c in alive:
            r = bu.run_measured(c.enc(src, out[c.name], args.bitrate, sr), timeout=args.timeout)
            enc_runs[c.name].append(r)
            log(f"run {i + 1}/{args.runs} encode {c.name}: {r.wall:.3f} s, "
                f"{bu.fmt(r.rss_mb, '.1f')} MB" + ("" if r.ok else f" FAILED rc={r.returncode}"))
    for i in range(args.runs):
        for c in alive:
            r = bu.run_measured(c.dec(out[c.name], wav[c.name], args.bitrate, sr), timeout=args.timeout)
            dec_runs[c.name].append(r)
            log(f"run {i + 1}/{args.runs} decode {c.name}: {r.wall:.3f} s, "
                f"{bu.fmt(r.rss_mb, '.1f')} MB" + ("" if r.ok else f" FAILED rc={r.returncode}"))
    for c in alive:
        e = summarize(enc_runs[c.name], seconds)
        if e.get("ok") and out[c.name].exists():
            e["kbps"] = out[c.name].stat().st_size * 8 / seconds / 1000
        res[c.name] = {"encode": e, "decode": summarize(dec_runs[c.name], seconds)}
    for c in codecs:
        try:
            wav[c.name].unlink()
        except OSError:
            pass
    return res


# --------------------------------------------------------------------------- pacodec start-up

def bench_startup(pc: Codec, cmd: list[str], inputs: dict, outdir: Path, args, sr) -> dict:
    res = {}
    n = max(5, args.runs)
    for flag in ("--help", "--version"):
        bu.run_measured(cmd + [flag])  # warm-up
        runs = [bu.run_measured(cmd + [flag]) for _ in range(n)]
        res[flag] = summarize(runs, 0.0)
        log(f"pacodec {flag}: {bu.fmt(res[flag].get('wall_s'), '.3f')} s")
    one = inputs["1s"]
    pac1, wav1 = outdir / "one.pac", outdir / "one.wav"
    bu.run_measured(pc.enc(one, pac1, args.bitrate, sr))
    bu.run_measured(pc.dec(pac1, wav1, args.bitrate, sr))
    res["encode_1s_warm"] = summarize(
        [bu.run_measured(pc.enc(one, pac1, args.bitrate, sr)) for _ in range(n)], 1.0)
    res["decode_1s_warm"] = summarize(
        [bu.run_measured(pc.dec(pac1, wav1, args.bitrate, sr)) for _ in range(n)], 1.0)
    log(f"pacodec 1-s warm: encode {bu.fmt(res['encode_1s_warm'].get('wall_s'), '.3f')} s, "
        f"decode {bu.fmt(res['decode_1s_warm'].get('wall_s'), '.3f')} s")
    if args.no_cold:
        return res
    # cold = first run with an empty numba cache: a fresh NUMBA_CACHE_DIR per measurement
    # (the real cache in the package's __pycache__ is left alone). .pyc files stay warm.
    long_pac = outdir / "long.pac"
    jobs = [("encode_1s_cold", pc.enc(one, outdir / "cold1.pac", args.bitrate, sr), 1.0),
            ("decode_1s_cold", pc.dec(pac1, outdir / "cold1.wav", args.bitrate, sr), 1.0)]
    if long_pac.exists():
        secs = bu.duration(inputs["long"])
        jobs += [("encode_long_cold", pc.enc(inputs["long"], outdir / "coldL.pac", args.bitrate, sr), secs),
                 ("decode_long_cold", pc.dec(long_pac, outdir / "coldL.wav", args.bitrate, sr), secs)]
    for key, c, secs in jobs:
        cache = Path(tempfile.mkdtemp(prefix="numba-cold-", dir=outdir))
        env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
        r = bu.run_measured(c, env=env, timeout=args.timeout)
        res[key] = summarize([r], secs)
        res[key]["numba_cache_files_written"] = sum(
            1 for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc"))
        shutil.rmtree(cache, ignore_errors=True)
        log(f"pacodec {key}: {r.wall:.3f} s" + ("" if r.ok else f" FAILED: {r.stderr}"))
    for f in ("cold1.wav", "coldL.wav"):
        try:
            (outdir / f).unlink()
        except OSError:
            pass
    return res


def bench_rss(pc: Codec, files: dict, outdir: Path, args, sr) -> dict:
    res = {}
    for key, src in files.items():
        secs = bu.duration(src)
        pac, wav = outdir / f"rss-{key}.pac", outdir / f"rss-{key}.wav"
        e = bu.run_measured(pc.enc(src, pac, args.bitrate, sr), timeout=args.timeout)
        d = bu.run_measured(pc.dec(pac, wav, args.bitrate, sr), timeout=args.timeout) if e.ok else e
        res[key] = {"seconds": secs, "encode": summarize([e], secs), "decode": summarize([d], secs)}
        log(f"RSS {key}: encode {bu.fmt(e.rss_mb, '.1f')} MB ({e.wall:.1f} s), "
            f"decode {bu.fmt(d.rss_mb, '.1f')} MB ({d.wall:.1f} s)")
        try:
            wav.unlink()
        except OSError:
            pass
    return res


# --------------------------------------------------------------------------- in-process worker

def worker(args) -> dict:
    """Runs in a child interpreter (a pacodec crash cannot take the report down with it)."""
    import soundfile as sf
    import pacodec

    data, sr = sf.read(args.worker_input, dtype="float32", always_2d=True)
    if args.latency_seconds:
        lat_data = data[: int(args.latency_seconds * sr)]
    else:
        lat_data = data
    ch = data.shape[1]
    out = {"pacodec_version": getattr(pacodec, "__version__", None), "seconds": len(data) / sr}

    def encode_all(x, block):
        enc = pacodec.Encoder(sr, ch, bitrate=args.bitrate, total_frames=len(x))
        parts = [enc.header()]
        for i in range(0, len(x), block):
            parts += enc.encode(x[i:i + block])
        parts += enc.flush()
        return b"".join(parts)

    def decode_all(blob, chunk=1 << 16):
        dec = pacodec.Decoder()
        pcm = [dec.feed(blob[i:i + chunk]) for i in range(0, len(blob), chunk)]
        pcm.append(dec.finish())
        return sum(len(p) for p in pcm)

    if "throughput" in args.worker:
        try:
            decode_all(encode_all(data[: 2 * sr], args.block))  # warm-up: JIT / cache load
            t0 = time.perf_counter()
            blob = encode_all(data, args.block)
            t1 = time.perf_counter()
            n = decode_all(blob)
            t2 = time.perf_counter()
            secs = len(data) / sr
            out["throughput"] = {"ok": True, "block": args.block, "encode_s": t1 - t0,
                                 "decode_s": t2 - t1, "encode_xrt": secs / (t1 - t0),
                                 "decode_xrt": secs / (t2 - t1),
                                 "kbps": len(blob) * 8 / secs / 1000,
                                 "decoded_frames": n, "input_frames": len(data)}
        except Exception as exc:  # report, don't die
            out["throughput"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    if "latency" in args.worker:
        out["latency"] = {}
        for mode, kw in (("normal", {}), ("low_delay", {"low_delay": True})):
            try:
                out["latency"][mode] = frame_latency(pacodec, lat_data, sr, ch, args.bitrate, kw)
            except Exception as exc:
                out["latency"][mode] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return out


def frame_latency(pacodec, data, sr, ch, kbps, kw) -> dict:
    def run(x, timed):
        enc = pacodec.Encoder(sr, ch, bitrate=kbps, **kw)
        dec = pacodec.Decoder()
        hop = enc.frame_size
        te, td, tt = [], [], []
        produced = decoded = 0
        pc = time.perf_counter
        for i in range(0, len(x) - hop + 1, hop):
            blk = x[i:i + hop]
            t0 = pc()
            pk = enc.encode(blk)
            t1 = pc()
            for p in pk:
                y = dec.decode_packet(p)
                decoded += len(y)
            t2 = pc()
            produced += len(pk)
            if timed:
                te.append(t1 - t0)
                td.append(t2 - t1)
                tt.append(t2 - t0)
        return enc, te, td, tt, produced, decoded

    run(data[: 10 * sr], False)  # warm-up (JIT / cache load) on its own encoder/decoder
    enc, te, td, tt, produced, decoded = run(data, True)
    hop = enc.frame_size
    frame_s = hop / sr
    st = lambda xs, q: bu.percentile(xs, q)  # noqa: E731
    return {"ok": True, "frame_size": hop, "frame_ms": frame_s * 1e3,
            "delay_samples": getattr(enc, "delay", None), "calls": len(tt),
            "frames_out": produced, "decoded_samples": decoded,
            "encode_p50_ms": st(te, 50) * 1e3, "encode_p99_ms": st(te, 99) * 1e3,
            "decode_p50_ms": st(td, 50) * 1e3, "decode_p99_ms": st(td, 99) * 1e3,
            "total_p50_ms": st(tt, 50) * 1e3, "total_p99_ms": st(tt, 99) * 1e3,
            "total_max_ms": max(tt) * 1e3,
            "speedup_p50": frame_s / st(tt, 50), "speedup_p99": frame_s / st(tt, 99)}


def run_worker(py: str, what: str, src: Path, args) -> dict:
    cmd = [py, str(Path(__file__).resolve()), "--worker", what, "--worker-input", str(src),
           "--bitrate", str(args.bitrate), "--block", str(args.block)]
    if args.latency_seconds:
        cmd += ["--latency-seconds", str(args.latency_seconds)]
    log(f"in-process {what}: {' '.join(cmd)}")
    p = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=args.timeout)
    lines = p.stdout.decode("utf-8", "replace").strip().splitlines()
    if p.returncode != 0 or not lines:
        err = p.stderr.decode("utf-8", "replace").strip().splitlines()
        return {"ok": False, "error": f"worker exited {p.returncode}: " + " | ".join(err[-3:])}
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- report

def target(name, value, limit, ok, unit="s"):
    status = "n/a" if ok is None else ("PASS" if ok else "FAIL")
    return {"target": name, "value": value, "limit": limit, "unit": unit, "status": status}


def compute_targets(R) -> list[dict]:
    T = []
    wp = R.get("whole_process", {})
    pe, pd = wp.get("pacodec", {}).get("encode", {}), wp.get("pacodec", {}).get("decode", {})
    oe, od = wp.get("oggenc", {}).get("encode", {}), wp.get("oggenc", {}).get("decode", {})

    def both(a, b, f):
        return f(a["wall_s"], b["wall_s"]) if a.get("ok") and b.get("ok") else None

    T.append(target("encode wall <= oggenc wall (long file)", pe.get("wall_s"),
                    oe.get("wall_s"), both(pe, oe, lambda a, b: a <= b)))
    T.append(target("decode wall <= 2 x oggdec wall (long file)", pd.get("wall_s"),
                    2 * od["wall_s"] if od.get("ok") else None, both(pd, od, lambda a, b: a <= 2 * b)))
    su = R.get("startup", {})
    e1 = su.get("encode_1s_warm", {})
    T.append(target("warm 1-s file encode < 1.5 s", e1.get("wall_s"), 1.5,
                    e1["wall_s"] < 1.5 if e1.get("ok") else None))
    for flag in ("--help", "--version"):
        h = su.get(flag, {})
        T.append(target(f"`pacodec {flag}` < 0.3 s", h.get("wall_s"), 0.3,
                        h["wall_s"] < 0.3 if h.get("ok") else None))
    rs = R.get("rss_scaling")
    if rs:
        for step in ("encode", "decode"):
            a, b = rs.get("1min", {}).get(step, {}), rs.get("60min", {}).get(step, {})
            ok = None
            val = None
            if a.get("rss_mb") and b.get("rss_mb"):
                val = b["rss_mb"] / a["rss_mb"] - 1
                ok = abs(val) <= 0.10
            T.append(target(f"{step} peak RSS 60-min vs 1-min within 10 %",
                            None if val is None else val * 100, 10, ok, unit="%"))
            m = max([x for x in (a.get("rss_mb"), b.get("rss_mb")) if x is not None], default=None)
            T.append(target(f"{step} peak RSS < 200 MB (1-min and 60-min)", m, 200,
                            None if m is None else m < 200, unit="MB"))
    lat = R.get("inprocess", {}).get("latency", {})
    for mode in ("normal", "low_delay"):
        m = lat.get(mode, {})
        for q in ("p50", "p99"):
            ok = m.get(f"speedup_{q}") >= 10 if m.get("ok") else None
            T.append(target(f"streaming enc+dec per frame {q} >= 10x faster than frame ({mode})",
                            m.get(f"total_{q}_ms"),
                            m["frame_ms"] / 10 if m.get("ok") else None, ok, unit="ms"))
    return T


def render(R) -> str:
    f = bu.fmt
    meta = R["meta"]
    L = []
    secs = R["inputs"]["long_seconds"]
    L.append(f"### Speed: {secs:.0f} s of {R['inputs']['samplerate'] / 1000:g} kHz "
             f"{ {1: 'mono', 2: 'stereo'}.get(R['inputs']['channels'], str(R['inputs']['channels']) + '-ch')} "
             f"({R['inputs']['long_desc']}), "
             f"{R['args']['bitrate']} kbps, median of {R['args']['runs']} runs")
    L.append("")
    L.append(f"Machine: {meta['cpu']} x{meta['nproc']}, Python {meta['python']}, "
             f"numba {meta.get('numba') or 'n/a'}; pacodec {meta.get('pacodec_version') or 'MISSING'}. "
             f"Wall = whole process; peak RSS from {meta['rss_method']}; load average "
             f"{meta['loadavg']} at start, {meta.get('loadavg_end', '?')} at end "
             f"({meta['nproc']} CPUs; a load above that means the timings are inflated).")
    L.append("")
    if R.get("warning"):
        L.append(f"**Warning: {R['warning']}.**")
        L.append("")
    if not R.get("pacodec_ok"):
        L.append(f"**pacodec is MISSING: {R.get('pacodec_error')}** -- its rows are n/a.")
        L.append("")
    wp = R["whole_process"]
    pe = wp.get("pacodec", {}).get("encode", {})
    pd = wp.get("pacodec", {}).get("decode", {})
    rows = []
    for name in R["codec_order"]:
        c = wp.get(name)
        if c is None:
            rows.append([name] + ["n/a"] * 11)
            continue
        e, d = c["encode"], c["decode"]
        ew = e.get("wall_s") if e.get("ok") else None
        dw = d.get("wall_s") if d.get("ok") else None
        ec = e.get("cpu_s") if ew else None
        dc = d.get("cpu_s") if dw else None
        if name == "pacodec":
            re_, rd = "1.00" if ew else "n/a", "1.00" if dw else "n/a"
        else:
            # wall ratio, then the CPU-time ratio (user + sys): on a loaded machine wall time
            # includes waiting for a core, CPU time does not
            re_ = (f(bu.ratio(pe.get("wall_s") if pe.get("ok") else None, ew)) + " / "
                   + f(bu.ratio(pe.get("cpu_s") if pe.get("ok") else None, ec)))
            rd = (f(bu.ratio(pd.get("wall_s") if pd.get("ok") else None, dw)) + " / "
                  + f(bu.ratio(pd.get("cpu_s") if pd.get("ok") else None, dc)))
        rows.append([f"`{name}`", f(e.get("kbps"), ".0f") if e.get("ok") else "n/a",
                     f(ew, ".2f"), f(ec, ".2f"), f(e.get("xrt") if ew else None, ".0f"),
                     f(e.get("rss_mb") if ew else None, ".1f"),
                     f(dw, ".2f"), f(dc, ".2f"), f(d.get("xrt") if dw else None, ".0f"),
                     f(d.get("rss_mb") if dw else None, ".1f"), re_, rd])
    L.append(bu.md_table(["codec", "kbps", "enc s", "enc CPU s", "enc ×RT", "enc RSS MB",
                          "dec s", "dec CPU s", "dec ×RT", "dec RSS MB",
                          "pacodec/peer enc (wall / CPU)", "pacodec/peer dec (wall / CPU)"],
                         rows))
    L.append("")
    for name in R["codec_order"]:
        for step in ("encode", "decode"):
            r = wp.get(name, {}).get(step, {})
            if r and not r.get("ok") and r.get("error"):
                L.append(f"- {name} {step} failed (exit {r.get('returncode')}): "
                         f"`{r['error'].splitlines()[-1][:200]}`")
    for name, miss in R.get("peer_missing", {}).items():
        L.append(f"- {name}: n/a, not installed ({', '.join(miss)})")
    if L[-1].startswith("- "):
        L.append("")
    su = R.get("startup")
    if su:
        L.append("pacodec start-up (whole process; cold = empty numba cache, warm = cache filled):")
        L.append("")
        rows = []
        for label, key in (("`pacodec --help`", "--help"), ("`pacodec --version`", "--version")):
            rows.append([label, "—", f(su.get(key, {}).get("wall_s"), ".3f"),
                         f(su.get(key, {}).get("rss_mb"), ".1f")])
        for label, key in (("encode 1 s", "encode_1s"), ("decode 1 s", "decode_1s"),
                           (f"encode {secs:.0f} s", "encode_long"),
                           (f"decode {secs:.0f} s", "decode_long")):
            cold = su.get(key + "_cold", {})
            warm = su.get(key + "_warm", {})
            if key.endswith("long"):
                warm = wp.get("pacodec", {}).get(key.split("_")[0], {})
            rows.append([label, f(cold.get("wall_s") if cold.get("ok") else None, ".2f"),
                         f(warm.get("wall_s") if warm.get("ok") else None, ".3f"),
                         f(warm.get("rss_mb") if warm.get("ok") else None, ".1f")])
        L.append(bu.md_table(["command", "cold s", "warm s", "warm RSS MB"], rows))
        L.append("")
        written = [su[k].get("numba_cache_files_written") for k in su
                   if k.endswith("_cold") and su[k].get("ok")]
        npkg = R.get("numba_cache_files_in_package")
        L.append(f"numba cache: {f(npkg, 'd')} .nbi/.nbc files under the package; the cold runs "
                 f"wrote {', '.join(str(w) for w in written) or 'n/a'} into their empty "
                 f"NUMBA_CACHE_DIR" + (" -- **no kernel is cached (cache=True missing?)**"
                                       if written and not any(written) else "") + ".")
        L.append("")
    ip = R.get("inprocess", {})
    tp = ip.get("throughput")
    if tp:
        if tp.get("ok"):
            L.append(f"In-process (pacodec.Encoder/Decoder after warm-up, no start-up): encode "
                     f"{tp['encode_s']:.2f} s = {tp['encode_xrt']:.0f}× real time, decode "
                     f"{tp['decode_s']:.2f} s = {tp['decode_xrt']:.0f}× real time "
                     f"({tp['kbps']:.0f} kbps; blocks of {tp['block']})."
                     + ("" if tp["decoded_frames"] == tp["input_frames"] else
                        f" Note: decoded {tp['decoded_frames']} samples for "
                        f"{tp['input_frames']} in (not gapless)."))
        else:
            L.append(f"In-process throughput: n/a ({tp.get('error')})")
        L.append("")
    lat = ip.get("latency")
    if lat:
        rows = []
        for mode in ("normal", "low_delay"):
            m = lat.get(mode, {})
            if not m.get("ok"):
                rows.append([mode] + ["n/a"] * 7 + [str(m.get("error", ""))[:80]])
                continue
            rows.append([mode, str(m["frame_size"]), f(m["frame_ms"], ".2f"),
                         f(m["encode_p50_ms"], ".3f"), f(m["decode_p50_ms"], ".3f"),
                         f(m["total_p50_ms"], ".3f"), f(m["total_p99_ms"], ".3f"),
                         f(m["speedup_p99"], ".0f") + "×", f(m["total_max_ms"], ".2f")])
        L.append("Streaming path per frame (Encoder.encode of one hop + Decoder.decode_packet), ms:")
        L.append("")
        L.append(bu.md_table(["mode", "hop", "frame ms", "enc p50", "dec p50", "enc+dec p50",
                              "enc+dec p99", "frame/p99", "max"], rows))
        L.append("")
    rs = R.get("rss_scaling") or R.get("rss_1min")
    if rs:
        rs = dict(rs)
        if "60min" not in rs and wp.get("pacodec"):
            rs[f"{secs:.0f} s"] = wp["pacodec"]
        rows = []
        for key in rs:
            r = rs.get(key, {})
            e, d = r.get("encode", {}), r.get("decode", {})
            rows.append([key, f(e.get("rss_mb") if e.get("ok") else None, ".1f"),
                         f(e.get("wall_s") if e.get("ok") else None, ".1f"),
                         f(d.get("rss_mb") if d.get("ok") else None, ".1f"),
                         f(d.get("wall_s") if d.get("ok") else None, ".1f")])
        L.append("pacodec peak RSS vs input length" + ("" if R.get("rss_scaling") else
                 " (60-min file only with --rss-scaling)") + ":")
        L.append("")
        L.append(bu.md_table(["input", "enc RSS MB", "enc s", "dec RSS MB", "dec s"], rows))
        L.append("")
    L.append("Targets:")
    L.append("")
    rows = []
    for t in R["targets"]:
        unit = t["unit"]
        rows.append([t["target"], f(t["value"], ".3f") + ("" if t["value"] is None else f" {unit}"),
                     f(t["limit"], ".3f") + ("" if t["limit"] is None else f" {unit}"),
                     f"**{t['status']}**"])
    L.append(bu.md_table(["target", "measured", "limit", "result"], rows, ["l", "r", "r", "l"]))
    L.append("")
    L.append("Commands (IN/OUT are files in the bench work dir):")
    L.append("")
    for c in R["commands"]:
        L.append(f"- `{c[0]}`: `{c[1]}`; `{c[2]}`")
    return "\n".join(L)


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, help="long input file instead of the looped corpus")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/pacodec-bench"))
    ap.add_argument("--runs", type=int, default=3, help="timed runs per command (median)")
    ap.add_argument("--bitrate", type=int, default=128, help="kbps for every codec")
    ap.add_argument("--peers", default="oggenc,lame,opusenc,ffmpeg-aac",
                    help="comma list of peers (default all)")
    ap.add_argument("--pacodec", help="pacodec command (default: the `pacodec` script beside "
                    "this Python or on PATH), e.g. 'python -m pacodec'")
    ap.add_argument("--rss-scaling", action="store_true",
                    help="also peak RSS for a 1-min vs a 60-min input (generates ~635 MB WAV)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold (empty numba cache) runs")
    ap.add_argument("--no-inprocess", action="store_true",
                    help="skip in-process throughput and per-frame timing")
    ap.add_argument("--latency-seconds", type=float, default=0,
                    help="limit the per-frame test to this much of the input (0 = all)")
    ap.add_argument("--block", type=int, default=4096,
                    help="samples per Encoder.encode call in the throughput test")
    ap.add_argument("--timeout", type=float, default=7200, help="seconds per child process")
    ap.add_argument("--json", type=Path, help="also write all results as JSON here")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a target FAILs or pacodec is missing")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-input", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    wd = args.workdir
    wd.mkdir(parents=True, exist_ok=True)
    outdir = wd / "out"
    outdir.mkdir(exist_ok=True)

    # inputs
    if args.input:
        long = bu.ensure_pcm16_wav(args.input.resolve(), wd, log=log)
        desc = args.input.name
    else:
        long, clips = bu.make_long_input(args.corpus, wd / "corpus-long.wav", log=log)
        desc = f"{len(clips)} corpus clips looped"
    import soundfile as sf
    info = sf.info(str(long))
    sr, secs = info.samplerate, info.frames / info.samplerate
    tag = long.stem
    inputs = {"long": long,
              "1s": bu.derived_input(long, wd / f"{tag}-1s.wav", 1.0),
              "1min": bu.derived_input(long, wd / f"{tag}-1min.wav", 60.0)}
    log(f"long input {long}: {secs:.1f} s, {sr} Hz, {info.channels} ch")

    # tools
    pcmd, pinfo = find_pacodec(args.pacodec)
    if pcmd is None:
        bar = "!" * 72
        log(bar)
        log(f"PACODEC IS MISSING: {pinfo}")
        log("peers are benchmarked; every pacodec row and target is n/a")
        log(bar)
    codecs = []
    if pcmd:
        codecs.append(pacodec_codec(pcmd))
    wanted = [p.strip() for p in args.peers.split(",") if p.strip()]
    peer_missing = {}
    for p in PEERS:
        if p.name not in wanted:
            continue
        miss = p.missing()
        if miss:
            peer_missing[p.name] = miss
            log(f"peer {p.name} missing ({', '.join(miss)}): n/a")
        else:
            codecs.append(p)
    order = ["pacodec"] + [p.name for p in PEERS if p.name in wanted]

    pkg_dir = numba_v = pver = None
    py = sys.executable
    if pcmd:
        py = pacodec_python(pcmd)
        q = subprocess.run([py, "-c", "import os, pacodec, numba; print(os.path.dirname("
                            "pacodec.__file__)); print(getattr(pacodec, '__version__', '?')); "
                            "print(numba.__version__)"], capture_output=True, stdin=subprocess.DEVNULL)
        if q.returncode == 0:
            pkg_dir, pver, numba_v = q.stdout.decode().split("\n")[:3]
        else:
            pver = pinfo
    cpu = "?"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    R = {"meta": {"cpu": cpu, "nproc": os.cpu_count(), "python": platform.python_version(),
                  "numba": numba_v, "pacodec_version": pver, "pacodec_cmd": pcmd,
                  "pacodec_package_dir": pkg_dir,
                  "rss_method": "GNU time %M" if bu.have_gnu_time() else
                  "os.wait4 ru_maxrss (upper bound: /usr/bin/time missing)",
                  "peer_versions": {n: bu.quick_output(c) for n, c in (
                      ("oggenc", ["oggenc", "--version"]), ("lame", ["lame", "--version"]),
                      ("opusenc", ["opusenc", "--version"]), ("ffmpeg", ["ffmpeg", "-version"]))
                      if shutil.which(c[0])},
                  "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                  "date": time.strftime("%Y-%m-%d %H:%M:%S")},
         "args": {"runs": args.runs, "bitrate": args.bitrate, "block": args.block},
         "inputs": {"long": str(long), "long_seconds": secs, "long_desc": desc,
                    "samplerate": sr, "channels": info.channels,
                    **{k: str(v) for k, v in inputs.items() if k != "long"}},
         "pacodec_ok": pcmd is not None, "pacodec_error": None if pcmd else pinfo,
         "peer_missing": peer_missing, "codec_order": order,
         "commands": [(c.name, c.enc_text, c.dec_text) for c in
                      [pacodec_codec(["pacodec"])] + [p for p in PEERS if p.name in wanted]]}

    src_stamp = source_stamp(pkg_dir)
    R["whole_process"] = bench_whole_process(codecs, long, outdir, args, secs, sr)
    if pcmd and R["whole_process"].get("pacodec", {}).get("encode", {}).get("ok"):
        pc = codecs[0]
        R["numba_cache_files_in_package"] = numba_cache_files(pkg_dir)
        R["startup"] = bench_startup(pc, pcmd, inputs, outdir, args, sr)
        rss_files = {"1min": inputs["1min"]}
        if args.rss_scaling:
            sixty = wd / f"{tag}-60min.wav"
            if not sixty.exists():
                log(f"generating {sixty} (streamed)")
            rss_files["60min"] = bu.derived_input(long, sixty, 3600.0)
        R["rss_scaling" if args.rss_scaling else "rss_1min"] = bench_rss(pc, rss_files, outdir, args, sr)
    elif pcmd:
        log("pacodec encode failed on the long file; skipping start-up and RSS parts")
    if not args.no_inprocess:
        # the streaming API can be measured even when the CLI is missing or broken
        q = subprocess.run([py, "-c", "import pacodec; pacodec.Encoder; pacodec.Decoder"],
                           capture_output=True, stdin=subprocess.DEVNULL)
        if q.returncode == 0:
            R["inprocess"] = run_worker(py, "throughput,latency", long, args)
        else:
            err = q.stderr.decode("utf-8", "replace").strip().splitlines()
            msg = f"`import pacodec` failed: {err[-1] if err else q.returncode}"
            log(msg)
            R["inprocess"] = {"throughput": {"ok": False, "error": msg},
                              "latency": {m: {"ok": False, "error": msg}
                                          for m in ("normal", "low_delay")}}
    if src_stamp is not None and src_stamp != source_stamp(pkg_dir):
        R["warning"] = ("pacodec sources changed while the benchmark ran: numba recompiled "
                        "kernels mid-run, so pacodec timings are unreliable; run again")
        log("WARNING: " + R["warning"])
    R["meta"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    R["targets"] = compute_targets(R)
    text = render(R)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(R, indent=2, default=str))
        log(f"wrote {args.json}")
    if args.strict and (not pcmd or any(t["status"] == "FAIL" for t in R["targets"])):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
