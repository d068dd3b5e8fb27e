"""Time-scale modification for the jitter buffer: drop about one frame of audio without a
whole-frame jump.

:func:`compress` joins decoded audio ``prev`` (what would have played) and the following frame
``nxt``, removing ``len(nxt) - delta`` samples: a cross-fade of ``len(nxt) // 4`` samples from
the start of ``prev``'s last frame into the signal one frame later, where ``delta``
(0 .. ``len(nxt) // 4``) is chosen so that the two faded segments are most alike (normalised
cross-correlation, as WSOLA does): for periodic sound the splice lands on the same phase.  The
output starts where ``prev`` starts and ends where ``nxt`` ends, so it is continuous with what
played before and with the next frame.
"""
import numpy as np

__all__ = ["compress"]


def compress(prev, nxt):
    """``prev`` (m >= n, channels) and ``nxt`` (n, channels) -> about ``m`` samples (float32)."""
    n = len(nxt)
    if n == 0 or len(prev) < n:
        return np.concatenate([prev, nxt]) if len(prev) else nxt
    x = np.concatenate([prev, nxt]).astype(np.float64)
    fade = max(1, n // 4)
    max_delta = n // 4 if len(prev) <= n else 0     # a chain of skips must not grow
    p = len(prev) - n
    a = x[p:p + fade]
    best = 0
    if max_delta > 0:
        mono = x.mean(axis=1)
        lo = p + n - max_delta
        cand = np.lib.stride_tricks.sliding_window_view(mono[lo:p + n + fade], fade)
        ref = a.mean(axis=1)
        energy = np.einsum("ij,ij->i", cand, cand) + 1e-12
        score = (cand @ ref) / np.sqrt(energy)
        best = max_delta - int(np.argmax(score))     # cand[j] starts at lo + j
    start = p + n - best
    w = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / fade)[:, None] ** 2
    mixed = a * (1.0 - w) + x[start:start + fade] * w
    out = np.concatenate([x[:p], mixed, x[start + fade:]])
    return out.astype(np.float32)
