"""The pitch-continuing concealment (pacodec/conceal.py): tonal sound is continued in phase,
noise stays noise, and the old spectral method is still there to compare with."""
import numpy as np
import pytest

from pacodec.decoder import Decoder
from pacodec.encoder import Encoder

RATE = 48000


def frames_of(x):
    enc = Encoder(RATE, 2, bitrate=96)
    return (enc.encode(x) + enc.flush())[:-1]


def decode(frames, lost, method):
    dec = Decoder(conceal=method)
    return np.concatenate([dec.decode_packet(None if i in lost else f)
                           for i, f in enumerate(frames)])


def gap_snr(ref, y, lost, hop=1024):
    a, b = min(lost) * hop, (max(lost) + 2) * hop
    e = y[a:b] - ref[a:b]
    return 10 * np.log10(np.sum(ref[a:b] ** 2) / np.sum(e ** 2))


@pytest.mark.parametrize("lost", [{40}, {40, 41, 42}])
def test_a_tone_is_continued_in_phase(lost):
    t = np.arange(2 * RATE) / RATE
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.15 * np.sin(2 * np.pi * 440 * t + 1)
    fr = frames_of(np.repeat(x[:, None], 2, axis=1).astype(np.float32))
    ref = decode(fr, set(), "spectral")
    old = gap_snr(ref, decode(fr, lost, "spectral"), lost)
    new = gap_snr(ref, decode(fr, lost, "pitch"), lost)
    assert new > old + 6.0 and new > (20.0 if len(lost) == 1 else 8.0), (old, new)


def test_noise_is_concealed_with_noise_of_the_same_level():
    rng = np.random.default_rng(3)
    x = (0.2 * rng.standard_normal((2 * RATE, 2))).astype(np.float32)
    fr = frames_of(x)
    ref = decode(fr, set(), "spectral")
    y = decode(fr, {40}, "pitch")
    seg = slice(40 * 1024, 41 * 1024)
    ratio = np.sqrt(np.mean(y[seg] ** 2) / np.mean(ref[seg] ** 2))
    assert 0.3 < ratio < 1.5
    assert np.isfinite(y).all() and np.abs(y).max() < 2.0


def test_a_long_gap_fades_to_silence():
    t = np.arange(2 * RATE) / RATE
    x = np.repeat((0.3 * np.sin(2 * np.pi * 220 * t))[:, None], 2, axis=1).astype(np.float32)
    fr = frames_of(x)
    lost = set(range(30, 90))
    y = decode(fr, lost, "pitch")
    tail = y[85 * 1024:90 * 1024]
    assert np.sqrt(np.mean(tail ** 2)) < 0.01


def test_the_method_is_a_decoder_parameter_with_the_default_when_not_given():
    from pacodec.conceal import DEFAULT_METHOD, METHODS
    assert Decoder().conceal_method is None and DEFAULT_METHOD in METHODS
    fr = frames_of(0.3 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)[:, None] * [1, 1])
    default = decode(fr, {20}, None)
    assert np.array_equal(default, decode(fr, {20}, DEFAULT_METHOD))
    assert not np.array_equal(decode(fr, {20}, "pitch"), decode(fr, {20}, "spectral"))
    with pytest.raises(ValueError, match="unknown concealment method 'fast'"):
        Decoder(conceal="fast")
