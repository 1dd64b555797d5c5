"""Float16 and bfloat16 weight storage: half the bytes of float32 with no calibration at all.

Weights are rounded to the 16-bit format (round to nearest even) and stored as 16-bit arrays in the
model file; at load they are widened back to float32 for compute, so the accuracy cost is exactly
the rounding of the weights. bfloat16 keeps float32's 8-bit exponent and 7 mantissa bits; it is
written here at the bit level, ``to_bfloat16_bits``, and checked against ml_dtypes in the tests.
Files store bfloat16 as its uint16 bit pattern (NumPy has no bfloat16 dtype; no pickle needed).
Left out: 16-bit compute kernels (tinyeff's mixed-precision training policy covers float16 compute).
"""
import copy

import numpy as np

from tinyeff import io
from tinyeff.errors import ModelFileError

__all__ = ["PRECISIONS", "to_bfloat16_bits", "from_bfloat16_bits", "round_weights", "save_lowprec",
           "load_lowprec"]

PRECISIONS = ("float16", "bfloat16")
KIND = "lowprec"
_STORAGE = {"float16": np.float16, "bfloat16": np.uint16}    # the dtype a 16-bit weight is stored as


def to_bfloat16_bits(x):
    """float32 array -> uint16 bfloat16 bit patterns, round to nearest even; NaN stays NaN."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))   # ties go to the even mantissa
    rounded = ((bits.astype(np.uint64) + rounding) >> np.uint64(16)).astype(np.uint16)
    nan = np.isnan(x)
    return np.where(nan, ((bits >> np.uint32(16)) | np.uint32(0x0040)).astype(np.uint16), rounded)


def from_bfloat16_bits(bits):
    """uint16 bfloat16 bit patterns -> float32 (exact)."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def _encode(w, precision):
    if precision == "float16":
        return w.astype(np.float16)
    return to_bfloat16_bits(w)


def _decode(stored, precision):
    return stored.astype(np.float32) if precision == "float16" else from_bfloat16_bits(stored)


def _check(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"lowprec: precision={precision!r}; choose one of {PRECISIONS}")


def round_weights(model, precision):
    """A copy of ``model`` whose float parameters are rounded to ``precision`` (computed in float32)."""
    _check(precision)
    rounded = copy.deepcopy(model)
    for _, p in rounded.named_parameters():
        p.data = _decode(_encode(p.data, precision), precision)
    return rounded


def save_lowprec(model, path, precision, **header_fields):
    """Save ``model``'s float parameters as 16-bit ``precision`` (buffers stay float32); return bytes."""
    _check(precision)
    params = {n for n, _ in model.named_parameters()}
    arrays = {n: (_encode(a, precision) if n in params else a) for n, a in model.state_dict().items()}
    return io.save(model, path, kind=KIND, arrays=arrays, precision=precision,
                   preprocess=getattr(model, "preprocess", None), **header_fields)


def load_lowprec(header, arrays):
    """The ``io`` reader of kind "lowprec": the float model with its weights widened to float32."""
    precision = header.get("precision")
    if precision not in PRECISIONS:
        raise ModelFileError(f"lowprec model file: unknown precision {precision!r}")
    encoded = {n: a for n, a in arrays.items() if a.dtype == _STORAGE[precision]}
    return io.build_from_header(header, {**arrays, **{n: _decode(a, precision) for n, a in encoded.items()}},
                                f"lowprec ({precision}) model file")
