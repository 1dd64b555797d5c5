"""Elementwise ops and their gradients, with NumPy broadcasting.

Broadcasting makes an input of shape (C, 1, 1) act like (N, C, H, W); its gradient must then be
summed back to (C, 1, 1). ``unbroadcast`` does that once for every binary op. Derived ops (sub, div,
neg) are built from primitives and have no backward of their own.
"""
import numpy as np

from tinyeff.ops import plan
from tinyeff.ops.kernel_choice import kernel_for
from tinyeff.tensor import Tensor, as_tensor, make_result, records_graph


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, to get back ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _pair(a, b):
    """Tensors for a binary op; a Python scalar or array takes the other operand's dtype."""
    if isinstance(a, Tensor) and not isinstance(b, Tensor):
        return a, Tensor(np.asarray(b, dtype=a.dtype))
    if isinstance(b, Tensor) and not isinstance(a, Tensor):
        return Tensor(np.asarray(a, dtype=b.dtype)), b
    return a, b


def add(a, b):
    a, b = _pair(a, b)

    def backward(g):
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)
    return make_result(a.data + b.data, (a, b), backward, "add")


def mul(a, b):
    a, b = _pair(a, b)

    def backward(g):
        ga = unbroadcast(g * b.data, a.shape) if a.requires_grad else None
        gb = unbroadcast(g * a.data, b.shape) if b.requires_grad else None
        return ga, gb
    return make_result(a.data * b.data, (a, b), backward, "mul")


def pow(a, exponent):
    """``a ** exponent`` for a constant (non-Tensor) exponent."""
    if isinstance(exponent, Tensor):
        raise TypeError("pow: the exponent must be a Python number, not a Tensor")
    a = as_tensor(a)
    out = a.data ** exponent

    def backward(g):
        return (g * exponent * a.data ** (exponent - 1),)
    return make_result(out, (a,), backward, "pow")


def neg(a):
    return mul(a, -1.0)


def sub(a, b):
    a, b = _pair(a, b)
    return add(a, neg(b))


def div(a, b):
    a, b = _pair(a, b)
    return mul(a, pow(b, -1.0))


def exp(a):
    out = np.exp(a.data)
    return make_result(out, (a,), lambda g: (g * out,), "exp")


def log(a):
    return make_result(np.log(a.data), (a,), lambda g: (g / a.data,), "log")


def relu(a):
    if not records_graph((a,)):
        out = plan.run(("relu", a.shape, a.dtype), None, lambda kernel, _: kernel("relu_f32", a.data)(a.data))
        return make_result(out, (a,), None, "relu")
    # The backward kernel reads the output, not a saved mask: no extra array stays alive.
    out = kernel_for("relu_f32", a.data)(a.data)
    return make_result(out, (a,), lambda g: (kernel_for("relu_backward_f32", g)(g, out),), "relu")


def leaky_relu(a, negative_slope=0.01):
    slope = np.where(a.data > 0, 1.0, negative_slope).astype(a.dtype)
    return make_result(a.data * slope, (a,), lambda g: (g * slope,), "leaky_relu")


def elu(a, alpha=1.0):
    negative = a.data <= 0
    expm1 = np.expm1(np.minimum(a.data, 0))          # min() keeps exp from overflowing on the unused branch
    out = np.where(negative, alpha * expm1, a.data).astype(a.dtype, copy=False)
    slope = np.where(negative, alpha * expm1 + alpha, 1.0).astype(a.dtype, copy=False)
    return make_result(out, (a,), lambda g: (g * slope,), "elu")


def sigmoid(a):
    # 0.5 * (1 + tanh(x / 2)) is sigmoid without overflow for large |x|
    out = 0.5 * (1.0 + np.tanh(0.5 * a.data))
    return make_result(out, (a,), lambda g: (g * out * (1.0 - out),), "sigmoid")


def silu(a):
    """x * sigmoid(x) (SiLU, "swish"; EfficientNet's activation)."""
    e = np.exp(-np.abs(a.data))                     # <= 1: no overflow, and no cancellation in the left tail
    sig = (np.where(a.data >= 0, 1.0, e) / (1.0 + e)).astype(a.dtype, copy=False)
    out = (a.data * sig).astype(a.dtype, copy=False)
    # d/dx x*s(x) = s + x*s*(1 - s)
    return make_result(out, (a,), lambda g: (g * (sig * (1.0 + a.data * (1.0 - sig))),), "silu")


def relu6(a):
    """min(max(x, 0), 6) (MobileNetV2's activation: a bounded range that quantizes well)."""
    inside = (a.data > 0) & (a.data < 6)
    out = np.clip(a.data, 0, 6).astype(a.dtype, copy=False)
    return make_result(out, (a,), lambda g: (g * inside,), "relu6")


def tanh(a):
    out = np.tanh(a.data)
    return make_result(out, (a,), lambda g: (g * (1.0 - out * out),), "tanh")


def cast(a, dtype):
    """Change dtype; the gradient is cast back to the input's dtype (mixed precision uses this)."""
    source = a.dtype
    return make_result(a.data.astype(dtype), (a,), lambda g: (g.astype(source),), "cast")
