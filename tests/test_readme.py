"""The README's code that is meant to run does run, twice in a row (re-runnable), from an empty
directory holding only the ``song.wav``/``song.flac`` its commands name.

Blocks marked ```` ```sh run ```` or ```` ```python run ```` are extracted and executed; the
set-up block (```` ```sh setup ````) is what ``.ci/run`` executes, and the others need a sound
card, GStreamer, peers or minutes (streaming, gst-launch, compare.py)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from conftest import load_clip

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(lang):
    text = README.read_text()
    return re.findall(rf"^```{lang} run\n(.*?)^```$", text, flags=re.S | re.M)


def test_the_readme_marks_its_runnable_blocks():
    assert len(blocks("sh")) >= 1 and len(blocks("python")) >= 1


@pytest.mark.parametrize("lang", ["sh", "python"])
def test_readme_code_blocks_run_and_can_run_again(tmp_path, lang):
    x, fs = load_clip("piano.flac", seconds=1.0)
    sf.write(tmp_path / "song.wav", x, fs, subtype="PCM_16")
    sf.write(tmp_path / "song.flac", x, fs)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    for i, code in enumerate(blocks(lang)):
        argv = (["bash", "-euo", "pipefail", "-c", code] if lang == "sh"
                else [sys.executable, "-c", code])
        for attempt in (1, 2):
            r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                               stdin=subprocess.DEVNULL)
            assert r.returncode == 0, f"{lang} block {i}, run {attempt}:\n{r.stderr[-2000:]}"
            assert "Traceback" not in r.stderr
