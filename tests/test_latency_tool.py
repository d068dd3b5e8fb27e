"""tools/latency.py's command line (parsing only: the measurements need JACK and are a benchmark,
never asserted)."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "latency.py"


def _tool():
    spec = importlib.util.spec_from_file_location("latency_tool", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_defaults_are_64_frame_periods_and_every_scenario():
    tool = _tool()
    args = tool.build_parser().parse_args([])
    assert args.period == 64 and args.runs == 3 and args.blocksize == 0
    assert args.only == ["live", "live-normal", "sr", "sr-normal"]
    # the default live and send->receive scenarios give no mode option: the commands' default
    assert tool.SCENARIOS["live"][1]["low_delay"] is None
    assert tool.SCENARIOS["sr"][1]["low_delay"] is None
    assert tool.SCENARIOS["live-normal"][1]["low_delay"] is False


def test_period_and_scenarios_are_checked():
    p = _tool().build_parser()
    assert p.parse_args(["--period", "256", "--only", "sr,live"]).only == ["sr", "live"]
    assert p.parse_args(["--period", "256"]).period == 256


@pytest.mark.parametrize("argv,needle", [
    (["--period", "100"], "power of two"),
    (["--period", "8"], "power of two"),
    (["--period", "x"], "whole number"),
    (["--only", "live,bogus"], "unknown scenario"),
    (["--blocksize", "-1"], "negative"),
    (["--runs", "0"], "at least 1"),
    (["--frames-per-packet", "9"], "in 1..8"),
])
def test_bad_arguments_are_one_clear_error(argv, needle):
    r = subprocess.run([sys.executable, str(TOOL), *argv], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and needle in r.stderr


def test_mode_options_of_the_scenarios():
    import jackserver as js
    assert js._mode_args(None) == []
    assert js._mode_args(True) == ["--low-delay"]
    assert js._mode_args(False) == ["--normal-delay"]
