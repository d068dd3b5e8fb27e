#!/usr/bin/env python3
"""ViSQOL and data compression rate (DCR) against the perceptual distance ``-d`` on a corpus.

    python tools/distance.py [--corpus DIR] [-d 0.5 1 2 4 8] [--plot distance.png] [--json F]

DCR = 1 - compressed / uncompressed, uncompressed = frames x channels x 2 bytes (16-bit PCM).
Each clip is encoded with ``pacodec.encode(x, fs, distance=D)`` (VBR: noise at D times the masking
threshold in amplitude), decoded, and scored with ViSQOL (audio mode, channels averaged).
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(job):
    import pacodec
    from pacodec.quality import visqol
    path, d = job
    x, fs = sf.read(path, always_2d=True)
    data = pacodec.encode(x, fs, distance=d)
    y, _ = pacodec.decode(data)
    dcr = 1 - len(data) / (len(x) * x.shape[1] * 2)
    kbps = 8 * len(data) / (len(x) / fs) / 1000
    return dict(clip=Path(path).stem, distance=d, kbps=kbps, dcr=dcr, visqol=visqol(x, y, fs),
                channels=x.shape[1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("-d", "--distances", type=float, nargs="+", default=[0.5, 1, 2, 4, 8])
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--plot")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    from pacodec.quality import available, INSTALL_HINT
    if not available():
        sys.exit(f"ViSQOL is not installed; run: {INSTALL_HINT}")
    clips = sorted(str(p) for p in Path(args.corpus).glob("*.flac"))
    if not clips:
        sys.exit(f"no .flac clips in {args.corpus}")
    jobs = [(c, d) for d in args.distances for c in clips]
    with ProcessPoolExecutor(args.jobs) as ex:
        rows = list(ex.map(one, jobs))
    print(f"{'distance':>8} {'mean kbps*':>10} {'mean DCR':>9} {'mean ViSQOL':>11}   (* mono clips x2)")
    summary = []
    for d in args.distances:
        r = [x for x in rows if x["distance"] == d]
        kb = np.mean([x["kbps"] * (2 / x["channels"]) for x in r])
        dcr = np.mean([x["dcr"] for x in r])
        vq = np.mean([x["visqol"] for x in r])
        summary.append((d, kb, dcr, vq))
        print(f"{d:8.2f} {kb:10.1f} {100 * dcr:8.2f}% {vq:11.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([s[2] * 100 for s in summary], [s[3] for s in summary], "o-")
        for d, kb, dcr, vq in summary:
            ax.annotate(f"d={d:g}", (dcr * 100, vq), textcoords="offset points", xytext=(4, 4))
        ax.set_xlabel("data compression rate DCR (%)")
        ax.set_ylabel("mean ViSQOL (audio)")
        ax.set_title("pacodec -d DISTANCE on the corpus")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
