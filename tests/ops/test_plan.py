"""Inference plans (ops/plan.py): the same results as the full path, validation on every bad call,
and a new plan whenever something a plan depends on changes."""
import numpy as np
import pytest

from tinyeff import Tensor, kernels, no_grad, ops
from tinyeff.kernels import settings
from tinyeff.models.cnn import seed_cnn
from tinyeff.ops import plan


def _t(rng, *shape):
    return Tensor(rng.standard_normal(shape).astype(np.float32))


def _graph_free(fn, *args, **kwargs):
    """``fn`` twice without a graph (a plan's first, recording run and a replay) and once with one."""
    with no_grad():
        first, again = fn(*args, **kwargs).data, fn(*args, **kwargs).data
    for a in args:
        if isinstance(a, Tensor):
            a.requires_grad = True
    full = fn(*args, **kwargs)
    assert full.requires_grad            # the full path really ran
    for a in args:
        if isinstance(a, Tensor):
            a.requires_grad = False
    return first, again, full.data


@pytest.mark.parametrize("lowering_mode", ["direct", "gemm"])
@pytest.mark.parametrize("relu", [False, True])
def test_conv2d_plan_matches_the_full_path(lowering_mode, relu, rng, monkeypatch):
    monkeypatch.setenv("TINYEFF_LOWERING", lowering_mode)
    x, w, b = _t(rng, 1, 3, 10, 9), _t(rng, 4, 3, 3, 3), _t(rng, 4)
    first, again, full = _graph_free(ops.conv2d, x, w, b, 1, 1, relu=relu)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, full, rtol=1e-5, atol=1e-5)   # direct vs im2col sums in another order


def test_pool_relu_linear_plans_match_the_full_path(rng):
    x, w, b = _t(rng, 2, 3, 7, 9), _t(rng, 5, 6), _t(rng, 5)
    for fn, args, kwargs in [(ops.max_pool2d, (x, 2), {}), (ops.relu, (x,), {}),
                             (ops.linear, (_t(rng, 3, 6), w, b), {"relu": True})]:
        first, again, full = _graph_free(fn, *args, **kwargs)
        np.testing.assert_array_equal(first, again)
        np.testing.assert_array_equal(first, full)


def test_every_bad_call_is_rejected_not_only_the_first(rng):
    w = _t(rng, 4, 3, 3, 3)
    with no_grad():
        ops.conv2d(_t(rng, 1, 3, 8, 8), w)                # a plan for the good shape
        for _ in range(2):
            with pytest.raises(ValueError, match="input has 2 channels but weight expects 3"):
                ops.conv2d(_t(rng, 1, 2, 8, 8), w)
            with pytest.raises(ValueError, match="the layer expects 6 input features"):
                ops.linear(_t(rng, 1, 5), _t(rng, 2, 6))


def test_plans_read_weights_on_every_call(rng):
    model = seed_cnn().eval()
    x = _t(rng, 1, 3, 32, 32)
    with no_grad():
        before = model(x).data
        model[0].weight.data *= 2                          # in place, as an optimizer step does
        model[9].bias.data += 1
        after = model(x).data
    model[0].weight.data /= 2
    model[9].bias.data -= 1
    with no_grad():
        np.testing.assert_array_equal(model(x).data, before)
    assert not np.allclose(after, before)


def test_a_changed_setting_builds_a_new_plan(rng, monkeypatch):
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))
    x, w = _t(rng, 1, 3, 9, 9), _t(rng, 4, 3, 3, 3)
    plan.forget()                                          # no plan from an earlier test
    asked = []
    real = plan.kernel_for
    monkeypatch.setattr(plan, "kernel_for", lambda name, a: asked.append(name) or real(name, a))
    for mode in ("direct", "gemm", "direct"):
        monkeypatch.setenv("TINYEFF_LOWERING", mode)
        with no_grad():
            ops.conv2d(x, w)
            ops.conv2d(x, w)                               # a replay asks for no kernel
    assert asked == ["conv2d_f32", "im2col_f32_t", "gemm_f32"]   # the third plan was kept


def test_settings_env_reads_set_unset_and_changed(monkeypatch):
    monkeypatch.delenv("TINYEFF_TIER", raising=False)
    assert settings.env("TINYEFF_TIER") is None
    before = settings.snapshot()
    monkeypatch.setenv("TINYEFF_TIER", "ref")
    assert settings.env("TINYEFF_TIER") == "ref" and settings.snapshot() != before
