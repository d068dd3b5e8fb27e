"""Every numba kernel equals its pure-Python ``.py_func`` on random input."""
import numpy as np
import pytest

from pacodec import mdct as M
from pacodec.bitio import get_bits, put_bits, reader_state, writer_state
from pacodec.psychoacoustic import band_model, thresholds
from pacodec.quantize import dequantize_unit, quantize_unit
from pacodec.transient import detect_attack


def _both(kernel):
    return [kernel, kernel.py_func] if hasattr(kernel, "py_func") else [kernel]


def test_mdct_kernel_matches_py_func(rng):
    n = 64
    p = M.plan(n)
    z = rng.standard_normal(2 * n)
    outs = []
    for k in _both(M.mdct_kernel):
        out = np.zeros(n)
        k(z, out, p.pre, p.post, p.rev, p.tw, np.zeros(n), np.zeros(n // 2, np.complex128))
        outs.append(out)
    np.testing.assert_allclose(outs[0], outs[-1], atol=1e-12)


@pytest.mark.parametrize("quantizer", [0, 1, 2])
def test_quantize_kernels_match_py_func(quantizer, rng):
    x = rng.standard_normal(64) * 10
    res = []
    for qk, dk in zip(_both(quantize_unit), _both(dequantize_unit)):
        q = np.zeros(64, np.int64)
        noise, qmax = qk(x, 0, 64, 90, quantizer, 255.0, q)
        out = np.zeros(64)
        dk(q, 0, 64, 90, quantizer, 255.0, out)
        res.append((q, out, noise, qmax))
    np.testing.assert_array_equal(res[0][0], res[-1][0])
    np.testing.assert_allclose(res[0][1], res[-1][1])
    assert res[0][3] == res[-1][3]


def test_thresholds_kernel_matches_py_func(rng):
    m = band_model(44100, 256)
    X = rng.standard_normal(256)
    nb = len(m.edges) - 1
    res = []
    for k in _both(thresholds):
        e, t, ton = np.zeros(nb), np.zeros(nb), np.zeros(nb)
        k(X, m.edges, m.spread, m.offset_tonal, m.ath, e, t, ton)
        res.append((e, t, ton))
    for a, b in zip(res[0], res[-1]):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_bit_io_kernels_match_py_func(rng):
    vals = rng.integers(0, 1 << 20, 50)
    nbits = rng.integers(20, 33, 50)
    bufs = []
    for pk in _both(put_bits):
        buf = np.zeros(400, np.uint8)
        st = writer_state()
        for v, n in zip(vals, nbits):
            pk(buf, st, int(v), int(n))
        bufs.append(buf)
    np.testing.assert_array_equal(bufs[0], bufs[-1])
    for gk in _both(get_bits):
        st = reader_state(len(bufs[0]))
        got = [gk(bufs[0], st, int(n)) for n in nbits]
        assert got == [int(v) for v in vals]


def test_transient_kernel_matches_py_func(rng):
    x = rng.standard_normal(4000) * 0.001
    x[2500:2600] += rng.standard_normal(100)
    res = [k(x, 2000, 64, 18, 128) for k in _both(detect_attack)]
    assert res[0] == res[-1] and res[0] >= 0
