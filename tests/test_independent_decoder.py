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
VERSIONS = ("v3", "v4", "v5", "v6", "v7", "v8")


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
    assert imported <= {"json", "math", "os", "struct", "sys", "numpy"}


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
    if not e["non_normative"]:                          # the same WAV layout: the same bytes
        assert hashlib.sha256(out.read_bytes()).hexdigest() == e["reference_sha256"]


@pytest.mark.parametrize("version,name", _cases())
def test_concealed_ranges_are_the_manifests_non_normative(version, name):
    """§11: the decoder reports the output samples that depend on concealment; they are the
    manifest's `non_normative` ranges (the differential checks compare everything else)."""
    e = _entry(version, name)
    _, _, dec = idec.decode_bytes((VECTORS / version / e["pac"]).read_bytes())
    assert dec.non_normative == e["non_normative"]


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
    cases[hdr] = "unsupported pacodec format version 2 (this decoder reads version 3, 4, 5, 6, 7, 8)"
    for i, (data, msg) in enumerate(cases.items()):
        src = tmp_path / f"bad{i}.pac"
        src.write_bytes(data)
        r = subprocess.run([sys.executable, str(TOOL), str(src), str(tmp_path / "o.wav")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1
        assert r.stderr == f"error: {msg}\n"


def test_crc_check_value():
    assert idec.crc16(b"123456789") == 0x31C3                            # §4.2


# Properties of the text (§4.3, §6.3, §12) on real vector bytes where no reference output exists:
# the decoder is compared with its own decode of the intact vector.

def _decode(data):
    return idec.decode_bytes(bytes(data))[0]


def _frame_spans(data):
    """(start, end) of every CRC-valid frame candidate (§4.1)."""
    spans, p = [], data.find(idec.SYNC)
    while p >= 0:
        if p + 5 <= len(data):
            end = p + 7 + ((data[p + 2] & 63) << 8 | data[p + 3])
            if end <= len(data) and idec.crc16(data[p + 2:end - 2]) == idec.u16(data[end - 2:end]):
                spans.append((p, end))
        p = data.find(idec.SYNC, p + 1)
    return spans


def test_header_removed_or_garbage_in_front_decodes_the_same():
    """§4.3/§6.3: a stream without its header starts at its first config frame (frame 0) and
    takes its length from the end-of-stream frame; garbage before a frame is skipped."""
    data = (VECTORS / "v4" / "stereo_16k_power_abr.pac").read_bytes()
    full = _decode(data)
    headerless = data[20:]
    assert headerless[:2] == idec.SYNC and headerless[2] >> 6 == 1
    assert np.array_equal(_decode(headerless), full)
    assert np.array_equal(_decode(b"\xca\x5e\x00garbage\xca" + headerless), full)


def test_a_truncated_stream_yields_a_prefix():
    """§6.3/§12: a truncated stream gives the samples of the frames it holds, nothing invented."""
    data = (VECTORS / "v4" / "stereo_44k_power.pac").read_bytes()
    full = _decode(data)
    spans = _frame_spans(data)
    N = delay = 1024                                     # V = N: delay = N - (N - V) // 2
    for k in (1, 3, len(spans) // 2):
        cut = _decode(data[:spans[k][1]])                # frames 0..k, no end-of-stream frame
        assert 0 < len(cut) < len(full) and len(cut) == (k + 1) * N - delay
        assert np.array_equal(cut, full[:len(cut)])


def test_a_config_frame_with_an_invalid_payload_still_anchors_the_count():
    """§12's one exception (§4.3: next_index, next_seq): the first frame of the joined stream is a
    CRC-valid config frame (index 31) whose payload is made invalid (max_band[0] = 63); its
    config is adopted and the next frame is frame 32, so the output is the intact decode without
    the first frame's N samples (and the next N depend on the missing overlap partner)."""
    data = bytearray((VECTORS / "v4" / "stereo_16k_headerless_joined.pac").read_bytes())
    full = _decode(data)
    start, end = _frame_spans(bytes(data))[0]
    assert data[start + 2] >> 6 == 1 and idec.u32(data[start + 13:start + 17]) == 31
    assert data[start + 17] >> 5 == 0                    # long frame: max_band[0] at bits 3..8
    data[start + 17] |= 0x1F
    data[start + 18] |= 0x80
    data[end - 2:end] = idec.crc16(data[start + 2:end - 2]).to_bytes(2, "big")
    warnings = []
    got = idec.decode_bytes(bytes(data), warnings.append)[0]
    assert any("max_band" in w for w in warnings)
    N = 512
    assert len(got) == len(full) - N
    assert np.array_equal(got[N:], full[2 * N:])
