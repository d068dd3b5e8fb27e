"""A preallocated single-producer / single-consumer ring of audio frames.

This is the only structure the real-time audio callbacks touch.  Its rules:

* the sample store is allocated once, in ``__init__``; ``write`` and ``read_into`` only copy
  into or out of it (they create small numpy *views*, never audio-sized arrays);
* exactly one thread writes and exactly one thread reads.  Each side advances only its own
  counter (``_w`` for the writer, ``_r`` for the reader), after it has copied the samples, so
  the other side never sees a sample before it is complete.  Under CPython an int attribute
  store is atomic, so no lock is needed and neither side can ever block the other;
* nothing here allocates, blocks, performs I/O or takes a lock, so it may be called from a
  sounddevice callback.

Counters are absolute sample counts (Python ints do not overflow), so ``available`` is simply
``_w - _r``.
"""
import numpy as np

__all__ = ["RingBuffer"]


class RingBuffer:
    """Fixed-capacity ring of ``(capacity, channels)`` float32 samples.

    ``write`` never overwrites unread samples: what does not fit is dropped and counted in
    ``overflows`` (samples) — the caller decides whether that is an overrun.  ``read_into``
    fills the part it cannot serve with zeros and returns how many real samples it copied.
    """

    def __init__(self, capacity, channels, dtype=np.float32):
        capacity = int(capacity)
        channels = int(channels)
        if capacity <= 0 or channels <= 0:
            raise ValueError("capacity and channels must be positive")
        self.capacity = capacity
        self.channels = channels
        self._buf = np.zeros((capacity, channels), dtype=dtype)
        self._w = 0          # total samples ever written (writer-owned)
        self._r = 0          # total samples ever read (reader-owned)
        self.overflows = 0   # samples dropped by write() because the ring was full (writer-owned)

    # -- either side -------------------------------------------------------------------------
    @property
    def available(self):
        """Samples written and not yet read."""
        return self._w - self._r

    @property
    def free(self):
        """Samples that can be written without dropping."""
        return self.capacity - (self._w - self._r)

    @property
    def total_written(self):
        return self._w

    @property
    def total_read(self):
        return self._r

    # -- writer side -------------------------------------------------------------------------
    def write(self, data):
        """Copy ``data`` ((n, channels) or (n,) for mono) in; return how many samples fit."""
        n = len(data)
        free = self.capacity - (self._w - self._r)
        if n > free:
            self.overflows += n - free
            n = free
        if n <= 0:
            return 0
        start = self._w % self.capacity
        first = min(n, self.capacity - start)
        buf = self._buf
        if data.ndim == 1:
            buf[start:start + first, 0] = data[:first]
            if first < n:
                buf[:n - first, 0] = data[first:n]
        else:
            buf[start:start + first] = data[:first]
            if first < n:
                buf[:n - first] = data[first:n]
        self._w += n     # publish after the copy
        return n

    # -- reader side -------------------------------------------------------------------------
    def read_into(self, out, count=None):
        """Copy up to ``count`` (default ``len(out)``) samples into ``out[:count]``.

        The part of ``out[:count]`` that cannot be served is zero-filled.  Returns the number of
        real samples copied.
        """
        want = len(out) if count is None else int(count)
        n = min(want, self._w - self._r)
        if n > 0:
            start = self._r % self.capacity
            first = min(n, self.capacity - start)
            buf = self._buf
            out[:first] = buf[start:start + first]
            if first < n:
                out[first:n] = buf[:n - first]
            self._r += n  # publish after the copy
        else:
            n = 0
        if n < want:
            out[n:want] = 0
        return n

    def skip(self, count):
        """Discard up to ``count`` unread samples (reader side); return how many."""
        n = max(0, min(int(count), self._w - self._r))
        self._r += n
        return n
