"""tools/peaq_units.py: each PEAQ cell gets the kind of the pacodec unit that codes it, from the
encoder's own frame records (the ear model itself, seabass-2f, is not a test dependency).

The tool runs in a process of its own (tests depend on the package, not on ``tools/``)."""
import json
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"

RUN = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import pacodec
from pacodec.tables import NOISE_BOOK
import peaq_units as pu
rng = np.random.default_rng(5)
fs = 44100
t = np.arange(2 * fs) / fs
x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.05 * rng.standard_normal(len(t))], axis=1)
frames = []
enc = pacodec.Encoder(fs, 2, bitrate=64, observer=lambda r: frames.append(
    (r.is_short, r.books.copy(), r.unit_bounds.copy(), r.nbands, r.max_band.copy())))
enc.encode(x); enc.flush()
freqs = np.array([440.0, 3000.0, 8000.0, 21000.0])
nblocks = 120                  # the last ones lie past the 2-s signal
kinds = pu.unit_kind_map(frames, fs, enc.frame_size, nblocks, freqs, 2)
# what the records say directly, for the block whose centre is nearest frame 40's
j = int(round(40 * enc.frame_size / fs * 48000 / 1024)) - 1
k = int(round((j * 1024 + 1024) / 48000 * fs / enc.frame_size))
is_short, books, ub, nb, mb = frames[k]
want = []
for c in range(2):
    row = []
    for f in freqs:
        u = int(np.searchsorted(ub, int(f / (fs / 2 / enc.frame_size)), side="right") - 1)
        row.append("beyond" if u >= mb[c] else
                   {0: "zero", NOISE_BOOK: "noise"}.get(int(books[c, u]), "coded"))
    want.append(row)
got = [[pu.KINDS[v] for v in kinds[c, :, j]] for c in range(2)]
steps = np.ones((4, nblocks)); sign = np.where(np.arange(4)[:, None] % 2 == 0, 1.0, -1.0) * steps
counted = np.zeros(nblocks, bool); counted[j] = True
acc = pu.split_steps(steps, sign, counted, np.zeros((4, nblocks), np.int64), kinds, freqs, 4400.0)
print(json.dumps({"want": want, "got": got, "short": bool(is_short), "past": int(kinds[0, 0, -1]),
                  "acc": {f"{a}/{b}": v for (a, b), v in acc.items()}}))
"""


def test_cells_take_the_kind_of_the_unit_that_codes_them():
    out = subprocess.run([sys.executable, "-c", RUN, str(TOOLS)], capture_output=True, text=True,
                         check=True)
    r = json.loads(out.stdout)
    assert not r["short"]
    assert r["got"] == r["want"]
    assert r["got"][0][0] == "coded"            # the 440-Hz tone is coded, not noise or zero
    assert r["got"][0][3] == "beyond"           # 21 kHz is above the coded bandwidth at 64
    assert r["past"] == -1                      # blocks after the last frame have no unit
    # one counted block, four bands: channel 0's kinds, bands 0 and 2 too quiet, 1 and 3 loud
    cells = sum(v[0] for v in r["acc"].values())
    assert cells == 4
    assert sum(v[1] for v in r["acc"].values()) == 2 and sum(v[2] for v in r["acc"].values()) == 2
    want = {}
    for kind, side in zip(r["want"][0], ("low", "low", "high", "high")):   # 440, 3000 | 8000, 21000
        want[f"{kind}/{side}"] = want.get(f"{kind}/{side}", 0) + 1
    assert {k: v[0] for k, v in r["acc"].items()} == want
