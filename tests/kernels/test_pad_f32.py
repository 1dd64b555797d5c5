"""Zero padding for the direct convolution's layout: every ISA path against the reference."""
import numpy as np
import pytest

from tinyeff.kernels.pad import spec as pad_ref
from tinyeff.testing import c_paths, kernel_or_skip

_kernel = kernel_or_skip


@pytest.mark.parametrize("tier", ["ref"] + c_paths())        # a vector body per ISA path
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (3, 16, 32, 32), (1, 2, 0, 4), (2, 1, 3, 0),
                                   (1, 2, 3, 17), (1, 1, 2, 33)])   # rows around 4/8/16 lanes, H = 0, W = 0
@pytest.mark.parametrize("padding", [0, 1, 2, 5, 9])
def test_pad2d_f32_matches_ref(tier, shape, padding, rng):
    pad = _kernel("pad2d_f32", tier)
    x = rng.standard_normal(shape).astype(np.float32)
    got = pad(x[:, :, ::-1] if shape[2] else x, padding)     # a non-contiguous view too
    want = pad_ref.pad2d_f32(np.ascontiguousarray(x[:, :, ::-1] if shape[2] else x), padding)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("tier", ["ref", "c"])
def test_pad2d_f32_rejects_bad_input(tier):
    pad = _kernel("pad2d_f32", tier)
    with pytest.raises(ValueError, match="padding >= 0"):
        pad(np.zeros((2, 3), np.float32), 1)
    with pytest.raises(ValueError, match="padding >= 0"):
        pad(np.zeros((1, 1, 2, 2), np.float32), -1)
