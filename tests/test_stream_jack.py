"""The JACK test harness itself: a private dummy-driver server, the virtual microphone and
speaker, and a PortAudio (sounddevice) loopback process in between.  If these fail, the
end-to-end streaming tests cannot be trusted."""
import sys
import textwrap

import numpy as np
import pytest

import jackserver as js

ok, why = js.jack_available()
pytestmark = [pytest.mark.skipif(not ok, reason=why), pytest.mark.jack]

PASSTHROUGH = textwrap.dedent("""
    import sys, time
    import sounddevice as sd
    flags = []
    def cb(indata, outdata, frames, t, status):
        outdata[:] = indata
        if status:
            flags.append(str(status))
    with sd.Stream(channels=2, samplerate=48000, dtype='float32', callback=cb):
        print('open', flush=True)
        time.sleep(float(sys.argv[1]))
    print('flags', len(flags), flush=True)
""")


def test_private_jack_server_starts_and_stops_cleanly(tmp_path):
    with js.JackServer(log_dir=tmp_path) as server:
        assert server.proc.poll() is None
        name = server.name
    assert server.proc is None
    import glob
    assert glob.glob(f"/dev/shm/jack*_{name}_*") == []


def test_portaudio_loopback_through_jack_is_bit_exact(tmp_path):
    clip = js.load_clip(seconds=1.0)
    signal, offset = js.make_test_signal(clip)
    with js.jack_session(tmp_path, max_seconds=10) as (server, client):
        with js.Proc([sys.executable, "-c", PASSTHROUGH, "8"], server.env, tmp_path,
                     "passthrough") as proc:
            ins = client.wait_for_ports(lambda n: js.portaudio_ports(n, "in"), proc=proc)
            outs = client.wait_for_ports(lambda n: js.portaudio_ports(n, "out"), proc=proc)
            client.route_to(ins)
            client.route_from(outs)
            client.start(signal)
            assert client.wait_played(timeout=10)
            client.record_more(0.2)
            rec = client.recording()
        assert proc.returncode is not None
    lag, peak = js.delay_of(rec, signal, max_delay=48000)
    print(f"loopback delay {lag} samples ({lag / 48:.2f} ms), xruns {client.xruns}")
    assert lag % client.blocksize == 0 and lag > 0
    n = min(len(rec) - lag, len(signal))
    got, want = rec[lag:lag + n], signal[:n]
    period = client.blocksize
    if client.xruns_since_start == 0:
        np.testing.assert_array_equal(got, want)
    # an xrun (a late client on a loaded machine) loses or repeats whole periods, which
    # shifts what follows by whole periods: each period must still arrive intact somewhere
    # near its place
    exact = 0
    blocks = n // period
    for b in range(blocks):
        w = want[b * period:(b + 1) * period]
        for k in range(-8, 9):
            a = lag + b * period + k * period
            if 0 <= a and a + period <= len(rec) and np.array_equal(rec[a:a + period], w):
                exact += 1
                break
    print(f"{exact}/{blocks} periods bit-exact, xruns {client.xruns_since_start}")
    assert exact >= 0.8 * blocks
    assert js.marker_delay(rec)[0] == lag


def test_delay_and_quality_measures_on_a_synthetic_degradation():
    clip = js.load_clip(seconds=1.0)
    signal, offset = js.make_test_signal(clip)
    rng = np.random.default_rng(0)
    rec = np.concatenate([np.zeros((1234, 2), np.float32), signal])
    rec = rec + 0.01 * rng.standard_normal(rec.shape).astype(np.float32)
    lag, _ = js.marker_delay(rec)
    assert lag == 1234
    snrs, cors = js.segmental_quality(clip, rec, offset + lag)
    assert len(snrs) > 5 and np.median(cors) > 0.95
