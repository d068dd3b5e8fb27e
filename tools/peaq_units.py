#!/usr/bin/env python3
"""Which of pacodec's units the 2f-model's counted distortion falls in.

    python tools/peaq_units.py CLIP.flac -b 96          # CBR 96 kbit/s
    python tools/peaq_units.py CLIP.flac -q 7           # VBR quality 7
    python tools/peaq_units.py CLIP.flac -b 64 --split 4400

Encodes the clip with pacodec (the encoder's observer records every frame's books), decodes it,
runs PEAQ's ear model (seabass-2f, as tools/peaq_bands.py) and gives each of its bands in each
counted block (detection probability above 0.5, the blocks ADB averages over) the kind of unit
that codes that frequency in the nearest frame: ``zero`` (book 0), ``noise`` (book 7), ``coded``,
``beyond`` (above the frame's max_band) or ``short`` (a frame of short windows), per channel PEAQ
takes for that cell.  Per kind and side of ``--split`` Hz it prints the cells, the steps too quiet
and too loud, and the share of all counted steps: steps per cell tell which kind of unit
distorts, the shares where the 2f-model's points go.  Used to find that at 96 kbit/s on a dense
mix, noise units above 4.4 kHz carry three times the distortion per cell of coded ones
(docs/quality-history.md, session 13).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from peaq_bands import peaq_cells  # noqa: E402  (PEAQ's counted steps per band and block)
from pacodec.tables import NOISE_BOOK  # noqa: E402

KINDS = ("zero", "noise", "coded", "beyond", "short")
PEAQ_RATE = 48000          # peaq_bands.peaq_cells resamples both signals to this
PEAQ_HOP = 1024            # PEAQ's FFT ear model: 2048-sample blocks, half overlapping, at 48 kHz


def unit_kind_map(frames, samplerate, hop, nblocks, freqs, channels):
    """(channels, bands, blocks) kind index (KINDS) of the unit coding each PEAQ band centre
    ``freqs`` (Hz) in the frame nearest each PEAQ block's centre; ``frames``: per frame
    ``(is_short, books (channels, units), unit_bounds, nbands, max_band (channels,))``, frame k
    centred on input sample k * hop (FORMAT.md §6.3: frame k's block starts hop samples earlier).
    Blocks past the last frame are -1."""
    out = np.full((channels, len(freqs), nblocks), -1, dtype=np.int64)
    fbin = samplerate / (2.0 * hop)
    bins = (np.asarray(freqs, dtype=np.float64) / fbin).astype(np.int64)
    for j in range(nblocks):
        centre = (j * PEAQ_HOP + PEAQ_HOP) / PEAQ_RATE
        k = int(round(centre * samplerate / hop))
        if k >= len(frames):
            continue
        is_short, books, ub, nbands, max_band = frames[k]
        if is_short:
            out[:, :, j] = KINDS.index("short")
            continue
        u = np.searchsorted(ub, bins, side="right") - 1
        for c in range(channels):
            inside = (u < nbands) & (u < max_band[c])
            bk = books[c, np.minimum(u, books.shape[1] - 1)]
            kind = np.where(bk == 0, 0, np.where(bk == NOISE_BOOK, 1, 2))
            out[c, :, j] = np.where(inside, kind, KINDS.index("beyond"))
    return out


def split_steps(steps, sign, counted, chan, kinds, freqs, split_hz):
    """{(kind, "low"/"high"): [cells, steps too quiet, steps too loud]} over counted blocks;
    ``steps``/``sign``/``chan``: (bands, blocks) of the channel PEAQ takes per cell, ``kinds``:
    :func:`unit_kind_map`'s."""
    acc = {}
    nb, nblk = steps.shape
    for j in np.flatnonzero(counted):
        for b in range(nb):
            k = kinds[chan[b, j], b, j]
            if k < 0:
                continue
            a = acc.setdefault((KINDS[k], "high" if freqs[b] >= split_hz else "low"), [0, 0.0, 0.0])
            a[0] += 1
            a[1 if sign[b, j] > 0 else 2] += float(steps[b, j])
    return acc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clip")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("-b", "--bitrate", type=float, help="CBR kbit/s (all channels)")
    g.add_argument("-q", "--quality", type=float, help="VBR quality 0..10")
    ap.add_argument("--split", type=float, default=4400.0, help="Hz between 'low' and 'high'")
    a = ap.parse_args(argv)
    try:
        import soundfile as sf
        x, fs = sf.read(a.clip, always_2d=True)
    except Exception as e:                   # noqa: BLE001 - any unreadable input: one line
        sys.exit(f"peaq_units: cannot read {a.clip}: {e}")
    try:
        import resampy  # noqa: F401 - peaq_bands.peaq_cells needs both
        import seabass  # noqa: F401
    except ImportError:
        sys.exit("peaq_units: needs seabass-2f and resampy (pip install seabass-2f)")
    import pacodec
    frames = []
    opts = dict(bitrate=a.bitrate) if a.bitrate is not None else dict(quality=a.quality)
    try:
        enc = pacodec.Encoder(fs, x.shape[1], observer=lambda r: frames.append(
            (r.is_short, r.books.copy(), r.unit_bounds.copy(), r.nbands, r.max_band.copy())), **opts)
        data = enc.header() + b"".join(enc.encode(x)) + b"".join(enc.flush())
        y, _ = pacodec.decode(data)
    except pacodec.PacodecError as e:
        sys.exit(f"peaq_units: {e}")
    warnings.simplefilter("ignore")
    freqs, st, sign, chan, counted = peaq_cells(x, np.asarray(y[:len(x)], dtype=np.float64), fs)
    kinds = unit_kind_map(frames, fs, enc.frame_size, st.shape[1], freqs, x.shape[1])
    acc = split_steps(st, sign, counted, chan, kinds, freqs, a.split)
    total = sum(v[1] + v[2] for v in acc.values()) or 1.0
    print(f"{Path(a.clip).name}: {8 * len(data) / (len(x) / fs) / 1000:.1f} kbit/s, "
          f"{100 * counted.mean():.0f} % of blocks counted")
    for key in sorted(acc):
        cells, quiet, loud = acc[key]
        print(f"  {key[0]:6s} {key[1]:4s} cells {cells:7d}  too quiet {quiet:8.0f}  too loud {loud:8.0f}"
              f"  per cell {(quiet + loud) / max(cells, 1):.3f}  share {100 * (quiet + loud) / total:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
