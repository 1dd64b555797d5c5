"""PyTorch as an extra reference (skipped when torch is not installed; it is optional): the same
float32 inputs and weights through tinyeff and torch, comparing outputs and gradients."""
import numpy as np
import pytest

from tinyeff import Tensor, nn, ops

torch = pytest.importorskip("torch", reason="torch is not installed (optional extra reference: "
                                           "pip install tinyeff[torch])")
F = torch.nn.functional

RTOL, ATOL = 1e-5, 1e-5   # float32, different accumulation order


def both(x):
    return Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)


@pytest.mark.parametrize("stride,padding,dilation,groups",
                         [(1, 1, 1, 1), (2, 0, 1, 1), (1, 2, 2, 1), (2, 1, 1, 2), (1, 1, 1, 4)])
def test_conv2d_matches_torch(stride, padding, dilation, groups, rng):
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((8, 4 // groups, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    (xt, xr), (wt, wr), (bt, br) = both(x), both(w), both(b)
    out = ops.conv2d(xt, wt, bt, stride, padding, dilation, groups)
    ref = F.conv2d(xr, wr, br, stride, padding, dilation, groups)
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    ref.backward(torch.tensor(g))
    for mine, theirs in ((out.data, ref), (xt.grad, xr.grad), (wt.grad, wr.grad), (bt.grad, br.grad)):
        np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm2d_matches_torch(training, rng):
    x = (2 * rng.standard_normal((4, 3, 5, 5)) + 1).astype(np.float32)
    mine = nn.BatchNorm2d(3).train(training)
    theirs = torch.nn.BatchNorm2d(3).train(training)
    xt, xr = both(x)
    out, ref = mine(xt), theirs(xr)
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(xt.grad, xr.grad.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(mine.running_var, theirs.running_var.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_matches_torch(smoothing, rng):
    logits, labels = rng.standard_normal((6, 5)).astype(np.float32), rng.integers(0, 5, 6)
    xt, xr = both(logits)
    loss = ops.cross_entropy(xt, labels, label_smoothing=smoothing)
    ref = F.cross_entropy(xr, torch.tensor(labels), label_smoothing=smoothing)
    loss.backward()
    ref.backward()
    np.testing.assert_allclose(loss.data, ref.item(), rtol=RTOL)
    np.testing.assert_allclose(xt.grad, xr.grad.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_matches_torch(kind, rng):
    x = (rng.permutation(2 * 3 * 7 * 7).reshape(2, 3, 7, 7) * 0.01).astype(np.float32)
    xt, xr = both(x)
    out = (ops.max_pool2d if kind == "max" else ops.avg_pool2d)(xt, 3, 2, 1)
    ref = (F.max_pool2d if kind == "max" else F.avg_pool2d)(xr, 3, 2, 1)
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(xt.grad, xr.grad.numpy(), rtol=RTOL, atol=ATOL)
