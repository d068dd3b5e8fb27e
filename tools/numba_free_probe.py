#!/usr/bin/env python3
"""Measure what loading the decoder's machine code costs without importing numba.

    PYTHONPATH=<checkout> python tools/numba_free_probe.py [FILE.pac]

Step 1 (a process with numba): decode FILE.pac (default: a generated second of audio) so that
``decode_run`` is in numba's cache, and copy that cache entry's object code (one ELF object: the
kernel and its CPython wrapper) and symbol names to a scratch directory.  Step 2 (a fresh
process that never imports numba): import numpy and llvmlite, load numba's ``_helperlib`` C
extension by its path (not through ``numba/__init__.py``) and register its helper functions,
add the object to an MCJIT engine and resolve the wrapper's address.  Prints CPU seconds and
peak RSS of step 2 next to those of ``import numpy, numba`` in another fresh process.

The feasibility probe that preceded the numba-free loader (``pacodec/_nfload.py``; its figures
are in docs/speed-history.md): it does not call the kernel.  Nothing is asserted.
"""
import os
import subprocess
import sys
import tempfile

STEP1 = r"""
import sys, numpy as np, pacodec
from pacodec.decoder import decode_run
if len(sys.argv) > 2:
    data = open(sys.argv[2], "rb").read()
else:
    t = np.arange(44100) / 44100
    data = pacodec.encode(0.3 * np.sin(2 * np.pi * 440 * t)[:, None], 44100, bitrate=64)
pacodec.decode(data)
cf = decode_run._cache._cache_file
for key, name in cf._load_index().items():
    libdata, fndesc = cf._load_data(name)[:2]
    obj = libdata[2][0] if isinstance(libdata[2], tuple) else libdata[2]
    open(sys.argv[1] + "/k.o", "wb").write(obj)
    wrapper = fndesc.mangled_name.replace("_ZN7pacodec", "_ZN7cpython7pacodec", 1)
    open(sys.argv[1] + "/k.sym", "w").write(wrapper)
    break
"""

STEP2 = r"""
import importlib.machinery, importlib.util, os, resource, sys, time
T = time.process_time
import numpy
t0 = T()
import llvmlite.binding as ll
ll.initialize_native_target()
ll.initialize_native_asmprinter()
numba_dir = sys.argv[2]
path = next(p for p in (os.path.join(numba_dir, "_helperlib" + x)
                        for x in importlib.machinery.EXTENSION_SUFFIXES) if os.path.exists(p))
spec = importlib.util.spec_from_file_location("_pacodec_probe._helperlib", path)
helper = importlib.util.module_from_spec(spec)
spec.loader.exec_module(helper)
for name, addr in helper.c_helpers.items():
    ll.add_symbol(name, addr)
t1 = T()
tm = ll.Target.from_default_triple().create_target_machine(codemodel="jitdefault")
engine = ll.create_mcjit_compiler(ll.parse_assembly(""), tm)
engine.add_object_file(ll.ObjectFileRef.from_data(open(sys.argv[1] + "/k.o", "rb").read()))
engine.finalize_object()
addr = engine.get_function_address(open(sys.argv[1] + "/k.sym").read())
t2 = T()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(f"without numba: llvmlite + helpers {t1 - t0:.3f} s, load decode_run {t2 - t1:.3f} s "
      f"(wrapper at {addr:#x}); process {ru.ru_utime + ru.ru_stime:.3f} CPU-s, "
      f"peak RSS {ru.ru_maxrss / 1024:.0f} MB; numba imported: {'numba' in sys.modules}")
"""

BASE = r"""
import resource, time
import numpy
t = time.process_time()
import numba
d = time.process_time() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
print(f"with numba: import numba {d:.3f} s; process {ru.ru_utime + ru.ru_stime:.3f} CPU-s, "
      f"peak RSS {ru.ru_maxrss / 1024:.0f} MB")
"""


def main():
    import importlib.util
    numba_dir = os.path.dirname(importlib.util.find_spec("numba").origin)
    with tempfile.TemporaryDirectory(prefix="pacodec-probe-") as work:
        subprocess.run([sys.executable, "-c", STEP1, work] + sys.argv[1:2], check=True)
        subprocess.run([sys.executable, "-c", STEP2, work, numba_dir], check=True, cwd=work)
        subprocess.run([sys.executable, "-c", BASE], check=True, cwd=work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
