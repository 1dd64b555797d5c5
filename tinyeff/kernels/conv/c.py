"""C tier of the dense direct convolution: marshalling over csrc/conv/dconv.c (forward, weight
gradient) and csrc/conv/dconv_oc.c (forward with output channels in the lanes, fused max-pool).

Both lower the input with ``layout.direct.direct_conv_layout``, the flat-shift form in which every
kernel tap reads one contiguous run, so no im2col matrix is written. The bodies (arguments checked
by spec.py) pack the weight into the kernel's register blocks (4 output channels per block,
zero-padded; or transposed, a tap's channels side by side) and, where an output row is not whole
vectors, lay the output gradient on the padded grid the weight-gradient loop walks.
The forward pass has two tiles. dconv.c's holds positions in its lanes and computes whole tiles
of the flat plane, the columns ow >= OW included, or whole vectors inside each output row
(``mode``, dconv_plan.h picks); dconv_oc.c's holds output channels and computes only the
positions kept. ``_channels_in_lanes`` takes the one computing fewer multiply-adds,
counting padded channels on both sides and the tiles' rounding; a fused max-pool needs dconv_oc.c.
Under an inference plan (``prepared``: the runner kernels/contract.py prepares) the packed weight
is kept between calls while the weight's bytes are unchanged (kernels/weight_cache.py); every
other call, training's among them, packs it anew.
"""
import functools

import numpy as np

from tinyeff.kernels import buffers, registry, weight_cache
from tinyeff.kernels.c import check, ffi, isa_code, lib, ptr
from tinyeff.kernels.conv import phases
from tinyeff.kernels.contract import implements
from tinyeff.kernels.layout.direct import dense_tap_offsets, direct_conv_layout, output_positions

BLOCK_OC = 4     # DC_R in csrc/conv/dconv.c
# dconv_oc.c's tile must do at most this fraction of dconv.c's multiply-adds to be taken: it also
# transposes its sums to channel planes and sets up a pointer per position (the seed CNN's first
# conv, 27 taps, would save 6% of the multiply-adds and runs 20-30% slower with it)
OC_TILE_MARGIN = 0.9


def pack_weight(w):
    """(OC, ...) -> (ceil(OC/4), T, 4), T the taps: each block's 4 weights of one tap side by side."""
    w2d = w.reshape(w.shape[0], -1)
    oc, taps = w2d.shape
    blocks = -(-oc // BLOCK_OC)
    packed = np.zeros((blocks * BLOCK_OC, taps), dtype=np.float32)
    packed[:oc] = w2d
    return np.ascontiguousarray(packed.reshape(blocks, BLOCK_OC, taps).transpose(0, 2, 1))


def pack_weight_t(w, ocp):
    """(OC, ...) -> (T, ocp), T the taps: each tap's output channels side by side, zero columns up to ocp."""
    w2d = w.reshape(w.shape[0], -1)
    oc, taps = w2d.shape
    packed = np.zeros((taps, ocp), dtype=np.float32)
    packed[:, :oc] = w2d.T
    return packed


@functools.lru_cache(maxsize=16)
def oc_block(code):
    """(channels, positions) of dconv_oc.c's register block on ISA path ``code``."""
    out = ffi().new("int64_t[2]")
    check(lib().tinyeff_dconv_oc_block(code, out, out + 1), "dconv_oc_block")
    return int(out[0]), int(out[1])


@functools.lru_cache(maxsize=256)
def _channels_in_lanes(code, n, oc, length, oh, ow):
    """Whether dconv_oc.c's tile computes fewer multiply-adds than dconv.c's on this layer."""
    positions = ffi().new("int64_t[1]")
    check(lib().tinyeff_dconv_positions(code, n, length, oh, ow, positions), "dconv_positions")
    positions_in_lanes = positions[0] / n * -(-oc // BLOCK_OC) * BLOCK_OC
    cb, p = oc_block(code)
    channels_in_lanes = -(-n * oh * ow // p) * p / n * -(-oc // cb) * cb
    return channels_in_lanes < OC_TILE_MARGIN * positions_in_lanes


ISAS = ("portable", "avx2", "avx512", "neon")
FORWARD_MODES = {"auto": 0, "flat": 1, "rows": 2}


@implements("conv2d_f32", "c", isa=ISAS)
def conv2d_f32(x, w, bias, stride, padding, dilation, relu, pool, isa=None, prepared=False):
    return forward(x, w, bias, stride, padding, dilation, relu, pool, isa, keep_packed=prepared)


def forward(x, w, bias, stride, padding, dilation, relu, pool=1, isa=None, mode="auto", keep_packed=False):
    """The body of ``conv2d_f32`` (arguments checked). ``mode`` forces dconv.c's flat or row tiles
    (tests run both on every ISA path); ``auto`` takes whichever of them and dconv_oc.c's tile
    computes fewer multiply-adds. ``keep_packed``: reuse the packed weight while ``w`` is unchanged
    (kernels/weight_cache.py)."""
    oc, c, kh, kw = w.shape
    src, img_stride, ws, oh, ow, length = direct_conv_layout(x, kh, kw, stride, padding, dilation)
    offsets = dense_tap_offsets(c, kh, kw, stride, dilation, src.shape[2], ws)
    code = isa_code("conv2d_f32", isa)
    pack = weight_cache.packed if keep_packed else _pack_now
    return _on_layout(ptr("float", src), img_stride, x.shape[0], w, bias, offsets, (oh, ow, ws),
                      relu, pool, code, mode, pack)


def _pack_now(w, pack, *args):
    """``weight_cache.packed``'s signature, packing on every call."""
    return pack(w, *args)


def _on_layout(src, img_stride, n, w, bias, offsets, plane, relu, pool, code, mode="auto", pack=_pack_now):
    """The forward pass on a laid-out input: ``src`` a C pointer to image 0's first output
    position, images ``img_stride`` floats apart, rows ``ws`` wide (``plane`` = (OH, OW, WS));
    ``pack(w, pack_fn, *args)`` packs the weight (or reuses its packing)."""
    oh, ow, ws = plane
    oc, length = w.shape[0], (oh - 1) * ws + ow
    if pool > 1 or (mode == "auto" and _channels_in_lanes(code, n, oc, length, oh, ow)):
        return _conv_oc(src, img_stride, n, w, bias, offsets, plane, relu, pool, code, pack)
    wpack = pack(w, pack_weight)
    out = buffers.empty((n, oc, oh, ow))
    b = ffi().NULL if bias is None else ptr("float", np.ascontiguousarray(bias))
    check(lib().tinyeff_dconv_f32(src, img_stride, n, ptr("float", wpack), ptr("int64_t", offsets),
                                  offsets.size, oc, length, ws, oh, ow, b, int(relu),
                                  FORWARD_MODES[mode], code, ptr("float", out)), "dconv_f32")
    return out


def _conv_oc(src, img_stride, n, w, bias, offsets, plane, relu, pool, code, pack=_pack_now):
    """dconv_oc.c's forward: (N, OC, OH // pool, OW // pool), max-pooled when pool > 1 (``src``
    a C pointer, as for _on_layout)."""
    oh, ow, ws = plane
    oc = w.shape[0]
    cb = oc_block(code)[0]
    ocp = -(-oc // cb) * cb
    wt = pack(w, pack_weight_t, ocp)
    pos = output_positions(oh, ow, ws, pool)
    out = buffers.empty((n, oc, oh // pool, ow // pool))
    b = ffi().NULL if bias is None else ptr("float", np.ascontiguousarray(bias))
    check(lib().tinyeff_dconv_oc_f32(src, img_stride, n, ptr("float", wt), ocp,
                                     ptr("int64_t", offsets), offsets.size, oc, ptr("int64_t", pos),
                                     pos.size, pool * pool, b, int(relu), code, ptr("float", out)),
          "dconv_oc_f32")
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
        vl = lib().tinyeff_dconv_vector_floats(code)
        rows = ow % vl == 0 or (2 * ow == vl and oh % 2 == 0)
    if rows:
        gpad, glen = np.ascontiguousarray(g), oh * ow
    else:
        glen = -(-oh * ws // 16) * 16                            # whole vectors of every ISA
        gpad = buffers.empty((n, oc, glen))                     # g on the padded grid
        gpad.fill(0.0)
        gpad[:, :, :oh * ws].reshape(n, oc, oh, ws)[:, :, :, :ow] = g
    offsets = dense_tap_offsets(c, kh, kw, stride, dilation, src.shape[2], ws)
    gw = np.empty((oc, c, kh, kw), dtype=np.float32)
    check(lib().tinyeff_dconv_wgrad_f32(ptr("float", src), img_stride, n, ptr("float", gpad),
                                        glen, ptr("int64_t", offsets), offsets.size, oc, length,
                                        oh if rows else 0, ws, ow, code, ptr("float", gw)),
          "dconv_wgrad_f32")
    return gw


@implements("conv2d_xgrad_f32", "c", isa=ISAS)
def conv2d_xgrad_f32(g, w, x_shape, stride, padding, oh, ow, isa=None):
    return input_grad(g, w, x_shape, stride, padding, isa)


def input_grad(g, w, x_shape, stride, padding, isa=None):
    """The body of ``conv2d_xgrad_f32``: one stride-1 correlation of ``g`` per phase of the stride
    (phases.py), each reading its window of ``g`` padded once: the window is a pointer into the
    padded array (no copy of ``g`` per phase), and the phase's rows and columns of ``grad_x`` are
    filled from its output (at stride 1, the one phase's output is ``grad_x``)."""
    n, c, h, wd = x_shape
    oc = w.shape[0]
    code = isa_code("conv2d_xgrad_f32", isa)
    rows_cols = phases.phase_windows(w.shape[2:], stride, padding, (h, wd), g.shape[2:])
    pad = max([0] + [v for rows, cols in rows_cols for v in rows.crop + cols.crop])
    gp = registry.get("pad2d_f32")(g, pad) if pad else np.ascontiguousarray(g)
    hp, wp = gp.shape[2:]
    src = ptr("float", gp)
    gx = None
    if stride > 1 or len(rows_cols) != 1:
        gx = buffers.empty(x_shape)
        if len(rows_cols) != stride * stride:                    # phases with no taps stay zero
            gx.fill(0.0)
    for rows, cols in rows_cols:
        wphase = np.ascontiguousarray(w[:, :, rows.taps][:, :, :, cols.taps].transpose(1, 0, 2, 3))
        offsets = dense_tap_offsets(oc, len(rows.taps), len(cols.taps), 1, 1, hp, wp)
        corner = (pad - rows.crop[0]) * wp + pad - cols.crop[0]      # the window's first element
        part = _on_layout(src + corner, oc * hp * wp, n, wphase, None, offsets,
                          (rows.count, cols.count, wp), False, 1, code)
        if gx is None:
            return part
        gx[:, :, rows.first:rows.first + stride * rows.count:stride,
           cols.first:cols.first + stride * cols.count:stride] = part
    return gx
