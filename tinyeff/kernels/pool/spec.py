"""Max-pooling contract and reference: float32 forward with argmax and its backward scatter; uint8.

``argmax`` holds, for every output element, the flat index ``h * W + w`` of the winning input inside
its own (n, c) plane, so the backward pass is one scatter-add and needs no second look at ``x``.
Reference version: a loop over the kernel taps, each a strided slice; padding is -inf so a padded
position never wins (PyTorch's rule: padding <= kernel // 2 keeps every window partly inside).

The uint8 pools (``maxpool2d_u8`` on NCHW, ``maxpool2d_u8_nhwc`` on the integer model's NHWC) are
exact on quantized values: max commutes with the monotonic dequantization, so the output keeps the
input's scale and zero point. They take no padding (the integer CNNs pool without it).
Faster tiers: numba.py; c.py over csrc/pool/pool.c (float32) and csrc/im2col/im2col_8.c (uint8).
"""
import numpy as np

from tinyeff.kernels.contract import Tolerance, case, define
from tinyeff.kernels.layout.geometry import check_pool_geometry


def check_maxpool(x, kernel, stride, padding):
    oh, ow = check_pool_geometry(x.shape, kernel, stride, padding, "maxpool2d_f32")
    return {"oh": oh, "ow": ow}


def check_pool_backward(grad_out, argmax, x_shape):
    """Validate max-pool backward operands once; raise ValueError naming the fix."""
    name = "maxpool2d_backward_f32"
    if argmax is None or argmax.shape != grad_out.shape or argmax.dtype != np.int64 or len(x_shape) != 4 \
            or grad_out.shape[:2] != tuple(x_shape[:2]):
        raise ValueError(f"{name}: grad_out {grad_out.shape}, argmax "
                         f"{None if argmax is None else (argmax.shape, str(argmax.dtype))} and x_shape "
                         f"{tuple(x_shape)} do not match; pass the argmax maxpool2d_f32 returned for "
                         "this input (with_argmax=True)")
    hw = int(x_shape[2]) * int(x_shape[3])
    if argmax.size and (argmax.min() < 0 or argmax.max() >= hw):
        raise ValueError(f"{name}: argmax holds indices outside [0, {hw}), the H*W of x_shape "
                         f"{tuple(x_shape)}")


def check_pool_args(x, kernel_size, stride, name):
    """Validate a uint8 max-pool; return (stride, OH, OW)."""
    if x.ndim != 4 or x.dtype != np.uint8:
        raise TypeError(f"{name}: expected a uint8 N x C x H x W input, got {x.dtype} {x.shape}")
    stride = kernel_size if stride is None else stride
    if kernel_size < 1 or stride < 1:
        raise ValueError(f"{name}: need kernel_size >= 1 and stride >= 1, got {kernel_size}, {stride}")
    _, _, h, w = x.shape
    if kernel_size > min(h, w):
        raise ValueError(f"{name}: a {kernel_size}x{kernel_size} window does not fit a {h}x{w} input")
    return stride, (h - kernel_size) // stride + 1, (w - kernel_size) // stride + 1


def check_maxpool_u8(x, kernel_size, stride):
    stride, oh, ow = check_pool_args(x, kernel_size, stride, "maxpool2d_u8")
    return {"stride": stride, "oh": oh, "ow": ow}


def check_maxpool_u8_nhwc(x, kernel_size, stride):
    if x.ndim != 4 or x.dtype != np.uint8:
        raise TypeError(f"maxpool2d_u8_nhwc: expected a uint8 N x H x W x C input, got {x.dtype} {x.shape}")
    stride, oh, ow = check_pool_args(x.transpose(0, 3, 1, 2), kernel_size, stride, "maxpool2d_u8_nhwc")
    return {"stride": stride, "oh": oh, "ow": ow}


# ------------------------------------------------------------------------------------ cases

POOLS = [   # (N, C, H, W, kernel, stride, padding): odd planes, overlap, padding, a 1x1 output
    (1, 1, 2, 2, 2, 2, 0), (2, 3, 7, 9, 2, 2, 0), (1, 2, 8, 8, 3, 2, 1), (2, 1, 5, 17, 3, 1, 1),
    (1, 4, 6, 6, 3, 3, 0), (3, 2, 33, 18, 2, 2, 1),
]


def maxpool_cases(rng):
    for n, c, h, w, k, s, p in POOLS:
        yield case(rng.standard_normal((n, c, h, w)).astype(np.float32), k, s, p)
        yield case(rng.standard_normal((n, c, h, w)).astype(np.float32), k, s, p, with_argmax=False)
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    x[0, 0, :2, :2] = -np.inf                  # an all -inf window: the max is -inf, argmax 0
    x[0, 1, 1, 1] = np.inf
    x[0, 1, 3, 3] = np.nan                     # NaN never wins
    yield case(x, 2, 2, 0)


def maxpool_backward_cases(rng):
    for n, c, h, w, k, s, p in POOLS:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        _, argmax = maxpool2d_f32(x, k, s, p)
        yield case(rng.standard_normal(argmax.shape).astype(np.float32), argmax, (n, c, h, w))


def maxpool_u8_cases(rng, nhwc=False):
    for n, c, h, w, k, s, _ in POOLS:
        shape = (n, h, w, c) if nhwc else (n, c, h, w)
        yield case(rng.integers(0, 256, shape, dtype=np.uint8), k, s)
        yield case(rng.integers(0, 256, shape, dtype=np.uint8), k)        # stride defaults to k
    yield case(np.full((1, 3, 3, 5), 255, np.uint8), 2, 1)
    yield case(np.zeros((2, 5, 4, 4), np.uint8), 2)


# ------------------------------------------------------------------------------------ reference

@define("maxpool2d_f32", check=check_maxpool, cases=maxpool_cases,
        tolerance=Tolerance(why="a max copies one input: values and argmax match exactly"),
        faster_dtypes={"x": np.float32})
def maxpool2d_f32(x, kernel, stride, padding=0, with_argmax=True, *, oh, ow):
    """Max-pool ``x`` (N, C, H, W) with a square window.

    Returns:
        (out, argmax): ``out`` (N, C, OH, OW) in x's dtype; ``argmax`` int64 (N, C, OH, OW), the
        flat index h * W + w of each maximum within its (n, c) plane, or None when ``with_argmax``
        is False (inference: no backward will scatter through it, so tiers may skip the indices).
        Ties go to the first tap in row-major window order; NaN never wins.
    """
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                constant_values=-np.inf) if padding else x
    out = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    argmax = np.zeros((n, c, oh, ow), dtype=np.int64)
    rows = np.arange(oh)[:, None] * stride - padding   # (OH, 1) input row of tap (0, 0)
    cols = np.arange(ow)[None, :] * stride - padding   # (1, OW)
    for i in range(kernel):
        for j in range(kernel):
            tap = xp[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            better = tap > out
            out = np.where(better, tap, out)
            argmax = np.where(better, (rows + i) * w + (cols + j), argmax)
    return out, argmax if with_argmax else None


@define("maxpool2d_backward_f32", check=check_pool_backward, cases=maxpool_backward_cases,
        tolerance=Tolerance(rtol=1e-6, atol=1e-6, why="overlapping windows add in a different order"),
        faster_dtypes={"grad_out": np.float32})
def maxpool2d_backward_f32(grad_out, argmax, x_shape):
    """Scatter ``grad_out`` (N, C, OH, OW) to the argmax positions; return grad_x (N, C, H, W).

    Overlapping windows that share a maximum add their gradients (np.bincount sums duplicates).
    """
    n, c, h, w = x_shape
    plane = np.arange(n * c, dtype=np.int64).reshape(n, c, 1, 1) * (h * w)
    flat = (argmax + plane).ravel()
    grad_x = np.bincount(flat, weights=grad_out.ravel(), minlength=n * c * h * w)
    return grad_x.astype(grad_out.dtype, copy=False).reshape(n, c, h, w)


@define("maxpool2d_u8", check=check_maxpool_u8, cases=maxpool_u8_cases)
def maxpool2d_u8(x, kernel_size=2, stride=None, *, oh, ow):
    """Max-pool uint8 ``x`` (N, C, H, W) -> (N, C, OH, OW), no padding (floor mode, like PyTorch).

    ``stride`` defaults to ``kernel_size``.
    """
    out = np.zeros(x.shape[:2] + (oh, ow), dtype=np.uint8)
    for i in range(kernel_size):
        for j in range(kernel_size):
            np.maximum(out, x[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride], out=out)
    return out


@define("maxpool2d_u8_nhwc", check=check_maxpool_u8_nhwc, cases=lambda rng: maxpool_u8_cases(rng, nhwc=True))
def maxpool2d_u8_nhwc(x, kernel_size=2, stride=None):
    """``maxpool2d_u8`` on (N, H, W, C) -> (N, OH, OW, C); same windows, no padding."""
    out = maxpool2d_u8(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), kernel_size, stride)
    return np.ascontiguousarray(out.transpose(0, 2, 3, 1))
