"""GStreamer elements for pacodec, written in Python for gst-python's plugin loader.

Elements (all run the same :class:`pacodec.Encoder` / :class:`pacodec.Decoder` as the rest of the
package; see :mod:`pacodec.gst.elements`):

* ``pacodecenc``   raw audio (F32LE/S16LE) -> pacodec frames (the stream header, then one frame
  per buffer), caps ``audio/x-pacodec, framed=(boolean)true, rate, channels``;
* ``pacodecdec``   pacodec frames -> raw F32LE, concealing lost frames, gapless-trimmed;
* ``pacodecparse`` a ``.pac`` byte stream (``filesrc``) -> one frame per buffer;
* ``pacodecpay`` / ``pacodecdepay``  frames <-> UDP datagrams in pacodec's own packet layout
  (``pacodec.stream.packet.pack``, FORMAT.md §9; the datagrams of ``pacodec send``/``receive``);
* ``pacodec_typefind``, a type finder (:mod:`.typefind`): ``decodebin``/``playbin`` recognise a
  ``.pac`` stream and plug ``pacodecparse ! pacodecdec`` by themselves.

GStreamer's Python loader (Debian: ``gstreamer1.0-python3-plugin-loader``) loads every ``.py`` in
a ``python/`` folder under a ``GST_PLUGIN_PATH`` entry.  It embeds the *system* Python (3.11 on
Debian 12), so numpy/numba must be importable from there: :func:`env` puts the directories holding
pacodec and its dependencies (e.g. a virtualenv's ``site-packages``) on ``PYTHONPATH``.
This module imports nothing from GStreamer; only the loader imports :mod:`.elements`.

The registry: GStreamer caches what every plugin provides in a registry file
(``~/.cache/gstreamer-1.0/registry.*.bin``).  When the Python loader fails once -- a
``gst-inspect-1.0`` run before the environment is set, where the embedded Python finds no
PyGObject -- the cache marks the loader as broken, and because that entry records no dependency
on ``GST_PLUGIN_PATH`` nothing makes GStreamer look again.  So :func:`env` also sets
``GST_REGISTRY`` (GStreamer's documented variable for another registry file) to a file of
pacodec's own, named after a hash of the variables the loader depends on: a registry written
under another environment is never read under this one.  :func:`shell_env` (``pacodec gst-path
--env``) deletes that file when it exists but does not list the pacodec elements (a scan failed
under this very environment, e.g. before a missing package was installed), so GStreamer
rebuilds it on its next run.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shlex
import sys

__all__ = ["plugin_path", "env", "shell_env", "registry_path", "heal_registry", "ELEMENTS",
           "TYPEFINDER", "encoder_options"]

ELEMENTS = ("pacodecenc", "pacodecdec", "pacodecparse", "pacodecpay", "pacodecdepay")
TYPEFINDER = "pacodec_typefind"   # pacodec/gst/typefind.py registers it

# what the embedded Python and the plugin scan depend on: a change means another registry file
_REGISTRY_KEYS = ("GST_PLUGIN_PATH", "GST_PLUGIN_PATH_1_0", "GST_PLUGIN_SYSTEM_PATH",
                  "GST_PLUGIN_SYSTEM_PATH_1_0", "PYTHONPATH", "PYTHONHOME")

# modules the elements import, whose directories must be on the embedded Python's path
_DEPENDENCIES = ("numpy", "numba", "llvmlite", "scipy")


_SYSTEM_GI_DIRS = ("/usr/lib/python3/dist-packages", "/usr/lib64/python3/site-packages") + tuple(
    f"{p}/python3.{sys.version_info[1]}/site-packages" for p in ("/usr/lib", "/usr/lib64"))


def plugin_path() -> str:
    """The directory to put on ``GST_PLUGIN_PATH`` (it holds the ``python/`` folder)."""
    return os.path.dirname(os.path.abspath(__file__))


def _module_root(name: str) -> str | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    path = os.path.dirname(os.path.abspath(spec.origin))
    if spec.submodule_search_locations is not None:      # a package: its parent directory
        path = os.path.dirname(path)
    return path


def _prepend(first: list[str], existing: str | None) -> str:
    parts: list[str] = []
    for p in first + (existing.split(os.pathsep) if existing else []):
        if p and p not in parts:
            parts.append(p)
    return os.pathsep.join(parts)


def env(environ=None) -> dict[str, str]:
    """``GST_PLUGIN_PATH`` and ``PYTHONPATH`` values that make the elements loadable.

    Each value is the needed directories followed by the current value from ``environ``
    (default ``os.environ``), so the result can be exported as is.  ``PYTHONPATH`` lists the
    directory holding the ``pacodec`` package and those holding numpy, numba, llvmlite and scipy
    (site-packages ``.pth`` files are not read from ``PYTHONPATH``, so an editable install needs
    its source directory listed explicitly).
    """
    environ = os.environ if environ is None else environ
    pkg_root = os.path.dirname(os.path.dirname(plugin_path()))
    dirs = [pkg_root] + [d for d in (_module_root(m) for m in _DEPENDENCIES) if d]
    # PyGObject of the system Python, last: when a virtualenv's bin/ comes first on PATH the
    # embedded interpreter adopts that virtualenv's prefix and would not see it otherwise
    dirs += [d for d in _SYSTEM_GI_DIRS if os.path.isdir(os.path.join(d, "gi"))]
    out = {
        "GST_PLUGIN_PATH": _prepend([plugin_path()], environ.get("GST_PLUGIN_PATH")),
        "PYTHONPATH": _prepend(dirs, environ.get("PYTHONPATH")),
    }
    out["GST_REGISTRY"] = registry_path({**environ, **out})
    if environ.get("GST_REGISTRY_1_0"):          # it takes precedence over GST_REGISTRY
        out["GST_REGISTRY_1_0"] = out["GST_REGISTRY"]
    return out


def registry_path(environ=None) -> str:
    """The pacodec-owned GStreamer registry file for the environment ``environ``: under
    ``$XDG_CACHE_HOME/pacodec`` (default ``~/.cache/pacodec``), named after a hash of the
    variables that decide what the Python loader finds, the plugin directory and the Python
    version."""
    environ = os.environ if environ is None else environ
    key = "\0".join([plugin_path(), sys.version.split()[0]]
                    + [f"{k}={environ.get(k, '')}" for k in _REGISTRY_KEYS])
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "pacodec", f"gst-registry-{os.uname().machine}-{digest}.bin")


def heal_registry(path: str) -> bool:
    """Delete the registry file ``path`` if it exists but does not list every pacodec element
    and the type finder (a scan failed there: GStreamer would never look again).  Returns
    whether it was deleted.  A missing or unreadable file is left alone."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    if all(name.encode() + b"\0" in data for name in ELEMENTS + (TYPEFINDER,)):
        return False
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def encoder_options(props: dict, samplerate=None, channels=None):
    """``pacodecenc``'s coding options: the properties the user *set* (name -> value) resolved
    by :func:`pacodec.options.resolve`, so a property left alone means what an option left out
    means in ``pacodec encode`` and in Python.  ``quality=-1`` and ``distance=0`` read as unset;
    ``abr=true`` makes ``bitrate`` (default 128) an average bitrate.  With the input's
    ``samplerate`` and ``channels`` (from the caps), checked against them too
    (:func:`pacodec.ratelimit.coding_options`)."""
    from ..config import DEFAULT_BITRATE
    from ..options import resolve
    if samplerate is not None and channels is not None:
        from ..ratelimit import coding_options
        resolve = functools.partial(coding_options, samplerate, channels)
    quality = props.get("quality")
    distance = props.get("distance")
    bitrate = props.get("bitrate")
    abr = None
    if props.get("abr"):
        abr, bitrate = (DEFAULT_BITRATE if bitrate is None else bitrate), None
    return resolve(bitrate=bitrate, abr=abr,
                   quality=None if quality is None or quality < 0 else quality,
                   distance=distance or None, quantizer=props.get("quantizer"),
                   mu=props.get("mu"), window_shape=props.get("window"),
                   low_delay=props.get("low-delay", False))


def shell_env(environ=None) -> str:
    """:func:`env` as POSIX shell ``export`` lines (for ``eval "$(pacodec gst-path --env)"``);
    a registry file that lacks the pacodec elements is deleted first (:func:`heal_registry`),
    and the directory for it created."""
    values = env(environ)
    heal_registry(values["GST_REGISTRY"])
    try:
        os.makedirs(os.path.dirname(values["GST_REGISTRY"]), mode=0o700, exist_ok=True)
    except OSError:
        pass                        # GStreamer then keeps the registry in memory only
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items())
