"""The command line: round trips through real files, one-line errors, no overwriting."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from pacodec.cli import main

from conftest import snr_db


@pytest.fixture
def wav(tmp_path, piano):
    x, fs = piano
    p = tmp_path / "in.wav"
    sf.write(p, x, fs, subtype="PCM_16")
    return p, x, fs


def run(*args):
    return main([str(a) for a in args])


def test_encode_decode_info_round_trip(tmp_path, wav, capsys):
    p, x, fs = wav
    assert run("encode", p, "-o", tmp_path / "a.pac", "-b", 96) == 0
    assert run("decode", tmp_path / "a.pac", "-o", tmp_path / "a.wav") == 0
    y, rate = sf.read(tmp_path / "a.wav")
    assert rate == fs and y.shape == x.shape and snr_db(x, y) > 15
    capsys.readouterr()
    assert run("info", tmp_path / "a.pac", "--json") == 0
    i = json.loads(capsys.readouterr().out)
    assert i["frames"] == len(x) and i["channels"] == 2 and abs(i["bitrate_kbps"] / 96 - 1) < .05
    # format 8: the version and the long bands' least width (FORMAT.md §3.1, §5.1)
    assert i["format_version"] == 8 and i["min_band_width"] == 8
    assert run("info", tmp_path / "a.pac") == 0
    text = capsys.readouterr().out
    assert "format version 8" in text and "at least 8 bins wide in long frames" in text


def test_output_names_are_derived_and_flac_works(tmp_path, wav):
    p, x, fs = wav
    assert run("encode", p, "-q", 6) == 0
    assert (tmp_path / "in.pac").exists()
    assert run("decode", tmp_path / "in.pac", "-o", tmp_path / "out.flac") == 0
    y, _ = sf.read(tmp_path / "out.flac")
    assert y.shape == x.shape


@pytest.mark.parametrize("opt", [["--quantizer", "mulaw", "--mu", "100"], ["--quantizer", "uniform"],
                                 ["--abr", "80"], ["-d", "1.5"], ["--low-delay"], ["--window", "kbd"]])
def test_encoder_options(tmp_path, wav, opt):
    p, x, fs = wav
    assert run("encode", p, "-o", tmp_path / "o.pac", *opt) == 0
    assert run("decode", tmp_path / "o.pac", "-o", tmp_path / "o.wav") == 0
    assert sf.info(tmp_path / "o.wav").frames == len(x)


def test_existing_output_is_never_overwritten_without_force(tmp_path, wav, capsys):
    p, x, fs = wav
    out = tmp_path / "keep.pac"
    out.write_bytes(b"mine")
    assert run("encode", p, "-o", out) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists" in err and "--force" in err
    assert out.read_bytes() == b"mine"
    assert run("encode", p, "-o", out, "--force") == 0
    assert out.read_bytes()[:4] == b"PACD"


def test_input_is_never_overwritten_even_with_force(tmp_path, wav, capsys):
    p, x, fs = wav
    assert run("encode", p, "-o", tmp_path / "a.pac") == 0
    before = (tmp_path / "a.pac").read_bytes()
    assert run("decode", tmp_path / "a.pac", "-o", tmp_path / "a.pac", "--force") == 1
    assert (tmp_path / "a.pac").read_bytes() == before
    assert "input" in capsys.readouterr().err


@pytest.mark.parametrize("content,needle", [(b"this is not audio", "not a readable audio file"),
                                            (b"", "not a readable audio file")])
def test_not_audio_is_a_one_line_error(tmp_path, capsys, content, needle):
    p = tmp_path / "x.wav"
    p.write_bytes(content)
    assert run("encode", p, "-o", tmp_path / "x.pac") == 1
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert not (tmp_path / "x.pac").exists()


def test_missing_input_and_unsupported_rate(tmp_path, capsys):
    assert run("encode", tmp_path / "nope.wav") == 1
    assert "no such file" in capsys.readouterr().err
    p = tmp_path / "odd.wav"
    sf.write(p, np.zeros((1000, 1)), 7000)
    assert run("encode", p, "-o", tmp_path / "odd.pac") == 1
    err = capsys.readouterr().err
    assert "7000" in err and "44100" in err and err.count("\n") == 1


def test_decoding_something_that_is_not_pac(tmp_path, wav, capsys):
    p, x, fs = wav
    assert run("decode", p, "-o", tmp_path / "z.wav") == 1
    assert "not a pacodec stream" in capsys.readouterr().err
    assert not (tmp_path / "z.wav").exists()


def test_info_reports_damage_with_offsets(tmp_path, wav, capsys):
    p, x, fs = wav
    run("encode", p, "-o", tmp_path / "d.pac")
    data = bytearray((tmp_path / "d.pac").read_bytes())
    data[5000] ^= 0xFF
    (tmp_path / "d.pac").write_bytes(bytes(data[:-100]))
    capsys.readouterr()
    assert run("info", tmp_path / "d.pac") == 1
    out = capsys.readouterr().out
    assert "CRC" in out and "byte offset" in out and "truncated" in out


def test_stdin_and_stdout_pipes(tmp_path, wav):
    p, x, fs = wav
    env = dict(os.environ)
    enc = subprocess.run([sys.executable, "-m", "pacodec", "encode", "-", "-o", "-", "-b", "64"],
                         stdin=open(p, "rb"), capture_output=True, env=env, check=True)
    assert enc.stdout[:4] == b"PACD"
    dec = subprocess.run([sys.executable, "-m", "pacodec", "decode", "-", "-o", "-"],
                         input=enc.stdout, capture_output=True, env=env, check=True)
    (tmp_path / "p.wav").write_bytes(dec.stdout)
    assert sf.info(tmp_path / "p.wav").frames == len(x)


def test_version_and_help_exit_cleanly():
    r = subprocess.run([sys.executable, "-m", "pacodec", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("pacodec ")
    r = subprocess.run([sys.executable, "-m", "pacodec"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


def test_help_does_not_import_numba():
    code = "import sys; from pacodec.cli import build_parser; build_parser(); print('numba' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


def test_a_decode_process_loads_only_the_decoder(tmp_path):
    """``pacodec decode`` as its own process: no encoder module, no other command's module, no
    scipy, and numba's typing registries are not installed to load the cached kernels (their
    refresh imports cffi's C parser and numba's BLAS probe); the output is the in-process one."""
    import pacodec
    t = np.arange(8000) / 8000
    x = 0.3 * np.sin(2 * np.pi * 440 * t)[:, None]
    (tmp_path / "a.pac").write_bytes(pacodec.encode(x, 8000, bitrate=24))
    code = ("import sys\n"
            "sys.argv = ['pacodec', 'decode', 'a.pac', '-o', 'a.wav', '--quiet']\n"
            "from pacodec.cli import main\n"
            "rc = main()\n"
            "print(rc, ' '.join(sorted(sys.modules)))\n")
    parent = os.path.dirname(os.path.dirname(os.path.abspath(pacodec.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (parent, os.environ.get("PYTHONPATH")) if p))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    rc, mods = r.stdout.split(None, 1)
    mods = set(mods.split())
    assert rc == "0" and "pacodec.decoder" in mods
    unwanted = {"pacodec.encoder", "pacodec.allocation", "pacodec.ratecontrol",
                "pacodec.psychoacoustic", "pacodec.transient", "pacodec.loudness",
                "pacodec.batch", "pacodec.listen", "pacodec.stream", "scipy", "cffi",
                "numba.np.arraymath", "numba.core.typing.cffi_utils"}
    assert mods & unwanted == set()
    y, fs = sf.read(tmp_path / "a.wav", dtype="int16")
    ref = np.clip(np.rint(pacodec.decode((tmp_path / "a.pac").read_bytes())[0] * 32768.0),
                  -32768, 32767).astype(np.int16)
    np.testing.assert_array_equal(y.reshape(ref.shape), ref)
