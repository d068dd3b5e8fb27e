"""Bit-level I/O: bits packed into and read out of bytes.  (Codewords are read bit by bit
in the same way inside :func:`pacodec.huffman.get_symbol`, without a call per bit.)

Bits are written most-significant first (FORMAT.md §2).  The numba kernels work on a byte
buffer plus a small ``int64`` state array so that a whole frame can be written or parsed inside one
kernel: writer state ``[bit_position, overflow_flag]``, reader state ``[bit_position, error_flag,
bit_limit]``.  Readers never index outside ``[0, bit_limit)``: a read past the limit sets the error
flag and returns 0, and callers stop at the first error.  :class:`BitWriter` / :class:`BitReader`
wrap the same kernels for Python code (stream headers, packets).
"""
from __future__ import annotations

import numpy as np

from ._jit import njit
from .errors import FormatError

__all__ = ["put_bits", "get_bits", "writer_state", "reader_state", "BitWriter", "BitReader"]


@njit
def put_bits(buf, st, value, n):
    """Append the ``n`` low bits of ``value`` (0 <= n <= 32).  Sets ``st[1]`` on overflow."""
    pos = st[0]
    if pos + n > buf.shape[0] * 8:
        st[1] = 1
        return
    left = n
    while left > 0:
        room = 8 - (pos & 7)
        take = room if room < left else left
        chunk = (value >> (left - take)) & ((1 << take) - 1)
        buf[pos >> 3] |= np.uint8(chunk << (room - take))
        pos += take
        left -= take
    st[0] = pos


@njit
def get_bits(buf, st, n):
    """Read ``n`` bits (0 <= n <= 32) as an unsigned int; 0 and ``st[1] = 1`` past ``st[2]``."""
    pos = st[0]
    if st[1] != 0 or pos + n > st[2]:
        st[1] = 1
        return 0
    v = 0
    left = n
    while left > 0:
        room = 8 - (pos & 7)
        take = room if room < left else left
        chunk = (np.int64(buf[pos >> 3]) >> (room - take)) & ((1 << take) - 1)
        v = (v << take) | chunk
        pos += take
        left -= take
    st[0] = pos
    return v


def writer_state() -> np.ndarray:
    return np.zeros(2, dtype=np.int64)


def reader_state(nbytes: int, start_bit: int = 0) -> np.ndarray:
    return np.array([start_bit, 0, nbytes * 8], dtype=np.int64)


class BitWriter:
    """Python-side writer over :func:`put_bits` (headers and packets; not the hot path)."""

    def __init__(self, capacity: int = 64):
        self.buf = np.zeros(capacity, dtype=np.uint8)
        self.st = writer_state()

    def write(self, value: int, nbits: int) -> None:
        if value < 0 or value >> nbits:
            raise ValueError(f"{value} does not fit in {nbits} bits")
        while nbits > 32:
            nbits -= 32
            self.write(value >> nbits, 32)
            value &= (1 << nbits) - 1
        if self.st[0] + nbits > self.buf.shape[0] * 8:
            grown = np.zeros(self.buf.shape[0] * 2 + 8, dtype=np.uint8)
            grown[:self.buf.shape[0]] = self.buf
            self.buf = grown
        put_bits(self.buf, self.st, value, nbits)

    @property
    def nbits(self) -> int:
        return int(self.st[0])

    def getvalue(self) -> bytes:
        """The bytes written so far, the last one padded with zero bits."""
        return self.buf[:(self.nbits + 7) // 8].tobytes()


class BitReader:
    """Python-side reader (headers and config blocks: a few fields, read as :func:`get_bits`
    reads them, MSB first, without a kernel call per field); raises :class:`FormatError` past
    the end."""

    def __init__(self, data: bytes, what: str = "data"):
        data = bytes(data)
        self._value = int.from_bytes(data, "big")
        self._nbits = len(data) * 8
        self._pos = 0
        self.what = what

    def read(self, nbits: int) -> int:
        end = self._pos + nbits
        if nbits < 0 or end > self._nbits:
            raise FormatError(f"{self.what} is truncated")
        self._pos = end
        return (self._value >> (self._nbits - end)) & ((1 << nbits) - 1)

    @property
    def pos(self) -> int:
        return self._pos
