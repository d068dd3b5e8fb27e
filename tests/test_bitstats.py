"""tools/bitstats.py: its bit categories add up to the payloads the encoder wrote."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import bitstats  # noqa: E402


def test_bit_categories_add_up_to_every_payload_bit_of_a_stereo_stream_with_short_frames():
    rng = np.random.default_rng(3)
    fs = 44100
    t = np.arange(fs) / fs
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)], axis=1)
    x += 0.02 * rng.standard_normal(x.shape)
    x[fs // 2:fs // 2 + 200] += 0.8 * rng.standard_normal((200, 2))      # an attack: short frames
    st, data = bitstats.encode_with_stats(x, fs, 64)
    parts = st.side + st.ms_bits + st.book_bits + st.sf_bits + st.cw_bits + st.sign_bits + st.esc_bits
    assert st.payload == parts          # payload bits before byte padding and stuffing
    assert 8 * len(data) > st.payload
    assert st.units["coded"] > 0 and st.units["noise"] + st.units["zero"] > 0
