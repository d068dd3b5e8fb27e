"""Noise substitution (book 7) decision of the encoder.

What this checks: a clearly audible tone (about 6 dB over the noise in its unit) stays coded while
the noise units above it are substituted.  Not covered: a tone near the masking threshold in an
otherwise quiet band is substituted in many frames (its spectral-flatness tonality is low), before
and after the low-rate 3.5 kHz / 0.5 rule."""
import numpy as np
import pytest

import pacodec
from pacodec import container as ct
from pacodec import payload as pld
from pacodec.bitio import reader_state
from pacodec.tables import NOISE_BOOK, load_codebooks


def _frames(data):
    pos = ct.HEADER_SIZE
    while pos < len(data):
        fr = ct.parse_frame_at(data, pos)
        yield fr
        pos += fr.size


def _long_books(data, cfg):
    """Books of channel 0 of every long-window frame, one row per frame."""
    lay, B, ch = pld.layout_for(cfg), load_codebooks(), cfg.channels
    mu_ = lay.max_units
    rows = []
    for fr in _frames(data):
        if fr.ftype == ct.FRAME_EOS:
            break
        pl = fr.payload[ct.CONFIG_SIZE + 4:] if fr.ftype == ct.FRAME_CONFIG else fr.payload
        buf = np.frombuffer(pl, np.uint8)
        hdr = np.zeros(6, np.int64)
        bk = np.zeros((ch, mu_), np.int64)
        err = pld.read_payload(buf, reader_state(len(buf)), ch, cfg.short_blocks, lay.nb_long,
                              lay.nb_short, hdr, np.zeros(ch, np.int64),
                              np.zeros(1, np.int64), np.zeros((1, mu_), np.int64), bk,
                              np.zeros((ch, mu_), np.int64), np.zeros((ch, cfg.hop), np.int64),
                              lay.ub_long, lay.ub_short, B.ctx, B.count, B.first, B.offset, B.symbols,
                              B.lut)
        assert err == 0
        if hdr[0] == 0:
            rows.append(bk[0, :lay.nb_long].copy())
    return np.array(rows), lay


@pytest.mark.parametrize("bitrate", [32, 64])
def test_a_tone_in_noise_is_never_substituted_but_the_noise_around_it_is(tmp_path, bitrate):
    fs = 44100
    r = np.random.default_rng(11)
    t = np.arange(3 * fs) / fs
    f0 = 7000.0
    x = 0.1 * r.standard_normal(len(t)) + 0.05 * np.sin(2 * np.pi * f0 * t)
    p = tmp_path / "t.pac"
    pacodec.write(p, x[:, None], fs, bitrate=bitrate)
    cfg = pacodec.PacFile(p).config
    books, lay = _long_books(p.read_bytes(), cfg)
    k0 = int(round(f0 / (fs / 2) * cfg.hop))
    u = int(np.searchsorted(lay.ub_long, k0, side="right") - 1)
    assert len(books) > 20
    assert (books[:, u] != NOISE_BOOK).all()
    # while the noise above it is noise (at 64 kbit/s 0.16 of those units since energy-matched
    # rounding saves bits and the rate loop sits lower; 0.35 before)
    assert (books[:, u + 2:] == NOISE_BOOK).mean() > 0.1


def _hf_noise_share(x, fs, bitrate):
    """Share of the long frames' units from allocation.HF_NOISE_HZ to the coded bandwidth that
    are coded as noise (book 7), channel 0."""
    from pacodec.allocation import HF_NOISE_HZ
    rows = []
    enc = pacodec.Encoder(fs, 1, bitrate=bitrate, observer=lambda r: rows.append(
        (r.is_short, r.books[0].copy(), r.unit_bounds.copy(), int(r.max_band[0]))))
    enc.encode(x[:, None])
    enc.flush()
    share = []
    hop = enc.config.hop
    for is_short, books, ub, max_band in rows[2:-2]:
        if is_short:
            continue
        b0 = int(np.searchsorted(ub[:-1] * fs / (2.0 * hop), HF_NOISE_HZ))
        if b0 < max_band:
            share.append((books[b0:max_band] == NOISE_BOOK).mean())
    return float(np.mean(share)), len(share)


def test_steady_high_band_is_coded_as_noise_and_a_pulsing_one_is_not():
    fs = 44100
    r = np.random.default_rng(12)
    t = np.arange(4 * fs) / fs
    noise = 0.05 * r.standard_normal(len(t))
    steady = noise + 0.2 * np.sin(2 * np.pi * 440 * t)
    # the same noise pulsing 12 dB at 43 Hz (every 1024-sample hop holds an edge; too regular
    # for the transient detector, whose history holds the last pulse)
    gate = np.where((np.arange(len(t)) // 512) % 2 == 0, 1.0, 0.25)
    pulsing = noise * gate + 0.2 * np.sin(2 * np.pi * 440 * t)
    s_steady, n1 = _hf_noise_share(steady, fs, 64)
    s_pulsing, n2 = _hf_noise_share(pulsing, fs, 64)
    assert n1 > 100 and n2 > 100
    assert s_steady > 0.7      # 0.80: 16 short energy estimates of noise spread 3-5 dB
    assert s_pulsing < s_steady - 0.5
