"""tools/bitstats.py: its bit categories add up to the payloads the encoder wrote.

The tool runs in a process of its own (tests depend on the package, not on ``tools/``); it is
given the same input as before and reports its counts as JSON."""
import json
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"

RUN = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import bitstats
rng = np.random.default_rng(3)
fs = 44100
t = np.arange(fs) / fs
x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)], axis=1)
x += 0.02 * rng.standard_normal(x.shape)
x[fs // 2:fs // 2 + 200] += 0.8 * rng.standard_normal((200, 2))      # an attack: short frames
st, data = bitstats.encode_with_stats(x, fs, 64)
fields = ("payload", "side", "ms_bits", "book_bits", "sf_bits", "cw_bits", "sign_bits", "esc_bits")
print(json.dumps({**{k: int(getattr(st, k)) for k in fields},
                  "units": {k: int(v) for k, v in st.units.items()},
                  "bytes": len(data)}))
"""


def test_bit_categories_add_up_to_every_payload_bit_of_a_stereo_stream_with_short_frames():
    p = subprocess.run([sys.executable, "-c", RUN, str(TOOLS)], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout.strip().splitlines()[-1])
    parts = sum(st[k] for k in ("side", "ms_bits", "book_bits", "sf_bits", "cw_bits",
                                "sign_bits", "esc_bits"))
    assert st["payload"] == parts       # payload bits before byte padding and stuffing
    assert 8 * st["bytes"] > st["payload"]
    assert st["units"]["coded"] > 0 and st["units"]["noise"] + st["units"]["zero"] > 0
