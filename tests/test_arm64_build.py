"""The C tier builds for ARM64 (cross-compiled here) and without OpenMP (Apple clang has none).

The emulated run of the kernel tests is scripts/arm64-check.sh (minutes, downloads packages); this
test only compiles every C source the build script names, with its flags, and fails on any error or
warning, so an x86-only construct (an unguarded target attribute, an intrinsic outside its #ifdef)
cannot land unnoticed.
"""
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tinyeff.kernels import _build_c

CROSS = "aarch64-linux-gnu-gcc"


def _sources_and_flags():
    ffi = _build_c.make_builder(absolute=True)
    kw = ffi._assigned_source[3]
    includes = ["-I" + d for d in kw["include_dirs"]]
    return kw["sources"], [f for f in kw["extra_compile_args"] if f != "-fopenmp"], includes


def _compile_all(compiler, flags, tmp_path):
    sources, base, includes = _sources_and_flags()

    def one(src):
        out = tmp_path / (os.path.relpath(src, _build_c.CSRC).replace(os.sep, "_") + ".o")   # csrc/<family>/x.c too
        done = subprocess.run([compiler, *base, *flags, *includes, "-fPIC", "-c", src, "-o", str(out)],
                              capture_output=True, text=True, timeout=300)
        return src, done.returncode, done.stderr.strip()

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(one, sources))
    problems = [f"{src}: {err or f'exit {rc}'}" for src, rc, err in results if rc != 0 or err]
    assert not problems, "\n".join(problems)
    assert len(results) >= 8


@pytest.mark.skipif(shutil.which(CROSS) is None,
                    reason=f"{CROSS} not found: apt-get install gcc-aarch64-linux-gnu to cross-check ARM64")
def test_csrc_cross_compiles_for_arm64_without_warnings(tmp_path):
    _compile_all(CROSS, ["-fopenmp"], tmp_path)


def test_csrc_compiles_without_openmp(tmp_path):
    """macOS's clang has no -fopenmp: the kernels must build single-threaded, warning-free."""
    cc = _build_c._compiler()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"C compiler {cc!r} not found: apt-get install gcc")
    _compile_all(cc, ["-fsyntax-only"], tmp_path)
