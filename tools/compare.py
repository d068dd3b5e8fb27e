#!/usr/bin/env python3
"""Rate-quality comparison of pacodec against the codecs users would pick instead.

Every selected codec encodes every clip of a corpus at a list of nominal bitrates (mono clips at half
the rate), the decoded result is scored against the original with ViSQOL (audio mode), and the tool
prints a per-clip table, a table of means, each codec's mean curve interpolated at exactly 64, 96 and
128 kbps, and the BD-rate of pacodec against each peer.

Codecs (each one encodes a 16-bit WAV copy of the clip):

    pacodec  `pacodec encode ref.wav -o x.pac -b K [extra]`, `pacodec decode x.pac -o y.wav`
             (`--abr K` with --pacodec-mode abr; with --pacodec-mode vbr, its default mode, VBR
             `-q Q` at the quality whose mean rate on 44.1 kHz stereo music is K by the package's
             own scale, pacodec.options.quality_for_kbps; extra args from --pacodec-args /
             --pacodec-variant)
    opus     `opusenc --bitrate K`, `opusdec --rate R`
    vorbis   `oggenc -b K`, `oggdec`; libvorbis refuses some low rates (24 kbps mono at 48 kHz, for
             one): the lowest rate it accepts above K is used instead and recorded as `used_kbps`,
             the bits it spends are counted as usual
    aac      `ffmpeg -c:a aac -b:a Kk` into .m4a, decoded by ffmpeg to WAV at the source rate
    lame     `lame --abr K`, `lame --decode`, then `sox y.wav -r R` if LAME resampled

Low delay (only when asked for, by --low-delay or by naming it in --codecs):

    opus16ld Opus 1.6 (PyAV) in restricted-lowdelay (application=lowdelay) with 2.5-ms frames:
             5 ms algorithmic delay (2.5-ms frame + 2.5-ms look-ahead), VBR as Opus's default

--low-delay compares the two low-delay modes at 48 kHz: it is short for `--codecs pacodec,opus16ld
--pacodec-args --low-delay --samplerate 48000` (pacodec's low-delay mode is 8 ms at 48 kHz). With
--samplerate R every clip is first resampled to R (scipy's polyphase resampler, then clipped to
+-1) and that copy is the reference of every codec.

Length and delay. All decoders are run in their gapless mode: opusdec drops the pre-skip, oggdec
follows the granule positions, LAME's decoder trims the delay and padding its LAME tag records, and
ffmpeg honours the MP4 edit list that skips the AAC priming samples (it leaves the end padding, which
the trim below removes); pacodec's decoder trims by the stream header. On top of that a
cross-correlation of the mono mixdowns over a bounded lag (±--max-lag samples, default 2048) measures
any delay left, the decoded signal is shifted by it, then cut or zero-padded to the original's length.
The lag found is reported per row (`lag`): it is 0 for every gapless decoder, so a non-zero lag for
pacodec points at a gapless-trimming bug.

Bitrates. actual kbps = 8 x encoded file size / duration / 1000 (containers included). In the means a
mono clip counts as stereo-equivalent (its actual rate x 2), as the peers' reference figures in
../shared/tools/README.md were computed. DCR = 1 - encoded bytes / (frames x channels x 2).

Curves. A codec's curve is (mean stereo-equivalent actual kbps, mean ViSQOL) per nominal rate. Quality
at 64/96/128 kbps is interpolated over log-rate (n/a more than 3 % outside the measured range), two
ways: PCHIP, and linear, which is how the peer table in ../shared/tools/README.md was made (linear
reproduces that table to 0.005; PCHIP differs by up to 0.04 where a curve bends hard: AAC at 64 kbps).

BD-rate: over the ViSQOL range both curves cover, PCHIP of log-rate as a function of ViSQOL, each
integrated and averaged, d = mean(test) - mean(ref), BD = 100 (e^d - 1) %; negative means the tested
codec needs fewer bits for the same ViSQOL. Points that do not raise the quality of a curve (a higher
rate scoring no better) are dropped for BD-rate, since log-rate must be a function of quality.
BD-ViSQOL is the mean ViSQOL difference over the common log-rate range (PCHIP).

Cache: with --cache DIR a peer's row (encode, decode, score) is stored under a key made of the codec,
its command arguments, the clip's content hash, the rate, the codec tools' and the scorer's versions,
and reused by later runs. pacodec rows are never cached (the codec changes under development).

--nmr CLIP plots pacodec's noise-to-mask ratio per band for one clip instead, through
pacodec.analysis.nmr_per_band(data, samplerate, bitrate) -> (band_centres_hz, nmr_db (frames, bands)).

Exit status: 0; 1 when some encode/decode/score failed (tables still printed); 2 on a usage problem
or a missing tool; 3 when the ViSQOL scorer is not installed.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pacodec import quality  # noqa: E402
from pacodec.quality import (METRIC_LABEL, METRICS, REPORT_RATES, align, best_lag,  # noqa: E402
                             clip_matrix, dcr, stereo_equivalent)
SHARED = REPO.parent / "shared"
DEFAULT_CORPUS = SHARED / "corpus"
SHARED_VISQOL = SHARED / "tools" / "visqol.py"
DEFAULT_RATES = (48, 64, 80, 96, 128, 160)
SHARED_MUSHRA2F = SHARED / "tools" / "mushra2f.py"
PEERS = ("opus16", "opus", "fdkaac", "vorbis", "aac", "lame")
ALL_CODECS = ("pacodec",) + PEERS
#: peers run only when named (not in the default --codecs)
LOW_DELAY_PEERS = ("opus16ld",)
KNOWN_CODECS = ALL_CODECS + LOW_DELAY_PEERS
#: Opus's restricted-lowdelay mode as libavcodec's libopus wrapper names it
OPUS_LOWDELAY_OPTIONS = {"application": "lowdelay", "frame_duration": "2.5"}
AUDIO_EXTS = (".flac", ".wav", ".ogg", ".aiff", ".aif")
CACHE_VERSION = 2  # bump when the way a row is produced changes

# tool -> Debian package, for the "missing tool" message
APT_PACKAGE = {"lame": "lame", "opusenc": "opus-tools", "opusdec": "opus-tools", "oggenc": "vorbis-tools",
               "oggdec": "vorbis-tools", "ffmpeg": "ffmpeg", "sox": "sox", "fdkaac": "fdkaac (Debian non-free)"}
CODEC_TOOLS = {"opus": ("opusenc", "opusdec"), "vorbis": ("oggenc", "oggdec"), "aac": ("ffmpeg",),
               "lame": ("lame", "sox"), "fdkaac": ("fdkaac", "ffmpeg"), "opus16": (), "opus16ld": (),
               "pacodec": ()}
VISQOL_INSTALL = ("pip download --no-deps --only-binary=:all: -d wheels audio-samples-qoe==0.1.2",
                  "pip install --no-deps wheels/audio_samples_qoe-0.1.2-*.whl")


class ToolMissing(RuntimeError):
    """A codec executable or the metric is not installed."""


# ---------------------------------------------------------------------------------------------------
# curves, interpolation, BD-rate, alignment, means: pacodec.quality (tested in tests/test_quality_curves.py)

def mean_rows(rows):
    return quality.mean_rows(rows, METRICS, codec_order)


def codec_order(name):
    base = name.split(":")[0]
    return (KNOWN_CODECS.index(base) if base in KNOWN_CODECS else len(KNOWN_CODECS), name)


# ---------------------------------------------------------------------------------------------------
# the metric

_SCORER = None


def _own_score(ref, sr, deg, sr2):
    """ViSQOL as pacodec.quality scores it (each channel, averaged), at one sample rate."""
    from pacodec import quality
    if sr != sr2:
        raise ValueError(f"reference at {sr} Hz, decoded at {sr2} Hz: resample to one rate first")
    return quality.visqol(ref, deg, sr)


def load_scorer(path=None):
    """Return (score function, description). Prefers ../shared/tools/visqol.py (or `path`), else the
    same logic built here. Raises ToolMissing when the audio-samples-qoe wheel is not installed."""
    global _SCORER
    if _SCORER is not None and path is None:
        return _SCORER
    from pacodec import quality         # the one loader of the metric (its stand-in module)
    try:
        version = quality.version()
    except ImportError as exc:
        raise ToolMissing(f"ViSQOL (audio-samples-qoe) is not installed ({exc.__cause__ or exc}); "
                          f"run: `{VISQOL_INSTALL[0]}` then `{VISQOL_INSTALL[1]}`") from None
    candidate = Path(path) if path else (Path(os.environ["PACODEC_VISQOL"]) if os.environ.get("PACODEC_VISQOL")
                                         else SHARED_VISQOL)
    if candidate.is_file():
        spec = importlib.util.spec_from_file_location("_compare_shared_visqol", candidate)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _SCORER = (module.score, f"audio-samples-qoe {version} via {candidate}")
    else:
        _SCORER = (_own_score, f"audio-samples-qoe {version} via pacodec.quality")
    return _SCORER


_SCORER_2F = None


def _import_seabass_with_numba_cache():
    """seabass compiles its numba kernels without cache=True: 2-4 minutes in every worker process of
    every run. Importing it while numba.njit/jit default to cache=True keeps the compiled kernels on
    disk (numba's usual __pycache__ or $NUMBA_CACHE_DIR), so later processes load them in seconds."""
    if "seabass.core.models.mms" in sys.modules:
        return
    import functools
    import warnings
    try:
        import numba
    except ImportError:
        return
    saved = numba.njit, numba.jit

    def caching(dec):
        @functools.wraps(dec)
        def wrapper(*args, **kw):
            kw.setdefault("cache", True)
            return dec(*args, **kw)
        return wrapper

    numba.njit, numba.jit = caching(saved[0]), caching(saved[1])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module("seabass.core.models.mms")
    except Exception:  # noqa: BLE001 - scoring will report the real error
        pass
    finally:
        numba.njit, numba.jit = saved


def load_scorer2f(path=None):
    """Return (score2f function, description) of the 2f-model (../shared/tools/mushra2f.py, or `path`,
    or $PACODEC_MUSHRA2F), or (None, reason) when it or seabass-2f is not installed: the 2f column is
    then left empty with a note rather than failing the run."""
    global _SCORER_2F
    if _SCORER_2F is not None and path is None:
        return _SCORER_2F
    candidate = Path(path) if path else (Path(os.environ["PACODEC_MUSHRA2F"]) if os.environ.get("PACODEC_MUSHRA2F")
                                         else SHARED_MUSHRA2F)
    if importlib.util.find_spec("seabass") is None:
        _SCORER_2F = (None, "seabass-2f not installed (pip install seabass-2f)")
    elif not candidate.is_file():
        _SCORER_2F = (None, f"{candidate} not found")
    else:
        spec = importlib.util.spec_from_file_location("_compare_shared_mushra2f", candidate)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _import_seabass_with_numba_cache()
        try:
            from importlib.metadata import version
            ver = version("seabass-2f")
        except Exception:  # metadata missing: still usable
            ver = "?"
        _SCORER_2F = (module.score2f, f"seabass-2f {ver} via {candidate}")
    return _SCORER_2F


# ---------------------------------------------------------------------------------------------------
# running codecs

def _run(cmd, **kw):
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout or b"").decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"`{shlex.join(map(str, cmd))}` exited {proc.returncode}: "
                           f"{msg[-1] if msg else 'no output'}")
    return proc


def tool_version(exe):
    """First line of `exe --version` (or ffmpeg's -version), for cache keys and the JSON."""
    args = [exe, "-version"] if exe == "ffmpeg" else [exe, "--version"]
    try:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (proc.stdout or proc.stderr).decode(errors="replace").strip()
    return text.splitlines()[0] if text else exe


def encode_decode(job, ref_wav, sr, channels, kbps, work):
    """Run one codec; return (encoded path, decoded wav path, kbps actually asked for, commands)."""
    codec = job["codec"]
    enc = work / f"enc.{job['ext']}"
    dec = work / "dec.wav"
    cmds = []

    def run(cmd):
        cmds.append(shlex.join(map(str, cmd)))
        return _run(cmd)

    used = kbps
    if codec == "opus":
        run(["opusenc", "--quiet", "--bitrate", f"{kbps:g}", *job["args"], ref_wav, enc])
        run(["opusdec", "--quiet", "--rate", str(sr), enc, dec])
    elif codec == "vorbis":
        while True:
            try:
                run(["oggenc", "--quiet", "-b", f"{used:g}", *job["args"], "-o", enc, ref_wav])
                break
            except RuntimeError:
                # libvorbis has a floor per rate and channel count: take the lowest accepted rate above
                cmds.pop()
                used += 1
                if used > kbps + 96:
                    raise
        run(["oggdec", "--quiet", "-o", dec, enc])
    elif codec == "aac":
        run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", ref_wav,
             "-c:a", "aac", "-b:a", f"{kbps:g}k", *job["args"], enc])
        run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", enc,
             "-ar", str(sr), "-c:a", "pcm_s16le", dec])
    elif codec == "lame":
        run(["lame", "--quiet", "--abr", f"{kbps:g}", *job["args"], ref_wav, enc])
        run(["lame", "--quiet", "--decode", enc, dec])
    elif codec == "opus16":
        cmds.append(f"PyAV libopus {kbps:g} kbit/s VBR (48 kHz), decoded back to {sr} Hz")
        opus16_encode_decode(ref_wav, enc, dec, sr, channels, kbps)
    elif codec == "opus16ld":
        cmds.append(f"PyAV libopus {kbps:g} kbit/s VBR (48 kHz), options {OPUS_LOWDELAY_OPTIONS}, "
                    f"decoded back to {sr} Hz")
        opus16_encode_decode(ref_wav, enc, dec, sr, channels, kbps, options=OPUS_LOWDELAY_OPTIONS)
    elif codec == "fdkaac":
        profile = "5" if job["nominal"] <= 80 else "2"  # HE-AAC at low rates, LC above (stereo-equivalent)
        try:
            run(["fdkaac", "--silent", "-p", profile, "-b", f"{kbps:g}k", *job["args"], "-o", enc, ref_wav])
        except RuntimeError:
            if profile != "5":
                raise
            cmds.pop()  # HE-AAC refuses some rate/samplerate pairs (16 kHz mono): LC instead
            run(["fdkaac", "--silent", "-p", "2", "-b", f"{kbps:g}k", *job["args"], "-o", enc, ref_wav])
        run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", enc,
             "-ar", str(sr), "-ac", str(channels), "-c:a", "pcm_s16le", dec])
    elif codec == "pacodec":
        if job["mode"] == "vbr":        # the stereo scale: a mono clip at the same quality
            from pacodec.options import quality_for_kbps
            rate = ["-q", f"{quality_for_kbps(float(job['nominal'])):.3f}"]
        else:
            rate = ["--abr" if job["mode"] == "abr" else "-b", f"{kbps:g}"]
        run([*job["pacodec_cmd"], "encode", ref_wav, "-o", enc, *rate, "--force", *job["args"]])
        run([*job["pacodec_cmd"], "decode", enc, "-o", dec, "--force"])
    else:
        raise ValueError(f"unknown codec {codec!r}")
    return enc, dec, used, cmds


def opus16_available():
    """(True, libopus description) when PyAV with a libopus encoder is importable, else (False, why)."""
    try:
        import av
        av.codec.Codec("libopus", "w")
    except Exception as exc:  # ImportError, or a PyAV build without libopus
        return False, f"PyAV with libopus not available ({type(exc).__name__}: {exc}; pip install av)"
    return True, f"PyAV {av.__version__} libopus"


def opus16_encode_decode(ref_wav, enc, dec, sr, channels, kbps, options=None):
    """Encode with the libopus that PyAV's wheel bundles (VBR, application audio, 48 kHz, or the
    libavcodec libopus ``options`` given), into Ogg; decode with PyAV and resample back to the
    source rate."""
    import av
    import soundfile as sf

    layout = "mono" if channels == 1 else "stereo"
    data, _ = sf.read(str(ref_wav), dtype="float32", always_2d=True)
    with av.open(str(enc), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48000, layout=layout)
        stream.bit_rate = int(round(kbps * 1000))
        if options:
            stream.options = dict(options)
        resampler = av.AudioResampler(format="s16", layout=layout, rate=48000)
        step = 4096
        pts = 0
        for start in range(0, data.shape[0], step):
            block = np.ascontiguousarray(data[start:start + step])
            # packed float: one plane of interleaved samples
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout=layout)
            frame.sample_rate = sr
            frame.pts = pts
            pts += block.shape[0]
            for f48 in resampler.resample(frame):
                for packet in stream.encode(f48):
                    out.mux(packet)
        for f48 in resampler.resample(None):
            for packet in stream.encode(f48):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    pieces = []
    with av.open(str(enc)) as inp:
        back = av.AudioResampler(format="flt", layout=layout, rate=sr)
        for frame in inp.decode(audio=0):
            for f in back.resample(frame):
                pieces.append(f.to_ndarray().reshape(-1, channels))
        for f in back.resample(None):
            pieces.append(f.to_ndarray().reshape(-1, channels))
    sf.write(str(dec), np.concatenate(pieces) if pieces else np.zeros((0, channels)), sr, subtype="FLOAT")


def resample_clip(x, sr, rate):
    """``x`` at ``sr`` Hz resampled to ``rate`` Hz (polyphase), clipped to +-1 (it is written as
    16-bit PCM for the codecs)."""
    from scipy.signal import resample_poly
    g = math.gcd(int(sr), int(rate))
    return np.clip(resample_poly(x, int(rate) // g, int(sr) // g, axis=0), -1.0, 1.0)


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_job(job):
    """Encode, decode, align and score one (codec, clip, rate); returns a row (with 'error' on failure).
    Runs in a worker process."""
    import soundfile as sf

    cache_file = Path(job["cache_dir"]) / f"{job['key']}.json" if job.get("cache_dir") and job.get("key") else None
    if cache_file is not None and cache_file.is_file():
        try:
            row = json.loads(cache_file.read_text())
            row["cached"] = True
            row["codec"] = job["name"]
            return row
        except (OSError, ValueError):
            pass
    if job.get("cache_only"):
        return None  # --pacodec-only: a peer row not in the cache is left out
    row = {"codec": job["name"], "clip": Path(job["clip"]).stem, "nominal_kbps": job["nominal"],
           "cached": False}
    t0 = time.perf_counter()
    try:
        ref, sr = sf.read(job["clip"], dtype="float64", always_2d=True)
        if job.get("samplerate") and job["samplerate"] != sr:
            ref, sr = resample_clip(ref, sr, job["samplerate"]), job["samplerate"]
        if job.get("excerpt"):
            ref = ref[:max(1, int(round(job["excerpt"] * sr)))]
        frames, channels = ref.shape
        kbps = job["nominal"] / 2.0 if channels == 1 else float(job["nominal"])
        with tempfile.TemporaryDirectory(prefix="pacodec-compare-") as tmp:
            work = Path(tmp)
            ref_wav = work / "ref.wav"
            sf.write(ref_wav, ref, sr, subtype="PCM_16")
            enc, dec, used, cmds = encode_decode(job, ref_wav, sr, channels, kbps, work)
            nbytes = enc.stat().st_size
            dec_sr = sf.info(str(dec)).samplerate
            if dec_sr != sr:
                back = work / "dec_rs.wav"
                cmds.append(shlex.join(["sox", str(dec), "-r", str(sr), str(back)]))
                _run(["sox", dec, "-r", str(sr), back])
                dec = back
            deg, sr2 = sf.read(dec, dtype="float64", always_2d=True)
            if channels == 1 and deg.shape[1] > 1:  # a decoder that upmixes mono (HE-AAC with PS)
                deg = deg.mean(axis=1, keepdims=True)
        decoded_frames = deg.shape[0]
        lag = best_lag(ref, deg, job["max_lag"])
        deg = align(deg, frames, lag)
        score, _ = load_scorer(job.get("visqol"))
        mos = score(ref, sr, deg, sr2)
        score2f, _ = load_scorer2f(job.get("mushra2f"))
        # copies: seabass scales its input arrays in place (seen on 48 kHz input, which it does not resample)
        mms = float(score2f(ref.copy(), sr, deg.copy(), sr2)) if score2f is not None else None
        duration = frames / sr
        actual = 8.0 * nbytes / duration / 1000.0
        row.update({
            "samplerate": sr, "channels": channels, "frames": frames, "duration_s": duration,
            "requested_kbps": kbps, "used_kbps": used, "bytes": nbytes, "kbps": actual,
            "stereo_kbps": stereo_equivalent(actual, channels), "dcr": dcr(nbytes, frames, channels),
            "visqol": float(mos), "mms": mms, "lag": lag, "decoded_frames": decoded_frames,
            "decoded_samplerate": dec_sr, "commands": cmds,
        })
    except Exception as exc:  # one failed row must not stop the run
        row["error"] = f"{type(exc).__name__}: {exc}"
    row["seconds"] = time.perf_counter() - t0
    if cache_file is not None and "error" not in row:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp_file = cache_file.with_suffix(f".tmp{os.getpid()}")
        tmp_file.write_text(json.dumps(row, indent=1))
        os.replace(tmp_file, cache_file)
    return row


# ---------------------------------------------------------------------------------------------------
# command line

def parse_list(text, cast=str):
    return [cast(t) for t in text.replace(",", " ").split() if t]


def _json_safe(obj):
    """NaN/inf become null, so the JSON is standard."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def build_parser():
    p = argparse.ArgumentParser(
        prog="python tools/compare.py",
        description="Compare pacodec with Opus 1.6 (PyAV), opusenc, FDK AAC, oggenc, ffmpeg AAC and LAME on a "
                    "corpus: ViSQOL and the 2f-model against actual bitrate, interpolated quality at 64/96/128 "
                    "kbps and BD-rate on each.",
        epilog="Example: python tools/compare.py --codecs pacodec,opus --cache /work/compare_cache -j 2 "
               "--json out.json --plot out.png")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of clips (default %(default)s)")
    p.add_argument("--clips", help="comma-separated clip names (stems) to use; default all in the corpus")
    p.add_argument("--codecs", default=None,
                   help="comma-separated codecs from %s (default all but %s; with --low-delay "
                        "pacodec,opus16ld)" % (",".join(KNOWN_CODECS), ",".join(LOW_DELAY_PEERS)))
    p.add_argument("-b", "--bitrates", default=" ".join(map(str, DEFAULT_RATES)),
                   help="nominal stereo kbps list; mono clips get half (default: %(default)s)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--pacodec-cmd", help="command that runs the pacodec CLI (default: `pacodec` if on PATH, "
                                         "else `python -m pacodec`)")
    p.add_argument("--pacodec-args", default="", help='extra pacodec encode args, e.g. "--quantizer mulaw"')
    p.add_argument("--pacodec-mode", choices=("cbr", "abr", "vbr"), default="cbr",
                   help="-b K (cbr), --abr K, or vbr: pacodec's default mode, -q at the quality whose "
                        "mean rate is K (pacodec.options.quality_for_kbps)")
    p.add_argument("--pacodec-variant", action="append", default=[], metavar="NAME=ARGS",
                   help='another pacodec configuration, run as codec "pacodec:NAME" (repeatable), '
                        'e.g. --pacodec-variant "mulaw=--quantizer mulaw"')
    for codec in PEERS + LOW_DELAY_PEERS:
        p.add_argument(f"--{codec}-args", default="", help=f"extra {codec} encoder args")
    p.add_argument("--pacodec-only", action="store_true",
                   help="run only pacodec (and its variants); peer rows are taken from --cache where present")
    p.add_argument("--low-delay", action="store_true",
                   help="compare pacodec's low-delay mode with Opus 1.6 restricted-lowdelay, 2.5-ms "
                        "frames (opus16ld), at 48 kHz: --codecs pacodec,opus16ld --pacodec-args "
                        "--low-delay --samplerate 48000 unless those are given")
    p.add_argument("--samplerate", type=int, metavar="HZ",
                   help="resample every clip to HZ first (the reference for every codec)")
    p.add_argument("--excerpt", type=float, metavar="SECONDS",
                   help="use only the first SECONDS of each clip (quick iteration; say so with any figure)")
    p.add_argument("--max-lag", type=int, default=2048, help="delay search bound in samples (default 2048)")
    p.add_argument("--cache", type=Path, help="folder where peer rows are kept and reused between runs")
    p.add_argument("--baseline", type=Path, action="append", default=[],
                   help="JSON from an earlier run: its rows for codecs not run now are added to the tables")
    p.add_argument("--visqol", type=Path, help="path of a visqol.py scorer (default ../shared/tools/visqol.py)")
    p.add_argument("--mushra2f", type=Path, help="path of a mushra2f.py scorer (default ../shared/tools/mushra2f.py)")
    p.add_argument("--json", type=Path, help="write all rows, means, interpolations and BD-rates here")
    p.add_argument("--plot", type=Path, help="write a PNG of the rate-quality curves here (needs matplotlib)")
    p.add_argument("--no-clip-table", action="store_true", help="print only the mean tables")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    g = p.add_argument_group("noise-to-mask ratio (instead of the comparison)")
    g.add_argument("--nmr", metavar="CLIP", help="plot pacodec's per-band NMR for this clip (name or path)")
    g.add_argument("--nmr-bitrate", type=float, default=96.0,
                   help="nominal stereo kbps for --nmr; halved for a mono clip (default 96)")
    g.add_argument("--nmr-plot", type=Path, help="PNG path for --nmr (default nmr_<clip>_<K>k.png)")
    return p


def fail(msg, code=2):
    print(f"compare: {msg}", file=sys.stderr)
    raise SystemExit(code)


def find_clips(corpus, names):
    if not corpus.is_dir():
        fail(f"corpus folder {corpus} not found (use --corpus DIR)")
    clips = sorted(f for f in corpus.iterdir() if f.suffix.lower() in AUDIO_EXTS)
    if names:
        wanted = parse_list(names)
        by_stem = {c.stem: c for c in clips}
        missing = [w for w in wanted if w not in by_stem and Path(w).stem not in by_stem]
        if missing:
            fail(f"clip(s) not in {corpus}: {', '.join(missing)} (have: {', '.join(sorted(by_stem))})")
        clips = [by_stem.get(w, by_stem.get(Path(w).stem)) for w in wanted]
    if not clips:
        fail(f"no audio clips in {corpus}")
    return clips


def pacodec_command(text):
    if text:
        return shlex.split(text)
    exe = shutil.which("pacodec")
    return [exe] if exe else [sys.executable, "-m", "pacodec"]


def check_tools(codecs, pacodec_cmd, notes=None):
    """Versions of the tools each codec needs. A peer whose tool is missing is skipped with a note in
    `notes` (its install line); pacodec not running is a usage error."""
    versions = {}
    for codec in codecs:
        base = codec.split(":")[0]
        if base in ("opus16", "opus16ld"):
            ok, desc = opus16_available()
            if ok:
                versions[base] = desc
            elif notes is not None:
                notes[codec] = desc
            continue
        for exe in CODEC_TOOLS[base]:
            if shutil.which(exe) is None:
                if notes is not None and base != "pacodec":
                    notes[codec] = f"`{exe}` not found; install it: apt-get install -y {APT_PACKAGE[exe]}"
                    break
                fail(f"`{exe}` not found (codec {base}); install it: apt-get install -y {APT_PACKAGE[exe]} "
                     f"(all peers: apt-get install -y lame opus-tools vorbis-tools ffmpeg sox)")
            versions.setdefault(exe, tool_version(exe))
        if base == "pacodec" and "pacodec" not in versions:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
            proc = subprocess.run([*pacodec_cmd, "--help"], capture_output=True, stdin=subprocess.DEVNULL, env=env)
            if proc.returncode != 0:
                fail(f"pacodec CLI `{shlex.join(pacodec_cmd)}` does not run (pip install -e . in the repo, "
                     f"or pass --pacodec-cmd, or leave pacodec out with --codecs)")
            versions["pacodec"] = "dev"
    if shutil.which("sox"):  # resamples any decoder output that comes back at another rate
        versions.setdefault("sox", tool_version("sox"))
    return versions


def make_jobs(args, codecs, clips, rates, versions, scorer_desc, scorer2f_desc=None, cache_only=()):
    pac_cmd = pacodec_command(args.pacodec_cmd)
    digests = {c: file_digest(c) for c in clips}
    exts = {"opus": "opus", "opus16": "opus", "opus16ld": "opus", "fdkaac": "m4a", "vorbis": "ogg",
            "aac": "m4a", "lame": "mp3", "pacodec": "pac"}
    jobs = []
    for codec in codecs:
        base, _, variant = codec.partition(":")
        if base == "pacodec":
            extra = shlex.split(args.pacodec_args) + (shlex.split(dict(args.variants)[variant]) if variant else [])
        else:
            extra = shlex.split(getattr(args, f"{base}_args"))
        for clip in clips:
            for nominal in rates:
                job = {"name": codec, "codec": base, "args": extra, "clip": str(clip), "nominal": nominal,
                       "ext": exts[base], "max_lag": args.max_lag, "mode": args.pacodec_mode,
                       "pacodec_cmd": pac_cmd, "visqol": str(args.visqol) if args.visqol else None,
                       "mushra2f": str(args.mushra2f) if args.mushra2f else None, "excerpt": args.excerpt,
                       "cache_only": codec in cache_only, "samplerate": args.samplerate}
                if args.cache and base != "pacodec":
                    key_src = {"v": CACHE_VERSION, "codec": base, "args": extra, "clip": digests[clip],
                               "nominal": nominal, "max_lag": args.max_lag, "scorer": scorer_desc.split(" via ")[0],
                               "scorer2f": (scorer2f_desc or "").split(" via ")[0], "excerpt": args.excerpt,
                               **({"samplerate": args.samplerate} if args.samplerate else {}),
                               "tools": {t: versions.get(t) for t in CODEC_TOOLS[base] + ("sox", base)}}
                    job["key"] = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:32]
                    job["cache_dir"] = str(args.cache)
                jobs.append(job)
    return jobs


def run_jobs(jobs, workers, quiet):
    rows = []
    durations = {}

    def progress(row, done):
        if quiet:
            return
        if row is None:
            return
        what = (f"ERROR {row['error']}" if row.get("error") else
                f"{row['kbps']:7.1f} kbps  ViSQOL {row['visqol']:.3f}  2f {fmt(row.get('mms'), '.1f')}  "
                f"lag {row['lag']}"
                + ("  (cached)" if row.get("cached") else ""))
        print(f"[{done}/{len(jobs)}] {row['codec']:>10} {row['clip']:<22} {row['nominal_kbps']:>5g}  {what}",
              file=sys.stderr, flush=True)

    # longest clips first, so the workers finish together
    import soundfile as sf
    for j in jobs:
        if j["clip"] not in durations:
            info = sf.info(j["clip"])
            durations[j["clip"]] = info.frames * info.channels / info.samplerate
    order = sorted(jobs, key=lambda j: -durations[j["clip"]])
    if workers <= 1:
        for i, job in enumerate(order, 1):
            rows.append(run_job(job))
            progress(rows[-1], i)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(run_job, job) for job in order]
            for i, fut in enumerate(as_completed(futures), 1):
                rows.append(fut.result())
                progress(rows[-1], i)
    rows = [r for r in rows if r is not None]
    rows.sort(key=lambda r: (codec_order(r["codec"]), r["clip"], r["nominal_kbps"]))
    return rows


def fmt(x, spec):
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def print_table(header, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(header)]
    line = "  ".join(f"{h:>{w}}" for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(f"{str(c):>{w}}" for c, w in zip(r, widths)))
    print()


def summarise(rows):
    """means; and per metric: curves, interpolations at 64/96/128 (pchip and linear), BD-rate and
    BD-quality of each pacodec configuration against each peer (pacodec.quality.summarise)."""
    return quality.summarise(rows, METRICS, codec_order, REPORT_RATES)


def print_report(rows, means, interp, bd, bdq, clip_table=True):
    if clip_table:
        print("Per clip (kbps = actual; st.kbps = stereo-equivalent, used in the means; 2f = 2f-model MUSHRA)")
        print_table(["codec", "clip", "nominal", "asked", "kbps", "st.kbps", "ViSQOL", "2f", "DCR", "lag", "dec.Hz"],
                    [[r["codec"], r["clip"], fmt(r["nominal_kbps"], "g")] +
                     (["ERROR: " + r["error"]] + [""] * 7 if r.get("error") else
                      [fmt(r["used_kbps"], "g"), fmt(r["kbps"], ".1f"), fmt(r["stereo_kbps"], ".1f"),
                       fmt(r["visqol"], ".3f"), fmt(r.get("mms"), ".1f"), fmt(r["dcr"], ".4f"), r["lag"],
                       r["decoded_samplerate"]])
                     for r in rows])
        codecs = sorted({r["codec"] for r in rows}, key=codec_order)
        for metric in METRICS:
            for nominal in sorted({r["nominal_kbps"] for r in rows}):
                mat = clip_matrix(rows, metric, nominal)
                if not mat:
                    continue
                spec = ".3f" if metric == "visqol" else ".1f"
                print(f"{METRIC_LABEL[metric]} per clip at nominal {nominal:g} kbps (mono clips at half)")
                print_table(["clip"] + codecs, [[clip] + [fmt(mat[clip].get(c), spec) for c in codecs]
                                                for clip in sorted(mat)])
    nclips = len({r["clip"] for r in rows})
    print(f"Means over clips (stereo-equivalent actual kbps; {nclips} clips)")
    print_table(["codec", "nominal", "clips", "kbps", "ViSQOL", "2f", "DCR"],
                [[m["codec"], fmt(m["nominal_kbps"], "g"), m["clips"], fmt(m["kbps"], ".1f"),
                  fmt(m["visqol"], ".3f"), fmt(m.get("mms"), ".1f"), fmt(m["dcr"], ".4f")] for m in means])
    short = [m for m in means if m["clips"] < nclips]
    if short:
        print(f"warning: {len(short)} mean(s) cover fewer than {nclips} clips (failed rows): not comparable\n")
    for metric in interp:
        label = METRIC_LABEL[metric]
        spec = ".3f" if metric == "visqol" else ".1f"
        print(f"Mean {label} at these actual rates, interpolated in log-rate: PCHIP, and linear (lin; the method "
              "of the peer table in ../shared/tools/README.md)")
        print_table(["codec"] + [f"{t:g} kbps" for t in REPORT_RATES] + [f"lin {t:g}" for t in REPORT_RATES],
                    [[c] + [fmt(v, spec) for v in interp[metric]["pchip"][c].values()]
                     + [fmt(v, spec) for v in interp[metric]["linear"][c].values()]
                     for c in sorted(interp[metric]["pchip"], key=codec_order)])
    for metric in bd:
        if not bd[metric]:
            continue
        label = METRIC_LABEL[metric]
        refs = sorted({r for v in bd[metric].values() for r in v}, key=codec_order)
        print(f"BD-rate on {label} (% bits vs each column for equal {label}; negative = fewer bits; "
              f"n/a: the curves share no {label} range)")
        print_table(["codec"] + refs, [[t] + [fmt(bd[metric][t].get(r), "+.1f") for r in refs]
                                       for t in sorted(bd[metric], key=codec_order)])
        spec = "+.3f" if metric == "visqol" else "+.1f"
        print(f"BD-{label} (mean {label} difference over the common rate range)")
        print_table(["codec"] + refs, [[t] + [fmt(bdq[metric][t].get(r), spec) for r in refs]
                                       for t in sorted(bdq[metric], key=codec_order)])


def write_plot(path, curve, interp=None):
    """One panel per metric: mean quality against mean actual rate, log-rate axis."""
    try:
        return quality.plot_curves(path, curve, codec_order, REPORT_RATES)
    except ImportError:
        print("compare: matplotlib is not installed (pip install matplotlib); no plot written", file=sys.stderr)
        return False


def nmr_plot(args):
    """--nmr: per-band noise-to-mask ratio of pacodec for one clip."""
    import soundfile as sf

    clip = Path(args.nmr)
    if not clip.is_file():
        clip = find_clips(args.corpus, args.nmr)[0]
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        from pacodec.analysis import nmr_per_band
    except ImportError as exc:
        fail(f"--nmr needs pacodec.analysis.nmr_per_band(data, samplerate, bitrate) -> "
             f"(band_centres_hz, nmr_db (frames, bands)), which is not available yet ({exc})")
    data, sr = sf.read(clip, dtype="float32", always_2d=True)
    bitrate = args.nmr_bitrate / 2.0 if data.shape[1] == 1 else args.nmr_bitrate
    centres, nmr = nmr_per_band(data, sr, bitrate)
    centres = np.asarray(centres, float)
    nmr = np.atleast_2d(np.asarray(nmr, float))
    if nmr.shape[1] != centres.size:
        fail(f"nmr_per_band returned {nmr.shape} for {centres.size} bands: expected (frames, bands)")
    out = args.nmr_plot or Path(f"nmr_{clip.stem}_{bitrate:g}k.png")
    finite = np.where(np.isfinite(nmr), nmr, np.nan)
    print(f"{clip.stem} at {bitrate:g} kbps: {nmr.shape[0]} frames x {nmr.shape[1]} bands; "
          f"frames x bands with NMR > 0 dB: {np.nanmean(finite > 0) * 100:.1f} %; "
          f"mean NMR {np.nanmean(finite):.1f} dB")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        fail("matplotlib is not installed (pip install matplotlib): cannot plot --nmr")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), gridspec_kw={"height_ratios": [3, 2]})
    duration = data.shape[0] / sr
    limit = 30.0
    im = top.imshow(np.clip(finite, -limit, limit).T, aspect="auto", origin="lower", cmap="RdBu_r",
                    vmin=-limit, vmax=limit, extent=(0, duration, -0.5, centres.size - 0.5),
                    interpolation="nearest")
    step = max(1, centres.size // 8)
    top.set_yticks(range(0, centres.size, step))
    top.set_yticklabels([f"{c / 1000:.2g}k" if c >= 1000 else f"{c:.0f}" for c in centres[::step]])
    top.set_xlabel("time (s)")
    top.set_ylabel("band centre (Hz)")
    top.set_title(f"pacodec NMR per band: {clip.stem}, {bitrate:g} kbps (red: noise above mask)")
    fig.colorbar(im, ax=top, label="NMR (dB)")
    bottom.semilogx(centres, np.nanmean(finite, axis=0), "o-", label="mean")
    bottom.semilogx(centres, np.nanpercentile(finite, 95, axis=0), ".--", label="95th percentile")
    bottom.axhline(0.0, color="k", lw=0.8)
    bottom.set_xlabel("band centre (Hz)")
    bottom.set_ylabel("NMR (dB)")
    bottom.grid(True, which="both", alpha=0.3)
    bottom.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.nmr:
        return nmr_plot(args)
    if args.jobs < 1:
        fail("-j must be at least 1")
    try:
        rates = parse_list(args.bitrates, float)
    except ValueError:
        fail(f"bad --bitrates {args.bitrates!r}: give numbers in kbps")
    rates = [int(r) if r.is_integer() else r for r in rates]
    if not rates or min(rates) <= 0:
        fail("--bitrates must be positive numbers")
    if args.low_delay:
        if args.codecs is None:
            args.codecs = "pacodec,opus16ld"
        if "--low-delay" not in shlex.split(args.pacodec_args):
            args.pacodec_args = f"{args.pacodec_args} --low-delay".strip()
        if args.samplerate is None:
            args.samplerate = 48000
    if args.samplerate is not None and not 8000 <= args.samplerate <= 192000:
        fail(f"--samplerate {args.samplerate}: give a rate in 8000..192000 Hz")
    codecs = parse_list(args.codecs if args.codecs is not None else ",".join(ALL_CODECS))
    unknown = [c for c in codecs if c not in KNOWN_CODECS]
    if unknown:
        fail(f"unknown codec(s) {', '.join(unknown)}; choose from {', '.join(KNOWN_CODECS)}")
    args.variants = []
    for v in args.pacodec_variant:
        name, sep, extra = v.partition("=")
        if not sep or not name:
            fail(f"--pacodec-variant wants NAME=ARGS, got {v!r}")
        args.variants.append((name, extra))
        codecs.append(f"pacodec:{name}")
    clips = find_clips(args.corpus, args.clips)
    if args.excerpt is not None and not args.excerpt > 0:
        fail("--excerpt must be a positive number of seconds")
    cache_only = ()
    if args.pacodec_only:
        if not args.cache:
            fail("--pacodec-only takes the peers' rows from --cache DIR: give one")
        cache_only = tuple(c for c in codecs if not c.startswith("pacodec"))
        if "pacodec" not in codecs:
            codecs.insert(0, "pacodec")

    try:
        _, scorer_desc = load_scorer(args.visqol)
    except ToolMissing as exc:
        fail(str(exc), code=3)
    scorer2f, scorer2f_desc = load_scorer2f(args.mushra2f)
    if scorer2f is None:
        print(f"compare: note: 2f-model not scored: {scorer2f_desc}", file=sys.stderr)
    notes = {}
    versions = check_tools(codecs, pacodec_command(args.pacodec_cmd), notes)
    for codec, why in notes.items():
        print(f"compare: note: {codec} skipped: {why}", file=sys.stderr)
    codecs = [c for c in codecs if c not in notes]
    if any(c.startswith("pacodec") for c in codecs):
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    jobs = make_jobs(args, codecs, clips, rates, versions, scorer_desc, scorer2f_desc, cache_only)
    rows = run_jobs(jobs, args.jobs, args.quiet)

    for path in args.baseline:
        try:
            old = json.loads(path.read_text())["rows"]
        except (OSError, ValueError, KeyError) as exc:
            fail(f"cannot read --baseline {path}: {exc}")
        have = set(codecs)
        names = {c.stem for c in clips}
        rows += [r for r in old if r["codec"] not in have and r["clip"] in names and r["nominal_kbps"] in rates]
        rows.sort(key=lambda r: (codec_order(r["codec"]), r["clip"], r["nominal_kbps"]))

    means, curve, interp, bd, bdq = summarise(rows)
    print_report(rows, means, interp, bd, bdq, clip_table=not args.no_clip_table)
    errors = [r for r in rows if r.get("error")]
    if args.json:
        meta = {"corpus": str(args.corpus), "clips": [c.stem for c in clips], "bitrates": rates,
                "codecs": codecs, "scorer": scorer_desc, "scorer2f": scorer2f_desc, "excerpt_s": args.excerpt,
                "skipped": notes, "tools": versions, "max_lag": args.max_lag,
                "pacodec_mode": args.pacodec_mode, "pacodec_args": args.pacodec_args,
                **({"samplerate": args.samplerate} if args.samplerate else {}),
                "variants": dict(args.variants), "argv": sys.argv[1:] if argv is None else list(argv)}
        doc = {"meta": meta, "rows": rows, "means": means, "interpolated": interp, "bd_rate": bd,
               "bd_quality": bdq}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_json_safe(doc), indent=1))
        print(f"wrote {args.json}")
    if args.plot and write_plot(args.plot, curve, interp):
        print(f"wrote {args.plot}")
    if errors:
        print(f"compare: {len(errors)} row(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
