"""Differential conformance: the reference decoder (``pacodec``) and the independent decoder
(``tools/independent_decoder.py``, written from bitstreams/FORMAT.md alone) on many streams
beyond the conformance vectors.

* Valid streams: short generated signals (tones, noise from a seeded LCG, clicks) encoded by the
  pacodec encoder over a grid and a hypothesis strategy of configurations (rates 8..96 kHz,
  1/2/3/8 channels, every quantizer and several mu, sine/KBD, low delay, CBR/ABR/VBR, tags, known
  and unknown length, format 5's min_band 0..3 set through the encoder's override).  Both decoders must give the same number of samples and bit-identical
  float32 output (FORMAT.md §11: tolerance 0).
* Headerless joins at a later config frame (§4.3, §6.3) and truncations at frame boundaries
  (§12): the same requirement (nothing is concealed in them).
* Damaged streams: a few dozen cases of ``tools/fuzz.py --differential`` (what is normative for
  damaged input, §11/§12: errors, length, samples outside the concealed ranges).
"""
import functools
import importlib.util
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import pacodec
from pacodec import _fuzz as FUZZ

ROOT = Path(__file__).resolve().parent.parent


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


idec = _load("independent_decoder")
fuzz = _load("fuzz")
fuzz._IDEC[:] = [idec]                              # one copy of the independent decoder


# ----------------------------------------------------------------------------- signals
def _lcg_noise(n, seed):
    """Uniform noise in [-1, 1) from a 32-bit LCG (Numerical Recipes constants): no RNG state."""
    out = np.empty(n)
    x = (seed * 2654435761 + 12345) % 2 ** 32
    for i in range(n):
        x = (1664525 * x + 1013904223) % 2 ** 32
        out[i] = x / 2 ** 31 - 1.0
    return out


@functools.lru_cache(maxsize=64)
def signal(fs, channels, seconds, seed=0):
    """Tones (one per channel, a sweep in channel 0), LCG noise and clicks; deterministic."""
    n = int(round(seconds * fs))
    t = np.arange(n) / fs
    noise = _lcg_noise(n + 7 * channels, seed)
    cols = []
    for c in range(channels):
        f = min(0.4 * fs, 110.0 * (c + 1) * (1.5 ** (seed % 5)))
        x = 0.25 * np.sin(2 * np.pi * f * t + c)
        if c == 0:
            x += 0.1 * np.sin(2 * np.pi * (200.0 + 0.2 * fs * t / max(seconds, 1e-9)) * t)
        x += (0.02 + 0.05 * (c % 3)) * noise[7 * c:7 * c + n]
        step = max(1, int(fs * (0.07 + 0.02 * c)))
        x[(step // 2 + 31 * c) % step::step] += 0.7 * (-1) ** c        # clicks: short blocks
        cols.append(x)
    return np.clip(np.stack(cols, axis=1), -1.0, 1.0)


def encode(fs, channels, seconds, seed=0, unknown_length=False, config_interval=None, **kw):
    x = signal(fs, channels, seconds, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # a CBR rate capped at 16-bit PCM's
        enc = pacodec.Encoder(fs, channels, total_frames=None if unknown_length else len(x), **kw)
        if config_interval is not None:
            # FORMAT.md §4: a config frame at least every fs // N frames -- more often is valid
            enc._config_interval = config_interval
        parts = enc.encode(x) + enc.flush()
    return enc.header() + b"".join(parts), len(x)


# ----------------------------------------------------------------------------- comparison
def both(data):
    """Decode with both decoders; require bit-identical output and nothing concealed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # truncation warnings
        ref, rfs = pacodec.decode(data)
    got, gfs, dec = idec.decode_bytes(data)
    assert (gfs, got.shape) == (rfs, ref.shape)
    assert dec.non_normative == []
    assert got.dtype == ref.dtype == np.float32
    # bit-identical, signs of zeros included
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32)), \
        f"{np.count_nonzero(got != ref)} samples differ"
    return ref


def frame_spans(data):
    """(type, start, end) of the frames of a valid stream, in order."""
    head, frames = FUZZ.split_frames(data)
    out, p = [], len(head)
    for f in frames:
        out.append((f[2] >> 6, p, p + len(f)))
        p += len(f)
    return out


# ----------------------------------------------------------------------------- valid streams
RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)
GRID = [
    # fs, channels, seconds, encoder keyword arguments
    (8000, 1, 0.6, dict(bitrate=16, quantizer="uniform")),
    (8000, 2, 0.5, dict(quality=3, quantizer="power", low_delay=True)),
    (11025, 2, 0.4, dict(bitrate=32, quantizer="mulaw", mu=1)),
    (12000, 3, 0.4, dict(abr=48, quantizer="mulaw", mu=255)),
    (16000, 2, 0.5, dict(bitrate=48, mode="abr", quantizer="power", window_shape="kbd")),
    (16000, 8, 0.25, dict(bitrate=256, quantizer="uniform")),
    (22050, 1, 0.4, dict(quality=8, quantizer="mulaw", mu=65535)),
    (24000, 2, 0.3, dict(bitrate=24, quantizer="power", window_shape="kbd", low_delay=True)),
    (32000, 8, 0.2, dict(bitrate=320, low_delay=True, quantizer="uniform")),
    (44100, 2, 0.4, dict(bitrate=128, quantizer="power")),
    (44100, 2, 0.35, dict(quality=5, window_shape="kbd",
                          tags={"TITLE": "diff ✓", "ARTIST": ["A", "B"]})),
    (44100, 1, 0.3, dict(bitrate=20, quantizer="mulaw", mu=1000)),
    (48000, 3, 0.3, dict(quality=1, quantizer="power", low_delay=True)),
    (48000, 2, 0.3, dict(abr=96, quantizer="uniform", window_shape="kbd")),
    (88200, 1, 0.2, dict(quality=9, quantizer="power")),
    (96000, 2, 0.2, dict(bitrate=192, quantizer="mulaw", mu=50, window_shape="kbd")),
    (96000, 8, 0.2, dict(quality=4, quantizer="power")),
]


@pytest.mark.parametrize("fs,channels,seconds,kw", GRID,
                         ids=[f"{g[0]}-{g[1]}ch-{i}" for i, g in enumerate(GRID)])
def test_valid_stream_decodes_identically(fs, channels, seconds, kw):
    data, n = encode(fs, channels, seconds, seed=len(kw), **kw)
    assert len(both(data)) == n


MIN_BAND_GRID = [
    # format 5's band rule (FORMAT.md §3.1, §5.1): every min_band, long and short frames, low delay
    (44100, 2, 0.4, dict(bitrate=64, quantizer="uniform")),
    (48000, 1, 0.3, dict(quality=3, quantizer="power", window_shape="kbd")),
    (8000, 2, 0.6, dict(bitrate=16, quantizer="mulaw", mu=255)),
    (16000, 3, 0.4, dict(bitrate=64, quantizer="power", low_delay=True)),
    (96000, 1, 0.2, dict(abr=96, quantizer="uniform", low_delay=True)),
]


@pytest.mark.parametrize("min_band", [0, 1, 2, 3])
@pytest.mark.parametrize("fs,channels,seconds,kw", MIN_BAND_GRID,
                         ids=[f"{g[0]}-{g[1]}ch-{i}" for i, g in enumerate(MIN_BAND_GRID)])
def test_version_5_streams_of_every_min_band_decode_identically(fs, channels, seconds, kw,
                                                                 min_band):
    data, n = encode(fs, channels, seconds, seed=min_band, min_band=min_band, **kw)
    assert data[4] == 8 and (data[7] >> 2) & 3 == min_band       # config byte 3 (§3.1)
    assert len(both(data)) == n


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(fs=st.sampled_from(RATES), channels=st.sampled_from((1, 2, 3, 8)),
       seconds=st.sampled_from((0.2, 0.3, 0.45, 0.6)), seed=st.integers(0, 1000),
       quantizer=st.sampled_from(("uniform", "power", "mulaw")),
       mu=st.sampled_from((1, 8, 255, 4000, 65535)), kbd=st.booleans(),
       low_delay=st.booleans(), unknown=st.booleans(),
       rate=st.one_of(st.tuples(st.just("bitrate"), st.sampled_from((16, 32, 64, 96, 160))),
                      st.tuples(st.just("abr"), st.sampled_from((24, 48, 96, 128))),
                      st.tuples(st.just("quality"), st.integers(0, 10))),
       tags=st.booleans(), min_band=st.sampled_from((None, 0, 1, 2, 3)))
def test_generated_configurations_decode_identically(fs, channels, seconds, seed, quantizer, mu,
                                                     kbd, low_delay, unknown, rate, tags,
                                                     min_band):
    if fs * seconds * channels > 100000:            # keep the plain-Python decoder quick
        seconds = 100000 / (fs * channels)
    kind, value = rate
    if kind != "quality":
        value = max(value * channels // 2, 16)
        value = max(value, int(np.ceil(pacodec.minimum_bitrate(fs, channels, low_delay=low_delay))))
    kw = {kind: value, "quantizer": quantizer, "window_shape": "kbd" if kbd else "sine",
          "low_delay": low_delay}
    if quantizer == "mulaw":
        kw["mu"] = mu
    if tags:
        kw["tags"] = {"TITLE": f"case {seed}", "COMMENT": "x" * (seed % 300)}
    if min_band is not None:                        # else the encoder's choice
        kw["min_band"] = min_band
    data, n = encode(fs, channels, seconds, seed=seed, unknown_length=unknown, **kw)
    assert len(both(data)) == n


# ----------------------------------------------------------------------------- joins, truncations
JOIN_STREAMS = [
    (16000, 2, 0.6, dict(bitrate=48, quantizer="power")),
    (8000, 1, 0.6, dict(quality=4, quantizer="mulaw", mu=255, low_delay=True)),
    (44100, 3, 0.3, dict(bitrate=128, quantizer="uniform", window_shape="kbd")),
    (22050, 2, 0.4, dict(quality=6, quantizer="power", tags={"ALBUM": "joins"})),
]


@pytest.mark.parametrize("fs,channels,seconds,kw", JOIN_STREAMS,
                         ids=[f"{g[0]}-{g[1]}ch" for g in JOIN_STREAMS])
@pytest.mark.parametrize("unknown", [False, True], ids=["known", "unknown"])
def test_headerless_joins_and_truncations(fs, channels, seconds, kw, unknown):
    data, n = encode(fs, channels, seconds, seed=7, unknown_length=unknown, config_interval=3,
                     **kw)
    full = both(data)
    spans = frame_spans(data)
    configs = [s for t, s, _ in spans if t == 1]
    assert len(configs) >= 3
    checked = 0
    for start in configs:                            # §4.3: join at a config frame, no header
        joined = both(data[start:])
        assert 0 < len(joined) <= len(full)
        checked += 1
    for _, _, end in spans[:-1:2]:                   # §12: truncated at a frame boundary
        cut = both(data[:end])
        # a prefix of the full decode; with an unknown length the last frame is output whole (§6.3)
        assert np.array_equal(cut[:len(full)], full[:len(cut)])
        checked += 1
    # a join that keeps the header: the header's config, counted from the config frame (§4.3)
    head = len(data) - sum(e - s for _, s, e in spans)
    both(data[:head] + data[configs[1]:])
    assert checked >= 6


def test_garbage_before_the_first_frame_whole_input_and_in_pieces():
    """FORMAT.md §4.3 over the whole input: a stream behind 20 000 bytes of garbage decodes; §12
    permits a reader of the input in pieces to refuse it (no header and no sync word in the first
    16390 bytes), and the reference's readers do, with "not a pacodec stream"."""
    data, n = encode(16000, 1, 0.3, bitrate=32)
    damaged = bytes(20000) + data                   # the header is garbage too: not at byte 0
    got = idec.decode_bytes(damaged)[0]
    assert len(got) == n
    assert np.array_equal(pacodec.decode(damaged)[0], got)
    with pytest.raises(pacodec.FormatError, match="not a pacodec stream"):
        pacodec.read(io.BytesIO(damaged))
    # within the limit the pieces reader decodes it like the whole-input one
    near = bytes(10000) + data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y, _ = pacodec.read(io.BytesIO(near))
    assert np.array_equal(y, idec.decode_bytes(near)[0])


@pytest.mark.parametrize("data", [b"\xca", bytes.fromhex("ca6eb382242bd382")],
                         ids=["ca", "ca-garbage"])
def test_an_input_without_a_sync_word_is_not_a_stream(data):
    with pytest.raises(idec.DecodeError, match="not a pacodec stream"):
        idec.decode_bytes(data)
    with pytest.raises(pacodec.FormatError, match="not a pacodec stream"):
        pacodec.decode(data)


# ----------------------------------------------------------------------------- damaged streams
@functools.lru_cache(maxsize=None)
def _fuzz_ctx():
    seeds = FUZZ.make_seeds(root=ROOT)
    return {"seeds": list(seeds.values()), "names": list(seeds)}


def test_differential_fuzz_cases():
    """``tools/fuzz.py --differential`` on 60 fixed cases: no divergence in what is normative
    (errors, format, number of samples, samples outside concealment)."""
    ctx = _fuzz_ctx()
    outcomes = {}
    for i in range(60):
        case = fuzz.make_diff_case(3, i, ctx)
        outcome, detail, _ = fuzz.run_differential(case)
        assert outcome in fuzz.DIFF_OK, f"case (seed 3, index {i}): {outcome}: {detail}"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("same", 0) and outcomes.get("same_concealed", 0)


def test_differential_oracle_sees_a_divergence():
    """The comparison is not vacuous: a changed sample, a lost sample and a refused stream are
    divergences."""
    data, _ = encode(16000, 1, 0.3, bitrate=32)
    ok = fuzz.run_differential({"target": fuzz.DIFF_TARGET, "data": data})
    assert ok[0] == "same"
    real = idec.decode_bytes

    def patched(kind):
        def f(B, warn=None):
            pcm, fs, d = real(B, warn)
            if kind == "sample":
                pcm = pcm.copy()
                pcm[100, 0] = np.nextafter(pcm[100, 0], np.float32(2))
            elif kind == "length":
                pcm = pcm[:-1]
            else:
                raise idec.DecodeError("no pacodec stream found")
            return pcm, fs, d
        return f
    try:
        for kind, want in (("sample", "diverge:samples"), ("length", "diverge:length"),
                           ("error", "diverge:error")):
            idec.decode_bytes = patched(kind)
            assert fuzz.run_differential({"target": fuzz.DIFF_TARGET, "data": data})[0] == want
    finally:
        idec.decode_bytes = real
