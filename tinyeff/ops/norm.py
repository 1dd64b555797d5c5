"""Batch normalization over (N,) or (N, H, W), with running statistics for evaluation.

Training normalizes with the batch's mean and biased variance and updates the running estimates
in place (PyTorch's convention: running_var uses the unbiased variance). Evaluation uses the running
estimates, so the op is then an affine map per channel. Statistics are computed in at least float32
so float16 activations (mixed precision) do not lose the variance.

Training goes through the ``batchnorm_train_f32`` / ``batchnorm_backward_f32`` kernels (float32 on
the best tier, two passes over memory each way; other dtypes on the NumPy reference, which is the
spec of the math). They also take what follows batch norm in a ResNet block, so ``relu=True`` and
``residual=`` cost no pass of their own: ``relu(batch_norm(x) + residual)`` is one op. Its backward
masks the gradient inside the batch-norm kernel: recomputed from x when there is no residual; with
a residual, from the output, into an array (the shortcut's gradient) that the kernel then reads.
Evaluation stays plain NumPy here.
"""
import numpy as np

from tinyeff.ops.elementwise import add, relu as relu_op
from tinyeff.ops.kernel_choice import kernel_for
from tinyeff.tensor import make_result


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5, relu=False,
               residual=None):
    """Normalize ``x`` (N, C) or (N, C, H, W) per channel, then scale by ``weight`` and shift by ``bias``;
    then add ``residual`` (a Tensor of x's shape and dtype) if given, then apply a ReLU if ``relu``.

    Args:
        running_mean, running_var: float32 arrays (C,), updated in place when ``training``.
    """
    if x.ndim not in (2, 4) or x.shape[1] != weight.shape[0]:
        raise ValueError(f"batch_norm: input shape {x.shape} does not match {weight.shape[0]} channels; "
                         "expected (N, C) or (N, C, H, W)")
    if residual is not None and (residual.shape != x.shape or residual.dtype != x.dtype):
        raise ValueError(f"batch_norm: residual {residual.shape} {residual.dtype} must match the input "
                         f"{x.shape} {x.dtype}; it is added to the output")
    if training:
        return _batch_norm_train(x, weight, bias, running_mean, running_var, momentum, eps, relu, residual)
    out = _batch_norm_eval(x, weight, bias, running_mean, running_var, eps)
    out = out if residual is None else add(out, residual)
    return relu_op(out) if relu else out


def _batch_norm_train(x, weight, bias, running_mean, running_var, momentum, eps, relu, residual):
    """Batch statistics through the ``batchnorm_*_f32`` kernels (an (N, C) input runs as (N, C, 1, 1))."""
    count = x.size // x.shape[1]
    if count < 2:
        raise ValueError(f"batch_norm: training needs more than one value per channel, got input "
                         f"shape {x.shape}; use a larger batch or call model.eval()")
    x4 = x.data.reshape(x.shape[0], x.shape[1], -1, 1)                 # (N, C, H*W, 1), a view if contiguous
    work = np.promote_types(x.dtype, np.float32)
    gamma, beta = weight.data.astype(work, copy=False), bias.data.astype(work, copy=False)
    res = None if residual is None else residual.data.reshape(x4.shape)
    out, mean, var, invstd = kernel_for("batchnorm_train_f32", x4)(x4, gamma, beta, eps, relu=relu, residual=res)
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * var * count / (count - 1)

    def backward(g):
        g = g.astype(x.dtype, copy=False).reshape(x4.shape)
        if relu and res is not None:                                       # the shortcut's gradient too
            gx, g_gamma, g_beta, g = kernel_for("batchnorm_add_relu_backward_f32", x4)(g, x4, mean, invstd,
                                                                                     gamma, out)
        else:
            gx, g_gamma, g_beta = kernel_for("batchnorm_backward_f32", x4)(
                g, x4, mean, invstd, gamma, relu_beta=beta if relu else None)
        grads = (gx.reshape(x.shape), g_gamma.astype(weight.dtype), g_beta.astype(bias.dtype))
        return grads if res is None else (*grads, g.reshape(x.shape))
    parents = (x, weight, bias) if residual is None else (x, weight, bias, residual)
    return make_result(out.reshape(x.shape), parents, backward, "batch_norm")


def _batch_norm_eval(x, weight, bias, running_mean, running_var, eps):
    """The running estimates make batch norm an affine map per channel (plain NumPy)."""
    bshape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    work = np.promote_types(x.dtype, np.float32)
    xf = x.data.astype(work, copy=False)
    mean, var = running_mean.astype(work), running_var.astype(work)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (xf - mean.reshape(bshape)) * inv_std.reshape(bshape)
    gamma = weight.data.astype(work)
    out = (x_hat * gamma.reshape(bshape) + bias.data.astype(work).reshape(bshape)).astype(x.dtype)

    def backward(g):
        gf = g.astype(work, copy=False)
        g_gamma = (gf * x_hat).sum(axis=axes)
        g_beta = gf.sum(axis=axes)
        gx = gf * gamma.reshape(bshape) * inv_std.reshape(bshape)
        return gx.astype(x.dtype), g_gamma.astype(weight.dtype), g_beta.astype(bias.dtype)
    return make_result(out, (x, weight, bias), backward, "batch_norm")
