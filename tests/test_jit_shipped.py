"""The kernels compiled into the wheel (``pacodec/_aot.py``, loaded by ``pacodec/_jit.py``):
a fresh install encodes and decodes without compiling, to the same bytes and samples as the JIT
path (which this file also runs, so CI keeps both correct); they are refused when the package's
sources differ from the ones they were built from; ``NUMBA_DISABLE_JIT=1`` ignores them.  The
"shipped" runs use the loader without numba where it applies (``tests/test_nfload.py`` compares
it with numba's loading of the same kernels).

Installed from a wheel, the package's own ``_kernels`` are tested; in a source checkout (none
there) they are built into a temporary directory first (~40 s, once per session:
``conftest.kernels``).
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import KERNELS_TIMEOUT as TIMEOUT
from conftest import package_env as _env

import pacodec
from pacodec import _jit


def _cached_files(cache):
    return sorted(p.name for p in Path(cache).rglob("*.nbc"))


def _encode_decode(tmp_path, tag, env):
    pac, wav = tmp_path / f"{tag}.pac", tmp_path / f"{tag}.wav"
    for args in (["encode", "--quiet", tmp_path / "in.wav", "-o", pac],
                 ["decode", "--quiet", pac, "-o", wav]):
        r = subprocess.run([sys.executable, "-m", "pacodec", *map(str, args)], env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert "compiling" not in r.stderr or tag == "jit"
    return pac.read_bytes(), wav.read_bytes()


def test_a_fresh_install_compiles_nothing_and_equals_the_jit_path(tmp_path, kernels):
    t = np.arange(44100) / 44100
    x = 0.3 * np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], 1)
    x += np.random.default_rng(3).normal(0, 0.01, x.shape)
    x[30000:30064] += 0.5                                       # short windows too
    sf.write(tmp_path / "in.wav", x, 44100, subtype="PCM_16")
    shipped = _encode_decode(tmp_path, "shipped", _env(PACODEC_KERNELS=kernels,
                                                       NUMBA_CACHE_DIR=str(tmp_path / "a")))
    assert _cached_files(tmp_path / "a") == []                 # nothing was compiled
    jit = _encode_decode(tmp_path, "jit", _env(PACODEC_KERNELS="off",
                                               NUMBA_CACHE_DIR=str(tmp_path / "b")))
    assert _cached_files(tmp_path / "b")                       # the JIT path compiled
    assert shipped == jit                                      # bit-identical .pac and .wav


def test_kernels_built_from_other_sources_or_for_another_target_are_refused(kernels,
                                                                             monkeypatch):
    from pacodec.decoder import decode_run
    monkeypatch.setenv("PACODEC_KERNELS", kernels)
    assert _jit.shipped_kernels(decode_run) >= 1
    monkeypatch.setattr(_jit, "_fingerprint", ("pacodec", "0" * 32))   # other sources
    assert _jit.shipped_kernels(decode_run) == 0
    monkeypatch.undo()
    monkeypatch.setenv("PACODEC_KERNELS", kernels)
    codegen = type(decode_run.targetctx.codegen())
    monkeypatch.setattr(codegen, "magic_tuple", lambda self: ("riscv64-unknown-linux-gnu", "", ""))
    assert _jit.shipped_kernels(decode_run) == 0
    monkeypatch.setenv("PACODEC_KERNELS", "off")
    assert _jit.shipped_kernels(decode_run) == 0


def test_disable_jit_runs_python_with_the_kernels_present(tmp_path, kernels):
    data = pacodec.encode(np.random.default_rng(4).normal(0, 0.1, (4000, 1)), 8000, bitrate=24)
    (tmp_path / "a.pac").write_bytes(data)
    code = ("import sys, numpy as np, pacodec\n"
            "from pacodec.decoder import decode_run\n"
            "assert not hasattr(decode_run, 'py_func')\n"
            "y, fs = pacodec.decode(open(sys.argv[1], 'rb').read())\n"
            "np.save(sys.argv[2], y)\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.pac"), str(tmp_path / "y.npy")],
                   env=_env(PACODEC_KERNELS=kernels, NUMBA_DISABLE_JIT="1"), check=True,
                   cwd=tmp_path, timeout=TIMEOUT)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), pacodec.decode(data)[0])
