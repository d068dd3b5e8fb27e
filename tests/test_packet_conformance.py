"""Packet conformance (FORMAT.md §9, packet version 2): the captures in bitstreams/vectors/packets/.

Each vector is a capture of datagrams (tools/make_packet_vectors.py, which also wrote the
manifest from the reference receiver's results).  Checked here, with no clock (the timing rules
of §9 are out of scope):

* the reference receiver (``pacodec.stream.session.SessionFilter`` + ``pacodec.decode``) gives
  each vector's accepted frames and decoded output bit for bit;
* the independent packet reader (tools/independent_packets.py, written from §9 alone) and the
  independent frame decoder (tools/independent_decoder.py) give the same: the same frames, and
  every sample outside the concealed ranges (§11) bit for bit;
* every rule the manifest lists is exercised by some vector, as the independent reader sees it.

A missing manifest or capture is a failure, never a skip.
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DIR = ROOT / "bitstreams" / "vectors" / "packets"
sys.path.insert(0, str(ROOT / "tools"))

import independent_decoder as idd  # noqa: E402
import independent_packets as ip  # noqa: E402

#: the vectors the set must hold
NAMES = ["single_48k_stereo", "multi2_48k_stereo", "multi4_16k_mono", "multi8_48k_stereo",
         "mac_48k_stereo", "reorder_48k_stereo", "overlap_16k_mono", "gap_16k_mono",
         "foreign_48k_stereo", "jump_16k_mono", "ended_16k_mono", "probation_48k_stereo",
         "malformed_48k_stereo"]
#: the §9 rules the set must exercise (the manifest's `rules` must list at least these)
RULES = {"single_frame", "multi_frame", "short_last_packet", "probation", "probation_restart",
         "candidates", "mac_accept", "mac_drop", "mac_skipped", "reorder", "duplicate",
         "partial_overlap", "gap", "foreign_session", "foreign_source", "jump",
         "unconfirmed_jump", "ended_session", "drop_short", "drop_tag", "drop_flags",
         "drop_session0", "drop_multi_field"}
MOD = 1 << 32


def _manifest():
    path = DIR / "manifest.json"
    assert path.exists(), f"packet conformance manifest missing: {path}"
    return json.loads(path.read_text())


def _vector(name):
    entries = [v for v in _manifest()["vectors"] if v["name"] == name]
    assert len(entries) == 1, f"{name}: {len(entries)} manifest entries"
    v = entries[0]
    path = DIR / v["capture"]
    assert path.exists(), f"capture missing: {path}"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == v["capture_sha256"], f"{name}: capture changed"
    key = bytes.fromhex(v["key"]) if v["key"] else None
    return v, ip.read_capture(data), key


def _sha(b):
    return hashlib.sha256(b).hexdigest()


def _normative_sha(pcm, bad):
    y = np.array(pcm, dtype=np.float32)
    for lo, hi in bad:
        y[lo:hi] = 0
    y = y + np.float32(0)                      # -0 and +0 compare equal (§11)
    return _sha(y.astype("<f4").tobytes())


def _is_eos(frame):
    return len(frame) >= 3 and frame[2] >> 6 == 2


def reference_receive(datagrams, key):
    """SessionFilter fed the capture with no clock; the player's end_current() once the
    end-of-stream frame is handed on.  Returns ([(seq, frame)] in extended-seq order, filter)."""
    from pacodec.stream.session import SessionFilter
    f = SessionFilter(key)
    got = {}
    for src, d in datagrams:
        acc = f.accept(d, ("192.0.2.%d" % src, 5004), 0.0)
        ended = False
        for ext, _ts, frame in acc.packets:
            assert ext not in got, "a frame handed on twice"
            got[ext] = bytes(frame)
            ended |= _is_eos(frame)
        if ended:
            f.end_current()
    return [(e % MOD, got[e]) for e in sorted(got)], f


def test_manifest_lists_every_vector_and_the_rules():
    m = _manifest()
    assert m["packet_version"] == 2
    assert sorted(v["name"] for v in m["vectors"]) == sorted(NAMES)
    assert RULES <= set(m["rules"])
    total = sum((DIR / v["capture"]).stat().st_size for v in m["vectors"])
    assert total < 200_000
    for v in m["vectors"]:
        assert (DIR / v["capture"]).exists(), v["capture"]
        assert set(v["covers"]) <= set(m["rules"]), v["name"]
        assert "out_of_scope" in m and "2 s" in m["out_of_scope"]


@pytest.mark.parametrize("name", NAMES)
def test_reference_receiver_gives_the_expected_frames_and_output(name):
    import pacodec
    v, datagrams, key = _vector(name)
    got, f = reference_receive(datagrams, key)
    assert [s for s, _ in got] == v["accepted"]
    frames = [fr for _, fr in got]
    assert _sha(b"".join(frames)) == v["stream_sha256"]
    pcm, fs = pacodec.decode(b"".join(frames))
    pcm = np.ascontiguousarray(pcm, dtype=np.float32)
    assert (fs, pcm.shape) == (v["samplerate"], (v["frames"], v["channels"]))
    assert _sha(pcm.astype("<f4").tobytes()) == v["output_sha256"]          # bit for bit
    assert _normative_sha(pcm, v["non_normative"]) == v["normative_sha256"]
    # the reference's counters agree with what the vector says it covers
    covers = set(v["covers"])
    assert bool(f.unauthenticated) == ("mac_drop" in covers)
    assert bool(f.malformed) == bool(covers & {"drop_short", "drop_tag", "drop_flags",
                                               "drop_session0", "drop_multi_field"})
    assert bool(f.restarts) == ("jump" in covers)
    if covers & {"foreign_session", "foreign_source"}:
        assert f.foreign
    if "duplicate" in covers or "ended_session" in covers:
        assert f.replayed


@pytest.mark.parametrize("name", NAMES)
def test_independent_reader_and_decoder_agree_bit_exactly(name, tmp_path):
    v, datagrams, key = _vector(name)
    seqs, missing, frames, _dropped = ip.read(datagrams, key)
    assert seqs == v["accepted"]
    assert missing == v["missing"]
    assert _sha(b"".join(frames)) == v["stream_sha256"]
    pcm, fs, dec = idd.decode_bytes(b"".join(frames))
    assert (fs, pcm.shape) == (v["samplerate"], (v["frames"], v["channels"]))
    assert [list(r) for r in dec.non_normative] == v["non_normative"]
    assert _normative_sha(pcm, v["non_normative"]) == v["normative_sha256"]
    # the command line tool writes the same samples
    cap = tmp_path / "in.cap"
    cap.write_bytes(ip.write_capture(datagrams))
    out = tmp_path / "out.wav"
    args = (["--key", key.hex()] if key else []) + [str(cap), str(out)]
    assert ip.main(args) == 0
    raw = out.read_bytes()
    data = raw[raw.index(b"data") + 8:]
    assert np.array_equal(np.frombuffer(data, "<f4").reshape(pcm.shape), pcm)


@pytest.mark.parametrize("name", NAMES)
def test_each_vector_exercises_what_it_says(name):
    v, datagrams, key = _vector(name)
    seen = ip.exercised(datagrams, key) & set(_manifest()["rules"])
    assert seen == set(v["covers"])


def test_every_rule_is_exercised_by_some_vector():
    m = _manifest()
    covered = set()
    for v in m["vectors"]:
        _, datagrams, key = _vector(v["name"])
        covered |= ip.exercised(datagrams, key)
    assert set(m["rules"]) - covered == set()
    assert RULES - covered == set()


def test_capture_container_round_trips():
    datagrams = [(1, b"\xa8\x00abc"), (65535, b""), (2, bytes(range(256)) * 3)]
    assert ip.read_capture(ip.write_capture(datagrams)) == datagrams
    with pytest.raises(ValueError):
        ip.read_capture(ip.write_capture(datagrams)[:-1])
    with pytest.raises(ValueError):
        ip.read_capture(b"PKTX")
