"""The streaming objects used from Python, without a sound card: the live pipeline's callback
and codec thread driven by hand, Sender -> LossyRelay -> Receiver in one process, the CLI's
argument handling and errors, and the rule that importing pacodec.stream needs no PortAudio."""
import io
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from pacodec.decoder import Decoder
from pacodec.encoder import Encoder
from pacodec.stream import LivePipeline, LossyRelay, Receiver, Sender
from pacodec.stream._audio import StatusLine, parse_device, warm_codec
from pacodec.stream.cli import add_subparsers, main

RATE = 48000


class NoFlags:
    input_overflow = output_underflow = False

    def __bool__(self):
        return False


def tone(seconds, channels=2, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def wait_until(cond, timeout=120.0):
    """A guard against a hang, not a timing: a cold kernel cache on a loaded machine compiles
    for tens of seconds inside the codec thread."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)
    return cond()


@pytest.mark.parametrize("low_delay", [False, True])
def test_live_pipeline_output_equals_offline_packet_decoding(low_delay):
    pipe = LivePipeline(samplerate=RATE, channels=2, bitrate=96, low_delay=low_delay)
    # group=1: a live stream's frames leave one by one (live.default_encoder_factory)
    pipe.encoder = Encoder(RATE, 2, bitrate=96, low_delay=low_delay, group=1)
    pipe.decoder = Decoder()
    import threading
    thread = threading.Thread(target=pipe._codec_loop, daemon=True)
    thread.start()
    x = tone(0.5)
    block = 256
    out = np.zeros((block, 2), np.float32)
    got = []
    try:
        for i in range(0, len(x) - block + 1, block):
            pipe._callback(x[i:i + block], out, block, None, NoFlags())
            got.append(out.copy())
            hop = pipe.encoder.frame_size
            # play the part of a real-time scheduler: let the codec thread catch up
            assert wait_until(lambda: pipe.blocks_coded == pipe.in_ring.total_written // hop
                              or pipe.error is not None)
        assert pipe.error is None
    finally:
        pipe._stop.set()
        pipe._wake.put_nowait(None)
        thread.join(5)
    played = np.concatenate(got)
    enc, dec = Encoder(RATE, 2, bitrate=96, low_delay=low_delay, group=1), Decoder()
    hop = enc.frame_size
    ref = np.concatenate([dec.decode_packet(p) for p in enc.encode(x[:len(played)])])
    first_sound = lambda y: int(np.flatnonzero(np.any(y != 0, axis=1))[0])  # noqa: E731
    start = first_sound(played) - first_sound(ref)
    n = min(len(ref), len(played) - start)
    np.testing.assert_array_equal(played[start:start + n], ref[:n])
    assert pipe.underruns == 0 and pipe.input_overflows == 0


def test_sender_to_receiver_in_process_through_a_lossy_relay(tmp_path):
    import soundfile as sf
    from pacodec.stream.packet import unpack as unpack_packet
    x = tone(2.0)
    with Receiver(("127.0.0.1", 0), output=tmp_path / "out.wav", idle_timeout=1.0) as rx:
        relay = LossyRelay(rx.address, loss=0.1, reorder=0.05, seed=4,
                           seq_of=lambda d: unpack_packet(d).seq, duration=60)
        with relay:
            with Sender(relay.address, source=x, samplerate=RATE, bitrate=96) as tx:
                assert wait_until(lambda: tx.finished, timeout=60)
            assert tx.error is None and tx.seq > 80
            assert wait_until(lambda: rx.done, timeout=30)
    stats = rx.stats()
    assert stats["error"] is None and stats["idle"] and stats["streams_ended"] == 1
    first, last = stats["first_seq"], stats["last_seq"]
    dropped = [s for s in relay.dropped_seqs if first <= s <= last]
    assert 0 <= stats["lost"] - len(dropped) <= stats["late"]
    assert stats["concealed"] == stats["lost"] + stats["underruns"] + stats["crc_errors"]
    y, sr = sf.read(str(tmp_path / "out.wav"), dtype="float32", always_2d=True)
    assert sr == RATE and y.shape[1] == 2 and len(y) > 1.5 * RATE
    # the file ends with the stream, not with silence until the idle timeout (1 s)
    assert len(y) < len(x) + 0.25 * RATE
    assert float(np.sqrt(np.mean(y ** 2))) > 0.05


def test_receiver_counts_garbage_datagrams_and_keeps_listening(tmp_path):
    from pacodec.stream import UdpTransport
    with Receiver(("127.0.0.1", 0), output=tmp_path / "o.wav") as rx:
        with UdpTransport() as tx:
            for _ in range(3):
                tx.send(b"not a pacodec packet at all", rx.address)
            assert wait_until(lambda: rx.bad_packets == 3, timeout=10)
        assert rx.stats()["samplerate"] is None and rx.error is None


def test_sender_stop_flushes_the_end_of_stream_frame():
    from pacodec.stream import UdpTransport
    from pacodec.stream.packet import unpack as unpack_packet
    with UdpTransport(bind=("127.0.0.1", 0)) as sink:
        tx = Sender(sink.address, source=tone(0.3), samplerate=RATE).start()
        assert wait_until(lambda: tx.finished, timeout=60)
        tx.stop()
        frames = []
        while (d := sink.recv(0.2)) is not None:
            frames.append(unpack_packet(d)[1:4])
    seqs = [f[0] for f in frames]
    assert seqs == list(range(len(seqs))) and len(seqs) == tx.seq
    hop = tx.encoder.frame_size
    assert [f[1] for f in frames] == [s * hop for s in seqs]
    dec = Decoder()
    outs = [dec.decode_packet(f[2]) for f in frames]
    assert len(outs[-1]) == 0 and all(len(o) == hop for o in outs[:-1])   # EOS last


def test_warm_codec_runs_the_codec_once():
    calls = []

    class Enc:
        frame_size, channels = 64, 1

        def encode(self, x):
            calls.append(("enc", x.shape))
            return [b"a"]

        def flush(self):
            return [b"b"]

    class Dec:
        def decode_packet(self, p):
            calls.append(("dec", p))

    warm_codec(Enc, Dec, frames=2)
    assert calls == [("enc", (128, 1)), ("dec", b"a"), ("dec", b"b"), ("dec", None)]


def test_warm_codec_exercises_long_and_short_blocks():
    seen = []

    class Spy(Encoder):
        def _is_short(self, k):
            r = super()._is_short(k)
            seen.append(r >= 0)
            return r
    warm_codec(lambda: Spy(RATE, 2, bitrate=96), Decoder)
    assert True in seen and False in seen


def test_status_line_rewrites_in_place_on_a_terminal_and_prints_lines_otherwise():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    tty = Tty()
    s = StatusLine(tty)
    s.update("one")
    s.update("two")
    s.finish()
    assert tty.getvalue() == "\rone\x1b[K\rtwo\x1b[K\n"
    pipe = io.StringIO()
    s = StatusLine(pipe, interval=3600)
    s.update("one")
    s.update("two")
    s.finish("last")
    assert pipe.getvalue() == "one\nlast\n"


def test_parse_device_forms():
    assert parse_device(None) is None and parse_device("") is None
    assert parse_device("3") == 3
    assert parse_device("USB Mic") == "USB Mic"
    assert parse_device("1,4") == (1, 4)
    assert parse_device("mic,") == ("mic", None)


def test_add_subparsers_registers_the_five_commands():
    import argparse
    parser = argparse.ArgumentParser()
    add_subparsers(parser.add_subparsers(dest="command"))
    for argv in (["devices"], ["live", "-b", "64", "--low-delay", "--duration", "1"],
                 ["send", "--to", "h:1", "--file", "f.wav"], ["receive", "--port", "5"],
                 ["play", "x.pac", "--start", "1:30"]):
        args = parser.parse_args(argv)
        assert callable(args.func)
    assert parser.parse_args(["play", "x.pac", "--start", "1:30"]).start == 90.0
    with pytest.raises(SystemExit):
        parser.parse_args(["live", "--duration", "-1"])


def test_live_and_send_default_to_low_delay_and_normal_delay_opts_out():
    import argparse
    parser = argparse.ArgumentParser()
    add_subparsers(parser.add_subparsers(dest="command"))
    for head in (["live"], ["send", "--to", "h:1"]):
        assert parser.parse_args(head).low_delay is True
        assert parser.parse_args(head + ["--low-delay"]).low_delay is True
        assert parser.parse_args(head + ["--normal-delay"]).low_delay is False
        with pytest.raises(SystemExit):
            parser.parse_args(head + ["--low-delay", "--normal-delay"])


def test_files_keep_the_normal_mode():
    from pacodec.cli import build_parser
    assert build_parser().parse_args(["encode", "in.wav", "-o", "x.pac"]).low_delay is False


@pytest.mark.parametrize("argv,needle", [
    (["send", "--to", "localhost:notaport", "--file", "x.wav"], "bad port"),
    (["receive", "--port", "70000", "-o", "x.wav"], "port out of range"),
    (["play", "/nonexistent/file.pac"], "No such file"),
])
def test_cli_errors_are_one_line_and_nonzero(argv, needle, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"pacodec {argv[0]}: error:")
    assert needle in err


def test_importing_the_stream_package_does_not_load_portaudio():
    code = ("import sys, pacodec.stream, pacodec.stream.cli; "
            "print('sounddevice' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_send_file_and_receive_wav_stats_json(tmp_path):
    """The CLI handlers end to end in subprocesses, no audio device involved."""
    import soundfile as sf
    from jackserver import free_udp_port, pacodec_cmd, restore_sigint
    sf.write(str(tmp_path / "in.wav"), tone(1.0), RATE)
    port = free_udp_port()
    rx = subprocess.Popen(pacodec_cmd("receive", "--port", port, "--bind", "127.0.0.1",
                                      "-o", tmp_path / "out.wav", "--idle-exit", 1,
                                      "--duration", 120, "--stats-json", tmp_path / "rx.json"),
                          stderr=subprocess.PIPE, text=True, preexec_fn=restore_sigint)
    try:
        tx = subprocess.run(pacodec_cmd("send", "--to", f"127.0.0.1:{port}", "--file",
                                        tmp_path / "in.wav", "-b", "64", "--stats-json",
                                        tmp_path / "tx.json", "--duration", 120),
                            capture_output=True, text=True, timeout=180)
        assert tx.returncode == 0, tx.stderr
        _, err = rx.communicate(timeout=60)
        assert rx.returncode == 0, err
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait(10)
    t = json.loads((tmp_path / "tx.json").read_text())
    r = json.loads((tmp_path / "rx.json").read_text())
    assert r["packets"] == t["packets"] and r["lost"] == 0 and r["late"] == 0
    assert "loss 0" in err and "buffer" in err


def test_receiver_limits_a_loud_stream_to_full_scale(tmp_path):
    """A sender's input of amplitude 2**40 arrives at the speaker/file limited to +-1.0."""
    import soundfile as sf
    x = tone(1.0) * float(2 ** 38)
    with Receiver(("127.0.0.1", 0), output=tmp_path / "loud.wav", idle_timeout=3.0) as rx:
        # a lossy relay: the concealed frames must be limited too
        with LossyRelay(rx.address, loss=0.2, seed=3, duration=60) as relay:
            with Sender(relay.address, source=x, samplerate=RATE, bitrate=96) as tx:
                assert wait_until(lambda: tx.finished, timeout=60)
            assert wait_until(lambda: rx.done, timeout=30)
    stats = rx.stats()
    assert relay.dropped > 0 and stats["concealed"] > 0
    y, _ = sf.read(str(tmp_path / "loud.wav"), dtype="float32", always_2d=True)
    assert len(y) > RATE // 2 and np.max(np.abs(y)) == 1.0
    assert stats["clipped"] > 0 and np.isfinite(y).all()


def test_receiver_keeps_an_existing_output_file_without_force(tmp_path):
    from pacodec.errors import PacodecError
    out = tmp_path / "x.wav"
    out.write_text("mine")
    with pytest.raises(PacodecError, match="exists"):
        Receiver(("127.0.0.1", 0), output=out)
    assert out.read_text() == "mine"
