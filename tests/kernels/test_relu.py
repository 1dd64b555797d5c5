"""ReLU kernels: every tier against the NumPy reference, including NaN, inf, -0.0 and odd sizes."""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.relu import spec as relu_ref
from tinyeff.testing import c_paths, kernel_or_skip

TIERS = ["ref"] + c_paths()          # the C tier once per ISA path
# sizes around the 4/8/16-lane vectors and the 16384-float thread blocks
SHAPES = [(0,), (1,), (17,), (3, 5, 7), (16385,), (64, 32, 30, 30)]
_kernel = kernel_or_skip


def _values(rng, shape, scale):
    """Normal values, with NaN, +-inf, -0.0 and 0.0 at the start and at random places (every lane)."""
    x = (rng.standard_normal(shape) * scale).astype(np.float32)
    flat = x.reshape(-1)
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0], dtype=np.float32)
    flat[: min(flat.size, 5)] = specials[: min(flat.size, 5)]
    where = rng.random(flat.size) < 0.1
    flat[where] = rng.choice(specials, int(where.sum()))
    return x


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e30])
def test_relu_f32_matches_ref(tier, shape, scale, rng):
    x = _values(rng, shape, scale)
    got = _kernel("relu_f32", tier)(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_array_equal(got, relu_ref.relu_f32(x))     # NaN stays NaN in both


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")   # inf * 0 in the NumPy reference
@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("shape", SHAPES)
def test_relu_backward_f32_matches_ref(tier, shape, rng):
    out = relu_ref.relu_f32(_values(rng, shape, 1.0))
    g = _values(rng, shape, 10.0)                     # NaN / inf gradients, also where out <= 0
    got = _kernel("relu_backward_f32", tier)(g, out)
    np.testing.assert_array_equal(got, relu_ref.relu_backward_f32(g, out))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")   # inf * 0 in the NumPy reference
@pytest.mark.parametrize("tier", c_paths())
def test_relu_every_tail_length(tier, rng):
    relu, backward = _kernel("relu_f32", tier), _kernel("relu_backward_f32", tier)
    for n in range(35):                                   # 0 .. 2 * 16 + 2: every vector tail
        x, g = _values(rng, (n,), 1.0), _values(rng, (n,), 10.0)
        np.testing.assert_array_equal(relu(x), relu_ref.relu_f32(x), err_msg=f"n={n}")
        np.testing.assert_array_equal(backward(g, relu(x)), relu_ref.relu_backward_f32(g, relu(x)),
                                      err_msg=f"n={n}")


@pytest.mark.parametrize("tier", TIERS)
def test_relu_f32_reads_strided_input(tier, rng):
    x = rng.standard_normal((6, 8)).astype(np.float32)[:, ::2]
    np.testing.assert_array_equal(_kernel("relu_f32", tier)(x), np.maximum(x, 0))


def test_relu_c_tier_rejects_float64():
    relu = _kernel("relu_f32", "c")
    with pytest.raises(TypeError, match="float32"):
        relu(np.zeros(3))


@pytest.mark.parametrize("tier", TIERS)
def test_relu_backward_rejects_mismatched_shapes(tier):
    backward = _kernel("relu_backward_f32", tier)
    with pytest.raises(ValueError, match="differ"):
        backward(np.zeros(3, np.float32), np.zeros(4, np.float32))
