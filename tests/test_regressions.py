"""Regression tests: every crash, hang or wrong decoding found by fuzzing (tools/fuzz.py) or by
reviewing the decoder stays fixed.

Fuzz findings are stored minimized under ``tests/regressions/*.json`` (target, operations, input as
hex; made with ``python tools/fuzz.py --minimize FINDING.json``) and replayed through the same
oracle as the fuzzer (pacodec._fuzz): the target must return audio / an ``Info`` or raise ``FormatError``.
"""
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import pacodec
from pacodec import _fuzz as FUZZ
from pacodec import container as ct
from pacodec import payload as pld
from pacodec.bitio import writer_state
from pacodec.config import StreamConfig
from pacodec.decoder import CONCEAL_FREE_V8
from pacodec.errors import FormatError
from pacodec.tables import load_codebooks

from conftest import snr_db

HERE = Path(__file__).resolve().parent

FINDINGS = sorted((HERE / "regressions").glob("*.json"))


@pytest.fixture(scope="module")
def warm():
    """Each target once on a small valid stream, so first-use work (numba cache loading, tables)
    is not counted in the memory peaks measured below."""
    data = pacodec.encode(np.zeros((5000, 2)), 44100, bitrate=64)
    for target, ops in (("decode", []), ("feed", [100]), ("info", []),
                        ("pacfile", [["blocks", 4096]])):
        FUZZ.run_case({"target": target, "data": data, "ops": ops})


@pytest.mark.parametrize("path", FINDINGS, ids=[p.stem for p in FINDINGS])
def test_fuzz_finding_stays_fixed(path, warm):
    """Replayed with the fuzzer's resource bounds (output and memory; not wall time), and the
    tighter ones a crafted case states: ``bounds`` = {peak_mb, peak_per_input_byte}: the
    tracemalloc peak may grow with the input only at that rate (0 for streaming targets);
    ``expect``: the outcome it must have."""
    obj = json.loads(path.read_text())
    case = FUZZ.case_from_json(obj)
    outcome, detail, m = FUZZ.run_measured(case, time_bound=False)
    assert outcome in FUZZ.OK_OUTCOMES, f"{obj['bug']}: {outcome}\n{detail}"
    if obj.get("expect"):
        assert outcome == obj["expect"], f"{obj['bug']}: {outcome}\n{detail}"
    b = obj.get("bounds")
    if b:
        n = FUZZ.input_bytes(case)
        limit = b["peak_mb"] * 2 ** 20 + b.get("peak_per_input_byte", 0) * n
        assert m["m"] <= limit, (f"{obj['bug']}: tracemalloc peak {m['m'] / 2**20:.1f} MB for "
                                 f"{n} input bytes (bound {limit / 2**20:.1f} MB)")


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def stream(piano):
    x, fs = piano
    x = x[fs // 2: fs // 2 + fs]
    return x, fs, pacodec.encode(x, fs, bitrate=96)


def frames_of(data):
    pos, out = ct.HEADER_SIZE, []
    while pos < len(data):
        fr = ct.parse_frame_at(data, pos)
        out.append((pos, fr))
        pos += fr.size
    return out


def decode_all(data, **kw):
    dec = pacodec.Decoder(**kw)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        y = np.concatenate([dec.feed(data), dec.finish()])
    return y, dec, [str(m.message) for m in w]


# ----------------------------------------------------------------------------- review findings
def test_mulaw_extreme_values_saturate_instead_of_becoming_inf():
    """A valid stream can code mu-law values far beyond float32 ((1 + mu)^(8191/256) * 2^38.75);
    the decoder returned inf samples.  Output now saturates at the float32 maximum."""
    cfg = StreamConfig(8000, 1, 256, 256, False, quantizer="mulaw", mu=65535)
    lay = pld.layout_for(cfg)
    nb = lay.nb_long
    B = load_codebooks()
    buf, st = np.zeros(4000, np.uint8), writer_state()
    pld.write_payload(buf, st, 0, 0, 0, 0, np.array([nb]), np.zeros(1, np.int64),
                     np.zeros((1, nb), np.int64), np.full((1, nb), 6, np.int64),
                     np.full((1, nb), 255, np.int64), np.full((1, 256), 8191, np.int64),
                     lay.ub_long, nb, 1, B.codes, B.lengths)
    payload = buf[:(st[0] + 7) // 8].tobytes()
    data = ct.pack_header(cfg, 768) + ct.pack_frame(
        ct.FRAME_CONFIG, 0, ct.pack_config(cfg) + bytes(4) + payload)
    data += b"".join(ct.pack_frame(ct.FRAME_AUDIO, k, payload) for k in (1, 2, 3))
    data += ct.pack_frame(ct.FRAME_EOS, 4, (768).to_bytes(6, "big"))
    y, rate = pacodec.decode(data)
    assert y.shape == (768, 1) and np.isfinite(y).all()
    assert np.abs(y).max() == np.finfo(np.float32).max


def test_damaged_length_field_near_the_end_does_not_lose_the_frames_after_it(stream):
    """A damaged length field (or a false sync word) near the end claims more bytes than the file
    has: the decoder waited for them, and at the end of input dropped every frame after it."""
    x, fs, data = stream
    offs = frames_of(data)
    pos = offs[-5][0]
    bad = bytearray(data)
    bad[pos + 2] |= 0x3F                      # length -> >= 16128 bytes: past the end of the file
    y, dec, w = decode_all(bytes(bad))
    assert y.shape == x.shape                 # the EOS frame after it was found: exact length
    assert dec.concealed == 1 and not w
    assert any("runs past the end" in e for e in dec.errors)
    tail = slice(len(x) - 1000, len(x))       # two frames after the concealed one
    assert snr_db(x[tail], y[tail]) > 15


def test_info_scans_past_a_damaged_length_field(stream, tmp_path):
    x, fs, data = stream
    offs = frames_of(data)
    pos = offs[-5][0]
    bad = bytearray(data)
    bad[pos + 2] |= 0x3F
    i = pacodec.info(io.BytesIO(bytes(bad)))
    assert i.frames == len(x) and i.codec_frames == len(offs) - 2
    assert any(f"byte offset {pos}" in p and "damaged length" in p for p in i.problems)
    assert not any("no end-of-stream" in p for p in i.problems)


def test_frame_with_valid_crc_but_invalid_payload_is_concealed_in_place(stream):
    """A CRC-valid frame whose payload does not parse was dropped without concealment: the output
    lost a hop and everything after it was shifted in time."""
    x, fs, data = stream
    offs = frames_of(data)
    pos, fr = offs[20]
    assert fr.ftype == ct.FRAME_AUDIO
    junk = ct.pack_frame(ct.FRAME_AUDIO, fr.seq, b"\xff" * 40)   # max_band 63 > nbands
    bad = data[:pos] + junk + data[pos + fr.size:]
    y, dec, w = decode_all(bad)
    assert y.shape == x.shape and dec.concealed == 1 and not w
    assert any("invalid frame payload" in e for e in dec.errors)
    after = slice(23 * 1024, len(x))          # aligned again after the concealed frame
    assert snr_db(x[after], y[after]) > 15
    with pytest.raises(FormatError, match="invalid frame payload"):
        pacodec.decode(bad, strict=True)


def test_frames_lost_just_before_the_end_of_stream_frame_are_concealed(stream):
    x, fs, data = stream
    offs = frames_of(data)
    a, b = offs[-4][0], offs[-2][0]           # drop the two frames before the last audio frame
    y, dec, w = decode_all(data[:a] + data[b:])
    assert y.shape == x.shape and dec.concealed == 2
    a = offs[-3][0]                           # drop the last two audio frames before the EOS
    y, dec, w = decode_all(data[:a] + data[offs[-1][0]:])
    assert y.shape == x.shape and dec.concealed == 2 and not w


def test_damaged_stream_header_does_not_lose_the_stream(stream, tmp_path):
    """The header's config is repeated in-band, yet one bit flip in it made the whole file
    undecodable (decode, PacFile and info all raised)."""
    x, fs, data = stream
    bad = bytearray(data)
    bad[7] ^= 0x04
    bad = bytes(bad)
    y, dec, w = decode_all(bad)
    assert y.shape == x.shape and not w       # the end-of-stream frame gives the exact length
    assert "CRC" in dec.errors[0] and "byte offset 0" in dec.errors[0]
    assert snr_db(x[2048:], y[2048:]) > 15
    with pytest.raises(FormatError, match="CRC"):
        pacodec.decode(bad, strict=True)
    p = tmp_path / "h.pac"
    p.write_bytes(bad)
    z, rate = pacodec.read(p)
    assert rate == fs and np.array_equal(z, y)
    with pacodec.PacFile(p) as f:
        f.seek(fs // 2)
        assert np.array_equal(f.read(1000), y[fs // 2: fs // 2 + 1000])
    i = pacodec.info(p)
    assert i.samplerate == fs and i.frames == len(x)
    assert "header" in i.problems[0] and "byte offset 0" in i.problems[0]


def test_sequence_jumps_without_lost_bytes_do_not_expand_into_concealed_audio(stream):
    """Every frame of a spliced (or hostile) stream can claim 255 lost frames: a few hundred bytes
    decoded to minutes of concealment (time and memory).  Concealment is now bounded by the bytes
    that could have held the lost frames (plus CONCEAL_FREE frames for a clean cut; format 8,
    whose groups hold frames of a few bytes: CONCEAL_FREE_V8)."""
    x, fs, data = stream
    offs = frames_of(data)
    head = data[:ct.HEADER_SIZE]
    parts = [data[offs[0][0]:offs[0][0] + offs[0][1].size]]
    seq = offs[0][1].seq
    for k in range(1, 11):
        _, fr = offs[k]
        seq = (seq + 200) & 0xFF
        parts.append(ct.pack_frame(fr.ftype, seq, fr.payload))
    unknown = ct.pack_header(StreamConfig(fs, 2, 1024, 1024, True), None)
    for h in (head, unknown):
        y, dec, w = decode_all(h + b"".join(parts))
        assert dec.frames == 11
        assert dec.concealed == 10 * CONCEAL_FREE_V8
        assert len(y) <= (11 + 10 * CONCEAL_FREE_V8) * 1024
