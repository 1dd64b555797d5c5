"""Ops that move data without arithmetic: reshape, transpose, flatten, indexing."""
import numpy as np

from tinyeff.tensor import Tensor, make_result


def reshape(a, shape):
    return make_result(a.data.reshape(shape), (a,), lambda g: (g.reshape(a.shape),), "reshape")


def transpose(a, axes=None):
    inverse = None if axes is None else tuple(np.argsort([ax % a.ndim for ax in axes]))  # -1 means the last axis
    return make_result(np.transpose(a.data, axes), (a,), lambda g: (np.transpose(g, inverse),), "transpose")


def flatten(a, start_dim=1):
    """Collapse the dimensions from ``start_dim`` on: (N, C, H, W) -> (N, C*H*W)."""
    return reshape(a, a.shape[:start_dim] + (-1,))


def _plain_index(index):
    """Tensors used as indices, alone or inside a tuple, become their integer/bool arrays."""
    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    return index.data if isinstance(index, Tensor) else index


def getitem(a, index):
    index = _plain_index(index)

    def backward(g):
        grad = np.zeros_like(a.data)
        np.add.at(grad, index, g)      # add.at: repeated indices must accumulate, not overwrite
        return (grad,)
    return make_result(a.data[index], (a,), backward, "getitem")
