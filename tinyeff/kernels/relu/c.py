"""C tier of ReLU: marshalling over csrc/relu/relu.c (arguments checked by spec.py); the C side has a
vector body per ISA path (csrc/relu/activation_vec.h: AVX-512, AVX2, NEON) besides the portable loop."""
import numpy as np

from tinyeff.kernels import buffers
from tinyeff.kernels.c import check, isa_code, lib, ptr
from tinyeff.kernels.contract import implements


ISAS = ("portable", "avx2", "avx512", "neon")


@implements("relu_f32", "c", isa=ISAS)
def relu_f32(x, isa=None):
    x = np.ascontiguousarray(x)
    y = buffers.empty_like(x)
    check(lib().tinyeff_relu_f32(ptr("float", x), x.size, isa_code("relu_f32", isa), ptr("float", y)), "relu_f32")
    return y


@implements("relu_backward_f32", "c", isa=ISAS)
def relu_backward_f32(g, out, isa=None):
    g, out = np.ascontiguousarray(g), np.ascontiguousarray(out)
    gx = buffers.empty_like(g)
    check(lib().tinyeff_relu_backward_f32(ptr("float", g), ptr("float", out), g.size,
                                          isa_code("relu_backward_f32", isa), ptr("float", gx)),
          "relu_backward_f32")
    return gx
