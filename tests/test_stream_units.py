"""Unit tests of the streaming building blocks that need neither the codec nor a sound server:
ring buffer, jitter buffer, UDP transport and the lossy relay."""
import random
import struct
import time

import numpy as np
import pytest

from pacodec.stream.jitter import JitterBuffer
from pacodec.stream.relay import LossyRelay
from pacodec.stream.ringbuffer import RingBuffer
from pacodec.stream.transport import UdpTransport, parse_hostport


# ---------------------------------------------------------------------------- ring buffer
def test_ring_buffer_returns_what_was_written_across_the_wrap():
    ring = RingBuffer(10, 2)
    out = np.empty((10, 2), np.float32)
    x = np.arange(14, dtype=np.float32).reshape(7, 2)
    assert ring.write(x) == 7
    assert ring.read_into(out, 5) == 5
    assert ring.write(x + 100) == 7           # wraps
    assert ring.available == 9
    assert ring.read_into(out) == 9 and np.all(out[9] == 0)
    np.testing.assert_array_equal(out[:2], x[5:])
    np.testing.assert_array_equal(out[2:9], x + 100)


def test_ring_buffer_counts_overflow_and_zero_fills_underflow():
    ring = RingBuffer(4, 1)
    assert ring.write(np.ones(6, np.float32)) == 4
    assert ring.overflows == 2
    out = np.full((6, 1), 7.0, np.float32)
    assert ring.read_into(out) == 4
    np.testing.assert_array_equal(out[:, 0], [1, 1, 1, 1, 0, 0])
    assert ring.read_into(out) == 0 and not out.any()


def test_ring_buffer_skip_discards_unread_samples():
    ring = RingBuffer(8, 1)
    ring.write(np.arange(6, dtype=np.float32))
    assert ring.skip(4) == 4 and ring.skip(9) == 2 and ring.available == 0


def test_ring_buffer_rejects_bad_sizes():
    with pytest.raises(ValueError):
        RingBuffer(0, 1)


# ---------------------------------------------------------------------------- jitter buffer
class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def make_jb(**kw):
    clock = FakeClock()
    kw.setdefault("margin", 0.0)
    jb = JitterBuffer(clock_rate=1000, frame_samples=10, clock=clock, **kw)   # 10 ms frames
    return jb, clock


def test_jitter_buffer_plays_in_order_packets_in_order():
    jb, clock = make_jb()
    kinds = []
    for s in range(5):
        clock.t = s * 0.010
        jb.insert(s, s * 10, b"p%d" % s)
        kinds.append(jb.pop())
    assert [k.kind for k in kinds] == ["frame"] * 5
    assert [k.payload for k in kinds] == [b"p%d" % s for s in range(5)]


def test_jitter_buffer_puts_reordered_packets_back_in_order():
    jb, clock = make_jb(min_delay=0.03)
    for s in [1, 0, 3, 2, 4]:
        jb.insert(s, s * 10, s)
    assert [jb.pop().payload for _ in range(5)] == [0, 1, 2, 3, 4]


def test_jitter_buffer_reports_a_missing_packet_as_lost_and_a_later_arrival_as_late():
    jb, clock = make_jb(min_delay=0.02)      # 2 frames: 3 and 4 waited that long, 2 is lost
    out = []
    for s in [0, 1, 3, 4]:
        clock.t = s * 0.010
        jb.insert(s, s * 10, s)
        if s:
            out.append(jb.pop())
    out += [jb.pop() for _ in range(2)]
    assert [o.kind for o in out] == ["frame", "frame", "lost", "frame", "frame"]
    assert out[2].seq == 2
    assert jb.insert(2, 20, 2) == "late"
    assert jb.lost == 1 and jb.late == 1


def test_jitter_buffer_does_not_give_up_a_packet_before_its_deadline():
    # target 5 frames: when 2 is missing only 3 and 4 are buffered behind it, so its deadline
    # has not passed -- stretch (conceal without giving it up) and play it when it comes
    jb, clock = make_jb(min_delay=0.05)
    for s in [0, 1, 3, 4, 5]:
        jb.insert(s, s * 10, s)
    out = [jb.pop() for _ in range(3)]
    assert [o.kind for o in out] == ["frame", "frame", "underrun"]
    assert jb.insert(2, 20, 2) == "ok"
    assert [jb.pop().payload for _ in range(4)] == [2, 3, 4, 5]
    assert jb.lost == 0 and jb.late == 0


def test_jitter_buffer_target_grows_after_a_late_packet():
    jb, clock = make_jb(min_delay=0.01)
    for s in [0, 1, 2, 3, 5, 6]:
        clock.t = s * 0.010
        jb.insert(s, s * 10, s)
        if s < 4:
            jb.pop()
    assert jb.target_frames == 1
    assert jb.pop().kind == "lost"          # 4 is missing, 5 and 6 waited the target
    assert jb.insert(4, 40, 4) == "late"
    assert jb.target_frames >= 2            # it missed by one frame: hold one more


def test_jitter_buffer_refuses_packets_far_ahead_of_the_playout_point():
    jb, clock = make_jb(capacity=64)
    jb.insert(0, 0, 0)
    assert jb.pop().kind == "frame"
    assert jb.insert(1 + 64, 0, 0) == "overflow"
    assert jb.insert(1, 10, 1) == "ok" and jb.pop().payload == 1


def test_jitter_buffer_counts_duplicates():
    jb, clock = make_jb()
    assert jb.insert(0, 0, b"a") == "ok"
    assert jb.insert(0, 0, b"a") == "duplicate"
    jb.pop()
    assert jb.insert(0, 0, b"a") == "duplicate"
    assert jb.duplicates == 2


def test_jitter_buffer_waits_for_its_target_before_playing():
    jb, clock = make_jb(min_delay=0.03)   # 3 frames
    assert jb.target_frames == 3
    jb.insert(0, 0, 0)
    assert jb.pop().kind == "wait"
    jb.insert(1, 10, 1)
    assert jb.pop().kind == "wait"
    jb.insert(2, 20, 2)
    assert jb.pop().kind == "frame"


def test_jitter_buffer_starts_after_the_target_delay_even_if_packets_trickle():
    jb, clock = make_jb(min_delay=0.03)
    jb.insert(0, 0, 0)
    clock.t = 0.031
    assert jb.pop().kind == "frame"


def test_jitter_buffer_stretches_on_underrun_and_rebuffers_after_a_long_gap():
    jb, clock = make_jb(rebuffer_after=0.05)   # 5 frames
    jb.insert(0, 0, 0)
    assert jb.pop().kind == "frame"
    kinds = [jb.pop().kind for _ in range(7)]
    assert kinds[:5] == ["underrun"] * 5 and kinds[5:] == ["wait", "wait"]
    assert jb.underruns == 5 and jb.rebuffers == 1
    jb.insert(1, 10, 1)      # the stretched packet still plays when it comes
    assert jb.pop() == ("frame", 1, 1)


def test_jitter_buffer_target_grows_with_measured_jitter():
    jb, clock = make_jb(max_delay=0.5)
    rng = random.Random(3)
    for s in range(200):
        clock.t = s * 0.010 + rng.uniform(0.0, 0.045)
        jb.insert(s, s * 10, s)
    assert 0.035 < jb.jitter <= 0.045
    assert jb.target_frames in (4, 5)


def test_jitter_buffer_skips_a_frame_when_persistently_too_deep():
    jb, clock = make_jb(window=0.05)
    for s in range(30):                 # no jitter, but playout started 30 frames late
        clock.t = s * 0.010
        jb.insert(s, s * 10, s)
    assert jb.target_frames == 1
    kinds = [jb.pop().kind for _ in range(30)]
    assert "skip" in kinds and jb.skipped >= 1
    assert kinds.count("frame") + kinds.count("skip") == 30


def test_jitter_buffer_unwraps_sequence_numbers():
    jb, clock = make_jb(seq_bits=8)
    for i in range(300):
        s = (250 + i) % 256
        jb.insert(s, i * 10, i)
        assert jb.pop().payload == i
    assert jb.lost == 0 and jb.played == 300


def test_jitter_buffer_drops_a_backlog_that_piled_up_before_playback_started():
    jb, clock = make_jb()                 # target: one frame
    for s in range(6):
        clock.t = s * 0.010
        jb.insert(s, s * 10, s)
    assert jb.target_frames == 1
    out = [jb.pop() for _ in range(6)]
    assert [o.kind for o in out] == ["skip"] * 5 + ["frame"]
    assert out[-1].seq == 5 and jb.skipped == 5


def test_jitter_buffer_unwraps_timestamps_when_measuring_jitter():
    jb, clock = make_jb()
    for i in range(100):
        clock.t = i * 0.010
        jb.insert(i, (2**32 - 500 + i * 10) % 2**32, i)
    assert jb.jitter < 1e-6 and jb.target_frames == 1


def test_jitter_buffer_jumps_over_a_discontinuity_instead_of_concealing_it():
    jb, clock = make_jb(rebuffer_after=0.05)
    jb.insert(0, 0, 0)
    jb.pop()
    jb.insert(1000, 10000, "x")
    assert jb.pop() == ("frame", 1000, "x")
    assert jb.resyncs == 1 and jb.lost == 0


def test_jitter_buffer_pop_any_hands_out_packets_while_joining():
    jb = JitterBuffer()
    assert jb.pop_any() is None
    jb.insert(7, 0, "a")
    jb.insert(9, 0, "b")
    assert jb.pop_any().payload == "a"
    assert jb.pop_any().payload == "b"
    assert jb.insert(8, 0, "late") == "late"


def test_jitter_buffer_loss_accounting_is_exact_under_random_loss_and_reordering():
    rng = random.Random(11)
    jb, clock = make_jb(min_delay=0.05)
    events = []                                        # (time, order, what, seq)
    dropped = set()
    for s in range(500):
        if s and rng.random() < 0.1:
            dropped.add(s)
            continue
        late_by = 0.025 if rng.random() < 0.05 else 0.0   # reordered by ~2 packets
        events.append((s * 0.010 + late_by, 0, "in", s))
    for j in range(560):
        events.append((0.0105 + j * 0.010, 1, "pop", None))
    out = []
    for t, _, what, s in sorted(events):
        clock.t = t
        if what == "in":
            jb.insert(s, s * 10, s)
        elif jb.played + jb.skipped + jb.lost < 500 - (499 in dropped):
            out.append(jb.pop())
    decoded = [o.seq for o in out if o.kind in ("frame", "skip")]
    lost = [o.seq for o in out if o.kind == "lost"]
    assert decoded == sorted(decoded)
    assert set(lost) == dropped - {499}
    assert set(decoded) == set(range(500)) - dropped
    assert jb.late == 0 and jb.lost == len(lost)


# ---------------------------------------------------------------------------- transport
def test_parse_hostport_forms():
    assert parse_hostport("example.org:1234") == ("example.org", 1234)
    assert parse_hostport(":5") == ("127.0.0.1", 5)
    assert parse_hostport("6") == ("127.0.0.1", 6)
    assert parse_hostport("[::1]:7") == ("::1", 7)
    for bad in ["host:port", "x:70000", "[::1]"]:
        with pytest.raises(ValueError):
            parse_hostport(bad)


def test_udp_transport_round_trip_and_timeout():
    with UdpTransport(bind=("127.0.0.1", 0)) as rx, UdpTransport() as tx:
        assert rx.recv(0.01) is None
        for i in range(10):
            assert tx.send(b"packet %d" % i, rx.address)
        got = [rx.recv(1.0) for _ in range(10)]
        assert got == [b"packet %d" % i for i in range(10)]
        assert tx.sent == 10 and rx.received == 10


def test_udp_transport_send_to_a_closed_port_is_counted_not_raised():
    with UdpTransport(bind=("127.0.0.1", 0)) as probe:
        port = probe.address[1]
    with UdpTransport(peer=("127.0.0.1", port)) as tx:
        for _ in range(3):
            tx.send(b"x")
            time.sleep(0.01)
        assert tx.sent + tx.send_errors == 3


def test_udp_transport_recv_after_close_returns_none():
    rx = UdpTransport(bind=("127.0.0.1", 0))
    rx.close()
    assert rx.recv(0.01) is None


# ---------------------------------------------------------------------------- relay
def _relay_run(loss, reorder, seed, n=400):
    with UdpTransport(bind=("127.0.0.1", 0)) as sink, UdpTransport() as src:
        relay = LossyRelay(sink.address, loss=loss, reorder=reorder, seed=seed,
                           seq_of=lambda d: struct.unpack(">I", d)[0], duration=20)
        with relay:
            for i in range(n):
                src.send(struct.pack(">I", i), relay.address)
                if i % 50 == 0:
                    time.sleep(0.002)      # let the relay keep up (the socket buffer is large)
            got = []
            deadline = time.monotonic() + 10
            while len(got) < n - relay.dropped and time.monotonic() < deadline:
                d = sink.recv(0.05)
                if d is not None:
                    got.append(struct.unpack(">I", d)[0])
        return relay, got


def test_relay_drops_the_seeded_fraction_and_reorders_some():
    relay, got = _relay_run(0.2, 0.05, seed=5)
    assert relay.received == 400
    assert 50 < relay.dropped < 110
    assert sorted(got + relay.dropped_seqs) == list(range(400))
    assert got != sorted(got) and relay.reordered > 0
    assert set(relay.reordered_seqs) <= set(got)


def test_relay_is_deterministic_for_a_seed():
    a, _ = _relay_run(0.05, 0.02, seed=9, n=200)
    b, _ = _relay_run(0.05, 0.02, seed=9, n=200)
    assert a.dropped_seqs == b.dropped_seqs and a.reordered_seqs == b.reordered_seqs


def test_relay_without_loss_forwards_everything_in_order():
    relay, got = _relay_run(0.0, 0.0, seed=0, n=100)
    assert got == list(range(100)) and relay.dropped == 0


# ---------------------------------------------------------------------------- properties
from hypothesis import given, strategies as st  # noqa: E402


@given(st.integers(20, 120), st.lists(st.integers(0, 119), max_size=30),
       st.lists(st.tuples(st.integers(0, 118), st.integers(1, 3)), max_size=10),
       st.integers(1, 6))
def test_jitter_buffer_plays_every_packet_once_in_order_or_reports_it_lost(
        n, drops, swaps, target):
    jb, clock = make_jb(min_delay=target * 0.010)
    order = list(range(n))
    for i, d in swaps:
        if i + d < n:
            order[i], order[i + d] = order[i + d], order[i]
    dropped = {d for d in drops if 0 < d < n - 1}       # first and last always arrive
    sent = [s for s in order if s not in dropped]
    out = []
    for k, s in enumerate(sent):
        clock.t = k * 0.010
        jb.insert(s, s * 10, s)
        out.append(jb.pop())
    for _ in range(3 * n):
        if jb.depth == 0:
            break
        out.append(jb.pop())
    handed = [o for o in out if o.kind in ("frame", "skip", "lost")]
    seqs = [o.seq for o in handed]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert seqs and seqs[-1] == n - 1
    first = seqs[0]
    assert set(seqs) == set(range(first, n))
    assert all(o.payload == o.seq for o in handed if o.kind != "lost")
    lost = {o.seq for o in handed if o.kind == "lost"}
    assert dropped & set(range(first, n)) <= lost
    assert len(lost - dropped) <= jb.late
    assert jb.lost == len(lost) and jb.duplicates == 0


# ---------------------------------------------------------------------------- resampler
def test_stream_resampler_is_block_size_independent_and_accurate():
    from pacodec.stream.resample import StreamResampler
    t = np.arange(44100) / 44100
    x = np.stack([np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 5000 * t)], 1)
    whole = StreamResampler(44100, 48000, 2).process(x)
    r = StreamResampler(44100, 48000, 2)
    rng = np.random.default_rng(0)
    parts, i = [], 0
    while i < len(x):
        k = int(rng.integers(1, 3000))
        parts.append(r.process(x[i:i + k]))
        i += k
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert len(whole) == 48000
    t2 = (np.arange(len(whole)) - r.delay) / 48000
    ref = np.stack([np.sin(2 * np.pi * 1000 * t2), np.sin(2 * np.pi * 5000 * t2)], 1)
    err = whole[200:-200] - ref[200:-200]
    assert 10 * np.log10(np.mean(err ** 2) / np.mean(ref[200:-200] ** 2)) < -60


def test_stream_resampler_downsamples_too():
    from pacodec.stream.resample import StreamResampler
    x = np.ones((4800, 1))
    y = StreamResampler(48000, 32000, 1).process(x)
    assert len(y) == 3200 and abs(float(y[1000, 0]) - 1.0) < 1e-3


# ---------------------------------------------------------------------------- packets, sessions
from pacodec.errors import FormatError  # noqa: E402
from pacodec.stream import packet as pk  # noqa: E402
from pacodec.stream.session import SessionFilter  # noqa: E402

FRAME = b"\xca\x5e" + bytes(10)
KEY = bytes(range(32))


def test_packet_round_trip_with_and_without_a_key():
    d = pk.pack(5, 7, 100, FRAME)
    assert len(d) == pk.HEADER.size + len(FRAME) and d[0] == 0xA8 and d[1] == 0
    assert pk.unpack(d) == (5, 7, 100, FRAME, False)
    m = pk.pack(5, 7, 100, FRAME, KEY)
    assert len(m) == len(d) + pk.MAC_SIZE and m[1] == pk.FLAG_MAC
    assert pk.unpack(m, KEY) == (5, 7, 100, FRAME, True)
    assert pk.unpack(m).frame == FRAME          # without a key the MAC is skipped


@pytest.mark.parametrize("bad,why", [
    (lambda m: m[:-1] + bytes([m[-1] ^ 1]), "bad MAC"),
    (lambda m: m[:20] + bytes([m[20] ^ 1]) + m[21:], "bad MAC"),
    (lambda m: pk.pack(5, 7, 100, FRAME), "unauthenticated"),
    (lambda m: pk.pack(5, 7, 100, FRAME, bytes(32)), "bad MAC"),
    (lambda m: b"\xa7" + m[1:], "version 1"),
    (lambda m: m[:10], "too short"),
])
def test_packet_with_a_key_rejects_anything_not_signed_by_it(bad, why):
    m = pk.pack(5, 7, 100, FRAME, KEY)
    with pytest.raises(FormatError, match=why):
        pk.unpack(bad(m), KEY)


def test_key_files(tmp_path):
    p = tmp_path / "k"
    p.write_text("# comment\n\n  " + "0f" * 32 + "  \n")
    assert pk.load_key(p) == bytes([15] * 32)
    for text in ("", "zz" * 16, "ab" * 8, "ab" * 65, "ab" * 16 + "\n" + "cd" * 16):
        p.write_text(text)
        with pytest.raises(ValueError):
            pk.load_key(p)
    with pytest.raises(ValueError, match="cannot read"):
        pk.load_key(tmp_path / "missing")


def feed(f, session, seqs, addr=("127.0.0.1", 1), now=0.0, key=None):
    got = []
    for s in seqs:
        acc = f.accept(pk.pack(session, s, 0, FRAME, key), addr, now)
        got += [e % 2 ** 32 for e, _, _ in acc.packets]
    return got


def test_session_needs_probation_then_locks_to_its_source():
    f = SessionFilter()
    assert feed(f, 9, [0, 1]) == []                      # probation
    assert feed(f, 9, [2, 3]) == [0, 1, 2, 3]            # held packets handed on
    assert feed(f, 10, [4, 5, 6]) == []                  # another session: foreign
    assert feed(f, 9, [4], addr=("127.0.0.1", 2)) == []  # same session, other port: foreign
    assert f.foreign == 4 and f.sessions == 1


def test_sequence_jumps_need_confirmation_and_replays_are_dropped():
    f = SessionFilter()
    feed(f, 9, range(10))
    assert feed(f, 9, [2 ** 30, 12345, 12345 + 2 ** 31]) == []
    assert feed(f, 9, [10, 11, 5, 11]) == [10, 11]       # 5 and 11 again: replays
    assert f.jumps == 3 and f.replayed == 2 and f.restarts == 0
    assert feed(f, 9, [500, 501, 502]) == [500, 501, 502]   # confirmed: a restart
    assert f.restarts == 1
    assert feed(f, 9, [503, 560]) == [503, 560]          # a gap within max_dropout


def test_a_new_session_only_after_the_old_one_ended_or_went_silent():
    f = SessionFilter(silence=2.0)
    feed(f, 9, range(5), now=0.0)
    assert feed(f, 10, range(5), now=1.0) == []
    assert feed(f, 10, range(5, 10), now=3.5) == [5, 6, 7, 8, 9]   # silent > 2 s: takes over
    assert f.session_id == 10
    f.end_current()
    assert feed(f, 10, [10, 11, 12], now=3.6) == []      # ended sessions are not accepted again
    assert feed(f, 11, [0, 1, 2], now=3.7) == [0, 1, 2]


def test_a_keyed_filter_counts_unauthenticated_packets_and_changes_nothing():
    f = SessionFilter(KEY)
    assert feed(f, 9, range(3), key=KEY) == [0, 1, 2]
    state = (f.current.max_ext, f.current.seen, f.sessions)
    assert feed(f, 9, [3, 2 ** 30, 2 ** 30 + 1, 2 ** 30 + 2]) == []
    assert feed(f, 10, range(5), key=bytes(32)) == []
    assert f.unauthenticated == 9 and (f.current.max_ext, f.current.seen, f.sessions) == state


def test_session_filter_state_is_bounded_under_a_flood():
    f = SessionFilter()
    rng = random.Random(1)
    for _ in range(5000):
        f.accept(pk.pack(rng.getrandbits(31) + 1, rng.getrandbits(32), 0, FRAME),
                 ("127.0.0.1", rng.randrange(1, 65535)), 0.0)
    assert len(f._candidates) <= f.max_candidates and f.sessions == 0


def test_time_compression_joins_two_frames_without_a_jump():
    from pacodec.stream.timescale import compress
    t = np.arange(2048) / 48000.0
    x = (0.5 * np.sin(2 * np.pi * 440.0 * t))[:, None].astype(np.float32)
    y = compress(x[:1024], x[1024:])
    assert 1024 <= len(y) <= 1024 + 256
    step = np.abs(np.diff(y[:, 0])).max()
    assert step <= 1.2 * np.abs(np.diff(x[:, 0])).max()     # no click at the splice
    np.testing.assert_array_equal(y[-100:], x[-100:])         # ends where the next frame starts


def test_receive_and_live_take_the_concealment_method():
    from pacodec.cli import build_parser
    from pacodec.stream import cli as stream_cli
    p = build_parser()
    for argv in (["receive", "--port", "0", "--conceal", "pitch"], ["live", "--conceal", "pitch"]):
        args = p.parse_args(argv)
        assert stream_cli._decoder_factory(args)().conceal_method == "pitch"
    args = p.parse_args(["receive", "--port", "0"])
    assert stream_cli._decoder_factory(args)().conceal_method is None      # the default


# ---------------------------------------------------------------------------- settings, counters
def test_receiver_and_sender_settings_are_checked_once_and_keywords_still_work(tmp_path):
    from pacodec.errors import UnsupportedError
    from pacodec.stream import Receiver, Sender
    from pacodec.stream.settings import ReceiverSettings, SenderSettings
    cfg = ReceiverSettings(output=tmp_path / "o.wav", min_delay=0.02, idle_timeout=1)
    assert cfg.idle_timeout == 1.0 and cfg.blocksize == 0
    with pytest.raises(Exception):
        cfg.min_delay = 0.5                     # frozen
    for bad in (dict(min_delay=0.6), dict(margin=-1), dict(silence=0), dict(blocksize=-1),
                dict(blocksize=2.5), dict(idle_timeout=float("nan")), dict(key=b"")):
        with pytest.raises(ValueError) as e:
            ReceiverSettings(**bad)
        assert "\n" not in str(e.value)
    with pytest.raises(UnsupportedError):
        SenderSettings(bitrate=-3)
    with pytest.raises(ValueError):
        SenderSettings(session=1 << 32)
    assert "ab" not in repr(SenderSettings(key=b"\xab" * 16))   # the key is never shown
    a = Receiver(("127.0.0.1", 0), output=tmp_path / "a.wav", min_delay=0.02, idle_timeout=1)
    b = Receiver(("127.0.0.1", 0), settings=cfg)
    c = Receiver(("127.0.0.1", 0), settings=cfg, min_delay=0.03)   # keywords replace fields
    try:
        assert a.settings == ReceiverSettings(output=tmp_path / "a.wav", min_delay=0.02,
                                              idle_timeout=1)
        assert b.settings is cfg and b.jitter.min_delay == 0.02
        assert c.settings.min_delay == 0.03 and c.settings.output == cfg.output
    finally:
        for rx in (a, b, c):
            rx.transport.close()
    with pytest.raises(TypeError):
        Receiver(("127.0.0.1", 0), settings=SenderSettings())
    with pytest.raises(TypeError):
        Receiver(("127.0.0.1", 0), no_such_option=1)
    tx = Sender(("127.0.0.1", 9), source=np.zeros((100, 1), np.float32), samplerate=44100,
                bitrate=64, session=7, loop=True)
    try:
        assert tx.settings == SenderSettings(samplerate=44100, bitrate=64, session=7, loop=True)
        assert (tx.samplerate, tx.channels, tx.session) == (44100, 1, 7)
    finally:
        tx.transport.close()


def test_counters_are_one_record_type_across_the_streaming_objects():
    from pacodec.stream.counters import Counted
    from pacodec.stream.live import LivePipeline
    from pacodec.stream.player import FilePlayer
    from pacodec.stream.receiver import Receiver
    from pacodec.stream.sender import Sender
    from pacodec.stream.session import SessionFilter
    for cls in (JitterBuffer, UdpTransport, SessionFilter, LossyRelay, Receiver, Sender,
                LivePipeline, FilePlayer):
        assert issubclass(cls, Counted) and cls.COUNTERS, cls
    jb = JitterBuffer(clock_rate=1000, frame_samples=10)
    assert set(jb.counters()) == set(JitterBuffer.COUNTERS) and not any(jb.counters().values())
    jb.insert(0, 0, b"a")
    jb.insert(0, 0, b"a")
    assert jb.counters("received", "duplicates") == {"received": 1, "duplicates": 1}
    assert {k: jb.stats()[k] for k in JitterBuffer.COUNTERS} == jb.counters()
    with UdpTransport(bind=("127.0.0.1", 0)) as t:
        assert t.counters() == dict.fromkeys(UdpTransport.COUNTERS, 0)


def test_the_run_loop_of_the_base_class_stops_when_the_pipeline_ends():
    import io
    import threading
    from pacodec.stream._audio import AudioPipeline, StatusLine

    class Toy(AudioPipeline):
        COUNTERS = ("steps",)

        def __init__(self, fail=None):
            self.zero_counters()
            self._end_event = threading.Event()
            self.fail = fail
            self.calls = []

        def start(self):
            self.calls.append("start")
            if self.fail == "start":
                raise ValueError("cannot start")
            self.started_at = 0.5
            self.steps += 1
            if self.fail == "thread":
                self.error = RuntimeError("thread failed")
            self._end_event.set()          # the pipeline's own thread would do this
            return self

        def stop(self):
            self.calls.append("stop")

        def stats(self):
            return {**self.counters(), "error": self._error_text()}

        def status_text(self):
            return f"toy {self.steps}"

    out = io.StringIO()
    toy = Toy()
    assert toy.run(status=StatusLine(stream=out)) == {"steps": 1, "error": None}
    assert toy.calls == ["start", "stop"] and out.getvalue().endswith("toy 1\n")
    toy = Toy(fail="thread")
    with pytest.raises(RuntimeError, match="thread failed"):
        toy.run(status=StatusLine(stream=io.StringIO()))
    assert toy.calls == ["start", "stop"]
    out = io.StringIO()
    toy = Toy(fail="start")
    with pytest.raises(ValueError, match="cannot start"):
        toy.run(status=StatusLine(stream=out))
    assert toy.calls == ["start", "stop"] and out.getvalue() == ""
