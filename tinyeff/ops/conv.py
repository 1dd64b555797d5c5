"""2-D convolution, lowered to one GEMM through im2col (PyTorch's NCHW and (OC, C/groups, KH, KW)).

Forward: ``cols = im2col(x)`` (N*OH*OW, C*KH*KW), then ``cols @ w2d.T`` (N*OH*OW, OC), reshaped to
NCHW. Backward rebuilds ``cols`` (one more memory-bound copy, instead of keeping an array 9x the
input alive between the passes): grad_w = g.T @ cols, grad_cols = g @ w2d, grad_x = col2im(grad_cols).
Every array op here goes through a registry kernel, so faster tiers replace it without touching
layers. When ``kernels/conv/lowering.py`` says the direct convolution pays (a direct tier is active
and the output plane fills its register tiles), float32 convolutions skip im2col: ``conv2d_f32`` computes the output,
``conv2d_wgrad_f32`` the weight gradient, and for stride 1 the input gradient is ``conv2d_f32`` of
the output gradient with the flipped, transposed weight (a "full" correlation). Depthwise convolution (one input channel per group) skips the GEMM: it is KH*KW shifted
multiply-adds, which is what it costs. Other group counts loop over groups.
"""
import numpy as np

from tinyeff import kernels
from tinyeff.kernels.conv import lowering
from tinyeff.kernels.conv.lowering import flipped_weight
from tinyeff.kernels.layout.geometry import check_conv_geometry
from tinyeff.ops.kernel_choice import kernel_for
from tinyeff.tensor import make_result


def _check(x, w, b, stride, padding, dilation, groups):
    if x.ndim != 4:
        raise ValueError(f"conv2d: input must be N x C x H x W, got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"conv2d: weight must be OC x C/groups x KH x KW, got shape {w.shape}")
    oc, cg, kh, kw = w.shape
    if groups < 1 or x.shape[1] % groups or oc % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both input channels ({x.shape[1]}) "
                         f"and output channels ({oc})")
    if x.shape[1] != cg * groups:
        raise ValueError(f"conv2d: input has {x.shape[1]} channels but weight expects {cg * groups} "
                         f"(weight shape {w.shape}, groups={groups}); build the layer with "
                         f"in_channels={x.shape[1]}")
    if b is not None and b.shape != (oc,):
        raise ValueError(f"conv2d: bias has shape {b.shape}, expected ({oc},)")
    if x.dtype != w.dtype:
        raise TypeError(f"conv2d: input is {x.dtype} but weight is {w.dtype}; cast one of them")
    return check_conv_geometry(x.shape, kh, kw, stride, padding, dilation, "conv2d")


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Convolve ``x`` (N, C, H, W) with ``w`` (OC, C/groups, KH, KW), add ``b`` (OC,).

    Returns:
        Tensor (N, OC, OH, OW), OH = (H + 2*padding - dilation*(KH-1) - 1) // stride + 1.
    Raises:
        ValueError: shapes or geometry do not fit (the message names the fix).
    """
    oh, ow = _check(x, w, b, stride, padding, dilation, groups)
    geom = (stride, padding, dilation)
    if groups == 1:
        out, backward = _conv_gemm(x.data, w.data, geom, oh, ow)
    elif groups == x.shape[1] and w.shape[1] == 1:
        out, backward = _conv_depthwise(x.data, w.data, geom, oh, ow)
    else:
        out, backward = _conv_grouped(x.data, w.data, geom, oh, ow, groups)
    parents = (x, w) if b is None else (x, w, b)
    if b is not None:
        out += b.data.reshape(1, -1, 1, 1)

    def backward_all(g):
        gx, gw = backward(g, x.requires_grad)
        gb = g.sum(axis=(0, 2, 3)) if b is not None and b.requires_grad else None
        return gx, gw, gb
    return make_result(out, parents, backward_all, "conv2d")


def _conv_direct(x, w, geom, oh, ow):
    """groups == 1 on the direct tier: no im2col matrix in either pass."""
    stride, padding, dilation = geom
    kh, kw = w.shape[2:]
    out = kernels.get("conv2d_f32")(x, w, None, stride, padding, dilation)

    def backward(g, need_gx):
        g = np.ascontiguousarray(g)
        gw = kernels.get("conv2d_wgrad_f32")(x, g, kh, kw, stride, padding, dilation)
        full = dilation * (kh - 1) - padding
        if not need_gx:
            return None, gw
        if stride == 1 and kh == kw and full >= 0:
            return kernels.get("conv2d_f32")(g, flipped_weight(w), None, 1, full, dilation), gw
        g2d = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).reshape(-1, w.shape[0])
        gcols = kernels.get("gemm_f32")(g2d, w.reshape(w.shape[0], -1))
        return kernels.get("col2im_f32")(gcols, x.shape, kh, kw, stride, padding, dilation), gw
    return out, backward


def _conv_gemm(x, w, geom, oh, ow):
    """groups == 1: im2col + one GEMM. Returns (out, backward(g, need_gx) -> (gx, gw))."""
    if lowering.use_direct(x, oh, ow):
        return _conv_direct(x, w, geom, oh, ow)
    stride, padding, dilation = geom
    n = x.shape[0]
    oc, _, kh, kw = w.shape
    im2col, gemm = kernel_for("im2col_f32", x), kernel_for("gemm_f32", x)
    cols = im2col(x, kh, kw, stride, padding, dilation)             # (N*OH*OW, C*KH*KW)
    w2d = w.reshape(oc, -1)                                          # (OC, C*KH*KW)
    out = gemm(cols, w2d.T)                                          # (N*OH*OW, OC)
    out = np.ascontiguousarray(out.reshape(n, oh, ow, oc).transpose(0, 3, 1, 2))

    del cols    # 9x the input for a 3x3 kernel: rebuilt in backward rather than kept alive

    def backward(g, need_gx):
        g2d = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).reshape(-1, oc)  # (N*OH*OW, OC)
        gw = gemm(g2d.T, im2col(x, kh, kw, stride, padding, dilation)).reshape(w.shape)
        gx = None
        if need_gx:
            gcols = gemm(g2d, w2d)                                   # (N*OH*OW, C*KH*KW)
            gx = kernel_for("col2im_f32", x)(gcols, x.shape, kh, kw, stride, padding, dilation)
        return gx, gw
    return out, backward


def _taps(shape_hw, kh, kw, geom, oh, ow):
    """Yield (i, j, row slice, col slice) of every kernel tap in the padded input."""
    stride, _, dilation = geom
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dilation, j * dilation
            yield i, j, slice(h0, h0 + stride * (oh - 1) + 1, stride), slice(w0, w0 + stride * (ow - 1) + 1, stride)


def _conv_depthwise(x, w, geom, oh, ow):
    """One filter per input channel (OC = multiplier * C): KH*KW shifted multiply-adds."""
    _, padding, _ = geom
    n, c, h, wd = x.shape
    oc, _, kh, kw = w.shape
    mult = oc // c
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))) if padding else x
    xs = np.repeat(xp, mult, axis=1) if mult > 1 else xp          # output channel o reads input o // mult
    out = np.zeros((n, oc, oh, ow), dtype=x.dtype)
    taps = list(_taps((h, wd), kh, kw, geom, oh, ow))
    for i, j, rows, cols in taps:
        out += xs[:, :, rows, cols] * w[:, 0, i, j].reshape(1, oc, 1, 1)

    def backward(g, need_gx):
        gw = np.empty_like(w)
        gxs = np.zeros_like(xs) if need_gx else None
        for i, j, rows, cols in taps:
            gw[:, 0, i, j] = np.einsum("nchw,nchw->c", g, xs[:, :, rows, cols])
            if need_gx:
                gxs[:, :, rows, cols] += g * w[:, 0, i, j].reshape(1, oc, 1, 1)
        gx = None
        if need_gx:
            if mult > 1:
                gxs = gxs.reshape(n, c, mult, *gxs.shape[2:]).sum(axis=2)
            gx = gxs[:, :, padding:padding + h, padding:padding + wd] if padding else gxs
        return gx, gw
    return out, backward


def _conv_grouped(x, w, geom, oh, ow, groups):
    """General groups: an independent GEMM convolution per group of channels."""
    c, oc = x.shape[1], w.shape[0]
    cin, cout = c // groups, oc // groups
    parts = [_conv_gemm(np.ascontiguousarray(x[:, k * cin:(k + 1) * cin]), w[k * cout:(k + 1) * cout],
                        geom, oh, ow) for k in range(groups)]
    out = np.concatenate([p[0] for p in parts], axis=1)

    def backward(g, need_gx):
        results = [p[1](np.ascontiguousarray(g[:, k * cout:(k + 1) * cout]), need_gx) for k, p in enumerate(parts)]
        gx = np.concatenate([r[0] for r in results], axis=1) if need_gx else None
        return gx, np.concatenate([r[1] for r in results], axis=0)
    return out, backward
