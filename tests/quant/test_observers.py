"""Observers' arithmetic, qparams edge cases, quantize/dequantize and the fake-quant STE."""
import numpy as np
import pytest

from tinyeff import Tensor
from tinyeff.quant import (MinMaxObserver, MovingAverageMinMaxObserver, MSEObserver, PercentileObserver,
                           compute_qparams, dequantize, fake_quant, make_observer, quantize)


def test_minmax_asymmetric_uint8_arithmetic():
    obs = MinMaxObserver()
    obs.observe(np.array([-1.0, 0.5]))
    obs.observe(np.array([3.0, 2.0]))
    scale, zero_point = obs.qparams()
    assert obs.min_max() == (-1.0, 3.0)
    assert scale == pytest.approx(4.0 / 255)
    assert zero_point == 64                      # round(0 - (-1) / (4 / 255)) = round(63.75)


def test_minmax_symmetric_int8_per_channel():
    w = np.array([[0.5, -1.27], [0.2, 0.1], [0.0, 0.0]], dtype=np.float32)
    obs = MinMaxObserver(dtype="int8", symmetric=True, per_channel=True, axis=0)
    obs.observe(w)
    scale, zero_point = obs.qparams()
    np.testing.assert_allclose(scale, [0.01, 0.2 / 127, 1.0], rtol=1e-6)   # last row is degenerate
    np.testing.assert_array_equal(zero_point, [0, 0, 0])


@pytest.mark.parametrize("value", [0.0, 5.0, -2.0])
def test_constant_range_gives_valid_scale(value):
    obs = MinMaxObserver()
    obs.observe(np.full(10, value))
    scale, zero_point = obs.qparams()
    assert np.isfinite(scale) and scale > 0 and 0 <= zero_point <= 255
    if value == 0.0:
        assert (scale, zero_point) == (1.0, 0)
    q = quantize(np.full(3, value), scale, zero_point)
    np.testing.assert_allclose(dequantize(q, scale, zero_point), value, atol=scale / 2)


def test_compute_qparams_range_always_includes_zero():
    scale, zero_point = compute_qparams(2.0, 4.0)        # positive-only data: 0 must stay exact
    assert zero_point == 0 and scale == pytest.approx(4.0 / 255)


def test_moving_average_update_rule():
    obs = MovingAverageMinMaxObserver(momentum=0.25)
    obs.observe(np.array([0.0, 4.0]))
    obs.observe(np.array([0.0, 8.0]))
    assert obs.min_max() == pytest.approx((0.0, 5.0))     # 0.75 * 4 + 0.25 * 8


def test_percentile_ignores_a_single_outlier(rng):
    x = np.concatenate([rng.uniform(0, 1, 100000), [1000.0]])
    obs = PercentileObserver(percentile=99.9)
    obs.observe(x)
    lo, hi = obs.min_max()
    assert hi < 5.0 and lo == pytest.approx(0.0, abs=1.0)


def test_mse_range_has_lower_error_than_minmax_on_a_long_tail(rng):
    x = np.concatenate([rng.normal(0, 1, 200000), [60.0, -60.0]]).astype(np.float32)
    errors = {}
    for name in ("minmax", "mse"):
        obs = make_observer(name)
        obs.observe(x)
        scale, zero_point = obs.qparams()
        errors[name] = np.mean((dequantize(quantize(x, scale, zero_point), scale, zero_point) - x) ** 2)
    lo, hi = obs.min_max()
    assert hi < 60.0 and lo > -60.0                       # the tail is clipped
    assert errors["mse"] < 0.8 * errors["minmax"]


def test_observer_without_data_is_a_clear_error():
    with pytest.raises(ValueError, match="no data observed"):
        MinMaxObserver().qparams()


def test_unknown_calibration_is_rejected():
    with pytest.raises(ValueError, match="unknown calibration"):
        make_observer("entropy")


def test_quantize_dequantize_round_trip_within_half_step(rng):
    x = rng.uniform(-2, 6, 1000).astype(np.float32)
    scale, zero_point = compute_qparams(x.min(), x.max())
    q = quantize(x, scale, zero_point)
    assert q.dtype == np.uint8
    assert np.max(np.abs(dequantize(q, scale, zero_point) - x)) <= scale / 2 + 1e-6


def test_quantize_per_channel_axis():
    w = np.array([[1.0, -1.0], [0.1, 0.05]], dtype=np.float32)
    q = quantize(w, np.array([1 / 127, 0.1 / 127]), 0, "int8", axis=0)
    np.testing.assert_array_equal(q, [[127, -127], [127, 64]])


def test_fake_quant_forward_on_grid_and_clipped_ste():
    x = Tensor(np.array([-1.0, 0.26, 0.5, 3.0], dtype=np.float32), requires_grad=True)
    y = fake_quant(x, 0.1, 0, "uint8")                 # grid 0..25.5: -1 clamps to 0
    np.testing.assert_allclose(y.data, [0.0, 0.3, 0.5, 3.0], rtol=1e-6)
    (y * Tensor(np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32))).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 3.0, 4.0])   # no gradient where clamped
