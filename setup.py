"""Build hook: the wheel carries the codec's kernels compiled for this platform (see
``pacodec/_aot.py`` and ``pacodec/_jit.py``).  Everything else is in ``pyproject.toml``.

``PACODEC_KERNELS=off pip install .`` builds without them (the kernels then compile on first
use); an editable install never has them.  A failure to compile them is reported and leaves a
wheel that works the same way.
"""
import os
import shutil
import subprocess
import sys
import time

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py


class build_py_with_kernels(build_py):
    def run(self):
        super().run()
        if self.editable_mode or os.environ.get("PACODEC_KERNELS") in ("", "off", "0"):
            return
        lib = os.path.abspath(self.build_lib)
        out = os.path.join(lib, "pacodec", "_kernels")
        shutil.rmtree(out, ignore_errors=True)
        # keep the path of an isolated build's requirements, put the package being built first
        path = os.pathsep.join(p for p in (lib, os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, PYTHONPATH=path, PYTHONDONTWRITEBYTECODE="1")
        self.announce("pacodec: compiling the codec kernels into the wheel "
                      "(about half a minute)", level=2)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pacodec._aot", out], env=env,
                              cwd=lib).returncode == 0
        if not done:
            shutil.rmtree(out, ignore_errors=True)
            sys.stderr.write("pacodec: warning: the kernels could not be compiled into the "
                             "wheel; they will compile on first use instead\n")
        else:
            self.announce(f"pacodec: kernels compiled in {time.perf_counter() - t0:.0f} s",
                          level=2)


class PlatformDistribution(Distribution):
    """The wheel holds machine code for one platform and Python: tag it so (cp311-...-linux_x86_64,
    not py3-none-any), so that no installer puts it where its kernels cannot load."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": build_py_with_kernels}, distclass=PlatformDistribution)
