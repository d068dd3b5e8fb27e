"""Project-wide numba defaults.

Every kernel in pacodec is compiled through :func:`njit` so that the settings live in one
place: ``cache=True`` (compiled machine code is kept beside the module in ``__pycache__``) and
``nogil=True`` (kernels release the GIL, so the streaming codec thread never blocks the audio
callback thread).  Setting ``NUMBA_DISABLE_JIT=1`` in the environment runs every kernel as plain
Python, which is how the kernels are debugged and how ``tests/test_kernels.py`` checks that the
compiled code equals its ``.py_func``.
"""
import numba

__all__ = ["njit"]


def njit(*args, **kwargs):
    """``numba.njit`` with the project defaults (``cache=True``, ``nogil=True``)."""
    kwargs.setdefault("cache", True)
    kwargs.setdefault("nogil", True)
    return numba.njit(*args, **kwargs)
