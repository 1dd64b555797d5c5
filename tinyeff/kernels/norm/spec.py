"""Reference batch-norm kernels for training: the forward with batch statistics, and its backward.

The one idea: batch norm's training forward needs two per-channel reductions (mean and biased
variance), and its backward needs two more (sum(grad_out) and sum(grad_out * x_hat)); everything
else is an elementwise map, so what follows batch norm in a ResNet (the shortcut add, the ReLU)
rides along in the same passes: ``relu`` and ``residual`` forward, ``relu_beta`` backward. These NumPy versions spell the math out plainly and are the contract
for the faster tiers (c.py over csrc/norm/bnorm.c, one pass per reduction).

Layout is NCHW; an (N, C) input is passed as (N, C, 1, 1). Statistics are over (N, H, W) per
channel. Any float dtype is accepted here (float64 gradient checks, float16 mixed precision): the
arithmetic runs in ``promote_types(x.dtype, float32)`` so float16 never loses the variance. What
this file leaves out: running statistics and evaluation mode (both are cheap per-channel maps and
live in ``tinyeff/ops/norm.py``).
"""
import numpy as np

from tinyeff.kernels.contract import Tolerance, case, define

AXES = (0, 2, 3)           # every axis but C
BSHAPE = (1, -1, 1, 1)     # a (C,) vector broadcast over NCHW


def check_batchnorm(x, gamma, name="batchnorm_train_f32"):
    """Validate a 4-D input and a (C,) per-channel vector; raise ValueError naming the fix."""
    if x.ndim != 4:
        raise ValueError(f"{name}: x has shape {x.shape}; expected (N, C, H, W) "
                         "(reshape an (N, C) input to (N, C, 1, 1))")
    if gamma.shape != (x.shape[1],):
        raise ValueError(f"{name}: gamma has shape {gamma.shape} but x {x.shape} has "
                         f"{x.shape[1]} channels; pass one scale per channel")
    if x.size == 0:
        raise ValueError(f"{name}: x {x.shape} is empty; batch statistics need at least one "
                         "value per channel")


def check_batchnorm_train(x, gamma, beta, residual=None):
    check_batchnorm(x, gamma)
    check_batchnorm(x, beta)
    if residual is not None and residual.shape != x.shape:
        raise ValueError(f"batchnorm_train_f32: residual has shape {residual.shape}, x {x.shape}; "
                         "the residual is added to the output, so pass one of the output's shape")


def check_batchnorm_backward(grad_out, x, mean, invstd, gamma, relu_beta=None, name="batchnorm_backward_f32"):
    """Validate the backward's operands against x's shape; raise ValueError naming the fix."""
    check_batchnorm(x, gamma, name)
    if relu_beta is not None:
        check_batchnorm(x, relu_beta, name)
    if grad_out.shape != x.shape or mean.shape != gamma.shape or invstd.shape != gamma.shape:
        raise ValueError(f"{name}: grad_out {grad_out.shape}, x {x.shape}, mean {mean.shape} and "
                         f"invstd {invstd.shape} do not match; pass the mean and invstd "
                         "batchnorm_train_f32 returned for this x")


SHAPES = [(1, 1, 1, 1), (2, 3, 1, 1), (4, 5, 7, 3), (1, 2, 17, 16), (3, 16, 5, 5), (2, 1, 33, 1)]
F32_SUMS = Tolerance(rtol=1e-4, atol=1e-5, why="float32 reductions in a different order (and OpenMP "
                     "chunking) than NumPy's pairwise sums")


def batchnorm_train_cases(rng):
    for shape in SHAPES:
        c = shape[1]
        x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
        gamma, beta = rng.uniform(0.5, 2, c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
        yield case(x, gamma, beta, 1e-5)
        yield case(x, gamma, beta, 1e-5, relu=True)
        yield case(x, gamma, beta, 1e-5, relu=True, residual=rng.standard_normal(shape).astype(np.float32))
    # |mean| >> std (large enough to break E[x^2] - E[x]^2, small enough that float32 NumPy, the
    # reference, still has the digits; tests/kernels/test_norm.py checks larger means against float64)
    x = (rng.standard_normal((2, 3, 4, 4)) + 50).astype(np.float32)
    yield case(x, np.ones(3, np.float32), np.zeros(3, np.float32), 1e-3)


def batchnorm_backward_cases(rng):
    for shape in SHAPES:
        c = shape[1]
        x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
        _, mean, _, invstd = batchnorm_train_f32(x, np.ones(c, np.float32), np.zeros(c, np.float32), 1e-5)
        grad_out, gamma = rng.standard_normal(shape).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32)
        yield case(grad_out, x, mean, invstd, gamma)
        yield case(grad_out, x, mean, invstd, gamma, relu_beta=rng.standard_normal(c).astype(np.float32))


@define("batchnorm_train_f32", check=check_batchnorm_train, cases=batchnorm_train_cases, tolerance=F32_SUMS,
        faster_dtypes={"x": np.float32, "gamma": np.float32, "beta": np.float32, "residual": np.float32})
def batchnorm_train_f32(x, gamma, beta, eps, relu=False, residual=None):
    """Normalize ``x`` with its own per-channel batch statistics, then scale and shift.

    ``y = (x - mean) * (invstd * gamma) + beta`` with ``mean`` and the biased ``var`` taken over
    (N, H, W) and ``invstd = 1 / sqrt(var + eps)``; then ``y += residual`` if one is given, then
    ``y = max(y, 0)`` if ``relu`` (a ResNet block's batch norm, shortcut add and ReLU in one pass).

    Args:
        x: (N, C, H, W) float array.
        gamma, beta: (C,) scale and shift.
        eps: added to the variance before the square root.
        relu: clamp the output at 0 (after the residual).
        residual: None or an (N, C, H, W) array added to the output.

    Returns:
        (y, mean, var, invstd): ``y`` (N, C, H, W) in x's dtype; ``mean``, ``var`` (biased) and
        ``invstd``, each (C,) in the working dtype (float32 for float32 x). ``mean`` and ``var``
        feed the running estimates; ``mean`` and ``invstd`` are what the backward needs.

    Raises:
        ValueError: x is not 4-D, is empty, or gamma/beta do not have one value per channel.
    """
    work = np.promote_types(x.dtype, np.float32)
    xf = x.astype(work, copy=False)
    mean = xf.mean(axis=AXES)
    var = xf.var(axis=AXES)        # NumPy's two-pass variance: safe when |mean| >> std
    invstd = (1.0 / np.sqrt(var + eps)).astype(work)
    y = _affine(xf, mean, invstd, gamma, beta)
    if residual is not None:
        y = y + residual.astype(work, copy=False)
    if relu:
        y = np.maximum(y, 0)
    return y.astype(x.dtype, copy=False), mean, var, invstd


def _affine(xf, mean, invstd, gamma, beta):
    """``(x - mean) * (invstd * gamma) + beta`` in x's dtype, the expression every tier evaluates
    (so the backward's ReLU mask, recomputed from x, is the forward's bit for bit)."""
    scale = (invstd * gamma.astype(xf.dtype)).astype(xf.dtype)
    return (xf - mean.reshape(BSHAPE)) * scale.reshape(BSHAPE) + beta.astype(xf.dtype).reshape(BSHAPE)


@define("batchnorm_backward_f32", check=check_batchnorm_backward, cases=batchnorm_backward_cases,
        tolerance=F32_SUMS, faster_dtypes={"grad_out": np.float32, "x": np.float32, "mean": np.float32,
                                           "invstd": np.float32, "gamma": np.float32, "relu_beta": np.float32})
def batchnorm_backward_f32(grad_out, x, mean, invstd, gamma, relu_beta=None):
    """Gradients of the training forward, given the ``mean`` and ``invstd`` it returned.

    With ``relu_beta`` (the forward's ``beta``; for a forward with ``relu`` and no residual),
    ``grad_out`` is first masked where the forward's output was 0:
    ``grad_out * ((x - mean) * (invstd * gamma) + relu_beta > 0)``, recomputed from x.

    With ``m = N * H * W`` and ``x_hat = (x - mean) * invstd`` (recomputed, not stored):
    ``grad_beta = sum(grad_out)``, ``grad_gamma = sum(grad_out * x_hat)`` and
    ``grad_x = gamma * invstd / m * (m * grad_out - grad_beta - x_hat * grad_gamma)``.
    (The batch statistics depend on x, which gives the two subtracted terms.)

    Args:
        grad_out: (N, C, H, W) gradient of the loss with respect to y.
        x: (N, C, H, W) the forward's input.
        mean, invstd: (C,) as returned by ``batchnorm_train_f32``.
        gamma: (C,) the scale used in the forward.
        relu_beta: None, or (C,) the shift of a forward that applied a ReLU.

    Returns:
        (grad_x, grad_gamma, grad_beta): ``grad_x`` (N, C, H, W) in x's dtype; ``grad_gamma`` and
        ``grad_beta`` (C,) in the working dtype.

    Raises:
        ValueError: shapes do not match.
    """
    work = np.promote_types(x.dtype, np.float32)
    g = grad_out.astype(work, copy=False)
    if relu_beta is not None:
        with np.errstate(invalid="ignore"):      # inf * 0 is NaN, as ReLU's own backward gives
            g = g * (_affine(x.astype(work, copy=False), mean, invstd, gamma, relu_beta) > 0)
    x_hat = (x.astype(work, copy=False) - mean.reshape(BSHAPE)) * invstd.reshape(BSHAPE)
    grad_gamma = (g * x_hat).sum(axis=AXES)
    grad_beta = g.sum(axis=AXES)
    g_hat = g * gamma.astype(work).reshape(BSHAPE)
    m = x.size // x.shape[1]
    grad_x = (invstd.reshape(BSHAPE) / m) * (m * g_hat - g_hat.sum(axis=AXES).reshape(BSHAPE)
                                             - x_hat * (g_hat * x_hat).sum(axis=AXES).reshape(BSHAPE))
    return grad_x.astype(x.dtype, copy=False), grad_gamma, grad_beta


def check_add_relu_backward(grad_out, x, mean, invstd, gamma, out):
    check_batchnorm_backward(grad_out, x, mean, invstd, gamma, name="batchnorm_add_relu_backward_f32")
    if out.shape != x.shape:
        raise ValueError(f"batchnorm_add_relu_backward_f32: out has shape {out.shape}, x {x.shape}; pass the "
                         "output batchnorm_train_f32 returned with relu=True and this residual")


def batchnorm_add_relu_backward_cases(rng):
    for grad_out, x, mean, invstd, gamma in (c.args for c in batchnorm_backward_cases(rng) if not c.kwargs):
        out = np.maximum(rng.standard_normal(x.shape), 0).astype(np.float32)
        yield case(grad_out, x, mean, invstd, gamma, out)


@define("batchnorm_add_relu_backward_f32", check=check_add_relu_backward, cases=batchnorm_add_relu_backward_cases,
        tolerance=F32_SUMS, faster_dtypes={"grad_out": np.float32, "x": np.float32, "mean": np.float32,
                                           "invstd": np.float32, "gamma": np.float32, "out": np.float32})
def batchnorm_add_relu_backward_f32(grad_out, x, mean, invstd, gamma, out):
    """Gradients of ``out = relu(batch_norm(x) + residual)`` (the forward with ``relu`` and a residual).

    ``grad_residual = grad_out * (out > 0)`` (ReLU's backward), and the batch norm's gradients are
    ``batchnorm_backward_f32`` of that. One kernel, so the masked gradient is made and used while each
    channel is in cache, in one parallel loop.

    Args:
        grad_out, x, out: (N, C, H, W): the gradient of the loss with respect to ``out``, the forward's
            input and its output.
        mean, invstd, gamma: (C,) as for ``batchnorm_backward_f32``.

    Returns:
        (grad_x, grad_gamma, grad_beta, grad_residual): as ``batchnorm_backward_f32``, and
        ``grad_residual`` (N, C, H, W) in grad_out's dtype.

    Raises:
        ValueError: shapes do not match.
    """
    with np.errstate(invalid="ignore"):      # inf * 0 is NaN, as ReLU's own backward gives
        masked = grad_out * (out > 0)
    return (*batchnorm_backward_f32(masked, x, mean, invstd, gamma), masked)
