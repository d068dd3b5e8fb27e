#!/usr/bin/env python3
"""Where one ``pacodec decode`` process spends its CPU time.

    python tools/decode_split.py IN.pac OUT.wav          # the command's own options may follow
    PYTHONPATH=<checkout> python tools/decode_split.py IN.pac OUT.wav

Runs the real command line (``pacodec.cli.main`` with ``sys.argv``, as ``python -m pacodec
decode IN.pac -o OUT.wav --force --quiet``) and prints on stderr, in CPU seconds (user + sys):
``import numpy``; ``import numba`` (with whatever stdlib modules it is the first to import);
loading the cached kernels (every call that went through numba's ``_compile_for_args``: the
first call of each kernel); the decode kernels (``FrameDecoder.run``, ``.parse``, ``.synth``,
less any loading inside them); WAV writing; the rest (interpreter, other imports, argument
parsing, Python per block, exit); the process total and peak RSS.  The timing hooks go in
through an import hook, so the process imports what the command imports, when it does: the
same script splits any checkout's decode (run it from a directory without a ``pacodec/``).
Nothing is asserted; run it a few times, alternating checkouts, and report the load.
"""
import atexit
import importlib.abc
import importlib.util
import resource
import sys
import time

T = time.process_time
acc = {"import numpy": 0.0, "import numba (after numpy)": 0.0, "kernel loading": 0.0,
       "decode kernels (FrameDecoder.run, FrameDecoder.parse/synth)": 0.0, "WAV writing": 0.0}
depth = {"load": 0}


def timed(key, f):
    def w(*a, **k):
        t = T()
        try:
            return f(*a, **k)
        finally:
            acc[key] += T() - t
    return w


class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in ("numpy", "numba", "numba.core.dispatcher", "pacodec.decoder",
                        "pacodec._wavout"):
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        ex = spec.loader.exec_module
        def exec_module(mod, name=name, ex=ex):
            t = T()
            ex(mod)
            if name == "numpy":
                acc["import numpy"] += T() - t
            elif name == "numba":
                acc["import numba (after numpy)"] += T() - t
            elif name == "numba.core.dispatcher":
                D = mod.Dispatcher
                orig = D._compile_for_args
                def cfa(self, *a, **k):
                    t = T()
                    try:
                        return orig(self, *a, **k)
                    finally:
                        d = T() - t
                        acc["kernel loading"] += d
                        depth["load"] += d
                D._compile_for_args = cfa
            elif name == "pacodec.decoder":
                FD = mod.FrameDecoder
                for m in ("run", "parse", "synth"):
                    f = getattr(FD, m)
                    def w(*a, f=f, **k):
                        t = T(); l0 = depth["load"]
                        try:
                            return f(*a, **k)
                        finally:
                            acc["decode kernels (FrameDecoder.run, FrameDecoder.parse/synth)"] += (T() - t) - (depth["load"] - l0)
                    setattr(FD, m, w)
            elif name == "pacodec._wavout":
                mod.WavWriter.write = timed("WAV writing", mod.WavWriter.write)
        spec.loader.exec_module = exec_module
        return spec


def report():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    tot = ru.ru_utime + ru.ru_stime
    rest = tot - sum(acc.values())
    out = [f"{v:6.3f}  {k}" for k, v in acc.items()]
    out.append(f"{rest:6.3f}  rest: interpreter, pacodec + stdlib imports, parser, Python per block, exit")
    out.append(f"{tot:6.3f}  process CPU total (maxrss {ru.ru_maxrss / 1024:.0f} MB)")
    print("\n".join(out), file=sys.stderr)


if len(sys.argv) < 3:
    sys.exit(__doc__)
sys.meta_path.insert(0, Hook())
atexit.register(report)
sys.argv = ["pacodec", "decode", sys.argv[1], "-o", sys.argv[2], "--force", "--quiet"] + sys.argv[3:]
from pacodec.cli import main
sys.exit(main())
