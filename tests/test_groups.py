"""Frame groups (format version 8, FORMAT.md §4 type 3): the encoder's grouping and its rate
accounting, the readers' expansion of a group into its members, damaged and invalid groups, type
3 in earlier versions, and the streaming paths that never group."""
import io
import warnings

import numpy as np
import pytest

import pacodec
from pacodec import container as ct
from pacodec import packet as pkt
from pacodec.config import default_group
from pacodec.decoder import Decoder
from pacodec.errors import FormatError

FS = 48000


@pytest.fixture(scope="module")
def music(piano):
    x, fs = piano
    assert fs == 44100 or fs == 48000
    return x[: 3 * fs], fs


def frames_of(data):
    """``(offset, Frame)`` of every frame of an intact stream."""
    out, pos = [], ct.frames_start(data)
    while pos < len(data):
        fr = ct.parse_frame_at(data, pos)
        out.append((pos, fr))
        pos += fr.size
    return out


def encode(x, fs, group, **kw):
    enc = pacodec.Encoder(fs, x.shape[1], low_delay=True, total_frames=len(x), group=group, **kw)
    frames = []
    for i in range(0, len(x), 3000):          # blocks of another size than the frames
        frames += enc.encode(x[i:i + 3000])
    frames += enc.flush()
    return enc.header() + b"".join(frames), frames


def member_payloads(data):
    """Every audio frame's payload in order (config frames' without their prefix), groups
    expanded, with their sequence numbers."""
    out = []
    for _, fr in frames_of(data):
        if fr.ftype == ct.FRAME_GROUP:
            out += [((fr.seq + k) & 0xFF, p) for k, p in enumerate(ct.group_members(fr.payload))]
        elif fr.ftype == ct.FRAME_CONFIG:
            out.append((fr.seq, fr.payload[ct.CONFIG_PREFIX:]))
        elif fr.ftype == ct.FRAME_AUDIO:
            out.append((fr.seq, fr.payload))
    return out


def test_default_group_rule():
    assert default_group(False, 1024) == 1 and default_group(False, 256) == 1
    assert default_group(True, 256) == 4               # 48 kHz low delay
    assert default_group(True, 128) == 8 and default_group(True, 64) == 8
    assert default_group(True, 512) == 2
    assert pacodec.Encoder(FS, 2).group == 1
    assert pacodec.Encoder(FS, 2, low_delay=True).group == 4
    with pytest.raises(pacodec.PacodecError):
        pacodec.Encoder(FS, 2, group=17)
    with pytest.raises(pacodec.PacodecError):
        pacodec.Encoder(FS, 2, group=0)


def test_lacing_and_group_members_round_trip():
    for n in (0, 1, 254, 255, 256, 509, 510, 1000):
        assert len(ct.lacing(n)) == ct.lacing_size(n) == n // 255 + 1
    payloads = [bytes(range(7)), b"", bytes(300), b"\x01" * 255, bytes(510), b"xyz"]
    fr = ct.parse_frame_at(ct.pack_group_frame(9, payloads), 0)
    assert fr.ftype == ct.FRAME_GROUP and fr.seq == 9
    assert ct.group_members(fr.payload) == payloads
    assert len(fr.payload) == 1 + sum(ct.lacing_size(len(p)) for p in payloads[:-1]) \
        + sum(map(len, payloads))
    assert ct.group_overhead(map(len, payloads)) == fr.size - sum(map(len, payloads))
    # one member: a plain audio frame
    assert ct.frame_type(ct.pack_group_frame(3, [b"ab"])) == ct.FRAME_AUDIO


@pytest.mark.parametrize("payload,why", [
    (b"", "empty"), (b"\x01ab", "count"), (b"\x11" + bytes(40), "count"), (b"\x00", "count"),
    (b"\x02", "overrun"), (b"\x02\xff", "overrun"), (b"\x03\x05abcde", "overrun"),
    (b"\x02\x09abc", "overrun")])
def test_invalid_group_payloads_are_refused(payload, why):
    with pytest.raises(FormatError):
        ct.group_members(payload)


def test_grouped_and_ungrouped_vbr_decode_identically_and_grouping_saves_bytes(music):
    """VBR decisions do not depend on the framing: group 1 and 4 code the same payloads, and
    the grouped file is smaller by the framing it saves."""
    x, fs = music
    one, _ = encode(x, fs, 1)
    four, frames4 = encode(x, fs, 4)
    assert member_payloads(one) == member_payloads(four)
    types = [ct.frame_type(f) for f in frames4]
    assert types.count(ct.FRAME_GROUP) > 0 and types[0] == ct.FRAME_CONFIG
    y1, _ = pacodec.decode(one)
    y4, _ = pacodec.decode(four)
    assert y1.shape == y4.shape == x.shape and np.array_equal(y1, y4)
    # each group of 4 saves 3 x 7 bytes and costs 1 count + 3 lacing bytes: about 17/4 bytes a
    # frame (a little less at config frames and the end)
    nframes = len(member_payloads(one))
    saved = len(one) - len(four)
    assert 3.5 * nframes < saved < 17 / 4 * nframes, (saved, nframes)
    info, info1 = pacodec.info(io.BytesIO(four)), pacodec.info(io.BytesIO(one))
    assert info.frames == info1.frames and info.codec_frames == info1.codec_frames == nframes
    # info counts the groups (pacodec info: "N frame groups of up to 4")
    assert (info.groups, info.max_group) == (types.count(ct.FRAME_GROUP), 4)
    assert (info1.groups, info1.max_group) == (0, 0)


@pytest.mark.parametrize("group", [2, 3, 5, 8, 16])
def test_every_group_size_round_trips_with_a_partial_last_group(music, group):
    x, fs = music
    x = x[: fs // 2 + 777]
    ref, _ = encode(x, fs, 1)
    data, frames = encode(x, fs, group)
    counts = [fr.payload[0] for _, fr in frames_of(data) if fr.ftype == ct.FRAME_GROUP]
    assert max(counts) == group and min(counts) >= 2
    y, _ = pacodec.decode(data)
    assert np.array_equal(y, pacodec.decode(ref)[0])
    # a group is never written with one member: a last lone frame is a plain audio frame
    assert all(ct.frame_type(f) != ct.FRAME_GROUP or f[5] >= 2 for f in frames)


def test_groups_close_before_config_frames(music):
    x, fs = music
    data, _ = encode(x, fs, 16)
    seqs = []
    for _, fr in frames_of(data):
        if fr.ftype == ct.FRAME_CONFIG:
            seqs.append(ct.config_frame_index(fr))
        elif fr.ftype == ct.FRAME_GROUP:
            # no group runs across a config frame (one every fs // hop frames)
            first, count = fr.seq, fr.payload[0]
            interval = fs // 256
            idx = seqs[-1] + ((first - seqs[-1]) & 0xFF)
            assert idx // interval == (idx + count - 1) // interval


@pytest.mark.parametrize("kbps", [48, 64, 96])
def test_cbr_keeps_its_rate_with_groups(drums, kbps):
    x, fs = drums
    x = x[: 4 * fs]
    data = pacodec.encode(x, fs, bitrate=kbps, low_delay=True)
    assert any(fr.ftype == ct.FRAME_GROUP for _, fr in frames_of(data))
    actual = 8 * len(data) / (len(x) / fs) / 1000
    assert abs(actual / kbps - 1) < 0.05, actual
    # and exactly like the ungrouped encoder (the framing is charged as written)
    one, _ = encode(x, fs, 1, bitrate=kbps)
    assert abs(len(data) / len(one) - 1) < 0.01


def test_damaged_group_is_concealed_and_the_rest_decodes(music):
    x, fs = music
    data, _ = encode(x, fs, 4)
    y, _ = pacodec.decode(data)
    groups = [(off, fr) for off, fr in frames_of(data) if fr.ftype == ct.FRAME_GROUP]
    off, fr = groups[len(groups) // 2]
    bad = bytearray(data)
    bad[off + 9] ^= 0x55                        # a member's byte: CRC mismatch
    dec = Decoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = np.concatenate([dec.feed(bytes(bad)), dec.finish()])
    assert z.shape == y.shape
    assert dec.crc_errors >= 1 and dec.concealed == 4
    # outside the concealed frames and the next frame's overlap the output is the same
    hop = 256
    pos = None
    for k, (_, f) in enumerate(frames_of(data)):
        pass
    diff = np.nonzero(np.any(z != y, axis=1))[0]
    assert len(diff) and diff[-1] - diff[0] < 6 * hop


def _replace_frame(data, off, fr, new):
    return data[:off] + new + data[off + fr.size:]


@pytest.mark.parametrize("mutate", ["count1", "count17", "overrun", "member"])
def test_crc_valid_invalid_group_is_damaged_as_a_whole(music, mutate):
    x, fs = music
    data, _ = encode(x, fs, 4)
    y, _ = pacodec.decode(data)
    groups = [(off, fr) for off, fr in frames_of(data) if fr.ftype == ct.FRAME_GROUP]
    off, fr = groups[5]
    p = bytearray(fr.payload)
    if mutate == "count1":
        p[0] = 1
    elif mutate == "count17":
        p[0] = 17
    elif mutate == "overrun":
        p[1:4] = b"\xff\xff\xff"
    else:                                       # a member's payload cut short: it is invalid
        members = ct.group_members(bytes(p))
        members[2] = members[2][:1]
        p = bytearray(ct.pack_group_frame(fr.seq, members)[5:-2])
    bad = _replace_frame(data, off, fr, ct.pack_frame(ct.FRAME_GROUP, fr.seq, bytes(p)))
    dec = Decoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = np.concatenate([dec.feed(bad), dec.finish()])
    assert z.shape == y.shape
    assert dec.concealed == 4 and dec.crc_errors >= 1
    with pytest.raises(FormatError):
        pacodec.decode(bad, strict=True)
    info = pacodec.info(io.BytesIO(bad))
    if mutate != "member":               # info does not parse payloads
        assert any("missing" in e or "type" in e or "group" in e for e in info.problems)


def test_type3_in_a_version7_stream_is_still_damaged():
    """A CRC-valid type-3 frame in a v7 stream (a conformance vector) is damaged exactly as
    before version 8: replacing an audio frame by a well-formed group loses that frame."""
    import pathlib
    path = pathlib.Path(__file__).parent.parent / "bitstreams/vectors/v7/stereo_48k_mulaw_lowdelay.pac"
    data = path.read_bytes()
    frs = frames_of(data)
    off, fr = next((o, f) for o, f in frs[3:] if f.ftype == ct.FRAME_AUDIO)
    group = ct.pack_group_frame(fr.seq, [fr.payload, fr.payload])
    as_group = _replace_frame(data, off, fr, group)
    # the same frame with its CRC broken: damaged the way version 7 says
    broken = bytearray(data)
    broken[off + fr.size - 1] ^= 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, _ = pacodec.decode(as_group)
        b, _ = pacodec.decode(bytes(broken))
    assert np.array_equal(a, b)
    with pytest.raises(FormatError):
        pacodec.decode(as_group, strict=True)


def test_headerless_grouped_stream_joins_at_the_config_frame(music):
    x, fs = music
    data, _ = encode(x, fs, 4)
    frs = frames_of(data)
    cfgs = [off for off, fr in frs if fr.ftype == ct.FRAME_CONFIG]
    # cut in the middle of the stream: groups come first, then a config frame
    start = next(off for off, fr in frs if off > cfgs[0] and fr.ftype == ct.FRAME_GROUP)
    dec = Decoder(strict=True)            # groups before joining are no damage
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = np.concatenate([dec.feed(data[start:]), dec.finish()])
    assert dec.config is not None and len(z) and dec.crc_errors == 0


def test_pacfile_seeks_and_counts_in_a_grouped_file(music, tmp_path):
    x, fs = music
    data, _ = encode(x, fs, 4)
    path = tmp_path / "g.pac"
    path.write_bytes(data)
    full, _ = pacodec.decode(data)
    for t in (0.3, 1.37, 2.5):
        part, _ = pacodec.read(path, start=t, stop=t + 0.2)
        i = int(round(t * fs))
        assert np.array_equal(part, full[i:i + len(part)]) and len(part) == int(round(0.2 * fs))
    info = pacodec.info(path)
    assert info.frames == len(x) and info.groups > 0 and info.max_group == 4
    assert not info.problems


def test_streaming_paths_never_group():
    from pacodec.stream.live import default_encoder_factory
    enc = default_encoder_factory(FS, 2, bitrate=64, low_delay=True)()
    assert enc.group == 1
    frames = enc.encode(np.zeros((4096, 2), dtype=np.float32))
    assert frames and all(ct.frame_type(f) != ct.FRAME_GROUP for f in frames)
    # each frame leaves as soon as it is coded: 16 frames of input give about 16 frames out
    assert len(frames) >= 12


def test_packets_refuse_groups():
    group = ct.pack_group_frame(5, [b"\x00\x01", b"\x00\x02"])
    with pytest.raises(FormatError, match="group"):
        pkt.unpack_packet(pkt.pack_packet(1, 0, 0, group))
    plain = ct.pack_audio_frame(7, b"\x00\x01")
    with pytest.raises(FormatError, match="group"):
        pkt.unpack_packet(pkt.pack_packet(1, 0, 0, [plain, group]))
    assert pkt.unpack_packet(pkt.pack_packet(1, 0, 0, plain)).frame == plain


def test_decode_packet_expands_a_group(music):
    x, fs = music
    _, frames = encode(x[:fs // 4], fs, 4)
    dec = Decoder()
    outs = [dec.decode_packet(f) for f in frames]
    n = sum(f[5] if ct.frame_type(f) == ct.FRAME_GROUP else 1 for f in frames
            if ct.frame_type(f) != ct.FRAME_EOS)
    assert sum(len(o) for o in outs) == n * 256


def test_feeding_a_grouped_stream_in_small_pieces_decodes_the_same(music):
    """The decoder's kernel path (decode_run: many frames and groups per call) and its per-frame
    path (a group split across feed() calls) give the same samples."""
    x, fs = music
    data, _ = encode(x[: fs], fs, 4)
    whole, _ = pacodec.decode(data)
    dec = Decoder()
    parts = [dec.feed(data[i:i + 97]) for i in range(0, len(data), 97)]
    parts.append(dec.finish())
    assert np.array_equal(np.concatenate(parts), whole)


def test_groups_close_at_the_payload_limit():
    """Large frames (96 kHz, 2048-sample hop, 2 Mbit/s: about 5.3 kB each) fill a group's
    16383-byte payload after 3 members: the encoder starts the next group instead."""
    rng = np.random.default_rng(5)
    x = 0.3 * rng.standard_normal((96000, 2))
    enc = pacodec.Encoder(96000, 2, bitrate=2000, group=16, total_frames=len(x))
    frames = enc.encode(x) + enc.flush()
    data = enc.header() + b"".join(frames)
    counts = [fr.payload[0] for _, fr in frames_of(data) if fr.ftype == ct.FRAME_GROUP]
    assert counts and max(counts) < 16
    assert all(fr.size <= ct.MAX_FRAME_SIZE for _, fr in frames_of(data))
    y, _ = pacodec.decode(data)
    assert y.shape == x.shape
    actual = 8 * len(data) / 1.0 / 1000
    assert abs(actual / 2000 - 1) < 0.05, actual


def test_streaming_pipelines_ungroup_any_encoder_they_are_given():
    """A custom encoder factory (``Sender(encoder_factory=...)``) may make a grouping encoder;
    the pipelines set group 1 before the first frame, and the size cannot change after it."""
    from pacodec.stream._audio import ungrouped
    enc = pacodec.Encoder(FS, 2, bitrate=64, low_delay=True)
    assert enc.group == 4 and ungrouped(enc) is enc and enc.group == 1
    frames = enc.encode(np.zeros((2048, 2)))
    assert frames and all(ct.frame_type(f) != ct.FRAME_GROUP for f in frames)
    with pytest.raises(pacodec.PacodecError):
        enc.group = 4


def test_the_session_filter_drops_a_packet_with_a_group_and_counts_it():
    """FORMAT.md §9: packets carry no groups; the receiver's session filter drops one as
    malformed (a counter) and goes on with the others."""
    from pacodec.stream.session import SessionFilter
    f = SessionFilter(probation=1)
    group = ct.pack_group_frame(0, [b"\x00\x01", b"\x00\x02"])
    acc = f.accept(pkt.pack_packet(7, 0, 0, group), ("127.0.0.1", 1), 0.0)
    assert not acc.packets and f.malformed == 1
    acc = f.accept(pkt.pack_packet(7, 1, 0, ct.pack_audio_frame(1, b"\x00\x01")),
                   ("127.0.0.1", 1), 0.0)
    assert f.malformed == 1 and f.accepted >= 1
