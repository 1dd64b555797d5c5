"""The input gradient of a strided convolution as stride x stride dense stride-1 convolutions.

The one idea: with stride s, input row i (padded coordinate u = i + padding) is touched only by
kernel rows kh with kh = u (mod s), reading output rows (u - kh) / s. So the rows of one phase
a = u mod s see a sub-kernel of the taps kh = a, a + s, a + 2s, ... and, flipped, it is a plain
stride-1 correlation of the output gradient. The same holds for columns, so the s*s phases of
``grad_x`` are s*s small convolutions of ``g`` that together do exactly the forward pass's
multiply-adds: no zeros inserted into ``g`` (which would do s*s times the work) and no col2im.

    gx[:, :, i0::s, j0::s] = conv2d_f32(g cropped / zero-padded, w_phase, stride=1, padding=0)

with w_phase (C, OC, Qa, Qb) the flipped taps of phase (a, b). Dilation 1 only; rows or columns
no tap reaches (a kernel smaller than the stride) get zero gradient.
"""
import numpy as np


def _phase(a, k, s, p, size, out_size):
    """Rows of phase ``a`` along one axis: (first input index, count, tap indices (flipped order),
    crop/pad of g as (before, after)), or None when the phase has no input row or no tap."""
    taps = list(range(a, k, s))
    first_m = -(-(p - a) // s)                        # smallest m with i = s*m + a - p >= 0
    last_m = (size - 1 + p - a) // s
    count = last_m - first_m + 1
    if not taps or count <= 0:
        return None
    q = len(taps)
    before = q - 1 - first_m                          # g rows needed: first_m - q + 1 .. last_m
    after = last_m - (out_size - 1)
    return s * first_m + a - p, count, taps[::-1], (before, after)


def _crop_pad(g, axis, before, after):
    """``g`` along ``axis`` with ``before`` / ``after`` rows added (zeros) or removed (negative)."""
    n = g.shape[axis]
    lo, hi = max(-before, 0), n - max(-after, 0)
    g = g.take(np.arange(lo, hi), axis=axis) if (lo, hi) != (0, n) else g
    widths = [(0, 0)] * g.ndim
    widths[axis] = (max(before, 0), max(after, 0))
    return np.pad(g, widths) if max(before, 0) or max(after, 0) else g


def strided_input_grad(g, w, x_shape, stride, padding, conv):
    """grad_x (N, C, H, W) of a dilation-1 convolution from ``g`` (N, OC, OH, OW), as s*s stride-1
    convolutions run by ``conv`` (``conv2d_f32``'s signature: x, w, bias, stride, padding)."""
    n, c, h, wd = x_shape
    _, _, kh, kw = w.shape
    oh, ow = g.shape[2:]
    gx = np.zeros(x_shape, dtype=g.dtype)
    for a in range(stride):
        rows = _phase(a, kh, stride, padding, h, oh)
        if rows is None:
            continue
        gr = _crop_pad(g, 2, *rows[3])
        for b in range(stride):
            cols = _phase(b, kw, stride, padding, wd, ow)
            if cols is None:
                continue
            gp = np.ascontiguousarray(_crop_pad(gr, 3, *cols[3]))
            wp = np.ascontiguousarray(w[:, :, rows[2]][:, :, :, cols[2]].transpose(1, 0, 2, 3))
            part = conv(gp, wp, None, 1, 0)
            gx[:, :, rows[0]:rows[0] + stride * rows[1]:stride,
               cols[0]:cols[0] + stride * cols[1]:stride] = part
    return gx
