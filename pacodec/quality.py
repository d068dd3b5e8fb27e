"""Optional quality metric: ViSQOL (audio mode) from the ``audio-samples-qoe`` wheel -- the one
place that loads it (``pacodec demo``, ``pacodec batch --score``, ``tools/compare.py``).

That wheel declares a dependency (``audio-samples``) with no installable release; only the
package ``__init__`` needs it, so unless the real one is installed an empty stand-in module is
registered before importing the native scorer (:func:`native`).  Install the wheel with the two commands in the README ("Measuring quality").
Each channel is scored on its own and the scores averaged, so stereo errors count.  Raises
ImportError when the metric is not installed.
"""
from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np

__all__ = ["visqol", "available", "native", "version"]

INSTALL_HINT = ("pip download --no-deps --only-binary=:all: -d wheels audio-samples-qoe==0.1.2 && "
                "pip install --no-deps wheels/audio_samples_qoe-0.1.2-*.whl")


def native():
    """The wheel's native scorer module (``_score(ref, sr, deg, sr, "audio")``); ImportError
    with the install commands when it is not installed."""
    if ("audio_samples" not in sys.modules
            and importlib.util.find_spec("audio_samples") is None):
        stub = types.ModuleType("audio_samples")
        stub.AudioSamples = type("AudioSamples", (), {"__doc__": "stand-in, never instantiated"})
        sys.modules["audio_samples"] = stub
    try:
        from audio_samples_qoe import _native
    except Exception as e:
        raise ImportError(f"ViSQOL (audio-samples-qoe) is not installed: {INSTALL_HINT}") from e
    return _native


def version() -> str:
    """The native scorer's version ("?" when it does not say); ImportError if not installed."""
    return getattr(native(), "__version__", "?")


def available() -> bool:
    try:
        native()
    except ImportError:
        return False
    return True


def visqol(ref, deg, samplerate: int) -> float:
    """Mean ViSQOL MOS-LQO (audio mode) over the channels of ``deg`` against ``ref``."""
    scorer = native()
    ref = np.asarray(ref, np.float64)
    deg = np.asarray(deg, np.float64)
    ref = ref[:, None] if ref.ndim == 1 else ref
    deg = deg[:, None] if deg.ndim == 1 else deg
    scores = []
    for c in range(ref.shape[1]):
        d = deg[:, min(c, deg.shape[1] - 1)]
        scores.append(scorer._score(np.ascontiguousarray(ref[:, c]), samplerate,
                                    np.ascontiguousarray(d), samplerate, "audio"))
    return float(np.mean(scores))
