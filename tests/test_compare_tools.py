"""tools/compare.py's command line, run as a command: help, usage errors and the missing metric.

Its curves, BD-rates and summaries are pacodec.quality's (tests/test_quality_curves.py).  Needs
neither the peer codecs nor ViSQOL."""
import subprocess
import sys
from pathlib import Path

import numpy as np

TOOL = Path(__file__).resolve().parents[1] / "tools" / "compare.py"


def compare(*args, without_metric=False, cwd=None):
    """Run the tool; with ``without_metric`` as if the ViSQOL wheel were not installed."""
    block = "sys.modules['audio_samples_qoe'] = None; " if without_metric else ""
    code = (f"import runpy, sys; {block}sys.argv = [{str(TOOL)!r}] + sys.argv[1:]; "
            f"runpy.run_path({str(TOOL)!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_help_runs_without_codecs_or_metric():
    r = compare("--help")
    assert r.returncode == 0, r.stderr
    assert "--nmr" in r.stdout


def test_missing_metric_says_which_commands_to_run(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "tone.wav", np.zeros((100, 2)), 8000)
    r = compare("--corpus", tmp_path, "--codecs", "opus", without_metric=True)
    assert r.returncode == 3, r.stderr
    assert "pip download" in r.stderr and "pip install --no-deps" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unknown_codec_is_a_usage_error(tmp_path):
    r = compare("--corpus", tmp_path, "--codecs", "mp2")
    assert r.returncode == 2
    assert "unknown codec" in r.stderr


def test_low_delay_comparison_is_offered_and_leaves_the_default_codecs_alone(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("compare_tool", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert "opus16ld" not in tool.ALL_CODECS and "opus16ld" in tool.KNOWN_CODECS
    assert tool.OPUS_LOWDELAY_OPTIONS == {"application": "lowdelay", "frame_duration": "2.5"}
    args = tool.build_parser().parse_args(["--low-delay"])
    assert args.low_delay and args.codecs is None and args.samplerate is None
    r = compare("--help")
    assert "--low-delay" in r.stdout and "opus16ld" in r.stdout
    r = compare("--corpus", tmp_path, "--low-delay", "--samplerate", "100")
    assert r.returncode == 2 and "--samplerate 100" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_resampled_clip_keeps_its_content():
    import importlib.util
    spec = importlib.util.spec_from_file_location("compare_tool", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    t = np.arange(44100) / 44100
    x = 0.5 * np.sin(2 * np.pi * 1000 * t)[:, None]
    y = tool.resample_clip(x, 44100, 48000)
    assert y.shape == (48000, 1)
    ref = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(48000) / 48000)
    assert np.max(np.abs(y[1000:-1000, 0] - ref[1000:-1000])) < 1e-3
