"""Shared fixtures: the shipped CC0 clips and seeded random generators."""
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hypothesis import settings

settings.register_profile("pacodec", deadline=None, derandomize=True, database=None,
                          max_examples=60)
settings.load_profile("pacodec")

# markers (registered in pyproject.toml) given by module, so the fast core is
#   pytest -m "not slow and not jack and not gst and not e2e"
MODULE_MARKS = {
    "test_gst": ("gst",),
    "test_stream_jack": ("jack",),
    "test_stream_e2e": ("e2e",),
}


# single tests that take over ~5 s on a loaded 2-core machine, or run the CLI in subprocesses
TEST_MARKS = {
    "test_fuzz.py::test_damaged_streams_decode_or_raise_format_error": ("slow",),
    "test_fuzz.py::test_random_frames_with_valid_crcs_after_a_real_config": ("slow",),
    "test_fuzz.py::test_packet_mode_survives_lost_duplicated_and_damaged_packets": ("slow",),
    "test_reliability.py::test_interrupted_encode_leaves_nothing_and_the_input_untouched": ("e2e",),
    "test_reliability.py::test_interrupted_forced_encode_keeps_the_old_output": ("e2e",),
    "test_reliability.py::test_stdout_on_a_full_device_is_a_one_line_error": ("e2e",),
    "test_reliability.py::test_sigkill_leaves_only_a_marked_partial": ("e2e",),
    "test_cli.py::test_stdin_and_stdout_pipes": ("e2e",),
    "test_stream_pipeline.py::test_send_file_and_receive_wav_stats_json": ("e2e",),
    "test_bounds.py::test_cli_on_dev_zero_ends_with_a_one_line_error": ("e2e",),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = list(MODULE_MARKS.get(item.module.__name__.rsplit(".", 1)[-1], ()))
        nodeid = item.nodeid.split("tests/", 1)[-1]
        for prefix, marks in TEST_MARKS.items():
            if nodeid.startswith(prefix):
                names += marks
        for name in names:
            item.add_marker(getattr(pytest.mark, name))


DATA = Path(__file__).resolve().parent / "data"


def load_clip(name: str, seconds: float | None = None):
    """A CC0 clip: ``tests/data/NAME`` (test-only audio) or the package's ``data/NAME``."""
    if (DATA / name).exists():
        x, fs = sf.read(DATA / name, always_2d=True)
    else:
        with resources.as_file(resources.files("pacodec").joinpath(f"data/{name}")) as p:
            x, fs = sf.read(p, always_2d=True)
    if seconds is not None:
        x = x[: int(seconds * fs)]
    return x, fs


@pytest.fixture(scope="session")
def piano():
    return load_clip("piano.flac")


@pytest.fixture(scope="session")
def drums():
    return load_clip("amen_drums.flac")


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


def snr_db(x, y):
    x = np.asarray(x, np.float64)
    e = np.asarray(y, np.float64) - x
    return 10 * np.log10(np.sum(x ** 2) / max(np.sum(e ** 2), 1e-30))


# --- kernels compiled at build time (tests/test_jit_shipped.py, tests/test_nfload.py) -----------

KERNELS_TIMEOUT = 900


def package_env(**kw):
    """The environment of a subprocess that imports this pacodec (first on PYTHONPATH), with the
    JIT on and ``kw`` set."""
    import os

    import pacodec
    parent = str(Path(pacodec.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (parent, env.get("PYTHONPATH")) if p)
    env.update(kw)
    return env


@pytest.fixture(scope="session")
def kernels(tmp_path_factory):
    """A directory of build-time kernels for this package: the installed ones, else built
    (``python -m pacodec._aot``, ~40 s)."""
    import os
    import subprocess
    import sys

    from pacodec import _jit
    if os.path.isdir(_jit.SHIPPED_DIR) and os.listdir(_jit.SHIPPED_DIR):
        return _jit.SHIPPED_DIR
    out = str(tmp_path_factory.mktemp("aot") / "_kernels")
    subprocess.run([sys.executable, "-m", "pacodec._aot", out], env=package_env(), check=True,
                   cwd=tmp_path_factory.getbasetemp(), capture_output=True,
                   timeout=KERNELS_TIMEOUT)
    return out
