"""Tags and loudness (issue #21): the metadata block of format 4 (FORMAT.md §3.3), carried from a
FLAC through encode, info and decode, damaged, oversized and hostile; the BS.1770 meter against
published reference points."""
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

import pacodec
from pacodec import container as ct
from pacodec.cli import main
from pacodec.loudness import LoudnessMeter, integrated_loudness

HYP = settings(deadline=None, derandomize=True, database=None, max_examples=60)

TAGS = {"title": "Ünïcode ✓ — ピアノ", "artist": "Ann & Bo", "album": "Album",
        "tracknumber": "7", "date": "2024-05-01", "genre": "Jazz", "comment": "two\nlines"}


def run(*args):
    return main([str(a) for a in args])


def sine(freq, db, seconds, fs=48000, channels=(1, 1)):
    t = np.arange(int(seconds * fs)) / fs
    s = 10 ** (db / 20) * np.sin(2 * np.pi * freq * t)
    return np.stack([s * c for c in channels], axis=1)


@pytest.fixture
def tagged_flac(tmp_path):
    p = tmp_path / "in.flac"
    x = sine(1000, -20, 1.5, 44100)         # -20 LUFS (BS.1770: 1 kHz reads as its level)
    with sf.SoundFile(p, "w", 44100, 2, format="FLAC") as f:
        for k, v in TAGS.items():
            setattr(f, k, v)
        f.write(x)
    return p


# ------------------------------------------------------------------ the command line, end to end
def test_flac_tags_go_through_encode_info_and_decode_to_flac_and_wav(tmp_path, tagged_flac, capsys):
    pac = tmp_path / "a.pac"
    assert run("encode", tagged_flac, "-o", pac, "--quiet") == 0
    capsys.readouterr()
    assert run("info", pac) == 0
    out = capsys.readouterr().out
    assert "LUFS" in out and "playback gain" in out and "Ünïcode ✓ — ピアノ" in out
    assert run("info", pac, "--json") == 0
    i = json.loads(capsys.readouterr().out)
    assert i["tags"] == {k.upper(): v for k, v in TAGS.items()}
    assert abs(i["loudness"] + 20) < 0.1 and i["gain"] == pytest.approx(-18 - i["loudness"])
    for ext in ("flac", "wav", "ogg"):
        assert run("decode", pac, "-o", tmp_path / f"b.{ext}", "--quiet") == 0
        with sf.SoundFile(tmp_path / f"b.{ext}") as f:
            got = f.copy_metadata()
        got.pop("software", None)
        assert got == TAGS, ext
    # the API sees the same
    with pacodec.PacFile(pac) as f:
        assert f.tags == i["tags"] and f.loudness == i["loudness"] and f.gain == i["gain"]
        f.seek(30000)                      # a seek restarts the decoder: the tags stay
        f.read(100)
        assert f.tags == i["tags"]
    assert pacodec.info(pac).tags == i["tags"]


def test_decoding_to_a_pipe_writes_no_tags(tmp_path, tagged_flac):
    pac = tmp_path / "a.pac"
    assert run("encode", tagged_flac, "-o", pac, "--quiet") == 0
    r = subprocess.run([sys.executable, "-m", "pacodec", "decode", str(pac), "-o", "-"],
                       capture_output=True, check=True)
    assert b"LIST" not in r.stdout and r.stderr == b""
    y, fs = sf.read(io.BytesIO(r.stdout))
    assert fs == 44100 and len(y) == int(1.5 * 44100)


def test_tag_options_replace_add_remove_and_no_tags(tmp_path, tagged_flac):
    pac = tmp_path / "a.pac"
    assert run("encode", tagged_flac, "-o", pac, "--quiet", "--tag", "GENRE=Rock",
               "--tag", "artist=A", "--tag", "ARTIST=B", "--tag", "COMMENT=",
               "--tag", "Mood=calm = quiet") == 0
    tags = pacodec.info(pac).tags
    assert tags["GENRE"] == "Rock" and tags["ARTIST"] == "A; B" and "COMMENT" not in tags
    assert tags["MOOD"] == "calm = quiet" and tags["TITLE"] == TAGS["title"]
    with pacodec.PacFile(pac) as f:
        assert [c for c in f.metadata.comments if c[0] == "ARTIST"] == [("ARTIST", "A"),
                                                                         ("ARTIST", "B")]
    assert run("encode", tagged_flac, "-o", pac, "-f", "--quiet", "--no-tags",
               "--tag", "TITLE=only") == 0
    i = pacodec.info(pac)
    assert i.tags == {"TITLE": "only"} and i.loudness is not None


def test_oversized_or_invalid_tags_are_refused_with_one_line_and_no_file(tmp_path, tagged_flac,
                                                                         capsys):
    pac = tmp_path / "a.pac"
    for tag, what in (("COMMENT=" + "x" * 20000, "at most 16380"), ("A~B=1", "invalid tag name"),
                      ("novalue", "KEY=VALUE")):
        assert run("encode", tagged_flac, "-o", pac, "--tag", tag) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and what in err and err.startswith("pacodec: error:")
        assert not pac.exists()
    with pytest.raises(pacodec.UnsupportedError, match="at most"):
        pacodec.encode(np.zeros(100), 8000, tags={"X": "é" * 9000})
    with pytest.raises(pacodec.UnsupportedError, match="NUL"):
        pacodec.Encoder(8000, 1, tags={"X": "a\0b"})
    # the largest that fits is accepted, and read back
    room = ct.META_MAX_BODY - ct.META_LOUDNESS_SIZE - len("COMMENT=") - 1
    data = pacodec.encode(np.zeros(8000), 8000, tags={"COMMENT": "y" * room})
    assert pacodec.info(io.BytesIO(data)).tags["COMMENT"] == "y" * room


def test_batch_keeps_the_tags(tmp_path, tagged_flac):
    src = tmp_path / "tree"
    src.mkdir()
    tagged_flac.rename(src / "song.flac")
    assert main(["batch", str(src), str(tmp_path / "out"), "-j", "1"]) == 0
    i = pacodec.info(tmp_path / "out" / "song.pac")
    assert i.tags == {k.upper(): v for k, v in TAGS.items()} and abs(i.loudness + 20) < 0.1


# ------------------------------------------------------------------ the block in the stream
def test_damaged_block_leaves_the_audio_identical_and_the_tags_missing(tmp_path):
    x = sine(1000, -10, 1.0, 16000)
    clean = pacodec.encode(x, 16000, bitrate=48, tags={"TITLE": "t"})
    plain = pacodec.encode(x, 16000, bitrate=48)
    y0, _ = pacodec.decode(plain)
    start = ct.HEADER_SIZE
    size = ct.metadata_size(clean[start:start + 6])
    assert clean[start + size:] == plain[ct.HEADER_SIZE:]      # the block changes no frame
    for i in range(start, start + size):                       # every byte of the block
        bad = bytearray(clean)
        bad[i] ^= 0x20
        bad = bytes(bad)
        for strict in (False, True):
            dec = pacodec.Decoder(strict=strict)
            y = np.concatenate([dec.feed(bad), dec.finish()])
            assert np.array_equal(y, y0), i
            # past its magic the block is damaged; with its magic damaged it is garbage
            assert dec.metadata is None and (i < start + 4 or "metadata block" in
                                             dec.metadata_error)
        info = pacodec.info(io.BytesIO(bad))
        assert info.tags == {} and info.loudness is None
        assert "metadata block" in info.problems[0] or i < start + 4
        p = tmp_path / "bad.pac"
        p.write_bytes(bad)
        with pacodec.PacFile(p) as f:
            assert f.tags == {} and (i < start + 4 or f.metadata_error)
            assert np.array_equal(f.read(), y0)


def test_truncated_and_hostile_lengths_are_bounded():
    x = sine(1000, -10, 0.5, 8000, (1,))
    data = pacodec.encode(x, 8000, bitrate=16, tags={"TITLE": "t" * 100})
    for cut in (21, 24, 26, 60, 138):        # the block is bytes 20..138
        dec = pacodec.Decoder(warn_truncation=False)
        try:
            dec.feed(data[:cut])
            dec.finish()
        except pacodec.FormatError:
            pass
        assert dec.metadata is None
    b = bytearray(data)
    b[24:26] = b"\x7f\x7f"                 # the largest length u7(2) can state, past the input
    dec = pacodec.Decoder()
    y = np.concatenate([o for o in (dec.feed(bytes(b)), dec.finish()) if len(o)])
    assert dec.metadata is None and len(y) == len(x) and "truncated" in dec.metadata_error


def test_block_is_read_from_a_stream_fed_one_byte_at_a_time():
    x = sine(300, -6, 0.6, 8000, (1,))
    data = pacodec.encode(x, 8000, bitrate=16, tags={"TITLE": "slow"})
    dec = pacodec.Decoder()
    out = [dec.feed(data[i:i + 1]) for i in range(400)] + [dec.feed(data[400:]), dec.finish()]
    assert np.array_equal(np.concatenate([o for o in out if len(o)]), pacodec.decode(data)[0])
    assert dec.metadata.tags == {"TITLE": "slow"} and not list(dec.errors)


def test_a_second_block_and_a_block_in_a_version_3_stream_are_garbage():
    x = sine(300, -6, 0.6, 8000, (1,))
    data = pacodec.encode(x, 8000, bitrate=16, tags={"TITLE": "one"})
    size = ct.metadata_size(data[20:26])
    block = data[20:20 + size]
    y0, _ = pacodec.decode(data)
    dec = pacodec.Decoder()
    y = np.concatenate([dec.feed(data[:20 + size] + block + data[20 + size:]), dec.finish()])
    assert np.array_equal(y, y0) and dec.metadata.tags == {"TITLE": "one"}
    # a version-3 header: no metadata block is looked for (the frames are not version 3, so
    # only the header's handling is checked, through the scanner)
    sc = ct.Scanner()
    cfg3 = ct.unpack_header(data[:20]).config
    from dataclasses import replace
    sc.feed(ct.pack_header(replace(cfg3, version=3, min_band=0), None) + block)
    hdr = sc.read_header(final=True)
    assert hdr.config.version == 3 and sc.metadata is None and sc.pos == 20


def test_a_damaged_header_loses_the_tags_but_not_the_audio():
    x = sine(300, -6, 1.2, 8000, (1,))
    data = bytearray(pacodec.encode(x, 8000, bitrate=16, tags={"TITLE": "t"}))
    y0, _ = pacodec.decode(bytes(data))
    data[13] ^= 1                           # the header's length field: its CRC fails
    dec = pacodec.Decoder()
    y = np.concatenate([dec.feed(bytes(data)), dec.finish()])
    assert dec.metadata is None and np.array_equal(y, y0)


keys = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7D, blacklist_characters="="),
               min_size=1, max_size=12)
values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                 max_size=60)


@HYP
@given(st.lists(st.tuples(keys, values), max_size=12),
       st.one_of(st.none(), st.floats(-70, 20)))
def test_any_tags_round_trip_and_no_block_holds_a_sync_word(comments, loudness):
    """FORMAT.md §3.3: whatever the text, a valid block never contains 0xCA 0x5E, so a scanner
    that does not know it can never find a frame in it."""
    block = ct.pack_metadata(ct.Metadata(comments, loudness))
    assert b"\xca\x5e" not in block and block[-1] < 0x80
    m = ct.unpack_metadata(block)
    assert m.comments == tuple((k.upper(), v) for k, v in comments)
    assert (m.loudness is None) == (loudness is None)
    if loudness is not None:
        assert abs(m.loudness - loudness) <= 1 / 512
    # nothing in it is taken for a frame
    sc = ct.Scanner()
    sc.feed(block)
    assert [k for k, *_ in sc.events(final=True)] in ([], [ct.SCAN_DAMAGED])


@HYP
@given(st.binary(max_size=80), st.integers(0, 2 ** 14 - 1))
def test_hostile_block_bodies_raise_format_error_only(body, claimed):
    blk = ct.META_MAGIC + ct._u7(min(claimed, len(body)), 2) + body
    blk = blk + ct._u7(ct.crc16(blk[:6 + min(claimed, len(body))]), 3)
    try:
        m = ct.unpack_metadata(blk)
    except pacodec.FormatError:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in m.comments)


# ------------------------------------------------------------------ loudness (ITU-R BS.1770-4)
def test_bs1770_reference_points():
    # BS.1770-4 §2.1 / table 1 note: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS
    for fs in (44100, 48000):
        one = sine(997, 0, 3, fs, (1, 0))
        assert integrated_loudness(one, fs) == pytest.approx(-3.01, abs=0.01)
    # the same at -20 dBFS in both channels of a stereo pair: -20 LUFS
    assert integrated_loudness(sine(1000, -20, 3), 48000) == pytest.approx(-20.0, abs=0.05)


def test_ebu_tech_3341_cases_1_to_5():
    """EBU Tech 3341 (2016) table 1, cases 1-5: stereo 1 kHz sines, integrated -23.0 +-0.1 LUFS
    (case 2: -33.0) -- the gates are what cases 3-5 test."""
    def seq(*parts):
        return np.concatenate([sine(1000, db, sec) for db, sec in parts])
    assert integrated_loudness(sine(1000, -23, 20), 48000) == pytest.approx(-23, abs=0.1)
    assert integrated_loudness(sine(1000, -33, 20), 48000) == pytest.approx(-33, abs=0.1)
    cases = [seq((-36, 10), (-23, 60), (-36, 10)),
             seq((-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)),
             seq((-26, 20), (-20, 20.1), (-26, 20))]
    for x in cases:
        assert integrated_loudness(x, 48000) == pytest.approx(-23, abs=0.1)


def test_meter_streams_and_reports_silence_and_short_input_as_none():
    rng = np.random.default_rng(5)
    x = 0.1 * rng.standard_normal((48000 * 3, 2))
    m = LoudnessMeter(48000, 2)
    for a in range(0, len(x), 7777):
        m.feed(x[a:a + 7777])
    assert m.integrated() == pytest.approx(integrated_loudness(x, 48000), abs=1e-9)
    assert integrated_loudness(np.zeros((48000, 2)), 48000) is None
    assert integrated_loudness(sine(1000, 0, 0.3), 48000) is None
    # 5.1 (WAVE order): the LFE is left out, the surrounds weigh 1.41
    six = np.zeros((48000 * 2, 6))
    six[:, 3] = sine(997, 0, 2, 48000, (1,))[:, 0]
    assert integrated_loudness(six, 48000) is None
    six[:, 4] = six[:, 3]
    assert integrated_loudness(six, 48000) == pytest.approx(-3.01 + 10 * np.log10(1.41), abs=0.01)


def test_encoder_stores_the_loudness_of_its_input():
    x = sine(997, -12, 2, 32000)
    data = pacodec.encode(x, 32000, loudness=True)
    i = pacodec.info(io.BytesIO(data))
    assert i.tags == {} and abs(i.loudness - integrated_loudness(x, 32000)) <= 1 / 512
    assert i.gain == pytest.approx(-18 - i.loudness)
    assert pacodec.info(io.BytesIO(pacodec.encode(x, 32000))).loudness is None     # no block
    p = "pac"
    # written through PacFile (a seekable file): the header is rewritten with the loudness
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = f"{d}/a.pac"
        pacodec.write(p, x, 32000, tags={"TITLE": "w"})
        assert pacodec.info(p).loudness == i.loudness and pacodec.info(p).tags == {"TITLE": "w"}


def test_encoding_a_file_to_stdout_gives_the_same_bytes_as_to_a_file(tmp_path, tagged_flac):
    """-o -: the loudness is measured before encoding (stdout cannot be rewritten), so the
    stream equals the file's; FLAC on stdin is spooled to a file, so the same again."""
    pac = tmp_path / "a.pac"
    assert run("encode", tagged_flac, "-o", pac, "--quiet") == 0
    cmd = [sys.executable, "-m", "pacodec", "encode"]
    r = subprocess.run(cmd + [str(tagged_flac), "-o", "-"], capture_output=True, check=True)
    assert r.stdout == pac.read_bytes()
    r = subprocess.run(cmd + ["-", "-o", "-"], input=tagged_flac.read_bytes(),
                       capture_output=True, check=True)
    assert r.stdout == pac.read_bytes()


def test_the_k_weighting_kernel_is_bit_identical_to_scipy_sosfilt():
    """The meter filters with its own kernel (encoding then needs no scipy.signal); it must give
    scipy's samples and state exactly, block after block, compiled and as plain Python."""
    from scipy.signal import sosfilt

    from pacodec.loudness import k_weighting_sos, sos_filter
    rng = np.random.default_rng(5)
    for fs in (8000, 44100, 96000):
        sos = k_weighting_sos(fs)
        x = rng.normal(0, 0.3, 9000)
        x2 = np.stack([x, rng.normal(0, 0.01, 9000)], axis=1)      # two channels side by side
        for kernel in (sos_filter, sos_filter.py_func):
            z, zref = np.zeros((2, 2, 2)), np.zeros((2, 2, 2))
            for block in (x2[:1234], x2[1234:]):
                y = np.empty(block.shape)
                kernel(sos, np.ascontiguousarray(block), z, y)
                for c in range(2):
                    ref, zref[c] = sosfilt(sos, block[:, c], zi=zref[c])
                    assert np.array_equal(y[:, c], ref) and np.array_equal(z[c], zref[c])
