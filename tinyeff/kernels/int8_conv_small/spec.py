"""Integer convolution for few input channels (a first layer): contract, weight packing, reference.

``conv2d_u8s8_smallc_nhwc`` is ``conv2d_u8s8_requant_nhwc`` (conv + requant + ReLU + fused
2x2 max-pool on NHWC) with a weight packed for output channels in the vector lanes: the C tier
(csrc/int8_conv_small/qconv_small.c) broadcasts each output pixel's 4-byte tap groups against 32
output channels at a time, so a kernel with few taps (C = 1: 9, C = 3: 27) runs only the groups it
has, where the implicit-im2col GEMM pays per-row and per-tile costs sized for long K.

Tap groups (``tap_groups``): a kernel row is KW*C consecutive bytes of the padded image. Each row
gives floor(KW*C / 4) direct groups (4 bytes, one load). The rest, rem = KW*C % 4 bytes per row,
form one gathered group across the KH rows when rem * KH <= 4 (C = 3, 3x3: 6 + 1 = 7 groups for
27 taps, against 9 with every row padded), or else one more direct group per row whose bytes past
the row meet zero weights (C = 1, 3x3: 3 groups for 9 taps).
"""
from dataclasses import dataclass

import numpy as np

from tinyeff.kernels.contract import case, define
from tinyeff.kernels.int8_conv.spec import CONVS, check_im2col_nhwc, conv2d_u8s8_requant_nhwc, gemm_weight
from tinyeff.kernels.int8_eltwise.spec import random_requant, requant_args
from tinyeff.kernels.int8_gemm.spec import pack_s8

BLOCK = 32            # output channels per block: the lanes of 4 ymm (AVX2), 2 zmm (AVX-512) or 8 q (NEON)
MAX_DIRECT = 16       # direct groups per kernel the C tier takes (QS_MAX_DIRECT)
MAX_OC = 256          # output channels the C tier takes (QS_MAX_BLOCKS blocks)
LAYOUT = "qconv-small-oc32x4-v1"


def tap_groups(kh, kw, c):
    """([(row, first byte)] of the direct groups, [(row, byte)] of the gathered group's bytes)."""
    rb = kw * c
    full, rem = divmod(rb, 4)
    gather = rem and rem * kh <= 4
    per_row = full if gather else -(-rb // 4)
    direct = [(r, 4 * i) for r in range(kh) for i in range(per_row)]
    gathered = [(r, 4 * full + t) for r in range(kh) for t in range(rem)] if gather else []
    return direct, gathered


def fits(oc, kh, kw, c, pool=1):
    """True if the C tier takes this layer (at most MAX_DIRECT direct groups and MAX_OC output
    channels; pool 1 or 2)."""
    return len(tap_groups(kh, kw, c)[0]) <= MAX_DIRECT and oc <= MAX_OC and pool in (1, 2)


@dataclass(frozen=True)
class PackedConvSmall:
    """A conv weight (OC, C, KH, KW) packed for ``conv2d_u8s8_smallc_nhwc``.

    Attributes:
        data: int8: per block of 32 output channels (the last one 16 wide when OC ends in its first
            half), per tap group, the block's columns x 4 bytes (byte t of column j at 4 j + t;
            zero past OC and on padding).
        colsum: int32 (OC,), the sum of each output channel's weights (zero-point correction).
        pairs_fit: True if every weight pair (bytes 0-1, 2-3 of a group) has positive entries
            summing to <= 128 and negative ones to >= -128: AVX2's vpmaddubsw is then exact for any
            uint8 input, not only for inputs <= 127.
        quads_fit: True if, for groups 2i and 2i + 1, the four weights of each int16 lane (the pair
            of each group) have positive entries summing to <= 258 and negative ones to >= -258:
            for inputs <= 127 AVX2 then adds the two vpmaddubsw results as int16 (127 * 258 < 2^15).
            7-bit weights ([-64, 63]) always qualify.
        weight: the (OC, C, KH, KW) int8 weight itself (what the reference computes with).
    """
    data: np.ndarray
    colsum: np.ndarray
    pairs_fit: bool
    quads_fit: bool
    weight: np.ndarray
    layout: str = LAYOUT

    @property
    def shape(self):
        return self.weight.shape


def pack_conv_small(weight):
    """Pack an int8 (OC, C, KH, KW) conv weight in the tap-group order of ``tap_groups``."""
    weight = np.ascontiguousarray(weight)
    if weight.dtype != np.int8 or weight.ndim != 4:
        raise TypeError(f"pack_conv_small: expected an int8 (OC, C, KH, KW) weight, got {weight.dtype} {weight.shape}")
    oc, c, kh, kw = weight.shape
    rows = weight.transpose(2, 3, 1, 0).reshape(kh, kw * c, oc)       # (row, byte in row, column)
    direct, gathered = tap_groups(kh, kw, c)
    nblocks = -(-oc // BLOCK)
    width = nblocks * BLOCK - (BLOCK // 2 if 0 < oc % BLOCK <= BLOCK // 2 else 0)   # a last block of 16
    groups = np.zeros((len(direct) + bool(gathered), 4, width), np.int8)
    for g, (r, b0) in enumerate(direct):
        n = min(4, kw * c - b0)
        groups[g, :n, :oc] = rows[r, b0:b0 + n]
    for t, (r, b) in enumerate(gathered):
        groups[-1, t, :oc] = rows[r, b]
    data = [groups[:, :, j0:j0 + BLOCK].transpose(0, 2, 1).reshape(-1) for j0 in range(0, width, BLOCK)]
    pairs = groups.astype(np.int32).reshape(len(groups), 2, 2, -1)
    fit = ((np.maximum(pairs, 0).sum(axis=2) <= 128) & (np.minimum(pairs, 0).sum(axis=2) >= -128)).all()
    colsum = weight.reshape(oc, -1).astype(np.int32).sum(axis=1).astype(np.int32)
    return PackedConvSmall(np.concatenate(data), colsum, bool(fit), _quads_fit(groups), weight)


def _quads_fit(groups):
    """``PackedConvSmall.quads_fit`` of the (groups, 4, columns) weight."""
    even = len(groups) // 2 * 2
    quads = groups[:even].astype(np.int32).reshape(even // 2, 2, 2, 2, groups.shape[2])   # (quad, group, pair, t, column)
    return bool((np.maximum(quads, 0).sum(axis=(1, 3)) <= 258).all() and (np.minimum(quads, 0).sum(axis=(1, 3)) >= -258).all())


def _check(x, packed, stride, padding, a_zero_point, bias, multiplier, shift, zero_point_out, pool, qmin, qmax,
           relu):
    name = "conv2d_u8s8_smallc_nhwc"
    if not isinstance(packed, PackedConvSmall) or packed.layout != LAYOUT:
        raise TypeError(f"{name}: expected the weight from pack_conv_small (layout {LAYOUT})")
    oc, c, kh, kw = packed.shape
    if x.ndim == 4 and x.shape[3] != c:
        raise ValueError(f"{name}: the input has {x.shape[3]} channels, the weight {c}")
    _, _, oh, ow = check_im2col_nhwc(x, kh, kw, stride, padding, 1, a_zero_point, pool, 1, name)
    if not fits(oc, kh, kw, c, pool):
        raise ValueError(f"{name}: a {kh}x{kw}x{c} kernel with {oc} output channels has more than {MAX_DIRECT} "
                         f"tap groups or {MAX_OC} channels, or pool={pool} is not 1 or 2; use conv2d_u8s8_requant_nhwc")
    args = requant_args(oc, bias, multiplier, shift, zero_point_out, qmin, qmax, np.uint8, relu, name)
    del args["out_dtype"]
    return {**args, "oh": oh, "ow": ow}


def cases(rng):
    # the int8 conv family's shapes that fit, and first layers: C = 1 and 3, odd planes, stride 2,
    # padding, block tails (OC 1, 33, 70), an empty batch
    shapes = [s for s in CONVS if fits(1, s[4], s[5], s[3], min(s[8], 2))]
    shapes += [(3, 11, 9, 1, 3, 3, 1, 0, 2), (2, 10, 10, 3, 3, 3, 1, 1, 2), (1, 9, 12, 3, 3, 3, 2, 0, 1),
               (2, 8, 7, 2, 3, 3, 1, 0, 2), (0, 6, 6, 3, 3, 3, 1, 0, 2)]
    for i, (n, h, w, c, kh, kw, s, p, pool) in enumerate(shapes):
        oc = (1, 33, 32, 70, 5, 64, 17, 40, 8, 32, 3)[i % 11]
        top = 128 if i % 2 else 256                          # 7-bit activations, and full 8-bit ones
        x = rng.integers(0, top, (n, h, w, c), dtype=np.uint8)
        weight = rng.integers(-128, 128, (oc, c, kh, kw), dtype=np.int8)
        multiplier, shift = random_requant(rng, oc, 1e-5, 1e-2)
        bias = rng.integers(-2**16, 2**16, oc, dtype=np.int32)
        yield case(x, pack_conv_small(weight), s, p, int(rng.integers(0, top)), bias, multiplier, shift,
                   int(rng.integers(0, 256)), pool=min(pool, 2), relu=bool(i % 2))
    # 7-bit weights (quads_fit: two groups per vpmaddwd on AVX2) on 7-bit and on 8-bit inputs
    for c, top in [(1, 128), (3, 128), (3, 256)]:
        weight = rng.integers(-64, 64, (32, c, 3, 3), dtype=np.int8)
        yield case(rng.integers(0, top, (2, 9, 10, c), dtype=np.uint8), pack_conv_small(weight), 1, 0, 5,
                   None, *random_requant(rng, 32, 1e-4, 1e-2), 3, pool=2, relu=True)
    # extremes: 255 x -128 on every tap (8-bit input), and 127 x -128 with weights whose pairs fit
    yield case(np.full((2, 6, 7, 3), 255, np.uint8), pack_conv_small(np.full((4, 3, 3, 3), -128, np.int8)),
               1, 1, 0, None, *random_requant(rng, 4), 128, pool=2)
    weight = np.where(rng.random((36, 1, 3, 3)) < 0.5, -64, 64).astype(np.int8)
    yield case(np.full((1, 7, 7, 1), 255, np.uint8), pack_conv_small(weight), 1, 0, 3, None,
               *random_requant(rng, 36), 7, pool=2, relu=True)


@define("conv2d_u8s8_smallc_nhwc", check=_check, cases=cases)
def conv2d_u8s8_smallc_nhwc(x, packed, stride, padding, a_zero_point, bias, multiplier, shift, zero_point_out,
                                  pool=1, qmin=None, qmax=None, relu=False, *, oh, ow):
    """Integer conv (+ fused ReLU, + fused 2x2 max-pool) on NHWC for a ``pack_conv_small`` weight.

    Exactly ``conv2d_u8s8_requant_nhwc`` with the same weight (its packing aside): uint8 x (N, H, W,
    C) with zero point ``a_zero_point`` (also the padding value), int32 sums, requantized with
    ``bias``, ``multiplier``, ``shift``, ``zero_point_out`` and clamped to [qmin, qmax] (ReLU
    folded in); ``pool=2`` takes the max of each 2x2 / stride-2 window (floor mode) first.
    Returns uint8 (N, OH // pool, OW // pool, OC).
    """
    oc, c, kh, kw = packed.shape
    if x.shape[0] == 0:                          # an empty batch: no rows for the im2col reference
        return np.empty((0, oh // pool, ow // pool, oc), np.uint8)
    gemm = pack_s8(gemm_weight(packed.weight))
    return conv2d_u8s8_requant_nhwc(x, gemm, kh, kw, stride, padding, a_zero_point, bias, multiplier, shift,
                                    zero_point_out, pool, qmin, qmax, relu)
