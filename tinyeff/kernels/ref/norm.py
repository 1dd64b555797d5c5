"""Reference batch-norm kernels for training: the forward with batch statistics, and its backward.

The one idea: batch norm's training forward needs two per-channel reductions (mean and biased
variance), and its backward needs two more (sum(grad_out) and sum(grad_out * x_hat)); everything
else is an elementwise map. These NumPy versions spell the math out plainly and are the contract
for the faster tiers (see csrc/bnorm.c for the one-pass-per-reduction C loop).

Layout is NCHW; an (N, C) input is passed as (N, C, 1, 1). Statistics are over (N, H, W) per
channel. Any float dtype is accepted here (float64 gradient checks, float16 mixed precision): the
arithmetic runs in ``promote_types(x.dtype, float32)`` so float16 never loses the variance. What
this file leaves out: running statistics and evaluation mode (both are cheap per-channel maps and
live in ``tinyeff/ops/norm.py``).
"""
import numpy as np

from tinyeff.kernels.registry import register

AXES = (0, 2, 3)           # every axis but C
BSHAPE = (1, -1, 1, 1)     # a (C,) vector broadcast over NCHW


def check_batchnorm(x, gamma, name):
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


def check_batchnorm_backward(grad_out, x, mean, invstd, gamma, name):
    """Validate the backward's operands against x's shape; raise ValueError naming the fix."""
    check_batchnorm(x, gamma, name)
    if grad_out.shape != x.shape or mean.shape != gamma.shape or invstd.shape != gamma.shape:
        raise ValueError(f"{name}: grad_out {grad_out.shape}, x {x.shape}, mean {mean.shape} and "
                         f"invstd {invstd.shape} do not match; pass the mean and invstd "
                         "batchnorm_train_f32 returned for this x")


@register("batchnorm_train_f32", tier="ref")
def batchnorm_train_f32(x, gamma, beta, eps):
    """Normalize ``x`` with its own per-channel batch statistics, then scale and shift.

    ``y = (x - mean) * invstd * gamma + beta`` with ``mean`` and the biased ``var`` taken over
    (N, H, W) and ``invstd = 1 / sqrt(var + eps)``.

    Args:
        x: (N, C, H, W) float array.
        gamma, beta: (C,) scale and shift.
        eps: added to the variance before the square root.

    Returns:
        (y, mean, var, invstd): ``y`` (N, C, H, W) in x's dtype; ``mean``, ``var`` (biased) and
        ``invstd``, each (C,) in the working dtype (float32 for float32 x). ``mean`` and ``var``
        feed the running estimates; ``mean`` and ``invstd`` are what the backward needs.

    Raises:
        ValueError: x is not 4-D, is empty, or gamma/beta do not have one value per channel.
    """
    check_batchnorm(x, gamma, "batchnorm_train_f32")
    check_batchnorm(x, beta, "batchnorm_train_f32")
    work = np.promote_types(x.dtype, np.float32)
    xf = x.astype(work, copy=False)
    mean = xf.mean(axis=AXES)
    var = xf.var(axis=AXES)        # NumPy's two-pass variance: safe when |mean| >> std
    invstd = (1.0 / np.sqrt(var + eps)).astype(work)
    x_hat = (xf - mean.reshape(BSHAPE)) * invstd.reshape(BSHAPE)
    y = x_hat * gamma.astype(work).reshape(BSHAPE) + beta.astype(work).reshape(BSHAPE)
    return y.astype(x.dtype, copy=False), mean, var, invstd


@register("batchnorm_backward_f32", tier="ref")
def batchnorm_backward_f32(grad_out, x, mean, invstd, gamma):
    """Gradients of the training forward, given the ``mean`` and ``invstd`` it returned.

    With ``m = N * H * W`` and ``x_hat = (x - mean) * invstd`` (recomputed, not stored):
    ``grad_beta = sum(grad_out)``, ``grad_gamma = sum(grad_out * x_hat)`` and
    ``grad_x = gamma * invstd / m * (m * grad_out - grad_beta - x_hat * grad_gamma)``.
    (The batch statistics depend on x, which gives the two subtracted terms.)

    Args:
        grad_out: (N, C, H, W) gradient of the loss with respect to y.
        x: (N, C, H, W) the forward's input.
        mean, invstd: (C,) as returned by ``batchnorm_train_f32``.
        gamma: (C,) the scale used in the forward.

    Returns:
        (grad_x, grad_gamma, grad_beta): ``grad_x`` (N, C, H, W) in x's dtype; ``grad_gamma`` and
        ``grad_beta`` (C,) in the working dtype.

    Raises:
        ValueError: shapes do not match.
    """
    check_batchnorm_backward(grad_out, x, mean, invstd, gamma, "batchnorm_backward_f32")
    work = np.promote_types(x.dtype, np.float32)
    g = grad_out.astype(work, copy=False)
    x_hat = (x.astype(work, copy=False) - mean.reshape(BSHAPE)) * invstd.reshape(BSHAPE)
    grad_gamma = (g * x_hat).sum(axis=AXES)
    grad_beta = g.sum(axis=AXES)
    g_hat = g * gamma.astype(work).reshape(BSHAPE)
    m = x.size // x.shape[1]
    grad_x = (invstd.reshape(BSHAPE) / m) * (m * g_hat - g_hat.sum(axis=AXES).reshape(BSHAPE)
                                             - x_hat * (g_hat * x_hat).sum(axis=AXES).reshape(BSHAPE))
    return grad_x.astype(x.dtype, copy=False), grad_gamma, grad_beta
