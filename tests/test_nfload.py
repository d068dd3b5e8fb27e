"""The build-time kernels run without numba (``pacodec/_nfload.py``, ``pacodec/_jit.Kernel``):
a decode with them imports no numba module and gives the same samples, warnings and errors as
numba's path (the same machine code loaded by numba) and the JIT, for generated and damaged
streams; so does an encode (its kernels take namedtuples), to the same bytes as the JIT;
arguments of any other type go to numba instead of into the machine code; a kernel's exception
is numba's; a stale or broken index falls back to numba.

The kernels are the installed ones, else built once per session (``conftest.kernels``).
"""
import json
import shutil
import subprocess
import sys
from collections import namedtuple

import numpy as np
import pytest
from conftest import KERNELS_TIMEOUT, package_env

import pacodec
from pacodec import _jit, _nfload

# decodes every stream named on the command line; prints one JSON line per stream and, last,
# the numba modules the process imported
DECODE = r"""
import json, sys, warnings
import numpy as np
import pacodec
out = []
for i, path in enumerate(sys.argv[2:]):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            y, fs = pacodec.decode(open(path, "rb").read())
            np.save(f"{sys.argv[1]}-{i}.npy", y)
            err = None
        except Exception as e:
            err = f"{type(e).__name__}: {e}"
    print(json.dumps({"error": err, "warnings": [f"{x.category.__name__}: {x.message}"
                                                 for x in w]}))
print(json.dumps(sorted(m for m in sys.modules if m == "numba" or m.startswith("numba."))))
from pacodec import _jit
print(json.dumps(sorted(f"{k.__module__}.{k.__qualname__}" for k in _jit._kernels if k._table)))
"""


def _streams(tmp_path):
    rng = np.random.default_rng(23)
    t = np.arange(44100) / 44100
    x = 0.3 * np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], 1)
    x += rng.normal(0, 0.01, x.shape)
    x[30000:30064] += 0.5                                       # short windows too
    stereo = pacodec.encode(x, 44100)
    mono = pacodec.encode(rng.normal(0, 0.1, (24000, 1)), 48000, bitrate=64)
    corrupted = bytearray(stereo)
    for k in range(200, len(corrupted), 997):                   # a byte every ~1 kB
        corrupted[k] ^= 0x5A
    streams = {"stereo": stereo, "mono": mono, "truncated": stereo[:len(stereo) // 2 + 3],
               "corrupted": bytes(corrupted), "garbage first": bytes(rng.integers(0, 256, 3000,
                                                                               np.uint8)) + mono,
               "not a stream": bytes(range(256)) * 4}
    paths = []
    for name, data in streams.items():
        p = tmp_path / f"{name.replace(' ', '_')}.pac"
        p.write_bytes(data)
        paths.append(str(p))
    return paths


def _decode_all(tmp_path, tag, paths, env):
    r = subprocess.run([sys.executable, "-c", DECODE, str(tmp_path / tag), *paths], env=env,
                       cwd=tmp_path, capture_output=True, text=True, timeout=KERNELS_TIMEOUT)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    results = [json.loads(s) for s in lines[:-2]]
    for i, res in enumerate(results):
        res["y"] = np.load(tmp_path / f"{tag}-{i}.npy") if res["error"] is None else None
    return results, json.loads(lines[-2]) + json.loads(lines[-1])


ENCODER_MODULES = {"pacodec.encoder", "pacodec.allocation", "pacodec.ratecontrol",
                   "pacodec.psychoacoustic", "pacodec.transient"}


def test_decode_without_numba_equals_numba_for_good_and_damaged_streams(tmp_path, kernels):
    paths = _streams(tmp_path)
    free, free_mods = _decode_all(tmp_path, "free", paths, package_env(PACODEC_KERNELS=kernels))
    # not even numba's C extensions; the decoder's kernels ran from the build, no encoder kernel
    assert not [m for m in free_mods if m.split(".")[0] == "numba"]
    assert {"pacodec.decoder.decode_run", "pacodec.decoder.synth"} <= set(free_mods)
    assert not [m for m in free_mods if m.rsplit(".", 1)[0] in ENCODER_MODULES]
    loaded, mods = _decode_all(tmp_path, "numba", paths,
                               package_env(PACODEC_KERNELS=kernels, PACODEC_NFLOAD="off"))
    assert "numba" in mods and not [m for m in mods if m.startswith("pacodec.")]
    jit, _ = _decode_all(tmp_path, "jit", paths,
                         package_env(PACODEC_KERNELS="off", NUMBA_CACHE_DIR=str(tmp_path / "c")))
    assert free[0]["error"] is None and free[-1]["error"] is not None
    assert any(r["warnings"] for r in free)                     # the damaged ones warn
    for a, b, c in zip(free, loaded, jit):
        assert a["error"] == b["error"] == c["error"]
        assert a["warnings"] == b["warnings"] == c["warnings"]
        if a["y"] is not None:
            np.testing.assert_array_equal(a["y"], b["y"])       # bit-identical
            np.testing.assert_array_equal(a["y"], c["y"])


def test_the_decode_command_imports_no_numba(tmp_path, kernels):
    t = np.arange(8000) / 8000
    (tmp_path / "a.pac").write_bytes(pacodec.encode(0.3 * np.sin(2 * np.pi * 440 * t)[:, None],
                                                    8000, bitrate=24))
    code = ("import sys\n"
            "sys.argv = ['pacodec', 'decode', 'a.pac', '-o', 'a.wav']\n"
            "from pacodec.cli import main\n"
            "rc = main()\n"
            "print(rc, ' '.join(sorted(sys.modules)))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                       env=package_env(PACODEC_KERNELS=kernels), capture_output=True, text=True,
                       timeout=KERNELS_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert "compiling" not in r.stderr                          # no cold-cache note either
    rc, mods = r.stdout.split(None, 1)
    assert rc == "0"
    assert {m.split(".")[0] for m in mods.split()} & {"numba", "scipy"} == set()


# encodes generated signals every way the encoder is reached (pacodec.encode: VBR, CBR, ABR;
# pacodec.Encoder in blocks), writes each stream to argv[1]-<case>.pac; prints the numba modules
# the process imported, then the kernels that ran from the build without numba
ENCODE = r"""
import json, sys
import numpy as np
import pacodec
rng = np.random.default_rng(29)
t = np.arange(44100) / 44100
stereo = 0.3 * np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], 1)
stereo += rng.normal(0, 0.01, stereo.shape)
stereo[30000:30064] += 0.5                                     # short windows
mono = rng.normal(0, 0.1, (24000, 1)) * np.linspace(0, 1, 24000)[:, None]
mono[12000:12032] += 0.7
out = {"stereo vbr": pacodec.encode(stereo, 44100),
       "stereo cbr": pacodec.encode(stereo, 44100, bitrate=128),
       "stereo abr": pacodec.encode(stereo, 44100, abr=96),
       "mono vbr": pacodec.encode(mono, 48000, quality=4),
       "mono cbr": pacodec.encode(mono, 48000, bitrate=64)}
enc = pacodec.Encoder(44100, 2, bitrate=96)
parts = [p for i in range(0, len(stereo), 4096) for p in enc.encode(stereo[i:i + 4096])]
out["stereo Encoder"] = enc.header() + b"".join(parts + enc.flush())
for name, data in out.items():
    open(f"{sys.argv[1]}-{name.replace(' ', '_')}.pac", "wb").write(data)
print(json.dumps(sorted(m for m in sys.modules if m == "numba" or m.startswith("numba."))))
from pacodec import _jit
print(json.dumps(sorted(f"{k.__module__}.{k.__qualname__}" for k in _jit._kernels if k._table)))
"""


def _encode_all(tmp_path, tag, env):
    r = subprocess.run([sys.executable, "-c", ENCODE, str(tmp_path / tag)], env=env,
                       cwd=tmp_path, capture_output=True, text=True, timeout=KERNELS_TIMEOUT)
    assert r.returncode == 0, r.stderr
    mods, free = map(json.loads, r.stdout.splitlines()[-2:])
    streams = {p.name.split("-", 1)[1]: p.read_bytes() for p in tmp_path.glob(f"{tag}-*.pac")}
    return streams, mods, free


def test_an_encode_without_numba_equals_the_jit_path(tmp_path, kernels):
    free, mods, loaded = _encode_all(tmp_path, "free", package_env(PACODEC_KERNELS=kernels))
    assert not [m for m in mods if m.split(".")[0] == "numba"]
    # the rate loop's kernels, which take the allocation's namedtuples, ran from the build
    assert {"pacodec.ratecontrol.search_offset", "pacodec.encoder.analyse_long"} <= set(loaded)
    # the JIT path: numba's own cache or a compile (PACODEC_KERNELS=off: no build-time kernels)
    jit, jit_mods, _ = _encode_all(tmp_path, "jit", package_env(PACODEC_KERNELS="off"))
    assert "numba" in jit_mods
    assert len(free) == 6 and free.keys() == jit.keys()
    for name in free:
        assert free[name] == jit[name], name                      # byte-identical streams


def test_the_encode_command_imports_no_numba(tmp_path, kernels):
    import soundfile as sf
    t = np.arange(22050) / 44100
    x = 0.3 * np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 550 * t)], 1)
    sf.write(tmp_path / "a.wav", x, 44100, subtype="PCM_16")
    code = ("import sys\n"
            "sys.argv = ['pacodec', 'encode', '-b', '128', 'a.wav', '-o', 'a.pac']\n"
            "from pacodec.cli import main\n"
            "rc = main()\n"
            "import os\n"
            "print(os.environ.get('OPENBLAS_NUM_THREADS'), rc, ' '.join(sorted(sys.modules)))\n")
    env = package_env(PACODEC_KERNELS=kernels)
    env.pop("OPENBLAS_NUM_THREADS", None)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=KERNELS_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert "compiling" not in r.stderr                          # no cold-cache note either
    threads, rc, mods = r.stdout.split(None, 2)
    assert rc == "0"
    assert threads == "1"                 # numpy's OpenBLAS started with one thread (cli.py)
    assert {m.split(".")[0] for m in mods.split()} & {"numba", "scipy"} == set()
    y, fs = pacodec.decode((tmp_path / "a.pac").read_bytes())
    assert fs == 44100 and y.shape == x.shape


# calls kernels with arguments of the stored signatures, then of others; prints what it got and
# whether numba was imported after each step
ARGS = r"""
import json, sys
import numpy as np
from pacodec import _jit
from pacodec.container import crc_prefix, _CRC_TABLE
assert type(crc_prefix) is _jit.Kernel
def crc(buf, P):
    crc_prefix(buf, 0, len(buf), _CRC_TABLE, P)
    return [int(v) for v in P]
buf = np.frombuffer(b"pacodec numba-free loader", np.uint8).copy()
P = np.zeros(len(buf) + 1, np.int32)
steps = [("stored", crc(buf, P), "numba" in sys.modules)]
steps.append(("float64", crc(buf.astype(np.float64), P), "numba" in sys.modules))
steps.append(("read-only", crc(np.frombuffer(bytes(buf), np.uint8), P), True))
steps.append(("strided", crc(np.repeat(buf, 2)[::2], P), True))
crc_prefix(buf, 0, len(buf), table=_CRC_TABLE, P=P)                   # keywords
steps.append(("keywords", [int(v) for v in P], True))
print(json.dumps(steps))
"""


def test_other_argument_types_go_to_numba_not_into_the_machine_code(tmp_path, kernels):
    r = subprocess.run([sys.executable, "-c", ARGS], cwd=tmp_path,
                       env=package_env(PACODEC_KERNELS=kernels,
                                       NUMBA_CACHE_DIR=str(tmp_path / "c")),
                       capture_output=True, text=True, timeout=KERNELS_TIMEOUT)
    assert r.returncode == 0, r.stderr
    steps = json.loads(r.stdout)
    assert steps[0][2] is False                                 # the stored signature: no numba
    assert steps[1][2] is True                                  # float64 bytes: numba compiled
    ref = steps[0][1]
    assert all(s[1] == ref for s in steps[1:]), steps           # the same CRCs every way


RAISE = r"""
import sys
import numpy as np
from pacodec.quantize import quantize_unit, QUANT_MULAW
q = np.zeros(1, np.int64)
print(type(quantize_unit).__name__, "numba" in sys.modules)
try:
    quantize_unit(np.ones(1), 0, 1, 60, QUANT_MULAW, 0.0, q)          # mu = 0: divides by 0
except Exception as e:
    print(f"{type(e).__name__}: {e}")
"""


def test_an_exception_in_a_kernel_is_numbas(tmp_path, kernels):
    def run(**kw):
        return subprocess.run([sys.executable, "-c", RAISE], cwd=tmp_path,
                              env=package_env(PACODEC_KERNELS=kernels, **kw), capture_output=True,
                              text=True, timeout=KERNELS_TIMEOUT, check=True).stdout.splitlines()
    free, numba = run(), run(PACODEC_NFLOAD="off")
    assert free[0] == "Kernel False" and numba[0] == "CPUDispatcher True"
    assert free[1] == numba[1] and free[1].startswith("ZeroDivisionError")


def test_a_stale_or_broken_index_or_object_falls_back_to_numba(tmp_path, kernels, monkeypatch):
    stale = tmp_path / "stale"
    shutil.copytree(kernels, stale)
    index = stale / _nfload.SUBDIR / _nfload.INDEX
    data = json.loads(index.read_text())
    monkeypatch.setattr(_nfload, "_index", {})
    assert _nfload.entries(str(stale), _jit.package_fingerprint()) is not None
    data["stamp"]["numba"] = "0.0"
    index.write_text(json.dumps(data))
    _nfload._index.clear()
    # another numba: not loaded
    assert _nfload.entries(str(stale), _jit.package_fingerprint()) is None
    # a symbol this process lacks: the kernel is refused before MCJIT would abort on it
    data = json.loads(open(f"{kernels}/{_nfload.SUBDIR}/{_nfload.INDEX}").read())
    for entry in data["kernels"]["pacodec.decoder.decode_run"]:
        entry["undefined"].append("pacodec_no_such_symbol")
    index.write_text(json.dumps(data))
    # an object file that is not the one the build wrote: refused too
    for entry in data["kernels"]["pacodec.container._scan"]:
        obj = stale / _nfload.SUBDIR / entry["object"]
        damaged = bytearray(obj.read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        obj.write_bytes(bytes(damaged))
    paths = _streams(tmp_path)[:1]
    broken, mods = _decode_all(tmp_path, "broken", paths, package_env(PACODEC_KERNELS=str(stale)))
    assert "numba" in mods and broken[0]["error"] is None
    np.testing.assert_array_equal(broken[0]["y"], pacodec.decode(open(paths[0], "rb").read())[0])


Bundle = namedtuple("Bundle", "a n x")        # a kernel's named bundle: mixed, homogeneous
Pair = namedtuple("Pair", "a b")
Other = namedtuple("Other", "a n x")         # the same fields, another class


class Sub(tuple):
    """A tuple subclass that is no namedtuple: numba types it as a plain tuple."""


@pytest.mark.parametrize("value", [
    Bundle(np.zeros(2), 3, 1.5), Pair(np.zeros(2), np.zeros(2)),
    Bundle(Pair(np.zeros(1, np.int64), 2), (1, 2.0), np.zeros((2, 2), order="F")),
    np.zeros(3), np.zeros((2, 3), np.float32), np.zeros((2, 3), order="F"), np.zeros((4, 4))[:, 1],
    np.frombuffer(b"abc", np.uint8), np.zeros(2, np.complex128), np.zeros(2, bool), 3, -3, 2 ** 62,
    1.5, True, np.float32(1), np.int32(7), np.uint8(1), np.bool_(False), np.complex128(1j),
    np.zeros(2, np.dtype("q")), (np.zeros(2), 1, 2.0), (np.zeros(2), np.zeros(2)),
    ((1, 2), np.zeros((1, 1), np.int64))])
def test_typekey_is_numbas_typeof(value):
    from numba import typeof
    assert _nfload.typekey(value) == _nfload._key(_nfload._describe(typeof(value)))


@pytest.mark.parametrize("value, like", [
    (2 ** 63, 1), (-2 ** 63, 1), (np.zeros(2, ">f8"), np.zeros(2)),
    (np.frombuffer(b"\0" * 17, np.float64, 2, 1), np.zeros(2)),           # unaligned
    (np.zeros(3).view(np.recarray), np.zeros(3)), (np.ma.zeros(2), np.zeros(2)),
    ([1, 2], (1, 2)), (None, 1), ("s", 1), (np.zeros(2, "M8[s]"), np.zeros(2, np.int64)),
    (np.zeros(2, [("a", "f8")]), np.zeros(2)), ((1, None), (1, 2)), (1.0, 1), (1, True),
    ((np.zeros(2), 3, 1.5), Bundle(np.zeros(2), 3, 1.5)),
    (Other(np.zeros(2), 3, 1.5), Bundle(np.zeros(2), 3, 1.5)),
    (Bundle(np.zeros(2), 3, None), Bundle(np.zeros(2), 3, 1.5)),
    (Bundle(np.zeros(2), 3.0, 1.5), Bundle(np.zeros(2), 3, 1.5)), (Sub((1, 2)), (1, 2))])
def test_typekey_leaves_other_values_to_numba(value, like):
    """Never the key of a signature the index can hold (``like``'s): such a value goes to numba."""
    from numba import typeof
    assert _nfload.typekey(like) == _nfload._key(_nfload._describe(typeof(like)))
    assert _nfload.typekey(value) != _nfload.typekey(like)


def test_a_namedtuple_class_not_as_the_build_had_it_is_refused():
    """Another class of that name, other fields, a module not there: the signature is not
    loaded (numba's path); a class defined in a function is not written at all."""
    from numba import typeof
    desc = _nfload._describe(typeof(Bundle(np.zeros(2), 3, 1.5)))
    assert desc[:4] == ["n", __name__, "Bundle", ["a", "n", "x"]]
    assert _nfload._key(desc) == _nfload.typekey(Bundle(np.zeros(2), 3, 1.5))
    for i, value in ((1, "no_such_module"), (1, "pacodec.no_such_module"), (2, "Nothing"),
                     (2, "Sub"), (3, ["a", "n", "y"])):
        assert _nfload._key(desc[:i] + [value] + desc[i + 1:]) is None
    Local = namedtuple("Local", "a")
    assert _nfload._describe(typeof(Local(1))) is None
