"""Project-wide numba defaults.

Every kernel in pacodec is compiled through :func:`njit` so that the settings live in one
place: ``cache=True`` (compiled machine code is kept beside the module in ``__pycache__``) and
``nogil=True`` (kernels release the GIL, so the streaming codec thread never blocks the audio
callback thread).  Setting ``NUMBA_DISABLE_JIT=1`` in the environment runs every kernel as plain
Python, which is how the kernels are debugged and how ``tests/test_kernels.py`` checks that the
compiled code equals its ``.py_func``.

numba caches in ``$NUMBA_CACHE_DIR``, else beside the package, else in ``~/.cache/numba``; when
none is writable (a service account, a read-only container) it refuses ``cache=True`` outright.
Then pacodec caches in a private directory under the system temp dir (created mode 0700 and used
only if this user owns it: numba's cache holds pickles), or, failing that, not at all -- and says
so in one line on stderr, naming ``NUMBA_CACHE_DIR``.

numba decides whether a cached kernel is stale from the modification time and size of the
kernel's *own* source file only.  A pacodec kernel also bakes in what it calls or inlines from
other modules (``huffman.put_symbol`` calls ``bitio.put_bits``) and module-level tables (the
codebooks from ``data/codebooks.json``), so after an edit to one of those, numba would go on
loading the old machine code: a wrong bitstream or a kernel that never returns.  So every
pacodec kernel's cache entry is stamped with one fingerprint of all the package's sources and
data (:func:`package_fingerprint`): any change to any of them recompiles every kernel.

**Kernels compiled at build time.**  Building the wheel (``pip install .``) runs
``python -m pacodec._aot`` (``setup.py``), which compiles the kernels that the command line's and
the Python API's encode and decode reach for LLVM's ``generic`` model of the build machine's CPU
family (``NUMBA_CPU_NAME=generic``: no instruction beyond the baseline of the triple, e.g.
x86-64's SSE2) and stores them in ``pacodec/_kernels`` with numba's own index/data file format,
stamped with the same fingerprint.  When numba's cache misses, :func:`_read_shipped` looks the
signature up there; an entry loads only if the numba version, the Python version (file name),
the target triple (index key) and the package fingerprint (stamp) all match, so copying the
files (pip resets their modification times) does not matter and sources that differ in any byte
are never run with old machine code.  Anything else -- another platform or numba, a signature
the build did not reach, ``PACODEC_KERNELS=off`` -- compiles on first use and goes to numba's
cache as before; ``NUMBA_DISABLE_JIT=1`` ignores both.  Why not ``numba.pycc``: it has been
pending deprecation since numba 0.57 (its replacement is still being developed), needs a C
compiler and an explicit signature for every exported function, and turns the drivers' calls
into calls of a C extension that does not check argument types -- while the cache is the JIT
path's own machine code, so the two cannot disagree (``tests/test_jit_shipped.py``).  Its cost:
a process that loads them through numba imports numba (~0.15 CPU-s); see below for the kernels
that load without it.

**Without numba.**  When the build-time kernels also hold their numba-free form
(``pacodec/_nfload.py``: object code, wrapper names, argument types) and its stamp matches,
:func:`njit` does not import numba: it returns a :class:`Kernel`, which calls the build's machine
code through llvmlite when the arguments' types equal a stored signature exactly, and otherwise
(another signature, keyword arguments, any attribute of numba's dispatcher: ``py_func`` aside)
imports numba, makes every kernel's dispatcher (:func:`_materialize`) and puts them in place of
the :class:`Kernel` objects in pacodec's modules, so that kernels compiled from then on see
numba's dispatchers in their globals.  ``PACODEC_NFLOAD=off`` turns only this off.
"""
import hashlib
import os
import sys
import tempfile
import threading

__all__ = ["njit", "dispatchers", "skip_blas_probe", "shipped_dir", "shipped_kernels",
           "write_shipped", "Kernel", "numba_free"]

#: every dispatcher made through :func:`njit` (``pacodec demo`` reads their compile statistics)
dispatchers = []
_fallback = None          # None: not needed yet; True: temp cache dir in use; False: no cache
_fingerprint = None


def package_fingerprint():
    """BLAKE2b of the names and contents of every ``.py`` and ``data/*.json`` file of pacodec
    (about 0.4 MB, hashed once per process)."""
    global _fingerprint
    if _fingerprint is None:
        root = os.path.dirname(os.path.abspath(__file__))
        h = hashlib.blake2b(digest_size=16)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py") or (name.endswith(".json")
                                            and os.path.basename(dirpath) == "data"):
                    path = os.path.join(dirpath, name)
                    h.update(os.path.relpath(path, root).encode() + b"\0")
                    with open(path, "rb") as f:
                        h.update(f.read())
                    h.update(b"\0")
        _fingerprint = ("pacodec", h.hexdigest())
    return _fingerprint


def _stamp_cache(d):
    """Key ``d``'s cache entry on :func:`package_fingerprint` instead of its own file's mtime.
    Uses numba's cache internals; on a numba without them the default rule stays."""
    cache_file = getattr(getattr(d, "_cache", None), "_cache_file", None)
    if cache_file is not None and hasattr(cache_file, "_source_stamp"):
        cache_file._source_stamp = package_fingerprint()


def _private_cache_dir():
    uid = os.getuid() if hasattr(os, "getuid") else 0
    path = os.path.join(tempfile.gettempdir(), f"pacodec-numba-cache-{uid}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
        import stat
        if (not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != uid)
                or st.st_mode & 0o022):
            return None
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return None
    return path


def _use_fallback():
    global _fallback
    if _fallback is not None:
        return _fallback
    import numba
    path = _private_cache_dir()
    if path is not None:
        numba.config.CACHE_DIR = path
        msg = (f"numba cannot write its cache beside the package or in ~/.cache; compiled "
               f"kernels are cached in {path} (set NUMBA_CACHE_DIR to a writable directory)")
    else:
        msg = ("numba cannot write its cache anywhere; kernels are compiled on every run "
               "(set NUMBA_CACHE_DIR to a writable directory)")
    sys.stderr.write(f"pacodec: warning: {msg}\n")
    _fallback = path is not None
    return _fallback


def _make(func, args, kwargs):
    import numba
    try:
        d = numba.njit(*args, **kwargs)(func)
    except RuntimeError as e:
        if not kwargs.get("cache") or "cannot cache" not in str(e):
            raise
        if not _use_fallback():
            kwargs = dict(kwargs, cache=False)
        try:
            d = numba.njit(*args, **kwargs)(func)
        except RuntimeError as e2:          # the temp dir went away: no cache
            if "cannot cache" not in str(e2):
                raise
            d = numba.njit(*args, **dict(kwargs, cache=False))(func)
    if not hasattr(d, "py_func"):       # NUMBA_DISABLE_JIT=1: numba gave back the function
        return d
    if not args:
        _one_signature_per_type(d)
    _stamp_cache(d)
    _read_shipped(d)
    dispatchers.append(d)
    return d


# --- kernels compiled when the wheel was built ------------------------------------------------

#: where a wheel build (``setup.py``'s build_py, through ``python -m pacodec._aot``) leaves the
#: kernels it compiled; absent in a source checkout or an editable install
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_kernels")


def shipped_dir():
    """The directory of the kernels compiled at build time: ``$PACODEC_KERNELS`` when set (an
    empty value or ``off`` turns them off: every kernel is compiled on first use), else
    ``pacodec/_kernels``."""
    path = os.environ.get("PACODEC_KERNELS")
    if path is None:
        return SHIPPED_DIR
    return None if path in ("", "off", "0") else path


def _shipped_file(d, directory):
    """numba's index+data file pair for ``d``'s build-time entries in ``directory`` (named by
    module, qualified name and line, stamped with :func:`package_fingerprint`)."""
    from numba.core.caching import IndexDataCacheFile
    f = d.py_func
    name = f"{f.__module__}.{f.__qualname__}".replace("<", "").replace(">", "")
    base = f"{name}-{f.__code__.co_firstlineno}.py{sys.version_info[0]}{sys.version_info[1]}"
    return IndexDataCacheFile(directory, base, package_fingerprint())


def _shipped_magic(codegen):
    """numba's description of the code generator (target triple, CPU, features), with the CPU
    fixed to LLVM's ``generic`` model of this target: the build compiles with
    ``NUMBA_CPU_NAME=generic``, so its machine code runs on any CPU of the triple."""
    return (codegen.magic_tuple()[0], "generic", "")


def _shipped_key(sig, codegen):
    """Index key of a build-time entry: the argument types and :func:`_shipped_magic`."""
    return (sig, _shipped_magic(codegen))


def _read_shipped(d):
    """Load ``d``'s cached machine code without first initialising numba's compiler, and after
    numba's own cache (this machine's compile results) misses, look the signature up among the
    build-time kernels; a miss there (another platform, Python, numba, or package content)
    leaves numba to compile as before.

    numba's ``load_overload`` begins by refreshing the target context: it imports and installs
    every typing and lowering registry numba has (~0.1 CPU-s, cffi's C parser among them), which
    only *compiling* needs -- and a compile refreshes the context itself
    (``compiler.compile_extra``).  Rebuilding a cached kernel needs only the code generator.  So
    the loader calls numba's own loading step without the refresh; on a numba without that
    internal it keeps numba's method."""
    cache = getattr(d, "_cache", None)
    if cache is None:
        return
    directory = shipped_dir()
    shipped = (_shipped_file(d, directory) if directory is not None and os.path.isdir(directory)
               else None)
    impl = getattr(cache, "_load_overload", None)
    guard = getattr(cache, "_guard_against_spurious_io_errors", None)
    if impl is None or guard is None:
        load = cache.load_overload
    else:
        def load(sig, target_context):
            cres = None
            with guard():
                cres = impl(sig, target_context)
            return cres

    def load_overload(sig, target_context):
        cres = load(sig, target_context)
        if cres is None and shipped is not None:
            payload = shipped.load(_shipped_key(sig, target_context.codegen()))
            if payload is not None:
                from numba.core.compiler import CompileResult
                cres = CompileResult._rebuild(target_context, *payload)
        return cres
    cache.load_overload = load_overload


def shipped_kernels(d) -> int:
    """How many build-time entries ``d`` has that this process could load (0 without them)."""
    directory = shipped_dir()
    if getattr(d, "py_func", None) is None or directory is None or not os.path.isdir(directory):
        return 0
    magic = _shipped_magic(d.targetctx.codegen())
    return sum(key[1] == magic for key in _shipped_file(d, directory)._load_index())


def write_shipped(directory):
    """Save every signature the dispatchers of this process compiled into ``directory`` as
    build-time kernels (see ``pacodec/_aot.py``).  Refuses unless numba compiles for the
    ``generic`` CPU.  Returns the number of entries written."""
    import numba
    if (numba.config.CPU_NAME or "").lower() != "generic" or numba.config.CPU_FEATURES:
        raise RuntimeError("build-time kernels must be compiled with NUMBA_CPU_NAME=generic "
                           "(and no NUMBA_CPU_FEATURES)")
    n = 0
    for d in dispatchers:
        if not hasattr(d, "overloads"):
            continue
        f = None
        for sig, cres in d.overloads.items():
            if any(not x.can_cache for x in cres.lifted) or cres.library.has_dynamic_globals:
                continue
            if f is None:
                os.makedirs(directory, exist_ok=True)
                f = _shipped_file(d, directory)
            f.save(_shipped_key(sig, cres.library.codegen), cres._reduce())
            n += 1
    return n


def _one_signature_per_type(d):
    """Make kernel-to-kernel calls compile ``d`` for the arguments' plain types.

    Inside a kernel a constant argument has a literal type (``Literal[int](7)``), and numba
    compiles the callee once per distinct constant: ``put_bits(buf, st, v, 7)`` and
    ``put_bits(buf, st, v, 6)`` were two machine-code copies (put_bits had 7 signatures,
    get_bits 6).  No pacodec kernel specialises on a constant, so the literal types are dropped
    before the lookup: one signature per combination of real argument types, compiled lazily
    (an explicit signature would compile at import, also for kernels a run never calls).
    """
    from numba.core import types
    lookup = d.get_call_template

    def get_call_template(args, kws):
        return lookup(tuple(types.unliteral(a) for a in args),
                      {k: types.unliteral(v) for k, v in kws.items()})
    d.get_call_template = get_call_template


# --- kernels without numba (pacodec/_nfload.py) ------------------------------------------------

_lazy = None             # None: not decided yet; else whether njit makes Kernel objects
_kernels = []            # every Kernel made (in definition order)
_materialized = False
_numba_without_scipy = False    # set by skip_blas_probe when it did not import numba itself
_lock = threading.RLock()
_typekey = None          # pacodec._nfload.typekey, imported with the first Kernel call


def _lazy_mode():
    """Decided once per process, at the first kernel definition: whether the build-time kernels
    can be run without numba (see ``pacodec/_nfload.py``)."""
    global _lazy
    if _lazy is None:
        from . import _nfload
        directory = shipped_dir()
        _lazy = (directory is not None and _nfload.enabled()
                 and bool(_nfload.entries(directory, package_fingerprint())))
    return _lazy and not _materialized


def _define(func, args, kwargs):
    if args or not _lazy_mode():
        return _make(func, args, kwargs)
    k = Kernel(func, kwargs)
    _kernels.append(k)
    return k


class Kernel:
    """A kernel defined while numba is not imported: calls the build-time machine code loaded by
    ``pacodec/_nfload.py`` when the arguments' types (:func:`pacodec._nfload.typekey`) equal a
    stored signature, else numba's dispatcher (:attr:`dispatcher`, made on first need: imports
    numba).  Any attribute but ``py_func`` is the dispatcher's."""

    def __init__(self, func, kwargs):
        self.py_func = func
        self._kwargs = kwargs
        self._dispatcher = None
        self._table = None                 # {argument types: callable}, loaded on first call
        for a in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(self, a, getattr(func, a, None))

    def __repr__(self):
        return f"<pacodec kernel {self.__module__}.{self.__qualname__}>"

    def __call__(self, *args, **kwargs):
        table = self._table
        if table is None:
            table = self._load()
        if table and not kwargs:
            f = table.get(tuple(map(_typekey, args)))
            if f is not None:
                return f(*args)
        return self.dispatcher(*args, **kwargs)

    def _load(self):
        global _typekey
        from . import _nfload
        _typekey = _nfload.typekey
        directory = shipped_dir()
        self._table = ({} if directory is None else
                       _nfload.table(directory, self.py_func, package_fingerprint()))
        return self._table

    @property
    def dispatcher(self):
        """numba's dispatcher of this kernel (imports numba and makes every kernel's)."""
        if not _materialized:
            _materialize()
        return self._dispatcher

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_dispatcher", "_table", "_kwargs", "py_func"):
            raise AttributeError(name)
        return getattr(self.dispatcher, name)


def numba_free(d) -> bool:
    """Whether ``d`` is a :class:`Kernel` with build-time signatures that load without numba."""
    if not isinstance(d, Kernel):
        return False
    from . import _nfload
    directory = shipped_dir()
    entries = (_nfload.entries(directory, package_fingerprint()) if directory is not None
               else None)
    return bool(entries) and _nfload.kernel_name(d.py_func) in entries


def _materialize():
    """Import numba, make the dispatcher of every :class:`Kernel` and put the dispatchers in
    place of the Kernel objects in pacodec's modules (numba compiles a kernel's callees from its
    globals)."""
    global _materialized
    with _lock:
        if _materialized:
            return
        if _numba_without_scipy:
            _import_numba_without_scipy()
        for k in _kernels:
            if k._dispatcher is None:
                k._dispatcher = _make(k.py_func, (), k._kwargs)
        for name, mod in list(sys.modules.items()):
            if name == "pacodec" or name.startswith("pacodec."):
                for key, value in list(vars(mod).items()):
                    if type(value) is Kernel:
                        setattr(mod, key, value._dispatcher)
        _materialized = True        # only now: another thread's compile must see dispatchers


class _NoScipy:
    """Import hook refusing ``scipy`` and, unless a ``.numba_config.yaml`` is there to read,
    ``yaml`` (see :func:`skip_blas_probe`)."""

    def __init__(self):
        self.refused = ("scipy",) + (() if os.path.exists(".numba_config.yaml") else ("yaml",))

    def find_spec(self, name, path=None, target=None):
        if name.split(".", 1)[0] in self.refused:
            raise ModuleNotFoundError(f"{name} is not imported by the pacodec command",
                                      name=name)
        return None


def skip_blas_probe():
    """Import numba for a command-line process without scipy.  ``import numba`` imports scipy
    only to check its version (and PyYAML only to read a ``.numba_config.yaml`` in the current
    directory: refused too when there is none), and numba's BLAS probe (``numba.np.arraymath``, imported with the
    typing registries) imports ``scipy.linalg`` (~0.3 CPU-s) only to pick the implementation of
    ``np.correlate``/``np.convolve`` in code compiled later; pacodec's kernels use neither (nor
    any other BLAS routine).  Loading cached kernels no longer installs the registries
    (:func:`_read_shipped`), so the probe runs only in a process that compiles, where it may
    import scipy.linalg as numba wants.  Not for library use (the host may want numba to see
    its scipy).  A no-op once numba is imported."""
    global _numba_without_scipy
    if "numba" in sys.modules:
        return
    if _lazy_mode():            # numba may not be needed at all: refuse scipy if it is
        _numba_without_scipy = True
        return
    _import_numba_without_scipy()


def _import_numba_without_scipy():
    if "numba" in sys.modules:
        return
    hook = _NoScipy()
    sys.meta_path.insert(0, hook)
    try:
        import numba  # noqa: F401
    finally:
        sys.meta_path.remove(hook)


def njit(*args, **kwargs):
    """``numba.njit`` with the project defaults: ``cache=True``, ``nogil=True``, no C-callable
    wrapper (the kernels are called from Python and from each other, never through a C function
    pointer, and numba would otherwise compile that wrapper for every signature), and no numba
    runtime (``_nrt=False``): drivers allocate, kernels only compute (the package's rule), so the
    reference counting numba would add to every array argument, view and call is dead weight --
    about a tenth of the cold-start compile time.  A kernel that allocates fails to compile
    ("No implementation of function zeros"); give it ``_nrt=True`` if it really must."""
    kwargs.setdefault("cache", True)
    kwargs.setdefault("nogil", True)
    kwargs.setdefault("no_cfunc_wrapper", True)     # never used as C callbacks: less to compile
    kwargs.setdefault("_nrt", False)                # kernels never allocate: no refcounting
    if len(args) == 1 and callable(args[0]) and not isinstance(args[0], str):
        return _define(args[0], (), kwargs)
    return lambda func: _define(func, args, kwargs)
