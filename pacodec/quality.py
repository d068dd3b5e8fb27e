"""Measuring quality: the ViSQOL metric, and rate-quality curves.

**ViSQOL** (audio mode) is optional, from the ``audio-samples-qoe`` wheel; this module is the one
place that loads it (``pacodec demo``, ``pacodec batch --score``, ``tools/compare.py``).

That wheel declares a dependency (``audio-samples``) with no installable release; only the
package ``__init__`` needs it, so unless the real one is installed an empty stand-in module is
registered before importing the native scorer (:func:`native`).  Install the wheel with the two commands in the README ("Measuring quality").
Each channel is scored on its own and the scores averaged, so stereo errors count.  Raises
ImportError when the metric is not installed.

**Rate-quality curves** (what ``tools/compare.py`` reports; scipy): quality interpolated at given
rates over log-rate (:func:`interpolate_quality`), the Bjøntegaard delta rate and quality of two
curves (:func:`bd_rate`, :func:`bd_quality`), the delay of a decoded signal and its removal
(:func:`best_lag`, :func:`align`), and the summary of a comparison's rows (:func:`summarise`:
means over the clips, curves, interpolations and BD-rates; :func:`plot_curves`).
"""
from __future__ import annotations

import importlib.util
import math
import sys
import types

import numpy as np

__all__ = ["visqol", "available", "native", "version", "REPORT_RATES", "METRICS", "METRIC_LABEL",
           "interpolate_quality", "monotone_points", "bd_rate", "bd_quality",
           "stereo_equivalent", "dcr", "best_lag", "align", "mean_rows", "curves", "summarise",
           "clip_matrix", "plot_curves", "default_order"]

INSTALL_HINT = ("pip download --no-deps --only-binary=:all: -d wheels audio-samples-qoe==0.1.2 && "
                "pip install --no-deps wheels/audio_samples_qoe-0.1.2-*.whl")


def native():
    """The wheel's native scorer module (``_score(ref, sr, deg, sr, "audio")``); ImportError
    with the install commands when it is not installed."""
    if ("audio_samples" not in sys.modules
            and importlib.util.find_spec("audio_samples") is None):
        stub = types.ModuleType("audio_samples")
        stub.AudioSamples = type("AudioSamples", (), {"__doc__": "stand-in, never instantiated"})
        sys.modules["audio_samples"] = stub
    try:
        from audio_samples_qoe import _native
    except Exception as e:
        raise ImportError(f"ViSQOL (audio-samples-qoe) is not installed: {INSTALL_HINT}") from e
    return _native


def version() -> str:
    """The native scorer's version ("?" when it does not say); ImportError if not installed."""
    return getattr(native(), "__version__", "?")


def available() -> bool:
    try:
        native()
    except ImportError:
        return False
    return True


def visqol(ref, deg, samplerate: int) -> float:
    """Mean ViSQOL MOS-LQO (audio mode) over the channels of ``deg`` against ``ref``."""
    scorer = native()
    ref = np.asarray(ref, np.float64)
    deg = np.asarray(deg, np.float64)
    ref = ref[:, None] if ref.ndim == 1 else ref
    deg = deg[:, None] if deg.ndim == 1 else deg
    scores = []
    for c in range(ref.shape[1]):
        d = deg[:, min(c, deg.shape[1] - 1)]
        scores.append(scorer._score(np.ascontiguousarray(ref[:, c]), samplerate,
                                    np.ascontiguousarray(d), samplerate, "audio"))
    return float(np.mean(scores))


# ------------------------------------------------------------------------- rate-quality curves
#: the rates (kbit/s) a comparison reports interpolated quality at
REPORT_RATES = (64.0, 96.0, 128.0)
#: ViSQOL MOS-LQO (1..5); the 2f-model's estimated MUSHRA score (0..100)
METRICS = ("visqol", "mms")
METRIC_LABEL = {"visqol": "ViSQOL", "mms": "2f"}


def default_order(name):
    """Sort key of codec names: pacodec's configurations first, then by name."""
    return (name.split(":")[0] != "pacodec", name)


def _strict_curve(x, y):
    """Sort by x and average the y of equal x, so x is strictly increasing (PCHIP needs that)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    ux, inverse = np.unique(x, return_inverse=True)
    uy = np.bincount(inverse, weights=y) / np.bincount(inverse)
    return ux, uy


def interpolate_quality(rates_kbps, quality, targets_kbps=REPORT_RATES, method="pchip", slack=0.03):
    """Quality at each target rate, interpolated over log(rate): method "pchip" (monotone cubic) or
    "linear" (straight lines between points, as the peer table tools/compare.py reproduces was made).
    Up to `slack` (3 %) beyond the measured rates the end piece is extended, so a codec landing a hair
    under 64 kbps still gets a figure there; further out: NaN."""
    from scipy.interpolate import PchipInterpolator

    if method not in ("pchip", "linear"):
        raise ValueError(f"unknown interpolation {method!r}")
    x, y = _strict_curve(np.log(np.asarray(rates_kbps, dtype=float)), quality)
    t = np.log(np.atleast_1d(np.asarray(targets_kbps, dtype=float)))
    out = np.full(t.shape, np.nan)
    if x.size == 0:
        return out
    if x.size == 1:
        out[np.isclose(t, x[0])] = y[0]
        return out
    reach = math.log1p(slack) + 1e-12
    inside = (t >= x[0] - reach) & (t <= x[-1] + reach)
    tt = t[inside]
    if method == "pchip":
        out[inside] = PchipInterpolator(x, y, extrapolate=True)(tt)
    else:
        v = np.interp(tt, x, y)
        lo, hi = tt < x[0], tt > x[-1]
        v[lo] = y[0] + (tt[lo] - x[0]) * (y[1] - y[0]) / (x[1] - x[0])
        v[hi] = y[-1] + (tt[hi] - x[-1]) * (y[-1] - y[-2]) / (x[-1] - x[-2])
        out[inside] = v
    return out


def monotone_points(rates_kbps, quality):
    """The points of a rate-quality curve, by rate, that each raise the best quality so far."""
    r, q = _strict_curve(rates_kbps, quality)
    keep_r, keep_q = [], []
    for ri, qi in zip(r, q):
        if not keep_q or qi > keep_q[-1]:
            keep_r.append(ri)
            keep_q.append(qi)
    return np.array(keep_r), np.array(keep_q)


def bd_rate(ref_rates, ref_quality, test_rates, test_quality):
    """Bjøntegaard delta rate in percent of `test` against `ref` for equal quality (negative: test
    needs fewer bits). PCHIP of log-rate as a function of quality over the overlapping quality range.
    NaN when the curves do not overlap or have fewer than two usable points."""
    from scipy.interpolate import PchipInterpolator

    ra, qa = monotone_points(ref_rates, ref_quality)
    rb, qb = monotone_points(test_rates, test_quality)
    if ra.size < 2 or rb.size < 2 or np.any(ra <= 0) or np.any(rb <= 0):
        return float("nan")
    lo = max(qa[0], qb[0])
    hi = min(qa[-1], qb[-1])
    if not hi > lo:
        return float("nan")
    fa = PchipInterpolator(qa, np.log(ra))
    fb = PchipInterpolator(qb, np.log(rb))
    mean_a = fa.integrate(lo, hi) / (hi - lo)
    mean_b = fb.integrate(lo, hi) / (hi - lo)
    return float(100.0 * math.expm1(mean_b - mean_a))


def bd_quality(ref_rates, ref_quality, test_rates, test_quality):
    """Mean quality difference (test - ref) over the overlapping log-rate range, PCHIP in log-rate."""
    from scipy.interpolate import PchipInterpolator

    xa, qa = _strict_curve(np.log(np.asarray(ref_rates, float)), ref_quality)
    xb, qb = _strict_curve(np.log(np.asarray(test_rates, float)), test_quality)
    if xa.size < 2 or xb.size < 2:
        return float("nan")
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if not hi > lo:
        return float("nan")
    da = PchipInterpolator(xa, qa).integrate(lo, hi)
    db = PchipInterpolator(xb, qb).integrate(lo, hi)
    return float((db - da) / (hi - lo))


def stereo_equivalent(kbps, channels):
    """Rate counted as if the clip were stereo: a mono clip's rate doubles."""
    return kbps * 2.0 if channels == 1 else float(kbps)


def dcr(encoded_bytes, frames, channels):
    """Data compression ratio against 16-bit PCM: 1 - compressed / (frames x channels x 2)."""
    return 1.0 - encoded_bytes / float(frames * channels * 2)


def best_lag(ref, deg, max_lag):
    """Delay (samples) of `deg` against `ref` maximising their cross-correlation, |lag| <= max_lag.
    Positive: deg[n + lag] lines up with ref[n]."""
    from scipy.signal import correlate, correlation_lags

    a = np.asarray(ref, float)
    b = np.asarray(deg, float)
    a = a.mean(axis=1) if a.ndim == 2 else a
    b = b.mean(axis=1) if b.ndim == 2 else b
    if max_lag <= 0 or a.size == 0 or b.size == 0 or not np.any(b) or not np.any(a):
        return 0
    c = correlate(b, a, mode="full", method="fft")
    lags = correlation_lags(b.size, a.size, mode="full")
    window = np.abs(lags) <= max_lag
    c, lags = c[window], lags[window]
    # prefer the smallest |lag| among (numerically) equal maxima
    top = np.flatnonzero(c >= c.max() - 1e-9 * max(abs(c.max()), 1e-30))
    return int(lags[top[np.argmin(np.abs(lags[top]))]])


def align(deg, length, lag):
    """Shift `deg` (frames, channels) earlier by `lag` samples, then cut or zero-pad it to `length`."""
    deg = np.asarray(deg)
    if lag > 0:
        deg = deg[lag:]
    elif lag < 0:
        deg = np.concatenate([np.zeros((-lag,) + deg.shape[1:], deg.dtype), deg])
    if deg.shape[0] >= length:
        return deg[:length]
    return np.concatenate([deg, np.zeros((length - deg.shape[0],) + deg.shape[1:], deg.dtype)])


def mean_rows(rows, metrics=METRICS, order=None):
    """Mean per (codec, nominal rate) over the clips: stereo-equivalent kbps, each metric, DCR. A metric
    a row lacks (2f-model not installed) is left out of that metric's mean; `clips` counts scored rows.
    Sorted by codec (`order`: a sort key of codec names; default pacodec first) and nominal rate."""
    order = order or default_order
    groups = {}
    for r in rows:
        if r.get("error") or r.get("visqol") is None:
            continue
        groups.setdefault((r["codec"], r["nominal_kbps"]), []).append(r)
    out = []
    for (codec, nominal), rs in groups.items():
        m = {"codec": codec, "nominal_kbps": nominal, "clips": len(rs),
             "kbps": float(np.mean([r["stereo_kbps"] for r in rs])),
             "dcr": float(np.mean([r["dcr"] for r in rs]))}
        for metric in metrics:
            vals = [r[metric] for r in rs if r.get(metric) is not None]
            m[metric] = float(np.mean(vals)) if len(vals) == len(rs) else None
        out.append(m)
    out.sort(key=lambda m: (order(m["codec"]), m["nominal_kbps"]))
    return out


def curves(means, metric="visqol"):
    """codec -> (kbps array, metric array) sorted by rate (codecs without that metric are left out)."""
    by = {}
    for m in means:
        if m.get(metric) is not None:
            by.setdefault(m["codec"], []).append((m["kbps"], m[metric]))
    return {c: tuple(np.array(v) for v in zip(*sorted(pts))) for c, pts in by.items()}


def summarise(rows, metrics=METRICS, order=None, targets_kbps=REPORT_RATES):
    """Rows of a rate-quality comparison (one per codec, clip and nominal rate: ``codec``, ``clip``,
    ``nominal_kbps``, ``stereo_kbps``, ``dcr``, a score per metric; ``error`` when it failed) ->
    means; and per metric: curves, interpolations at ``targets_kbps`` (pchip and linear), BD-rate
    and BD-quality of each pacodec configuration (codec ``pacodec`` or ``pacodec:NAME``) against
    each other codec: dicts keyed metric -> ..."""
    order = order or default_order
    means = mean_rows(rows, metrics, order)
    curve, interp, bd, bdq = {}, {}, {}, {}
    for metric in metrics:
        cm = curves(means, metric)
        if not cm:
            continue
        curve[metric] = cm
        interp[metric] = {method: {c: dict(zip((f"{t:g}" for t in targets_kbps),
                                               map(float, interpolate_quality(r, q, targets_kbps, method))))
                                   for c, (r, q) in cm.items()}
                          for method in ("pchip", "linear")}
        names = sorted(cm, key=order)
        tests = [c for c in names if c.split(":")[0] == "pacodec"] or names
        refs = [c for c in names if c.split(":")[0] != "pacodec"]
        bd[metric], bdq[metric] = {}, {}
        for t in tests:
            for ref in refs:
                if t == ref:
                    continue
                bd[metric].setdefault(t, {})[ref] = bd_rate(*cm[ref], *cm[t])
                bdq[metric].setdefault(t, {})[ref] = bd_quality(*cm[ref], *cm[t])
    return means, curve, interp, bd, bdq


def clip_matrix(rows, metric, nominal):
    """clip -> codec -> metric at one nominal rate, for the side-by-side per-clip table."""
    out = {}
    for r in rows:
        if r.get("error") or r.get(metric) is None or r["nominal_kbps"] != nominal:
            continue
        out.setdefault(r["clip"], {})[r["codec"]] = r[metric]
    return out


def plot_curves(path, curve, order=None, targets_kbps=REPORT_RATES):
    """A PNG of ``curve`` (:func:`summarise`'s): one panel per metric, mean quality against mean
    actual rate on a log-rate axis, each codec's PCHIP curve through its points.  False when
    there is nothing to plot; ImportError without matplotlib (``pacodec[plot]``)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    order = order or default_order
    metrics = [m for m in METRICS if m in curve]
    if not metrics:
        return False
    fig, axes = plt.subplots(1, len(metrics), figsize=(7.5 * len(metrics), 5.5), squeeze=False)
    names = sorted({c for m in metrics for c in curve[m]}, key=order)
    colours = {c: f"C{i % 10}" for i, c in enumerate(names)}
    for ax, metric in zip(axes[0], metrics):
        for codec in sorted(curve[metric], key=order):
            r, q = curve[metric][codec]
            ax.plot(r, q, "o", label=codec, color=colours[codec])
            if r.size >= 2:
                dense = np.exp(np.linspace(np.log(r.min()), np.log(r.max()), 200))
                ax.plot(dense, interpolate_quality(r, q, dense), "-", color=colours[codec])
        for t in targets_kbps:
            ax.axvline(t, color="0.8", lw=0.8, ls=":")
        ax.set_xscale("log")
        ticks = [32, 48, 64, 80, 96, 128, 160, 192, 256]
        lo, hi = ax.get_xlim()
        ax.set_xticks([t for t in ticks if lo <= t <= hi])
        ax.set_xticklabels([str(t) for t in ticks if lo <= t <= hi])
        ax.minorticks_off()
        ax.set_xlabel("mean actual bitrate, stereo-equivalent (kbps)")
        ax.set_ylabel("mean ViSQOL MOS-LQO" if metric == "visqol" else "mean 2f-model MUSHRA estimate")
        ax.set_title(f"rate-quality: {METRIC_LABEL[metric]}")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
