"""C tier of the dense direct convolution: marshalling over csrc/conv/dconv.c (forward, weight gradient).

Both lower the input with ``layout.direct.direct_conv_layout``, the flat-shift form in which every
kernel tap reads one contiguous run, so no im2col matrix is written. The bodies (arguments checked
by spec.py) pack the weight into the kernel's register blocks (4 output channels per block,
zero-padded) and, where an output row is not whole vectors, lay the output gradient on the padded
grid the weight-gradient loop walks.
"""
import numpy as np

from tinyeff.kernels.c import check, ffi, isa_code, lib, ptr
from tinyeff.kernels.contract import implements
from tinyeff.kernels.layout.direct import dense_tap_offsets, direct_conv_layout

BLOCK_OC = 4     # DC_R in csrc/conv/dconv.c


def pack_weight(w2d):
    """(OC, T) -> (ceil(OC/4), T, 4): each block's 4 weights of one tap side by side."""
    oc, taps = w2d.shape
    blocks = -(-oc // BLOCK_OC)
    packed = np.zeros((blocks * BLOCK_OC, taps), dtype=np.float32)
    packed[:oc] = w2d
    return np.ascontiguousarray(packed.reshape(blocks, BLOCK_OC, taps).transpose(0, 2, 1))


ISAS = ("portable", "avx2", "avx512", "neon")


FORWARD_MODES = {"auto": 0, "flat": 1, "rows": 2}


@implements("conv2d_f32", "c", isa=ISAS)
def conv2d_f32(x, w, bias, stride, padding, dilation, relu, isa=None):
    return forward(x, w, bias, stride, padding, dilation, relu, isa)


def forward(x, w, bias, stride, padding, dilation, relu, isa=None, mode="auto"):
    """The body of ``conv2d_f32`` (arguments checked); ``mode`` forces flat or row tiles (tests
    run both on every ISA path; ``auto`` lets dconv.c pick the one computing fewer positions)."""
    oc, c, kh, kw = w.shape
    src, img_stride, ws, oh, ow, length = direct_conv_layout(x, kh, kw, stride, padding, dilation)
    offsets = dense_tap_offsets(c, kh, kw, stride, dilation, src.shape[2], ws)
    wpack = pack_weight(w.reshape(oc, -1))
    out = np.empty((x.shape[0], oc, oh, ow), dtype=np.float32)
    b = ffi().NULL if bias is None else ptr("float", np.ascontiguousarray(bias))
    code = isa_code("conv2d_f32", isa)
    check(lib().tinyeff_dconv_f32(ptr("float", src), img_stride, x.shape[0], ptr("float", wpack),
                                  ptr("int64_t", offsets), offsets.size, oc, length, ws, oh, ow, b,
                                  int(relu), FORWARD_MODES[mode], code, ptr("float", out)), "dconv_f32")
    return out


@implements("conv2d_wgrad_f32", "c", isa=ISAS)
def conv2d_wgrad_f32(x, g, kh, kw, stride, padding, dilation, oh, ow, isa=None):
    return weight_grad(x, g, kh, kw, stride, padding, dilation, oh, ow, isa)


def weight_grad(x, g, kh, kw, stride, padding, dilation, oh, ow, isa=None, rows=None):
    """The body of ``conv2d_wgrad_f32``. Where every output row is whole vectors of the ISA path
    (``rows``, default: whenever OW allows), the kernel reads ``g`` as it is; otherwise ``g`` is
    copied onto the input's padded grid, zeros in the thrown-away columns."""
    n, c = x.shape[:2]
    oc = g.shape[1]
    src, img_stride, ws, _, _, length = direct_conv_layout(x, kh, kw, stride, padding, dilation)
    code = isa_code("conv2d_wgrad_f32", isa)
    if rows is None:
        rows = ow % lib().tinyeff_dconv_vector_floats(code) == 0
    if rows:
        gpad, glen = np.ascontiguousarray(g), oh * ow
    else:
        glen = -(-oh * ws // 16) * 16                            # whole vectors of every ISA
        gpad = np.zeros((n, oc, glen), dtype=np.float32)        # g on the padded grid
        gpad[:, :, :oh * ws].reshape(n, oc, oh, ws)[:, :, :, :ow] = g
    offsets = dense_tap_offsets(c, kh, kw, stride, dilation, src.shape[2], ws)
    gw = np.empty((oc, c, kh, kw), dtype=np.float32)
    check(lib().tinyeff_dconv_wgrad_f32(ptr("float", src), img_stride, n, ptr("float", gpad),
                                        glen, ptr("int64_t", offsets), offsets.size, oc, length,
                                        oh if rows else 0, ws, ow, code, ptr("float", gw)),
          "dconv_wgrad_f32")
    return gw
