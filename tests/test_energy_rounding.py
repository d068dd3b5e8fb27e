"""Energy-matched rounding of the encoder's uniform quantizer (allocation.quantize_matched).

Rounding to nearest reconstructs a magnitude just above half a step at a whole step, so a coarsely
quantized unit of peaky (Laplacian-like) coefficients comes out louder than the original; the PEAQ
ear model behind the 2f-model counts every band whose excitation rises by 1 dB.  The encoder lowers
the rounding offset of such a unit until its reconstruction is no louder than the original."""
import numpy as np
import soundfile as sf
from scipy.signal import stft

import pacodec
from pacodec.allocation import quantize_matched
from pacodec.quantize import QUANT_UNIFORM, SF_BIAS, magnitudes, quantize_unit_fast


def test_a_coarsely_quantized_unit_keeps_its_energy_and_costs_no_more():
    r = np.random.default_rng(3)
    c = r.laplace(size=64)
    xa = magnitudes(c, QUANT_UNIFORM, np.zeros(64))
    E = float(np.sum(c * c))
    sf_ = SF_BIAS + 6            # step 2.8: twice the coefficients' RMS
    q0 = np.zeros(64, np.int64)
    _, _, rec0 = quantize_unit_fast(c, xa, 0, 64, sf_, QUANT_UNIFORM, 255.0, q0)
    q1 = np.zeros(64, np.int64)
    _, _, rec1 = quantize_matched(c, xa, 0, 64, sf_, QUANT_UNIFORM, 255.0, q1, E)
    assert 10 * np.log10(rec0 / E) > 0.6          # round to nearest: 0.84 dB louder
    assert abs(10 * np.log10(rec1 / E)) < 0.25    # matched: -0.13 dB
    assert np.abs(q1).sum() < np.abs(q0).sum()    # and smaller values (fewer bits)
    assert (np.abs(q1) <= np.abs(q0)).all()


def test_decoded_noise_is_no_louder_than_the_input_in_any_high_band(tmp_path):
    fs = 44100
    x = 0.1 * np.random.default_rng(5).standard_normal((3 * fs, 2))
    p = tmp_path / "n.pac"
    pacodec.write(p, x, fs, bitrate=128)
    y, _ = pacodec.read(p)
    f, _, X = stft(x[:, 0], fs, nperseg=2048)
    _, _, Y = stft(y[:, 0], fs, nperseg=2048)
    for lo in (4000, 6000, 8000, 11000, 14000):
        m = (f >= lo) & (f < lo * 1.3)
        gain = 10 * np.log10(np.sum(np.abs(Y[m]) ** 2) / np.sum(np.abs(X[m]) ** 2))
        assert abs(gain) < 0.2, (lo, gain)     # round to nearest: +0.35..+0.44 dB
