"""Gradient checks for the reductions (sum, mean, max) and the movement ops (reshape, transpose,
getitem, flatten), in float64 against central differences."""
import numpy as np
import pytest

from tinyeff import ops
from tinyeff.tensor import Tensor
from tinyeff.testing import check_grad

AXES = [None, 0, 1, -1, (0, 2), (1, 2)]


def distinct(rng, shape, step=0.1):
    """Distinct values at least ``step`` apart (a random permutation), so max has no ties."""
    return rng.permutation(np.prod(shape)).reshape(shape) * step - 1.0


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
def test_sum_grad(axis, keepdims, rng):
    check_grad(lambda a: ops.sum(a, axis, keepdims), rng.standard_normal((2, 3, 4)))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
def test_mean_grad(axis, keepdims, rng):
    check_grad(lambda a: ops.mean(a, axis, keepdims), rng.standard_normal((2, 3, 4)))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
def test_max_grad_distinct_values(axis, keepdims, rng):
    check_grad(lambda a: ops.max(a, axis, keepdims), distinct(rng, (2, 3, 4)))


@pytest.mark.parametrize("axis", AXES)
def test_reduction_output_shapes_match_numpy(axis, rng):
    x = rng.standard_normal((2, 3, 4))
    for keepdims in (False, True):
        for op, ref in ((ops.sum, np.sum), (ops.mean, np.mean), (ops.max, np.max)):
            got = op(Tensor(x), axis, keepdims).data
            np.testing.assert_allclose(got, ref(x, axis=axis, keepdims=keepdims), rtol=1e-12)
            assert got.shape == np.shape(ref(x, axis=axis, keepdims=keepdims))


def test_max_ties_share_the_gradient_equally():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]]), requires_grad=True)
    ops.max(x, axis=1).backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


def test_mean_of_every_element_divides_by_size():
    x = Tensor(np.ones((2, 5)), requires_grad=True)
    ops.mean(x).backward()
    np.testing.assert_allclose(x.grad, np.full((2, 5), 0.1))


@pytest.mark.parametrize("shape", [(6, 4), (2, 12), (4, 3, 2), (-1,), (3, -1)])
def test_reshape_grad(shape, rng):
    check_grad(lambda a: ops.reshape(a, shape), rng.standard_normal((2, 3, 4)))


@pytest.mark.parametrize("axes", [None, (0, 2, 1), (2, 0, 1), (1, 2, 0), (-1, 0, 1), (0, -1, -2)])
def test_transpose_grad(axes, rng):
    check_grad(lambda a: ops.transpose(a, axes), rng.standard_normal((2, 3, 4)))


def test_tensor_T_and_method_transpose_grad(rng):
    check_grad(lambda a: a.T @ a.transpose(1, 0).T, rng.standard_normal((3, 4)))


@pytest.mark.parametrize("index", [
    (slice(None), 1),
    (slice(1, None), slice(None, None, 2)),
    (0,),
    (Ellipsis, -1),
    (np.array([0, 2, 0]),),                      # repeated indices must accumulate
    (np.array([1, 0, 1]), np.array([3, 0, 3])),   # fancy pairs, repeated
    (np.array([[True, False, True, False], [False] * 4, [True] * 4]),),
])
def test_getitem_grad(index, rng):
    check_grad(lambda a: ops.getitem(a, index), rng.standard_normal((3, 4)))


def test_getitem_repeated_index_accumulates():
    x = Tensor(np.zeros(3), requires_grad=True)
    x[np.array([1, 1, 2, 1])].backward(np.ones(4))
    np.testing.assert_array_equal(x.grad, [0, 3, 1])


def test_getitem_with_tensor_indices_alone_and_in_a_tuple():
    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    rows = Tensor(np.array([0, 2]))
    np.testing.assert_array_equal(x[rows].data, x.data[[0, 2]])
    x[rows, 1].sum().backward()
    expected = np.zeros((3, 4))
    expected[[0, 2], 1] = 1.0
    np.testing.assert_array_equal(x.grad, expected)


@pytest.mark.parametrize("start_dim", [0, 1, 2])
def test_flatten_grad(start_dim, rng):
    check_grad(lambda a: ops.flatten(a, start_dim), rng.standard_normal((2, 3, 2, 2)))


def test_flatten_shape():
    assert ops.flatten(Tensor(np.zeros((2, 3, 4, 5)))).shape == (2, 60)
