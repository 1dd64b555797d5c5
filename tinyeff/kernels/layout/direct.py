"""The "flat shift" layout a direct convolution reads: every kernel tap is one contiguous run.

A direct convolution skips im2col: for each output channel it adds ``weight * (shifted input
plane)`` over the kernel's taps. ``direct_conv_layout`` lowers any stride, padding and dilation to
stride-1 shifts of one flat plane so that inner loop is a plain axpy, and ``flat_tap_offsets`` says
where each tap's run starts. The dense direct conv (``kernels/conv/``) and the sparse one
(``kernels/sparse/``) share this lowering so the Numba and C tiers cannot disagree on edge cases.
"""
import functools

import numpy as np

from tinyeff.kernels import registry
from tinyeff.kernels.layout.geometry import check_conv_geometry


def direct_conv_layout(x, kh, kw, stride, padding, dilation, pad_value=0):
    """Lower a strided, padded conv to stride-1 "flat shift" form for the direct sparse loop.

    Split the padded input into ``stride * stride`` phase planes, ``xs[n, c, ph, pw, i, j] =
    xpad[n, c, i * stride + ph, j * stride + pw]``. Tap (kh, kw) then reads phase
    (kh*d % s, kw*d % s) shifted by (kh*d // s, kw*d // s) with stride 1, so in the flattened
    plane of width ``WS`` every tap is one contiguous run: output position ``p = oh * WS + ow``
    reads ``src[tap_offset + p]``. Positions with ``ow >= OW`` are computed and thrown away (the
    price of a contiguous inner loop), and ``L = (OH-1) * WS + OW`` keeps every read in bounds.

    Returns:
        (src, img_stride, ws, oh, ow, length): ``src`` a C-contiguous (N, C*s*s, HS, WS) array
        (``x`` itself, uncopied, when stride 1 and padding 0), ``img_stride`` = C*s*s*HS*WS.
    """
    oh, ow = check_conv_geometry(x.shape, kh, kw, stride, padding, dilation, "direct_conv_layout")
    n, c, h, w = x.shape
    s = stride
    if s == 1 and padding == 0:
        src = np.ascontiguousarray(x)
    elif s == 1 and pad_value == 0:
        src = registry.get("pad2d_f32", None if x.dtype == np.float32 else "ref")(x, padding)
    else:
        hs, ws = -(-(h + 2 * padding) // s), -(-(w + 2 * padding) // s)
        shape = (n, c, hs * s, ws * s)    # np.zeros maps fresh zero pages: cheaper than a fill
        xp = np.zeros(shape, x.dtype) if pad_value == 0 else np.full(shape, pad_value, x.dtype)
        xp[:, :, padding:padding + h, padding:padding + w] = x
        src = np.ascontiguousarray(
            xp.reshape(n, c, hs, s, ws, s).transpose(0, 1, 3, 5, 2, 4).reshape(n, c * s * s, hs, ws))
    hs, ws = src.shape[2], src.shape[3]
    return src, src[0].size, ws, oh, ow, (oh - 1) * ws + ow


def tap_offsets(packed, stride, dilation, hs, ws):
    """Flat offset into one image of ``direct_conv_layout``'s ``src`` for every nonzero tap."""
    _, _, kh, kw = packed.shape
    return flat_tap_offsets(packed.indices, kh, kw, stride, dilation, hs, ws)


def flat_tap_offsets(indices, kh, kw, stride, dilation, hs, ws):
    """Flat offset into one image of the layout for each flat weight index c*KH*KW + i*KW + j."""
    c, tap = np.divmod(indices, kh * kw)
    i, j = np.divmod(tap, kw)
    i, j = i * dilation, j * dilation
    s = stride
    phase = (c * s + i % s) * s + j % s
    return (phase * hs + i // s) * ws + j // s                      # (nnz,) int64


@functools.lru_cache(maxsize=256)
def dense_tap_offsets(c, kh, kw, stride, dilation, hs, ws):
    """Flat offset of every tap (c, i, j), in weight order, into one image of the layout.

    Cached per geometry (a training step asks for the same few dozen); the array is read-only."""
    offsets = np.ascontiguousarray(flat_tap_offsets(np.arange(c * kh * kw), kh, kw, stride, dilation, hs, ws),
                                   dtype=np.int64)
    offsets.flags.writeable = False
    return offsets


@functools.lru_cache(maxsize=256)
def output_positions(oh, ow, ws, pool=1):
    """Flat offset ``oh * WS + ow`` of every output position a layer keeps, in one image of the layout.

    ``pool == 1``: all OH x OW positions, row-major. ``pool > 1``: the positions of each
    ``pool`` x ``pool`` window of a following max-pool (stride ``pool``, floor mode) side by side,
    windows row-major, so each run of ``pool * pool`` offsets is one pooled output; the rows and
    columns no window covers are left out. Cached per geometry; the array is read-only.
    """
    ph, pw = oh // pool, ow // pool
    i = np.arange(ph)[:, None, None, None] * pool + np.arange(pool)[None, None, :, None]   # (PH, 1, k, 1)
    j = np.arange(pw)[None, :, None, None] * pool + np.arange(pool)[None, None, None, :]   # (1, PW, 1, k)
    offsets = np.ascontiguousarray((i * ws + j).reshape(-1), dtype=np.int64)
    offsets.flags.writeable = False
    return offsets


def direct_conv_plan(x, packed, stride, padding, dilation, pad_value, acc_dtype, pool=1):
    """Everything a direct sparse conv loop needs for one call, built the same way for every tier.

    Returns:
        (src, img_stride, ws, length, ow, offsets, out): the ``direct_conv_layout`` of ``x`` and the
        conv's output width ``ow`` (before any pooling), the ``tap_offsets`` of ``packed``, and an
        uninitialised (N, OC, OH // pool, OW // pool) ``acc_dtype`` output.
    """
    oc, _, kh, kw = packed.shape
    src, img_stride, ws, oh, ow, length = direct_conv_layout(x, kh, kw, stride, padding, dilation,
                                                             pad_value)
    offsets = tap_offsets(packed, stride, dilation, src.shape[2], ws)
    out = np.empty((x.shape[0], oc, oh // pool, ow // pool), dtype=acc_dtype)
    return src, img_stride, ws, length, ow, offsets, out

