"""Matrix products: ``matmul`` (2-D through the ``gemm_f32`` kernel, batched through NumPy) and
``linear`` (x @ w.T + b with PyTorch's (out, in) weight layout), each with its backward."""
import numpy as np

from tinyeff.ops import plan
from tinyeff.ops.elementwise import relu as relu_op
from tinyeff.ops.elementwise import unbroadcast
from tinyeff.ops.kernel_choice import kernel_for
from tinyeff.tensor import as_tensor, make_result, records_graph


def _mm(a, b):
    """2-D products go through the registry's GEMM; batched ones through np.matmul."""
    if a.ndim == 2 and b.ndim == 2:
        return kernel_for("gemm_f32", a)(a, b)
    return np.matmul(a, b)


def matmul(a, b):
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul: operands need at least 2 dimensions, got shapes {a.shape} and {b.shape}; "
                         "reshape vectors to (1, K) or (K, 1)")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: inner dimensions differ, {a.shape} @ {b.shape}")

    def backward(g):
        ga = unbroadcast(_mm(g, np.swapaxes(b.data, -1, -2)), a.shape) if a.requires_grad else None
        gb = unbroadcast(_mm(np.swapaxes(a.data, -1, -2), g), b.shape) if b.requires_grad else None
        return ga, gb
    return make_result(_mm(a.data, b.data), (a, b), backward, "matmul")


def _check_linear(x, w):
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"linear: input has shape {x.shape} but weight is {w.shape} (OUT, IN); "
                         f"the layer expects {w.shape[1]} input features")


def _linear_forward(x, w, b, kernel, relu=False):
    out = kernel("gemm_f32", x)(x, w.T)                # (N, OUT)
    if b is not None:
        out += b
    return np.maximum(out, 0, out=out) if relu else out


def linear(x, w, b=None, relu=False):
    """``x`` (N, IN) @ ``w``.T (w is (OUT, IN)) + ``b`` (OUT,) -> (N, OUT).

    ``relu=True`` returns ``relu(linear(...))``, applied in place on the output when no gradient is
    recorded (inference: one op instead of two)."""
    parents = (x, w) if b is None else (x, w, b)
    bias = None if b is None else b.data
    if not records_graph(parents):           # inference: checks once per shape (ops/plan.py)
        key = ("linear", x.shape, x.dtype, w.shape, w.dtype, b is None or (b.shape, b.dtype), relu)
        out = plan.run(key, lambda: _check_linear(x, w),
                       lambda kernel, _: _linear_forward(x.data, w.data, bias, kernel, relu))
        return make_result(out, parents, None, "linear")
    if relu:
        return relu_op(linear(x, w, b))
    _check_linear(x, w)
    out = _linear_forward(x.data, w.data, bias, kernel_for)

    def backward(g):
        gx = _mm(g, w.data) if x.requires_grad else None
        gw = _mm(g.T, x.data) if w.requires_grad else None
        gb = g.sum(axis=0) if b is not None and b.requires_grad else None
        return gx, gw, gb
    return make_result(out, parents, backward, "linear")
