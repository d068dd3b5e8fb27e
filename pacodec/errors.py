"""The exceptions pacodec raises.  All derive from :class:`PacodecError`.

``FormatError`` and ``UnsupportedError`` also derive from ``ValueError`` so that code which
already catches ``ValueError`` around audio I/O keeps working (the python-soundfile convention).
"""

__all__ = ["PacodecError", "FormatError", "UnsupportedError", "EncoderInputError", "ProblemLog"]


class PacodecError(Exception):
    """Base class of every error pacodec raises on purpose."""


class FormatError(PacodecError, ValueError):
    """The input is not a valid pacodec stream (bad magic, CRC, syntax, truncation...)."""


class UnsupportedError(PacodecError, ValueError):
    """A parameter is outside what the format supports (sample rate, channels, bitrate...)."""


class EncoderInputError(PacodecError, ValueError):
    """The audio given to the encoder cannot be encoded (NaN/Inf samples, wrong shape...)."""


class ProblemLog:
    """A bounded list of problem messages: the first and the last :attr:`keep` of them, and the
    total :attr:`count`, so a stream of a million damaged frames costs constant memory.

    Iterating yields the first ``keep`` messages, then (when some were dropped) one line saying
    how many are not listed, then the last ``keep``; ``len()`` is the number of lines iterated.
    """

    def __init__(self, keep: int = 50):
        from collections import deque
        self.keep = keep
        self.count = 0
        self._first: list[str] = []
        self._last = deque(maxlen=keep)

    def append(self, msg: str):
        self.count += 1
        if len(self._first) < self.keep:
            self._first.append(msg)
        else:
            self._last.append(msg)

    def _lines(self):
        dropped = self.count - len(self._first) - len(self._last)
        mid = [f"... {dropped} more problem(s) not listed ..."] if dropped else []
        return self._first + mid + list(self._last)

    def __iter__(self):
        return iter(self._lines())

    def __len__(self):
        return len(self._first) + len(self._last) + (self.count > len(self._first) + len(self._last))

    def __getitem__(self, i):
        return self._lines()[i]

    def __bool__(self):
        return self.count > 0

    def __repr__(self):
        return f"ProblemLog(count={self.count}, {self._lines()!r})"
