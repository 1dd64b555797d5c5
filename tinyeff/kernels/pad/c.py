"""C tier of pad2d: marshalling over csrc/pool/pool.c's ``tinyeff_pad2d_f32`` (a vector body per ISA path,
csrc/pool/pool_vec.h's pad_plane, besides the portable memset/memcpy rows)."""
import numpy as np

from tinyeff.kernels import buffers
from tinyeff.kernels.c import check, isa_code, lib, ptr
from tinyeff.kernels.contract import implements


ISAS = ("portable", "avx2", "avx512", "neon")


@implements("pad2d_f32", "c", isa=ISAS)
def pad2d_f32(x, padding, isa=None):
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    out = buffers.empty((n, c, h + 2 * padding, w + 2 * padding), np.float32)
    check(lib().tinyeff_pad2d_f32(ptr("float", x), n * c, h, w, padding, isa_code("pad2d_f32", isa),
                                  ptr("float", out)), "pad2d_f32")
    return out
