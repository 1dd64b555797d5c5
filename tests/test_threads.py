"""set_threads: one count for OpenMP (C kernels), Numba and BLAS, and for child processes."""
import os

import numba
import pytest

from tinyeff.kernels import c
from tinyeff.threads import ENV_VARS, set_threads


@pytest.fixture
def restore_threads():
    env = {v: os.environ.get(v) for v in ENV_VARS}
    numba_before = numba.get_num_threads()
    c_before = c.num_threads() if c.load_error() is None else None
    yield
    for var, value in env.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
    numba.set_num_threads(numba_before)
    if c_before is not None:
        c.set_num_threads(c_before)


def test_set_threads_sizes_every_pool(restore_threads):
    got = set_threads(1)
    assert got["numba"] == numba.get_num_threads() == 1
    if c.load_error() is None:
        assert got["openmp"] == c.num_threads() == 1
    assert all(os.environ[v] == "1" for v in ENV_VARS)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_set_threads_rejects_a_non_positive_integer(bad):
    with pytest.raises(ValueError, match="--threads"):
        set_threads(bad)
