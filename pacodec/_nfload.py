"""Run the kernels compiled at build time without importing numba.

``import numba`` costs a decode process ~0.13-0.15 CPU-s and ~65 MB before any pacodec code
runs.  numba's cache entry for a kernel is one object file holding the kernel and its CPython
wrapper (``PyObject *wrapper(closure, args, kwargs)``, the function behind numba's own callable),
and everything that object needs from numba is in two of numba's C extensions, loadable by file
path without running ``numba/__init__.py``: ``_helperlib`` (the helper functions the code calls:
array unboxing, raising) and ``_dynfunc`` (the ``Environment`` object the wrapper reads and
``make_function``, which makes a Python callable of an address and an environment).  So:

* **Build time** (:func:`export`, called by :func:`pacodec._jit.write_shipped` in
  ``python -m pacodec._aot``): beside numba's index/data files in ``pacodec/_kernels``, every
  signature whose arguments are plain arrays, numbers and tuples or namedtuples of those (the
  kernels' named bundles, e.g. :data:`pacodec.allocation.FrameUnits`: numba's wrapper unboxes a
  namedtuple as the plain tuple of its fields, so the class only names the type and is stored
  by module, qualified name and fields), whose environments hold no constants and whose object
  is ELF gets its object file and an entry in ``nfload/index.json``: wrapper symbol, argument
  types (dtype, ndim, layout, read-only), the environments to set, the object's undefined
  symbols; the index is stamped with the numba, llvmlite and Python versions, the target
  triple, ``_dynfunc``'s struct offsets and the package fingerprint.
* **Run time** (:func:`table`): if the stamp matches, each kernel's objects are added to an
  MCJIT engine of llvmlite (after registering numba's helper symbols exactly as numba does, and
  checking that every undefined symbol resolves: an unresolved one would abort the process), the
  environment globals are set, and the wrappers become callables (``_dynfunc.make_function``).
  :class:`pacodec._jit.Kernel` calls one only when the arguments' types -- type, dtype, byte
  order, ndim, contiguity, writeability, tuple structure and namedtuple class, computed like
  numba's ``typeof`` -- equal a stored signature exactly (:func:`typekey`); anything else goes
  to numba.

A kernel that raises (numba's error model: integer division by zero) raises through numba's
helpers, which unpickle the exception with ``numba.core.serialize``: numba is imported then, and
the exception is the one numba's path raises.  ``PACODEC_NFLOAD=off`` turns this loader off.
"""
from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import struct
import sys
import threading

import numpy as np

__all__ = ["export", "enabled", "entries", "kernel_name", "table", "typekey"]

FORMAT = 2                  # 2: namedtuple arguments
SUBDIR = "nfload"
INDEX = "index.json"
_I63 = 1 << 63


# --- argument types, as numba's typeof computes them -------------------------------------------

def _scalar_keys():
    keys = {float: np.dtype(float), bool: np.dtype(bool), complex: np.dtype(complex)}
    for t in set(np.sctypeDict.values()):
        if isinstance(t, type) and issubclass(t, np.number | np.bool_):
            keys[t] = np.dtype(t)
    return keys


_SCALARS = _scalar_keys()
_INT = np.dtype(np.int64)
_ndarray = np.ndarray


def _flag_codes():
    """``ndarray.flags.num`` (C_CONTIGUOUS 1, F_CONTIGUOUS 2, ALIGNED 0x100, WRITEABLE 0x400) ->
    (numba's layout, read-only); unaligned arrays have none."""
    codes = {}
    for num in range(0x504):
        if num & ~0x503 == 0 and num & 0x100:
            layout = "C" if num & 1 else "F" if num & 2 else "A"
            codes[num] = (layout, not num & 0x400)
    return codes


_FLAGS = _flag_codes()


def typekey(x):
    """numba's type of the argument ``x`` as a hashable key: (dtype, ndim, (layout, read-only))
    for an array, the dtype for a number, ``("t", ...)`` for a tuple, ``("n", class, ...)`` for
    a namedtuple; None (or a key no stored signature has: an unaligned array's, a dtype no
    kernel takes) for anything this loader leaves to numba: other classes, ndarray subclasses,
    ints of 2**63 and beyond."""
    t = type(x)
    if t is _ndarray:
        return (x.dtype, x.ndim, _FLAGS.get(x.flags.num & 0x503))
    if t is tuple:
        return _items(("t",), x)
    if t is int:                            # numba: intp below 2**63 (int64 here), else refused
        return _INT if -_I63 < x < _I63 else None
    key = _SCALARS.get(t)
    if key is None and issubclass(t, tuple) and hasattr(t, "_asdict"):    # as numba tells one
        return _items(("n", t), x)
    return key


def _items(head, x):
    """A tuple's key: ``head`` and its items' keys, or None if one of them is None (so the key
    cannot equal a stored one: ``None == np.dtype("f8")`` is True)."""
    parts = tuple(map(typekey, x))
    for p in parts:                     # a loop, not any() of a generator: ~2x faster here
        if p is None:
            return None
    return head + parts


def _key(desc):
    """:func:`typekey`'s key of an argument type described by :func:`_describe` (None: a
    namedtuple class that is not found, or not with the stored fields)."""
    if isinstance(desc, str):
        return np.dtype(desc)
    if desc[0] == "t":
        return ("t",) + tuple(_key(d) for d in desc[1:])
    if desc[0] == "n":
        cls = _named_class(desc[1], desc[2])
        if cls is None or list(cls._fields) != desc[3]:
            return None
        parts = tuple(_key(d) for d in desc[4:])
        return None if _missing(parts) else ("n", cls) + parts
    dtype, ndim, layout, readonly = desc
    return (np.dtype(dtype), ndim, (layout, readonly))


def _missing(key):
    """Whether a part of ``key`` (nested) is None; by identity: ``np.dtype("f8") == None``."""
    return key is None or type(key) is tuple and any(_missing(k) for k in key)


def _named_class(modname, qualname):
    """The namedtuple class ``modname.qualname``: from the module already imported (a caller
    with an instance has imported it), or imported if it is pacodec's; None if not found."""
    mod = sys.modules.get(modname)
    if mod is None and (modname == "pacodec" or modname.startswith("pacodec.")):
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            return None
    cls = mod
    for part in qualname.split("."):
        cls = getattr(cls, part, None)
    if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_asdict"):
        return cls
    return None


def _describe(ty):
    """A build-time signature's argument type for the index (dtype string, or [dtype, ndim,
    layout, read-only], or ["t", ...], or ["n", module, qualified name, fields, ...]), or None
    for types this loader does not take."""
    from numba.core import types
    from numba.np import numpy_support
    if type(ty) is types.Array:
        dt = numpy_support.as_dtype(ty.dtype)
        if not ty.aligned or dt.kind not in "biufc" or not dt.isnative:
            return None
        return [dt.str, ty.ndim, ty.layout, not ty.mutable]
    if type(ty) in (types.Integer, types.Float, types.Complex, types.Boolean):
        return numpy_support.as_dtype(ty).str
    if type(ty) in (types.UniTuple, types.Tuple):
        parts = [_describe(t) for t in ty.types]
        return None if None in parts else ["t"] + parts
    if type(ty) in (types.NamedUniTuple, types.NamedTuple):
        # an argument is unboxed as a plain tuple of its fields (numba's unbox_tuple): the
        # class only names the type, and is found again by its module and qualified name
        cls = ty.instance_class
        parts = [_describe(t) for t in ty.types]
        if None in parts or _named_class(cls.__module__, cls.__qualname__) is not cls:
            return None
        return ["n", cls.__module__, cls.__qualname__, list(cls._fields)] + parts
    return None


# --- build time ---------------------------------------------------------------------------------

def _elf_undefined(obj: bytes):
    """Names of the undefined symbols of an ELF64 little-endian relocatable object, or None if
    ``obj`` is not one."""
    if obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
        return None
    shoff, = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + i * shentsize)
                for i in range(shnum)]
    names = set()
    for sh in sections:
        if sh[1] != 2:                      # SHT_SYMTAB
            continue
        stroff = sections[sh[6]][4]
        for off in range(sh[4], sh[4] + sh[5], sh[9]):
            name, info, _, shndx = struct.unpack_from("<IBBH", obj, off)
            if name and shndx == 0:
                end = obj.index(b"\0", stroff + name)
                names.add(obj[stroff + name:end].decode())
    return sorted(names)


def _entry(cres):
    """The index entry of one compiled signature (without its object's file name), or a reason
    it cannot be loaded without numba."""
    from numba.core.environment import lookup_environment
    args = [_describe(t) for t in cres.signature.args]
    if None in args:
        return "argument types"
    lib = cres.library
    if any(not x.can_cache for x in cres.lifted) or lib.has_dynamic_globals:
        return "not cacheable"
    envs = []
    for gv in lib._final_module.global_variables:
        if gv.name.startswith("_ZN08NumbaEnv"):
            env = lookup_environment(gv.name)
            if env is None or not env.can_cache() or env.consts:
                return "environment"
            envs.append([gv.name, env.globals["__name__"]])
    obj = lib._get_compiled_object()
    undefined = _elf_undefined(obj)
    if undefined is None:
        return "not ELF"
    if cres.fndesc.env_name not in [name for name, _ in envs]:
        return "environment"
    return obj, {"wrapper": cres.fndesc.llvm_cpython_wrapper_name, "args": args, "envs": envs,
                 "env": cres.fndesc.env_name, "undefined": undefined}


def export(directory, dispatchers, fingerprint):
    """Write the numba-free form of every signature ``dispatchers`` compiled into
    ``directory/nfload``; returns (signatures written, {kernel: reasons for the others})."""
    import llvmlite
    from numba import _dynfunc
    from numba.core import intrinsics
    out = os.path.join(directory, SUBDIR)
    kernels, skipped = {}, {}
    for d in dispatchers:
        name = kernel_name(d.py_func)
        for cres in getattr(d, "overloads", {}).values():
            e = _entry(cres)
            if isinstance(e, str):
                skipped.setdefault(name, []).append(e)
                continue
            obj, entry = e
            os.makedirs(out, exist_ok=True)
            entry["object"] = hashlib.blake2b(obj, digest_size=16).hexdigest() + ".o"
            with open(os.path.join(out, entry["object"]), "wb") as f:
                f.write(obj)
            kernels.setdefault(name, []).append(entry)
    if kernels:
        codegen = dispatchers[0].targetctx.codegen()
        index = {"stamp": _stamp(_numba_version(), llvmlite.__version__,
                                 codegen.magic_tuple()[0], dict(_dynfunc._impl_info),
                                 fingerprint),
                 "math": sorted(intrinsics.INTR_MATH), "kernels": kernels}
        with open(os.path.join(out, INDEX), "w") as f:
            json.dump(index, f, indent=0, sort_keys=True)
    return sum(map(len, kernels.values())), skipped


# --- run time -----------------------------------------------------------------------------------

def kernel_name(func):
    """The index's name of the kernel of ``func``."""
    return f"{func.__module__}.{func.__qualname__}"


def _stamp(numba_version, llvmlite_version, triple, impl_info, fingerprint):
    return {"format": FORMAT, "python": sys.implementation.cache_tag,
            "numba": numba_version, "llvmlite": llvmlite_version, "triple": triple,
            "dynfunc": impl_info, "fingerprint": list(fingerprint)}


def _numba_dir():
    spec = importlib.util.find_spec("numba")          # finds, does not import
    return None if spec is None or not spec.origin else os.path.dirname(spec.origin)


def _numba_version():
    """numba's version without importing numba (its ``_version.py``, as versioneer writes it)."""
    if "numba" in sys.modules:
        return sys.modules["numba"].__version__
    d = _numba_dir()
    try:
        with open(os.path.join(d, "_version.py")) as f:
            m = re.search(r'"version": "([^"]+)"', f.read())
    except (OSError, TypeError):
        return None
    return m.group(1) if m else None


def enabled():
    """Whether this loader is on: not ``PACODEC_NFLOAD=off``, numba's JIT not disabled (by
    ``NUMBA_DISABLE_JIT`` or a ``.numba_config.yaml``, which numba would read)."""
    if os.environ.get("PACODEC_NFLOAD", "1").lower() in ("", "0", "off", "no"):
        return False
    try:
        if int(os.environ.get("NUMBA_DISABLE_JIT", "0") or "0"):
            return False
    except ValueError:
        return False
    return not os.path.exists(".numba_config.yaml")


_index = {}              # directory -> its index (None: absent or stale)
_lock = threading.RLock()


def entries(directory, fingerprint):
    """The kernels of ``directory``'s index (name -> entries) if its stamp matches this process
    as far as it can be told without llvmlite (Python, package, numba version), else None."""
    if directory not in _index:
        _index[directory] = None
        try:
            with open(os.path.join(directory, SUBDIR, INDEX)) as f:
                index = json.load(f)
            stamp = index["stamp"]
            want = _stamp(_numba_version(), stamp["llvmlite"], stamp["triple"], stamp["dynfunc"],
                          fingerprint)
            if stamp == want:
                _index[directory] = index
        except (OSError, ValueError, KeyError, TypeError):
            pass
    index = _index[directory]
    return None if index is None else index["kernels"]


class _Runtime:
    """llvmlite with numba's helper symbols and ``_dynfunc``, set up once per process."""

    def __init__(self, index):
        import llvmlite
        import llvmlite.binding as ll
        stamp = index["stamp"]
        if llvmlite.__version__ != stamp["llvmlite"] or ll.get_process_triple() != stamp["triple"]:
            raise ImportError("llvmlite or target differ from the build's")
        helperlib = self._extension("_helperlib")
        self.dynfunc = self._extension("_dynfunc")
        if dict(self.dynfunc._impl_info) != stamp["dynfunc"]:
            raise ImportError("numba's _dynfunc differs from the build's")
        ll.initialize_native_target()
        ll.initialize_native_asmprinter()
        # what numba.core.base._load_global_helpers and numba.core.externals register
        ll.add_symbol("_Py_NoneStruct", id(None))
        for mod in (helperlib, self.dynfunc):
            for name, addr in mod.c_helpers.items():
                ll.add_symbol("numba_" + name, addr)
        import builtins
        for obj in builtins.__dict__.values():
            if isinstance(obj, type) and issubclass(obj, BaseException):
                ll.add_symbol(f"PyExc_{obj.__name__}", id(obj))
        for name in index["math"]:
            if name in helperlib.c_helpers:
                ll.add_symbol(name, helperlib.c_helpers[name])
        self.ll = ll
        self.tm = ll.Target.from_default_triple().create_target_machine(codemodel="jitdefault")
        self.engines = []                   # kept alive: the code lives in them

    @staticmethod
    def _extension(name):
        """numba's C extension ``name``: the one numba imported, else loaded by its path (its
        module init runs, ``numba/__init__.py`` does not)."""
        mod = sys.modules.get(f"numba.{name}")
        if mod is not None:
            return mod
        d = _numba_dir()
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(d, name + suffix)
            if os.path.exists(path):
                spec = importlib.util.spec_from_file_location(f"pacodec._numba_{name}.{name}",
                                                              path)
                mod = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(mod)
                return mod
        raise ImportError(f"numba's {name} extension not found")

    def load(self, directory, entry, module):
        """A callable of one signature's wrapper, or None if a symbol of it does not resolve."""
        ll = self.ll
        with open(os.path.join(directory, SUBDIR, entry["object"]), "rb") as f:
            obj = f.read()
        if hashlib.blake2b(obj, digest_size=16).hexdigest() + ".o" != entry["object"]:
            return None             # not the object the build wrote (it is named by its hash)
        # (making an engine also makes the process's own symbols visible: the C API, libc)
        engine = ll.create_mcjit_compiler(ll.parse_assembly(""), self.tm)
        if any(not ll.address_of_symbol(s) for s in entry["undefined"]):
            return None             # MCJIT would abort the process on an unresolved symbol
        engine.add_object_file(ll.ObjectFileRef.from_data(obj))
        engine.finalize_object()
        self.engines.append(engine)
        import ctypes
        envs = {}
        for name, modname in entry["envs"]:
            addr = engine.get_global_value_address(name)
            if not addr:
                return None
            env = envs[name] = self.dynfunc.Environment(_globals(modname))
            ctypes.c_void_p.from_address(addr).value = id(env)
        self.engines.append(envs)           # the globals hold borrowed pointers
        fn = engine.get_function_address(entry["wrapper"])
        if not fn:
            return None
        env = envs[entry["env"]]
        return self.dynfunc.make_function(module, entry["wrapper"], "numba-free wrapper", fn,
                                          env, (engine,))


def _globals(modname):
    """An environment's globals: the module's own for pacodec's modules; for numba's (the
    environments of numba's implementations of ``int()``, ``max()``... that a kernel calls) a
    dict holding only the name, as importing them would import numba.  Nopython code reads an
    environment only for its constants (none: :func:`_entry` refuses environments with any)."""
    if modname == "pacodec" or modname.startswith("pacodec."):
        return importlib.import_module(modname).__dict__
    return {"__name__": modname}


_runtime = None


def table(directory, func, fingerprint):
    """{argument type key: callable} of ``func``'s build-time signatures loaded without numba
    (empty when there are none or they cannot be loaded here)."""
    global _runtime
    kernels = entries(directory, fingerprint)
    found = kernels and kernels.get(kernel_name(func))
    if not found:
        return {}
    with _lock:
        if _runtime is None:
            try:
                _runtime = _Runtime(_index[directory])
            except (ImportError, OSError, AttributeError, KeyError):
                _runtime = False
        if not _runtime:
            return {}
        module = sys.modules[func.__module__]
        out = {}
        for entry in found:
            try:
                key = tuple(_key(a) for a in entry["args"])
                if _missing(key):
                    continue        # a namedtuple class not found as the build had it
                f = _runtime.load(directory, entry, module)
                if f is not None:
                    out[key] = f
            except (OSError, RuntimeError, ValueError, KeyError, TypeError, IndexError):
                pass                # this signature goes to numba
        return out
