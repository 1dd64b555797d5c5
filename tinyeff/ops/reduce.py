"""Reductions: sum, mean (derived from sum) and max, each with ``axis`` and ``keepdims``."""
import builtins

import numpy as np

from tinyeff.tensor import make_result


def _expand(g, shape, axis, keepdims):
    """Give ``g`` back the reduced axes (size 1) so it broadcasts against the input."""
    if axis is None or keepdims:
        return g if axis is not None else np.reshape(g, (1,) * len(shape))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return np.expand_dims(g, tuple(a % len(shape) for a in axes))


def sum(a, axis=None, keepdims=False):
    out = np.sum(a.data, axis=axis, keepdims=keepdims)

    def backward(g):
        return (np.broadcast_to(_expand(g, a.shape, axis, keepdims), a.shape).astype(a.dtype),)
    return make_result(np.asarray(out), (a,), backward, "sum")


def mean(a, axis=None, keepdims=False):
    total = sum(a, axis, keepdims)
    return total * (1.0 / (a.size // builtins.max(total.size, 1)))


def max(a, axis=None, keepdims=False):
    """Maximum; ties share the gradient equally (so the gradient sums to one per reduced slice)."""
    out = np.max(a.data, axis=axis, keepdims=True)
    winners = (a.data == out)
    share = winners / winners.sum(axis=axis, keepdims=True)

    def backward(g):
        return (_expand(g, a.shape, axis, keepdims) * share,)
    result = out if keepdims else (np.squeeze(out, axis=axis) if axis is not None else out.reshape(()))
    return make_result(result, (a,), backward, "max")
