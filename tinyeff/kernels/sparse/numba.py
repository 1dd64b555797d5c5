"""Numba tier of the sparse conv and linear: the direct sparse loop over CSR rows (see spec.py).

One jitted loop serves all four kernels. For every (image, row) pair, where a row is an output
channel (conv) or an output feature (linear), it sums ``value * src[offset + p]`` over the row's
nonzeros into a contiguous accumulator of length L, then writes the accumulator (plus bias, maybe
ReLU) to the output through general strides. For a conv, ``src`` is the flat-shift layout from
``direct_conv_layout`` and p runs over output pixels; for a linear layer ``src`` is x transposed,
(IN, N), and p runs over the batch. Work is proportional to nnz, never to the dense weight size.
"""
import numpy as np
from numba import njit, prange

from tinyeff.kernels.layout.direct import direct_conv_plan
from tinyeff.kernels.sparse.spec import implement_direct_tier


@njit(cache=True, parallel=True)
def _sprows_loops(indptr, offsets, data, src, img_stride, nimg, length, ws, ow_valid, bias, relu,
                  out, os_img, os_row, os_h, os_w, pool=1):
    """out[img*os_img + row*os_row + oh*os_h + ow*os_w] = bias[row] + sum_j data[j] *
    src[img*img_stride + offsets[j] + oh*ws + ow], for ow < ow_valid (``out`` and ``src`` flat);
    with ``pool`` > 1, the max of each pool x pool block of that, at pooled (oh, ow)."""
    rows = indptr.size - 1
    for t in prange(nimg * rows):              # independent (image, row) pairs
        img, row = t // rows, t % rows
        acc = np.zeros(length, dtype=out.dtype)
        base = img * img_stride
        for j in range(indptr[row], indptr[row + 1]):
            v = data[j]
            run = src[base + offsets[j]:base + offsets[j] + length]   # a view, not a copy
            for p in range(length):            # contiguous axpy: the loop LLVM vectorizes
                acc[p] += v * run[p]           # (indexing by p alone lets it prove p >= 0)
        b = bias[row]
        obase = img * os_img + row * os_row
        for oh in range(((length + ws - 1) // ws) // pool):
            for ow in range(ow_valid // pool):  # columns ow >= ow_valid were padding: drop them
                y = acc[oh * pool * ws + ow * pool]
                for a in range(pool):           # max first: bias and ReLU are monotonic
                    for c in range(pool):
                        y = max(y, acc[(oh * pool + a) * ws + ow * pool + c])
                y += b
                if relu and y < 0:
                    y = 0
                out[obase + oh * os_h + ow * os_w] = y


def _run_conv(x, packed, bias, stride, padding, dilation, relu, pad_value, acc_dtype, pool):
    """Lower to the flat-shift layout and run the loop; returns (N, OC, OH, OW) ``acc_dtype``
    (pooled sizes when ``pool`` > 1)."""
    src, img_stride, ws, length, ow, offsets, out = direct_conv_plan(x, packed, stride, padding,
                                                                     dilation, pad_value, acc_dtype, pool)
    n, oc, ph, pw = out.shape
    b = np.zeros(oc, dtype=acc_dtype) if bias is None else bias
    _sprows_loops(packed.indptr, offsets, packed.data.astype(acc_dtype), src.reshape(-1),
                  img_stride, n, length, ws, ow, b, relu, out.reshape(-1),
                  oc * ph * pw, ph * pw, pw, 1, pool)
    return out


def _run_linear(x, packed, bias, relu, acc_dtype):
    """Run the loop with src = x.T (IN, N): row o accumulates over the batch, p = image."""
    out_features = packed.shape[0]
    n = x.shape[0]
    xt = np.ascontiguousarray(x.T)                                  # (IN, N)
    out = np.empty((n, out_features), dtype=acc_dtype)
    b = np.zeros(out_features, dtype=acc_dtype) if bias is None else bias
    _sprows_loops(packed.indptr, packed.indices * n, packed.data.astype(acc_dtype), xt.reshape(-1),
                  0, 1, n, n, n, b, relu, out.reshape(-1), 0, 1, 0, out_features)
    return out


# Validation and the four registered signatures live in spec.py (one copy for every tier).
spconv_f32_csr, splinear_f32_csr, spconv_u8s8_csr, splinear_u8s8_csr = implement_direct_tier(
    "numba", _run_conv, _run_linear)
