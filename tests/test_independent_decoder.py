"""The independent decoder (tools/independent_decoder.py), written from bitstreams/FORMAT.md
alone, decodes every conformance vector bit-exactly (FORMAT.md §11).

It shares no code with the package: these tests load it by path and never import pacodec.
"""
import ast
import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "independent_decoder.py"
VECTORS = ROOT / "bitstreams" / "vectors"
VERSIONS = ("v3", "v4")


def _load_tool():
    spec = importlib.util.spec_from_file_location("independent_decoder", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


idec = _load_tool()


def _manifest(version):
    path = VECTORS / version / "manifest.json"
    assert path.is_file(), f"missing {path}"
    return json.loads(path.read_text(encoding="utf-8"))


def _cases():
    return [(v, e["name"]) for v in VERSIONS for e in _manifest(v)["vectors"]]


def _entry(version, name):
    return next(e for e in _manifest(version)["vectors"] if e["name"] == name)


def test_the_decoder_does_not_use_the_package():
    tree = ast.parse(TOOL.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert "pacodec" not in imported
    assert imported <= {"json", "math", "os", "sys", "numpy", "soundfile"}


@pytest.mark.parametrize("version", VERSIONS)
def test_codebook_files_are_those_the_manifest_names(version):
    m = _manifest(version)
    n = int(version[1:])
    path = ROOT / "bitstreams" / idec.CODEBOOK_FILES[n]
    assert m["format_version"] == n
    assert hashlib.sha256(path.read_bytes()).hexdigest() == m["codebooks_sha256"]


@pytest.mark.parametrize("version,name", _cases())
def test_vector_decodes_bit_exactly(version, name, tmp_path):
    e = _entry(version, name)
    pac = VECTORS / version / e["pac"]
    ref_path = VECTORS / version / e["reference"]
    assert hashlib.sha256(pac.read_bytes()).hexdigest() == e["pac_sha256"]
    out = tmp_path / (name + ".wav")
    assert idec.main([str(pac), str(out)]) == 0
    info = sf.info(str(out))
    assert (info.format, info.subtype) == ("WAV", "FLOAT")
    got, fs = sf.read(str(out), dtype="float32", always_2d=True)
    ref, rfs = sf.read(str(ref_path), dtype="float32", always_2d=True)
    assert (fs, got.shape) == (rfs, ref.shape) == (e["samplerate"], (e["frames"], e["channels"]))
    normative = np.ones(len(ref), dtype=bool)
    for first, end in e["non_normative"]:
        normative[first:end] = False
    # §11: tolerance 0, +0 and -0 compare equal (== does exactly that)
    bad = np.argwhere((got != ref) & normative[:, None])
    assert len(bad) == 0, f"{len(bad)} samples differ, first at (sample, channel) {bad[0]}"


@pytest.mark.parametrize("version,name", [c for c in _cases() if "metadata" in _entry(*c)])
def test_metadata_block_reads_as_the_manifest_says(version, name):
    e = _entry(version, name)
    _, _, dec = idec.decode_bytes((VECTORS / version / e["pac"]).read_bytes())
    want = e["metadata"]
    if "damaged" in want:
        assert dec.metadata is None and dec.metadata_damaged == want["damaged"]
    else:
        assert [list(c) for c in dec.metadata["comments"]] == want["comments"]
        assert dec.metadata["loudness"] == want["loudness"]


def test_bad_input_is_a_one_line_error(tmp_path):
    cases = {
        b"": "not a pacodec stream",
        b"PACD\x04": "stream header is truncated",
        b"\xca\x5e\x00\x00": "no pacodec stream found",
    }
    hdr = b"PACD" + bytes([2, 0x30, 0x99, 0x80, 0, 255, 1, 0]) + b"\xff" * 6
    hdr += idec.crc16(hdr).to_bytes(2, "big")
    cases[hdr] = "unsupported pacodec format version 2 (this decoder reads version 3, 4)"
    for i, (data, msg) in enumerate(cases.items()):
        src = tmp_path / f"bad{i}.pac"
        src.write_bytes(data)
        r = subprocess.run([sys.executable, str(TOOL), str(src), str(tmp_path / "o.wav")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1
        assert r.stderr == f"error: {msg}\n"


def test_crc_check_value():
    assert idec.crc16(b"123456789") == 0x31C3                            # §4.2
