"""Quality metrics per file (``--score``): ViSQOL through :mod:`pacodec.quality`, the 2f-model
through a scorer module on ``--score-path``."""
from __future__ import annotations

import os
import sys

__all__ = ["ENV_SCORE_PATH", "scorers", "score_file"]

ENV_SCORE_PATH = "PACODEC_SCORE_PATH"


def scorers(names, path):
    """name -> score(ref, sr, deg, sr) for the requested metrics; ImportError if one is missing.
    ``path`` (or $PACODEC_SCORE_PATH) is put on sys.path first, for the scorer modules
    ``visqol.py`` (``score``) and ``mushra2f.py`` (``score2f``)."""
    path = path or os.environ.get(ENV_SCORE_PATH)
    if path:
        for p in reversed(path.split(os.pathsep)):
            if p and p not in sys.path:
                sys.path.insert(0, p)
    out = {}
    for name in names:
        if name == "visqol":
            from .. import quality
            if quality.available():
                out[name] = lambda r, sr, d, sr2: quality.visqol(r, d, sr)
                continue
            try:
                import visqol as mod
            except ImportError:
                raise ImportError("ViSQOL is not installed (see README 'Measuring quality', "
                                  f"or put visqol.py on --score-path / ${ENV_SCORE_PATH})") from None
            out[name] = mod.score
        elif name == "2f":
            try:
                import importlib.util
                import mushra2f as mod
                for dep in ("seabass", "resampy"):
                    if importlib.util.find_spec(dep) is None:
                        raise ImportError(dep)
                out[name] = mod.score2f
            except ImportError:
                raise ImportError("the 2f-model is not available: pip install seabass-2f resampy "
                                  f"and put mushra2f.py on --score-path / ${ENV_SCORE_PATH}") \
                    from None
        else:
            raise ImportError(f"unknown quality metric {name!r} (visqol, 2f)")
    return out


def score_file(job, rate):
    import soundfile as sf

    from ..api import read
    ref, _ = sf.read(job["src"], always_2d=True)
    deg, _ = read(job["dst"])
    scores = {}
    for name, fn in scorers(job.get("score") or (), job.get("score_path")).items():
        scores[name] = round(float(fn(ref, rate, deg, rate)), 4)
    return scores
