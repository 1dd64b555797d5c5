"""The input gradient of a strided convolution as stride x stride dense stride-1 convolutions.

The one idea: with stride s, input row i (padded coordinate u = i + padding) is touched only by
kernel rows kh with kh = u (mod s), reading output rows (u - kh) / s. So the rows of one phase
a = u mod s see a sub-kernel of the taps kh = a, a + s, a + 2s, ... and, flipped, it is a plain
stride-1 correlation of the output gradient. The same holds for columns, so the s*s phases of
``grad_x`` are s*s small convolutions of ``g`` that together do exactly the forward pass's
multiply-adds: no zeros inserted into ``g`` (which would do s*s times the work) and no col2im.

    gx[:, :, i0::s, j0::s] = conv2d(g cropped / zero-padded, w_phase, stride=1, padding=0)

with w_phase (C, OC, Qa, Qb) the flipped taps of phase (a, b). At stride 1 there is one phase:
the "full" correlation with the flipped kernel. Dilation 1 only; rows or columns no tap reaches
(a kernel smaller than the stride) get zero gradient. ``phase_windows`` says where each phase's
window of ``g`` lies; the C tier (c.py ``input_grad``) pads ``g`` once by the largest margin and
reads every window in place.
"""
from collections import namedtuple

# One phase along one axis: grad_x rows first, first + s, ... (count of them), the kernel's taps in
# flipped order, and the rows of g the window adds (> 0, zeros) or drops (< 0) as (before, after).
Window = namedtuple("Window", "first count taps crop")


def _phase(a, k, s, p, size, out_size):
    """Phase ``a`` along one axis as a Window, or None when it has no input row or no tap."""
    taps = list(range(a, k, s))
    first_m = -(-(p - a) // s)                        # smallest m with i = s*m + a - p >= 0
    last_m = (size - 1 + p - a) // s
    count = last_m - first_m + 1
    if not taps or count <= 0:
        return None
    q = len(taps)
    before = q - 1 - first_m                          # g rows needed: first_m - q + 1 .. last_m
    after = last_m - (out_size - 1)
    return Window(s * first_m + a - p, count, taps[::-1], (before, after))


def phase_windows(kernel_hw, stride, padding, in_hw, out_hw):
    """Every phase (a, b) some tap reaches, as a (rows, cols) pair of Windows.

    Args:
        kernel_hw: (KH, KW); in_hw: the input's (H, W); out_hw: the output's (OH, OW).
        stride, padding: the forward convolution's (dilation 1).
    """
    rows = [_phase(a, kernel_hw[0], stride, padding, in_hw[0], out_hw[0]) for a in range(stride)]
    cols = [_phase(b, kernel_hw[1], stride, padding, in_hw[1], out_hw[1]) for b in range(stride)]
    return [(r, c) for r in rows if r is not None for c in cols if c is not None]
