"""C tier of the depthwise kernels: marshalling over csrc/depthwise.c (see spec.py for the contract)."""
import numpy as np

from tinyeff.kernels.c import check, lib, ptr
from tinyeff.kernels.dense_checks import check_f32
from tinyeff.kernels.depthwise.spec import check_depthwise_args
from tinyeff.kernels.registry import register


def _geometry(x_shape, w, stride, padding, dilation, oh, ow):
    n, c, h, wd = x_shape
    oc, _, kh, kw = w.shape
    return (n, c, h, wd, oc, kh, kw, int(stride), int(padding), int(dilation), oh, ow)


@register("dwconv2d_f32", tier="c")
def dwconv2d_f32(x, w, stride=1, padding=0, dilation=1):
    """See spec.py (float32 only)."""
    oh, ow = check_depthwise_args(x, w, stride, padding, dilation, "dwconv2d_f32")
    check_f32("dwconv2d_f32", x=x, w=w)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    out = np.empty((x.shape[0], w.shape[0], oh, ow), np.float32)
    check(lib().tinyeff_dwconv_f32(ptr("float", x), ptr("float", w),
                                   *_geometry(x.shape, w, stride, padding, dilation, oh, ow),
                                   ptr("float", out)), "dwconv_f32")
    return out


@register("dwconv2d_xgrad_f32", tier="c")
def dwconv2d_xgrad_f32(g, w, x_shape, stride=1, padding=0, dilation=1):
    """See spec.py (float32 only)."""
    n, c, h, wd = (int(v) for v in x_shape)
    oh, ow = check_depthwise_args(np.empty((0, c, h, wd), np.float32), w, stride, padding, dilation,
                                  "dwconv2d_xgrad_f32")
    check_f32("dwconv2d_xgrad_f32", g=g, w=w)
    if g.shape != (n, w.shape[0], oh, ow):
        raise ValueError(f"dwconv2d_xgrad_f32: grad_out has shape {g.shape}, expected {(n, w.shape[0], oh, ow)}")
    g, w = np.ascontiguousarray(g), np.ascontiguousarray(w)
    gx = np.empty((n, c, h, wd), np.float32)
    check(lib().tinyeff_dwconv_xgrad_f32(ptr("float", g), ptr("float", w),
                                         *_geometry((n, c, h, wd), w, stride, padding, dilation, oh, ow),
                                         ptr("float", gx)), "dwconv_xgrad_f32")
    return gx


@register("dwconv2d_wgrad_f32", tier="c")
def dwconv2d_wgrad_f32(x, g, kh, kw, stride=1, padding=0, dilation=1):
    """See spec.py (float32 only)."""
    oc = g.shape[1]
    w_like = np.empty((oc, 1, kh, kw), np.float32)
    oh, ow = check_depthwise_args(x, w_like, stride, padding, dilation, "dwconv2d_wgrad_f32")
    check_f32("dwconv2d_wgrad_f32", x=x, g=g)
    if g.shape != (x.shape[0], oc, oh, ow):
        raise ValueError(f"dwconv2d_wgrad_f32: grad_out has shape {g.shape}, expected {(x.shape[0], oc, oh, ow)}")
    x, g = np.ascontiguousarray(x), np.ascontiguousarray(g)
    gw = np.empty((oc, 1, kh, kw), np.float32)
    check(lib().tinyeff_dwconv_wgrad_f32(ptr("float", x), ptr("float", g),
                                         *_geometry(x.shape, w_like, stride, padding, dilation, oh, ow),
                                         ptr("float", gw)), "dwconv_wgrad_f32")
    return gw
