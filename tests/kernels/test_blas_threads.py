"""blas_threads: BLAS runs on the given number of threads inside the block, as before after it;
matmul: one BLAS thread for the call, the previous count after it, the product unchanged."""
import numpy as np
import pytest

from tinyeff.kernels.blas import blas_threads, matmul

threadpoolctl = pytest.importorskip("threadpoolctl",
                                    reason="threadpoolctl is not installed; pip install threadpoolctl")


def _blas_threads():
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]


def _visible_blas():
    before = _blas_threads()
    if not before:
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl on this build; use a NumPy wheel that "
                    "bundles OpenBLAS (pip install --force-reinstall numpy) to run this test")
    return before


class _Probe:
    """A left operand whose product is the BLAS thread counts in effect while it is computed."""
    def __matmul__(self, other):
        return _blas_threads()


def test_blas_threads_limits_inside_and_restores_after():
    before = _visible_blas()
    with blas_threads(1):
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before


def test_matmul_runs_blas_on_one_thread_and_restores_the_count():
    before = _visible_blas()
    with blas_threads(3):                  # a count above 1, so there is something to restore
        assert matmul(_Probe(), None) == [1] * len(before)
        assert _blas_threads() == [3] * len(before)
    assert _blas_threads() == before


def test_matmul_equals_the_product(rng):
    a = rng.standard_normal((17, 33)).astype(np.float32)
    b = rng.standard_normal((33, 5)).astype(np.float32)
    np.testing.assert_array_equal(matmul(a, b), a @ b)    # the same BLAS call, only on one thread


def test_a_blas_loaded_later_is_looked_up_after_the_next_import(monkeypatch):
    """SciPy's OpenBLAS loads when Numba compiles its first np.dot, after tinyeff listed the BLAS
    libraries; any import since the last look means a new look, so that library is limited too."""
    import sys
    import types
    from tinyeff.kernels import blas
    first = blas._controller()
    assert blas._controller() is first                       # nothing imported: the same view
    monkeypatch.setitem(sys.modules, "_tinyeff_test_new_module", types.ModuleType("_tinyeff_test_new_module"))
    assert blas._controller() is not first
