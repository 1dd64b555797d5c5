"""The integer layers against an independent NumPy reference, with extreme and saturating inputs."""
import numpy as np
import pytest

from tinyeff.quant import qmodules as qm


def _sqrdmulh(x, m):
    """gemmlowp SaturatingRoundingDoublingHighMul in Python ints: round(x * m / 2**31), ties toward +inf."""
    prod = x * m
    return (prod + (1 << 30)) >> 31 if prod >= 0 else -((-prod + (1 << 30) - 1) >> 31)


def _rdivpot(x, right):
    """gemmlowp RoundingDivideByPOT in Python ints: x / 2**right, ties away from zero."""
    half = (1 << (right - 1)) if right else 0
    return (x + half) >> right if x >= 0 else -((-x + half) >> right)


def _reference_requant(acc, real_multiplier, zero_point_out, relu):
    """Requantize int accumulators (last axis = channel) one element at a time in Python ints."""
    from tinyeff.kernels.layout.fixed_point import quantize_multiplier
    real = np.broadcast_to(np.asarray(real_multiplier, np.float64), (acc.shape[-1],))
    m, shift = quantize_multiplier(real)
    out = np.empty(acc.shape, dtype=np.int64)
    for idx in np.ndindex(acc.shape):
        c = idx[-1]
        x = max(min(int(acc[idx]), 2**31 - 1), -2**31) << max(int(shift[c]), 0)
        x = max(min(x, 2**31 - 1), -2**31)
        out[idx] = _rdivpot(_sqrdmulh(x, int(m[c])), max(-int(shift[c]), 0))
    lo = zero_point_out if relu else 0
    return np.clip(out + zero_point_out, lo, 255).astype(np.uint8)


def _reference_linear(q, w_q, bias_q, z_in):
    return (q.astype(np.int64) - z_in) @ w_q.astype(np.int64).T + bias_q


@pytest.mark.parametrize("x_value,w_value", [(255, 127), (255, -128), (0, 127), (0, -128)])
@pytest.mark.parametrize("relu", [False, True])
def test_qlinear_extremes_saturate_and_match_reference(x_value, w_value, relu):
    n_in, n_out = 67, 5
    q = np.full((3, n_in), x_value, dtype=np.uint8)
    w_q = np.full((n_out, n_in), w_value, dtype=np.int8)
    bias_q = np.array([0, 1000, -1000, 2**20, -2**20], dtype=np.int32)
    in_qp, out_qp = (np.float32(0.02), 37), (np.float32(0.001), 128)     # tiny out scale: saturates
    layer = qm.QLinear(w_q, np.full(n_out, 0.01, np.float32), bias_q, in_qp, out_qp, relu=relu)
    acc = _reference_linear(q, w_q, bias_q, 37)
    expected = _reference_requant(acc, np.float64(0.02) * np.float32(0.01) / np.float64(np.float32(0.001)),
                                  128, relu)
    got = layer.forward(q)
    np.testing.assert_array_equal(got, expected)
    assert set(np.unique(got)) <= {0, 128, 255} or not relu


def test_qlinear_random_matches_reference_exactly(rng):
    q = rng.integers(0, 256, (9, 33), dtype=np.uint8)
    w_q = rng.integers(-128, 128, (7, 33), dtype=np.int8)
    bias_q = rng.integers(-5000, 5000, 7).astype(np.int32)
    scales = rng.uniform(0.001, 0.02, 7).astype(np.float32)
    layer = qm.QLinear(w_q, scales, bias_q, (np.float32(0.05), 100), (np.float32(0.3), 20), relu=False)
    real = np.float64(np.float32(0.05)) * scales.astype(np.float64) / np.float64(np.float32(0.3))
    expected = _reference_requant(_reference_linear(q, w_q, bias_q, 100), real, 20, False)
    np.testing.assert_array_equal(layer.forward(q), expected)


def test_qlinear_raw_output_is_exact_int32(rng):
    q = rng.integers(0, 256, (4, 20), dtype=np.uint8)
    w_q = rng.integers(-128, 128, (3, 20), dtype=np.int8)
    bias_q = rng.integers(-100, 100, 3).astype(np.int32)
    layer = qm.QLinear(w_q, np.full(3, 0.1, np.float32), bias_q, (np.float32(0.1), 255), None)
    np.testing.assert_array_equal(layer.forward(q), _reference_linear(q, w_q, bias_q, 255))


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1)])
def test_qconv2d_matches_reference_with_zero_point_padding(rng, stride, padding):
    q = rng.integers(0, 256, (2, 3, 7, 6), dtype=np.uint8)
    q[0] = 255                                                     # one all-255 image
    w_q = rng.integers(-128, 128, (4, 3, 3, 3), dtype=np.int8)
    w_q[1] = -128
    bias_q = rng.integers(-3000, 3000, 4).astype(np.int32)
    scales = rng.uniform(0.001, 0.01, 4).astype(np.float32)
    in_qp, out_qp = (np.float32(0.04), 17), (np.float32(0.2), 3)
    layer = qm.QConv2d(w_q, scales, bias_q, in_qp, out_qp, stride, padding, relu=True)
    xp = np.pad(q, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=17)
    oh, ow = (7 + 2 * padding - 3) // stride + 1, (6 + 2 * padding - 3) // stride + 1
    acc = np.zeros((2, oh, ow, 4), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + 3, j * stride:j * stride + 3].reshape(2, -1)
            acc[:, i, j] = _reference_linear(patch, w_q.reshape(4, -1), bias_q, 17)
    real = np.float64(np.float32(0.04)) * scales.astype(np.float64) / np.float64(np.float32(0.2))
    expected = _reference_requant(acc, real, 3, True).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(layer.forward(q), expected)


def test_qadd_matches_float_within_one_and_saturates(rng):
    a = rng.integers(0, 256, (2, 3, 4, 5), dtype=np.uint8)
    b = rng.integers(0, 256, (2, 3, 4, 5), dtype=np.uint8)
    a[0], b[0] = 255, 255                                          # saturate the top
    add = qm.QAdd((np.float32(0.05), 10), (np.float32(0.02), 200), (np.float32(0.04), 5), relu=True)   # 0.05*245 + 0.02*55 > 0.04*250
    got, sim = add.forward(a, b).astype(int), add.simulate(a, b).astype(int)
    assert np.max(np.abs(got - sim)) <= 1
    assert np.all(got[0] == 255)
    assert got.min() >= 5                                          # ReLU: clamp at the output zero point


def test_global_avg_pool_rounds_half_up_in_both_paths(rng):
    q = rng.integers(0, 256, (3, 4, 7, 7), dtype=np.uint8)
    pool = qm.QGlobalAvgPool()
    np.testing.assert_array_equal(pool.forward(q), pool.simulate(q))
    np.testing.assert_array_equal(pool.forward(np.full((1, 1, 2, 2), 255, np.uint8)), [[[[255]]]])
