"""Conformance: every vector in bitstreams/vectors decodes to its reference within tolerance.

A missing vector or reference is a failure, never a skip (FORMAT.md §11).
"""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import pacodec

VECTORS = Path(__file__).resolve().parents[1] / "bitstreams" / "vectors"
MANIFEST = VECTORS / "manifest.json"
EXPECTED = {"stereo_44k_power_long", "stereo_44k_power_short", "stereo_44k_uniform_kbd",
            "stereo_48k_mulaw_lowdelay", "mono_8k_uniform", "mono_96k_power_vbr",
            "3ch_22k_mulaw_mu1000", "stereo_16k_power_abr"}


def _manifest():
    assert MANIFEST.exists(), f"conformance manifest missing: {MANIFEST}"
    return json.loads(MANIFEST.read_text())


def test_manifest_lists_every_expected_vector():
    names = {v["name"] for v in _manifest()["vectors"]}
    assert names == EXPECTED


def test_vectors_cover_each_quantizer_mono_stereo_and_both_block_types():
    infos = {v["name"]: pacodec.info(VECTORS / v["pac"]) for v in _manifest()["vectors"]}
    assert {i.quantizer for i in infos.values()} == {"power", "uniform", "mulaw"}
    assert {1, 2, 3} <= {i.channels for i in infos.values()}
    assert any(i.low_delay for i in infos.values())
    dec = pacodec.Decoder()
    dec.feed((VECTORS / "stereo_44k_power_short.pac").read_bytes())
    dec.finish()
    assert dec.short_frames > 0 and dec.frames > dec.short_frames


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vector_decodes_to_its_reference(name):
    m = _manifest()
    entry = next(v for v in m["vectors"] if v["name"] == name)
    pac, ref = VECTORS / entry["pac"], VECTORS / entry["reference"]
    assert pac.exists(), f"missing vector {pac}"
    assert ref.exists(), f"missing reference {ref}"
    assert hashlib.sha256(pac.read_bytes()).hexdigest() == entry["pac_sha256"]
    assert hashlib.sha256(ref.read_bytes()).hexdigest() == entry["reference_sha256"]
    y, fs = pacodec.decode(pac.read_bytes(), strict=True)
    r, rfs = sf.read(ref, dtype="int16", always_2d=True)
    assert fs == rfs == entry["samplerate"]
    assert y.shape == r.shape == (entry["frames"], entry["channels"])
    y16 = np.round(np.clip(y, -1, 32767 / 32768) * 32768).astype(np.int32)
    assert np.max(np.abs(y16 - r.astype(np.int32)), initial=0) <= m["tolerance_lsb"]
