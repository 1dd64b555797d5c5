"""PackedS8: int8 GEMM weights packed once per layer for the VNNI/AVX2 micro-kernels.

Inside a GEMM, M x K times K x N gives M x N (row-major). The layout, shared by every tier of the
int8 GEMM (``kernels/int8_gemm/``) and by csrc/int8_gemm/gemm_s8.c:
    K4 = ceil(K / 4) groups of 4 consecutive k; columns split into panels of 64 (the last panel is
    the remaining columns rounded up to a multiple of 16). Panel p (width w) starts at byte
    ``p * K4 * 256``; inside it, byte ``(k4 * w + j) * 4 + t`` holds ``b[4*k4 + t, 64*p + j]``.
    Entries past K or past N are 0. Total size ``K4 * 4 * roundup(N, 16)`` bytes.
    Why: one 64-byte vector = 16 columns x 4 k, exactly what one ``vpdpbusd`` consumes against a
    broadcast of 4 activation bytes, so the micro-kernel streams each panel front to back (and
    half of it, 8 columns x 4 k, what AVX2's ``vpmaddubsw`` does; a quarter what ARM's ``sdot`` does).
``pairs_fit`` (one flag per panel): every pair of k (4g, 4g+1) and (4g+2, 4g+3) in every column has
positive weights summing to at most 128 and negative ones to at least -128, so ``a1*w1 + a2*w2``
fits int16 for any uint8 a and AVX2's saturating ``vpmaddubsw`` is exact there (7-bit weights, in
[-64, 63], always qualify; docs/int8.md section 9). Activations <= 127 (7-bit activations) make
every pair of any int8 weights fit (2 * 127 * 128 < 32768); the GEMM checks that on the operand.
``quads_fit`` (one flag per 16 columns and group, shape (ceil(N / 16), K4)): entry [c, g] is 1
when, for activations <= 127, the int16 lane of group g plus the same lane of group g + 1 (4 weights
of one column) fits in each of columns 16c .. 16c + 15: positive weights sum to at most 258 and
negative ones to at least -258 (127 * 258 = 32766), so the AVX2 tile, which holds 16 columns, may
add those two ``vpmaddubsw`` results before widening; the last group has no successor (0). 7-bit weights always qualify (4 * 64 = 256); trained
8-bit weights break the bound at a few groups only, and the tile takes the quad step at the others.

Overflow bound: a u8 x s8 product is at most 255*128 in magnitude, so K <= 65536 keeps every int32
sum exact (65536 * 32640 < 2**31). Every tier rejects larger K rather than wrap.
"""
from dataclasses import dataclass

import numpy as np

K_MAX = 65536          # largest K whose int32 sums cannot overflow (see the module docstring)
PANEL = 64             # columns per packed panel
GROUP = 16             # the last panel's width is a multiple of this (one 512-bit vector)
LAYOUT = "k4-panel64x4-v1"


@dataclass(frozen=True)
class PackedS8:
    """Int8 weights (K, N) packed once per layer for ``gemm_u8s8_packed`` (layout: module docstring).

    Attributes:
        data: int8 (K4 * 4 * roundup(N, 16),), the packed bytes.
        colsum: int32 (N,), ``sum_k b[k, n]``: the zero-point correction term.
        k, n: the logical weight shape.
        pairs_fit: uint8 (number of panels,), 1 where no k pair of the panel can saturate int16.
        quads_fit: uint8 (ceil(N / 16), K4): [c, g] is 1 where no lane of groups g and g + 1 of
            columns 16c .. 16c + 15 can saturate int16 for activations <= 127.
        layout: layout tag, checked by every consumer.
    """
    data: np.ndarray
    colsum: np.ndarray
    k: int
    n: int
    pairs_fit: np.ndarray
    quads_fit: np.ndarray
    layout: str = LAYOUT


def num_panels(n):
    """Panels of the packed form of a weight with ``n`` columns."""
    return -(-n // PANEL)


def pairs_fit_int16(padded):
    """uint8 (panels,): 1 where every row pair (2i, 2i+1) of every column of a (K4*4, N16) zero-padded
    weight has positive entries summing to <= 128 and negative ones to >= -128 (see ``pairs_fit``)."""
    w = padded.astype(np.int32).reshape(-1, 2, padded.shape[1])
    ok = ((np.maximum(w, 0).sum(axis=1) <= 128) & (np.minimum(w, 0).sum(axis=1) >= -128)).all(axis=0)
    return np.array([ok[p0:p0 + PANEL].all() for p0 in range(0, padded.shape[1], PANEL)], dtype=np.uint8)


QUAD_BOUND = 258       # 127 * 258 = 32766: the largest weight sum of a two-group int16 lane


def quads_fit_int16(padded):
    """uint8 (N16 / 16, K4): [c, g] is 1 where, in each of columns 16c .. 16c + 15 of a (K4*4, N16)
    zero-padded weight, rows (4g + t, 4g + t + 1, 4g + 4 + t, 4g + 5 + t), t in {0, 2}, have positive
    entries summing to <= 258 and negative ones to >= -258; 0 for the last group (see ``quads_fit``)."""
    k4 = padded.shape[0] // 4
    w = padded.astype(np.int32).reshape(k4, 2, 2, padded.shape[1])          # (K4, lane t, pair, N)
    pos, neg = np.maximum(w, 0).sum(axis=2), np.minimum(w, 0).sum(axis=2)    # (K4, 2, N) per group
    ok = np.zeros((k4, padded.shape[1]), dtype=bool)                        # (K4, N16): g with g + 1
    ok[:-1] = ((pos[:-1] + pos[1:] <= QUAD_BOUND) & (neg[:-1] + neg[1:] >= -QUAD_BOUND)).all(axis=1)
    groups = ok.reshape(k4, padded.shape[1] // GROUP, GROUP).all(axis=2).T   # (N16 / 16, K4)
    return np.ascontiguousarray(groups, dtype=np.uint8)


def packed_size(k, n):
    """Bytes in the packed form of a (k, n) int8 matrix."""
    return -(-k // 4) * 4 * (-(-n // GROUP) * GROUP)


def check_k(k, name):
    if k > K_MAX:
        raise ValueError(f"{name}: K={k} exceeds {K_MAX}, the largest K whose int32 sums cannot "
                         f"overflow; split the reduction into chunks of at most {K_MAX}")


def check_packed(packed, k, name):
    """Validate a PackedS8 against an activation with ``k`` columns; raise TypeError/ValueError."""
    if not isinstance(packed, PackedS8):
        raise TypeError(f"{name}: expected a PackedS8 from pack_s8(b), got {type(packed).__name__}")
    if packed.layout != LAYOUT:
        raise ValueError(f"{name}: packed layout {packed.layout!r} is not {LAYOUT!r}; re-pack with pack_s8")
    if packed.k != k:
        raise ValueError(f"{name}: activation has K={k} columns but the packed weight has K={packed.k} "
                         f"rows (weight shape ({packed.k}, {packed.n}))")
    shapes = {"pairs_fit": ((num_panels(packed.n),), "one flag per 64-column panel"),
              "quads_fit": ((-(-packed.n // GROUP), -(-packed.k // 4)), "one flag per 16 columns and group of 4 k")}
    for field, (shape, what) in shapes.items():
        fit = getattr(packed, field)
        if not isinstance(fit, np.ndarray) or fit.dtype != np.uint8 or fit.shape != shape:
            raise ValueError(f"{name}: packed.{field} must be uint8 {shape}, {what}; re-pack the weight "
                             "with pack_s8")


def unpack_s8(packed):
    """Inverse of ``pack_s8``: the int8 (K, N) weight (used by the reference and the tests)."""
    k, n = packed.k, packed.n
    k4, npad = -(-k // 4), -(-n // GROUP) * GROUP
    out = np.empty((k4 * 4, npad), dtype=np.int8)
    offset = 0
    for p0 in range(0, npad, PANEL):
        w = min(PANEL, npad - p0)
        block = packed.data[offset:offset + k4 * w * 4].reshape(k4, w, 4)
        out[:, p0:p0 + w] = block.transpose(0, 2, 1).reshape(k4 * 4, w)
        offset += k4 * w * 4
    return out[:k, :n]

