"""C tier of ReLU: marshalling over csrc/activation.c (arguments checked by spec.py)."""
import numpy as np

from tinyeff.kernels.c import check, lib, ptr
from tinyeff.kernels.contract import implements


@implements("relu_f32", "c")
def relu_f32(x):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    check(lib().tinyeff_relu_f32(ptr("float", x), x.size, ptr("float", y)), "relu_f32")
    return y


@implements("relu_backward_f32", "c")
def relu_backward_f32(g, out):
    g, out = np.ascontiguousarray(g), np.ascontiguousarray(out)
    gx = np.empty_like(g)
    check(lib().tinyeff_relu_backward_f32(ptr("float", g), ptr("float", out), g.size, ptr("float", gx)),
          "relu_backward_f32")
    return gx
