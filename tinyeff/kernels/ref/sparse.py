"""Reference sparse convolution and linear kernels, and the one packed format every tier shares.

The format ("csr"): a pruned weight ``w`` is viewed as a matrix with one row per output channel (or
output feature) and one column per weight tap, ``(OC, C*KH*KW)`` for a conv and ``(OUT, IN)`` for a
linear layer, and stored in compressed sparse rows: ``indptr`` (rows + 1,) int64, ``indices``
(nnz,) int64 column numbers (c, kh, kw flattened row-major), and ``data`` (nnz,) float32 or int8.
``pack_sparse(w)`` builds it once per layer; every tier reads the same ``SparseWeight``.

The reference kernels are the contract and are deliberately dense: unpack, then im2col + GEMM in
NumPy. Faster tiers (numba/sparse.py, c_float.py) compute the same thing as a *direct* sparse
convolution that skips im2col: for each output channel they loop over its nonzero taps and add
``value * (shifted input plane)`` into the output plane, so the work is proportional to nnz.

The shared lowering that makes that loop one flat axpy, whatever the stride (see
``direct_conv_layout``), also lives here so the Numba and C tiers cannot disagree on edge cases.
What this file leaves out: blocked or bitmap formats (CSR with the direct loop already runs at
memory speed on unstructured sparsity; see bench/bench_sparse.py), and requantization of the int32
accumulators (that is ref/int8.py's job).
"""
from dataclasses import dataclass

import numpy as np

from tinyeff.kernels.ref.im2col import check_conv_geometry, im2col_f32
from tinyeff.kernels import registry
from tinyeff.kernels.registry import register


@dataclass(frozen=True)
class SparseWeight:
    """A pruned weight in CSR form. ``shape`` is the dense shape: (OC, C, KH, KW) or (OUT, IN)."""
    shape: tuple
    indptr: np.ndarray    # (rows + 1,) int64
    indices: np.ndarray   # (nnz,) int64, column in the flattened row (c, kh, kw)
    data: np.ndarray      # (nnz,) float32 or int8

    @property
    def nnz(self):
        return int(self.data.size)

    @property
    def sparsity(self):
        """Measured fraction of zeros in the dense weight."""
        return 1.0 - self.nnz / max(1, int(np.prod(self.shape)))


def pack_sparse(w):
    """Pack a pruned float32 or int8 weight into CSR, keeping only its nonzeros.

    Args:
        w: (OC, C, KH, KW) conv weight or (OUT, IN) linear weight, float32 or int8.

    Returns:
        SparseWeight holding copies (later edits to ``w`` do not leak in).

    Raises:
        TypeError: ``w`` is not float32 or int8. ValueError: ``w`` is not 2-D or 4-D.
    """
    w = np.asarray(w)
    if w.dtype not in (np.float32, np.int8):
        raise TypeError(f"pack_sparse: weight dtype is {w.dtype}; expected float32 or int8 "
                        "(cast with w.astype(np.float32), or quantize first)")
    if w.ndim not in (2, 4):
        raise ValueError(f"pack_sparse: weight shape {w.shape} must be (OC, C, KH, KW) or (OUT, IN)")
    w2d = np.ascontiguousarray(w.reshape(w.shape[0], -1))          # (rows, cols)
    nonzero = w2d != 0
    indptr = np.zeros(w2d.shape[0] + 1, dtype=np.int64)
    np.cumsum(nonzero.sum(axis=1), out=indptr[1:])
    rows, cols = np.nonzero(nonzero)                                # row-major: sorted by row
    return SparseWeight(tuple(w.shape), indptr, cols.astype(np.int64), w2d[rows, cols].copy())


def unpack_sparse(packed):
    """The dense weight a ``SparseWeight`` stands for (same dtype as its data)."""
    rows = packed.shape[0]
    w2d = np.zeros((rows, int(np.prod(packed.shape[1:]))), dtype=packed.data.dtype)
    row_of = np.repeat(np.arange(rows), np.diff(packed.indptr))
    w2d[row_of, packed.indices] = packed.data
    return w2d.reshape(packed.shape)


def check_sparse_args(x, packed, bias, x_dtype, data_dtype, bias_dtype, conv, name):
    """Validate the operands of a sparse kernel once; raise TypeError/ValueError naming the fix."""
    if not isinstance(packed, SparseWeight):
        raise TypeError(f"{name}: weight must be a SparseWeight from pack_sparse(w), "
                        f"got {type(packed).__name__}")
    if x.dtype != x_dtype or packed.data.dtype != data_dtype:
        raise TypeError(f"{name}: expected {np.dtype(x_dtype)} input and {np.dtype(data_dtype)} "
                        f"weight, got {x.dtype} and {packed.data.dtype}")
    if conv and (x.ndim != 4 or len(packed.shape) != 4 or x.shape[1] != packed.shape[1]):
        raise ValueError(f"{name}: input {x.shape} and weight {packed.shape} do not match; need "
                         "x (N, C, H, W) and weight (OC, C, KH, KW) with the same C")
    if not conv and (x.ndim != 2 or len(packed.shape) != 2 or x.shape[1] != packed.shape[1]):
        raise ValueError(f"{name}: input {x.shape} and weight {packed.shape} do not match; need "
                         "x (N, IN) and weight (OUT, IN) with the same IN")
    taps = int(np.prod(packed.shape[1:]))
    if data_dtype == np.int8 and taps > 65536:
        raise ValueError(f"{name}: {taps} taps per output exceed 65536, the most whose int32 sums "
                         "cannot overflow (see ref/int8.py); split the input channels")
    if bias is not None and (bias.dtype != bias_dtype or bias.shape != (packed.shape[0],)):
        raise ValueError(f"{name}: bias must be {np.dtype(bias_dtype)} of shape "
                         f"({packed.shape[0]},), got {bias.dtype} {bias.shape}")


# ----------------------------------------------------------------------------- reference kernels

def _dense_conv(x, w, stride, padding, dilation, pad_value, acc_dtype):
    """Dense conv through im2col + GEMM in ``acc_dtype``: (N, C, H, W) -> (N, OC, OH, OW)."""
    oc, _, kh, kw = w.shape
    oh, ow = check_conv_geometry(x.shape, kh, kw, stride, padding, dilation, "spconv")
    if padding and pad_value != 0:     # im2col pads with zeros; pad by hand with the given value
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                   constant_values=pad_value)
        padding = 0
    cols = im2col_f32(x.astype(acc_dtype), kh, kw, stride, padding, dilation)  # (N*OH*OW, C*KH*KW)
    out = cols @ w.reshape(oc, -1).astype(acc_dtype).T                          # (N*OH*OW, OC)
    return out.reshape(x.shape[0], oh, ow, oc).transpose(0, 3, 1, 2)


def check_pool(x_shape, packed, stride, padding, dilation, pool, name):
    """Validate a fused max-pool size against the conv output; return the pooled (PH, PW)."""
    _, _, kh, kw = packed.shape
    oh, ow = check_conv_geometry(x_shape, kh, kw, stride, padding, dilation, name)
    if not isinstance(pool, (int, np.integer)) or isinstance(pool, bool) or not 1 <= pool <= min(oh, ow):
        raise ValueError(f"{name}: pool={pool!r} must be an int from 1 (no pooling) to the conv "
                         f"output's smaller side {min(oh, ow)}")
    return oh // pool, ow // pool


def max_pool_blocks(out, pool):
    """Non-overlapping ``pool`` x ``pool`` max-pool (stride ``pool``, floor) of (N, C, H, W)."""
    if pool == 1:
        return out
    n, c, h, w = out.shape
    ph, pw = h // pool, w // pool
    return out[:, :, :ph * pool, :pw * pool].reshape(n, c, ph, pool, pw, pool).max(axis=(3, 5))


@register("spconv_f32_csr", tier="ref")
def spconv_f32_csr(x, packed, bias=None, stride=1, padding=0, dilation=1, relu=False, pool=1):
    """Convolve ``x`` with a CSR-packed pruned float32 weight, then add ``bias``, maybe ReLU and pool.

    Args:
        x: (N, C, H, W) float32. packed: SparseWeight of a (OC, C, KH, KW) float32 weight.
        bias: (OC,) float32 or None. stride, padding (zeros), dilation: ints, as in Conv2d.
        relu: apply max(0, .) after the bias (the fused conv + bias + ReLU epilogue).
        pool: fuse a following ``pool`` x ``pool`` max-pool with stride ``pool`` and no padding
            (``MaxPool2d(pool)``); 1 means none.

    Returns:
        (N, OC, OH, OW) float32 (OH, OW divided by ``pool``, rounded down), C-contiguous, equal
        to the dense convolution with the unpacked weight up to float32 accumulation order.
    """
    check_sparse_args(x, packed, bias, np.float32, np.float32, np.float32, True, "spconv_f32_csr")
    check_pool(x.shape, packed, stride, padding, dilation, pool, "spconv_f32_csr")
    out = _dense_conv(x, unpack_sparse(packed), stride, padding, dilation, 0, np.float32)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(max_pool_blocks(np.maximum(out, 0) if relu else out, pool))


@register("splinear_f32_csr", tier="ref")
def splinear_f32_csr(x, packed, bias=None, relu=False):
    """``x @ w.T + bias`` for x (N, IN) float32 and a CSR-packed (OUT, IN) float32 weight.

    Returns:
        (N, OUT) float32, C-contiguous; ReLU applied after the bias when ``relu``.
    """
    check_sparse_args(x, packed, bias, np.float32, np.float32, np.float32, False,
                      "splinear_f32_csr")
    out = x @ unpack_sparse(packed).T
    if bias is not None:
        out = out + bias
    return np.ascontiguousarray(np.maximum(out, 0) if relu else out)


@register("spconv_u8s8_csr", tier="ref")
def spconv_u8s8_csr(x, packed, bias=None, stride=1, padding=0, dilation=1, pad_value=0):
    """Integer sparse conv: uint8 activations times a CSR-packed int8 weight, int32 accumulators.

    Args:
        x: (N, C, H, W) uint8. packed: SparseWeight of a (OC, C, KH, KW) int8 weight.
        bias: (OC,) int32 or None, added to the accumulators.
        pad_value: the uint8 value padded positions hold; pass the activation zero point so that
            padding means real 0 (the requantization in ref/int8.py then subtracts it as usual).

    Returns:
        (N, OC, OH, OW) int32 raw sums ``sum(w * x) (+ bias)``, bit exact across tiers. No overflow:
        |w * x| <= 128 * 255, so up to 65,000 taps per output fit in int32.
    """
    check_sparse_args(x, packed, bias, np.uint8, np.int8, np.int32, True, "spconv_u8s8_csr")
    out = _dense_conv(x, unpack_sparse(packed), stride, padding, dilation, pad_value, np.int64)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(out.astype(np.int32))


@register("splinear_u8s8_csr", tier="ref")
def splinear_u8s8_csr(x, packed, bias=None):
    """uint8 x (N, IN) times CSR int8 weight (OUT, IN) transposed -> int32 (N, OUT), plus bias."""
    check_sparse_args(x, packed, bias, np.uint8, np.int8, np.int32, False, "splinear_u8s8_csr")
    out = x.astype(np.int64) @ unpack_sparse(packed).T.astype(np.int64)
    if bias is not None:
        out = out + bias
    return np.ascontiguousarray(out.astype(np.int32))


# ------------------------------------------------------- lowering shared by the faster tiers

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


def register_direct_tier(tier, run_conv, run_linear, isa=None):
    """Register a faster tier's four sparse kernels around its direct loop; return them.

    Validation happens here, once, exactly as in the reference kernels above; the tier supplies
    only ``run_conv(x, packed, bias, stride, padding, dilation, relu, pad_value, acc_dtype, pool)`` and
    ``run_linear(x, packed, bias, relu, acc_dtype)``, which receive validated operands. Every tier
    so gets the same names, signatures and defaults (contracts: the reference kernels above).
    ``isa``: the ISA paths the tier has bodies for (see ``registry.register``); the chosen path then
    reaches ``run_conv``/``run_linear`` as the keyword ``isa``.
    """
    def path(chosen):
        return {} if chosen is None else {"isa": chosen}

    @register("spconv_f32_csr", tier=tier, isa=isa)
    def spconv_f32_csr(x, packed, bias=None, stride=1, padding=0, dilation=1, relu=False, pool=1,
                       isa=None):
        """See ref/sparse.py."""
        check_sparse_args(x, packed, bias, np.float32, np.float32, np.float32, True, "spconv_f32_csr")
        check_pool(x.shape, packed, stride, padding, dilation, pool, "spconv_f32_csr")
        return run_conv(x, packed, bias, stride, padding, dilation, relu, 0, np.float32, int(pool),
                        **path(isa))

    @register("splinear_f32_csr", tier=tier, isa=isa)
    def splinear_f32_csr(x, packed, bias=None, relu=False, isa=None):
        """See ref/sparse.py."""
        check_sparse_args(x, packed, bias, np.float32, np.float32, np.float32, False,
                          "splinear_f32_csr")
        return run_linear(x, packed, bias, relu, np.float32, **path(isa))

    @register("spconv_u8s8_csr", tier=tier, isa=isa)
    def spconv_u8s8_csr(x, packed, bias=None, stride=1, padding=0, dilation=1, pad_value=0, isa=None):
        """See ref/sparse.py."""
        check_sparse_args(x, packed, bias, np.uint8, np.int8, np.int32, True, "spconv_u8s8_csr")
        return run_conv(x, packed, bias, stride, padding, dilation, False, pad_value, np.int32, 1,
                        **path(isa))

    @register("splinear_u8s8_csr", tier=tier, isa=isa)
    def splinear_u8s8_csr(x, packed, bias=None, isa=None):
        """See ref/sparse.py."""
        check_sparse_args(x, packed, bias, np.uint8, np.int8, np.int32, False, "splinear_u8s8_csr")
        return run_linear(x, packed, bias, False, np.int32, **path(isa))

    return spconv_f32_csr, splinear_f32_csr, spconv_u8s8_csr, splinear_u8s8_csr
