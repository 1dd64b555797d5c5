"""2-D convolution, lowered to one GEMM through im2col (PyTorch's NCHW and (OC, C/groups, KH, KW)).

Forward: ``cols = im2col(x)`` (N*OH*OW, C*KH*KW), then ``cols @ w2d.T`` (N*OH*OW, OC), reshaped to
NCHW. Backward rebuilds ``cols`` (one more memory-bound copy, instead of keeping an array 9x the
input alive between the passes): grad_w = g.T @ cols, grad_cols = g @ w2d, grad_x = col2im(grad_cols).
Every array op here goes through a registry kernel, so faster tiers replace it without touching
layers. float32 convolutions may skip im2col on the direct kernels (csrc/conv/dconv.c): ``conv2d_f32``
computes the output, ``conv2d_wgrad_f32`` the weight gradient and ``conv2d_xgrad_f32`` the input
gradient: for stride 1 a "full" correlation of the output gradient with the flipped, transposed
weight; for stride s, s*s such correlations, one per phase (kernels/conv/phases.py). Which
lowering each pass takes is measured on this machine (kernels/conv/lowering.py).
Depthwise convolution (one input channel per group) skips the GEMM: it runs the depthwise kernels
(tinyeff/kernels/depthwise: KH*KW multiply-adds per output, which is what it costs). Other group
counts loop over groups. A groups == 1 convolution that records no graph runs through an inference
plan (ops/plan.py): its checks and lowering once per call signature, its kernels prepared.
"""
import numpy as np

from tinyeff import kernels
from tinyeff.kernels.conv import lowering
from tinyeff.kernels.conv.lowering import flipped_weight
from tinyeff.kernels.layout.geometry import check_conv_geometry
from tinyeff.ops import plan
from tinyeff.ops.elementwise import relu as relu_op
from tinyeff.ops.kernel_choice import kernel_for
from tinyeff.ops.pool import max_pool2d
from tinyeff.tensor import make_result, records_graph


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


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, relu=False, pool=1):
    """Convolve ``x`` (N, C, H, W) with ``w`` (OC, C/groups, KH, KW), add ``b`` (OC,).

    ``relu=True`` returns ``relu(conv2d(...))`` and ``pool > 1`` then ``max_pool2d(..., pool)``;
    when no gradient is recorded (``no_grad``, or no input requires one) the ReLU is fused into the
    convolution's output pass, and so is the max-pool where the direct kernel runs (it computes
    only the positions the pool keeps, and never writes the unpooled output).

    Returns:
        Tensor (N, OC, OH, OW), OH = (H + 2*padding - dilation*(KH-1) - 1) // stride + 1, or
        (N, OC, OH // pool, OW // pool) when pooled.
    Raises:
        ValueError: shapes or geometry do not fit (the message names the fix).
    """
    geom = (stride, padding, dilation)
    parents = (x, w) if b is None else (x, w, b)
    records = records_graph(parents)
    if groups == 1 and not records:
        out, fused = _inference(x.data, w.data, None if b is None else b.data, geom, relu, pool)
        out = make_result(out, parents, None, "conv2d")
        return max_pool2d(out, pool) if pool > fused else out
    if pool > 1:
        return max_pool2d(conv2d(x, w, b, stride, padding, dilation, groups, relu), pool)
    oh, ow = _check(x, w, b, stride, padding, dilation, groups)
    fuse = relu and not records
    if groups == 1:
        out, backward = _conv_dense(x.data, w.data, geom, oh, ow)
    elif groups == x.shape[1] and w.shape[1] == 1:
        out, backward = _conv_depthwise(x.data, w.data, geom, oh, ow)
    else:
        out, backward = _conv_grouped(x.data, w.data, geom, oh, ow, groups)
    if b is not None:
        out += b.data.reshape(1, -1, 1, 1)
    if fuse:
        np.maximum(out, 0, out=out)

    def backward_all(g):
        gx, gw = backward(g, x.requires_grad)
        gb = g.sum(axis=(0, 2, 3)) if b is not None and b.requires_grad else None
        return gx, gw, gb
    result = make_result(out, parents, backward_all, "conv2d")
    return relu_op(result) if relu and not fuse else result


def _inference(x, w, b, geom, relu, pool):
    """A groups == 1 convolution that records no graph, through its inference plan (ops/plan.py):
    the checks and the lowering run once per call signature, the kernels are prepared. Bias, ReLU
    and the max-pool go into the kernel where it has them (the direct one fuses the pool).

    Returns:
        (output array, the pool window the kernel applied: ``pool``, or 1 when the caller pools).
    """
    key = ("conv2d", x.shape, x.dtype, w.shape, w.dtype, b is None or (b.shape, b.dtype), geom, relu, pool)

    def validate():
        oh, ow = _check(x, w, b, *geom, 1)
        how = _lowering("forward", x, w, geom)
        return oh, ow, how, pool if how == "direct" else 1

    def body(kernel, decided):
        oh, ow, how, fused = decided
        return forward_pass(x, w, geom, oh, ow, how, b, relu=relu, pool=fused, kernel=kernel), fused
    return plan.run(key, validate, body)


def output_size(x_shape, w_shape, geom):
    """(OH, OW) of a convolution of an ``x_shape`` input with a ``w_shape`` weight."""
    return check_conv_geometry(x_shape, w_shape[2], w_shape[3], *geom, "conv2d")


def _lowering(pass_name, x, w, geom):
    """``direct`` or ``gemm`` for one pass (kernels/conv/lowering.py measures it once per geometry)."""
    if x.dtype != np.float32:
        return "gemm"                        # only float32 has direct kernels
    return lowering.choose(pass_name, (*x.shape, w.shape[0], *w.shape[2:], *geom), pass_on_random_data)


def pass_on_random_data(pass_name, geometry, seed=0):
    """``run(how)``: one pass of a convolution of this geometry on random float32 data, lowered
    ``how`` (what kernels/conv/lowering.py times)."""
    n, c, h, w, oc, kh, kw, stride, padding, dilation = geometry
    geom = (stride, padding, dilation)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((oc, c, kh, kw)).astype(np.float32)
    oh, ow = output_size(x.shape, wt.shape, geom)
    g = rng.standard_normal((n, oc, oh, ow)).astype(np.float32)
    return {
        "forward": lambda how: forward_pass(x, wt, geom, oh, ow, how),
        "input_grad": lambda how: input_grad_pass(g, wt, x.shape, geom, how),
        "weight_grad": lambda how: weight_grad_pass(x, g, wt.shape, geom, how),
    }[pass_name]


def forward_pass(x, w, geom, oh, ow, how, bias=None, relu=False, pool=1, kernel=kernel_for):
    """(N, OC, OH, OW) output of a groups == 1 convolution, lowered ``how`` (direct or gemm);
    ``pool > 1`` (direct only) max-pools it in the kernel, (N, OC, OH // pool, OW // pool).
    ``kernel``: how kernels are looked up (an inference plan hands in its prepared ones)."""
    stride, padding, dilation = geom
    n, (oc, _, kh, kw) = x.shape[0], w.shape
    if how == "direct":
        return kernel("conv2d_f32", x)(x, w, bias, stride, padding, dilation, relu, pool)
    assert pool == 1, "forward_pass: only the direct kernel fuses a max-pool"
    if n == 1:      # taps-major: w2d @ cols_t[0] is the image's NCHW output, no transposing copy
        cols_t = kernel("im2col_f32_t", x)(x, kh, kw, stride, padding, dilation)    # (1, C*KH*KW, OH*OW)
        out = kernel("gemm_f32", x)(w.reshape(oc, -1), cols_t[0]).reshape(1, oc, oh, ow)
    else:
        cols = kernel("im2col_f32", x)(x, kh, kw, stride, padding, dilation)   # (N*OH*OW, C*KH*KW)
        out = kernel("gemm_f32", x)(cols, w.reshape(oc, -1).T)              # (N*OH*OW, OC)
        out = np.ascontiguousarray(out.reshape(n, oh, ow, oc).transpose(0, 3, 1, 2))
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return np.maximum(out, 0, out=out) if relu else out


def input_grad_pass(g, w, x_shape, geom, how):
    """grad_x (N, C, H, W) from grad_out ``g``. Direct: ``conv2d_xgrad_f32``, one correlation of
    ``g`` with the flipped taps per phase of the stride (kernels/conv/phases.py); dilated (stride 1):
    the forward kernel on ``g`` with the flipped, transposed weight; gemm: g @ w2d, then col2im."""
    stride, padding, dilation = geom
    oc, _, kh, kw = w.shape
    if how == "direct" and dilation == 1:
        return kernels.get("conv2d_xgrad_f32")(g, w, x_shape, stride, padding, dilation)
    if how == "direct":
        full = dilation * (kh - 1) - padding
        return kernels.get("conv2d_f32")(g, flipped_weight(w), None, 1, full, dilation)
    g2d = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).reshape(-1, oc)       # (N*OH*OW, OC)
    gcols = kernel_for("gemm_f32", g)(g2d, w.reshape(oc, -1))                 # (N*OH*OW, C*KH*KW)
    return kernel_for("col2im_f32", g)(gcols, x_shape, kh, kw, stride, padding, dilation)


def weight_grad_pass(x, g, w_shape, geom, how):
    """grad_w (OC, C, KH, KW). Direct: csrc/conv/dconv.c's blocked reduction; gemm: g2d.T @ im2col(x)
    (im2col rebuilt here rather than kept from the forward pass: it is 9x the input at 3x3)."""
    stride, padding, dilation = geom
    oc, _, kh, kw = w_shape
    if how == "direct":
        return kernels.get("conv2d_wgrad_f32")(x, g, kh, kw, stride, padding, dilation)
    g2d = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).reshape(-1, oc)       # (N*OH*OW, OC)
    cols = kernel_for("im2col_f32", x)(x, kh, kw, stride, padding, dilation)
    return kernel_for("gemm_f32", x)(g2d.T, cols).reshape(w_shape)


def _conv_dense(x, w, geom, oh, ow):
    """groups == 1: each pass on its lowering. Returns (out, backward(g, need_gx) -> (gx, gw)).

    Two rewrites keep the direct kernels from copying the input twice. A padded stride-1 float32
    convolution pads the input once (``pad2d_f32``) and runs unpadded on it: the forward pass reads
    it, and it stays alive for the weight gradient, which would otherwise pad again. A 1x1 kernel
    with stride s and no padding reads only every s-th row and column: it runs at stride 1 on that
    subsample (the strided layout would split the input into s*s phase planes and use one), and
    its input gradient is scattered back onto those positions."""
    stride, padding, dilation = geom
    kh, kw = w.shape[2:]
    if x.dtype != np.float32 or lowering.mode() == "gemm" or kernels.active_tier("conv2d_f32") != "c":
        return _conv_plain(x, w, geom, oh, ow)
    if kh == kw == 1 and padding == 0 and stride > 1:
        xs = np.ascontiguousarray(x[:, :, ::stride, ::stride])
        out, backward_s = _conv_plain(xs, w, (1, 0, 1), oh, ow)

        def backward(g, need_gx):
            gxs, gw = backward_s(g, need_gx)
            if gxs is None:
                return None, gw
            gx = np.zeros(x.shape, dtype=gxs.dtype)
            gx[:, :, ::stride, ::stride] = gxs
            return gx, gw
        return out, backward
    if stride == 1 and padding > 0:
        xp = kernels.get("pad2d_f32")(x, padding)
        out = forward_pass(xp, w, (1, 0, dilation), oh, ow, _lowering("forward", xp, w, (1, 0, dilation)))

        def backward(g, need_gx):
            g = np.ascontiguousarray(g)
            gw = weight_grad_pass(xp, g, w.shape, (1, 0, dilation),
                                  _lowering("weight_grad", xp, w, (1, 0, dilation)))
            gx = input_grad_pass(g, w, x.shape, geom, _lowering("input_grad", x, w, geom)) if need_gx else None
            return gx, gw
        return out, backward
    return _conv_plain(x, w, geom, oh, ow)


def _conv_plain(x, w, geom, oh, ow):
    """groups == 1 as it comes: each pass on its lowering, the input laid out by each pass."""
    out = forward_pass(x, w, geom, oh, ow, _lowering("forward", x, w, geom))

    def backward(g, need_gx):
        g = np.ascontiguousarray(g)
        gw = weight_grad_pass(x, g, w.shape, geom, _lowering("weight_grad", x, w, geom))
        gx = input_grad_pass(g, w, x.shape, geom, _lowering("input_grad", x, w, geom)) if need_gx else None
        return gx, gw
    return out, backward


def _conv_depthwise(x, w, geom, oh, ow):
    """One filter per input channel (OC = multiplier * C): the depthwise kernels, no GEMM."""
    stride, padding, dilation = geom
    kh, kw = w.shape[2:]
    out = kernel_for("dwconv2d_f32", x)(x, w, stride, padding, dilation)

    def backward(g, need_gx):
        g = np.ascontiguousarray(g)
        gw = kernel_for("dwconv2d_wgrad_f32", x)(x, g, kh, kw, stride, padding, dilation)
        gx = kernel_for("dwconv2d_xgrad_f32", g)(g, w, x.shape, stride, padding, dilation) if need_gx else None
        return gx, gw
    return out, backward


def _conv_grouped(x, w, geom, oh, ow, groups):
    """General groups: an independent GEMM convolution per group of channels."""
    c, oc = x.shape[1], w.shape[0]
    cin, cout = c // groups, oc // groups
    parts = [_conv_dense(np.ascontiguousarray(x[:, k * cin:(k + 1) * cin]), w[k * cout:(k + 1) * cout],
                        geom, oh, ow) for k in range(groups)]
    out = np.concatenate([p[0] for p in parts], axis=1)

    def backward(g, need_gx):
        results = [p[1](np.ascontiguousarray(g[:, k * cout:(k + 1) * cout]), need_gx) for k, p in enumerate(parts)]
        gx = np.concatenate([r[0] for r in results], axis=1) if need_gx else None
        return gx, np.concatenate([r[1] for r in results], axis=0)
    return out, backward
