"""Build script: everything is in pyproject.toml except the optional C kernels, built here with cffi.

If the C build fails (no compiler, say), the package still installs and runs on the Numba and NumPy
tiers; we print one warning naming the cause and the fallback.
"""
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build C extensions if possible; on failure warn once and install without them."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001  (any compiler failure means: fall back)
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc)

    @staticmethod
    def _warn(exc):
        sys.stderr.write(f"WARNING: tinyeff's C kernels were not built ({exc}). Install a C compiler "
                         "(apt-get install gcc) and reinstall to enable them; tinyeff will use its "
                         "Numba and NumPy kernels meanwhile.\n")


def cffi_modules():
    if os.environ.get("TINYEFF_NO_C", "") not in ("", "0"):
        return []
    if not os.path.exists(os.path.join("tinyeff", "kernels", "_build_c.py")):
        return []
    return ["tinyeff/kernels/_build_c.py:ffibuilder"]


setup(cffi_modules=cffi_modules(), cmdclass={"build_ext": OptionalBuildExt})
