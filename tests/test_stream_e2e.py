"""End-to-end tests of the real-time commands, run as processes.

A known signal (a chirp marker, then a recording) goes into a virtual microphone on a private
JACK server (dummy driver, no sound card); the virtual speaker is recorded; the marker gives
the delay, per-block alignment gives the quality.  Latency and xruns are *reported*
(``record_property`` and stdout), never asserted: they depend on the machine's load.  What is
asserted: the audio arrived (correlation floors after alignment), playback kept going, and the
receiver's loss/concealment counters agree with what the lossy relay actually dropped.

Quality floors were measured on a loaded 2-core machine (see the report in each test) and set
well below: median block correlation of the clean paths 0.98-0.998, with 5 % loss about 0.99,
with 20 % loss about 0.9.
"""
import json

import numpy as np
import pytest

import jackserver as js

ok, why = js.jack_available()
needs_jack = pytest.mark.skipif(not ok, reason=why)
pytestmark = pytest.mark.e2e


def report(record_property, name, result):
    keep = {k: v for k, v in result.items() if not k.endswith("stderr")}
    if "relay" in keep:
        keep["relay"] = {k: v for k, v in keep["relay"].items() if not k.endswith("seqs")}
    print(f"\n{name}: " + json.dumps(keep, default=str, sort_keys=True))
    for key in ("latency_ms", "xruns", "snr_median_db", "cor_median", "good_fraction"):
        if key in result:
            record_property(f"{name}.{key}", result[key])


def check_arrived(result, cor_floor, good_floor):
    assert result.get("blocks", 0) >= 10, result
    assert result["cor_median"] >= cor_floor, result
    assert result["good_fraction"] >= good_floor, result
    assert result["tail_rms"] > 1e-3, "playback stopped before the end of the clip"


def check_loss_accounting(result):
    rx, relay = result["rx"], result["relay"]
    assert rx is not None and rx["error"] is None, result
    first, last = rx["first_seq"], rx["last_seq"]
    dropped = [s for s in relay["dropped_seqs"] if first <= s <= last]
    reordered = [s for s in relay["reordered_seqs"] if first <= s <= last]
    # every packet the relay dropped inside the played range was declared lost; the only
    # other losses are reordered packets that came after their turn (and were counted late)
    surplus = rx["lost"] - len(dropped)
    assert 0 <= surplus <= min(rx["late"], len(reordered)), (rx, len(dropped))
    # each lost or missing-in-time frame was concealed by the decoder, nothing else was
    assert rx["concealed"] == rx["lost"] + rx["underruns"] + rx["crc_errors"], rx
    assert rx["bad_packets"] == 0 and rx["duplicates"] == 0


@needs_jack
@pytest.mark.jack
@pytest.mark.parametrize("low_delay", [False, None], ids=["normal", "default-low-delay"])
def test_live_passes_the_microphone_through_the_codec_to_the_speaker(tmp_path, low_delay,
                                                                      record_property):
    # None: no mode option, so `live` codes in its default, low-delay mode (256-sample frames)
    result = js.run_live(tmp_path, low_delay=low_delay)
    report(record_property, "live" if low_delay is False else "live-ld", result)
    assert result["played"] and result["exit"] == 0, result["stderr"]
    assert result["marker_peak"] > 0.5, result
    check_arrived(result, cor_floor=0.6, good_floor=0.5)
    stats = result["stats"]
    assert stats["frame_size"] == (1024 if low_delay is False else 256)
    assert stats["error"] is None and stats["frames"] > 0


@needs_jack
@pytest.mark.jack
def test_send_and_receive_carry_the_microphone_to_the_speaker(tmp_path, record_property):
    result = js.run_send_receive(tmp_path, source="mic", receiver_output="device",
                                 low_delay=None)
    report(record_property, "send-receive", result)
    assert result["tx_exit"] == 0 and result["rx_exit"] == 0, result["rx_stderr"]
    assert result["marker_peak"] > 0.5, result
    check_arrived(result, cor_floor=0.6, good_floor=0.5)
    rx = result["rx"]
    assert rx["packets"] > 0 and rx["samplerate"] == 48000 and rx["channels"] == 2
    assert rx["concealed"] == rx["lost"] + rx["underruns"] + rx["crc_errors"]


@needs_jack
@pytest.mark.jack
@pytest.mark.parametrize("loss,cor_floor,good_floor", [(0.05, 0.8, 0.7), (0.20, 0.5, 0.5)],
                         ids=["5%", "20%"])
def test_receiver_conceals_packets_a_lossy_relay_drops(tmp_path, loss, cor_floor, good_floor,
                                                      record_property):
    result = js.run_send_receive(tmp_path, source="file", receiver_output="device",
                                 loss=loss, reorder=0.03, seed=7)
    report(record_property, f"relay-{int(loss * 100)}", result)
    assert result["tx_exit"] == 0 and result["rx_exit"] == 0, result["rx_stderr"]
    assert result["relay"]["dropped"] > 0
    check_loss_accounting(result)
    check_arrived(result, cor_floor, good_floor)


@pytest.mark.parametrize("loss,cor_floor,good_floor", [(0.05, 0.8, 0.7), (0.20, 0.5, 0.5)],
                         ids=["5%", "20%"])
def test_receiver_writes_a_lossy_stream_to_a_wav_file(tmp_path, loss, cor_floor, good_floor,
                                                      record_property):
    """No sound server needed: `send --file` -> relay -> `receive -o`."""
    result = js.run_send_receive(tmp_path, source="file", receiver_output="wav",
                                 loss=loss, reorder=0.03, seed=3)
    report(record_property, f"relay-wav-{int(loss * 100)}", result)
    assert result["tx_exit"] == 0 and result["rx_exit"] == 0, result["rx_stderr"]
    check_loss_accounting(result)
    check_arrived(result, cor_floor, good_floor)
    assert result["rx"]["idle"] is True      # --idle-exit ended it


@needs_jack
@pytest.mark.jack
def test_devices_lists_the_jack_device(tmp_path):
    with js.JackServer(log_dir=tmp_path) as server:
        with js.Proc(js.pacodec_cmd("devices"), server.env, tmp_path, "devices") as proc:
            assert proc.wait(60) == 0
        out = proc.stdout_path.read_text()
    assert "JACK" in out and "2 in, 2 out" in out


@needs_jack
@pytest.mark.jack
def test_play_starts_at_the_requested_time(tmp_path, record_property):
    import pacodec.api as api

    clip = js.load_clip(seconds=4.0)          # the piano clip is 2.8 s long
    path = tmp_path / "clip.pac"
    api.write(str(path), clip, js.RATE, bitrate=128)
    decoded, sr = api.read(str(path))
    start = 1.0
    with js.jack_session(tmp_path, max_seconds=20) as (server, client):
        client.start(np.zeros((int(15 * js.RATE), 2), np.float32))
        with js.Proc(js.pacodec_cmd("play", path, "--start", start, "--stats-json",
                                    tmp_path / "play.json", "--duration", 200),
                     server.env, tmp_path, "play") as proc:
            outs = client.wait_for_ports(lambda n: js.portaudio_ports(n, "out"), timeout=180,
                                         proc=proc)
            client.route_from(outs)
            assert proc.wait(60) == 0, proc.stderr()
            rec = client.recording()
    stats = json.loads((tmp_path / "play.json").read_text())
    assert abs(stats["position"] - len(decoded) / sr) < 0.05 and stats["error"] is None
    # the first thing heard is the decoded file from `start` on (the first ms may be cut off
    # while the test connects the ports)
    expected = decoded[int(start * sr):]
    lag = js.align(rec, expected[:sr])
    head = rec[lag:lag + sr]
    cor = float(np.sum(head * expected[:sr]) /
                np.sqrt(np.sum(head ** 2) * np.sum(expected[:sr] ** 2) + 1e-20))
    snrs, _ = js.segmental_quality(expected, rec, lag, rate=sr)
    xruns = client.xruns_since_start + stats["output_underflows"]
    print(f"\nplay: correlation at the start {cor:.4f}, {len(snrs)} blocks, median SNR "
          f"{np.median(snrs):.1f} dB, xruns {xruns}")
    assert cor > 0.6                           # what is heard first is the file from `start`
    # ...and not what precedes `start` (compared over what was recorded before the lag, up to
    # 0.5 s: a play that starts quickly leaves less)
    n = min(int(0.5 * sr), lag)
    if n >= sr // 100:
        before = decoded[int(start * sr) - n:int(start * sr)]
        assert js.snr_db(before, rec[lag - n:lag]) < 3
    if xruns == 0:
        assert np.median(snrs) > 40            # bit-exact playback
    record_property("play.underruns", stats["underruns"])


@needs_jack
@pytest.mark.jack
def test_play_resamples_a_44k1_file_for_a_48k_server(tmp_path):
    import soundfile as sf
    import pacodec.api as api
    from scipy.signal import resample_poly
    x, sr = sf.read(str(js.TEST_CLIP), dtype="float32", always_2d=True)
    assert sr == 44100
    path = tmp_path / "clip44.pac"
    api.write(str(path), x, sr, bitrate=128)
    decoded, _ = api.read(str(path))
    expected = resample_poly(decoded, 160, 147, axis=0).astype(np.float32)
    with js.jack_session(tmp_path, max_seconds=20) as (server, client):
        client.start(np.zeros((int(15 * js.RATE), 2), np.float32))
        with js.Proc(js.pacodec_cmd("play", path, "--stats-json", tmp_path / "play.json",
                                    "--duration", 200), server.env, tmp_path, "play") as proc:
            outs = client.wait_for_ports(lambda n: js.portaudio_ports(n, "out"), timeout=180,
                                         proc=proc)
            client.route_from(outs)
            assert proc.wait(60) == 0, proc.stderr()
            rec = client.recording()
    stats = json.loads((tmp_path / "play.json").read_text())
    assert abs(stats["position"] - len(decoded) / sr) < 0.05
    lag = js.align(rec, expected[:js.RATE])
    snrs, cors = js.segmental_quality(expected, rec, lag)
    print(f"\nplay 44.1k on 48k: median SNR {np.median(snrs):.1f} dB, corr {np.median(cors):.4f}")
    assert np.median(cors) > 0.9


@needs_jack
@pytest.mark.jack
def test_receive_resamples_a_44k1_stream_for_a_48k_server(tmp_path):
    import soundfile as sf
    from scipy.signal import resample_poly
    x, sr = sf.read(str(js.TEST_CLIP), dtype="float32", always_2d=True)
    expected = resample_poly(x, 160, 147, axis=0).astype(np.float32)
    # three seconds of silence first: the receiver's output ports are connected to the test's
    # speaker only once they exist, i.e. once it has joined the stream (and warmed its codec)
    wav = tmp_path / "clip44.wav"
    sf.write(str(wav), np.concatenate([np.zeros((3 * sr, x.shape[1]), np.float32), x]), sr)
    port = js.free_udp_port()
    with js.jack_session(tmp_path, max_seconds=30) as (server, client):
        client.start(np.zeros((int(25 * js.RATE), 2), np.float32))
        with js.Proc(js.pacodec_cmd("receive", "--port", port, "--bind", "127.0.0.1",
                                    "--idle-exit", 1.5, "--duration", 200, "--stats-json",
                                    tmp_path / "rx.json"), server.env, tmp_path, "rx") as rx:
            assert rx.wait_for_stderr("waiting for a stream", timeout=180), rx.stderr()
            tx = js.Proc(js.pacodec_cmd("send", "--to", f"127.0.0.1:{port}", "--file", wav,
                                        "--duration", 200), server.env, tmp_path, "tx")
            outs = client.wait_for_ports(lambda n: js.portaudio_ports(n, "out"), timeout=180,
                                         proc=rx)
            client.route_from(outs)
            try:
                assert tx.wait(200) == 0, tx.stderr()
                assert rx.wait(30) == 0, rx.stderr()
            finally:
                tx.stop()
            rec = client.recording()
    stats = json.loads((tmp_path / "rx.json").read_text())
    assert stats["samplerate"] == 44100 and stats["device_rate"] == 48000
    lag = js.align(rec, expected[js.RATE // 2:js.RATE * 3 // 2]) - js.RATE // 2
    snrs, cors = js.segmental_quality(expected, rec, lag)
    print(f"\nreceive 44.1k on 48k: median corr {np.median(cors):.4f}, "
          f"SNR {np.median(snrs):.1f} dB")
    assert np.median(cors) > 0.8
