#!/usr/bin/env python3
"""Packet-loss concealment measured: pacodec's methods against each other and against Opus.

For each clip: encode (pacodec 96 kbit/s, 1024-sample frames at 48 kHz), decode every packet
(the lossless reference), then decode with packets dropped by a seeded loss pattern — random
(Bernoulli) or bursty (two-state Gilbert model, mean burst 3 frames, same average loss) — with
each concealment method, and score the result against the lossless decoding with ViSQOL
(MOS-LQO, 1..5) and the 2f-model (estimated MUSHRA, 0..100).  Opus (libopus through ctypes,
96 kbit/s, 20 ms frames, its own PLC for each missing packet) is scored the same way against
its own lossless decoding, with the same loss rates (its pattern is drawn per 20 ms packet).

    python tools/conceal_eval.py [--clips a,b,...] [--seconds 8] [--losses 0.05,0.1,0.2]
                                 [--methods spectral,pitch,opus] [--no-2f] [--json out.json]

Scoring tools: ../shared/tools/visqol.py and mushra2f.py (set PACODEC_SCORE_TOOLS to
another directory holding them).
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import sys
import time

import numpy as np
import soundfile as sf

RATE = 48000
_SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
TOOLS = os.environ.get("PACODEC_SCORE_TOOLS", os.path.join(_SHARED, "tools"))
CORPUS = os.environ.get("PACODEC_CORPUS", os.path.join(_SHARED, "corpus"))
DEFAULT_CLIPS = "guitar_em9,piano,speech_alsa,orchestral_elfland,bass_voxy,amen_drums"


def load(name, seconds):
    from scipy.signal import resample_poly
    x, sr = sf.read(os.path.join(CORPUS, name + ".flac"), dtype="float32", always_2d=True)
    if sr != RATE:
        from math import gcd
        g = gcd(sr, RATE)
        x = resample_poly(x, RATE // g, sr // g, axis=0).astype(np.float32)
    if x.shape[1] == 1:
        x = np.repeat(x, 2, axis=1)
    return x[:int(seconds * RATE), :2]


def loss_pattern(n, rate, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.random(n) < rate
    # Gilbert: bad state loses every packet; leave it with 1/3 (mean burst 3)
    p_gb = 1.0 / 3.0
    p_bg = rate * p_gb / (1.0 - rate)
    lost = np.zeros(n, bool)
    bad = False
    for i in range(n):
        bad = (rng.random() >= p_gb) if bad else (rng.random() < p_bg)
        lost[i] = bad
    return lost


def pacodec_decode(frames, lost, method):
    import pacodec.conceal as conceal
    from pacodec.decoder import Decoder
    old = conceal.DEFAULT_METHOD
    conceal.DEFAULT_METHOD = method
    try:
        dec = Decoder()
        out = [dec.decode_packet(None if (lost is not None and lost[i]) else f)
               for i, f in enumerate(frames)]
    finally:
        conceal.DEFAULT_METHOD = old
    return np.concatenate([o for o in out if len(o)])


class Opus:
    """libopus via ctypes: encode float frames, decode packets or conceal (data=NULL)."""

    def __init__(self, bitrate=96000, frame=960):
        path = ctypes.util.find_library("opus") or "libopus.so.0"
        self.lib = lib = ctypes.CDLL(path)
        lib.opus_get_version_string.restype = ctypes.c_char_p
        self.version = lib.opus_get_version_string().decode()
        err = ctypes.c_int()
        lib.opus_encoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.restype = ctypes.c_void_p
        self.enc = lib.opus_encoder_create(RATE, 2, 2049, ctypes.byref(err))   # AUDIO
        if err.value:
            raise RuntimeError("opus_encoder_create failed")
        lib.opus_encoder_ctl(ctypes.c_void_p(self.enc), 4002, ctypes.c_int(bitrate))  # BITRATE
        self.frame = frame
        self.err = err

    def encode(self, x):
        lib = self.lib
        n = self.frame
        pad = (-len(x)) % n
        x = np.concatenate([x, np.zeros((pad, 2), np.float32)]).astype(np.float32)
        buf = ctypes.create_string_buffer(4000)
        pkts = []
        for i in range(0, len(x), n):
            blk = np.ascontiguousarray(x[i:i + n])
            k = lib.opus_encode_float(ctypes.c_void_p(self.enc),
                                      blk.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), n, buf,
                                      4000)
            if k < 0:
                raise RuntimeError("opus_encode_float failed")
            pkts.append(buf.raw[:k])
        return pkts

    def decode(self, pkts, lost=None):
        lib = self.lib
        dec = lib.opus_decoder_create(RATE, 2, ctypes.byref(self.err))
        out = np.zeros((self.frame, 2), np.float32)
        res = []
        ptr = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        for i, p in enumerate(pkts):
            if lost is not None and lost[i]:
                k = lib.opus_decode_float(ctypes.c_void_p(dec), None, 0, ptr, self.frame, 0)
            else:
                k = lib.opus_decode_float(ctypes.c_void_p(dec), p, len(p), ptr, self.frame, 0)
            if k < 0:
                raise RuntimeError("opus_decode_float failed")
            res.append(out[:k].copy())
        lib.opus_decoder_destroy(ctypes.c_void_p(dec))
        return np.concatenate(res)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default=DEFAULT_CLIPS)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--losses", default="0.05,0.1,0.2")
    ap.add_argument("--kinds", default="random,bursty")
    ap.add_argument("--methods", default="spectral,pitch,opus")
    ap.add_argument("--bitrate", type=float, default=96)
    ap.add_argument("--no-2f", action="store_true", help="ViSQOL only (the 2f-model is slow)")
    ap.add_argument("--json", help="write every score here")
    args = ap.parse_args(argv)
    sys.path.insert(0, TOOLS)
    from visqol import score as visqol
    score2f = None
    if not args.no_2f:
        from mushra2f import score2f
    from pacodec.encoder import Encoder
    methods = args.methods.split(",")
    losses = [float(v) for v in args.losses.split(",")]
    kinds = args.kinds.split(",")
    opus = Opus(int(args.bitrate * 1000)) if "opus" in methods else None
    if opus is not None:
        print(f"# opus: {opus.version}", flush=True)
    rows = []
    for ci, clip in enumerate(args.clips.split(",")):
        x = load(clip, args.seconds)
        enc = Encoder(RATE, 2, bitrate=args.bitrate)
        frames = enc.encode(x) + enc.flush()
        frames = frames[:-1]                       # the end-of-stream frame is never lost
        ref = pacodec_decode(frames, None, "spectral")
        if opus is not None:
            opkts = opus.encode(x)
            oref = opus.decode(opkts)
        for kind in kinds:
            for rate in losses:
                seed = 1000 * ci + int(rate * 100) + (500 if kind == "bursty" else 0)
                for m in methods:
                    t0 = time.time()
                    if m == "opus":
                        lost = loss_pattern(len(opkts), rate, kind, seed)
                        y, r = opus.decode(opkts, lost), oref
                    else:
                        lost = loss_pattern(len(frames), rate, kind, seed)
                        lost[:2] = False
                        y, r = pacodec_decode(frames, lost, m), ref
                    n = min(len(y), len(r))
                    row = {"clip": clip, "kind": kind, "loss": rate, "method": m,
                           "lost_frac": round(float(lost.mean()), 4),
                           "visqol": round(visqol(r[:n], RATE, y[:n], RATE), 3)}
                    if score2f is not None:
                        row["mushra2f"] = round(score2f(r[:n], RATE, y[:n], RATE), 1)
                    row["secs"] = round(time.time() - t0, 1)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print("\n# means over clips")
    print(f"{'kind':7s} {'loss':>5s} " + " ".join(f"{m + ' ViSQOL':>16s}" for m in methods)
          + ("" if score2f is None else " " + " ".join(f"{m + ' 2f':>12s}" for m in methods)))
    for kind in kinds:
        for rate in losses:
            sel = {m: [r for r in rows if r["kind"] == kind and r["loss"] == rate
                       and r["method"] == m] for m in methods}
            line = f"{kind:7s} {rate:5.2f} " + " ".join(
                f"{np.mean([r['visqol'] for r in sel[m]]):16.3f}" for m in methods)
            if score2f is not None:
                line += " " + " ".join(f"{np.mean([r['mushra2f'] for r in sel[m]]):12.1f}"
                                       for m in methods)
            print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
