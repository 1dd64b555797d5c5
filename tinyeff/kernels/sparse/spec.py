"""Sparse convolution and linear contract and reference (CSR weights, float32 and u8 x s8).

The weight format is ``layout.csr.SparseWeight``: a pruned weight viewed as one row per output
channel (or feature) and one column per tap, in compressed sparse rows, packed once per layer by
``pack_sparse``. The reference kernels are the contract and are deliberately dense: unpack, then
im2col + GEMM in NumPy. Faster tiers (numba.py, c.py over csrc/sparse/spconv.c) compute the same thing as
a *direct* sparse convolution that skips im2col: for each output channel they loop over its nonzero
taps and add ``value * (shifted input plane)`` into the output plane, so the work is proportional
to nnz. ``layout/direct.py`` holds the lowering that makes that loop one flat axpy, whatever the
stride; ``implement_direct_tier`` registers a tier's four kernels around its two loops.

``spconv_u8s8_requant_nhwc`` is the integer layer the dense int8 model runs, for a pruned weight:
uint8 NHWC in, bias + requantization + ReLU (+ 2x2 max-pool) fused, uint8 NHWC out, so it drops into
the NHWC pipeline of ``tinyeff/quant`` where ``conv2d_u8s8_requant_nhwc`` would run (the C loop:
csrc/sparse/spconv_nhwc.c). ``spconv_u8s8_csr`` keeps the raw int32 sums and strided convolutions.

What this file leaves out: blocked or bitmap formats (CSR with the direct loop already runs at
memory speed on unstructured sparsity; see bench/bench_sparse.py).
"""
import numpy as np

from tinyeff.kernels.contract import Tolerance, case, define, implements
from tinyeff.kernels.im2col.spec import im2col_f32
from tinyeff.kernels.int8_eltwise.spec import random_requant, requant_args, requantize_s32
from tinyeff.kernels.layout.csr import SparseWeight, pack_sparse, unpack_sparse
from tinyeff.kernels.layout.geometry import check_conv_geometry
from tinyeff.kernels.layout.packed_s8 import K_MAX


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
    if data_dtype == np.int8 and taps > K_MAX:
        raise ValueError(f"{name}: {taps} taps per output exceed 65536, the most whose int32 sums "
                         "cannot overflow (see layout/packed_s8.py); split the input channels")
    if bias is not None and (bias.dtype != bias_dtype or bias.shape != (packed.shape[0],)):
        raise ValueError(f"{name}: bias must be {np.dtype(bias_dtype)} of shape "
                         f"({packed.shape[0]},), got {bias.dtype} {bias.shape}")


# ------------------------------------------------------------------------- shared by the refs

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


def check_spconv_f32(x, packed, bias, stride, padding, dilation, pool):
    check_sparse_args(x, packed, bias, np.float32, np.float32, np.float32, True, "spconv_f32_csr")
    check_pool(x.shape, packed, stride, padding, dilation, pool, "spconv_f32_csr")
    return {"pool": int(pool)}


def check_splinear_f32(x, packed, bias):
    check_sparse_args(x, packed, bias, np.float32, np.float32, np.float32, False, "splinear_f32_csr")


def check_spconv_u8s8(x, packed, bias, stride, padding, dilation, pad_value):
    check_sparse_args(x, packed, bias, np.uint8, np.int8, np.int32, True, "spconv_u8s8_csr")
    check_conv_geometry(x.shape, packed.shape[2], packed.shape[3], stride, padding, dilation, "spconv_u8s8_csr")
    if not 0 <= int(pad_value) <= 255:
        raise ValueError(f"spconv_u8s8_csr: pad_value={pad_value} (the input zero point) is outside uint8's range")


def check_spconv_requant_nhwc(x, packed, padding, a_zero_point, bias, multiplier, shift, zero_point_out, pool,
                              qmin, qmax, relu):
    name = "spconv_u8s8_requant_nhwc"
    if x.ndim != 4:
        raise ValueError(f"{name}: input must be N x H x W x C, got shape {x.shape}")
    n, h, w, c = x.shape
    if not isinstance(packed, SparseWeight) or len(packed.shape) != 4 or packed.data.dtype != np.int8:
        raise TypeError(f"{name}: weight must be pack_sparse of an int8 (OC, C, KH, KW) weight")
    if x.dtype != np.uint8 or packed.shape[1] != c:
        raise ValueError(f"{name}: need a uint8 (N, H, W, C) input whose C matches the weight's, got "
                         f"{x.dtype} {x.shape} and weight {packed.shape}")
    if c * packed.shape[2] * packed.shape[3] > K_MAX:
        raise ValueError(f"{name}: more than {K_MAX} taps per output could overflow int32; split the input channels")
    if not 0 <= int(a_zero_point) <= 255:
        raise ValueError(f"{name}: a_zero_point={a_zero_point} is outside uint8's range")
    _, _, kh, kw = packed.shape
    oh, ow = check_conv_geometry((n, c, h, w), kh, kw, 1, padding, 1, name)
    if pool not in (1, 2) or pool > min(oh, ow):
        raise ValueError(f"{name}: pool={pool!r} must be 1 or 2 (a 2x2 / stride-2 max-pool) and fit the "
                         f"{oh}x{ow} output")
    args = requant_args(packed.shape[0], bias, multiplier, shift, zero_point_out, qmin, qmax, np.uint8, relu, name)
    del args["out_dtype"]
    return {**args, "pool": int(pool), "oh": oh, "ow": ow}


def check_splinear_u8s8(x, packed, bias):
    check_sparse_args(x, packed, bias, np.uint8, np.int8, np.int32, False, "splinear_u8s8_csr")


# ------------------------------------------------------------------------------------ cases

SPARSITIES = (0.0, 0.5, 0.9, 0.99, 1.0)
# (N, C, H, W, OC, K, stride, padding, dilation, pool)
CONVS = [(1, 1, 5, 5, 1, 3, 1, 0, 1, 1), (2, 3, 9, 7, 5, 3, 1, 1, 1, 1), (1, 4, 13, 11, 6, 3, 2, 1, 1, 1),
         (2, 2, 12, 12, 3, 3, 1, 2, 2, 2), (1, 3, 10, 17, 17, 1, 1, 0, 1, 3)]
LINEARS = [(1, 1, 1), (3, 17, 5), (16, 64, 10), (5, 33, 31)]      # (N, IN, OUT)


def _prune(rng, w, sparsity):
    w.reshape(-1)[rng.permutation(w.size)[:int(round(sparsity * w.size))]] = 0
    return w


def spconv_f32_cases(rng):
    for i, (n, c, h, w, oc, k, s, p, d, pool) in enumerate(CONVS):
        for sparsity in SPARSITIES:
            wt = _prune(rng, rng.standard_normal((oc, c, k, k)).astype(np.float32), sparsity)
            bias = rng.standard_normal(oc).astype(np.float32) if i % 2 else None
            yield case(rng.standard_normal((n, c, h, w)).astype(np.float32), pack_sparse(wt), bias, s, p, d,
                       relu=bool(i % 2), pool=pool)


def splinear_f32_cases(rng):
    for i, (n, fin, fout) in enumerate(LINEARS):
        for sparsity in SPARSITIES:
            wt = _prune(rng, rng.standard_normal((fout, fin)).astype(np.float32), sparsity)
            bias = rng.standard_normal(fout).astype(np.float32) if i % 2 else None
            yield case(rng.standard_normal((n, fin)).astype(np.float32), pack_sparse(wt), bias, relu=bool(i % 2))


def spconv_u8s8_cases(rng):
    for i, (n, c, h, w, oc, k, s, p, d, _) in enumerate(CONVS):
        for sparsity in SPARSITIES:
            wt = _prune(rng, rng.integers(-128, 128, (oc, c, k, k), dtype=np.int8), sparsity)
            bias = rng.integers(-2**20, 2**20, oc, dtype=np.int32) if i % 2 else None
            yield case(rng.integers(0, 256, (n, c, h, w), dtype=np.uint8), pack_sparse(wt), bias, s, p, d,
                       pad_value=int(rng.integers(0, 256)))
    extreme = np.full((4, 3, 3, 3), -128, np.int8)                 # |sum| at its largest
    yield case(np.full((1, 3, 6, 6), 255, np.uint8), pack_sparse(extreme), None, 1, 1, 1, pad_value=255)


NHWC_BLOCK = 16    # images the C tier interleaves per block (SPN_NB in csrc/sparse/spconv_nhwc.c)

# (N, H, W, C, OC, K, padding, pool): batches around the 16-image block, one-pixel rows (OW = 1),
# odd planes, floor-mode pools that drop a row and a column, one input channel
REQUANT_CONVS = [(1, 5, 5, 1, 1, 3, 0, 1), (17, 9, 7, 3, 5, 3, 1, 2), (16, 3, 3, 4, 6, 3, 0, 1),
                 (33, 13, 13, 8, 17, 3, 0, 2), (2, 6, 5, 17, 16, 3, 2, 1), (5, 7, 8, 2, 3, 1, 0, 2)]


def spconv_requant_nhwc_cases(rng):
    for i, (n, h, w, c, oc, k, p, pool) in enumerate(REQUANT_CONVS):
        for sparsity in (0.0, 0.5, 0.9, 1.0):
            wt = _prune(rng, rng.integers(-128, 128, (oc, c, k, k), dtype=np.int8), sparsity)
            # small multipliers: every channel takes the vector requantization; wide ones (shift > 0 too)
            # and large biases: the exact int64 fallback
            low, high, span = (1e-5, 1e-2, 2**16) if (i + int(10 * sparsity)) % 2 == 0 else (1e-4, 4.0, 2**31 - 1)
            bias = rng.integers(-span, span, oc, dtype=np.int32) if i % 3 else None
            yield case(rng.integers(0, 256, (n, h, w, c), dtype=np.uint8), pack_sparse(wt), p,
                       int(rng.integers(0, 256)), bias, *random_requant(rng, oc, low, high), int(rng.integers(0, 256)),
                       pool=pool, relu=bool(i % 2))
    extreme = np.full((4, 3, 3, 3), -128, np.int8)                 # |sum| at its largest, both signs
    for x_value, z in ((255, 0), (0, 255), (127, 127)):           # 127: AVX2's vpmaddubsw quads at their limit
        yield case(np.full((17, 6, 6, 3), x_value, np.uint8), pack_sparse(extreme), 1, z, None,
                   *random_requant(rng, 4, 1e-6, 1e-4), 128, pool=2)
    wt = _prune(rng, rng.integers(-128, 128, (9, 5, 3, 3), dtype=np.int8), 0.7)   # 7-bit activations
    yield case(rng.integers(0, 128, (20, 8, 7, 5), dtype=np.uint8), pack_sparse(wt), 1, 3, None,
               *random_requant(rng, 9, 1e-5, 1e-3), 7, pool=2, relu=True)


def splinear_u8s8_cases(rng):
    for i, (n, fin, fout) in enumerate(LINEARS):
        for sparsity in SPARSITIES:
            wt = _prune(rng, rng.integers(-128, 128, (fout, fin), dtype=np.int8), sparsity)
            bias = rng.integers(-2**20, 2**20, fout, dtype=np.int32) if i % 2 else None
            yield case(rng.integers(0, 256, (n, fin), dtype=np.uint8), pack_sparse(wt), bias)
    yield case(np.full((2, 300), 255, np.uint8), pack_sparse(np.full((3, 300), -128, np.int8)))


F32_SUMS = Tolerance(rtol=1e-4, atol=1e-4, why="float32 sums over the nonzeros in a different order than BLAS")


# ----------------------------------------------------------------------------- reference kernels

@define("spconv_f32_csr", check=check_spconv_f32, cases=spconv_f32_cases, tolerance=F32_SUMS)
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
    out = _dense_conv(x, unpack_sparse(packed), stride, padding, dilation, 0, np.float32)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(max_pool_blocks(np.maximum(out, 0) if relu else out, pool))


@define("splinear_f32_csr", check=check_splinear_f32, cases=splinear_f32_cases, tolerance=F32_SUMS)
def splinear_f32_csr(x, packed, bias=None, relu=False):
    """``x @ w.T + bias`` for x (N, IN) float32 and a CSR-packed (OUT, IN) float32 weight.

    Returns:
        (N, OUT) float32, C-contiguous; ReLU applied after the bias when ``relu``.
    """
    out = x @ unpack_sparse(packed).T
    if bias is not None:
        out = out + bias
    return np.ascontiguousarray(np.maximum(out, 0) if relu else out)


@define("spconv_u8s8_csr", check=check_spconv_u8s8, cases=spconv_u8s8_cases)
def spconv_u8s8_csr(x, packed, bias=None, stride=1, padding=0, dilation=1, pad_value=0):
    """Integer sparse conv: uint8 activations times a CSR-packed int8 weight, int32 accumulators.

    Args:
        x: (N, C, H, W) uint8. packed: SparseWeight of a (OC, C, KH, KW) int8 weight.
        bias: (OC,) int32 or None, added to the accumulators.
        pad_value: the uint8 value padded positions hold; pass the activation zero point so that
            padding means real 0 (the requantization then subtracts it as usual).

    Returns:
        (N, OC, OH, OW) int32 raw sums ``sum(w * x) (+ bias)``, bit exact across tiers. No overflow:
        |w * x| <= 128 * 255, so up to 65,000 taps per output fit in int32.
    """
    out = _dense_conv(x, unpack_sparse(packed), stride, padding, dilation, pad_value, np.int64)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(out.astype(np.int32))


@define("spconv_u8s8_requant_nhwc", check=check_spconv_requant_nhwc, cases=spconv_requant_nhwc_cases)
def spconv_u8s8_requant_nhwc(x, packed, padding, a_zero_point, bias, multiplier, shift, zero_point_out, pool=1,
                             qmin=None, qmax=None, relu=False, *, oh, ow):
    """Sparse integer conv on NHWC, requantized to uint8: the pruned twin of ``conv2d_u8s8_requant_nhwc``.

    Per output: ``acc = sum w * (x - a_zero_point)`` over the window (padding holds ``a_zero_point``,
    i.e. real 0), exact; with ``pool=2`` the max of each 2x2 / stride-2 window of ``acc`` (floor mode);
    then ``requantize_s32(acc, bias, multiplier, shift, zero_point_out, qmin, qmax, relu)``. Equal,
    bit for bit, to the dense layer run on the unpacked weight.

    Args:
        x: uint8 (N, H, W, C). packed: SparseWeight of a (OC, C, KH, KW) int8 weight.
        padding: zero padding (stride and dilation are 1). a_zero_point: the input zero point.
        bias, multiplier, shift, zero_point_out, qmin, qmax, relu: as in ``requantize_s32``.
        pool: 1, or 2 for a following 2x2 / stride-2 max-pool.
    Returns:
        uint8 (N, OH // pool, OW // pool, OC), C-contiguous.
    """
    w = unpack_sparse(packed)
    oc = w.shape[0]
    acc = _dense_conv(x.transpose(0, 3, 1, 2), w, 1, padding, 1, a_zero_point, np.int64)      # (N, OC, OH, OW)
    acc = acc - int(a_zero_point) * w.reshape(oc, -1).astype(np.int64).sum(axis=1).reshape(1, -1, 1, 1)
    acc = max_pool_blocks(acc, pool).transpose(0, 2, 3, 1)                                      # (N, PH, PW, OC)
    out = requantize_s32(np.ascontiguousarray(acc.reshape(-1, oc).astype(np.int32)), bias, multiplier, shift,
                         zero_point_out, qmin, qmax, relu)
    return out.reshape(acc.shape)


@define("splinear_u8s8_csr", check=check_splinear_u8s8, cases=splinear_u8s8_cases)
def splinear_u8s8_csr(x, packed, bias=None):
    """uint8 x (N, IN) times CSR int8 weight (OUT, IN) transposed -> int32 (N, OUT), plus bias."""
    out = x.astype(np.int64) @ unpack_sparse(packed).T.astype(np.int64)
    if bias is not None:
        out = out + bias
    return np.ascontiguousarray(out.astype(np.int32))



def implement_direct_tier(tier, run_conv, run_linear, isa=None):
    """Register a faster tier's four sparse kernels around its direct loop; return them.

    The tier supplies only ``run_conv(x, packed, bias, stride, padding, dilation, relu, pad_value,
    acc_dtype, pool)`` and ``run_linear(x, packed, bias, relu, acc_dtype)``, which receive operands
    the checks above validated; every tier so gets the same names, signatures and defaults.
    ``isa``: the ISA paths the tier has bodies for (see ``registry.register``); the chosen path then
    reaches ``run_conv``/``run_linear`` as the keyword ``isa``.
    """
    def path(chosen):
        return {} if chosen is None else {"isa": chosen}

    @implements("spconv_f32_csr", tier, isa=isa)
    def spconv_f32_csr(x, packed, bias, stride, padding, dilation, relu, pool, isa=None):
        return run_conv(x, packed, bias, stride, padding, dilation, relu, 0, np.float32, pool, **path(isa))

    @implements("splinear_f32_csr", tier, isa=isa)
    def splinear_f32_csr(x, packed, bias, relu, isa=None):
        return run_linear(x, packed, bias, relu, np.float32, **path(isa))

    @implements("spconv_u8s8_csr", tier, isa=isa)
    def spconv_u8s8_csr(x, packed, bias, stride, padding, dilation, pad_value, isa=None):
        return run_conv(x, packed, bias, stride, padding, dilation, False, pad_value, np.int32, 1, **path(isa))

    @implements("splinear_u8s8_csr", tier, isa=isa)
    def splinear_u8s8_csr(x, packed, bias, isa=None):
        return run_linear(x, packed, bias, False, np.int32, **path(isa))

    return spconv_f32_csr, splinear_f32_csr, spconv_u8s8_csr, splinear_u8s8_csr
