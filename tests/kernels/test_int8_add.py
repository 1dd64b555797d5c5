"""The residual add ``add_u8`` (csrc/int8_eltwise/add_u8.c) against the reference bit for bit: sizes around the
16-lane vector and the OpenMP block, extreme tables (the int32 bound, both signs), rounding ties of
the requantization, shifts from 0 to -31, a positive shift (the scalar path), and the QAdd tables."""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.int8_eltwise import spec as eltwise
from tinyeff.kernels.layout import fixed_point
from tinyeff.quant import qmodules as qm


def _c():
    if not kernels.available("add_u8", "c"):
        pytest.skip(kernels.why_unavailable("add_u8", "c"))
    return kernels.get("add_u8", "c")


def _tables(rng, bound=2**29):
    return (rng.integers(-bound, bound, 256).astype(np.int32), rng.integers(-bound, bound, 256).astype(np.int32))


LUT_MIN = 262144      # from this size the C kernel looks elements up in a table of all 65536 code pairs


@pytest.mark.parametrize("size", [1, 2, 15, 16, 17, 31, 257, 16383, 16384, 16385, 4 * 16384 + 3,
                                  LUT_MIN - 1, LUT_MIN, LUT_MIN + 17])
@pytest.mark.parametrize("relu", [False, True])
def test_add_u8_matches_ref_sizes(size, relu, rng):
    a = rng.integers(0, 256, size, dtype=np.uint8)
    b = rng.integers(0, 256, size, dtype=np.uint8)
    table_a, table_b = _tables(rng)
    multiplier, shift = fixed_point.quantize_multiplier(rng.uniform(1e-7, 1e-5))
    args = (a, b, table_a, table_b, multiplier, shift, 131)
    np.testing.assert_array_equal(_c()(*args, relu=relu), eltwise.add_u8(*args, relu=relu))


@pytest.mark.parametrize("shift", [0, -1, -2, -7, -20, -30, -31, 3])
@pytest.mark.parametrize("repeats", [1, 4])
def test_add_u8_ties_and_every_shift(shift, repeats):
    """multiplier 2**30 (0.5): odd sums tie in SQRDMULH; sums at multiples of 2**(right-1) tie in RDIVPOT.
    shift 3 (> 0) takes the scalar path with the saturating left shift. Every pair of codes, once
    (the direct path) and 4 times (LUT_MIN elements: the pair-table path)."""
    a = np.tile(np.repeat(np.arange(256, dtype=np.uint8), 256), repeats)
    b = np.tile(np.arange(256, dtype=np.uint8), 256 * repeats)
    right = max(-shift, 1)
    steps = np.arange(-128, 128, dtype=np.int64) * (1 << (right - 1))
    table_a = np.clip(steps, -2**30, 2**30 - 1).astype(np.int32)
    table_b = np.clip(np.arange(-128, 128) * 3 + 1, -2**30, 2**30).astype(np.int32)
    args = (a, b, table_a, table_b, np.int32(1 << 30), np.int32(shift), 128)
    np.testing.assert_array_equal(_c()(*args), eltwise.add_u8(*args))


@pytest.mark.parametrize("fill_a,fill_b", [(2**31 - 1 - 2**30, 2**30), (-2**30, -2**30 - 1 + 2), (0, 0)])
def test_add_u8_extreme_tables(fill_a, fill_b, rng):
    shape = (3, 5, 7, 11)                                                  # any layout: a 4-D NHWC block
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.full(shape, 255, dtype=np.uint8)
    table_a, table_b = np.full(256, fill_a, np.int32), np.full(256, fill_b, np.int32)
    multiplier, shift = fixed_point.quantize_multiplier(0.7)
    args = (a, b, table_a, table_b, multiplier, shift, 0)
    got = _c()(*args)
    assert got.shape == shape
    np.testing.assert_array_equal(got, eltwise.add_u8(*args))


def test_add_u8_rejects_tables_whose_sum_overflows():
    a = np.zeros(4, np.uint8)
    table = np.full(256, 2**30 + 1, np.int32)
    for tier in ("ref", "c"):
        if not kernels.available("add_u8", tier):
            continue
        with pytest.raises(ValueError, match="exceeds int32"):
            kernels.get("add_u8", tier)(a, a, table, table, np.int32(1 << 30), np.int32(-1), 0)


def test_add_u8_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        eltwise.add_u8(np.zeros(4, np.uint8), np.zeros(5, np.uint8), np.zeros(256, np.int32),
                   np.zeros(256, np.int32), np.int32(1 << 30), np.int32(-1), 0)


@pytest.mark.parametrize("scales", [(0.05, 0.02, 0.06), (0.01, 0.3, 0.2), (0.1, 0.1, 0.001)])
def test_qadd_forward_equals_simulated_float_within_one(scales, rng):
    """QAdd's tables and multiplier through add_u8: exact vs ref, within 1 code of the float model."""
    sa, sb, so = (np.float32(s) for s in scales)
    layer = qm.QAdd((sa, 3), (sb, 200), (so, 17), relu=True)
    a = rng.integers(0, 256, (2, 9, 9, 16), dtype=np.uint8)
    b = rng.integers(0, 256, (2, 9, 9, 16), dtype=np.uint8)
    got = layer.forward(a, b)
    expected = eltwise.add_u8(a, b, layer.table_a, layer.table_b, layer.multiplier, layer.shift, 17, relu=True)
    np.testing.assert_array_equal(got, expected)
    assert np.abs(got.astype(int) - layer.simulate(a, b).astype(int)).max() <= 1
