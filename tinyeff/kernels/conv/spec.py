"""Dense convolution contract and reference: the forward pass and the weight gradient, as whole ops.

``conv2d_f32``, ``conv2d_wgrad_f32`` and ``conv2d_xgrad_f32`` (the input gradient, dilation 1) are
what a direct convolution tier (c.py, csrc/conv/dconv.c) must match; here they are im2col + one
GEMM (col2im for the input gradient), the lowering ``ops/conv.py`` uses when no faster tier is on.
The C tier computes the input gradient as one stride-1 correlation per phase of the stride
(phases.py); a dilated one at stride 1 is ``conv2d_f32`` of the output gradient with the flipped,
transposed weight (``lowering.flipped_weight``). When the op picks
the direct kernel over im2col + GEMM is ``lowering.py``'s business. ``conv2d_f32(..., pool=k)``
also applies a following non-overlapping k x k max-pool (an inference fusion: the C tier then
computes only the positions the pool keeps); the reference pools its full output.
"""
import numpy as np

from tinyeff.kernels.contract import Tolerance, case, define
from tinyeff.kernels.im2col.spec import col2im_f32, im2col_f32
from tinyeff.kernels.layout.geometry import check_conv_geometry
from tinyeff.kernels.sparse.spec import max_pool_blocks


def check_conv_args(x, w, bias, stride, padding, dilation, name="conv2d_f32"):
    """Validate a dense conv call once; return (OH, OW). Raises ValueError/TypeError naming the fix."""
    if w.ndim != 4 or x.ndim != 4 or w.shape[1] != x.shape[1]:
        raise ValueError(f"{name}: need x (N, C, H, W) and w (OC, C, KH, KW) with the same C; got "
                         f"x {x.shape} and w {w.shape}")
    if x.dtype != w.dtype:
        raise TypeError(f"{name}: x is {x.dtype} but w is {w.dtype}; cast one of them")
    if bias is not None and bias.shape != (w.shape[0],):
        raise ValueError(f"{name}: bias has shape {bias.shape}, expected ({w.shape[0]},)")
    return check_conv_geometry(x.shape, w.shape[2], w.shape[3], stride, padding, dilation, name)


def check_forward(x, w, bias, stride, padding, dilation, pool):
    """Validate a forward call, fused max-pool included; return the derived (OH, OW)."""
    oh, ow = check_conv_args(x, w, bias, stride, padding, dilation)
    if not isinstance(pool, (int, np.integer)) or isinstance(pool, bool) or not 1 <= pool <= min(oh, ow):
        raise ValueError(f"conv2d_f32: pool={pool!r} must be an int from 1 (no pooling) to the conv "
                         f"output's smaller side {min(oh, ow)}")
    return {"oh": oh, "ow": ow, "pool": int(pool)}


def check_wgrad_args(x, g, kh, kw, stride, padding, dilation, name="conv2d_wgrad_f32"):
    """Validate a weight-gradient call once; return (OH, OW)."""
    oh, ow = check_conv_geometry(x.shape, kh, kw, stride, padding, dilation, name)
    if g.ndim != 4 or g.shape[0] != x.shape[0] or g.shape[2:] != (oh, ow):
        raise ValueError(f"{name}: grad_out has shape {g.shape}, expected (N={x.shape[0]}, OC, "
                         f"{oh}, {ow}) for input {x.shape} and a {kh}x{kw} kernel")
    if g.dtype != x.dtype:
        raise TypeError(f"{name}: grad_out is {g.dtype} but x is {x.dtype}; cast one of them")
    return oh, ow


def check_xgrad_args(g, w, x_shape, stride, padding, dilation):
    """Validate an input-gradient call once; return the normalized x_shape and (OH, OW)."""
    name = "conv2d_xgrad_f32"
    if len(x_shape) != 4 or w.ndim != 4 or int(x_shape[1]) != w.shape[1]:
        raise ValueError(f"{name}: need x_shape (N, C, H, W) and w (OC, C, KH, KW) with the same C; "
                         f"got x_shape {tuple(x_shape)} and w {w.shape}")
    if dilation != 1:
        raise ValueError(f"{name}: dilation={dilation}; the phase decomposition needs dilation 1 "
                         "(run a dilated convolution's input gradient through im2col: col2im_f32)")
    x_shape = tuple(int(v) for v in x_shape)
    oh, ow = check_conv_geometry(x_shape, w.shape[2], w.shape[3], stride, padding, dilation, name)
    if g.ndim != 4 or g.shape != (x_shape[0], w.shape[0], oh, ow):
        raise ValueError(f"{name}: grad_out has shape {g.shape}, expected {(x_shape[0], w.shape[0], oh, ow)} "
                         f"for input {x_shape} and weight {w.shape}")
    if g.dtype != w.dtype:
        raise TypeError(f"{name}: grad_out is {g.dtype} but w is {w.dtype}; cast one of them")
    return {"x_shape": x_shape, "oh": oh, "ow": ow}


def _oh_ow(pair):
    return {"oh": pair[0], "ow": pair[1]}


# (N, C, H, W, OC, K, stride, padding, dilation): OC not a multiple of the 4-channel block, output
# planes shorter and longer than the 64/96-position register tiles, every geometry knob on
CONVS = [(1, 1, 5, 5, 1, 3, 1, 0, 1), (2, 3, 9, 7, 5, 3, 1, 1, 1), (1, 4, 13, 11, 6, 3, 2, 1, 1),
         (2, 2, 12, 12, 3, 3, 1, 2, 2), (1, 3, 17, 10, 9, 1, 1, 0, 1), (1, 5, 11, 11, 4, 5, 1, 2, 1)]
# (N, C, H, W, OC, pool) with a 3x3 valid conv: odd outputs (floor drops a row and a column),
# channel counts off every path's channel block, a batch whose positions do not fill the last tile
POOLED = [(2, 3, 10, 10, 32, 2), (3, 5, 9, 12, 17, 2), (1, 2, 11, 11, 40, 3), (5, 4, 6, 6, 64, 2)]
F32_SUMS = Tolerance(rtol=1e-4, atol=1e-4, why="float32 sums in a different order than BLAS")


def conv2d_cases(rng):
    for n, c, h, w, oc, k, s, p, d in CONVS:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = rng.standard_normal((oc, c, k, k)).astype(np.float32)
        yield case(x, wt, None, s, p, d)
        yield case(x, wt, rng.standard_normal(oc).astype(np.float32), s, p, d, relu=True)
    for i, (n, c, h, w, oc, pool) in enumerate(POOLED):
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = rng.standard_normal((oc, c, 3, 3)).astype(np.float32)
        yield case(x, wt, rng.standard_normal(oc).astype(np.float32), 1, 0, 1, relu=bool(i % 2), pool=pool)


# (N, C, H, W, OC, KH, KW, stride, padding): strides 1 to 3, padding 0, within and beyond the
# kernel's reach, kernels smaller than the stride (rows no tap reaches), odd sizes, non-square
XGRADS = [(2, 3, 9, 7, 5, 3, 3, 1, 1), (1, 2, 8, 9, 3, 3, 2, 1, 0), (1, 2, 7, 7, 3, 3, 3, 1, 3),
          (2, 3, 32, 32, 5, 3, 3, 2, 1), (1, 4, 11, 13, 6, 3, 3, 2, 1), (2, 2, 10, 9, 3, 1, 1, 2, 0),
          (1, 3, 12, 12, 4, 5, 5, 3, 2), (1, 2, 9, 9, 3, 4, 4, 2, 3), (2, 3, 9, 10, 4, 3, 2, 2, 1)]


def conv2d_xgrad_cases(rng):
    for n, c, h, w, oc, kh, kw, s, p in XGRADS:
        oh, ow = check_conv_geometry((n, c, h, w), kh, kw, s, p, 1, "conv2d_xgrad_cases")
        yield case(rng.standard_normal((n, oc, oh, ow)).astype(np.float32),
                   rng.standard_normal((oc, c, kh, kw)).astype(np.float32), (n, c, h, w), s, p, 1)


def conv2d_wgrad_cases(rng):
    for n, c, h, w, oc, k, s, p, d in CONVS:
        oh, ow = check_conv_geometry((n, c, h, w), k, k, s, p, d, "conv2d_wgrad_cases")
        yield case(rng.standard_normal((n, c, h, w)).astype(np.float32),
                   rng.standard_normal((n, oc, oh, ow)).astype(np.float32), k, k, s, p, d)


@define("conv2d_f32", check=check_forward, cases=conv2d_cases, tolerance=F32_SUMS,
        faster_dtypes={"x": np.float32, "w": np.float32, "bias": np.float32})
def conv2d_f32(x, w, bias=None, stride=1, padding=0, dilation=1, relu=False, pool=1, *, oh, ow):
    """Cross-correlate x (N, C, H, W) with w (OC, C, KH, KW), add bias (OC,), maybe ReLU, maybe
    max-pool: ``pool > 1`` fuses a following ``pool`` x ``pool`` max-pool with stride ``pool``, no
    padding, floor mode (``MaxPool2d(pool)``).

    Returns (N, OC, OH // pool, OW // pool), C-contiguous, in x's dtype; faster tiers match it up
    to float32 accumulation order.
    """
    n, oc = x.shape[0], w.shape[0]
    cols = im2col_f32(x, w.shape[2], w.shape[3], stride, padding, dilation)   # (N*OH*OW, C*KH*KW)
    out = (cols @ w.reshape(oc, -1).T).reshape(n, oh, ow, oc).transpose(0, 3, 1, 2)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(max_pool_blocks(np.maximum(out, 0) if relu else out, pool))


@define("conv2d_wgrad_f32", check=lambda x, g, kh, kw, stride, padding, dilation:
        _oh_ow(check_wgrad_args(x, g, kh, kw, stride, padding, dilation)),
        cases=conv2d_wgrad_cases, tolerance=F32_SUMS, faster_dtypes={"x": np.float32, "g": np.float32})
def conv2d_wgrad_f32(x, g, kh, kw, stride=1, padding=0, dilation=1):
    """Weight gradient of conv2d: sum over images and positions of g (N, OC, OH, OW) times the
    input window. Returns (OC, C, KH, KW) in x's dtype."""
    oc = g.shape[1]
    cols = im2col_f32(x, kh, kw, stride, padding, dilation)                   # (N*OH*OW, C*KH*KW)
    g2d = g.transpose(0, 2, 3, 1).reshape(-1, oc)                              # (N*OH*OW, OC)
    return (g2d.T @ cols).reshape(oc, x.shape[1], kh, kw)


@define("conv2d_xgrad_f32", check=check_xgrad_args, cases=conv2d_xgrad_cases, tolerance=F32_SUMS,
        faster_dtypes={"g": np.float32, "w": np.float32})
def conv2d_xgrad_f32(g, w, x_shape, stride=1, padding=0, dilation=1, *, oh, ow):
    """Input gradient of conv2d (dilation 1): grad_out g (N, OC, OH, OW) times w (OC, C, KH, KW),
    scattered back onto the input, x_shape = (N, C, H, W). Returns (N, C, H, W) in g's dtype."""
    oc, c, kh, kw = w.shape
    gcols = g.transpose(0, 2, 3, 1).reshape(-1, oc) @ w.reshape(oc, -1)       # (N*OH*OW, C*KH*KW)
    return col2im_f32(gcols, x_shape, kh, kw, stride, padding, dilation)
