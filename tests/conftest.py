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
