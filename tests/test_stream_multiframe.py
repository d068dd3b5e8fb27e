"""Several frames per UDP packet (FORMAT.md §9, flag bit 1; `pacodec send --frames-per-packet`):
the packet layout, the session filter's handling of such packets, and a sender -> receiver run
whose decoded audio is checked against the input."""
import numpy as np
import pytest

from pacodec.errors import FormatError
from pacodec.stream import packet as pk
from pacodec.stream.session import SessionFilter


def frame(n, tag=0):
    """A frame-shaped byte string (§4 layout: sync, type 0 + length n, seq, payload, CRC)."""
    return b"\xca\x5e" + bytes([n >> 8, n & 0xFF, tag & 0xFF]) + bytes([tag & 0xFF]) * n + b"\0\0"


def test_one_frame_keeps_the_single_frame_layout():
    f = frame(9)
    assert pk.pack(5, 7, 100, f) == pk.pack(5, 7, 100, [f])
    assert pk.pack(5, 7, 100, [f])[1] == 0


@pytest.mark.parametrize("key", [None, bytes(range(32))])
def test_several_frames_round_trip_in_order(key):
    frames = [frame(3, 1), frame(40, 2), frame(0, 3)]
    d = pk.pack(5, 7, 100, frames, key)
    assert d[1] & pk.FLAG_FRAMES
    p = pk.unpack(d, key)
    assert (p.session, p.seq, p.timestamp) == (5, 7, 100) and p.frames == frames


def test_packing_more_frames_than_allowed_is_refused():
    with pytest.raises(ValueError, match="1 to 8"):
        pk.pack(5, 7, 100, [frame(1)] * (pk.MAX_FRAMES + 1))
    with pytest.raises(ValueError):
        pk.pack(5, 7, 100, [])


def _flagged(field):
    head = pk.HEADER.pack(pk.PACKET_TAG, pk.FLAG_FRAMES, 5, 7, 100)
    return head + field


@pytest.mark.parametrize("field,why", [
    (frame(4), "frame count"),                                    # the flag with one frame
    (b"".join(frame(1, i) for i in range(9)), "frame count"),      # more than 8
    (frame(4) + frame(6)[:-1], "bad frame"),                       # the last one cut short
    (frame(4) + b"\x00" * 9, "bad frame"),                         # no sync word
])
def test_a_badly_filled_multi_frame_packet_is_malformed(field, why):
    with pytest.raises(FormatError, match=why):
        pk.unpack(_flagged(field))


def feed(f, session, first_seqs, per, addr=("127.0.0.1", 1)):
    got = []
    for s in first_seqs:
        acc = f.accept(pk.pack(session, s, 0, [frame(2, s + i) for i in range(per)]), addr, 0.0)
        got += [(e % 2 ** 32, fr[5]) for e, _, fr in acc.packets]
    return got


@pytest.mark.parametrize("per", [2, 4, 8])
def test_session_filter_hands_on_every_frame_with_its_own_number(per):
    f = SessionFilter()
    starts = list(range(0, 12 * per, per))
    got = feed(f, 9, starts[:3], per)                         # probation, then all handed on
    got += feed(f, 9, starts[3:5], per)
    got += feed(f, 9, starts[6:], per)                        # one packet lost: a gap
    want = [s + i for s in starts[:5] + starts[6:] for i in range(per)]
    assert [e for e, _ in got] == want
    assert [t for _, t in got] == [w & 0xFF for w in want]    # each frame is its own
    assert f.sessions == 1 and f.accepted == len(want)
    assert feed(f, 9, [starts[4]], per) == [] and f.replayed == 1     # a replay: nothing new
    # a packet overlapping frames already seen hands on only the new ones
    assert [e for e, _ in feed(f, 9, [starts[-1] + 1], per)] == [starts[-1] + per]


def test_a_sequence_jump_of_multi_frame_packets_is_confirmed_and_numbered_on():
    f = SessionFilter()
    feed(f, 9, [0, 4, 8], 4)
    assert feed(f, 9, [5000, 5004], 4) == []                  # unconfirmed jump
    got = feed(f, 9, [5008], 4)                                # the third continues it
    assert [e for e, _ in got] == list(range(5000, 5012)) and f.restarts == 1


def test_sender_with_several_frames_per_packet_reaches_the_receiver_intact(tmp_path):
    import soundfile as sf

    from pacodec.stream import Receiver, Sender
    from test_stream_pipeline import tone, wait_until
    x = tone(1.5)
    with Receiver(("127.0.0.1", 0), output=tmp_path / "out.wav", idle_timeout=1.0) as rx:
        with Sender(rx.address, source=x, samplerate=48000, bitrate=128, low_delay=True,
                    frames_per_packet=4) as tx:
            assert wait_until(lambda: tx.finished, timeout=60)
        assert tx.error is None
        assert wait_until(lambda: rx.done, timeout=30)
    s, t = rx.stats(), tx.stats()
    assert t["frames_per_packet"] == 4 and t["datagrams"] == -(-t["packets"] // 4)
    assert s["error"] is None and s["streams_ended"] == 1
    assert s["packets"] == t["packets"]                       # every frame arrived (loopback)
    # (on a loaded machine a frame may still arrive after its playout deadline: concealed)
    assert s["concealed"] == s["lost"] + s["underruns"] + s["crc_errors"]
    y, sr = sf.read(str(tmp_path / "out.wav"), dtype="float32", always_2d=True)
    # the receiver may time-compress a few frames while its buffer settles ("skipped") and, on a
    # loaded machine, conceal a late one, so the output is checked block by block: the tone's
    # level and both its partials, in all blocks but at most one per concealed frame
    assert sr == 48000 and len(y) > 1.2 * 48000
    start = int(np.argmax(np.abs(y[:, 0]) > 0.1))
    level = float(np.sqrt(np.mean(x[:, 0] ** 2)))
    freqs = np.fft.rfftfreq(4800, 1 / 48000)
    bad = total = 0
    for b in range(start + 2400, start + int(1.1 * 48000) - 4800, 4800):
        blk = y[b:b + 4800, 0]
        spec = np.abs(np.fft.rfft(blk * np.hanning(4800)))
        total += 1
        bad += not (abs(float(np.sqrt(np.mean(blk ** 2))) / level - 1) < 0.2
                    and abs(freqs[np.argmax(spec)] - 440) <= 10
                    and spec[np.argmin(np.abs(freqs - 3000))] > 0.1 * spec.max())
    assert total >= 8 and bad <= min(s["concealed"], total // 4)


def test_frames_per_packet_is_checked():
    from pacodec.stream.settings import SenderSettings
    for bad in (0, 9, 1.5):
        with pytest.raises(ValueError, match="frames_per_packet"):
            SenderSettings(frames_per_packet=bad)
    assert SenderSettings(frames_per_packet=8).frames_per_packet == 8


def test_send_takes_frames_per_packet_and_refuses_a_bad_count(capsys):
    import argparse

    from pacodec.stream.cli import add_subparsers, main
    parser = argparse.ArgumentParser()
    add_subparsers(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["send", "--to", "h:1"]).frames_per_packet == 1
    assert parser.parse_args(["send", "--to", "h:1", "--frames-per-packet", "4"]).frames_per_packet == 4
    assert main(["send", "--to", "127.0.0.1:9", "--file", "x.wav", "--frames-per-packet", "9",
                 "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pacodec send: error:") and "frames_per_packet" in err[-1]


def test_a_multi_frame_field_is_split_once(monkeypatch):
    """unpack checks the frame count by splitting the field; the session filter's Packet.frames
    reuses that split instead of splitting the field again."""
    from pacodec import packet as format_packet
    frames = [frame(3, 1), frame(5, 2)]
    d = pk.pack(5, 7, 100, frames)
    calls = []
    split = format_packet.split_frames
    monkeypatch.setattr(format_packet, "split_frames", lambda f: calls.append(1) or split(f))
    p = pk.unpack(d)
    assert tuple(p) == (5, 7, 100, b"".join(frames), False)
    assert p.frames == frames and p.frames == frames and len(calls) == 1
    acc = SessionFilter(probation=1).accept(d, ("127.0.0.1", 1), 0.0)
    assert [fr for _, _, fr in acc.packets] == frames and len(calls) == 2
