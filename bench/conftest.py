"""Shared benchmark fixtures: a seeded ``rng`` and the machine facts every result should carry."""
import numpy as np
import pytest

from tinyeff.kernels import cpu


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def machine_info():
    """Thread counts and the CPU flags tinyeff's kernels dispatch on, for ``extra_info``."""
    import numba
    from tinyeff import kernels
    flags = sorted(f for f, on in cpu.features().items() if on)
    info = {"numba_threads": numba.get_num_threads(), "cpu_flags": ",".join(flags)}
    if kernels.available("gemm_s8", "c"):
        from tinyeff.kernels import c as c_tier
        info["c_threads"] = c_tier.num_threads()
    return info
