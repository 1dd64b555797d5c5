"""Batch normalization over (N,) or (N, H, W), with running statistics for evaluation.

Training normalizes with the batch's mean and biased variance and updates the running estimates
in place (PyTorch's convention: running_var uses the unbiased variance). Evaluation uses the running
estimates, so the op is then an affine map per channel. Statistics are computed in at least float32
so float16 activations (mixed precision) do not lose the variance.
"""
import numpy as np

from tinyeff.tensor import make_result


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Normalize ``x`` (N, C) or (N, C, H, W) per channel, then scale by ``weight`` and shift by ``bias``.

    Args:
        running_mean, running_var: float32 arrays (C,), updated in place when ``training``.
    """
    if x.ndim not in (2, 4) or x.shape[1] != weight.shape[0]:
        raise ValueError(f"batch_norm: input shape {x.shape} does not match {weight.shape[0]} channels; "
                         "expected (N, C) or (N, C, H, W)")
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    bshape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
    work = np.promote_types(x.dtype, np.float32)
    xf = x.data.astype(work, copy=False)
    if training:
        count = x.size // x.shape[1]
        if count < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, got input "
                             f"shape {x.shape}; use a larger batch or call model.eval()")
        mean = xf.mean(axis=axes)
        var = xf.var(axis=axes)
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * count / (count - 1)
    else:
        mean, var = running_mean.astype(work), running_var.astype(work)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (xf - mean.reshape(bshape)) * inv_std.reshape(bshape)
    gamma = weight.data.astype(work)
    out = (x_hat * gamma.reshape(bshape) + bias.data.astype(work).reshape(bshape)).astype(x.dtype)

    def backward(g):
        gf = g.astype(work, copy=False)
        g_gamma = (gf * x_hat).sum(axis=axes)
        g_beta = gf.sum(axis=axes)
        g_hat = gf * gamma.reshape(bshape)
        if training:
            m = x.size // x.shape[1]
            gx = (inv_std.reshape(bshape) / m) * (m * g_hat - g_hat.sum(axis=axes).reshape(bshape)
                                                  - x_hat * (g_hat * x_hat).sum(axis=axes).reshape(bshape))
        else:
            gx = g_hat * inv_std.reshape(bshape)
        return gx.astype(x.dtype), g_gamma.astype(weight.dtype), g_beta.astype(bias.dtype)
    return make_result(out, (x, weight, bias), backward, "batch_norm")
