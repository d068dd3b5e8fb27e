"""The framed format: header and config validation, CRC, resync, concealment, truncation."""
import io
import warnings

import numpy as np
import pytest

import pacodec
from pacodec import container as ct
from pacodec import packet as pkt
from pacodec import payload as pld
from pacodec.decoder import noise_seed
from pacodec.config import StreamConfig
from pacodec.errors import FormatError, UnsupportedError

from conftest import snr_db


@pytest.fixture(scope="module")
def stream(piano):
    x, fs = piano
    x = x[: 2 * fs]
    return x, fs, pacodec.encode(x, fs, bitrate=96)


def frame_offsets(data):
    offs, pos = [], ct.HEADER_SIZE
    while pos < len(data):
        fr = ct.parse_frame_at(data, pos)
        offs.append((pos, fr))
        pos += fr.size
    return offs


def test_header_round_trips_and_rejects_bad_magic_and_crc():
    cfg = StreamConfig(44100, 2, 1024, 1024, True)
    h = ct.pack_header(cfg, 12345)
    assert ct.unpack_header(h) == ct.StreamHeader(cfg, 12345)
    assert ct.unpack_header(ct.pack_header(cfg, None)).total_length is None
    with pytest.raises(FormatError, match="magic"):
        ct.unpack_header(b"RIFF" + h[4:])
    bad = bytearray(h)
    bad[6] ^= 0x10
    with pytest.raises(FormatError, match="CRC"):
        ct.unpack_header(bytes(bad))


@pytest.mark.parametrize("field,value", [(1, 0xF0), (2, 0x81), (3, 0x33), (0, 0x09)])
def test_invalid_config_fields_are_format_errors(field, value):
    raw = bytearray(ct.pack_config(StreamConfig(44100, 2, 1024, 1024, True)))
    raw[field] = value
    with pytest.raises(FormatError):
        ct.unpack_config(bytes(raw))


@pytest.mark.parametrize("min_band", [0, 1, 2, 3])
def test_min_band_round_trips_in_the_header_and_config_block(min_band):
    """FORMAT.md §3.1: version 5's min_band is bits 3..2 of the config block's byte 3."""
    cfg = StreamConfig(44100, 2, 1024, 1024, True, min_band=min_band)
    raw = ct.pack_config(cfg)
    assert raw[0] == ct.FORMAT_VERSION and (raw[3] >> 2) & 3 == min_band and raw[3] & 3 == 0
    assert ct.unpack_config(raw) == cfg and ct.unpack_config(raw).long_band_width == 4 << min_band
    h = ct.pack_header(cfg, 777)
    assert ct.unpack_header(h) == ct.StreamHeader(cfg, 777)


@pytest.mark.parametrize("bits", [0x01, 0x02, 0x04, 0x08, 0x0C, 0x0F])
def test_a_version_4_config_with_any_of_the_four_reserved_bits_set_is_invalid(bits):
    """Versions 3 and 4 have no min_band: all four bits are reserved (FORMAT.md §3.1)."""
    for version in (3, 4):
        raw = bytearray(ct.pack_config(StreamConfig(44100, 2, 1024, 1024, True, version=version)))
        assert raw[3] & 0x0F == 0 and ct.unpack_config(bytes(raw)).min_band == 0
        raw[3] |= bits
        with pytest.raises(FormatError, match="reserved"):
            ct.unpack_config(bytes(raw))


@pytest.mark.parametrize("bits", [0x01, 0x02])
def test_a_version_5_config_with_its_two_reserved_bits_set_is_invalid(bits):
    raw = bytearray(ct.pack_config(StreamConfig(44100, 2, 1024, 1024, True, min_band=2)))
    raw[3] |= bits
    with pytest.raises(FormatError, match="reserved"):
        ct.unpack_config(bytes(raw))


def test_min_band_is_validated_and_needs_version_5():
    with pytest.raises(UnsupportedError, match="min_band"):
        StreamConfig(44100, 2, 1024, 1024, True, min_band=4)
    with pytest.raises(UnsupportedError, match="version 5"):
        StreamConfig(44100, 2, 1024, 1024, True, min_band=1, version=4)
    with pytest.raises(UnsupportedError, match="min_band"):
        pacodec.Encoder(44100, 2, min_band=-1)


def test_the_band_rule_widens_only_long_transforms():
    """FORMAT.md §5.1: a long transform's bands are at least 4 << min_band bins wide (but the
    last, at least 4), a short transform's at least 4; every edge a multiple of 4, nbands <= 52;
    the worked example of 44.1 kHz, M = 1024, min_band = 1."""
    from pacodec.config import SUPPORTED_RATES
    from pacodec.payload import layout_for
    from pacodec.tables import band_edges
    assert band_edges(44100, 1024, 8).tolist() == [
        0, 8, 16, 24, 32, 40, 48, 56, 64, 76, 88, 100, 108, 116, 124, 136, 148, 160, 172, 188,
        204, 224, 248, 272, 296, 328, 360, 400, 440, 500, 556, 640, 720, 836, 952, 1024]
    for fs in SUPPORTED_RATES:
        for n in (32, 64, 128, 256, 512, 1024, 2048):
            for w in (4, 8, 16, 32):
                e = band_edges(fs, n, w)
                assert len(e) - 1 <= 52 and all(x % 4 == 0 for x in e)
                assert min(np.diff(e)[:-1], default=w) >= w and e[-1] - e[-2] >= 4
    for mb in range(4):
        lay = layout_for(StreamConfig(48000, 2, 1024, 1024, True, min_band=mb))
        assert lay.edges_long.tolist() == band_edges(48000, 1024, 4 << mb).tolist()
        assert lay.edges_short.tolist() == band_edges(48000, 128, 4).tolist()


@pytest.mark.parametrize("min_band", [0, 1, 2, 3])
def test_a_stream_of_each_min_band_decodes(piano, min_band):
    """The encoder signals the width it is given; the stream decodes (long and short frames)
    with bands of that width.  (That a version-5 stream of min_band 0 decodes exactly as the same
    stream marked version 4 is held by the frozen vectors: the encoder now writes version 6.)"""
    x, fs = piano
    x = x[:fs // 2]
    enc = pacodec.Encoder(fs, x.shape[1], bitrate=64, total_frames=len(x), min_band=min_band)
    body = b"".join(enc.encode(x) + enc.flush())
    data = enc.header() + body
    hdr = ct.unpack_header(data)
    assert hdr.config.version == ct.FORMAT_VERSION and hdr.config.min_band == min_band
    y, _ = pacodec.decode(data, strict=True)
    assert y.shape == x.shape and snr_db(x[2048:-2048], y[2048:-2048]) > 8
    assert pacodec.info(io.BytesIO(data)).min_band_width == 4 << min_band


def test_the_encoder_chooses_min_band_by_mode():
    from pacodec.allocation import long_band_min
    enc = pacodec.Encoder(44100, 2, bitrate=64)
    assert enc.config.min_band == long_band_min(enc.config, enc.settings) == 1
    assert enc.layout.edges_long[1] == 8
    low = pacodec.Encoder(48000, 2, bitrate=64, low_delay=True)
    assert low.config.min_band == long_band_min(low.config, low.settings) == 1


def test_config_is_repeated_in_band_at_least_once_a_second(stream):
    x, fs, data = stream
    offs = frame_offsets(data)
    cfg_frames = [i for i, (_, fr) in enumerate(offs) if fr.ftype == ct.FRAME_CONFIG]
    assert cfg_frames[0] == 0
    assert max(np.diff(cfg_frames)) * 1024 / fs <= 1.0
    assert offs[-1][1].ftype == ct.FRAME_EOS


def test_decoder_joins_a_stream_mid_way_at_a_config_frame(stream):
    x, fs, data = stream
    offs = frame_offsets(data)
    start = offs[10][0]
    dec = pacodec.Decoder()
    y = np.concatenate([dec.feed(data[start:]), dec.finish()])
    assert dec.samplerate == fs and dec.channels == 2
    first = next(i for i, (_, fr) in enumerate(offs) if i >= 10 and fr.ftype == ct.FRAME_CONFIG)
    # output starts where the config frame's output starts and runs to the exact end
    start_sample = first * 1024 - 1024
    assert len(y) == len(x) - start_sample
    # the first frame has no overlap partner; from the second on the audio is aligned
    assert snr_db(x[start_sample + 1024:], y[1024:]) > 15


def test_corrupt_frame_is_concealed_and_decoding_continues(stream):
    x, fs, data = stream
    offs = frame_offsets(data)
    bad = bytearray(data)
    pos = offs[40][0]
    bad[pos + 20] ^= 0xFF
    dec = pacodec.Decoder()
    y = np.concatenate([dec.feed(bytes(bad)), dec.finish()])
    assert y.shape == x.shape
    assert dec.concealed == 1 and dec.crc_errors >= 1
    assert any("CRC" in e for e in dec.errors)
    # no click: the concealed region stays within the signal's range
    assert np.max(np.abs(y)) < 1.5 * np.max(np.abs(x)) + 0.05


def test_strict_mode_makes_a_corrupt_frame_an_error(stream):
    x, fs, data = stream
    pos = frame_offsets(data)[5][0]
    bad = bytearray(data)
    bad[pos + 12] ^= 0x55
    with pytest.raises(FormatError, match="CRC"):
        pacodec.decode(bytes(bad), strict=True)


def test_decoder_resyncs_after_garbage(stream, rng):
    x, fs, data = stream
    offs = frame_offsets(data)
    pos = offs[30][0]
    garbage = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    spliced = data[:pos] + garbage + data[pos:]
    dec = pacodec.Decoder()
    y = np.concatenate([dec.feed(spliced), dec.finish()])
    assert y.shape == x.shape
    assert snr_db(x, y) > 15


def test_truncated_stream_decodes_complete_frames_and_warns_once(stream):
    x, fs, data = stream
    cut = data[: len(data) // 2 + 7]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        y, rate = pacodec.decode(cut)
    assert rate == fs and y.shape[1] == 2
    assert 0.4 * len(x) < len(y) < 0.6 * len(x)
    assert len([m for m in w if "truncated" in str(m.message)]) == 1
    assert snr_db(x[:len(y) - 2048], y[:-2048]) > 15


def test_lost_frames_are_counted_from_sequence_numbers(stream):
    x, fs, data = stream
    offs = frame_offsets(data)
    a, b = offs[20][0], offs[23][0]
    dec = pacodec.Decoder()
    y = np.concatenate([dec.feed(data[:a] + data[b:]), dec.finish()])
    assert y.shape == x.shape and dec.concealed == 3


def test_packets_round_trip_and_reject_garbage():
    frame = b"\xca\x5e" + bytes(10)
    p = pkt.pack_packet(99, 7, 123456, frame)
    assert tuple(pkt.unpack_packet(p)) == (99, 7, 123456, frame, False)
    key = bytes(range(32))
    pk = pkt.pack_packet(99, 7, 123456, frame, key)
    assert pkt.unpack_packet(pk, key).authenticated
    with pytest.raises(FormatError, match="bad MAC"):
        pkt.unpack_packet(pk[:-1] + bytes([pk[-1] ^ 1]), key)
    with pytest.raises(FormatError, match="unauthenticated"):
        pkt.unpack_packet(p, key)
    with pytest.raises(FormatError):
        pkt.unpack_packet(b"\x00" * 20)
    with pytest.raises(FormatError, match="version 1"):
        pkt.unpack_packet(b"\xa7" + bytes(30))


def test_packet_mode_decodes_frames_and_conceals_losses(piano):
    x, fs = piano
    x = x[:fs]
    enc = pacodec.Encoder(fs, 2, bitrate=96)
    frames = enc.encode(x) + enc.flush()[:-1]
    dec = pacodec.Decoder()
    outs = [dec.decode_packet(None if i in (12, 13) else f) for i, f in enumerate(frames)]
    assert all(len(o) == enc.frame_size for o in outs)
    assert dec.concealed == 2
    y = np.concatenate(outs)[enc.delay:enc.delay + len(x)]
    assert snr_db(x[:11 * 1024 - 2048], y[:11 * 1024 - 2048]) > 15


def test_not_a_pac_stream_is_a_clear_error():
    with pytest.raises(FormatError, match="not a pacodec stream"):
        pacodec.decode(b"RIFF....WAVEfmt " + bytes(100))
    with pytest.raises(FormatError):
        pacodec.decode(b"")


# ----------------------------------------------------------------------------- format 2
def _noise_frames(data, cfg):
    """Frame numbers (0-based, audio frames) whose payload has a noise-substituted unit (book 7)."""
    from pacodec.bitio import reader_state
    from pacodec.tables import NOISE_BOOK, load_codebooks
    lay, B, ch = pld.layout_for(cfg), load_codebooks(), cfg.channels
    mu_ = lay.max_units
    out, k = [], 0
    for _, fr in frame_offsets(data):
        if fr.ftype == ct.FRAME_EOS:
            break
        pl = fr.payload[ct.CONFIG_SIZE + 4:] if fr.ftype == ct.FRAME_CONFIG else fr.payload
        buf = np.frombuffer(pl, np.uint8)
        bk = np.zeros((ch, mu_), np.int64)
        err = pld.read_payload(buf, reader_state(len(buf)), ch, cfg.short_blocks, lay.nb_long,
                              lay.nb_short, np.zeros(6, np.int64), np.zeros(ch, np.int64),
                              np.zeros(1, np.int64), np.zeros((1, mu_), np.int64), bk,
                              np.zeros((ch, mu_), np.int64), np.zeros((ch, cfg.hop), np.int64),
                              lay.ub_long, lay.ub_short, B.ctx, B.count, B.first, B.offset, B.symbols,
                              B.lut)
        assert err == 0
        if (bk == NOISE_BOOK).any():
            out.append(k)
        k += 1
    return out


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """3 s of a tone over noise at 64 kbit/s: the encoder substitutes noise in many frames."""
    fs = 44100
    r = np.random.default_rng(5)
    t = np.arange(3 * fs) / fs
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * r.standard_normal(len(t)),
                  0.2 * r.standard_normal(len(t))], 1)
    p = tmp_path_factory.mktemp("noisy") / "n.pac"
    pacodec.write(p, x, fs, bitrate=64)
    whole, _ = pacodec.read(p)
    return p, fs, whole


def test_seeking_anywhere_equals_the_full_decode_exactly_even_after_noise_units(noisy):
    """Format 2 reseeds the noise generator from the frame index (§8.4), so seeking gives the
    samples of a full decode bit for bit (format 1 differed by up to 7e-5 after a noise unit)."""
    p, fs, whole = noisy
    cfg = pacodec.PacFile(p).config
    nf = _noise_frames(p.read_bytes(), cfg)
    assert len(nf) > 20
    # a target inside a noise frame whose seek starts decoding at a config frame after frame 0
    k = next(k for k in nf if k * cfg.hop - cfg.delay > fs * 1.2)
    positions = [0, 1, 1000, int(1.37 * fs), k * cfg.hop - cfg.delay + 17, len(whole) - 500]
    with pacodec.PacFile(p) as f:
        for pos in positions:
            assert f.seek(pos) == pos
            got = f.read(3000)
            assert np.array_equal(got, whole[pos:pos + 3000]), pos
    for start in (0.5, 1.37, 2.2):
        got, _ = pacodec.read(p, start=start)
        assert np.array_equal(got, whole[int(round(start * fs)):]), start


def test_a_stream_joined_at_a_config_frame_equals_the_full_decode_after_its_first_frame(noisy):
    p, fs, whole = noisy
    data = p.read_bytes()
    offs = frame_offsets(data)
    i = next(i for i, (_, fr) in enumerate(offs) if i > 0 and fr.ftype == ct.FRAME_CONFIG)
    dec = pacodec.Decoder()
    y = np.concatenate([dec.feed(data[offs[i][0]:]), dec.finish()])
    a = i * 1024 - dec.delay            # input sample of the joined decode's first output
    assert np.array_equal(y[1024:], whole[a + 1024:])


def test_noise_seed_is_a_function_of_the_frame_index_only():
    assert noise_seed(0) == 0x6A09E667
    assert noise_seed(1) == (0x9E3779B9 + 0x6A09E667) & 0xFFFFFFFF
    assert noise_seed(2 ** 32 + 5) == noise_seed(5)
    assert len({noise_seed(i) for i in range(10000)}) == 10000
    assert all(noise_seed(i) for i in range(10000))


def _with_version(data, version):
    """``data`` with every config block's version byte set (header and config frames re-CRCed)."""
    out = bytearray(data)
    out[4] = version
    out[ct.HEADER_SIZE - 2:ct.HEADER_SIZE] = ct.crc16(bytes(out[:ct.HEADER_SIZE - 2])).to_bytes(2, "big")
    for pos, fr in frame_offsets(data):
        if fr.ftype == ct.FRAME_CONFIG:
            out[pos + ct.FRAME_HEADER_SIZE] = version
            end = pos + fr.size - ct.CRC_SIZE
            out[end:end + 2] = ct.crc16(bytes(out[pos + 2:end])).to_bytes(2, "big")
    return bytes(out)


class _Unseekable(io.BytesIO):
    """A pipe's view of bytes: no seeking."""

    def seekable(self):
        return False


@pytest.mark.parametrize("version", [1, 2, 255])
def test_a_stream_of_an_unknown_version_is_refused_naming_the_versions_read(stream, tmp_path,
                                                                            version):
    from pacodec.errors import VersionError
    x, fs, data = stream
    old = _with_version(data, version)
    msg = f"unsupported pacodec format version {version} \\(this decoder reads version 3, 4, 5, 6, 7, 8\\)"
    with pytest.raises(VersionError, match=msg):
        pacodec.decode(old)
    # headerless (a live stream): refused at the first config frame, not skipped as damage
    with pytest.raises(VersionError, match=msg):
        pacodec.decode(old[ct.HEADER_SIZE:])
    p = tmp_path / "old.pac"
    p.write_bytes(old)
    with pytest.raises(VersionError, match=msg):
        pacodec.read(p)
    with pytest.raises(VersionError, match=msg):
        pacodec.info(p)
    p.write_bytes(old[:ct.HEADER_SIZE] + data[ct.HEADER_SIZE:])   # only the header's version
    with pytest.raises(VersionError, match=msg):
        pacodec.info(p)
    with pytest.raises(VersionError, match=msg):
        pacodec.read(p)
    p.write_bytes(old[ct.HEADER_SIZE:])                  # headerless file, and through a pipe
    with pytest.raises(VersionError, match=msg):
        pacodec.read(p)
    with pytest.raises(VersionError, match=msg):
        pacodec.PacFile(_Unseekable(old[ct.HEADER_SIZE:]))
    # packet mode reports it without stopping the receiver
    dec = pacodec.Decoder()
    first = old[ct.HEADER_SIZE:ct.HEADER_SIZE + frame_offsets(data)[0][1].size]
    assert dec.decode_packet(first).size == 0 and "format version" in dec.errors[-1]


def test_cli_refuses_an_unknown_version_with_one_line(stream, tmp_path):
    import subprocess
    import sys
    x, fs, data = stream
    p = tmp_path / "v2.pac"
    p.write_bytes(_with_version(data, 2))
    r = subprocess.run([sys.executable, "-m", "pacodec", "decode", str(p), "-o",
                        str(tmp_path / "o.wav")],
                       capture_output=True, text=True)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "format version 2" in lines[0] and "version 3" in lines[0]
    assert not (tmp_path / "o.wav").exists()


def test_a_config_frame_with_an_invalid_payload_still_anchors_the_frame_index(noisy):
    """Joined at a config frame whose audio payload is invalid (CRC valid): its config and frame
    index are adopted, so the next frames keep their place in time and their noise (§4.3, §12)."""
    p, fs, whole = noisy
    data = p.read_bytes()
    offs = frame_offsets(data)
    i = next(i for i, (_, fr) in enumerate(offs) if i > 0 and fr.ftype == ct.FRAME_CONFIG)
    pos, fr = offs[i]
    tail = bytearray(data[pos:])
    s = ct.FRAME_HEADER_SIZE + ct.CONFIG_SIZE + 4          # first payload byte of the audio
    nbits = 10 if tail[s] & 0x80 else 3                      # is_short: 7 grouping bits follow
    v = int.from_bytes(tail[s:s + 4], "big") | (63 << (32 - nbits - 6))   # max_band[0] = 63
    tail[s:s + 4] = v.to_bytes(4, "big")
    end = fr.size - ct.CRC_SIZE
    tail[end:end + 2] = ct.crc16(bytes(tail[2:end])).to_bytes(2, "big")
    dec = pacodec.Decoder()
    y = np.concatenate([dec.feed(bytes(tail)), dec.finish()])
    a = (i + 1) * 1024 - dec.delay                           # frame i + 1 is the first decoded
    assert len(y) == len(whole) - a
    assert np.array_equal(y[1024:], whole[a + 1024:])
