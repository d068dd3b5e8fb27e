"""The transient detector: attacks switch to short blocks, a periodic edge does not."""
import numpy as np
import pytest

from pacodec.encoder import Encoder
from pacodec.transient import HISTORY, detect_attack

FS = 44100


def _short_flags(x):
    flags = []
    enc = Encoder(FS, 1, bitrate=64, observer=lambda r: flags.append(r.is_short))
    enc.encode(x)
    enc.flush()
    return np.array(flags)


def _detect(x, start):
    return detect_attack(x, start, 64, 18, 128, np.zeros(18 + HISTORY))


def test_attack_after_quiet_is_found_in_its_window():
    rng = np.random.default_rng(1)
    x = 0.001 * rng.standard_normal(6000)
    x[3000:3400] += 0.5 * rng.standard_normal(400)      # segment 15 of a region starting at 2040
    assert _detect(x, 2040) == (15 * 64 - 64) // 128


def test_periodic_sharp_edge_is_not_an_attack():
    # a 50 Hz sawtooth: each period's step jumps > 10 dB over the ramp before it, but not over
    # the previous period's step
    t = np.arange(8000) / FS
    saw = 0.5 * (2 * ((50 * t) % 1.0) - 1)
    assert _detect(saw, 4000) == -1
    # the same step after silence is one
    x = saw.copy()
    x[:3000] = 0
    assert _detect(x, 2600) >= 0


@pytest.mark.parametrize("f0", [45.0, 55.0, 110.0])
def test_low_sawtooth_bass_codes_with_long_blocks(f0):
    t = np.arange(FS) / FS
    x = 0.4 * (2 * ((f0 * t) % 1.0) - 1)
    flags = _short_flags(x)
    assert len(flags) > 40
    assert not flags[3:].any()          # the onset (its first edge after silence) may be short


def test_drum_hits_still_switch():
    rng = np.random.default_rng(2)
    x = 0.002 * rng.standard_normal(FS)
    for k in range(4):                                   # four hits, a quarter second apart
        s = 5000 + k * FS // 4
        x[s:s + 2000] += rng.standard_normal(2000) * np.exp(-np.arange(2000) / 300)
    assert _short_flags(x).sum() >= 4


# --- the steadiness test of the high band (allocation.HF_NOISE_HZ) -------------------------------

def _unsteady_db(x, start=0, hop=1024):
    from pacodec.transient import hf_unsteadiness
    return 10 * np.log10(hf_unsteadiness(x, start, len(x) - start, hop))


def test_steady_noise_reads_steady_and_a_click_does_not():
    rng = np.random.default_rng(3)
    x = 0.1 * rng.standard_normal(4096)
    assert _unsteady_db(x, 1024) < 6.0
    y = x.copy()
    y[2048:2060] += 0.8 * rng.standard_normal(12)        # a click inside the middle hop
    assert _unsteady_db(y, 1024) > 8.0
    # a click outside the middle hop [start + hop/2, start + 3 hop/2) does not count
    z = x.copy()
    z[1100:1112] += 0.8 * rng.standard_normal(12)
    assert _unsteady_db(z, 1024) < 6.0


def test_unsteadiness_looks_at_the_high_band():
    rng = np.random.default_rng(4)
    n = np.arange(4096)
    x = 0.01 * rng.standard_normal(4096)
    # a 200 Hz tone switched on in the middle hop: 30 dB louder than the noise, but low
    x[2000:] += 0.3 * np.sin(2 * np.pi * 200 / 44100 * n[2000:])
    assert _unsteady_db(x, 1024) < 6.0


def test_silence_and_the_end_of_the_input():
    from pacodec.transient import hf_unsteadiness
    assert hf_unsteadiness(np.zeros(4096), 1024, 3072, 1024) == 1.0
    rng = np.random.default_rng(5)
    x = 0.1 * rng.standard_normal(4096)
    # samples past `avail` count as silent: the input ends inside the middle hop
    assert 10 * np.log10(hf_unsteadiness(x, 1024, 1300, 1024)) > 30.0
