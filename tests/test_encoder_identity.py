"""The encoder's output, byte for byte, on short signals in every rate mode.

Work on the encoder's speed (the rate loop's search, reuse across trial offsets, kernels folded
or vectorised) must not change a single output byte: these are SHA-256 digests of
``Encoder(...).header()`` + every frame, made by the encoder before that work (main at 7150b6b)
and renewed by each change meant to alter the output (last: units wider than a critical band and
the short windows' tonality from the last long frame, in proportion to its share of their
energy).
A change that is *meant* to change the output (a tuning, a new rule) updates the digests in the
same commit and says so; print the new ones with ``python tests/test_encoder_identity.py``.

The cases cover CBR at low and high rates, ABR, VBR at two qualities, mono, stereo and three
channels, the three quantizers, KBD windows with low delay, several sample rates, and a drum
loop and a generated click train that switch to short blocks (checked with the observer).
Digests are of the compiled kernels on x86-64 (IEEE double, no fast-math); a platform whose libm
rounds ``exp``/``log`` differently may need its own.
"""
import hashlib

import numpy as np
import pytest

import pacodec

from conftest import load_clip


def _generated(fs, channels, seconds):
    """Tones, a chirp, a click train (short blocks) and LCG noise: no RNG, same on every numpy."""
    n = int(fs * seconds)
    t = np.arange(n) / fs
    x = 0.2 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * (200.0 + 2000.0 * t) * t)
    state = (np.arange(n, dtype=np.uint64) * np.uint64(6364136223846793005)
             + np.uint64(1442695040888963407))
    noise = ((state >> np.uint64(33)).astype(np.float64) / 2.0 ** 31 - 1.0) * 0.05
    x = x + noise * (1.0 + np.sin(2 * np.pi * 1.3 * t))
    clicks = np.zeros(n)
    for k in range(int(fs * 0.23), n, int(fs * 0.37)):
        m = min(n - k, 200)
        clicks[k:k + m] += 0.8 * np.exp(-np.arange(m) / 30.0) * np.cos(np.arange(m) * 1.1)
    x = x + clicks
    cols = [x * (0.9 ** c) + np.roll(noise, 97 * c) * 0.5 * c for c in range(channels)]
    return np.stack(cols, axis=1), fs


def _signal(name):
    if name == "piano":
        return load_clip("piano.flac", 1.5)
    if name == "drums":
        return load_clip("amen_drums.flac", 1.5)
    if name == "drums_mono":
        x, fs = load_clip("amen_drums.flac", 1.5)
        return x.mean(axis=1, keepdims=True), fs
    if name == "gen_mono_48k":
        return _generated(48000, 1, 1.5)
    if name == "gen_stereo_32k":
        return _generated(32000, 2, 1.5)
    if name == "gen_3ch_22k":
        return _generated(22050, 3, 1.2)
    raise KeyError(name)


#: (case, signal, encoder options) -> SHA-256 of header + frames (see the module docstring)
CASES = {
    "piano_cbr128": ("piano", dict(bitrate=128)),
    "piano_cbr64": ("piano", dict(bitrate=64)),
    "piano_vbr_default": ("piano", dict()),
    "piano_q3": ("piano", dict(quality=3)),
    "drums_cbr96": ("drums", dict(bitrate=96)),
    "drums_vbr_default": ("drums", dict()),
    "drums_abr128": ("drums", dict(abr=128)),
    "drums_cbr64_power": ("drums", dict(bitrate=64, quantizer="power")),
    "drums_mono_abr48": ("drums_mono", dict(abr=48)),
    "drums_mono_cbr32_mulaw": ("drums_mono", dict(bitrate=32, quantizer="mulaw")),
    "gen_mono_48k_cbr64": ("gen_mono_48k", dict(bitrate=64)),
    "gen_mono_48k_q9_power": ("gen_mono_48k", dict(quality=9, quantizer="power")),
    "gen_stereo_32k_cbr96_mulaw": ("gen_stereo_32k", dict(bitrate=96, quantizer="mulaw")),
    "gen_stereo_32k_kbd_lowdelay": ("gen_stereo_32k", dict(bitrate=48, window_shape="kbd",
                                                           low_delay=True)),
    "gen_3ch_22k_abr96": ("gen_3ch_22k", dict(abr=96)),
    "gen_3ch_22k_vbr": ("gen_3ch_22k", dict(quality=5)),
}

DIGESTS = {
    "drums_abr128": "85de57b081b289a6ca2887459ab71b36e5298613a4b438160f47ee00540fd53a",
    "drums_cbr64_power": "e5657af7797b4393b28316401c3773bca7d03ae375cd13ffd01d52add8d98b30",
    "drums_cbr96": "f809f29afb8aa87cd6fff4b981f3849f1dd9fd0e885a25143a39322559cb2eef",
    "drums_mono_abr48": "7d81158eb199a0bcdd2cdc206e976aefa1c8bd60ed9edb723635ba925fba3ea0",
    "drums_mono_cbr32_mulaw": "9e5cd1a90ca779c44ae1466ec3a2f54952ae29708df7391e2f8b36f40554f380",
    "drums_vbr_default": "50d39e4bd3621ece1df45327e2e858f7706929198250ccda0e42059d1a01f601",
    "gen_3ch_22k_abr96": "3630257865cf9aaf1bbeea0cf0dd2bb8dd498c21c2ba5341dff0acba3e712be8",
    "gen_3ch_22k_vbr": "29a7611c4f6d1b0790a4f1656cb440702415b21274e1ebf8fa3a315c088cf20b",
    "gen_mono_48k_cbr64": "c65ee6df29827a21d7cf0e233d7ded7d53ff810a74c82ff11ab50166c2414c81",
    "gen_mono_48k_q9_power": "6f55a3503464fec42899230851b7d70918fa3bccf5055f142261e76a3afe7dbe",
    "gen_stereo_32k_cbr96_mulaw": "2a536ec5e8d7de6b93c9f51924de1903600c8458d41e1d7b6ae13b73a5a50e82",
    "gen_stereo_32k_kbd_lowdelay": "eab52cebdbdfd6611ab4403b2df71f7f64d1f9c9b78e1a25b37080ea2a89e735",
    "piano_cbr128": "274b5259767b59531efe65bf801354f85aa9a2dd5aa646b9565506921ffdd98d",
    "piano_cbr64": "83759cabfc6f8036a7ddee4f5af0377060bf222e5daebef9ce5d781216a49109",
    "piano_q3": "330fe19addf634200f153df5420a9231f22e85adbb048ffe4758875723a57478",
    "piano_vbr_default": "e32ce290a15247ceea454fd09fe14aec456ce74937a120e96e41f750a9ee3df8",
}


def _encode(signal, options):
    x, fs = _signal(signal)
    short = []
    enc = pacodec.Encoder(fs, x.shape[1], observer=lambda r: short.append(r.is_short), **options)
    body = b"".join(enc.encode(x)) + b"".join(enc.flush())
    return hashlib.sha256(enc.header() + body).hexdigest(), sum(short)


@pytest.mark.parametrize("case", sorted(CASES))
def test_encoded_bytes_are_unchanged(case):
    signal, options = CASES[case]
    digest, nshort = _encode(signal, options)
    if not options.get("low_delay"):        # low delay has no short blocks
        assert nshort > 0 or signal == "piano", "the case is meant to exercise short blocks"
    assert digest == DIGESTS[case], f"{case}: the encoder's output changed"


if __name__ == "__main__":
    for case in sorted(CASES):
        print(f'    "{case}": "{_encode(*CASES[case])[0]}",')
