"""7-bit activations on the AVX2 int8 path, bit for bit on every C path.

When every activation byte is <= 127 (the GEMM scans its operand to know), vpmaddubsw's int16 pair
sums cannot saturate for any int8 weights (2 * 127 * 128 < 32768), and where ``pack_s8`` proved
the weights of two consecutive groups small enough (``PackedS8.quads_fit[p, g]``: four weights of
a lane over groups g and g + 1 sum to at most 258 in each sign, in every column of the panel) the
two groups share one vpmaddwd. These tests aim at the edges: quad sums of exactly 258 and 259
against activations of exactly 127, panels where some group pairs fit and others do not (the tile
walks the flags), a single 128 anywhere in the operand (the scan must see it and fall back), the
pooled tile that requantizes a 2x2 window in registers, and ragged column counts.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyeff import kernels
from tinyeff.kernels import registry
from tinyeff.kernels.int8_conv.spec import ROW_ALIGN
from tinyeff.kernels.layout.fixed_point import quantize_multiplier


def _paths():
    if not kernels.available("gemm_u8s8_packed", "c"):
        pytest.skip(kernels.why_unavailable("gemm_u8s8_packed", "c"))
    return registry.isa_paths("gemm_u8s8_packed", "c")


def _c(name, isa):
    return kernels.get(name, "c", isa=isa)


def _ref(name):
    return kernels.get(name, "ref")


def _pack_both(b):
    packed = _ref("pack_s8")(b)
    if kernels.available("pack_s8", "c"):
        got = kernels.get("pack_s8", "c")(b)
        np.testing.assert_array_equal(got.data, packed.data)
        np.testing.assert_array_equal(got.pairs_fit, packed.pairs_fit)
        np.testing.assert_array_equal(got.quads_fit, packed.quads_fit)
    return packed


def _a7(rng, m, k):
    """uint8 (m, k) in [0, 127], half of it exactly 127."""
    a = rng.integers(0, 128, (m, k))
    a[rng.random((m, k)) < 0.5] = 127
    return a.astype(np.uint8)


def _w8_mixed(rng, k, n, share=0.3):
    """int8 (k, n) small enough for quads except at about ``share`` of the group pairs, where one
    column holds a lane of exactly 259 (or -259) over groups g, g + 1; others hold exactly 258 (or
    -258): the AVX2 tile then mixes quad and single steps inside one row, and a wrong flag shows."""
    b = rng.integers(-30, 31, (k, n))
    for g in range(k // 4 - 1):
        j, t = rng.integers(n), 2 * rng.integers(2)
        over = rng.random() < share
        lane = (127, 127, 5, 0) if over else (127, 127, 4, 0)
        if rng.random() < 0.5:
            lane = (-128, -128, -3, 0) if over else (-128, -128, -2, 0)
        b[[4 * g + t, 4 * g + t + 1, 4 * g + 4 + t, 4 * g + 5 + t], j] = lane
    return b.astype(np.int8)


def _w8(rng, k, n):
    """int8 (k, n) with long runs of both extremes: no pair fits for 8-bit activations."""
    b = rng.integers(-128, 128, (k, n))
    r = rng.random((k, n))
    b[r < 0.3], b[r > 0.7] = -128, 127
    return b.astype(np.int8)


@pytest.mark.parametrize("lane,fits", [((127, 127, 4, 0), 1), ((127, 127, 5, 0), 0), ((-128, -128, -2, 0), 1),
                                       ((-128, -128, -3, 0), 0), ((127, 127, -128, -128), 1), ((64, 64, 64, 66), 1),
                                       ((64, 64, 64, 67), 0)])
def test_quads_fit_bound(lane, fits):
    """Column 5, pair (k 0, 1) of group 1 and of group 2: 127 * 258 = 32766 fits, 127 * 259 does not;
    only the flag of groups (1, 2) of columns 0-15 depends on it; the last group has no successor."""
    b = np.zeros((16, 20), np.int8)
    b[4, 5], b[5, 5], b[8, 5], b[9, 5] = lane
    assert _pack_both(b).quads_fit.tolist() == [[1, fits, 1, 0], [1, 1, 1, 0]]


def test_quads_fit_flags_each_consecutive_pair_of_groups():
    """Groups 1 and 2 overflow together although (0, 1) and (2, 3), the pairs a tile would form
    from the start of a row, do not: the flag of (1, 2) says so, for a walk that pairs them."""
    b = np.zeros((16, 1), np.int8)
    b[4, 0] = b[5, 0] = b[8, 0] = b[9, 0] = 100
    assert _pack_both(b).quads_fit.tolist() == [[1, 0, 1, 0]]
    b[8:10, 0] = 0
    b[[2, 3, 6, 7], 0] = 100                  # the other lane (k 2, 3) of groups 0 and 1: 400 > 258
    assert _pack_both(b).quads_fit.tolist() == [[0, 1, 1, 0]]
    b[[6, 7], 0] = 0
    assert _pack_both(b).quads_fit.tolist() == [[1, 1, 1, 0]]


def test_quads_fit_is_per_16_columns(rng):
    """One column over the bound clears the flag of its own 16 columns only (the AVX2 tile's width)."""
    b = rng.integers(-30, 31, (64, 150)).astype(np.int8)
    b[[8, 9, 12, 13], 70] = 127, 127, 5, 0    # groups 2 and 3, column 70 (columns 64-79): 259
    flags = _pack_both(b).quads_fit
    assert flags.shape == (10, 16) and flags[:, :-1].sum() == 10 * 15 - 1 and flags[4, 2] == 0


def test_seven_bit_weights_always_fit_quads(rng):
    b = rng.integers(-64, 64, (300, 130)).astype(np.int8)
    b[::2] = 63
    assert _pack_both(b).quads_fit[:, :-1].all()


@pytest.mark.parametrize("m,k,n", [(1, 4, 16), (13, 37, 70), (50, 264, 130), (6, 1024, 64), (29, 3, 5), (27, 777, 40)])
def test_gemm_8bit_weights_7bit_activations_every_isa(m, k, n, rng):
    b = _w8(rng, k, n)
    packed = _pack_both(b)
    assert not packed.pairs_fit.any() or k < 4
    a = _a7(rng, m, k)
    want = a.astype(np.int32) @ b.astype(np.int32)
    for isa in _paths():
        np.testing.assert_array_equal(_c("gemm_u8s8_packed", isa)(a, packed), want, err_msg=isa)


@pytest.mark.parametrize("m,k,n", [(13, 64, 16), (7, 96, 70), (25, 777, 40), (12, 1024, 64), (5, 39, 20)])
def test_gemm_mixed_quad_flags_every_isa(m, k, n, rng):
    """Some group pairs fit int16 and some break it by one unit, against activations of 127:
    the quad steps must land exactly where quads_fit allows, also across K blocks and a K tail."""
    b = _w8_mixed(rng, k, n)
    packed = _pack_both(b)
    assert 0 < packed.quads_fit[:, :-1].mean() < 1 or k < 8
    for a in (np.full((m, k), 127, np.uint8), _a7(rng, m, k)):
        want = a.astype(np.int32) @ b.astype(np.int32)
        for isa in _paths():
            np.testing.assert_array_equal(_c("gemm_u8s8_packed", isa)(a, packed), want, err_msg=isa)


@pytest.mark.parametrize("c,oc,pool", [(32, 64, 2), (32, 64, 1), (3, 16, 2), (9, 20, 1)])
def test_conv_mixed_quad_flags_every_isa(c, oc, pool, rng):
    """The implicit conv walks the flags segment by segment (a kernel row each): 3 channels give
    odd-length segments (3 groups), 9 channels ones of 7 groups."""
    kseg = -(-(3 * c) // ROW_ALIGN) * ROW_ALIGN
    x = np.full((2, 11, 10, c), 127, np.uint8)
    x[0] = rng.integers(0, 128, (11, 10, c))
    rows = _w8_mixed(rng, 3 * kseg, oc).reshape(3, kseg, oc)
    rows[:, 3 * c:] = 0                                   # the padding rows of each kernel row stay zero
    _assert_conv_every_isa(x, _pack_both(np.ascontiguousarray(rows.reshape(-1, oc))), pool, rng)


def _assert_conv_every_isa(x, packed, pool, rng):
    """A 3x3, padding-1 requantizing conv of ``x`` gives the reference's codes on every path."""
    bias = rng.integers(-3000, 3000, packed.n).astype(np.int32)
    multiplier, shift = quantize_multiplier(rng.uniform(2e-6, 2e-4, packed.n))
    args = (x, packed, 3, 3, 1, 1, 100, bias, multiplier, shift, 5)
    want = _ref("conv2d_u8s8_requant_nhwc")(*args, pool=pool, relu=True, qmax=127)
    for isa in _paths():
        got = _c("conv2d_u8s8_requant_nhwc", isa)(*args, pool=pool, relu=True, qmax=127)
        np.testing.assert_array_equal(got, want, err_msg=isa)


@pytest.mark.parametrize("where", [(0, 0), (-1, -1), (17, 40)])
def test_one_byte_above_127_falls_back(where, rng):
    """Quads on the bound (258) and pairs that only fit for 7-bit activations: a single 128 anywhere
    in A must send every panel back to the exact tile, or the int16 sums would saturate."""
    m, k, n = 30, 96, 80
    b = np.zeros((k, n), np.int8)
    b[0::8], b[1::8], b[4::8] = 127, 127, 4      # lane 0 of even groups 127, 127, of odd ones 4, 0: quads of 258
    packed = _pack_both(b)
    assert packed.quads_fit[:, :-1].all() and not packed.pairs_fit.any()
    a = np.full((m, k), 127, np.uint8)
    for value in (127, 128, 255):
        a[where] = value
        want = a.astype(np.int32) @ b.astype(np.int32)
        for isa in _paths():
            np.testing.assert_array_equal(_c("gemm_u8s8_packed", isa)(a, packed), want, err_msg=f"{isa} {value}")


@pytest.mark.parametrize("m,k,n,group", [(48, 288, 64, 4), (12, 12, 32, 4), (24, 36, 17, 4), (60, 100, 40, 4),
                                         (36, 64, 130, 4), (24, 100, 70, 1)])
@pytest.mark.parametrize("weight_bits", [8, 7])
def test_requant_rowmax_pooled_tile_every_isa(m, k, n, group, weight_bits, rng):
    """group 4 is the fused 2x2 pool, requantized in registers on AVX2; ragged n checks the stores."""
    b = _w8(rng, k, n) if weight_bits == 8 else rng.integers(-64, 64, (k, n)).astype(np.int8)
    packed = _pack_both(b)
    a = _a7(rng, m, k)
    bias = rng.integers(-3000, 3000, n).astype(np.int32)
    multiplier, shift = quantize_multiplier(rng.uniform(2e-6, 2e-4, n))
    for qmax in (127, 255):
        want = _ref("gemm_u8s8_requant_rowmax")(a, packed, 61, bias, multiplier, shift, 9, group,
                                                 relu=True, qmax=qmax)
        for isa in _paths():
            got = _c("gemm_u8s8_requant_rowmax", isa)(a, packed, 61, bias, multiplier, shift, 9, group,
                                                      relu=True, qmax=qmax)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} qmax={qmax}")


@pytest.mark.parametrize("c,oc,pool", [(1, 32, 2), (3, 32, 2), (16, 64, 2), (32, 64, 1), (5, 24, 2)])
def test_conv_implicit_7bit_activations_every_isa(c, oc, pool, rng):
    x = rng.integers(0, 128, (3, 13, 12, c)).astype(np.uint8)
    x[..., ::2] = 127
    w = _w8(rng, oc, c * 9).reshape(oc, c, 3, 3)
    rows = w.transpose(0, 2, 3, 1).reshape(oc, 3, 3 * c)
    rows = np.pad(rows, ((0, 0), (0, 0), (0, -(3 * c) % ROW_ALIGN))).reshape(oc, -1)
    _assert_conv_every_isa(x, _pack_both(np.ascontiguousarray(rows.T)), pool, rng)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 40), k=st.integers(1, 300), n=st.integers(1, 140), seed=st.integers(0, 2**31 - 1),
       weights=st.sampled_from(["7-bit", "8-bit", "mixed"]))
def test_gemm_7bit_activations_hypothesis(m, k, n, seed, weights):
    paths = _paths()
    rng = np.random.default_rng(seed)
    b = {"7-bit": lambda: rng.integers(-64, 64, (k, n)).astype(np.int8), "8-bit": lambda: _w8(rng, k, n),
         "mixed": lambda: _w8_mixed(rng, k, n)}[weights]()
    packed = _pack_both(b)
    a = _a7(rng, m, k)
    want = a.astype(np.int32) @ b.astype(np.int32)
    for isa in paths:
        np.testing.assert_array_equal(_c("gemm_u8s8_packed", isa)(a, packed), want, err_msg=isa)


@pytest.mark.parametrize("m,k,n", [(25, 257, 33), (13, 777, 70), (12, 1024, 16)])
def test_gemm_long_rows_k_blocked_every_isa(m, k, n, rng):
    """Rows longer than the AVX2 tile's K block (256) are summed block by block; tails, signed A,
    7- and 8-bit activations, quads and pairs all continue across the blocks."""
    b7, b8 = rng.integers(-64, 64, (k, n)).astype(np.int8), _w8(rng, k, n)
    a7, a8 = _a7(rng, m, k), rng.integers(0, 256, (m, k)).astype(np.uint8)
    a_s = rng.integers(-128, 128, (m, k)).astype(np.int8)
    for isa in _paths():
        for a, b in ((a7, b7), (a7, b8), (a8, b7)):
            np.testing.assert_array_equal(_c("gemm_u8s8_packed", isa)(a, _pack_both(b)),
                                          a.astype(np.int32) @ b.astype(np.int32), err_msg=isa)
        np.testing.assert_array_equal(_c("gemm_s8", isa)(a_s, b7), a_s.astype(np.int32) @ b7.astype(np.int32),
                                      err_msg=isa)
