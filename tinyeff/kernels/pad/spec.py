"""pad2d contract and reference: zero-pad the last two axes of an (N, C, H, W) array.

The direct convolution's layout (``layout/direct.py``) pads every input this way, forward and
backward, so on ResNets it is one of the biggest memory passes of a training step; the C tier
(c.py, csrc/pool/pool.c) writes each output row once instead of zero-filling then copying.
"""
import numpy as np

from tinyeff.kernels.contract import case, define, Tolerance
from tinyeff.kernels.layout.geometry import check_pad2d


def pad2d_cases(rng):
    for shape, p in [((1, 1, 1, 1), 0), ((1, 1, 1, 1), 3), ((2, 3, 5, 7), 1), ((1, 2, 17, 16), 2),
                     ((3, 1, 4, 33), 5)]:
        yield case(rng.standard_normal(shape).astype(np.float32), p)
    yield case(np.full((1, 2, 3, 3), -np.inf, np.float32), 1)      # extremes pass through unchanged


@define("pad2d_f32", check=lambda x, padding: check_pad2d(x, padding, "pad2d_f32"), cases=pad2d_cases,
        tolerance=Tolerance(why="pure data movement: every tier copies the same values"),
        faster_dtypes={"x": np.float32})
def pad2d_f32(x, padding):
    """Zero-pad the last two axes of (N, C, H, W) ``x`` by ``padding`` on each side (a new array)."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + 2 * padding, w + 2 * padding), x.dtype)
    out[:, :, padding:padding + h, padding:padding + w] = x
    return out
