#!/usr/bin/env python3
"""How far each band's short-time level of a decoded clip is from the original's, and what a
decoder that kept those levels exactly would score.

    python tools/band_levels.py CLIP [-b KBPS] [--opus16] [--oracle 1,2,4] [--regions 500,2000,5000,10000]

Encodes CLIP with pacodec (CBR at -b; a mono clip at half), decodes it, and analyses original and
decoded with the same STFT (2048 points, hop 1024, Hann) in bands of 1/R Bark (Zwicker's formula):

* **levels** (always): per frequency region, the distribution of the decoded level minus the
  original's in 0.25-Bark bands, block by block (bands below -60 dB of the clip's loudest band
  left out) -- the short-time level errors the PEAQ ear model behind the 2f-model counts (each
  band-block off by 1 dB or more); with ``--opus16`` the same for Opus 1.6 (PyAV) at the same
  nominal rate;
* **oracle** (``--oracle R,...``): the 2f-model and ViSQOL of the decoded clip after every band of
  1/R Bark in every STFT block is scaled to the original's energy (a band decoded to silence is
  filled with noise at it): an upper bound of what coding those energies would buy, the side
  information free.  ``../shared/tools/oracle_energy.py`` does the same in 25 fixed bands.

Developer diagnostics; nothing here is part of the format.  The oracle's noise is seeded, so a run
is repeatable.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NPERSEG = 2048
FILL_GAIN = 2.0
EDGES_DB = (-100, -10, -3, -1, -0.5, 0.5, 1, 3, 100)


def bark(f):
    """Zwicker and Terhardt's critical-band rate of ``f`` Hz."""
    f = np.asarray(f, float)
    return 13 * np.arctan(0.00076 * f) + 3.5 * np.arctan((f / 7500) ** 2)


def _stft(x, sr):
    from scipy.signal import stft
    f, _, X = stft(x.T, sr, nperseg=NPERSEG, noverlap=NPERSEG // 2)
    return f, X                                   # X: (channels, bins, blocks)


def band_cells(ref, deg, sr, per_bark=4):
    """Per (channel, band, block) cell of the bands of ``1/per_bark`` Bark whose original energy
    is within 60 dB of the loudest cell's: the band's centre in Hz and the decoded minus original
    level in dB (one STFT of each signal, whatever regions are asked of it afterwards)."""
    f, X = _stft(ref, sr)
    _, Y = _stft(deg, sr)
    band = np.floor(bark(f) * per_bark).astype(int)
    ex, ey, centre = [], [], []
    for b in np.unique(band):
        k = band == b
        ex.append((np.abs(X[:, k]) ** 2).sum(1).ravel())
        ey.append((np.abs(Y[:, k]) ** 2).sum(1).ravel())
        centre.append(np.full(ex[-1].shape, f[k].mean()))
    ex, ey, centre = np.concatenate(ex), np.concatenate(ey), np.concatenate(centre)
    keep = ex > ex.max() * 1e-6
    return centre[keep], 10 * np.log10((ey[keep] + 1e-30) / ex[keep])


def level_errors(ref, deg, sr, per_bark=4, lo=0.0, hi=None):
    """The level differences of :func:`band_cells` whose band is centred in ``lo .. hi`` Hz."""
    centre, d = band_cells(ref, deg, sr, per_bark)
    hi = sr / 2 if hi is None else hi
    return d[(centre >= lo) & (centre < hi)]


def oracle(ref, deg, sr, per_bark, seed=0):
    """``deg`` with every band of ``1/per_bark`` Bark of every STFT block scaled to ``ref``'s
    energy; bands that decoded to (near) silence filled with seeded noise at it."""
    from scipy.signal import istft
    rng = np.random.default_rng(seed)
    out = np.zeros_like(deg, dtype=float)
    for c in range(deg.shape[1]):
        f, X = _stft(ref[:, c:c + 1], sr)
        _, Y = _stft(deg[:, c:c + 1], sr)
        X, Y = X[0], Y[0]
        band = np.floor(bark(f) * per_bark).astype(int)
        Z = Y.copy()
        for b in np.unique(band):
            k = band == b
            ex = (np.abs(X[k]) ** 2).sum(0)
            ey = (np.abs(Y[k]) ** 2).sum(0)
            empty = ey < 1e-6 * ex + 1e-18
            noise = rng.standard_normal(Y[k].shape) + 1j * rng.standard_normal(Y[k].shape)
            # x FILL_GAIN: noise drawn afresh per block loses half its energy in the
            # overlap-add (it does not add coherently, as a decoded band does)
            noise *= np.sqrt(FILL_GAIN * ex / np.maximum((np.abs(noise) ** 2).sum(0), 1e-30))
            Z[k] = np.where(empty, noise, Y[k] * np.sqrt(ex / np.maximum(ey, 1e-30)))
        _, z = istft(Z, sr, nperseg=NPERSEG, noverlap=NPERSEG // 2)
        out[:, c] = z[:len(deg)]
    return out


def _histogram(d):
    h = np.histogram(d, EDGES_DB)[0] / max(len(d), 1) * 100
    labels = ("<-10", "-10..-3", "-3..-1", "-1..-0.5", "±0.5", "0.5..1", "1..3", ">3")
    return "  ".join(f"{lab} {v:4.1f}%" for lab, v in zip(labels, h))


def main(argv=None):
    import soundfile as sf

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("clip")
    p.add_argument("-b", "--bitrate", type=float, default=96.0, help="nominal stereo kbps (mono: half)")
    p.add_argument("--opus16", action="store_true", help="also Opus 1.6 (PyAV) at the same nominal rate")
    p.add_argument("--oracle", default="", help="comma-separated bands per Bark to score the oracle at")
    p.add_argument("--regions", default="500,2000,5000,10000", help="region edges in Hz")
    a = p.parse_args(argv)
    try:
        x, sr = sf.read(a.clip, dtype="float64", always_2d=True)
        per_bark = [int(v) for v in a.oracle.split(",") if v.strip()]
        edges = [float(v) for v in a.regions.split(",")]
    except Exception as e:             # noqa: BLE001 - one line for any bad input
        sys.exit(f"band_levels: {e}")
    warnings.simplefilter("ignore")
    import pacodec
    from pacodec.quality import align, best_lag
    kbps = a.bitrate / 2 if x.shape[1] == 1 else a.bitrate
    dur = len(x) / sr
    data = pacodec.encode(x, sr, bitrate=kbps)
    y, _ = pacodec.decode(data)
    y = np.asarray(y, float).reshape(len(y), -1)[:len(x)]
    decoded = {"pacodec": (8 * len(data) / dur / 1000, y)}
    if a.opus16:
        sys.path.insert(0, str(ROOT / "tools"))
        from compare import opus16_encode_decode
        with tempfile.TemporaryDirectory() as tmp:
            ref, enc, dec = Path(tmp) / "r.wav", Path(tmp) / "o.opus", Path(tmp) / "o.wav"
            sf.write(ref, x, sr, subtype="PCM_16")
            opus16_encode_decode(ref, enc, dec, sr, x.shape[1], kbps)
            z, _ = sf.read(dec, always_2d=True)
            decoded["opus16"] = (8 * enc.stat().st_size / dur / 1000, align(z, len(x), best_lag(x, z, 2048)))
    print(f"{Path(a.clip).stem}: {dur:.1f} s, nominal {kbps:g} kbit/s; decoded minus original level, "
          f"0.25-Bark bands per 2048-point block")
    for name, (rate, d) in decoded.items():
        print(f"  {name} ({rate:.1f} kbit/s)")
        centre, diff = band_cells(x, d, sr, 4)
        for lo, hi in zip([0.0] + edges, edges + [sr / 2]):
            e = diff[(centre >= lo) & (centre < hi)]
            if len(e):
                print(f"    {lo:>6.0f}-{hi:<6.0f} Hz  mean {e.mean():+5.2f} dB  {_histogram(e)}")
    if per_bark:
        sys.path.insert(0, str(ROOT.parent / "shared" / "tools"))
        try:
            from mushra2f import score2f
            from visqol import score
        except ImportError as e:
            sys.exit(f"band_levels: --oracle needs ../shared/tools (2f-model and ViSQOL): {e}")
        print(f"  oracle (pacodec's decode, each band's energy per block set to the original's)")
        print(f"    as decoded           2f {score2f(x, sr, y, sr):5.1f}  ViSQOL {score(x, sr, y, sr):.3f}")
        for r in per_bark:
            o = oracle(x, y, sr, r)
            print(f"    1/{r} Bark bands       2f {score2f(x, sr, o, sr):5.1f}  ViSQOL {score(x, sr, o, sr):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
