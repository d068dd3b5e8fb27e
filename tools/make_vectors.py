#!/usr/bin/env python3
"""Make the conformance vectors in bitstreams/vectors/ (FORMAT.md §11).

    python tools/make_vectors.py            # rewrite every vector and the manifest

Each vector is a small .pac file made from the shipped CC0 clips or a synthetic signal, with its
reference decoding stored as 16-bit PCM WAV (``NAME.ref.wav``) and listed in ``manifest.json`` with
the SHA-256 of both files and the tolerance a conforming decoder must meet (max |difference| in
16-bit LSBs).  Run it only when the format or the normative decoder changes on purpose, and say so
in FORMAT.md's change log.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pacodec  # noqa: E402

OUT = ROOT / "bitstreams" / "vectors"
TOLERANCE_LSB = 2


def clip(name, seconds, start=0.0):
    p = ROOT / "pacodec" / "data" / name          # shipped clips, else the tests' own
    x, fs = sf.read(p if p.exists() else ROOT / "tests" / "data" / name, always_2d=True)
    a = int(start * fs)
    return x[a:a + int(seconds * fs)], fs


def resample(x, fs, to):
    from math import gcd
    g = gcd(fs, to)
    return resample_poly(x, to // g, fs // g, axis=0)


def vectors():
    rng = np.random.default_rng(11)
    piano, fs = clip("piano.flac", 0.5, 0.2)
    drums, _ = clip("amen_drums.flac", 0.6, 0.0)
    t = np.arange(int(0.4 * 22050)) / 22050
    three = np.stack([0.3 * np.sin(2 * np.pi * f * t) for f in (330, 550, 880)], 1)
    three += 0.02 * rng.standard_normal(three.shape)
    yield "stereo_44k_power_long", piano, fs, dict(bitrate=128, quantizer="power")
    yield "stereo_44k_power_short", drums, fs, dict(bitrate=96, quantizer="power")
    yield "stereo_44k_uniform_kbd", piano, fs, dict(bitrate=96, quantizer="uniform",
                                                    window_shape="kbd")
    yield "stereo_48k_mulaw_lowdelay", resample(piano, fs, 48000), 48000, dict(
        bitrate=128, quantizer="mulaw", low_delay=True)
    yield "mono_8k_uniform", resample(piano.mean(1, keepdims=True), fs, 8000), 8000, dict(
        bitrate=16, quantizer="uniform")
    yield "mono_96k_power_vbr", resample(drums[:, :1], fs, 96000)[: 96000 // 3], 96000, dict(
        quality=5, quantizer="power")
    yield "3ch_22k_mulaw_mu1000", three, 22050, dict(bitrate=96, quantizer="mulaw", mu=1000)
    yield "stereo_16k_power_abr", resample(drums, fs, 16000), 16000, dict(bitrate=32, mode="abr",
                                                                            quantizer="power")


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {"tolerance_lsb": TOLERANCE_LSB, "vectors": []}
    for name, x, fs, kw in vectors():
        enc = pacodec.Encoder(fs, x.shape[1], total_frames=len(x), **kw)
        data = enc.header() + b"".join(enc.encode(x)) + b"".join(enc.flush())
        pac = OUT / f"{name}.pac"
        pac.write_bytes(data)
        y, fs2 = pacodec.decode(data)
        ref = OUT / f"{name}.ref.wav"
        sf.write(ref, np.clip(y, -1, 32767 / 32768), fs2, subtype="PCM_16")
        manifest["vectors"].append({
            "name": name, "pac": pac.name, "reference": ref.name, "samplerate": fs2,
            "channels": int(y.shape[1]), "frames": int(len(y)), "encoder_args": kw,
            "pac_sha256": sha(pac), "reference_sha256": sha(ref)})
        print(f"{name}: {len(data)} bytes, {len(y)} x {y.shape[1]} @ {fs2}")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
