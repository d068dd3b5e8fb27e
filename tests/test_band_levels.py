"""tools/band_levels.py: its level errors and its oracle measure what they say.

Run in a process of its own, like tests/test_bitstats.py (tests depend on the package, not on
``tools/``): a signal against itself at half amplitude is 6.02 dB too quiet in every band, the
oracle gives the half-amplitude copy the original's band energies back, and an empty decode is
filled at them."""
import json
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"

RUN = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import band_levels as bl
rng = np.random.default_rng(5)
fs = 16000
x = rng.standard_normal((2 * fs, 2)) * 0.1
half = bl.level_errors(x, 0.5 * x, fs, 4)
fixed = bl.level_errors(x, bl.oracle(x, 0.5 * x, fs, 4), fs, 4, 200.0, 7000.0)
filled = bl.level_errors(x, bl.oracle(x, 0.0 * x, fs, 2), fs, 2, 200.0, 7000.0)
print(json.dumps({"half": [float(half.min()), float(half.max())],
                  "fixed": float(np.median(np.abs(fixed))), "filled": float(np.mean(filled)), "filled_abs": float(np.median(np.abs(filled))),
                  "n": int(len(half))}))
"""


def test_level_errors_and_oracle():
    out = subprocess.run([sys.executable, "-c", RUN, str(TOOLS)], capture_output=True, text=True,
                         check=True)
    r = json.loads(out.stdout)
    assert r["n"] > 100
    assert -6.03 < r["half"][0] <= r["half"][1] < -6.01      # 20 log10(0.5) in every cell
    assert r["fixed"] < 0.01          # the oracle restores each band's level
    assert abs(r["filled"]) < 1.0 and r["filled_abs"] < 1.5   # silence filled with noise at the band energy
