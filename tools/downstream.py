"""Does a compressed data set still train?  Spoken-word classification on originals, pacodec
copies at several distances and Opus copies of matching size.

    python tools/downstream.py --work /tmp/downstream --plot docs/downstream.png

1. Data (made here, seeded): 10 words (yes no up down left right on off stop go) spoken by
   espeak-ng with 12 "speakers" (accent x voice variant), 3 speeds and random pitch, each twice
   with background noise cut from ../shared/corpus (crowd, ambient, vinyl, industrial) at 5-25
   dB SNR; 1-s clips, 16 kHz mono 16-bit WAV (720 clips).
2. Copies: ``pacodec.batch.run_batch`` at each ``-d`` (read back through
   ``pacodec.dataset.PacDataset``); Opus (libopus through PyAV, VBR, Ogg) at the bitrate whose
   total size matches each pacodec copy (calibrated on a grid of rates, interpolated).
3. Classifier: log-mel features (40 bands, 25 ms / 10 ms, per-clip mean removed; the word's
   frames pooled into 8 time segments, plus its length and per-band std, mean |delta| and 90th
   percentile over the clip: 441 values; log energies clamped to 60 dB below the clip's
   maximum, and once more with an absolute floor instead) and multinomial logistic regression with L2 (scipy L-BFGS), three
   speaker-disjoint folds (8 speakers train, 4 test).  Accuracy is reported for training and
   testing on the copy ("the data set is stored compressed") and for training on the copy and
   testing on the originals.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf
from scipy.optimize import minimize
from scipy.signal import resample_poly

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan"]
VARIANTS = ["m3", "f2"]
SPEEDS = [130, 170, 210]
NOISES = ["crowd.flac", "lunar_land.flac", "vinyl_scratch_rewind.flac", "industrial.flac"]
FS = 16000


def speak(word, voice, speed, pitch):
    with tempfile.NamedTemporaryFile(suffix=".wav") as t:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", t.name,
                        word], check=True, capture_output=True)
        x, fs = sf.read(t.name)
    return resample_poly(x, 160, 441) if fs == 22050 else resample_poly(x, FS, fs)


def build(corpus, root, seed=1):
    rng = np.random.default_rng(seed)
    noises = []
    for name in NOISES:
        n, fs = sf.read(os.path.join(corpus, name), always_2d=True)
        noises.append(resample_poly(n.mean(axis=1), FS // 100, fs // 100))
    items = []
    speakers = [f"{a}+{v}" for a in ACCENTS for v in VARIANTS]
    for si, voice in enumerate(speakers):
        for word in WORDS:
            for speed in SPEEDS:
                s = speak(word, voice, speed, int(rng.integers(30, 70)))
                on = np.flatnonzero(np.abs(s) > 0.02 * np.abs(s).max())
                s = s[max(0, on[0] - 160):on[-1] + 160] if len(on) else s
                for rep in range(2):
                    x = np.zeros(FS)
                    at = int(rng.integers(0, int(0.15 * FS)))
                    seg = s[:FS - at]
                    x[at:at + len(seg)] = seg
                    noise = noises[int(rng.integers(len(noises)))]
                    a = int(rng.integers(0, len(noise) - FS))
                    nz = noise[a:a + FS]
                    snr = rng.uniform(5, 25)
                    p_s = np.mean(seg ** 2)
                    nz = nz * np.sqrt(p_s / max(np.mean(nz ** 2), 1e-12) / 10 ** (snr / 10))
                    y = x + nz
                    y *= 0.5 / max(np.abs(y).max(), 1e-9)
                    rel = f"s{si:02d}/{word}_{speed}_{rep}.wav"
                    os.makedirs(os.path.join(root, f"s{si:02d}"), exist_ok=True)
                    sf.write(os.path.join(root, rel), y, FS, subtype="PCM_16")
                    items.append({"path": rel, "word": WORDS.index(word), "speaker": si})
    with open(os.path.join(root, "items.json"), "w") as f:
        json.dump(items, f)
    return items


# ------------------------------------------------------------------------------ features
def mel_bank(n_fft=400, n_mels=40, fs=FS):
    mel = lambda f: 2595 * np.log10(1 + f / 700)          # noqa: E731
    inv = lambda m: 700 * (10 ** (m / 2595) - 1)           # noqa: E731
    pts = inv(np.linspace(mel(50), mel(fs / 2), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1 / fs)
    W = np.zeros((n_mels, len(bins)))
    for m in range(n_mels):
        lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
        W[m] = np.clip(np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c)), 0, None)
    return W


BANK = mel_bank()


def log_mel(x, range_db=None):
    """Log mel energies; ``range_db`` clamps them to that range below the clip's maximum (as
    librosa's ``top_db``), otherwise an absolute floor (1e-8) applies."""
    x = np.asarray(x, np.float64).reshape(-1)[:FS]
    x = np.pad(x, (0, FS - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, 400)[::160] * np.hanning(400)
    P = np.abs(np.fft.rfft(frames, axis=1)) ** 2 @ BANK.T
    if range_db is not None:
        P = np.maximum(P, P.max() * 10 ** (-range_db / 10))
    return np.log(P + 1e-8)


def features(x, segments=8, range_db=60):
    """Log-mel of the word (frames above the clip's noise floor) pooled into ``segments`` equal
    time segments, its length, and shift-invariant statistics of the whole clip."""
    lm = log_mel(x, range_db)
    e = lm.mean(axis=1)
    act = np.flatnonzero(e > np.percentile(e, 20) + 2.0)
    a, b = (act[0], act[-1] + 1) if len(act) >= segments else (0, len(e))
    z = lm - lm.mean(axis=0)
    edges = np.linspace(a, b, segments + 1).astype(int)
    word = [z[edges[i]:max(edges[i + 1], edges[i] + 1)].mean(axis=0) for i in range(segments)]
    stats = [z.std(axis=0), np.abs(np.diff(lm, axis=0)).mean(axis=0), np.percentile(z, 90, axis=0)]
    return np.concatenate(word + [[(b - a) / 100]] + stats)


def train_lr(X, y, k, lam=1e-2):
    n, d = X.shape
    Y = np.eye(k)[y]

    def f(w):
        W = w.reshape(d + 1, k)
        Z = X @ W[:-1] + W[-1]
        Z -= Z.max(axis=1, keepdims=True)
        P = np.exp(Z)
        P /= P.sum(axis=1, keepdims=True)
        loss = -np.sum(Y * np.log(P + 1e-12)) / n + lam * np.sum(W[:-1] ** 2) / 2
        G = (P - Y) / n
        grad = np.vstack([X.T @ G + lam * W[:-1], G.sum(axis=0)])
        return loss, grad.ravel()
    r = minimize(f, np.zeros((d + 1) * k), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return r.x.reshape(d + 1, k)


def evaluate(F_train_src, F_test_src, items, folds=3):
    """Accuracy per fold: train on ``F_train_src`` rows of the training speakers, test on
    ``F_test_src`` rows of the held-out speakers."""
    y = np.array([it["word"] for it in items])
    spk = np.array([it["speaker"] for it in items])
    nspk = spk.max() + 1
    accs = []
    for f in range(folds):
        test = np.isin(spk, np.arange(f, nspk, folds))
        Xtr, Xte = F_train_src[~test], F_test_src[test]
        mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0) + 1e-6
        W = train_lr((Xtr - mu) / sd, y[~test], len(WORDS))
        pred = np.argmax(((Xte - mu) / sd) @ W[:-1] + W[-1], axis=1)
        accs.append(float(np.mean(pred == y[test])))
    return accs


# ------------------------------------------------------------------------------ copies
def opus_copy(items, src, dst, kbps):
    """Encode every clip with libopus (PyAV) at ``kbps``; returns (total bytes, decoded list)."""
    import av
    os.makedirs(dst, exist_ok=True)
    total, out = 0, []
    for it in items:
        x, fs = sf.read(os.path.join(src, it["path"]), dtype="int16")
        p = os.path.join(dst, it["path"].replace("/", "_")[:-4] + ".opus")
        with av.open(p, "w", format="ogg") as c:
            st = c.add_stream("libopus", rate=fs)
            st.bit_rate = int(kbps * 1000)
            st.layout = "mono"
            fr = av.AudioFrame.from_ndarray(x[None, :], format="s16", layout="mono")
            fr.sample_rate = fs
            for pkt in st.encode(fr):
                c.mux(pkt)
            for pkt in st.encode(None):
                c.mux(pkt)
        total += os.path.getsize(p)
        res = av.AudioResampler(format="flt", layout="mono", rate=fs)
        chunks = []
        with av.open(p) as c:
            for frame in c.decode(audio=0):
                for r in res.resample(frame):
                    chunks.append(r.to_ndarray().reshape(-1))
            for r in res.resample(None):
                chunks.append(r.to_ndarray().reshape(-1))
        y = np.concatenate(chunks) if chunks else np.zeros(0)
        out.append(y[:len(x)])
    return total, out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/downstream")
    ap.add_argument("--corpus", default=os.path.join(HERE, "..", "..", "shared", "corpus"))
    ap.add_argument("-d", "--distances", type=float, nargs="+", default=[0.25, 0.5, 1, 2, 4, 8, 16])
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--plot", help="save accuracy against DCR here (PNG)")
    ap.add_argument("--json", help="save the table here")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the data set and copies already in --work (pacodec batch resumes)")
    a = ap.parse_args()
    from pacodec import batch
    from pacodec.dataset import PacDataset
    t0 = time.time()
    orig = os.path.join(a.work, "orig")
    if a.reuse and os.path.exists(os.path.join(orig, "items.json")):
        with open(os.path.join(orig, "items.json")) as f:
            items = json.load(f)
    else:
        shutil.rmtree(a.work, ignore_errors=True)
        items = build(a.corpus, orig)
    n = len(items)
    pcm = n * FS * 2
    print(f"data set: {n} clips of 1 s, {len(WORDS)} words, "
          f"{1 + max(it['speaker'] for it in items)} speakers ({time.time() - t0:.0f} s)", flush=True)
    def feats(signals):
        signals = list(signals)
        return (np.array([features(x) for x in signals]),
                np.array([features(x, range_db=None) for x in signals]))

    F_orig, G_orig = feats(sf.read(os.path.join(orig, it["path"]))[0] for it in items)

    def row(name, size, F, G):
        return {"name": name, "kbps": 8 * size / n / 1000, "dcr": 1 - size / pcm,
                "acc": evaluate(F, F, items), "acc_orig": evaluate(F, F_orig, items),
                "acc_floor": evaluate(G, G, items)}
    rows = [row("original (16-bit WAV)", pcm, F_orig, G_orig)]
    rows[0].update(kbps=256.0, acc_orig=None)
    print(f"original: accuracy {np.mean(rows[0]['acc']):.3f}", flush=True)
    targets = []
    for d in a.distances:
        out = os.path.join(a.work, f"pac_d{d:g}")
        res = batch.run_batch(orig, out, batch.encode_settings(distance=d), jobs=a.jobs)
        assert not res.failed, res.failed
        ds = PacDataset(out)
        index = {r["input"]: i for i, r in enumerate(ds.records)}
        F, G = feats(ds[index[it["path"]]][0] for it in items)
        size = res.summary["output_bytes"]
        targets.append(size)
        rows.append(row(f"pacodec -d {d:g}", size, F, G))
        print(f"pacodec -d {d:g}: {rows[-1]['kbps']:.1f} kbit/s, DCR {100 * rows[-1]['dcr']:.2f} %, "
              f"accuracy {np.mean(rows[-1]['acc']):.3f} ({time.time() - t0:.0f} s)", flush=True)
    # Opus: total size on a grid of bitrates, then the bitrate matching each pacodec size
    grid = [6, 8, 12, 16, 24, 32, 48]
    sizes = [opus_copy(items[::10], orig, os.path.join(a.work, "opus_cal", str(k)), k)[0] * n
             / len(items[::10]) for k in grid]
    for d, size in zip(a.distances, targets):
        if size < sizes[0]:
            print(f"pacodec -d {d:g}: {size} bytes is below Opus's smallest size at 6 kbit/s "
                  f"({sizes[0]:.0f} bytes); Opus row at 6 kbit/s", flush=True)
        if size > sizes[-1]:
            print(f"pacodec -d {d:g}: {size} bytes is above Opus's size at {grid[-1]} kbit/s "
                  f"({sizes[-1]:.0f} bytes); Opus row at {grid[-1]} kbit/s", flush=True)
        k = float(np.exp(np.interp(np.log(size), np.log(sizes), np.log(grid))))
        total, ys = opus_copy(items, orig, os.path.join(a.work, f"opus_{k:.1f}"), k)
        F, G = feats(ys)
        rows.append(row(f"Opus {k:.1f} kbit/s (size of -d {d:g})", total, F, G))
        print(f"{rows[-1]['name']}: {rows[-1]['kbps']:.1f} kbit/s, DCR {100 * rows[-1]['dcr']:.2f} %, "
              f"accuracy {np.mean(rows[-1]['acc']):.3f} ({time.time() - t0:.0f} s)", flush=True)
    print("\n| data set | kbit/s (actual, files) | DCR | accuracy: train + test on it | "
          "trained on it, tested on originals | train + test, absolute log floor |\n"
          "|---|---|---|---|---|---|")
    for r in rows:
        acc = f"{100 * np.mean(r['acc']):.1f} % (folds {', '.join(f'{100 * v:.1f}' for v in r['acc'])})"
        ao = "—" if r["acc_orig"] is None else f"{100 * np.mean(r['acc_orig']):.1f} %"
        print(f"| {r['name']} | {r['kbps']:.1f} | {100 * r['dcr']:.2f} % | {acc} | {ao} | "
              f"{100 * np.mean(r['acc_floor']):.1f} % |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6.5, 4))
        ax.axhline(100 * np.mean(rows[0]["acc"]), color="k", ls="--", label="original")
        for prefix, style in [("pacodec", "o-"), ("Opus", "s-")]:
            rs = [r for r in rows if r["name"].startswith(prefix)]
            ax.plot([100 * r["dcr"] for r in rs], [100 * np.mean(r["acc"]) for r in rs], style,
                    label=f"{prefix} (train + test on copy)")
            ax.plot([100 * r["dcr"] for r in rs], [100 * np.mean(r["acc_orig"]) for r in rs],
                    style[0] + ":", label=f"{prefix} (test on originals)")
        for r in rows:
            if r["name"].startswith("pacodec"):
                ax.annotate(r["name"].split()[-1], (100 * r["dcr"], 100 * np.mean(r["acc"])),
                            textcoords="offset points", xytext=(4, -10), fontsize=8)
        ax.set_xlabel("DCR (%) = 1 - compressed / 16-bit PCM")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("10 spoken words, speaker-disjoint folds")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(a.plot, dpi=110)
        print(f"plot: {a.plot}")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
