"""C tier of pad2d: marshalling over csrc/im2col.c's ``tinyeff_pad2d_f32``."""
import numpy as np

from tinyeff.kernels.c import check, lib, ptr
from tinyeff.kernels.contract import implements


@implements("pad2d_f32", "c")
def pad2d_f32(x, padding):
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    out = np.empty((n, c, h + 2 * padding, w + 2 * padding), dtype=np.float32)
    check(lib().tinyeff_pad2d_f32(ptr("float", x), n * c, h, w, padding, ptr("float", out)), "pad2d_f32")
    return out
