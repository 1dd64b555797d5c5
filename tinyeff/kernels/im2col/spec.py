"""im2col / col2im contract and reference: lower a convolution to one GEMM, scatter its gradient back.

Layout (fixed for every tier): ``cols`` has one row per output pixel and one column per weight tap,
``(N*OH*OW, C*KH*KW)``, rows ordered (n, oh, ow) and columns (c, kh, kw). A Conv2d weight
``(OC, C, KH, KW)`` reshaped to ``(OC, C*KH*KW)`` then gives ``out = cols @ w2d.T``.

``im2col_f32_t`` is the same unfolding taps-major, ``(N, C*KH*KW, OH*OW)``: one image's
``w2d @ cols_t[n]`` is then its NCHW output without a transposing copy (batch-1 inference).

``col2im`` is the exact adjoint of ``im2col`` (overlapping windows add up), which is what the
backward pass needs. The 8-bit versions (``im2col_u8``, ``im2col_s8``) use the same layout and pad
with the input zero point, which stands for real 0. Reference version: a loop over the KH*KW taps,
each tap a strided NumPy slice. Faster tiers: numba.py (parallel over output rows), c.py
(csrc/im2col/im2col.c for float32, csrc/im2col/im2col_8.c for 8-bit).
"""
import numpy as np

from tinyeff.kernels.contract import Tolerance, case, define
from tinyeff.kernels.layout.geometry import check_conv_geometry


def unfold(x, kh, kw, stride, padding, dilation, oh, ow, pad_value=0):
    """The im2col loop on validated geometry: (N, C, H, W) -> (N*OH*OW, C*KH*KW), same dtype.

    Padding cells hold ``pad_value`` (0 for float; the input zero point for 8-bit).
    """
    n, c, _, _ = x.shape
    pad = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    xp = np.pad(x, pad, constant_values=pad_value) if padding else x
    cols = np.empty((n, oh, ow, c, kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dilation, j * dilation
            tap = xp[:, :, h0:h0 + stride * (oh - 1) + 1:stride, w0:w0 + stride * (ow - 1) + 1:stride]
            cols[:, :, :, :, i, j] = tap.transpose(0, 2, 3, 1)  # (N, OH, OW, C)
    return cols.reshape(n * oh * ow, c * kh * kw)


# ------------------------------------------------------------------------------------ checks

def check_im2col(x, kh, kw, stride, padding, dilation):
    oh, ow = check_conv_geometry(x.shape, kh, kw, stride, padding, dilation, "im2col_f32")
    return {"oh": oh, "ow": ow}


def check_im2col_t(x, kh, kw, stride, padding, dilation):
    oh, ow = check_conv_geometry(x.shape, kh, kw, stride, padding, dilation, "im2col_f32_t")
    return {"oh": oh, "ow": ow}


def check_col2im(cols, x_shape, kh, kw, stride, padding, dilation):
    """Validate col2im geometry and the shape of ``cols``; derive (OH, OW)."""
    oh, ow = check_conv_geometry(x_shape, kh, kw, stride, padding, dilation, "col2im_f32")
    n, c, _, _ = x_shape
    if cols.shape != (n * oh * ow, c * kh * kw):
        raise ValueError(f"col2im_f32: cols has shape {cols.shape}, expected {(n * oh * ow, c * kh * kw)} "
                         f"for input {tuple(x_shape)} and a {kh}x{kw} kernel")
    return {"oh": oh, "ow": ow}


def check_im2col_8(x, kh, kw, stride, padding, dilation, pad_value, dtype, name):
    """Validate an 8-bit im2col (input dtype, pad_value range, geometry); return (OH, OW)."""
    if x.dtype != dtype:
        raise TypeError(f"{name}: expected a {np.dtype(dtype)} input, got {x.dtype}")
    info = np.iinfo(dtype)
    if not info.min <= int(pad_value) <= info.max:
        raise ValueError(f"{name}: pad_value={pad_value} (the input zero point) is outside {np.dtype(dtype)}'s range")
    return check_conv_geometry(x.shape, kh, kw, stride, padding, dilation, name)


def check_im2col_u8(x, kh, kw, stride, padding, dilation, pad_value):
    oh, ow = check_im2col_8(x, kh, kw, stride, padding, dilation, pad_value, np.uint8, "im2col_u8")
    return {"oh": oh, "ow": ow}


def check_im2col_s8(x, kh, kw, stride, padding, dilation, pad_value):
    oh, ow = check_im2col_8(x, kh, kw, stride, padding, dilation, pad_value, np.int8, "im2col_s8")
    return {"oh": oh, "ow": ow}


# ------------------------------------------------------------------------------------ cases

GEOMETRIES = [   # (N, C, H, W, KH, KW, stride, padding, dilation): 1x1, odd sizes, every knob on
    (1, 1, 1, 1, 1, 1, 1, 0, 1), (2, 3, 7, 5, 3, 3, 1, 1, 1), (1, 4, 9, 11, 3, 2, 2, 1, 1),
    (3, 2, 8, 8, 3, 3, 1, 2, 2), (1, 5, 6, 17, 5, 1, 3, 2, 1), (2, 1, 5, 5, 5, 5, 1, 0, 1),
]


def _geometry_cases(rng, make_x, **extra):
    for n, c, h, w, kh, kw, s, p, d in GEOMETRIES:
        yield case(make_x((n, c, h, w)), kh, kw, stride=s, padding=p, dilation=d, **extra)


def im2col_cases(rng):
    yield from _geometry_cases(rng, lambda shape: rng.standard_normal(shape).astype(np.float32))
    yield case(np.full((1, 2, 4, 4), np.float32(3e38)), 3, 3, padding=1)   # extremes copy unchanged


def col2im_cases(rng):
    for n, c, h, w, kh, kw, s, p, d in GEOMETRIES:
        oh, ow = check_conv_geometry((n, c, h, w), kh, kw, s, p, d, "col2im_cases")
        cols = rng.standard_normal((n * oh * ow, c * kh * kw)).astype(np.float32)
        yield case(cols, (n, c, h, w), kh, kw, stride=s, padding=p, dilation=d)


def im2col_u8_cases(rng):
    yield from _geometry_cases(rng, lambda shape: rng.integers(0, 256, shape, dtype=np.uint8), pad_value=0)
    yield case(np.full((2, 3, 5, 4), 255, np.uint8), 3, 3, padding=1, pad_value=255)
    yield case(rng.integers(0, 256, (1, 2, 6, 7), dtype=np.uint8), 2, 3, stride=2, padding=2, pad_value=128)


def im2col_s8_cases(rng):
    yield from _geometry_cases(rng, lambda shape: rng.integers(-128, 128, shape, dtype=np.int8), pad_value=-3)
    yield case(np.full((2, 3, 5, 4), -128, np.int8), 3, 3, padding=1, pad_value=127)


COPY = Tolerance(why="pure data movement: every tier copies the same values")
SUMS = Tolerance(rtol=1e-5, atol=1e-5, why="col2im adds overlapping windows in a different order")


# ------------------------------------------------------------------------------------ reference

@define("im2col_f32", check=check_im2col, cases=im2col_cases, tolerance=COPY,
        faster_dtypes={"x": np.float32})
def im2col_f32(x, kh, kw, stride=1, padding=0, dilation=1, *, oh, ow):
    """Unfold ``x`` (N, C, H, W) into ``cols`` (N*OH*OW, C*KH*KW), C-contiguous, same dtype.

    Padding is zeros. Faster tiers accept float32 only; the reference accepts any float dtype.
    """
    return unfold(x, kh, kw, stride, padding, dilation, oh, ow)


@define("im2col_f32_t", check=check_im2col_t, cases=im2col_cases, tolerance=COPY,
        faster_dtypes={"x": np.float32})
def im2col_f32_t(x, kh, kw, stride=1, padding=0, dilation=1, *, oh, ow):
    """``im2col_f32`` taps-major: (N, C*KH*KW, OH*OW), C-contiguous, same dtype.

    Row (n, c*KH*KW + kh*KW + kw) holds that tap's OH*OW positions in order, so ``w2d @ cols_t[n]``
    is image n's (OC, OH*OW) output, already NCHW: batch-1 inference needs no transposing copy.
    """
    n, c = x.shape[:2]
    cols = unfold(x, kh, kw, stride, padding, dilation, oh, ow)              # (N*OH*OW, C*KH*KW)
    return np.ascontiguousarray(cols.reshape(n, oh * ow, c * kh * kw).transpose(0, 2, 1))


@define("col2im_f32", check=check_col2im, cases=col2im_cases, tolerance=SUMS,
        faster_dtypes={"cols": np.float32})
def col2im_f32(cols, x_shape, kh, kw, stride=1, padding=0, dilation=1, *, oh, ow):
    """Adjoint of ``im2col_f32``: sum ``cols`` (N*OH*OW, C*KH*KW) back into an (N, C, H, W) array."""
    n, c, h, w = x_shape
    taps = cols.reshape(n, oh, ow, c, kh, kw)
    xp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dilation, j * dilation
            xp[:, :, h0:h0 + stride * (oh - 1) + 1:stride, w0:w0 + stride * (ow - 1) + 1:stride] += \
                taps[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return xp[:, :, padding:padding + h, padding:padding + w] if padding else xp


@define("im2col_u8", check=check_im2col_u8, cases=im2col_u8_cases)
def im2col_u8(x, kh, kw, stride=1, padding=0, dilation=1, pad_value=0, *, oh, ow):
    """Unfold uint8 ``x`` (N, C, H, W) into (N*OH*OW, C*KH*KW), layout as ``im2col_f32``.

    Padding cells hold ``pad_value``: the input zero point, which represents real 0.0.
    """
    return unfold(x, kh, kw, stride, padding, dilation, oh, ow, pad_value)


@define("im2col_s8", check=check_im2col_s8, cases=im2col_s8_cases)
def im2col_s8(x, kh, kw, stride=1, padding=0, dilation=1, pad_value=0, *, oh, ow):
    """int8 version of ``im2col_u8``; same layout and padding rule."""
    return unfold(x, kh, kw, stride, padding, dilation, oh, ow, pad_value)
