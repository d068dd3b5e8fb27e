"""The framed format: header and config validation, CRC, resync, concealment, truncation."""
import warnings

import numpy as np
import pytest

import pacodec
from pacodec import bitstream as bs
from pacodec.config import StreamConfig
from pacodec.errors import FormatError

from conftest import snr_db


@pytest.fixture(scope="module")
def stream(piano):
    x, fs = piano
    x = x[: 2 * fs]
    return x, fs, pacodec.encode(x, fs, bitrate=96)


def frame_offsets(data):
    offs, pos = [], bs.HEADER_SIZE
    while pos < len(data):
        fr = bs.parse_frame_at(data, pos)
        offs.append((pos, fr))
        pos += fr.size
    return offs


def test_header_round_trips_and_rejects_bad_magic_and_crc():
    cfg = StreamConfig(44100, 2, 1024, 1024, True)
    h = bs.pack_header(cfg, 12345)
    assert bs.unpack_header(h) == bs.StreamHeader(cfg, 12345)
    assert bs.unpack_header(bs.pack_header(cfg, None)).total_length is None
    with pytest.raises(FormatError, match="magic"):
        bs.unpack_header(b"RIFF" + h[4:])
    bad = bytearray(h)
    bad[6] ^= 0x10
    with pytest.raises(FormatError, match="CRC"):
        bs.unpack_header(bytes(bad))


@pytest.mark.parametrize("field,value", [(1, 0xF0), (2, 0x81), (3, 0x33), (0, 0x07)])
def test_invalid_config_fields_are_format_errors(field, value):
    raw = bytearray(bs.pack_config(StreamConfig(44100, 2, 1024, 1024, True)))
    raw[field] = value
    with pytest.raises(FormatError):
        bs.unpack_config(bytes(raw))


def test_config_is_repeated_in_band_at_least_once_a_second(stream):
    x, fs, data = stream
    offs = frame_offsets(data)
    cfg_frames = [i for i, (_, fr) in enumerate(offs) if fr.ftype == bs.FRAME_CONFIG]
    assert cfg_frames[0] == 0
    assert max(np.diff(cfg_frames)) * 1024 / fs <= 1.0
    assert offs[-1][1].ftype == bs.FRAME_EOS


def test_decoder_joins_a_stream_mid_way_at_a_config_frame(stream):
    x, fs, data = stream
    offs = frame_offsets(data)
    start = offs[10][0]
    dec = pacodec.Decoder()
    y = np.concatenate([dec.feed(data[start:]), dec.finish()])
    assert dec.samplerate == fs and dec.channels == 2
    first = next(i for i, (_, fr) in enumerate(offs) if i >= 10 and fr.ftype == bs.FRAME_CONFIG)
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
    p = bs.pack_packet(7, 123456, b"\xca\x5e" + bytes(10))
    assert bs.unpack_packet(p) == (7, 123456, b"\xca\x5e" + bytes(10))
    with pytest.raises(FormatError):
        bs.unpack_packet(b"\x00" * 20)
    with pytest.raises(FormatError):
        bs.unpack_packet(b"\xa7\x00")


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
