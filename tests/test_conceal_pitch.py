"""The pitch-continuing concealment (pacodec/conceal.py): tonal sound is continued in phase,
noise stays noise, and the old spectral method is still there to compare with."""
import numpy as np
import pytest

import pacodec.conceal as conceal
from pacodec.decoder import Decoder
from pacodec.encoder import Encoder

RATE = 48000


def frames_of(x):
    enc = Encoder(RATE, 2, bitrate=96)
    return (enc.encode(x) + enc.flush())[:-1]


def decode(frames, lost, method, monkeypatch):
    monkeypatch.setattr(conceal, "DEFAULT_METHOD", method)
    dec = Decoder()
    return np.concatenate([dec.decode_packet(None if i in lost else f)
                           for i, f in enumerate(frames)])


def gap_snr(ref, y, lost, hop=1024):
    a, b = min(lost) * hop, (max(lost) + 2) * hop
    e = y[a:b] - ref[a:b]
    return 10 * np.log10(np.sum(ref[a:b] ** 2) / np.sum(e ** 2))


@pytest.mark.parametrize("lost", [{40}, {40, 41, 42}])
def test_a_tone_is_continued_in_phase(monkeypatch, lost):
    t = np.arange(2 * RATE) / RATE
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.15 * np.sin(2 * np.pi * 440 * t + 1)
    fr = frames_of(np.repeat(x[:, None], 2, axis=1).astype(np.float32))
    ref = decode(fr, set(), "spectral", monkeypatch)
    old = gap_snr(ref, decode(fr, lost, "spectral", monkeypatch), lost)
    new = gap_snr(ref, decode(fr, lost, "pitch", monkeypatch), lost)
    assert new > old + 6.0 and new > (20.0 if len(lost) == 1 else 8.0), (old, new)


def test_noise_is_concealed_with_noise_of_the_same_level(monkeypatch):
    rng = np.random.default_rng(3)
    x = (0.2 * rng.standard_normal((2 * RATE, 2))).astype(np.float32)
    fr = frames_of(x)
    ref = decode(fr, set(), "spectral", monkeypatch)
    y = decode(fr, {40}, "pitch", monkeypatch)
    seg = slice(40 * 1024, 41 * 1024)
    ratio = np.sqrt(np.mean(y[seg] ** 2) / np.mean(ref[seg] ** 2))
    assert 0.3 < ratio < 1.5
    assert np.isfinite(y).all() and np.abs(y).max() < 2.0


def test_a_long_gap_fades_to_silence(monkeypatch):
    t = np.arange(2 * RATE) / RATE
    x = np.repeat((0.3 * np.sin(2 * np.pi * 220 * t))[:, None], 2, axis=1).astype(np.float32)
    fr = frames_of(x)
    lost = set(range(30, 90))
    y = decode(fr, lost, "pitch", monkeypatch)
    tail = y[85 * 1024:90 * 1024]
    assert np.sqrt(np.mean(tail ** 2)) < 0.01
