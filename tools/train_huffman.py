#!/usr/bin/env python3
"""Train pacodec's Huffman code lengths on real recordings; writes bitstreams/codebooks_v7.json and
its byte-identical copy pacodec/data/codebooks_v7.json.

The tables are those of the format version the encoder writes (7): book-index rows by region and
previous book, scalefactor rows by book classes, TUPLE_CONTEXTS x PARTNER_CLASSES rows per
spectral book (the tuple before it, the partner's values at the same positions), book-pair
rows by region, previous book and partner book, M/S-group rows by length and previous flag
(FORMAT.md §7.2).  The single book-index rows are trained on every unit's book (they code an odd
count's last unit, and the encoder's search estimates a unit's book cost with them).  The tables
of versions 3 (codebooks_v3.json), 4-5 (codebooks.json) and 6 (codebooks_v6.json) are frozen.

    python tools/train_huffman.py --bootstrap            # synthetic starting tables
    python tools/train_huffman.py CLIP.flac ... [--rates 48 64 96 128 160 192] [--rounds 2]
    python tools/train_huffman.py CLIP.flac ... --holdout        # also an overfitting check

Each round encodes every clip at every rate with the current tables, parses the streams with the
normative decoder, counts the symbols of every code (book indices per context row, scalefactor
deltas per context row, spectral tuples; FORMAT.md §7.2) and rebuilds length-limited canonical
codes from the counts.  Symbols never seen still get a code.  ``--holdout`` also trains on every
other clip (sorted by name) and reports the bits of the held-out half's symbols under those
codes, under codes trained on the held-out half itself, and under the current tables.  Changing
the tables changes the format: regenerate the conformance vectors (tools/make_vectors.py) and say
so in FORMAT.md.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pacodec.huffman import code_lengths  # noqa: E402
from pacodec.tables import (BOOK_REGIONS, ESC_BOOK, ESC_VALUE, MS_GROUP, N_BOOKS,  # noqa: E402
                            N_MS_ROWS, N_SF_ROWS, PAIR_ROWS_PER_REGION, PARTNER_CLASSES, ROW_MS,
                            ROW_PAIR, ROW_SF, SF_DELTA_MAX, SPECTRAL_BOOKS, TUPLE_CONTEXTS,
                            book_partner, book_row, ms_row, pair_row, partner_class, sf_row,
                            spectral_alphabet, spectral_partner, tuple_context)

OUT = ROOT / "pacodec" / "data" / "codebooks_v7.json"
SPEC_COPY = ROOT / "bitstreams" / "codebooks_v7.json"     # the normative file (FORMAT.md §7.1)
V6 = ROOT / "pacodec" / "data" / "codebooks_v6.json"       # version 6 (frozen): a starting point
N_PAIR_ROWS = BOOK_REGIONS * PAIR_ROWS_PER_REGION
KINDS = ("book_index", "scalefactor", "book_pair", "ms_group")


def ms_alphabet(row: int) -> int:
    """Symbols of M/S-group row ``row`` (0..N_MS_ROWS-1): 2^n for a group of n flags."""
    return 1 << (row // 2 + 1)
MAXLEN = 20


def bootstrap() -> dict:
    """Starting tables: version 6's codes, each spectral row repeated for every partner class
    (from a simple model when version 6's file is absent: book pairs from the single codes'
    lengths, M/S groups of equal lengths)."""
    if V6.exists():
        data = json.loads(V6.read_text())
        data["spectral"] = {b: [row for row in rows for _ in range(PARTNER_CLASSES)]
                            for b, rows in data["spectral"].items()}
        return data
    data = bootstrap_model()
    single = data["book_index"]
    data["book_pair"] = []
    for row in range(N_PAIR_ROWS):
        region, rest = divmod(row, PAIR_ROWS_PER_REGION)
        prev = rest // (N_BOOKS + 1)
        a = single[N_BOOKS * region + prev]
        data["book_pair"].append(code_lengths(
            [int(1e6 * 2.0 ** -(a[i] + single[N_BOOKS * region + i][j]))
             for i in range(N_BOOKS) for j in range(N_BOOKS)], MAXLEN))
    data["ms_group"] = [code_lengths([1] * ms_alphabet(r), MAXLEN) for r in range(N_MS_ROWS)]
    return data


def bootstrap_model() -> dict:
    """Tables from a simple model: short codes for small magnitudes and small deltas."""
    data = {"book_index": [], "scalefactor": None, "spectral": {}}
    for row in range(N_BOOKS * BOOK_REGIONS):
        counts = [100 if b == row % N_BOOKS else 10 for b in range(N_BOOKS)]
        data["book_index"].append(code_lengths(counts, MAXLEN))
    deltas = range(-SF_DELTA_MAX, SF_DELTA_MAX + 1)
    data["scalefactor"] = [code_lengths([int(1e6 * math.exp(-abs(d) / 2.0)) for d in deltas], MAXLEN)
                           for _ in range(N_SF_ROWS)]
    for b, (dim, lav) in SPECTRAL_BOOKS.items():
        base = lav + 1
        counts = []
        for sym in range(spectral_alphabet(b)):
            s, tot = sym, 0
            for _ in range(dim):
                tot += s % base
                s //= base
            counts.append(int(1e6 * math.exp(-tot * 4.0 / max(lav, 1))))
        data["spectral"][str(b)] = [code_lengths(counts, MAXLEN)] * (TUPLE_CONTEXTS
                                                                    * PARTNER_CLASSES)
    return data


def write_tables(data):
    """Write the tables to the package file and its normative copy beside the spec, together."""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, separators=(",", ":")))
    SPEC_COPY.write_bytes(OUT.read_bytes())


def empty_stats():
    return {"book_index": [[0] * N_BOOKS for _ in range(N_BOOKS * BOOK_REGIONS)],
            "scalefactor": [[0] * (2 * SF_DELTA_MAX + 1) for _ in range(N_SF_ROWS)],
            "book_pair": [[0] * (N_BOOKS * N_BOOKS) for _ in range(N_PAIR_ROWS)],
            "ms_group": [[0] * ms_alphabet(r) for r in range(N_MS_ROWS)],
            "spectral": {b: [[0] * spectral_alphabet(b)
                             for _ in range(TUPLE_CONTEXTS * PARTNER_CLASSES)]
                         for b in SPECTRAL_BOOKS}}


def train(stats) -> dict:
    return {**{kind: [code_lengths(c, MAXLEN) for c in stats[kind]] for kind in KINDS},
            "spectral": {str(b): [code_lengths(c, MAXLEN) for c in rows]
                         for b, rows in stats["spectral"].items()}}


def merge(stats_list):
    out = empty_stats()
    for st in stats_list:
        for kind in KINDS:
            for row, cs in zip(out[kind], st[kind]):
                for i, n in enumerate(cs):
                    row[i] += n
        for b, rows in st["spectral"].items():
            for row, cs in zip(out["spectral"][b], rows):
                for i, n in enumerate(cs):
                    row[i] += n
    return out


def cost(stats, data) -> dict:
    """Bits of the counted symbols under the code lengths ``data``, per kind of code (escape
    suffixes and sign bits are not included: no code changes them)."""
    out = {}
    for kind in KINDS:
        out[kind] = sum(n * l for cs, ls in zip(stats[kind], data[kind]) for n, l in zip(cs, ls))
    out["spectral"] = 0
    for b, rows in stats["spectral"].items():
        out["spectral"] += sum(n * l for cs, ls in zip(rows, data["spectral"][str(b)])
                               for n, l in zip(cs, ls))
    return out


def collect(clips, rates, stats, excerpt=None):
    """Encode each clip at each rate (stereo-equivalent kbit/s) and count the symbols of every
    payload the encoder writes (FORMAT.md §5.3 order and contexts)."""
    import soundfile as sf
    from pacodec.encoder import Encoder

    def watch(r):            # the encoder's observer: once per frame, after its payload is written
        max_band, books, sfs, q, ub = r.max_band, r.books, r.sf, r.q, r.unit_bounds
        nbands, ngroups = r.nbands, r.ngroups
        for p in range(max_band.shape[0] // 2):
            if r.ms_mode[p] == 2:
                mb = max(int(max_band[2 * p]), int(max_band[2 * p + 1]))
                flags = [int(r.ms_flags[p, g * nbands + b]) for g in range(ngroups)
                         for b in range(mb)]
                pf = 0
                for i in range(0, len(flags), MS_GROUP):
                    grp = flags[i:i + MS_GROUP]
                    stats["ms_group"][ms_row(pf, len(grp)) - ROW_MS][
                        int("".join(map(str, grp)), 2)] += 1
                    pf = grp[-1]
        for c in range(max_band.shape[0]):
            units = [(g * nbands + b, b) for g in range(ngroups) for b in range(int(max_band[c]))]
            ctx = 0
            for i in range(0, len(units) - 1, 2):
                (u, b), (u2, _) = units[i], units[i + 1]
                pt = int(book_partner(books, max_band, c, u, b))
                stats["book_pair"][pair_row(ctx, pt, b, nbands) - ROW_PAIR][
                    N_BOOKS * int(books[c, u]) + int(books[c, u2])] += 1
                ctx = int(books[c, u2])
            ctx = 0
            prev = None
            pbk = 0
            for g in range(ngroups):
                for b in range(int(max_band[c])):
                    u = g * nbands + b
                    bk = int(books[c, u])
                    stats["book_index"][book_row(ctx, b, nbands)][bk] += 1
                    ctx = bk
                    if bk:
                        if prev is not None:
                            row = sf_row(pbk, bk) - ROW_SF
                            stats["scalefactor"][row][int(sfs[c, u]) - prev + SF_DELTA_MAX] += 1
                        prev = int(sfs[c, u])
                        pbk = bk
                    if 1 <= bk <= 6:
                        dim, lav = SPECTRAL_BOOKS[bk]
                        base = lav + 1
                        v = np.abs(q[c, ub[u]:ub[u + 1]])
                        pm = spectral_partner(books, max_band, c, u, b)
                        pq = q[c - 1] if c % 2 else q[c]
                        psum = -1
                        for k, t in enumerate(v.reshape(-1, dim)):
                            sym = 0
                            for x in t:
                                sym = sym * base + (min(int(x), ESC_VALUE) if bk == ESC_BOOK
                                                    else int(x))
                            pc = partner_class(pm, pq, int(ub[u]) + dim * k, dim, int(ub[u + 1]))
                            stats["spectral"][bk][PARTNER_CLASSES * tuple_context(psum) + pc][sym] += 1
                            psum = int(t.sum())

    for clip in clips:
        x, fs = sf.read(clip, always_2d=True)
        if excerpt:
            x = x[:int(excerpt * fs)]
        for kbps in rates:
            rate = kbps * x.shape[1] / 2
            enc = Encoder(fs, x.shape[1], bitrate=rate, observer=watch)
            data = b"".join(enc.encode(x) + enc.flush())
            print(f"  {Path(clip).name} @ {rate:g} kbps: {8 * len(data) / (len(x) / fs) / 1000:.1f} kbps",
                  flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*")
    ap.add_argument("--bootstrap", action="store_true")
    ap.add_argument("--rates", type=int, nargs="+", default=[48, 64, 96, 128, 160, 192])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--excerpt", type=float, help="train on the first SECONDS of each clip")
    ap.add_argument("--holdout", action="store_true", help="also report an overfitting check (see above)")
    args = ap.parse_args(argv)
    if args.bootstrap or not OUT.exists():
        write_tables(bootstrap())
        print(f"wrote bootstrap tables to {OUT} and {SPEC_COPY}")
        if args.bootstrap:
            return
    for r in range(args.rounds):
        from pacodec import tables
        tables._load_codebooks.cache_clear()
        print(f"round {r + 1}")
        clips = sorted(args.clips, key=lambda c: Path(c).name)
        per_clip = []
        for clip in clips:
            per_clip.append(empty_stats())
            collect([clip], args.rates, per_clip[-1], args.excerpt)
        if args.holdout:
            current = json.loads(OUT.read_text())
            halves = [per_clip[0::2], per_clip[1::2]]
            for h in range(2):
                held, other = merge(halves[h]), merge(halves[1 - h])
                rows = {"current tables": cost(held, current),
                        "trained on the other half": cost(held, train(other)),
                        "trained on this half": cost(held, train(held))}
                print(f"held-out half {h + 1} ({len(halves[h])} clips):")
                for name, c in rows.items():
                    print(f"  {name:<28} " + "  ".join(f"{k} {v:9d}" for k, v in c.items()))
        write_tables(train(merge(per_clip)))
        print(f"wrote {OUT} and {SPEC_COPY}")


if __name__ == "__main__":
    main()
