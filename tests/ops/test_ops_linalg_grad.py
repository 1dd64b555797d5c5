"""matmul (2-D, batched, broadcasting) and linear: gradient checks and forward values."""
import numpy as np
import pytest

from tinyeff import ops
from tinyeff.tensor import Tensor
from tinyeff.testing import check_grad


@pytest.mark.parametrize("shape_a,shape_b", [
    ((3, 4), (4, 5)),
    ((1, 1), (1, 1)),
    ((2, 3, 4), (2, 4, 5)),       # batched
    ((3, 4), (2, 4, 5)),          # a broadcast over the batch
    ((2, 3, 4), (4, 5)),          # b broadcast over the batch
    ((1, 3, 4), (2, 4, 5)),       # batch dim of size 1 stretched
    ((2, 1, 3, 4), (1, 3, 4, 2)),  # both stretched
])
def test_matmul_grad(shape_a, shape_b, rng):
    check_grad(ops.matmul, rng.standard_normal(shape_a), rng.standard_normal(shape_b))


@pytest.mark.parametrize("shape_a,shape_b", [((3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (1, 3, 4, 2))])
def test_matmul_forward_matches_numpy(shape_a, shape_b, rng):
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    np.testing.assert_allclose(ops.matmul(Tensor(a), Tensor(b)).data, a @ b, rtol=1e-12)


def test_matmul_operator_with_constant_array(rng):
    const = rng.standard_normal((3, 4))
    check_grad(lambda a: const @ a, rng.standard_normal((4, 2)))


def test_matmul_rejects_mismatched_inner_dimensions():
    with pytest.raises(ValueError, match="inner dimensions"):
        ops.matmul(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 2))))


def test_matmul_rejects_vectors():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        ops.matmul(Tensor(np.ones(3)), Tensor(np.ones((3, 2))))


@pytest.mark.parametrize("n", [1, 5])
def test_linear_grad_with_bias(n, rng):
    check_grad(ops.linear, rng.standard_normal((n, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3))


def test_linear_grad_without_bias(rng):
    check_grad(ops.linear, rng.standard_normal((5, 4)), rng.standard_normal((3, 4)))


def test_linear_forward_is_x_w_transpose_plus_b(rng):
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    np.testing.assert_allclose(ops.linear(Tensor(x), Tensor(w), Tensor(b)).data, x @ w.T + b, rtol=1e-12)


def test_linear_feature_mismatch_names_expected_features():
    with pytest.raises(ValueError, match="expects 4 input features"):
        ops.linear(Tensor(np.ones((2, 3))), Tensor(np.ones((5, 4))))
