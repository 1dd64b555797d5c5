"""Softmax, log-softmax and the losses built on them: cross-entropy (with label smoothing), MSE, and
KL divergence (for distillation). Softmax-family ops subtract the row maximum before ``exp`` so large
logits cannot overflow, and run in at least float32 (mixed precision keeps losses in float32).
"""
import numpy as np

from tinyeff.tensor import Tensor, make_result
from tinyeff.ops.elementwise import sub
from tinyeff.ops.reduce import mean


def _log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def log_softmax(x, axis=-1):
    out = _log_softmax(x.data, axis)

    def backward(g):
        return (g - np.exp(out) * g.sum(axis=axis, keepdims=True),)
    return make_result(out, (x,), backward, "log_softmax")


def softmax(x, axis=-1):
    out = np.exp(_log_softmax(x.data, axis))

    def backward(g):
        return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)
    return make_result(out, (x,), backward, "softmax")


def _labels(labels, n, k):
    y = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"cross_entropy: labels must be an integer array of shape ({n},), got "
                         f"{y.dtype} {y.shape}")
    if n and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"cross_entropy: labels must lie in [0, {k - 1}] for {k} classes, got "
                         f"min {y.min()} and max {y.max()}")
    return y


def cross_entropy(logits, labels, label_smoothing=0.0):
    """Mean cross-entropy of ``logits`` (N, K) against integer ``labels`` (N,).

    With label smoothing eps the target is (1 - eps) * one_hot + eps / K (Szegedy et al. 2016).
    """
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, classes), got shape {logits.shape}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"cross_entropy: label_smoothing={label_smoothing} must be in [0, 1)")
    n, k = logits.shape
    y = _labels(labels, n, k)
    work = np.promote_types(logits.dtype, np.float32)
    logp = _log_softmax(logits.data.astype(work, copy=False), axis=1)
    target = np.full((n, k), label_smoothing / k, dtype=work)
    target[np.arange(n), y] += 1.0 - label_smoothing
    loss = -(target * logp).sum() / n

    def backward(g):
        return ((g * (np.exp(logp) - target) / n).astype(logits.dtype),)
    return make_result(np.asarray(loss, dtype=work), (logits,), backward, "cross_entropy")


def mse_loss(pred, target):
    """Mean squared error over all elements."""
    diff = sub(pred, target)
    return mean(diff * diff)


def kl_div(log_q, p, reduction="batchmean"):
    """KL(p || q) = sum p * (log p - log q), with ``log_q`` given as log-probabilities (PyTorch's
    ``F.kl_div(input=log_q, target=p)``). ``batchmean`` divides by the batch size; ``sum`` does not.
    0 * log 0 counts as 0. The gradient flows to ``log_q`` (the student); ``p`` is a constant target.
    """
    p_data = p.data if isinstance(p, Tensor) else np.asarray(p, dtype=log_q.dtype)
    if p_data.shape != log_q.shape:
        raise ValueError(f"kl_div: target shape {p_data.shape} differs from input shape {log_q.shape}")
    if reduction not in ("batchmean", "sum"):
        raise ValueError(f"kl_div: reduction={reduction!r}; use 'batchmean' or 'sum'")
    scale = 1.0 / log_q.shape[0] if reduction == "batchmean" else 1.0
    safe_log_p = np.log(np.where(p_data > 0, p_data, 1.0))
    loss = (p_data * (safe_log_p - log_q.data)).sum() * scale
    return make_result(np.asarray(loss, dtype=log_q.dtype), (log_q,), lambda g: (-g * p_data * scale,), "kl_div")
