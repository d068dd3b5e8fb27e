#!/usr/bin/env python3
"""Quality (ViSQOL and the 2f-model) and data compression rate against the perceptual distance ``-d``.

    python tools/distance.py [--corpus DIR] [-d 0.5 1 2 4 8] [--excerpt SECONDS] [--clips a,b]
                             [--plot distance.png] [--json F] [-j JOBS]

Each clip is encoded with ``pacodec.encode(x, fs, distance=D)`` (VBR: noise at D times the masking
threshold in amplitude), decoded (sample-aligned: no lag search) and scored with the same scorers
as ``tools/compare.py``: ViSQOL (audio mode) and the 2f-model (MUSHRA estimate, seabass-2f; its
column stays empty with a note when it is not installed).  DCR = 1 - compressed / uncompressed,
uncompressed = frames x channels x 2 bytes (16-bit PCM).  Mean bitrates are stereo-equivalent
(mono clips x 2), as in compare.py.
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
sys.path.insert(0, str(ROOT / "tools"))


def one(job):
    import compare

    import pacodec
    path, d, excerpt = job
    x, fs = sf.read(path, dtype="float64", always_2d=True)
    if excerpt:
        x = x[:max(1, int(round(excerpt * fs)))]
    data = pacodec.encode(x, fs, distance=d)
    y, _ = pacodec.decode(data)
    y = np.asarray(y, dtype=np.float64)
    visqol, _ = compare.load_scorer()
    score2f, _ = compare.load_scorer2f()
    kbps = 8 * len(data) / (len(x) / fs) / 1000
    return dict(clip=Path(path).stem, distance=d, kbps=kbps, channels=x.shape[1],
                stereo_kbps=compare.stereo_equivalent(kbps, x.shape[1]),
                dcr=compare.dcr(len(data), len(x), x.shape[1]),
                visqol=float(visqol(x.copy(), fs, y.copy(), fs)),
                mms=float(score2f(x.copy(), fs, y.copy(), fs)) if score2f else None)


def _mean(rows, key):
    v = [r[key] for r in rows if r[key] is not None]
    return float(np.mean(v)) if v else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("-d", "--distances", type=float, nargs="+", default=[0.5, 1, 2, 4, 8])
    ap.add_argument("--excerpt", type=float, metavar="SECONDS",
                    help="score only the first SECONDS of each clip (as compare.py --excerpt)")
    ap.add_argument("--clips", help="comma-separated clip names (default: every .flac in --corpus)")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--plot")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    import compare
    try:
        compare.load_scorer()
    except compare.ToolMissing as e:
        sys.exit(f"error: {e}")
    s2f, why = compare.load_scorer2f()
    if s2f is None:
        print(f"note: no 2f-model column ({why})", file=sys.stderr)
    if any(not d > 0 for d in args.distances):
        sys.exit("error: distances must be positive")
    clips = sorted(str(p) for p in Path(args.corpus).glob("*.flac"))
    if args.clips:
        want = set(args.clips.split(","))
        clips = [c for c in clips if Path(c).stem in want]
    if not clips:
        sys.exit(f"error: no .flac clips in {args.corpus}" + (f" named {args.clips}" if args.clips else ""))
    jobs = [(c, d, args.excerpt) for d in args.distances for c in clips]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as ex:
            rows = list(ex.map(one, jobs))
    else:
        rows = [one(j) for j in jobs]
    print(f"{len(clips)} clips" + (f", first {args.excerpt:g} s" if args.excerpt else ""))
    print(f"{'distance':>8} {'mean kbit/s*':>12} {'mean DCR':>9} {'ViSQOL':>7} {'2f':>6}   (* stereo-equivalent)")
    summary = []
    for d in args.distances:
        r = [x for x in rows if x["distance"] == d]
        s = dict(distance=d, kbps=_mean(r, "stereo_kbps"), dcr=_mean(r, "dcr"),
                 visqol=_mean(r, "visqol"), mms=_mean(r, "mms"))
        summary.append(s)
        mms = f"{s['mms']:6.1f}" if s["mms"] is not None else f"{'—':>6}"
        print(f"{d:8.2f} {s['kbps']:12.1f} {100 * s['dcr']:8.2f}% {s['visqol']:7.3f} {mms}")
    if args.json:
        Path(args.json).write_text(json.dumps({"excerpt_s": args.excerpt, "summary": summary,
                                               "rows": rows}, indent=1))
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        panels = [("visqol", "mean ViSQOL (audio)")] + ([("mms", "mean 2f-model (MUSHRA estimate)")]
                                                         if summary[0]["mms"] is not None else [])
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
        for ax, (key, label) in zip(axes[0], panels):
            ax.plot([s["dcr"] * 100 for s in summary], [s[key] for s in summary], "o-")
            for s in summary:
                ax.annotate(f"d={s['distance']:g}", (s["dcr"] * 100, s[key]),
                            textcoords="offset points", xytext=(4, 4))
            ax.set_xlabel("data compression rate DCR (%)")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
        fig.suptitle(f"pacodec -d DISTANCE on {len(clips)} clips")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
