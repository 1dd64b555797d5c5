"""Affine quantization: from a float range to (scale, zero_point), and the pure maps between domains.

The one idea: a real value ``x`` is stored as an integer ``q`` with ``x ~= scale * (q - zero_point)``.
Activations use asymmetric uint8 (zero_point anywhere in [0, 255], so a ReLU output uses all 256
codes); weights use symmetric int8 in [-127, 127] (zero_point 0, so the GEMM needs no weight-side
correction and a pruned zero stays exactly zero). Real 0.0 is always exactly representable, which
is what makes zero padding and ReLU-by-clamping exact in the integer domain.

Rounding: ``quantize`` rounds half to even (``np.rint``); the integer kernels' requantization
rounds half away from zero (gemmlowp). That is the one documented source of off-by-one differences
between the float "simulated" path and the integer path (see tests/quant/test_convert.py).

Left out: the observers that choose the range (observers.py) and the integer kernels
(tinyeff/kernels/layout/fixed_point.py and kernels/int8_eltwise/, which define the requantization arithmetic).
"""
import numpy as np

from tinyeff.tensor import make_result

QRANGES = {"uint8": (0, 255), "int8": (-127, 127)}   # int8 drops -128 so the range is symmetric


def qrange(dtype):
    """(qmin, qmax) for ``dtype`` ("uint8" for activations, "int8" for symmetric weights)."""
    key = np.dtype(dtype).name
    if key not in QRANGES:
        raise ValueError(f"qrange: dtype {dtype!r} is not supported; use 'uint8' or 'int8'")
    return QRANGES[key]


def compute_qparams(min_val, max_val, dtype="uint8", symmetric=False, qmax=None):
    """Scale and zero point covering [min_val, max_val] (widened to include 0).

    Args:
        min_val, max_val: floats or arrays of the same shape (one per channel).
        dtype: "uint8" or "int8"; the integer codes' range.
        symmetric: zero point fixed at the middle of the range (0 for int8, 128 for uint8) and the
            range made symmetric: ``scale = max(|min|, |max|) / ((qmax - qmin) / 2)``.
        qmax: a smaller top code than the dtype's (127: 7-bit activations in a uint8, ``activation_bits``).
    Returns:
        (scale float32, zero_point int32), scalars or arrays of ``min_val``'s shape. A degenerate
        range (max == min == 0, or non-finite) gives scale 1 and zero point 0.
    """
    qmin, top = qrange(dtype)
    qmax = top if qmax is None else int(qmax)
    lo = np.minimum(np.asarray(min_val, np.float64), 0.0)
    hi = np.maximum(np.asarray(max_val, np.float64), 0.0)
    if symmetric:
        scale = np.maximum(-lo, hi) / ((qmax - qmin) / 2.0)
        zero_point = np.full(np.shape(scale), (qmin + qmax + 1) // 2, dtype=np.float64)  # 0 or 128
    else:
        scale = (hi - lo) / float(qmax - qmin)
        with np.errstate(divide="ignore", invalid="ignore"):
            zero_point = np.clip(np.round(qmin - lo / scale), qmin, qmax)
    degenerate = ~np.isfinite(scale) | (scale < np.finfo(np.float32).tiny)   # constant or empty range
    scale = np.where(degenerate, 1.0, scale).astype(np.float32)
    zero_point = np.where(degenerate, 0, np.nan_to_num(zero_point)).astype(np.int32)
    return (scale[()], zero_point[()]) if scale.ndim == 0 else (scale, zero_point)


def _broadcast(v, ndim, axis):
    """Reshape a per-channel vector so it broadcasts along ``axis`` of an ``ndim`` array."""
    v = np.asarray(v)
    if axis is None or v.ndim == 0:
        return v
    shape = [1] * ndim
    shape[axis] = -1
    return v.reshape(shape)


def check_finite_input(x, where):
    """Refuse a float input holding NaN or Inf before it is quantized.

    Quantization clamps: NaN would become some integer code (NumPy's rint/clip of NaN is
    platform-defined) and Inf the largest code, so an int8 model would return finite, plausible
    logits for an input on which the float model returns NaN. Better to say so.

    Raises:
        ValueError: naming how many values are non-finite and where the first one is.
    """
    x = np.asarray(x)
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), x.shape))
            raise ValueError(f"{where}: the input holds {int(bad.sum()):,} NaN/Inf value(s) (first at index {first}, "
                             f"value {x[first]}); an integer model cannot represent them and would hide them "
                             "behind finite logits; clean or drop those inputs")


def quantize(x, scale, zero_point, dtype="uint8", axis=None):
    """``clamp(rint(x / scale) + zero_point, qmin, qmax)`` as ``dtype``; ``axis`` for per-channel.

    Args:
        x: float array. scale, zero_point: scalars, or vectors along ``axis``.
    Returns:
        Integer array of ``dtype`` with ``x``'s shape.
    """
    qmin, qmax = qrange(dtype)
    x = np.asarray(x)
    s = _broadcast(scale, x.ndim, axis).astype(np.float32)
    z = _broadcast(zero_point, x.ndim, axis)
    q = np.rint(x.astype(np.float32) / s) + z      # float32 division: identical to the fake-quant forward
    return np.clip(q, qmin, qmax).astype(dtype)


def dequantize(q, scale, zero_point, axis=None):
    """``scale * (q - zero_point)`` as float32; ``axis`` for per-channel parameters."""
    q = np.asarray(q)
    s = _broadcast(scale, q.ndim, axis).astype(np.float32)
    z = _broadcast(zero_point, q.ndim, axis).astype(np.int32)
    return (s * (q.astype(np.int32) - z)).astype(np.float32)


def fake_quant(x, scale, zero_point, dtype="uint8", axis=None):
    """Quantize then dequantize a Tensor; the gradient is the straight-through estimator.

    Forward: ``dequantize(quantize(x))`` (float, on the integer grid). Backward (Bengio et al. 2013,
    the clipped STE of Jacob et al. 2018): rounding is treated as the identity, so ``grad_x =
    grad_out`` where ``x`` lies inside the representable range and 0 where it was clamped.

    Args:
        x: Tensor (float). scale, zero_point, dtype, axis: as in ``quantize``.
    Returns:
        Tensor of x's shape and dtype.
    """
    qmin, qmax = qrange(dtype)
    data = x.data
    s = _broadcast(scale, data.ndim, axis).astype(np.float32)
    z = _broadcast(zero_point, data.ndim, axis)
    q = np.rint(data.astype(np.float32) / s) + z
    inside = (q >= qmin) & (q <= qmax)
    out = (s * (np.clip(q, qmin, qmax) - z)).astype(data.dtype)

    def backward(g):
        return (g * inside,)
    return make_result(out, (x,), backward, "fake_quant")


__all__ = ["QRANGES", "compute_qparams", "dequantize", "fake_quant", "qrange", "quantize"]
