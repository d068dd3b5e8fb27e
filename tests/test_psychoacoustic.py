"""The psychoacoustic model's tonality from prediction across frames (MDCT + MDST)."""
import numpy as np

from pacodec.encoder import Encoder


def _ptonal(x, fs=48000):
    enc = Encoder(fs, 1, bitrate=64)
    enc.encode(x[:, None])
    nb = enc.layout.nb_long
    return enc._ascr.ptonal[:nb].copy(), enc._units["energy"][0, :nb].copy()


def test_a_stationary_tone_is_tonal_and_noise_is_not():
    fs = 48000
    t = np.arange(fs) / fs
    for f in (100.0, 1000.0, 5000.0):
        ton, energy = _ptonal(0.3 * np.sin(2 * np.pi * f * t))
        b = int(np.argmax(energy))
        assert ton[b] > 0.9, (f, ton[b])
    ton, energy = _ptonal(0.1 * np.random.default_rng(1).standard_normal(fs))
    assert np.average(ton, weights=energy) < 0.1


def test_a_tone_lowers_its_masking_threshold_below_what_flatness_alone_gives():
    """The flatness of the 4-bin MDCT bands calls a pure tone noise-like (tonality ~0.25):
    with the prediction the band's threshold sits at least 6 dB lower against its energy."""
    fs = 48000
    t = np.arange(fs) / fs
    enc = Encoder(fs, 1, bitrate=64)
    enc.encode((0.3 * np.sin(2 * np.pi * 1000 * t))[:, None])
    nb = enc.layout.nb_long
    e = enc._units["energy"][0, :nb]
    b = int(np.argmax(e))
    # noise substitution's tonality includes the prediction too (the flatness alone said ~0.25)
    assert enc._units["ton"][0, b] > 0.9
    smr = 10 * np.log10(e[b] / enc._units["thr"][0, b])
    z = enc._model_long.z[b]
    assert smr > 5.5 + 6.0 and smr > 14.5 + z - 3.0, smr


def test_noise_substitution_tonality_includes_the_prediction():
    """A band whose spectrum is flat within one frame (flatness tonality ~0) but whose content is
    predictable across frames (predicted tonality 1) is tonal for noise substitution, so the
    allocation's ``tonality < limit`` rule can never replace it by noise."""
    from pacodec.psychoacoustic import band_model, thresholds
    m = band_model(48000, 1024)
    nb = len(m.edges) - 1
    X = np.ones(1024)                       # perfectly flat: spectral flatness 0 dB
    energy, thr, ton, scratch = np.zeros(nb), np.zeros(nb), np.zeros(nb), np.zeros(nb)
    ptonal = np.zeros(nb)
    thresholds(X, m.edges, m.spread, m.offset_tonal, m.ath, energy, thr, ton, scratch, ptonal)
    assert ton.max() < 0.05
    ptonal[nb // 2] = 1.0
    thresholds(X, m.edges, m.spread, m.offset_tonal, m.ath, energy, thr, ton, scratch, ptonal)
    assert ton[nb // 2] == 1.0
    assert ton[nb // 2 - 3] < 0.05 and ton[nb // 2 + 3] < 0.05   # the band's own, not spread
