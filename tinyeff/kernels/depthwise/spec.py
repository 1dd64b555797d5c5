"""Depthwise convolution contract and reference: forward, input gradient and weight gradient.

Layout: x (N, C, H, W), w (OC, 1, KH, KW) with OC = M * C (a channel multiplier M >= 1; output
channel o reads input channel o // M), square stride, padding and dilation. A depthwise conv is
KH*KW multiply-adds per output, far too few for a GEMM to pay off, so the reference is one shifted
multiply-add of whole planes per kernel tap; the C tier loops over each output plane directly
(csrc/depthwise/depthwise.c). Float tiers add in another order than the reference: float32 tolerance.
"""
import numpy as np

from tinyeff.kernels.contract import Tolerance, case, define
from tinyeff.kernels.layout.geometry import check_conv_geometry

F32_SUMS = Tolerance(rtol=1e-4, atol=1e-4, why="float32 sums of the taps (or of every position, for the "
                                               "weight gradient) in another order than the reference")

# (N, C, H, W, multiplier, K, stride, padding, dilation): 1x1 planes, odd sizes, EfficientNet's 5x5
# stride 2, a channel multiplier, dilation, a stride larger than the padding, batch 1 and 3
GEOMETRIES = [(1, 1, 1, 1, 1, 1, 1, 0, 1), (2, 3, 7, 5, 1, 3, 1, 1, 1), (1, 8, 9, 9, 1, 3, 2, 1, 1),
              (2, 5, 11, 6, 1, 5, 2, 2, 1), (1, 4, 8, 8, 2, 3, 1, 1, 1), (2, 3, 10, 9, 1, 3, 1, 2, 2),
              (1, 2, 4, 4, 1, 3, 3, 0, 1), (3, 17, 13, 13, 1, 3, 1, 1, 1)]


def check_depthwise(x_shape, w, stride, padding, dilation, name):
    """Validate a depthwise call once; return {"oh", "ow"}. Raises ValueError naming the fix."""
    if len(x_shape) != 4 or w.ndim != 4 or w.shape[1] != 1 or w.shape[0] == 0 or w.shape[0] % max(1, x_shape[1]):
        raise ValueError(f"{name}: need x (N, C, H, W) and w (M*C, 1, KH, KW); got x {tuple(x_shape)} and "
                         f"w {w.shape}")
    oh, ow = check_conv_geometry(tuple(x_shape), w.shape[2], w.shape[3], stride, padding, dilation, name)
    return {"oh": oh, "ow": ow}


def _same_dtype(a, b, what, name):
    if a.dtype != b.dtype:
        raise TypeError(f"{name}: {what[0]} is {a.dtype} but {what[1]} is {b.dtype}; cast one of them")


def check_forward(x, w, stride, padding, dilation):
    _same_dtype(x, w, ("x", "w"), "dwconv2d_f32")
    return check_depthwise(x.shape, w, stride, padding, dilation, "dwconv2d_f32")


def check_xgrad(g, w, x_shape, stride, padding, dilation):
    _same_dtype(g, w, ("grad_out", "w"), "dwconv2d_xgrad_f32")
    derived = check_depthwise(x_shape, w, stride, padding, dilation, "dwconv2d_xgrad_f32")
    want = (x_shape[0], w.shape[0], derived["oh"], derived["ow"])
    if g.shape != want:
        raise ValueError(f"dwconv2d_xgrad_f32: grad_out has shape {g.shape}, expected {want}")
    return {**derived, "x_shape": tuple(int(v) for v in x_shape)}


def check_wgrad(x, g, kh, kw, stride, padding, dilation):
    _same_dtype(x, g, ("x", "grad_out"), "dwconv2d_wgrad_f32")
    derived = check_depthwise(x.shape, np.empty((g.shape[1], 1, kh, kw), x.dtype), stride, padding, dilation,
                              "dwconv2d_wgrad_f32")
    want = (x.shape[0], g.shape[1], derived["oh"], derived["ow"])
    if g.shape != want:
        raise ValueError(f"dwconv2d_wgrad_f32: grad_out has shape {g.shape}, expected {want}")
    return derived


def _arrays(rng, n, c, h, w, mult, k, stride, padding, dilation):
    oh, ow = check_conv_geometry((n, c, h, w), k, k, stride, padding, dilation, "depthwise cases")
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((c * mult, 1, k, k)).astype(np.float32)
    return x, wt, rng.standard_normal((n, c * mult, oh, ow)).astype(np.float32)


def forward_cases(rng):
    for n, c, h, w, mult, k, s, p, d in GEOMETRIES:
        x, wt, _ = _arrays(rng, n, c, h, w, mult, k, s, p, d)
        yield case(x, wt, s, p, d)
    yield case(np.full((1, 2, 5, 5), 1e30, np.float32), np.zeros((2, 1, 3, 3), np.float32), 1, 1, 1)


def xgrad_cases(rng):
    for n, c, h, w, mult, k, s, p, d in GEOMETRIES:
        x, wt, g = _arrays(rng, n, c, h, w, mult, k, s, p, d)
        yield case(g, wt, x.shape, s, p, d)


def wgrad_cases(rng):
    for n, c, h, w, mult, k, s, p, d in GEOMETRIES:
        x, _, g = _arrays(rng, n, c, h, w, mult, k, s, p, d)
        yield case(x, g, k, k, s, p, d)


def _taps(kh, kw, stride, dilation, oh, ow):
    """(i, j, row slice, col slice) of every tap into the padded input."""
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dilation, j * dilation
            yield i, j, slice(h0, h0 + stride * (oh - 1) + 1, stride), slice(w0, w0 + stride * (ow - 1) + 1, stride)


def _padded_repeated(x, padding, mult):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))) if padding else x
    return np.repeat(xp, mult, axis=1) if mult > 1 else xp          # output channel o reads input o // M


@define("dwconv2d_f32", check=check_forward, cases=forward_cases, tolerance=F32_SUMS,
        faster_dtypes={"x": np.float32, "w": np.float32})
def dwconv2d_f32(x, w, stride=1, padding=0, dilation=1, *, oh, ow):
    """Depthwise convolution of x (N, C, H, W) with w (M*C, 1, KH, KW) -> (N, M*C, OH, OW), x's dtype."""
    oc, _, kh, kw = w.shape
    xs = _padded_repeated(x, padding, oc // x.shape[1])
    out = np.zeros((x.shape[0], oc, oh, ow), dtype=x.dtype)
    for i, j, rows, cols in _taps(kh, kw, stride, dilation, oh, ow):
        out += xs[:, :, rows, cols] * w[:, 0, i, j].reshape(1, oc, 1, 1)
    return out


@define("dwconv2d_xgrad_f32", check=check_xgrad, cases=xgrad_cases, tolerance=F32_SUMS,
        faster_dtypes={"g": np.float32, "w": np.float32})
def dwconv2d_xgrad_f32(g, w, x_shape, stride=1, padding=0, dilation=1, *, oh, ow):
    """Input gradient: grad_out g (N, M*C, OH, OW) and w -> grad_x of shape ``x_shape`` (N, C, H, W)."""
    n, c, h, wd = x_shape
    oc, _, kh, kw = w.shape
    gxs = np.zeros((n, oc, h + 2 * padding, wd + 2 * padding), dtype=g.dtype)
    for i, j, rows, cols in _taps(kh, kw, stride, dilation, oh, ow):
        gxs[:, :, rows, cols] += g * w[:, 0, i, j].reshape(1, oc, 1, 1)
    if oc > c:
        gxs = gxs.reshape(n, c, oc // c, *gxs.shape[2:]).sum(axis=2)
    return np.ascontiguousarray(gxs[:, :, padding:padding + h, padding:padding + wd])


@define("dwconv2d_wgrad_f32", check=check_wgrad, cases=wgrad_cases, tolerance=F32_SUMS,
        faster_dtypes={"x": np.float32, "g": np.float32})
def dwconv2d_wgrad_f32(x, g, kh, kw, stride=1, padding=0, dilation=1, *, oh, ow):
    """Weight gradient: x (N, C, H, W) and grad_out g (N, M*C, OH, OW) -> (M*C, 1, KH, KW), x's dtype."""
    oc = g.shape[1]
    xs = _padded_repeated(x, padding, oc // x.shape[1])
    gw = np.empty((oc, 1, kh, kw), dtype=x.dtype)
    for i, j, rows, cols in _taps(kh, kw, stride, dilation, oh, ow):
        gw[:, 0, i, j] = np.einsum("nchw,nchw->c", g, xs[:, :, rows, cols])
    return gw
