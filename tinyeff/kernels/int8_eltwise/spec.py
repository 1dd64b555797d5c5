"""Integer epilogue contracts and references: requantization of int32 sums, and the uint8 add.

The one idea: quantized inference is integer arithmetic end to end. Activations are asymmetric
uint8 (``x = scale_x * (q_x - zero_point_x)``), weights symmetric int8 per output channel, products
are summed in int32 and *requantized* back to 8 bits with a fixed-point multiplier and a rounding
shift (``layout/fixed_point.py``; ``docs/int8.md`` derives the formula once), never a float. This
file is the executable spec every faster tier (numba.py, c.py over csrc/int8_eltwise/requant.c,
csrc/int8_eltwise/add_u8.c and csrc/int8_eltwise/quantize_u8.c) meets bit for bit. ``quantize_f32_u8``
is the other end: the float input to uint8 codes, the model's first step.
"""
import numpy as np

from tinyeff.kernels.contract import case, define
from tinyeff.kernels.layout.fixed_point import quantize_multiplier, requantize_int64


def check_requant_args(n, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, name, relu=False):
    """Validate requantization parameters; return (bias, multiplier, shift) as int32 (N,) arrays, qmin, qmax, dtype.

    With ``relu`` the returned qmin is raised to ``zero_point_out`` (the fused ReLU's clamp).
    """
    dtype = np.dtype(out_dtype)
    if dtype not in (np.dtype(np.uint8), np.dtype(np.int8)):
        raise TypeError(f"{name}: out_dtype must be uint8 or int8, got {dtype}")
    info = np.iinfo(dtype)
    qmin = info.min if qmin is None else int(qmin)
    qmax = info.max if qmax is None else int(qmax)
    if not info.min <= qmin <= qmax <= info.max:
        raise ValueError(f"{name}: need {info.min} <= qmin <= qmax <= {info.max} for {dtype}, "
                         f"got qmin={qmin}, qmax={qmax}")
    if not info.min <= int(zero_point_out) <= info.max:
        raise ValueError(f"{name}: zero_point_out={zero_point_out} is outside {dtype}'s range")
    arrays = []
    for label, value in (("bias", bias), ("multiplier", multiplier), ("shift", shift)):
        v = np.zeros(n, np.int32) if value is None else np.asarray(value)
        if v.ndim == 0:
            v = np.full(n, v)
        if v.shape != (n,):
            raise ValueError(f"{name}: {label} must be a scalar or have shape ({n},), got {v.shape}")
        if not np.issubdtype(v.dtype, np.integer):
            raise TypeError(f"{name}: {label} must be integer (use quantize_multiplier), got {v.dtype}")
        arrays.append(np.ascontiguousarray(v, dtype=np.int32))
    bias, multiplier, shift = arrays
    if np.any(multiplier < 0) or np.any(shift < -31) or np.any(shift > 30):
        raise ValueError(f"{name}: need multiplier >= 0 and -31 <= shift <= 30 (from quantize_multiplier)")
    if relu:
        qmin = max(qmin, int(zero_point_out))
    return bias, multiplier, shift, qmin, qmax, dtype


def requant_args(n, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, relu, name):
    """``check_requant_args`` as a dict of normalized arguments (what a kernel check returns)."""
    bias, multiplier, shift, qmin, qmax, dtype = check_requant_args(
        n, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, name, relu)
    return {"bias": bias, "multiplier": multiplier, "shift": shift, "qmin": qmin, "qmax": qmax,
            "out_dtype": dtype}


def check_accumulator(acc, name):
    if acc.ndim != 2 or acc.dtype != np.int32:
        raise TypeError(f"{name}: expected a 2-D int32 accumulator, got {acc.dtype} {acc.shape}")


def check_requantize(acc, bias, multiplier, shift, zero_point_out, qmin, qmax, relu, out_dtype):
    check_accumulator(acc, "requantize_s32")
    return requant_args(acc.shape[1], bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, relu,
                        "requantize_s32")


def check_add_u8(a, b, table_a, table_b, name):
    """Validate ``add_u8``'s operands; return the tables as contiguous int32 (256,) arrays."""
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise TypeError(f"{name}: expected two uint8 tensors, got {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"{name}: the two inputs must have the same shape, got {a.shape} and {b.shape}")
    tables = []
    for label, table in (("table_a", table_a), ("table_b", table_b)):
        table = np.asarray(table)
        if table.shape != (256,) or table.dtype != np.int32:
            raise TypeError(f"{name}: {label} must be int32 (256,) (one entry per uint8 code), "
                            f"got {table.dtype} {table.shape}")
        tables.append(np.ascontiguousarray(table))
    bound = int(np.abs(tables[0].astype(np.int64)).max()) + int(np.abs(tables[1].astype(np.int64)).max())
    if bound > 2**31 - 1:
        raise ValueError(f"{name}: max|table_a| + max|table_b| = {bound} exceeds int32; "
                         "the sum of the two table entries must fit int32 (scale the tables down)")
    return tables


def check_add(a, b, table_a, table_b, multiplier, shift, zero_point_out, relu, qmax):
    table_a, table_b = check_add_u8(a, b, table_a, table_b, "add_u8")
    args = requant_args(1, None, multiplier, shift, zero_point_out, None, qmax, np.uint8, relu, "add_u8")
    return {"table_a": table_a, "table_b": table_b, "multiplier": args["multiplier"][0],
            "shift": args["shift"][0], "qmin": args["qmin"], "qmax": args["qmax"]}


def check_quantize_f32(x, scale, zero_point, qmax, nhwc):
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        raise TypeError(f"quantize_f32_u8: expected a float32 array, got {getattr(x, 'dtype', type(x).__name__)} "
                        "(cast with .astype(np.float32))")
    if nhwc and x.ndim != 4:
        raise ValueError(f"quantize_f32_u8: nhwc=True needs an (N, C, H, W) input, got shape {x.shape}")
    scale = np.float32(scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"quantize_f32_u8: scale must be a positive finite float, got {scale}")
    if not 0 <= int(zero_point) <= int(qmax) <= 255:
        raise ValueError(f"quantize_f32_u8: need 0 <= zero_point <= qmax <= 255, got {zero_point}, {qmax}")
    return {"scale": scale, "zero_point": int(zero_point), "qmax": int(qmax)}


def refuse_nonfinite(x, count):
    """Raise the ValueError of an input holding ``count`` NaN/Inf values (never returns)."""
    first = np.unravel_index(int(np.flatnonzero(~np.isfinite(x))[0]), x.shape)
    raise ValueError(f"quantize_f32_u8: the input holds {count:,} NaN/Inf value(s) (first at index "
                     f"{tuple(int(i) for i in first)}); integer codes cannot represent them")


# ------------------------------------------------------------------------------------ cases

def random_requant(rng, n, low=1e-4, high=4.0):
    """Per-channel (multiplier, shift) from real multipliers spread over [low, high) (shifts of both signs)."""
    return quantize_multiplier(np.exp(rng.uniform(np.log(low), np.log(high), n)))


def requantize_cases(rng):
    for m, n in [(1, 1), (3, 17), (16, 64), (33, 15), (5, 65)]:
        acc = rng.integers(-2**20, 2**20, (m, n), dtype=np.int32)
        multiplier, shift = random_requant(rng, n)
        bias = rng.integers(-2**16, 2**16, n, dtype=np.int32)
        yield case(acc, bias, multiplier, shift, int(rng.integers(0, 256)))
        yield case(acc, None, multiplier, shift, 10, relu=True)
        yield case(acc, bias, multiplier, shift, -5, qmin=-100, qmax=90, out_dtype=np.int8)
    extremes = np.array([[2**31 - 1, -2**31, 0, 1, -1, 2**30, -2**30]], np.int32)
    yield case(extremes, np.full(7, 2**31 - 1, np.int32), np.int32(2**31 - 1), np.int32(30), 128)
    yield case(extremes, np.full(7, -2**31, np.int32), np.int32(2**30), np.int32(-31), 0)
    yield case(extremes, None, *quantize_multiplier(0.5), 0, out_dtype=np.int8)   # ties round


def add_cases(rng):
    for shape in [(1,), (63,), (64,), (65,), (2, 5, 7, 3), (1, 129, 3)]:
        za, zb = (int(v) for v in rng.integers(0, 256, 2))
        table_a = ((np.arange(256) - za) * int(rng.integers(1, 2**12))).astype(np.int32)
        table_b = ((np.arange(256) - zb) * int(rng.integers(1, 2**12))).astype(np.int32)
        multiplier, shift = quantize_multiplier(float(rng.uniform(1e-5, 1e-3)))
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        b = rng.integers(0, 256, shape, dtype=np.uint8)
        yield case(a, b, table_a, table_b, multiplier, shift, int(rng.integers(0, 256)))
        yield case(a, b, table_a, table_b, multiplier, shift, 7, relu=True)
        yield case(a, b, table_a, table_b, multiplier, shift, 7, relu=True, qmax=127)
    big = np.full(256, 2**30 - 1, np.int32)                      # the largest sum the check allows
    yield case(np.full(9, 255, np.uint8), np.zeros(9, np.uint8), big, -big, *quantize_multiplier(1e-6), 128)


def quantize_cases(rng):
    for shape in [(1, 1, 1, 1), (2, 1, 5, 7), (3, 3, 4, 5), (2, 3, 17, 19), (1, 5, 3, 3), (7,), (4, 33)]:
        x = rng.uniform(-2, 3, shape).astype(np.float32)
        scale, zp = np.float32(rng.uniform(0.005, 0.05)), int(rng.integers(0, 128))
        yield case(x, scale, zp)
        yield case(x, scale, zp, qmax=127)
        if len(shape) == 4:
            yield case(x, scale, zp, nhwc=True)
            yield case(x, scale, zp, qmax=127, nhwc=True)
    ties = (np.arange(-40, 40, dtype=np.float32) + np.float32(0.5)) * np.float32(0.25)   # x / scale = k + 0.5
    yield case(ties.reshape(2, 1, 5, 8), np.float32(0.25), 20)
    huge = np.array([3e38, -3e38, 1e-40, -1e-40, 0.0, -0.0, 2**24 + 1, -(2**24 + 1)], np.float32)
    yield case(huge.reshape(1, 2, 2, 2), np.float32(1e-3), 255, nhwc=True)


# ------------------------------------------------------------------------------------ reference

@define("requantize_s32", check=check_requantize, cases=requantize_cases)
def requantize_s32(acc, bias, multiplier, shift, zero_point_out, qmin=None, qmax=None, relu=False,
                   out_dtype=np.uint8):
    """Requantize int32 accumulators to 8 bits with integer arithmetic only (docs/int8.md).

    Per element: ``v = sat32(acc + bias[n])``; ``v = sat32(v << max(shift, 0))``;
    ``v = SQRDMULH(v, multiplier[n])`` (nearest, ties toward +inf: gemmlowp's nudge);
    ``v = RDIVPOT(v, max(-shift, 0))`` (nearest, ties away from zero);
    ``out = clamp(v + zero_point_out, qmin, qmax)``, where ``relu`` raises ``qmin`` to ``zero_point_out``.

    Args:
        acc: int32 (M, N), zero-point corrected sums.
        bias: int32 (N,), scalar or None; in units of the accumulator (scale_x * scale_w).
        multiplier, shift: int32 per channel (N,) or scalar, from ``quantize_multiplier``.
        zero_point_out: output zero point, inside ``out_dtype``'s range.
        qmin, qmax: clamp bounds (default: the dtype's range).
        relu: fuse a ReLU (clamp at the output zero point).
        out_dtype: uint8 (default) or int8.
    Returns:
        (M, N) array of ``out_dtype``.
    """
    v = np.clip(acc.astype(np.int64) + bias, -2**31, 2**31 - 1)
    v = requantize_int64(v, multiplier.astype(np.int64), shift.astype(np.int64))
    return np.clip(v + int(zero_point_out), qmin, qmax).astype(out_dtype)


@define("add_u8", check=check_add, cases=add_cases)
def add_u8(a, b, table_a, table_b, multiplier, shift, zero_point_out, relu=False, qmax=None, *, qmin):
    """Add two uint8 tensors through per-input int32 tables, then requantize (a residual add).

    ``out = requantize_s32(table_a[a] + table_b[b], None, multiplier, shift, zero_point_out, relu)``
    elementwise: each table maps a code to its real value on a common integer grid (see
    ``tinyeff.quant.qmodules.QAdd``), so the add is one int32 sum, exact by the bound checked here.

    Args:
        a, b: uint8 arrays of the same shape (any layout: the op is elementwise).
        table_a, table_b: int32 (256,), with max|table_a| + max|table_b| < 2**31.
        multiplier, shift: int32 scalars from ``quantize_multiplier`` (one per tensor).
        zero_point_out: output zero point (0..255); ``relu`` clamps at it.
        qmax: the top output code (default 255; 127 for 7-bit activations).
    Returns:
        uint8 array of ``a``'s shape.
    Raises:
        TypeError/ValueError: dtypes, shapes or tables are wrong, or the table sum could overflow.
    """
    total = (table_a[a] + table_b[b]).reshape(-1, 1)                       # int32, exact by the check
    out = requantize_s32(total, None, multiplier, shift, zero_point_out, qmin, qmax)
    return out.reshape(a.shape)


@define("quantize_f32_u8", check=check_quantize_f32, cases=quantize_cases)
def quantize_f32_u8(x, scale, zero_point, qmax=255, nhwc=False):
    """Float32 to uint8 codes, ``clamp(rint(x / scale) + zero_point, 0, qmax)``: an integer model's input.

    Args:
        x: float32 array, any shape ((N, C, H, W) when ``nhwc``).
        scale: positive float32; zero_point: 0..qmax.
        qmax: the top code: 255, or 127 for 7-bit activations.
        nhwc: return (N, H, W, C) (the layout the integer convolutions run on) instead of x's layout.
    Returns:
        uint8 array of x's shape (transposed to NHWC when ``nhwc``).
    Raises:
        TypeError/ValueError: x is not float32, bad parameters, or x holds NaN/Inf (an integer
            model would hide them behind finite logits).
    """
    bad = ~np.isfinite(x)
    if bad.any():
        refuse_nonfinite(x, int(bad.sum()))
    with np.errstate(over="ignore"):                                          # huge x / tiny scale -> inf -> qmax
        q = np.clip(np.rint(x / scale) + zero_point, 0, qmax).astype(np.uint8)   # float32 division, ties to even
    return np.ascontiguousarray(q.transpose(0, 2, 3, 1)) if nhwc else q
