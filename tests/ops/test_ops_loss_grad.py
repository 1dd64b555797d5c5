"""softmax, log_softmax, cross_entropy (with and without label smoothing), mse_loss, kl_div and
dropout: gradient checks in float64, forward values against direct formulas, bad-input errors."""
import numpy as np
import pytest

from tinyeff import ops
from tinyeff.tensor import Tensor
from tinyeff.testing import check_grad


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_grad(axis, rng):
    check_grad(lambda x: ops.softmax(x, axis), rng.standard_normal((4, 5)))


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_log_softmax_grad(axis, rng):
    check_grad(lambda x: ops.log_softmax(x, axis), rng.standard_normal((4, 5)))


def test_softmax_forward_and_large_logits_do_not_overflow():
    x = np.array([[1000.0, 1001.0, 999.0], [-3.0, 0.0, 2.0]])
    expected = np.exp(x - x.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    with np.errstate(over="raise"):
        np.testing.assert_allclose(ops.softmax(Tensor(x)).data, expected, rtol=1e-12)
        np.testing.assert_allclose(ops.log_softmax(Tensor(x)).data, np.log(expected), rtol=1e-12)


@pytest.mark.parametrize("n", [1, 6])
def test_cross_entropy_grad(n, rng):
    labels = rng.integers(0, 4, n)
    check_grad(lambda x: ops.cross_entropy(x, labels), rng.standard_normal((n, 4)))


@pytest.mark.parametrize("smoothing", [0.1, 0.3])
def test_cross_entropy_grad_with_label_smoothing(smoothing, rng):
    labels = rng.integers(0, 5, 6)
    check_grad(lambda x: ops.cross_entropy(x, labels, label_smoothing=smoothing), rng.standard_normal((6, 5)))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_forward_matches_formula(smoothing, rng):
    logits, labels = rng.standard_normal((5, 3)), np.array([0, 2, 1, 1, 0])
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    nll = -logp[np.arange(5), labels]
    uniform = -logp.mean(axis=1)      # cross-entropy against the uniform distribution
    expected = np.mean((1 - smoothing) * nll + smoothing * uniform)
    got = ops.cross_entropy(Tensor(logits), labels, label_smoothing=smoothing)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12)


def test_cross_entropy_accepts_labels_as_tensor(rng):
    logits = rng.standard_normal((3, 4))
    a = ops.cross_entropy(Tensor(logits), np.array([0, 3, 1])).item()
    b = ops.cross_entropy(Tensor(logits), Tensor(np.array([0, 3, 1]))).item()
    assert a == b


@pytest.mark.parametrize("labels", [[0, 4, 1], [-1, 0, 1]])
def test_cross_entropy_label_out_of_range_names_the_range(labels):
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\] for 4 classes"):
        ops.cross_entropy(Tensor(np.zeros((3, 4))), np.array(labels))


def test_cross_entropy_float_labels_raise():
    with pytest.raises(ValueError, match="integer array"):
        ops.cross_entropy(Tensor(np.zeros((3, 4))), np.array([0.0, 1.0, 2.0]))


def test_cross_entropy_label_count_mismatch_raises():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        ops.cross_entropy(Tensor(np.zeros((3, 4))), np.array([0, 1]))


def test_cross_entropy_bad_smoothing_raises():
    with pytest.raises(ValueError, match="label_smoothing"):
        ops.cross_entropy(Tensor(np.zeros((2, 4))), np.array([0, 1]), label_smoothing=1.0)


def test_mse_loss_grad_both_inputs(rng):
    check_grad(ops.mse_loss, rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))


def test_mse_loss_forward_is_mean_square(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(ops.mse_loss(Tensor(a), Tensor(b)).data, np.mean((a - b) ** 2), rtol=1e-12)


def _probabilities(rng, shape, zero_some=False):
    p = rng.uniform(0.1, 1.0, shape)
    if zero_some:
        p[0, 0] = 0.0
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("reduction", ["batchmean", "sum"])
def test_kl_div_grad(reduction, rng):
    p = Tensor(_probabilities(rng, (3, 5), zero_some=True))
    log_q = np.log(_probabilities(rng, (3, 5)))
    check_grad(lambda lq: ops.kl_div(lq, p, reduction), log_q)


def test_kl_div_forward_matches_formula_with_zero_target(rng):
    p, q = _probabilities(rng, (4, 3), zero_some=True), _probabilities(rng, (4, 3))
    mask = p > 0
    expected = (p[mask] * (np.log(p[mask]) - np.log(q[mask]))).sum() / 4
    np.testing.assert_allclose(ops.kl_div(Tensor(np.log(q)), Tensor(p)).data, expected, rtol=1e-12)


def test_kl_div_of_identical_distributions_is_zero(rng):
    p = _probabilities(rng, (2, 4))
    assert abs(ops.kl_div(Tensor(np.log(p)), p).item()) < 1e-12


def test_kl_div_unknown_reduction_raises(rng):
    with pytest.raises(ValueError, match="reduction"):
        ops.kl_div(Tensor(np.zeros((2, 2))), np.full((2, 2), 0.5), reduction="mean")


def test_dropout_grad_with_fixed_rng(rng):
    check_grad(lambda x: ops.dropout(x, 0.4, rng=np.random.default_rng(7)), rng.standard_normal((4, 6)))


def test_dropout_zeros_and_rescales_survivors():
    x = Tensor(np.ones((200, 50)))
    out = ops.dropout(x, 0.25, rng=np.random.default_rng(3)).data
    assert set(np.unique(out)) <= {0.0, 1.0 / 0.75}
    assert abs((out == 0).mean() - 0.25) < 0.02


def test_dropout_in_eval_mode_is_identity():
    x = Tensor(np.ones((3, 3)))
    assert ops.dropout(x, 0.5, training=False) is x


def test_dropout_bad_probability_raises():
    with pytest.raises(ValueError, match=r"p=1.0 must be in \[0, 1\)"):
        ops.dropout(Tensor(np.ones(3)), 1.0)
