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
