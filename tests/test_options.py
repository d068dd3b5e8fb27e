"""One resolver of coding options (pacodec.options): every front-end gives the same settings.

The same table of option combinations -- valid ones, conflicts, values out of range -- goes
through each front-end in its own vocabulary: ``pacodec encode`` and ``pacodec batch`` (argv,
run in-process), the Python API (``Encoder``, ``encode``, ``write``, ``PacFile(..., "w")``) and
the GStreamer encoder's property mapping (``pacodec.gst.encoder_options``; test_gst.py runs
the real element on the same table).  Each must build the encoder from the same resolved
options, or fail with the same message.
"""
import numpy as np
import pytest
import soundfile as sf

import pacodec
import pacodec.api
import pacodec.encoder
import pacodec.gst
from pacodec import options
from pacodec.cli import build_parser, main
from pacodec.config import DEFAULT_BITRATE, DEFAULT_MU, DEFAULT_QUALITY
from pacodec.errors import UnsupportedError

# (id, options in the resolver's vocabulary, what must come out: fields of CodingOptions, or
# the start of the error message)
ROWS = [
    ("none", {}, dict(mode="vbr", quality=DEFAULT_QUALITY, quantizer="uniform")),
    ("cbr", {"bitrate": 64}, dict(mode="cbr", bitrate=64.0)),
    ("abr", {"abr": 96}, dict(mode="abr", bitrate=96.0)),
    ("quality", {"quality": 5}, dict(mode="vbr", quality=5.0, bitrate=None)),
    ("quality-0", {"quality": 0}, dict(mode="vbr", distance=11.0)),
    ("distance", {"distance": 1}, dict(mode="vbr", quality=None, distance=1.0)),
    ("mulaw", {"quantizer": "mulaw"}, dict(mode="vbr", quantizer="mulaw", mu=DEFAULT_MU)),
    ("mu-alone", {"mu": 100, "bitrate": 96}, dict(mode="cbr", quantizer="mulaw", mu=100)),
    ("mu-mulaw", {"quantizer": "mulaw", "mu": 1000}, dict(quantizer="mulaw", mu=1000)),
    ("power-kbd", {"quantizer": "power", "quality": 7, "window": "kbd"},
     dict(quantizer="power", window_shape="kbd", quality=7.0)),
    ("low-delay", {"low_delay": True}, dict(mode="vbr", low_delay=True)),
    ("low-delay-cbr", {"low_delay": True, "bitrate": 96}, dict(mode="cbr", low_delay=True)),
    ("bitrate+quality", {"bitrate": 64, "quality": 5},
     "conflicting options: bitrate and quality (give one rate option"),
    ("quality+distance", {"quality": 5, "distance": 1},
     "conflicting options: quality and distance (give one rate option"),
    ("abr+distance", {"abr": 96, "distance": 1}, "conflicting options: abr and distance"),
    ("bitrate+abr", {"bitrate": 64, "abr": 96}, "conflicting options: bitrate and abr"),
    ("three", {"bitrate": 64, "quality": 5, "distance": 1},
     "conflicting options: bitrate, quality and distance"),
    ("mu+power", {"mu": 100, "quantizer": "power"},
     "conflicting options: mu and quantizer=power (mu is the mulaw quantizer's parameter)"),
    ("quality-11", {"quality": 11}, "quality must be in 0..10"),
    ("bitrate-3", {"bitrate": 3}, "bitrate 3 kbit/s is outside 6..2048"),
    ("distance-0.01", {"distance": 0.01}, "distance must be a number in 0.05..50"),
    ("mu-0", {"mu": 0}, "mu must be an integer in 1..65535"),
]
IDS = [r[0] for r in ROWS]
RATE = 44100                          # PCM rate far above every row's bitrate: no CLI cap


def as_argv(o):
    flags = {"bitrate": "-b", "abr": "--abr", "quality": "-q", "distance": "-d",
             "quantizer": "--quantizer", "mu": "--mu", "window": "--window"}
    argv = []
    for k, v in o.items():
        argv += ["--low-delay"] if k == "low_delay" else [flags[k], str(v)]
    return argv


def as_python(o):
    """Keywords of Encoder/encode/write/PacFile (the resolver's names but ``window_shape``)."""
    return {("window_shape" if k == "window" else k): v for k, v in o.items()}


def as_python_mode(o):
    """ABR said the other Python way, ``bitrate=B, mode="abr"`` (not PacFile: its mode is "w")."""
    o = as_python(o)
    if "abr" not in o or "bitrate" in o:
        return None
    o.update(bitrate=o.pop("abr"), mode="abr")
    return o


def as_gst(o):
    """pacodecenc properties; None where they cannot say it (bitrate and abr are one property)."""
    o = dict(o)
    if "abr" in o:
        if "bitrate" in o:
            return None
        o.update(bitrate=o.pop("abr"), abr=True)
    if "low_delay" in o:
        o["low-delay"] = o.pop("low_delay")
    return o


def reference(o):
    return options.resolve(**as_python(o))


@pytest.fixture()
def built(monkeypatch):
    """The options of every Encoder made while the test runs (front-ends import it late)."""
    made = []

    class Recording(pacodec.encoder.Encoder):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self.options)

    monkeypatch.setattr(pacodec.encoder, "Encoder", Recording)
    monkeypatch.setattr(pacodec.api, "Encoder", Recording)
    return made


def outcome(fn):
    try:
        return fn()
    except UnsupportedError as e:
        return str(e)


def cli_error(capsys, rc):
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and err.startswith("pacodec: error: "), err
    return err[len("pacodec: error: "):].rstrip("\n")


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_every_front_end_resolves_the_same_options(row, tmp_path, built, capsys):
    name, given, expect = row
    ref = outcome(lambda: reference(given))
    if isinstance(expect, str):
        assert isinstance(ref, str) and ref.startswith(expect), ref
    else:
        assert isinstance(ref, options.CodingOptions), ref
        assert {k: getattr(ref, k) for k in expect} == expect
    x = np.random.default_rng(1).standard_normal((2048, 2)) * 0.1
    wav = tmp_path / "in" / "a.wav"
    wav.parent.mkdir()
    sf.write(wav, x, RATE, subtype="FLOAT")
    got = {}

    # the command line: encode, and batch (one worker, in this process)
    rc = main(["encode", str(wav), "-o", str(tmp_path / "a.pac"), "--quiet", *as_argv(given)])
    got["encode"] = built[-1] if rc == 0 else cli_error(capsys, rc)
    n = len(built)
    rc = main(["batch", str(wav.parent), str(tmp_path / "out"), "-j", "1", "--quiet",
               *as_argv(given)])
    got["batch"] = built[-1] if rc == 0 and len(built) > n else cli_error(capsys, rc)

    # Python: the encoder and the three ways to encode a file or an array
    for tag, kw in (("", as_python(given)), (" mode=abr", as_python_mode(given))):
        if kw is None:
            continue
        got["Encoder" + tag] = outcome(lambda: pacodec.Encoder(RATE, 2, **kw).options)
        got["encode()" + tag] = outcome(lambda: (pacodec.encode(x, RATE, **kw), built[-1])[1])
        got["write()" + tag] = outcome(lambda: (pacodec.write(tmp_path / "w.pac", x, RATE, **kw),
                                                built[-1])[1])
    kw = as_python(given)

    def pacfile():
        with pacodec.PacFile(tmp_path / "p.pac", "w", samplerate=RATE, channels=2, **kw) as f:
            f.write(x)
        return built[-1]
    got["PacFile"] = outcome(pacfile)

    # GStreamer: pacodecenc's properties (test_gst.py checks the element uses this)
    props = as_gst(given)
    if props is not None:
        got["pacodecenc"] = outcome(lambda: pacodec.gst.encoder_options(props))

    assert {k: v for k, v in got.items() if v != ref} == {}, f"reference: {ref}"
    if not isinstance(ref, str):
        assert ref.settings() == pacodec.Encoder(RATE, 2, **ref.encoder_kwargs()).settings


def test_encoder_keywords_resolve_back_to_the_same_options():
    for _, given, expect in ROWS:
        o = outcome(lambda: reference(given))
        if not isinstance(o, str):
            assert options.resolve(**o.encoder_kwargs()) == o


@pytest.mark.parametrize("given,message", [
    (dict(mode="cbr", quality=5), "conflicting options: mode=cbr and quality (mode cbr takes bitrate)"),
    (dict(mode="vbr", bitrate=96), "conflicting options: mode=vbr and bitrate"),
    (dict(mode="abr", quality=5), "conflicting options: mode=abr and quality"),
    (dict(mode="fast"), "unknown rate control mode 'fast'"),
    (dict(bitrate="fast"), "bitrate must be a finite number, got 'fast'"),
    (dict(distance=float("nan")), "distance must be a finite number"),
])
def test_a_mode_that_disagrees_with_the_rate_option_is_an_error(given, message):
    with pytest.raises(UnsupportedError) as e:
        pacodec.Encoder(RATE, 2, **given)
    assert str(e.value).startswith(message)


def test_a_mode_alone_takes_its_default_target():
    assert options.resolve(mode="cbr").describe() == f"CBR {DEFAULT_BITRATE:g} kbit/s"
    assert options.resolve(mode="abr").describe() == f"ABR {DEFAULT_BITRATE:g} kbit/s"
    assert options.resolve(mode="vbr") == options.resolve()
    assert options.resolve(mode="abr", bitrate=96) == options.resolve(abr=96)
    assert options.resolve(bitrate=np.float32(96), mu=np.int64(7)).bitrate == 96.0


def test_the_streaming_commands_stay_cbr():
    """live/send take -b (default 128 kbit/s): CBR, which a live link needs."""
    from pacodec.stream.live import default_encoder_factory
    args = build_parser().parse_args(["send", "--to", "127.0.0.1:5004"])
    enc = default_encoder_factory(48000, 2, bitrate=args.bitrate)()
    assert enc.options.describe() == "CBR 128 kbit/s"


def test_the_streaming_commands_check_the_rate_by_the_same_rules(tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros((100, 1)), 8000)
    rc = main(["send", "--to", "127.0.0.1:9", "--file", str(wav), "-b", "3"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1
    assert err.endswith(": " + outcome(lambda: reference({"bitrate": 3})) + "\n")


def test_cli_conflict_is_one_line_naming_both_options(tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros((100, 1)), 8000)
    rc = main(["encode", str(wav), "-q", "5", "-b", "64"])
    assert cli_error(capsys, rc) == ("conflicting options: bitrate and quality (give one rate "
                                     "option: bitrate, abr, quality or distance)")
    assert not (tmp_path / "a.pac").exists()


def test_cli_default_is_vbr_at_the_default_quality(tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.random.default_rng(2).standard_normal((4000, 2)) * 0.1, RATE)
    assert main(["encode", str(wav)]) == 0
    assert f"(VBR quality {DEFAULT_QUALITY:g})" in capsys.readouterr().err
    x, _ = sf.read(wav, always_2d=True)
    # the CLI always stores the input's loudness (FORMAT.md §3.3)
    assert (tmp_path / "a.pac").read_bytes() == pacodec.encode(x, RATE, quality=DEFAULT_QUALITY,
                                                               loudness=True)


def test_quality_for_kbps_inverts_the_published_scale_and_clamps():
    from pacodec.options import QUALITY_KBPS, quality_for_kbps
    for q, k in QUALITY_KBPS:
        if q in (0, 10) or QUALITY_KBPS[q - 1][1] < k:
            assert quality_for_kbps(k) == pytest.approx(q)
    assert quality_for_kbps(1) == 0.0 and quality_for_kbps(10_000) == 10.0
    qs = [quality_for_kbps(k) for k in range(20, 300, 7)]
    assert qs == sorted(qs)


# The input's limits (pacodec.options "the input's limits"): a CBR/ABR rate above 16-bit PCM's is
# capped, one below the lowest that codes audio refused -- by every front-end alike, since they
# know the input's rate and channels (pacodec.ratelimit.coding_options).
LIMIT_ROWS = [
    ("cap-cbr", 8000, 1, {"bitrate": 200}, dict(mode="cbr", bitrate=121.6, asked_bitrate=200.0)),
    ("cap-abr", 8000, 1, {"abr": 150}, dict(mode="abr", bitrate=121.6, asked_bitrate=150.0)),
    ("cap-close", 16000, 2, {"bitrate": 500}, dict(mode="cbr", bitrate=486.4)),
    ("no-cap", 16000, 2, {"bitrate": 480}, dict(mode="cbr", bitrate=480.0, note=None)),
    ("floor-8ch", 48000, 8, {"bitrate": 6},
     "6 kbit/s is too low for 48000 Hz x 8 ch: frame headers and side information"),
    ("floor-abr", 48000, 8, {"abr": 6, "quantizer": "power"}, "6 kbit/s is too low for 48000"),
    ("floor-ok", 8000, 1, {"bitrate": 6}, dict(mode="cbr", bitrate=6.0, note=None)),
    ("vbr-no-limits", 8000, 1, {"quality": 10}, dict(mode="vbr", quality=10.0, note=None)),
]


def limits_reference(rate, ch, given):
    from pacodec.ratelimit import coding_options
    return outcome(lambda: coding_options(rate, ch, **as_python(given)))


def test_the_input_limits_rule_is_in_the_resolver():
    for name, rate, ch, given, expect in LIMIT_ROWS:
        ref = limits_reference(rate, ch, given)
        if isinstance(expect, str):
            assert isinstance(ref, str) and ref.startswith(expect), (name, ref)
        else:
            assert {k: getattr(ref, k) for k in expect} == expect, name
            assert (ref.note is None) == (ref.asked_bitrate is None), name
    # without the input, or at a rate the encoder refuses, the options are the plain ones
    assert options.resolve(bitrate=200) == options.resolve(bitrate=200, samplerate=8000)
    assert options.resolve(bitrate=200, samplerate=7000, channels=1).bitrate == 200.0
    assert options.resolve(bitrate=6, samplerate=48000, channels=8).bitrate == 6.0   # no measure


@pytest.mark.parametrize("row", LIMIT_ROWS, ids=[r[0] for r in LIMIT_ROWS])
def test_every_front_end_applies_the_input_limits(row, tmp_path, built, capsys):
    name, rate, ch, given, expect = row
    ref = limits_reference(rate, ch, given)
    x = np.random.default_rng(3).standard_normal((2048, ch)) * 0.1
    wav = tmp_path / "in" / "a.wav"
    wav.parent.mkdir()
    sf.write(wav, x, rate, subtype="FLOAT")
    got, notes = {}, {}

    rc = main(["encode", str(wav), "-o", str(tmp_path / "a.pac"), *as_argv(given)])
    err = capsys.readouterr().err
    if rc == 0:
        got["encode"] = built[-1]
        notes["encode"] = f"pacodec: warning: {ref.note}" in err if ref.note else "warning" not in err
    else:
        assert rc == 1 and err.count("\n") == 1 and err.startswith("pacodec: error: "), err
        got["encode"] = err[len("pacodec: error: "):].rstrip("\n")
    n = len(built)
    rc = main(["batch", str(wav.parent), str(tmp_path / "out"), "-j", "1", *as_argv(given)])
    err = capsys.readouterr().err
    if rc == 0 and len(built) > n:
        got["batch"] = built[-1]
        notes["batch"] = (f"pacodec: warning: a.wav: {ref.note}" in err if ref.note
                          else "warning" not in err)
    else:
        line = [ln for ln in err.splitlines() if ln.startswith("pacodec: failed: a.wav: ")]
        assert rc == 1 and len(line) == 1, err
        got["batch"] = line[0][len("pacodec: failed: a.wav: "):]

    import warnings
    for tag, call in (("encode()", lambda kw: pacodec.encode(x, rate, **kw)),
                      ("write()", lambda kw: pacodec.write(tmp_path / "w.pac", x, rate, **kw)),
                      ("PacFile", lambda kw: _pacfile(tmp_path / "p.pac", x, rate, kw))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            n = len(built)
            got[tag] = outcome(lambda: (call(as_python(given)), built[-1])[1])
        said = [str(w.message) for w in caught]
        if not isinstance(got[tag], str):
            assert len(built) == n + 1
            notes[tag] = said == ([f"pacodec: {ref.note}"] if ref.note else [])
    props = as_gst(given)
    got["pacodecenc"] = outcome(lambda: pacodec.gst.encoder_options(props, rate, ch))
    if not isinstance(got["pacodecenc"], str):
        notes["pacodecenc"] = got["pacodecenc"].note == ref.note

    assert {k: v for k, v in got.items() if v != ref} == {}, f"reference: {ref}"
    assert {k: v for k, v in notes.items() if not v} == {}


def _pacfile(path, x, rate, kw):
    with pacodec.PacFile(path, "w", samplerate=rate, channels=x.shape[1], **kw) as f:
        f.write(x)
