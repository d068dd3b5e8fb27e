"""What a new user meets first (issue 15): help that explains every option, options that are not
silently ignored, one clear line where there is no sound card, a demo that tells the truth about
compiling, and a package that ships only what it needs."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import pacodec
from pacodec.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "pacodec", *map(str, args)],
                          capture_output=True, text=True, **kw)


def pink(fs, seconds, channels, seed=1):
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    spec = np.fft.rfft(rng.standard_normal((n, channels)), axis=0)
    f = np.arange(spec.shape[0], dtype=float)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f)[:, None], n=n, axis=0)
    return 0.2 * x / np.std(x)


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = []
    for name, p in sub.choices.items():
        for a in p._actions:
            if a.option_strings and a.help is None:
                missing.append(f"{name} {a.option_strings[0]}")
    assert missing == []


def test_low_delay_is_described_one_way_everywhere():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    texts = {a.help for p in sub.choices.values() for a in p._actions
             if "--low-delay" in a.option_strings}
    assert len(texts) == 1 and "8 ms" in texts.pop()


def test_help_names_quiet_and_the_decode_formats():
    r = cli("decode", "--help")
    for word in ("--quiet", ".flac", ".aiff", ".ogg", "RF64"):
        assert word in r.stdout
    r = cli("encode", "--help")
    assert "--quiet" in r.stdout and re.search(r"-q Q, --quality Q\s+VBR quality", r.stdout)


def test_mu_alone_implies_mulaw_and_with_another_quantizer_is_an_error(tmp_path):
    """mu is mu-law's parameter: alone it selects mulaw; with another quantizer it could not
    take effect, which is a conflict like any other (pacodec.options), not a warning."""
    fs = 16000
    sf.write(tmp_path / "in.wav", pink(fs, 0.5, 1), fs)
    r = cli("encode", tmp_path / "in.wav", "-o", tmp_path / "a.pac", "--mu", 100, "--quiet")
    assert r.returncode == 0 and r.stderr == ""
    i = pacodec.info(tmp_path / "a.pac")
    assert i.quantizer == "mulaw" and i.mu == 100
    r = cli("encode", tmp_path / "in.wav", "-o", tmp_path / "b.pac", "--mu", 100,
            "--quantizer", "power", "--quiet")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "conflicting options: mu and quantizer=power" in r.stderr
    assert not (tmp_path / "b.pac").exists()


def test_bitrate_above_pcm_is_capped_with_a_warning(tmp_path):
    fs = 8000
    x = pink(fs, 2.0, 1)
    sf.write(tmp_path / "in.wav", x, fs, subtype="PCM_16")
    r = cli("encode", tmp_path / "in.wav", "-o", tmp_path / "a.pac", "-b", 256, "--quiet")
    assert r.returncode == 0 and "128 kbit/s" in r.stderr and r.stderr.count("\n") == 1
    i = pacodec.info(tmp_path / "a.pac")
    assert i.bitrate_kbps < 128 * 1.05


def test_a_rate_too_low_for_the_configuration_is_refused_not_silence(tmp_path):
    """-b 6 on 32 kHz stereo: empty frames alone cost ~5.8 kbit/s, so the audio decoded as digital
    silence; now a clear refusal naming the lowest rate that codes audio, which does.  (Since
    format 3's encoder ends max_band at the last coded band, an empty 32 kHz stereo frame is
    small enough for 6 kbit/s to code audio; 48 kHz with 8 channels still needs more.)"""
    fs = 48000
    x = pink(fs, 2.0, 8)
    sf.write(tmp_path / "in.wav", x, fs)
    r = cli("encode", tmp_path / "in.wav", "-o", tmp_path / "a.pac", "-b", 6)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "too low" in r.stderr
    low = float(re.search(r"at least (\d+)", r.stderr).group(1))
    assert not (tmp_path / "a.pac").exists()
    r = cli("encode", tmp_path / "in.wav", "-o", tmp_path / "a.pac", "-b", low, "--quiet")
    assert r.returncode == 0, r.stderr
    y, _ = pacodec.read(tmp_path / "a.pac")
    assert np.sqrt(np.mean(y ** 2)) > 0.01             # audio, not digital silence
    assert pacodec.minimum_bitrate(8000, 1) <= 6 < pacodec.minimum_bitrate(48000, 8)


def test_demo_mentions_compilation_only_when_it_compiles():
    first = cli("demo", timeout=900)
    assert first.returncode == 0, first.stderr
    second = cli("demo", timeout=900)              # everything is in numba's cache now
    assert second.returncode == 0
    line = next(ln for ln in second.stdout.splitlines() if ln.startswith("encode "))
    assert "compil" not in line
    line1 = next(ln for ln in first.stdout.splitlines() if ln.startswith("encode "))
    assert "compil" not in line1 or re.search(r"compiling \d+ numba kernels", line1)


def _has_output_device():
    try:
        import sounddevice as sd
        sd.query_devices(kind="output")
        return True
    except Exception:
        return False


@pytest.mark.skipif(_has_output_device(), reason="a sound card is present")
def test_play_and_the_live_example_without_a_sound_card_say_so_in_one_line(tmp_path):
    pacodec.write(tmp_path / "a.pac", pink(16000, 0.5, 1), 16000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JACK")}
    r = cli("play", tmp_path / "a.pac", "--duration", 1, env=env, timeout=300)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "no default audio device" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "stream_live.py"), "--seconds",
                        "1"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_the_package_ships_only_what_the_demo_needs():
    data = ROOT / "pacodec" / "data"
    shipped = sorted(p.name for p in data.iterdir() if p.is_file())
    assert shipped == ["README.md", "__init__.py", "codebooks.json", "codebooks_v3.json",
                       "codebooks_v6.json", "codebooks_v7.json", "piano.flac"]
    assert (ROOT / "tests" / "data" / "amen_drums.flac").exists()
    # the code tables of every version a decoder reads (normative, FORMAT.md §7.1) and the clip
    assert sum(p.stat().st_size for p in data.iterdir() if p.is_file()) < 600_000
