"""The encoder's output, byte for byte, on short signals in every rate mode.

Work on the encoder's speed (the rate loop's search, reuse across trial offsets, kernels folded
or vectorised) must not change a single output byte: these are SHA-256 digests of
``Encoder(...).header()`` + every frame, made by the encoder before that work (main at 7150b6b)
and renewed by each change meant to alter the output (last: noise of the right energy for the
non-tonal units above 13 kHz of long frames whose high band is steady, allocation.HF_NOISE_HZ;
then mid/side only where a unit's channels are balanced, allocation.MS_BALANCE; then format 5,
whose config blocks say version 5 and whose long bands are at least 8 bins wide in the normal
mode, allocation.long_band_min).  ``DIGESTS_V4`` pins the step to format 5: with
``min_band=0`` and its config blocks marked version 4 again, the encoder writes the bytes it
wrote before.
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
    "drums_abr128": "ad041aa60f8bce55e7688489ce91b0ddea92f2b75dcf85721cb8cef975dfe14c",
    "drums_cbr64_power": "d7eec49e440745cb21ceeaa07bac354367bca55afda52dcede4ad1798d7083d0",
    "drums_cbr96": "8c239d3d6c64ddd7f1e51b76f631afee6b214989ea4f7507981ab78b7c3bf1b9",
    "drums_mono_abr48": "4cd5a897758a86faa98d7cd7ea070573449e0c287f8d6bd566e02a5c7b2431df",
    "drums_mono_cbr32_mulaw": "2d9340d6f2f060dc6f61e614aa6d48f3d6e3cbaffd86250321e1621d9eb4b457",
    "drums_vbr_default": "2a2a015e5671c03b40f63a158aae2829d313141f0ce6b92cab2a887b0da96cde",
    "gen_3ch_22k_abr96": "7db4006fa6c085686dfae401947fb341b45639d26ef6ccab2681eb32ca297087",
    "gen_3ch_22k_vbr": "0071bdfb80ddcefb2bf71632073fd79a85f67c941d271106f31bdf5e2bfd1a5a",
    "gen_mono_48k_cbr64": "ed736541d4f464c53faadcdcb3173731909154cf47a3f94ceb45007eddb79269",
    "gen_mono_48k_q9_power": "30b0a6b4651aa3b3f897d5d82ccaecbeeb2227ddadfd8f6a94ef17f431eee93f",
    "gen_stereo_32k_cbr96_mulaw": "e067aafc804edb38ad03d63765c091eb44fbbd1f2f67c610c8dbdd41a4eb957f",
    "gen_stereo_32k_kbd_lowdelay": "cdef675f48b339fb2517fc6d7098546f2acf0823f5ae42badc81d65219b238d3",
    "piano_cbr128": "ee71f29c4bd1675cc6e7b2d8d83126bcd486341372f57c927f14cb34e2da04d3",
    "piano_cbr64": "e9873f18ff39c6a3379136e27248f65d4fafb955c34954e2f50dd2a96aebff00",
    "piano_q3": "7a5a047d450f3ab0fd5d9917992d11114671872a060ecbc5c52354943ad1a723",
    "piano_vbr_default": "de03a36ed5d58778d9e8d5789cc0063616bec9e5a3e787cbe0ed0f42298fb325",
}


#: the format-4 encoder's output (main at c142229) of some cases: see the module docstring
DIGESTS_V4 = {
    "drums_cbr96": "6fbb2967bbb01fd5ad3baa422e8f92c68a33cd5ed612504566d340bb51056e5c",
    "gen_stereo_32k_kbd_lowdelay": "9af8b570eda021e139767857bf2d936a5cbfca56a2adb1a17c4d245100038e89",
    "piano_cbr64": "9c9871a30cc388df0481c2d596ef78af6e8d01f80da5acd9e29790ca5ef07cf2",
}


def _as_version_4(data):
    """A version-5 stream with min_band 0 with every config block marked version 4 (the CRCs of
    the header and the config frames recomputed): FORMAT.md §3.2's version 4."""
    from pacodec import container as ct
    out = bytearray(data)
    assert out[4] == 5 and out[7] & 0x0F == 0
    out[4] = 4
    out[ct.HEADER_SIZE - 2:ct.HEADER_SIZE] = ct.crc16(bytes(out[:ct.HEADER_SIZE - 2])).to_bytes(
        2, "big")
    pos = ct.frames_start(data)
    while pos < len(data):
        fr = ct.parse_frame_at(data, pos)
        if fr.ftype == ct.FRAME_CONFIG:
            out[pos + ct.FRAME_HEADER_SIZE] = 4
            end = pos + fr.size - ct.CRC_SIZE
            out[end:end + 2] = ct.crc16(bytes(out[pos + 2:end])).to_bytes(2, "big")
        pos += fr.size
    return bytes(out)


def _encode(signal, options, as_v4=False):
    x, fs = _signal(signal)
    short = []
    enc = pacodec.Encoder(fs, x.shape[1], observer=lambda r: short.append(r.is_short), **options)
    body = b"".join(enc.encode(x)) + b"".join(enc.flush())
    data = enc.header() + body
    return hashlib.sha256(_as_version_4(data) if as_v4 else data).hexdigest(), sum(short)


@pytest.mark.parametrize("case", sorted(CASES))
def test_encoded_bytes_are_unchanged(case):
    signal, options = CASES[case]
    digest, nshort = _encode(signal, options)
    if not options.get("low_delay"):        # low delay has no short blocks
        assert nshort > 0 or signal == "piano", "the case is meant to exercise short blocks"
    assert digest == DIGESTS[case], f"{case}: the encoder's output changed"


@pytest.mark.parametrize("case", sorted(DIGESTS_V4))
def test_min_band_0_writes_the_format_4_bytes_but_the_version(case):
    signal, options = CASES[case]
    assert _encode(signal, dict(options, min_band=0), as_v4=True)[0] == DIGESTS_V4[case]


if __name__ == "__main__":
    for case in sorted(CASES):
        print(f'    "{case}": "{_encode(*CASES[case])[0]}",')
