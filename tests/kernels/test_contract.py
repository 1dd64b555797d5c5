"""contract.run: the one place a kernel call is bound, checked and handed to a tier's body."""
import inspect

import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels import contract


def _spec(check=None, faster_dtypes=None):
    def reference(x, k, scale=2):
        return x * scale
    return contract.Spec("toy_f32", None, check, lambda rng: [], contract.EXACT, dict(faster_dtypes or {}),
                         inspect.signature(reference))


def test_body_gets_defaults_and_derived_values_by_name():
    seen = {}

    def body(x, scale, twice):              # declares only what it uses, in any order
        seen.update(x=x, scale=scale, twice=twice)
        return x * scale
    call = contract.run(_spec(check=lambda k: {"twice": 2 * k}), body, faster=True)
    assert call(np.ones(2, np.float32), 3) is not None
    assert seen["scale"] == 2 and seen["twice"] == 6


def test_check_can_normalize_an_argument():
    call = contract.run(_spec(check=lambda scale: {"scale": int(scale) + 1}), lambda x, scale: x * scale,
                        faster=True)
    np.testing.assert_array_equal(call(np.ones(2), 1, scale=2.0), [3, 3])


def test_missing_and_unknown_arguments_name_the_signature():
    call = contract.run(_spec(), lambda x: x, faster=False)
    with pytest.raises(TypeError, match="missing required argument.*k"):
        call(np.ones(1))
    with pytest.raises(TypeError, match="unexpected or repeated argument 'sclae'.*x, k, scale"):
        call(np.ones(1), 1, sclae=3)
    with pytest.raises(TypeError, match="repeated argument 'x'"):
        call(np.ones(1), 1, x=2)


def test_faster_dtypes_bind_the_faster_tiers_only():
    spec = _spec(faster_dtypes={"x": np.float32})
    x64 = np.ones(3)
    assert contract.run(spec, lambda x: x, faster=False)(x64, 1) is x64
    with pytest.raises(TypeError, match="x is float64; the numba and c tiers take float32"):
        contract.run(spec, lambda x: x, faster=True)(x64, 1)


def test_a_failing_check_stops_every_tier_with_the_same_message():
    for tier in kernels.registry.tiers("im2col_f32"):
        if kernels.available("im2col_f32", tier):
            with pytest.raises(ValueError, match="does not fit a 2x2 input"):
                kernels.get("im2col_f32", tier)(np.zeros((1, 1, 2, 2), np.float32), 3, 3)


def test_registered_tiers_show_the_reference_signature():
    ref = inspect.signature(kernels.get("maxpool2d_f32", "ref"))
    assert list(ref.parameters) == ["x", "kernel", "stride", "padding", "with_argmax"]
    for tier in kernels.registry.tiers("maxpool2d_f32"):
        if kernels.available("maxpool2d_f32", tier):
            params = list(inspect.signature(kernels.get("maxpool2d_f32", tier)).parameters)
            assert params[:5] == list(ref.parameters)


def test_prepared_call_checks_once_and_matches_the_call():
    checks = []

    def check(x, k):
        checks.append(x.shape)
        return {"twice": 2 * k}
    call = contract.run(_spec(check=check), lambda x, k, scale, twice: x * scale + twice, faster=True)
    x = np.arange(3, dtype=np.float32)
    run = call.prepare(x, 1, scale=3)
    np.testing.assert_array_equal(run(x + 1, 1, scale=3), call(x + 1, 1, scale=3))   # new values, same shape
    assert len(checks) == 2                   # the prepare and the plain call; the runner checked nothing
    with pytest.raises(TypeError, match="positional arguments"):
        run(x, 1, scale=4)                    # keyword arguments are part of what was prepared


def test_prepare_refuses_what_it_cannot_replay():
    call = contract.run(_spec(), lambda x, k: x * k, faster=False)
    with pytest.raises(TypeError, match="pass arrays positionally"):
        call.prepare(np.ones(2), k=np.ones(2))
    rewrites = contract.run(_spec(check=lambda x: {"x": x + 1}), lambda x: x, faster=False)
    with pytest.raises(ValueError, match="rewrites an array argument"):
        rewrites.prepare(np.ones(2), 1)


def test_prepare_still_rejects_bad_arguments():
    gemm = kernels.get("gemm_f32")
    with pytest.raises(ValueError, match="inner dimensions differ"):
        gemm.prepare(np.ones((2, 3), np.float32), np.ones((2, 3), np.float32))


def test_prepared_call_binds_by_name_when_the_body_orders_its_parameters_otherwise():
    call = contract.run(_spec(check=lambda k: {"twice": 2 * k}), lambda twice, x: x + twice, faster=True)
    x = np.arange(3, dtype=np.float32)
    run = call.prepare(x, 5)
    np.testing.assert_array_equal(run(x + 1, 5), x + 11)
