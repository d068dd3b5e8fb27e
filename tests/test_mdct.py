"""The filterbank: the fast MDCT equals the O(N^2) definition and reconstructs perfectly."""
import numpy as np
import pytest

from pacodec import mdct as M
from pacodec.window import block_window, slope


@pytest.mark.parametrize("n", [4, 16, 128, 256, 1024, 2048])
def test_fast_mdct_equals_the_direct_formula(n, rng):
    z = rng.standard_normal(2 * n)
    np.testing.assert_allclose(M.mdct(z), M.mdct_direct(z), atol=1e-9 * n)


@pytest.mark.parametrize("n", [4, 64, 1024])
def test_fast_imdct_equals_the_direct_formula(n, rng):
    x = rng.standard_normal(n)
    np.testing.assert_allclose(M.imdct(x), M.imdct_direct(x), atol=1e-9 * n)


@pytest.mark.parametrize("shape", ["sine", "kbd"])
@pytest.mark.parametrize("length", [16, 128, 1024])
def test_window_slopes_satisfy_princen_bradley(shape, length):
    w = slope(length, shape)
    np.testing.assert_allclose(w ** 2 + w[::-1] ** 2, 1.0, atol=1e-12)


def _ola(x, n, windows):
    """Analysis + synthesis with a window per block; returns the overlap-added output."""
    y = np.zeros_like(x)
    for i, w in enumerate(windows):
        s = i * n
        y[s:s + 2 * n] += M.imdct(M.mdct(x[s:s + 2 * n] * w)) * w
    return y


@pytest.mark.parametrize("shape", ["sine", "kbd"])
def test_window_switching_sequence_reconstructs_perfectly(shape, rng):
    n, ns = 256, 32
    long_ = block_window(n, n, n, shape)
    start = block_window(n, n, ns, shape)
    stop = block_window(n, ns, n, shape)
    both = block_window(n, ns, ns, shape)
    seq = [long_, start, both, stop, long_, start, stop, long_]
    x = rng.standard_normal(n * (len(seq) + 1))
    y = _ola(x, n, seq)
    np.testing.assert_allclose(y[n:-n], x[n:-n], atol=1e-10)


def test_short_blocks_tile_a_frame_with_perfect_reconstruction(rng):
    """Eight short transforms inside a frame between START and STOP windows (as the codec does)."""
    n, ns = 256, 32
    x = rng.standard_normal(4 * n)
    y = np.zeros_like(x)
    w = block_window(n, n, ns)
    y[0:2 * n] += M.imdct(M.mdct(x[0:2 * n] * w)) * w
    ws = block_window(ns, ns, ns)
    off = n + n // 2 - ns // 2
    for j in range(8):
        s = off + j * ns
        y[s:s + 2 * ns] += M.imdct(M.mdct(x[s:s + 2 * ns] * ws)) * ws
    w = block_window(n, ns, n)
    y[2 * n:4 * n] += M.imdct(M.mdct(x[2 * n:4 * n] * w)) * w
    np.testing.assert_allclose(y[n:3 * n], x[n:3 * n], atol=1e-10)


def test_low_overlap_windows_reconstruct(rng):
    n, ov = 256, 128
    w = block_window(n, ov, ov)
    x = rng.standard_normal(n * 6)
    y = _ola(x, n, [w] * 5)
    np.testing.assert_allclose(y[n:-n], x[n:-n], atol=1e-10)


def test_dct4_core_is_orthonormal(rng):
    """MDCT then IMDCT of one block gives the TDAC-aliased block: folding is energy preserving."""
    n = 128
    x = rng.standard_normal(n)
    np.testing.assert_allclose(np.sum(M.imdct(x) ** 2), 2 * np.sum(x ** 2), rtol=1e-10)


def test_mdst_kernel_is_the_mdct_of_the_reversed_block_with_even_bins_negated(rng):
    """The analysis's MDST folds the block itself: the same bits as the MDCT of a reversed copy
    with the even bins negated (what the encoder computed before)."""
    from pacodec.mdct import mdct_kernel, mdst_kernel, plan
    for n in (8, 128, 1024):
        p = plan(n)
        z = rng.standard_normal(2 * n)
        want = np.zeros(n)
        mdct_kernel(z[::-1].copy(), want, p.pre, p.post, p.rev, p.tw, np.zeros(n),
                    np.zeros(n // 2, np.complex128))
        want[0::2] = -want[0::2]
        for k in (mdst_kernel, mdst_kernel.py_func):
            got = np.zeros(n)
            k(z, got, p.pre, p.post, p.rev, p.tw, np.zeros(n), np.zeros(n // 2, np.complex128))
            assert np.array_equal(got.view(np.int64), want.view(np.int64))
