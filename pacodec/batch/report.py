"""``pacodec batch --report``: report.md and histograms from a tree's manifest."""
from __future__ import annotations

import os

from ..errors import PacodecError
from ..manifest import latest_files, load_manifest

__all__ = ["report"]


def report(out_dir, *, plots=True):
    """Write ``report.md`` (and ``report-dcr.png``, ``report-quality.png`` when matplotlib is
    installed) into ``out_dir`` from its manifest.  Returns ``(markdown path, [png paths],
    note)``."""
    out_dir = os.path.abspath(out_dir)
    records = load_manifest(out_dir)
    if not records:
        raise PacodecError(f"no manifest in {out_dir} (run 'pacodec batch IN_DIR {out_dir}' first)")
    latest = latest_files(records)
    errors = {}
    for r in records:
        if r.get("type") == "error":
            errors[r["input"]] = r
        elif r.get("type") == "file":
            errors.pop(r["input"], None)
    recs = sorted(latest.values(), key=lambda r: r["input"])
    enc = [r for r in recs if r["settings"].get("kind") == "encode"]
    pcm = sum(r["frames"] * r["channels"] * 2 for r in enc)
    out = sum(r["output_size"] for r in enc)
    hours = sum(r["duration"] for r in recs) / 3600
    summaries = [r for r in records if r.get("type") == "summary"]
    lines = [f"# pacodec batch report: {out_dir}", "",
             "| | |", "|---|---|",
             f"| files | {len(recs)} |",
             f"| audio | {hours:.3f} h |",
             f"| failed (latest attempt) | {len(errors)} |"]
    if enc:
        dur = sum(r["duration"] for r in enc)
        lines += [f"| 16-bit PCM size | {pcm / 1e6:.2f} MB |",
                  f"| compressed size | {out / 1e6:.2f} MB |",
                  f"| total DCR | {100 * (1 - out / pcm):.2f} % |" if pcm else "| total DCR | - |",
                  f"| mean bitrate | {8 * out / dur / 1000:.1f} kbit/s |" if dur else ""]
        settings = sorted({r["settings_key"] for r in enc})
        lines.append(f"| settings | {'; '.join(f'`{s}`' for s in settings)} |")
    summaries = [s for s in summaries if s.get("processed")]
    if summaries:
        s = summaries[-1]
        if s.get("files_per_second") is not None:
            lines.append(f"| last run | {s['processed']} files in {s['wall_seconds']:.1f} s "
                         f"({s['files_per_second']:.2f} files/s, {s['audio_hours_per_hour']:.1f} "
                         f"audio h/h, {s['backend']}) |")
    lines = [ln for ln in lines if ln]
    metrics = sorted({k for r in enc for k in (r.get("quality") or {})})
    if enc:
        dcrs = sorted(r["dcr"] for r in enc if r.get("dcr") is not None)
        if dcrs:
            q = lambda p: dcrs[min(len(dcrs) - 1, int(p * len(dcrs)))]  # noqa: E731
            lines += ["", "## DCR per file", "",
                      f"min {100 * dcrs[0]:.2f} %, 10th percentile {100 * q(.1):.2f} %, median "
                      f"{100 * q(.5):.2f} %, max {100 * dcrs[-1]:.2f} %"]
    for m in metrics:
        vals = sorted((r["quality"][m], r["input"]) for r in enc if m in (r.get("quality") or {}))
        lines += ["", f"## Quality: {m}", "",
                  f"{len(vals)} files, mean {sum(v for v, _ in vals) / len(vals):.3f}, min "
                  f"{vals[0][0]:.3f}", "", "| lowest | file |", "|---|---|"]
        lines += [f"| {v:.3f} | {name} |" for v, name in vals[:10]]
    if errors:
        lines += ["", "## Failures", ""]
        lines += [f"- `{r['input']}`: {r['error']}" for r in sorted(errors.values(),
                                                                     key=lambda r: r["input"])]
    pngs, note = [], None
    if plots and enc:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            note = ('matplotlib is not installed (pip install "pacodec[plot]"): histograms '
                    'skipped, report.md written')
        else:
            def histograms(name, panels, title=None):
                """One PNG of histograms, a panel per ``(values, xlabel)``."""
                fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.5),
                                         squeeze=False)
                for ax, (values, xlabel) in zip(axes[0], panels):
                    ax.hist(values, bins=30)
                    ax.set_xlabel(xlabel)
                    ax.set_ylabel("files")
                if title:
                    axes[0][0].set_title(title)
                fig.tight_layout()
                path = os.path.join(out_dir, name)
                fig.savefig(path, dpi=100)
                plt.close(fig)
                pngs.append(path)

            histograms("report-dcr.png",
                       [([100 * r["dcr"] for r in enc if r.get("dcr") is not None],
                         "DCR (%) per file")], "data compression rate vs 16-bit PCM")
            lines += ["", "![DCR histogram](report-dcr.png)"]
            if metrics:
                histograms("report-quality.png",
                           [([r["quality"][m] for r in enc if m in (r.get("quality") or {})],
                             f"{m} per file") for m in metrics])
                lines += ["", "![quality histogram](report-quality.png)"]
    md = os.path.join(out_dir, "report.md")
    from ..pacfile import atomic_output
    with atomic_output(md, force=True) as fh:
        fh.write(("\n".join(lines) + "\n").encode())
    return md, pngs, note
