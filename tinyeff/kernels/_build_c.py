"""cffi build script for the C tier: ``csrc/**/*.c`` -> one extension, ``tinyeff._tinyeff_c``.

``setup.py`` names ``ffibuilder`` in ``cffi_modules`` (``pip install -e .`` puts
``tinyeff/_tinyeff_c.abi3.so`` next to ``tinyeff/__init__.py``); ``python tinyeff/kernels/_build_c.py``
builds in place for development: it compiles in a temporary directory and atomically renames the
result over ``tinyeff/_tinyeff_c.abi3.so``, so processes that already loaded the old library keep
running (copying over a mapped library in place kills them with SIGBUS). The declarations come from ``csrc/tinyeff.h`` (preprocessor lines
dropped, since cffi's cdef does not run the preprocessor). Every ``.c`` under ``csrc/`` is compiled,
in subfolders too (a kernel family may keep its sources in ``csrc/<family>/``), with ``csrc`` and each
of its subfolders on the include path, so a source can move into a folder without a build change.
Compiler flags are chosen here, in one
place: -O3, -fopenmp when the compiler supports it, and deliberately no -march=native. AVX2,
AVX-512 and VNNI code carries function-level ``target`` attributes and is picked at run time by
CPU detection, so the extension runs on any x86-64 (and compiles portably elsewhere).
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from cffi import FFI

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CSRC = os.path.join(ROOT, "csrc")
BASE_FLAGS = ["-O3", "-std=c11", "-fno-strict-aliasing", "-Wall", "-Wno-unknown-pragmas"]


def cdef_text(header_path):
    """The header without preprocessor lines (``#include``, ``#ifndef``, ...), ready for ``ffi.cdef``."""
    with open(header_path) as f:
        return "".join(line for line in f if not line.lstrip().startswith("#"))


def _compiler():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return cc.split()


def openmp_flags():
    """``["-fopenmp"]`` if the C compiler accepts it and links an OpenMP program, else ``[]``."""
    program = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "t.c")
        with open(src, "w") as f:
            f.write(program)
        try:
            done = subprocess.run(_compiler() + ["-fopenmp", src, "-o", os.path.join(tmp, "t")],
                                  capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return []
    return ["-fopenmp"] if done.returncode == 0 else []


def _relative(path):
    """Paths relative to the working directory when possible (setuptools prefers them)."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def c_sources():
    """Every C source under csrc/, subfolders included, in a stable order."""
    return sorted(glob.glob(os.path.join(CSRC, "**", "*.c"), recursive=True))


def include_dirs():
    """csrc/ and every folder under it (headers are included by name from any of them)."""
    dirs = [CSRC]
    for root, subdirs, _ in os.walk(CSRC):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith((".", "__")))
        dirs.extend(os.path.join(root, d) for d in subdirs)
    return dirs


def make_builder(absolute=False):
    """The FFI builder; ``absolute=True`` for ``ffi.compile``, which runs in its own directory."""
    place = os.path.abspath if absolute else _relative
    ffi = FFI()
    ffi.cdef(cdef_text(os.path.join(CSRC, "tinyeff.h")))
    omp = openmp_flags()
    ffi.set_source(
        "tinyeff._tinyeff_c",
        '#include "tinyeff.h"',
        sources=[place(p) for p in c_sources()],
        include_dirs=[place(d) for d in include_dirs()],
        extra_compile_args=BASE_FLAGS + omp,
        extra_link_args=omp,
    )
    return ffi


ffibuilder = make_builder()

def emit(out_c):
    """Write the cffi module's C source to ``out_c`` and the build's sources and flags beside it
    (``out_c + ".vars"``, bash arrays) for a cross build (scripts/arm64-check.sh)."""
    ffi = make_builder(absolute=True)
    _name, _src, _ext, kw = ffi._assigned_source
    ffi.emit_c_code(out_c)
    with open(out_c + ".vars", "w") as f:
        f.write("SOURCES=(%s)\n" % " ".join(kw["sources"]))
        f.write("INCLUDES=(%s)\n" % " ".join("-I" + d for d in kw["include_dirs"]))
        f.write("CARGS=(%s)\n" % " ".join(kw["extra_compile_args"]))
        f.write("LARGS=(%s)\n" % " ".join(kw["extra_link_args"]))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--emit":
        emit(sys.argv[2])
        sys.exit(0)
    # Development build: compile in a temp dir, copy next to the target, then rename over it.
    with tempfile.TemporaryDirectory() as tmp:
        built = make_builder(absolute=True).compile(tmpdir=tmp, verbose=True)
        target = os.path.join(ROOT, "tinyeff", "_tinyeff_c.abi3.so")
        shutil.copy(built, target + ".tmp")
        os.replace(target + ".tmp", target)
        for stale in glob.glob(os.path.join(ROOT, "tinyeff", "_tinyeff_c.cpython-*.so")):
            os.remove(stale)
        sys.stdout.write(f"built {target}\n")
