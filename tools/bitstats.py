#!/usr/bin/env python3
"""Where pacodec's bits go, and how the decoded waveform compares with another codec's, band by band.

    python tools/bitstats.py CLIP [-b KBPS] [--excerpt S] [--opus16] [--low-delay] [--group N]

Encodes CLIP with pacodec (CBR at -b, mono clips at half), and reports:

* the bits of the stream split into framing (frame header, CRC, config frames, frame groups'
  count and lacing bytes, stuffing), per-frame side
  information (block flags, max_band, M/S flags), book indices, scalefactors, spectral codewords,
  sign bits and escape suffixes; units zeroed / noise-substituted / coded;
* for the spectral data: the bits spent against the empirical zero-order entropy of the same
  symbols under each book (what an ideal static code trained on this clip would need) and against
  the entropy of the individual quantized magnitudes with sign (what a per-coefficient adaptive
  coder could approach);
* for book indices, scalefactors and spectral codewords: the bits an adaptive arithmetic coder of
  the same contexts would need (ideal code length, :class:`AdaptiveCost`) -- the yardstick of
  what the format's prefix codes leave on the table;
* per critical band, the waveform SNR of the decoded signal (STFT, 2048 points, error energy
  over the whole clip), for pacodec and, with --opus16, for Opus 1.6 (PyAV libopus) at the same
  nominal rate, and its actual rate.

Developer diagnostics only; nothing here is part of the format.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pacodec.encoder import Encoder  # noqa: E402
from pacodec.huffman import BOOK_DIM, BOOK_LAV  # noqa: E402
from pacodec.tables import (ESC_BOOK, ESC_VALUE, MS_GROUP, N_BOOKS,  # noqa: E402
                            NOISE_BOOK, SF_DELTA_MAX, CRITICAL_BAND_EDGES_HZ, book_partner,
                            book_row, ms_row, pair_row, partner_class, sf_row, spectral_partner,
                            spectral_row, tuple_context)


def entropy_bits(counts):
    c = np.asarray([v for v in counts.values() if v > 0], float)
    if c.size == 0:
        return 0.0
    p = c / c.sum()
    return float(-(c * np.log2(p)).sum())


def cond_entropy_bits(joint):
    """Entropy of the second element given the first, in bits, from {(context, symbol): count}."""
    rows = {}
    for (ctx, sym), n in joint.items():
        rows.setdefault(ctx, {})[sym] = n
    return sum(entropy_bits(r) for r in rows.values())


class AdaptiveCost:
    """The yardstick of what prefix codes leave on the table: the ideal code length of an adaptive
    arithmetic coder of the *same* contexts (one adaptive model per code row, the
    Krichevsky-Trofimov estimator: counts start at 1/2, updated after every symbol), summed per
    field.  An arithmetic coder reaches this within a fraction of a percent; nothing of it is in
    the format."""

    def __init__(self):
        self.bits = {}
        self.counts = {}       # (field, row) -> ({symbol: count}, [total])

    def add(self, field, row, sym, alphabet):
        c, total = self.counts.setdefault((field, row), ({}, [0]))
        p = (c.get(sym, 0) + 0.5) / (total[0] + 0.5 * alphabet)
        self.bits[field] = self.bits.get(field, 0.0) - math.log2(p)
        c[sym] = c.get(sym, 0) + 1
        total[0] += 1


class Stats:
    def __init__(self):
        self.ac = AdaptiveCost()
        self.side = self.book_bits = self.sf_bits = self.cw_bits = self.sign_bits = self.esc_bits = 0
        self.ms_bits = 0
        self.payload = 0
        self.units = {"zero": 0, "noise": 0, "coded": 0}
        self.sym = {}          # book -> {symbol: count}
        self.mag = {}          # |q| -> count over coded units
        self.sfd = {}          # scalefactor delta -> count
        self.books_ctx = {}    # (code row, book) -> count

    def frame(self, is_short, gflags, max_band, ms_mode, ms_flags, books, sf, q, ub, nbands, ngroups,
              lengths):
        nch = max_band.shape[0]
        side = 3 + (7 if is_short else 0) + 6 * nch
        for p in range(nch // 2):
            side += 2
            if ms_mode[p] == 2:      # FORMAT.md §5.3 (version 6): groups of MS_GROUP flags
                mb = max(int(max_band[2 * p]), int(max_band[2 * p + 1]))
                flags = [int(ms_flags[p, g * nbands + b]) for g in range(ngroups) for b in range(mb)]
                pf = 0
                for i in range(0, len(flags), MS_GROUP):
                    grp = flags[i:i + MS_GROUP]
                    self.ms_bits += int(lengths[ms_row(pf, len(grp)), int("".join(map(str, grp)), 2)])
                    pf = grp[-1]
        self.side += side
        for c in range(nch):
            mb = int(max_band[c])
            # book indices (version 6): two units per book_pair symbol, an odd last one alone
            units = [(g * nbands + b, b) for g in range(ngroups) for b in range(mb)]
            ctx = 0
            for i in range(0, len(units), 2):
                u, b = units[i]
                if i + 1 < len(units):
                    pt = int(book_partner(books, max_band, c, u, b))
                    row = pair_row(ctx, pt, b, nbands)
                    sym = N_BOOKS * int(books[c, u]) + int(books[c, units[i + 1][0]])
                    alphabet = N_BOOKS * N_BOOKS
                else:
                    row, sym, alphabet = book_row(ctx, b, nbands), int(books[c, u]), N_BOOKS
                self.book_bits += int(lengths[row, sym])
                self.ac.add("book indices", row, sym, alphabet)
                self.books_ctx[(row, sym)] = self.books_ctx.get((row, sym), 0) + 1
                ctx = sym % N_BOOKS
            first = True
            prev = 0
            pbk = 0
            for g in range(ngroups):
                for b in range(mb):
                    u = g * nbands + b
                    bk = int(books[c, u])
                    self.units["zero" if bk == 0 else "noise" if bk == NOISE_BOOK else "coded"] += 1
                    if bk == 0:
                        continue
                    if first:
                        self.sf_bits += 8
                        first = False
                    else:
                        d = int(sf[c, u]) - prev
                        self.sf_bits += int(lengths[sf_row(pbk, bk), d + SF_DELTA_MAX])
                        self.ac.add("scalefactors", sf_row(pbk, bk), d, 2 * SF_DELTA_MAX + 1)
                        self.sfd[d] = self.sfd.get(d, 0) + 1
                    prev = int(sf[c, u])
                    pbk = bk
                    if bk == NOISE_BOOK:
                        continue
                    dim, lav = int(BOOK_DIM[bk]), int(BOOK_LAV[bk])
                    s, e = int(ub[u]), int(ub[u + 1])
                    vals = np.abs(q[c, s:e])
                    for v in vals:
                        self.mag[int(v)] = self.mag.get(int(v), 0) + 1
                    self.sign_bits += int(np.count_nonzero(vals))
                    psum = -1
                    pm = spectral_partner(books, max_band, c, u, b)
                    pq = q[c - 1] if c % 2 else q[c]
                    for i in range(s, e, dim):
                        row = spectral_row(bk, tuple_context(psum), partner_class(pm, pq, i, dim, e))
                        psum = int(np.abs(q[c, i:i + dim]).sum())
                        sym = 0
                        for j in range(dim):
                            v = int(abs(q[c, i + j])) if i + j < e else 0
                            if bk == ESC_BOOK and v >= ESC_VALUE:
                                m = v - ESC_VALUE + 4
                                self.esc_bits += 2 * m.bit_length() - 1 - 2
                                v = ESC_VALUE
                            sym = sym * (lav + 1) + v
                        self.cw_bits += int(lengths[row, sym])
                        self.ac.add("spectral codewords", row, sym, (lav + 1) ** dim)
                        d = self.sym.setdefault(bk, {})
                        d[sym] = d.get(sym, 0) + 1


def encode_with_stats(x, sr, kbps, low_delay=False, group=None):
    stats = Stats()

    def watch(r):            # the encoder's observer: once per frame, after its payload is written
        stats.payload += r.payload_bits
        stats.frame(r.is_short, r.group_flags, r.max_band, r.ms_mode, r.ms_flags, r.books, r.sf, r.q,
                    r.unit_bounds, r.nbands, r.ngroups, enc.books.lengths)

    enc = Encoder(sr, x.shape[1], bitrate=kbps, observer=watch, low_delay=low_delay, group=group)
    frames = enc.encode(x) + enc.flush()
    data = enc.header() + b"".join(frames)
    return stats, data


def band_snr(ref, deg, sr, edges_hz=CRITICAL_BAND_EDGES_HZ):
    from scipy.signal import stft
    n = min(len(ref), len(deg))
    _, _, R = stft(ref[:n].T, sr, nperseg=2048)
    _, _, D = stft(deg[:n].T, sr, nperseg=2048)
    f = np.linspace(0, sr / 2, R.shape[-2])
    out = []
    for lo, hi in zip(edges_hz[:-1], edges_hz[1:]):
        if lo >= sr / 2:
            break
        k = (f >= lo) & (f < hi)
        s = np.sum(np.abs(R[..., k, :]) ** 2)
        e = np.sum(np.abs(R[..., k, :] - D[..., k, :]) ** 2)
        out.append((lo, hi, 10 * math.log10(max(s, 1e-30) / max(e, 1e-30)) if s > 1e-12 else float("nan")))
    return out


def main(argv=None):
    import soundfile as sf
    from compare import opus16_encode_decode  # tools/ on sys.path

    from pacodec.api import decode
    from pacodec.quality import align, best_lag

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("clip")
    p.add_argument("-b", "--bitrate", type=float, default=64.0, help="nominal stereo kbps (mono: half)")
    p.add_argument("--excerpt", type=float, help="first SECONDS only")
    p.add_argument("--opus16", action="store_true", help="also code with Opus 1.6 (PyAV) and compare SNR")
    p.add_argument("--low-delay", action="store_true", help="the low-delay mode")
    p.add_argument("--group", type=int, help="frames per frame group (default: the encoder's rule, "
                   "pacodec.config.default_group; 1: none)")
    a = p.parse_args(argv)
    x, sr = sf.read(a.clip, dtype="float64", always_2d=True)
    if a.excerpt:
        x = x[:int(a.excerpt * sr)]
    kbps = a.bitrate / 2 if x.shape[1] == 1 else a.bitrate
    st, data = encode_with_stats(x, sr, kbps, a.low_delay, a.group)
    dur = len(x) / sr
    total = 8 * len(data)
    print(f"{Path(a.clip).stem}: {dur:.1f} s, {x.shape[1]} ch, nominal {kbps:g} kbps, actual {total / dur / 1000:.1f}")
    spectral = st.cw_bits + st.sign_bits + st.esc_bits
    rows = [("framing (headers, CRC, config, groups, stuffing)", total - st.payload),
            ("frame side info (flags, max_band)", st.side), ("M/S flags", st.ms_bits),
            ("book indices", st.book_bits), ("scalefactors", st.sf_bits),
            ("spectral codewords", st.cw_bits), ("sign bits", st.sign_bits), ("escape suffixes", st.esc_bits)]
    for name, b in rows:
        print(f"  {name:<42} {b:9d} bits {100 * b / total:5.1f} %  {b / dur / 1000:6.2f} kbps")
    nu = sum(st.units.values())
    print("  units: " + ", ".join(f"{k} {v} ({100 * v / max(nu, 1):.0f} %)" for k, v in st.units.items()))
    h_sym = sum(entropy_bits(d) for d in st.sym.values())
    h_mag = entropy_bits(st.mag)
    print(f"  spectral codewords {st.cw_bits} bits vs zero-order entropy of the same symbols per book "
          f"{h_sym:.0f} ({100 * (st.cw_bits / max(h_sym, 1) - 1):+.1f} %)")
    print(f"  per-coefficient magnitude entropy {h_mag:.0f} bits + signs {st.sign_bits} = "
          f"{h_mag + st.sign_bits:.0f} vs spent {spectral} (codewords + signs + escapes)")
    h_sf = entropy_bits(st.sfd)
    print(f"  scalefactor deltas: {sum(st.sfd.values())} coded, entropy {h_sf:.0f} bits vs ~{st.sf_bits} spent; "
          f"book indices conditional entropy (given their code row) {cond_entropy_bits(st.books_ctx):.0f} "
          f"vs {st.book_bits}")
    spent = {"book indices": st.book_bits, "scalefactors": st.sf_bits, "spectral codewords": st.cw_bits}
    print("  adaptive arithmetic coding of the same contexts (ideal, KT): " + "; ".join(
        f"{k} {st.ac.bits.get(k, 0):.0f} vs {v} spent ({100 * (v / max(st.ac.bits.get(k, 0), 1) - 1):+.1f} %)"
        for k, v in spent.items()))
    coded = st.units["coded"]
    print(f"  side/coded unit: {(st.book_bits + st.sf_bits) / max(coded, 1):.1f} bits; spectral per coded unit "
          f"{spectral / max(coded, 1):.1f} bits")
    with tempfile.TemporaryDirectory() as tmp:
        y, _ = decode(data)
        y = np.asarray(y, float).reshape(len(y), -1)
        y = align(y, len(x), best_lag(x, y, 2048))
        res = {"pacodec": band_snr(x, y, sr)}
        if a.opus16:
            ref = Path(tmp) / "ref.wav"
            sf.write(ref, x, sr, subtype="PCM_16")
            enc, dec = Path(tmp) / "o.opus", Path(tmp) / "o.wav"
            opus16_encode_decode(ref, enc, dec, sr, x.shape[1], kbps)
            z, _ = sf.read(dec, always_2d=True)
            z = align(z, len(x), best_lag(x, z, 2048))
            print(f"  opus16 actual {8 * enc.stat().st_size / dur / 1000:.1f} kbps")
            res["opus16"] = band_snr(x, z, sr)
    print("  band (Hz)       " + "  ".join(f"{k:>8}" for k in res))
    for i, (lo, hi, _) in enumerate(res["pacodec"]):
        print(f"  {lo:>5}-{hi:<6}    " + "  ".join(f"{res[k][i][2]:8.1f}" for k in res))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
