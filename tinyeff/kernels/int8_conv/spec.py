"""Integer convolution on NHWC: contracts and references of the (kh, kw, c) im2col and the whole conv.

The integer model keeps activations as (N, H, W, C) between layers, so a conv's GEMM output
(N*OH*OW, OC) is the next layer's input as it stands (no transpose per layer). ``im2col_u8_nhwc``
lowers a conv (optionally laid out for a fused max-pool) to the int8 GEMM; ``conv2d_u8s8_requant_nhwc``
is the whole layer, conv + requant + ReLU + pool, which the C tier (c.py over csrc/int8_gemm/gemm_s8.c and
csrc/im2col/im2col_8.c) runs without materialising the im2col matrix, on every ISA path.
"""
import numpy as np

from tinyeff.kernels.contract import case, define
from tinyeff.kernels.im2col.spec import unfold
from tinyeff.kernels.int8_eltwise.spec import random_requant, requant_args
from tinyeff.kernels.int8_gemm.spec import check_row_group, gemm_u8s8_requant_rowmax, pack_s8
from tinyeff.kernels.layout.geometry import check_conv_geometry
from tinyeff.kernels.layout.packed_s8 import check_packed

ROW_ALIGN = 4     # conv kernel rows are padded to one VNNI group (see im2col_u8_nhwc's row_align)


def _nchw_shape(x, name):
    if x.ndim != 4:
        raise ValueError(f"{name}: input must be N x H x W x C, got shape {x.shape}")
    n, h, w, c = x.shape
    return (n, c, h, w)


def check_im2col_nhwc(x, kh, kw, stride, padding, dilation, pad_value, pool, row_align, name="im2col_u8_nhwc"):
    """Validate ``im2col_u8_nhwc``'s arguments; return (N, C, OH, OW)."""
    if int(row_align) < 1:
        raise ValueError(f"{name}: row_align={row_align} must be >= 1")
    if x.dtype != np.uint8:
        raise TypeError(f"{name}: expected a uint8 input, got {x.dtype}")
    if not 0 <= int(pad_value) <= 255:
        raise ValueError(f"{name}: pad_value={pad_value} (the input zero point) is outside uint8's range")
    n, c, h, w = _nchw_shape(x, name)
    oh, ow = check_conv_geometry((n, c, h, w), kh, kw, stride, padding, dilation, name)
    if int(pool) < 1 or pool > min(oh, ow):
        raise ValueError(f"{name}: pool={pool} must be >= 1 and fit the {oh}x{ow} output")
    return n, c, oh, ow


def _check_im2col(x, kh, kw, stride, padding, dilation, pad_value, pool, row_align):
    n, c, oh, ow = check_im2col_nhwc(x, kh, kw, stride, padding, dilation, pad_value, pool, row_align)
    return {"oh": oh, "ow": ow}


def check_conv_nhwc(x, packed, kh, kw, stride, padding, a_zero_point, pool, name):
    """Validate ``conv2d_u8s8_requant_nhwc``'s geometry and weight; return (N, C, OH, OW)."""
    n, c, oh, ow = check_im2col_nhwc(x, kh, kw, stride, padding, 1, a_zero_point, pool, ROW_ALIGN, name)
    check_packed(packed, kh * (-(-(kw * c) // ROW_ALIGN) * ROW_ALIGN), name)
    check_row_group(n * (oh // pool) * (ow // pool) * pool * pool, pool * pool, name)
    return n, c, oh, ow


def _check_conv(x, packed, kh, kw, stride, padding, a_zero_point, bias, multiplier, shift, zero_point_out,
                pool, qmin, qmax, relu):
    name = "conv2d_u8s8_requant_nhwc"
    _, _, oh, ow = check_conv_nhwc(x, packed, kh, kw, stride, padding, a_zero_point, pool, name)
    args = requant_args(packed.n, bias, multiplier, shift, zero_point_out, qmin, qmax, np.uint8, relu, name)
    del args["out_dtype"]
    return {**args, "oh": oh, "ow": ow}


# ------------------------------------------------------------------------------------ cases

# (N, H, W, C, KH, KW, stride, padding, pool): 1 channel (a 3-byte kernel row), rows past one VNNI
# group, odd planes, floor-mode pools that drop a row and a column
CONVS = [(1, 5, 5, 1, 3, 3, 1, 0, 1), (2, 9, 7, 3, 3, 3, 1, 1, 2), (1, 12, 11, 5, 3, 3, 2, 1, 1),
         (1, 13, 13, 8, 5, 5, 1, 2, 2), (3, 6, 6, 2, 1, 1, 1, 0, 3), (1, 8, 9, 17, 3, 2, 1, 1, 1)]


def im2col_nhwc_cases(rng):
    for i, (n, h, w, c, kh, kw, s, p, pool) in enumerate(CONVS):
        x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
        yield case(x, kh, kw, s, p, 1, int(rng.integers(0, 256)), pool, row_align=(1, 4)[i % 2])
    yield case(rng.integers(0, 256, (1, 9, 9, 2), dtype=np.uint8), 3, 3, 1, 2, dilation=2, pad_value=255)


def gemm_weight(w):
    """(OC, C, KH, KW) int8 -> the (KH * roundup(KW*C, 4), OC) GEMM weight in (kh, kw, c) row order,
    zero rows on each kernel row's padding; what ``conv2d_u8s8_requant_nhwc`` takes packed."""
    oc, c, kh, kw = w.shape
    rows = w.transpose(2, 3, 1, 0).reshape(kh, kw * c, oc)
    rows = np.pad(rows, ((0, 0), (0, -(kw * c) % ROW_ALIGN), (0, 0)))
    return np.ascontiguousarray(rows.reshape(-1, oc))


def conv_nhwc_cases(rng):
    for i, (n, h, w, c, kh, kw, s, p, pool) in enumerate(CONVS):
        oc = (1, 5, 16, 17, 64, 65)[i]
        x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
        packed = pack_s8(gemm_weight(rng.integers(-128, 128, (oc, c, kh, kw), dtype=np.int8)))
        multiplier, shift = random_requant(rng, oc, 1e-5, 1e-2)
        bias = rng.integers(-2**16, 2**16, oc, dtype=np.int32)
        if pool > 2:
            pool = 2 if min(h, w) >= 2 else 1
        yield case(x, packed, kh, kw, s, p, int(rng.integers(0, 256)), bias, multiplier, shift,
                   int(rng.integers(0, 256)), pool=pool, relu=bool(i % 2))
    x = np.full((1, 6, 6, 3), 255, np.uint8)
    packed = pack_s8(gemm_weight(np.full((4, 3, 3, 3), -128, np.int8)))
    yield case(x, packed, 3, 3, 1, 1, 0, None, *random_requant(rng, 4), 128, pool=2)


# ------------------------------------------------------------------------------------ reference

@define("im2col_u8_nhwc", check=_check_im2col, cases=im2col_nhwc_cases)
def im2col_u8_nhwc(x, kh, kw, stride=1, padding=0, dilation=1, pad_value=0, pool=1, row_align=1, *, oh, ow):
    """Unfold uint8 ``x`` (N, H, W, C) into (N*OH*OW, KH*KW*C): rows (n, oh, ow), columns (kh, kw, c).

    The same windows as ``im2col_u8`` with the columns in (kh, kw, c) order instead of (c, kh, kw);
    a weight (OC, C, KH, KW) matches it after ``transpose(0, 2, 3, 1)``. Padding cells hold
    ``pad_value``, the input zero point (real 0.0).

    ``pool > 1`` prepares a fused pool x pool, stride-pool max-pool (``gemm_u8s8_requant_rowmax``):
    rows are ordered (n, ph, pw, dy, dx) with oh = ph * pool + dy, ow = pw * pool + dx, so each
    window's pool * pool rows are consecutive, and the outputs a floor-mode pool drops are left
    out: N * (OH // pool) * (OW // pool) * pool**2 rows.

    ``row_align > 1`` follows each kernel row's KW*C bytes with ``pad_value`` bytes up to a multiple
    of ``row_align`` (KH * roundup(KW*C, row_align) columns): with 4, a 1-channel 3x3 kernel row is
    one 4-byte VNNI group, and the C tier copies it with one 4-byte move.
    """
    n, c = x.shape[0], x.shape[3]
    cols = unfold(x.transpose(0, 3, 1, 2), kh, kw, stride, padding, dilation, oh, ow, pad_value)  # (.., C*KH*KW)
    cols = cols.reshape(n, oh, ow, c, kh, kw).transpose(0, 1, 2, 4, 5, 3).reshape(n, oh, ow, kh, kw * c)
    cols = np.pad(cols, [(0, 0)] * 4 + [(0, -(kw * c) % row_align)], constant_values=pad_value)
    ph, pw = oh // pool, ow // pool
    cols = cols[:, :ph * pool, :pw * pool].reshape(n, ph, pool, pw, pool, -1).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(cols.reshape(n * ph * pw * pool * pool, -1))


@define("conv2d_u8s8_requant_nhwc", check=_check_conv, cases=conv_nhwc_cases)
def conv2d_u8s8_requant_nhwc(x, packed, kh, kw, stride, padding, a_zero_point, bias, multiplier, shift,
                             zero_point_out, pool=1, qmin=None, qmax=None, relu=False, *, oh, ow):
    """Integer conv (+ fused ReLU, + fused pool x pool max-pool) on NHWC, requantized to uint8.

    Exactly ``gemm_u8s8_requant_rowmax(im2col_u8_nhwc(x, kh, kw, stride, padding, 1, a_zero_point,
    pool, row_align=4), packed, ..., group=pool * pool)`` reshaped to NHWC. Faster tiers compute the
    same sums without building the im2col matrix (integer sums do not depend on how rows are read).

    Args:
        x: uint8 (N, H, W, C) with zero point ``a_zero_point`` (also the padding value: real 0).
        packed: ``pack_s8`` of the (KH * roundup(KW * C, 4), OC) weight in (kh, kw, c) row order,
            zero rows on each kernel row's padding (``gemm_weight``).
        kh, kw, stride, padding: the conv geometry (dilation 1).
        bias, multiplier, shift, zero_point_out, qmin, qmax, relu: as in ``requantize_s32``.
        pool: 1, or 2 for a following 2x2 / stride-2 max-pool (floor mode).
    Returns:
        uint8 (N, OH // pool, OW // pool, OC).
    """
    cols = im2col_u8_nhwc(x, kh, kw, stride, padding, 1, a_zero_point, pool, ROW_ALIGN)
    out = gemm_u8s8_requant_rowmax(cols, packed, a_zero_point, bias, multiplier, shift, zero_point_out,
                                   pool * pool, qmin, qmax, relu)
    return out.reshape(x.shape[0], oh // pool, ow // pool, packed.n)
