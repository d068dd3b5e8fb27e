"""Every numba kernel equals its pure-Python ``.py_func`` on random input."""
import os
import warnings

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
        ptonal = np.linspace(0.0, 1.0, nb)
        k(X, m.edges, m.spread, m.offset_tonal, m.ath, e, t, ton, np.zeros(nb), ptonal)
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
    res = [k(x, 2000, 64, 18, 128, np.zeros(40)) for k in _both(detect_attack)]
    assert res[0] == res[-1] and res[0] >= 0


def _pacodec_kernels():
    """Every numba kernel of the codec, as (module, global name, dispatcher) -- each module
    that imports a kernel holds it under its own name."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import pacodec
    out = []
    for m in pkgutil.iter_modules(pacodec.__path__):
        if m.name in ("gst", "stream", "__main__", "cli"):
            continue
        mod = importlib.import_module(f"pacodec.{m.name}")
        out += [(mod, k, v) for k, v in vars(mod).items() if isinstance(v, CPUDispatcher)]
    return out


@pytest.mark.slow
def test_every_kernel_equals_its_py_func_on_real_encodes_and_decodes(monkeypatch):
    """The whole codec run once compiled and once with every kernel replaced by its pure-Python
    ``.py_func`` (three configurations, clean and damaged streams): the same bytes and the same
    samples, and every kernel is exercised."""
    import pacodec
    from pacodec import payload as pld
    from pacodec.decoder import Decoder
    from pacodec.loudness import integrated_loudness
    from conftest import load_clip

    x, fs = load_clip("amen_drums.flac", 0.3)

    def run():
        d1 = pacodec.encode(x, fs, bitrate=96)
        d2 = pacodec.encode(x, fs, quantizer="mulaw", quality=6)
        d3 = pacodec.encode(x, fs, quantizer="power", low_delay=True)
        # digital silence: the tonality prediction's bins outside its branch-free loop's range
        d4 = pacodec.encode(np.concatenate([np.zeros((4096, x.shape[1])), x[:2048]]), fs)
        bad = bytearray(d1)
        bad[len(bad) // 2] ^= 0x10                      # a CRC failure
        bad[60:60] = b"\xca\x5e\x3f\xff" * 8 + b"junk"  # false sync words claiming long frames
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = [pacodec.decode(d)[0] for d in (d1, d2, d3)]
            dec = Decoder()
            y.append(np.concatenate([dec.feed(bytes(bad[i:i + 700]))
                                     for i in range(0, len(bad), 700)] + [dec.finish()]))
        y.append(np.array([integrated_loudness(x, fs)]))      # the meter's filter kernel
        return [d1, d2, d3, d4], y

    ref_bytes, ref_pcm = run()
    kernels = _pacodec_kernels()
    called = set()
    for mod, name, disp in kernels:
        f = disp.py_func

        def plain(*args, _f=f):
            called.add(_f)
            return _f(*args)
        monkeypatch.setattr(mod, name, plain)
    pld.layout_for.cache_clear()                         # made by a kernel
    try:
        got_bytes, got_pcm = run()
    finally:
        pld.layout_for.cache_clear()
    assert got_bytes == ref_bytes
    for a, b in zip(ref_pcm, got_pcm):
        np.testing.assert_array_equal(a, b)
    missing = {f"{d.py_func.__module__}.{d.py_func.__name__}" for _, _, d in kernels
               if d.py_func not in called}
    assert not missing, f"kernels never run: {sorted(missing)}"


#: kernels that only the encoder needs: a decoding process must not compile them
ENCODER_MODULES = {"pacodec.encoder", "pacodec.allocation", "pacodec.ratecontrol",
                   "pacodec.psychoacoustic", "pacodec.transient"}
ENCODER_KERNELS = {"put_bits", "put_symbol", "write_unit", "unit_bits", "write_payload",
                   "payload_bits", "quantize_unit", "quantize_unit_fast", "quantize_unit_rounded",
                   "magnitudes",
                   "mdct_kernel"}

_REPORT = """
import sys, warnings
import pacodec
from pacodec._jit import dispatchers
if sys.argv[1] == "encode":
    import soundfile as sf
    x, fs = sf.read(sys.argv[2])
    data = pacodec.encode(x, fs, bitrate=96)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pacodec.decode(data)
else:
    pacodec.decode(open(sys.argv[2], "rb").read())
for d in dispatchers:
    if d.signatures:
        print(d.py_func.__module__, d.py_func.__name__, len(d.signatures))
"""


def _compiled_kernels(tmp_path, *args):
    """(module, name, signature count) of every kernel a fresh process compiled or loaded
    through numba (with build-time kernels installed, a decode would otherwise load them
    without numba: ``tests/test_nfload.py`` checks what that loads)."""
    import os
    import subprocess
    import sys
    script = tmp_path / "report.py"
    script.write_text(_REPORT)
    out = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                         check=True, env=dict(os.environ, PACODEC_NFLOAD="off")).stdout
    return [(m, n, int(k)) for m, n, k in (line.split() for line in out.splitlines())]


def test_constant_arguments_do_not_make_a_signature_each():
    """Inside a kernel ``get_bits(buf, st, 7)`` passes a literal type; the callee is compiled
    for the plain type, not once per distinct constant."""
    import numba
    from numba.core import types
    from pacodec.huffman import get_symbol, put_symbol

    @numba.njit(cache=False)
    def caller(wbuf, rbuf, st, codes, lengths, count, first, offset, symbols, lut):
        put_bits(wbuf, st, 1, 1)
        put_bits(wbuf, st, 5, 3)
        put_bits(wbuf, st, 0, 9)
        put_symbol(wbuf, st, codes, lengths, 0, 1)
        put_symbol(wbuf, st, codes, lengths, 3, 2)
        st[0] = 0
        return (get_bits(rbuf, st, 1) + get_bits(rbuf, st, 3) + get_bits(rbuf, st, 11)
                + get_symbol(rbuf, st, count, first, offset, symbols, lut, 0)
                + get_symbol(rbuf, st, count, first, offset, symbols, lut, 5))

    from pacodec.tables import load_codebooks
    b = load_codebooks()
    kernels = (put_bits, get_bits, put_symbol, get_symbol)
    before = [len(k.signatures) for k in kernels]
    wbuf = np.zeros(16, np.uint8)
    caller(wbuf, np.frombuffer(wbuf.tobytes(), np.uint8), writer_state(), b.codes, b.lengths,
           b.count, b.first, b.offset, b.symbols, b.lut)
    for k, n in zip(kernels, before):    # (other tests may have compiled other array types)
        assert len(k.signatures) <= n + 1, (k.py_func.__name__, k.signatures)
        assert not any(isinstance(t, types.Literal) for sig in k.signatures for t in sig)


def test_an_encode_and_decode_load_one_signature_per_kernel(tmp_path):
    """A fresh process that encodes and decodes compiles (or loads from the cache) each kernel
    it calls from Python once."""
    import soundfile as sf
    from conftest import load_clip
    x, fs = load_clip("amen_drums.flac", 0.5)        # has attacks: short windows run too
    sf.write(tmp_path / "x.wav", x, fs)
    got = _compiled_kernels(tmp_path, "encode", str(tmp_path / "x.wav"))
    names = {n for _, n, _ in got}
    assert {"decode_payload", "search_offset", "synth", "write_payload"} <= names
    assert [g for g in got if g[2] != 1] == []


def test_decoding_compiles_no_encoder_kernel(tmp_path):
    import pacodec
    from conftest import load_clip
    x, fs = load_clip("amen_drums.flac", 0.5)
    (tmp_path / "x.pac").write_bytes(pacodec.encode(x, fs, bitrate=96))
    got = _compiled_kernels(tmp_path, "decode", str(tmp_path / "x.pac"))
    assert {"decode_payload", "synth"} <= {n for _, n, _ in got}
    assert [g for g in got if g[0] in ENCODER_MODULES or g[1] in ENCODER_KERNELS] == []


def test_crc_length_powers_equal_the_polynomial_product():
    """The import-time table x^(8L) mod G (computed with the CRC table) equals repeated
    multiplication by x^8 with ``_mulmod``."""
    from pacodec import container as ct
    mulmod = ct._mulmod.py_func
    r = 1
    for n, v in enumerate(ct._CRC_XPOW[:3000]):
        assert v == r, n
        r = mulmod(r, 0x100)
    assert ct._CRC_XPOW[-1] == ct._crc_xpow()[-1]


def _short_order_loop(gflags, es, ns, ub, perm):
    """The coding order of FORMAT.md §5.2 written as loops (what the kernel was)."""
    pos = u = 0
    for w in range(8):
        if w > 0 and ((gflags >> (7 - w)) & 1) == 0:
            continue
        glen = 1
        while w + glen < 8 and ((gflags >> (7 - w - glen)) & 1) == 0:
            glen += 1
        for b in range(len(es) - 1):
            ub[u] = pos
            for j in range(w, w + glen):
                for k in range(es[b], es[b + 1]):
                    perm[pos] = j * ns + k
                    pos += 1
            u += 1
    ub[u:] = pos


@pytest.mark.parametrize("rate,ns", [(8000, 32), (44100, 128), (48000, 32), (96000, 128)])
def test_short_frame_coding_order_equals_the_loop_definition(rate, ns):
    from pacodec import payload as pld
    from pacodec.tables import band_edges
    es = band_edges(rate, ns)
    nu = 8 * (len(es) - 1) + 1
    for g in range(128):
        want_ub, got_ub = np.zeros(nu, np.int64), np.zeros(nu, np.int64)
        want_p, got_p = np.zeros(8 * ns, np.int64), np.zeros(8 * ns, np.int64)
        _short_order_loop(g, es, ns, want_ub, want_p)
        pld._short_order(g, es, ns, got_ub, got_p)
        np.testing.assert_array_equal(got_ub, want_ub)
        np.testing.assert_array_equal(got_p, want_p)


def test_editing_a_called_module_recompiles_its_callers(tmp_path):
    """numba would keep ``huffman.put_symbol``'s cached machine code after ``bitio.put_bits``
    (which it calls) changed: its staleness check looks at the kernel's own file only.
    pacodec stamps every cache entry with a fingerprint of the whole package (_jit.py)."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import pacodec
    pkg = tmp_path / "pkg"
    shutil.copytree(Path(pacodec.__file__).parent, pkg / "pacodec",
                    ignore=shutil.ignore_patterns("__pycache__", "*.flac"))
    script = ("import sys, numpy as np\n"
              f"sys.path.insert(0, {str(pkg)!r})\n"
              "from pacodec.huffman import put_symbol\n"
              "buf = np.zeros(8, np.uint8); st = np.zeros(2, np.int64)\n"
              "codes = np.zeros((1, 4), np.int64); lengths = np.zeros((1, 4), np.int64)\n"
              "codes[0, 2] = 0b1010; lengths[0, 2] = 4\n"
              "put_symbol(buf, st, codes, lengths, 0, 2)\n"
              "print(int(buf[0]), int(st[0]))\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("NUMBA_DISABLE_JIT", None)

    def run():
        out = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                             capture_output=True, text=True, check=True)
        return out.stdout.split()

    assert run() == ["160", "4"]                        # 1010 then zeros; compiled and cached
    assert run() == ["160", "4"]                        # from the cache
    bitio = pkg / "pacodec" / "bitio.py"
    text = bitio.read_text()
    old = "chunk = (value >> (left - take)) & ((1 << take) - 1)"
    assert old in text
    bitio.write_text(text.replace(old, "chunk = (1 << take) - 1"))      # put_bits writes ones
    assert run() == ["240", "4"]                        # put_symbol recompiled with the new put_bits


def test_noise_seed_kernel_equals_noise_seed():
    """The kernel form of the noise seed (int64 arithmetic), compiled and as Python, equals the
    normative formula of FORMAT.md §8.4, on both sides of the 32-bit wrap and where the product
    part is 0 (seed 1)."""
    from pacodec.decoder import NOISE_SEED_ADD, NOISE_SEED_MUL, noise_seed, noise_seed_kernel
    zero = (-NOISE_SEED_ADD * pow(NOISE_SEED_MUL, -1, 1 << 32)) % (1 << 32)
    idx = [0, 1, 2, 255, 256, 65535, 65536, 12345678, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
           2**32 + 7, 2**40 + 3, zero, zero + 2**32]
    normative = [((i % 2**32) * 0x9E3779B9 + 0x6A09E667) % 2**32 or 1 for i in idx]
    assert noise_seed(zero) == 1
    assert [noise_seed(i) for i in idx] == normative
    for k in _both(noise_seed_kernel):
        assert [int(k(i)) for i in idx] == normative


def test_step_tables_are_the_kernels_steps():
    """The uniform quantizer and the normative dequantizer look the step and the power law's
    |k|^(4/3) up (quantize.STEPS, quantize.DEQ43, computed with CPython's pow): the same bits as
    a kernel's pow (step(sf) and ``k ** (4.0/3.0)`` compiled here), and the dequantizer's
    ``delta * pow(k, 4.0/3.0)`` product unchanged."""
    from pacodec._jit import njit
    from pacodec.quantize import DEQ43, QUANT_POWER, QUANT_UNIFORM, STEPS, step

    @njit
    def by_pow(steps, p43, prod, sf):
        for s in range(steps.shape[0]):
            steps[s] = step(s)
        for k in range(p43.shape[0]):
            p43[k] = k ** (4.0 / 3.0)
            prod[k] = step(sf) * k ** (4.0 / 3.0)

    steps, p43, prod = np.zeros(256), np.zeros(8192), np.zeros(8192)
    for k in _both(by_pow):
        k(steps, p43, prod, 117)
        assert np.array_equal(steps.view(np.int64), STEPS.view(np.int64))
        assert np.array_equal(p43.view(np.int64), DEQ43.view(np.int64))
    q = np.ones(1, dtype=np.int64)
    out = np.zeros(1)
    for sf in range(256):
        dequantize_unit(q, 0, 1, sf, QUANT_UNIFORM, 255.0, out)
        assert out[0] == STEPS[sf], sf
    q = -np.arange(8192, dtype=np.int64)
    out = np.zeros(8192)
    dequantize_unit(q, 0, 8192, 117, QUANT_POWER, 255.0, out)
    assert np.array_equal((-out).view(np.int64)[1:], prod.view(np.int64)[1:])


def _glibc_hypot():
    """Whether this C library's ``hypot`` is glibc's of 2.35 on, on x86-64: what
    :func:`pacodec.psychoacoustic.hypot` reproduces."""
    import platform
    lib, version = platform.libc_ver()
    try:
        major, minor = (int(v) for v in version.split(".")[:2])
    except ValueError:
        return False
    return lib == "glibc" and (major, minor) >= (2, 35) and platform.machine() == "x86_64"


@pytest.mark.skipif(not _glibc_hypot(), reason="reproduces glibc 2.35+'s hypot on x86-64")
def test_hypot_is_the_c_librarys_bits(rng):
    """The psychoacoustic model's inline ``hypot`` gives the bits of the C library's (which
    numba's ``abs(complex)`` calls and numpy's ``np.hypot`` is), compiled and as Python: random
    pairs over the whole exponent range, nearly equal pairs (the kernel's two corrections),
    pairs far apart (its early returns), zeros, subnormals, infinities and NaN."""
    from pacodec._jit import njit
    from pacodec.psychoacoustic import hypot

    @njit
    def many(x, y, out):
        for i in range(x.shape[0]):
            out[i] = hypot(x[i], y[i])

    n = 200_000
    with np.errstate(over="ignore"):
        x = np.concatenate([rng.standard_normal(n),
                            rng.standard_normal(n) * 2.0 ** rng.integers(-1074, 1024, n),
                            rng.random(n) * 2.0 ** rng.integers(-1074, 1023, n)])
        y = np.concatenate([x[:n] * (1.0 + rng.standard_normal(n) * 2.0 ** rng.integers(-60, 5, n)),
                            rng.standard_normal(n) * 2.0 ** rng.integers(-1074, 1024, n),
                            x[2 * n:] * 2.0 ** rng.integers(-60, 60, n)])
    special = np.array([0.0, -0.0, 5e-324, 2.0 ** -459, 2.0 ** -458, 1.0, 2.0 ** 511, 2.0 ** 512,
                        1.7976931348623157e308, np.inf, -np.inf, np.nan])
    sx, sy = np.meshgrid(special, special)
    x = np.concatenate([x, sx.ravel()])
    y = np.concatenate([y, sy.ravel()])
    with np.errstate(over="ignore", invalid="ignore"):
        ref = np.hypot(x, y)
    for k in _both(many):
        m = x.size if k is many else 20_000             # as Python: a sample, and the specials
        idx = np.r_[0:m // 3, n:n + m // 3, 2 * n:2 * n + m // 3, 3 * n:x.size]
        out = np.zeros(idx.size)
        k(x[idx], y[idx], out)
        assert np.array_equal(out.view(np.int64), ref[idx].view(np.int64))


def test_predicted_tonality_is_its_bins_one_by_one(rng):
    """predicted_tonality runs most bins through a branch-free loop (two at a time) and the rest
    through the plain per-bin code (psychoacoustic._bin): its tonalities and state equal, bit for
    bit, what _bin gives bin by bin -- compiled and as Python, over frames of music-like
    spectra with silent, tiny, huge and non-finite bins among them."""
    from pacodec._jit import njit
    from pacodec.psychoacoustic import TonalScratch, _bin, predicted_tonality

    @njit
    def reference(X, Y, r1, r2, p1, p2, npred, edges, out):
        for b in range(edges.shape[0] - 1):
            num = 0.0
            den = 0.0
            for k in range(edges[b], edges[b + 1]):
                r, u, ec, e = _bin(X[k], Y[k], r1[k], r2[k], p1[k], p2[k])
                if npred >= 2:
                    num += ec
                    den += e
                r2[k] = r1[k]
                r1[k] = r
                p2[k] = p1[k]
                p1[k] = u
            t = 0.0
            if npred >= 2 and den > 1e-30 and num > 0.0:
                t = -0.299 - 0.43 * np.log(num / den)
            out[b] = min(1.0, max(0.0, t))

    n = 256
    edges = band_model(44100, n).edges
    nb = len(edges) - 1
    frames = rng.standard_normal((6, 2, n)) * np.geomspace(1.0, 1e-4, n)
    frames[2, :, :40] = 0.0                                 # silence
    frames[3, :, 40:80] *= 1e-150                           # below glibc's unscaled range
    frames[4, 0, 80:90] = 1e160                             # above it
    frames[4, 1, 90:95] = 0.0                               # one part zero: |x| exactly
    frames[5, 0, 100] = np.inf
    frames[5, 1, 101] = np.nan
    for k in _both(predicted_tonality):
        st = (np.zeros(n), np.zeros(n), np.ones(n), np.zeros(n), np.ones(n), np.zeros(n))
        ref = (np.zeros(n), np.zeros(n), np.ones(n, np.complex128), np.ones(n, np.complex128))
        scr = tuple(TonalScratch(*(np.zeros(n) for _ in range(5)), np.zeros(n, dtype=np.bool_)))
        for i, (X, Y) in enumerate(frames):
            out, want = np.zeros(nb), np.zeros(nb)
            with np.errstate(all="ignore"):
                k(X, Y, st, i, edges, out, scr)
                reference(X, Y, *ref, i, edges, want)
            assert np.array_equal(out.view(np.int64), want.view(np.int64)), i
            assert np.array_equal(st[0].view(np.int64), ref[0].view(np.int64))
            assert np.array_equal((st[2] + 1j * st[3]).view(np.int64), ref[2].view(np.int64))
            assert np.array_equal((st[4] + 1j * st[5]).view(np.int64), ref[3].view(np.int64))
