"""blas_threads: BLAS runs on the given number of threads inside the block, as before after it."""
import pytest

from tinyeff.kernels.blas import blas_threads

threadpoolctl = pytest.importorskip("threadpoolctl",
                                    reason="threadpoolctl is not installed; pip install threadpoolctl")


def _blas_threads():
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]


def test_blas_threads_limits_inside_and_restores_after():
    import numpy  # noqa: F401  (loads NumPy's BLAS)
    before = _blas_threads()
    if not before:
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl on this build; use a NumPy wheel that "
                    "bundles OpenBLAS (pip install --force-reinstall numpy) to run this test")
    with blas_threads(1):
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before
