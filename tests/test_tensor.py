"""The autograd core: Tensor construction, backward (accumulation, topological order, errors),
no_grad, detach, and the operator overloads."""
import threading

import numpy as np
import pytest

import tinyeff
from tinyeff import Tensor, no_grad
from tinyeff.testing import check_grad


def test_python_floats_become_float32_and_arrays_keep_their_dtype():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(np.zeros(2, np.float64)).dtype == np.float64
    assert Tensor(np.zeros(2, np.int64)).dtype == np.int64


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating tensors"):
        Tensor(np.arange(3), requires_grad=True)


def test_tensor_used_twice_accumulates_both_gradients():
    x = Tensor(np.array([2.0, 3.0]), requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)


def test_diamond_graph_sends_gradient_through_both_branches():
    x = Tensor(np.array([1.5]), requires_grad=True)
    a = x * 3.0
    b = a.exp()
    c = a * a
    (b + c).sum().backward()
    np.testing.assert_allclose(x.grad, 3 * np.exp(4.5) + 2 * 4.5 * 3)


def test_backward_twice_accumulates_into_leaf_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [5.0, 5.0])


def test_intermediate_tensors_keep_no_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 2.0
    y.sum().backward()
    assert y.grad is None and x.grad is not None


def test_backward_on_non_scalar_without_grad_raises():
    y = Tensor(np.ones(3), requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="only for a scalar"):
        y.backward()


def test_backward_with_wrong_grad_shape_raises():
    y = Tensor(np.ones(3), requires_grad=True) * 2.0
    with pytest.raises(ValueError, match="grad has shape"):
        y.backward(np.ones(4))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).sum().backward()


def test_backward_with_explicit_grad_on_non_scalar():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * x).backward(np.array([1.0, 0.5, 2.0]))
    np.testing.assert_allclose(x.grad, [2.0, 2.0, 12.0])


def test_constant_inputs_get_no_grad():
    x, c = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2))
    (x * c).sum().backward()
    assert c.grad is None


def test_no_grad_records_no_graph():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = (x * 2.0).exp().sum()
    assert not y.requires_grad and y._parents == () and y._backward is None
    assert tinyeff.is_grad_enabled()


def test_no_grad_restores_mode_after_exception():
    with pytest.raises(KeyError):
        with no_grad():
            raise KeyError("x")
    assert tinyeff.is_grad_enabled()


def test_no_grad_nests():
    with no_grad():
        with no_grad():
            pass
        assert not tinyeff.is_grad_enabled()
    assert tinyeff.is_grad_enabled()


def test_no_grad_is_per_thread():
    seen = []
    with no_grad():
        t = threading.Thread(target=lambda: seen.append(tinyeff.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_detach_cuts_the_graph_and_shares_data():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d._parents == ()
    assert np.shares_memory(d.data, y.data)
    (x * d).sum().backward()
    np.testing.assert_allclose(x.grad, d.data)     # d is a constant: no second-order path


def test_graph_is_released_after_backward():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x * 2.0
    z = y.sum()
    z.backward()
    assert y._parents == () and z._parents == ()


def test_second_backward_through_a_freed_graph_raises():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="already freed"):
        loss.backward()


def test_intermediate_shared_by_two_separate_backwards_raises_instead_of_dropping_gradient():
    w = Tensor(np.array([2.0]), requires_grad=True)
    h = w * 3.0
    (h * h).sum().backward()
    with pytest.raises(RuntimeError, match="add the losses and call backward"):
        (h * 1.0).sum().backward()


def test_two_losses_summed_then_one_backward_gets_both_gradients():
    w = Tensor(np.array([2.0]), requires_grad=True)
    h = w * 3.0
    ((h * h).sum() + (h * 1.0).sum()).backward()
    np.testing.assert_allclose(w.grad, [2 * 6.0 * 3 + 3])


def test_deep_chain_backward_does_not_hit_recursion_limit():
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0])


def test_ndarray_on_the_left_uses_tensor_operators():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = np.array([3.0, 4.0]) * x + np.array([1.0, 1.0])
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_operator_overloads_grad(rng):
    b = rng.uniform(0.5, 1.5, (3, 3))

    def fn(a):
        return ((a + 1.0) * 2.0 - a / 3.0 + (-a) ** 2 - 1.0 / (a + 2.0)) @ Tensor(b)
    check_grad(fn, rng.uniform(0.5, 1.5, (2, 3)))


def test_tensor_methods_grad(rng):
    check_grad(lambda a: a.reshape(3, 4).T.exp().log().relu().flatten(0), rng.uniform(0.5, 1.5, (2, 6)))
    distinct = rng.permutation(12).reshape(3, 4) * 0.1     # no ties for max
    check_grad(lambda a: a.max(axis=1) + a.mean(axis=1) + a.sum(axis=1, keepdims=False), distinct)


def test_item_len_numpy_shape():
    t = Tensor(np.arange(6.0).reshape(2, 3))
    assert (t.shape, t.ndim, t.size, len(t)) == ((2, 3), 2, 6, 2)
    assert t.numpy() is t.data and t.sum().item() == 15.0
