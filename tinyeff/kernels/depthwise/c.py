"""C tier of the depthwise kernels: marshalling over csrc/depthwise/depthwise.c (arguments checked by spec.py)."""
import numpy as np

from tinyeff.kernels.c import check, lib, ptr
from tinyeff.kernels.contract import implements


def _geometry(x_shape, w_shape, stride, padding, dilation, oh, ow):
    n, c, h, wd = x_shape
    oc, _, kh, kw = w_shape
    return (n, c, h, wd, oc, kh, kw, int(stride), int(padding), int(dilation), oh, ow)


@implements("dwconv2d_f32", "c")
def dwconv2d_f32(x, w, stride, padding, dilation, oh, ow):
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    out = np.empty((x.shape[0], w.shape[0], oh, ow), np.float32)
    check(lib().tinyeff_dwconv_f32(ptr("float", x), ptr("float", w),
                                   *_geometry(x.shape, w.shape, stride, padding, dilation, oh, ow),
                                   ptr("float", out)), "dwconv_f32")
    return out


@implements("dwconv2d_xgrad_f32", "c")
def dwconv2d_xgrad_f32(g, w, x_shape, stride, padding, dilation, oh, ow):
    g, w = np.ascontiguousarray(g), np.ascontiguousarray(w)
    gx = np.empty(x_shape, np.float32)
    check(lib().tinyeff_dwconv_xgrad_f32(ptr("float", g), ptr("float", w),
                                         *_geometry(x_shape, w.shape, stride, padding, dilation, oh, ow),
                                         ptr("float", gx)), "dwconv_xgrad_f32")
    return gx


@implements("dwconv2d_wgrad_f32", "c")
def dwconv2d_wgrad_f32(x, g, kh, kw, stride, padding, dilation, oh, ow):
    x, g = np.ascontiguousarray(x), np.ascontiguousarray(g)
    gw = np.empty((g.shape[1], 1, kh, kw), np.float32)
    check(lib().tinyeff_dwconv_wgrad_f32(ptr("float", x), ptr("float", g),
                                         *_geometry(x.shape, gw.shape, stride, padding, dilation, oh, ow),
                                         ptr("float", gw)), "dwconv_wgrad_f32")
    return gw
