"""Precision policies: bfloat16 rounding, float16 gradients vs float32, loss scaling, activation memory."""
import ml_dtypes
import numpy as np
import pytest

from tinyeff import nn, ops, optim, train
from tinyeff.data import load
from tinyeff.loss_scale import DynamicLossScaler
from tinyeff.precision import (MixedBFloat16Policy, MixedFloat16Policy, bf16_round, get_policy, names,
                               round_to_bfloat16, saved_bytes)
from tinyeff.random import manual_seed
from tinyeff.tensor import Tensor


def tiny_cnn(batch_norm=True):
    layers = [nn.Conv2d(1, 4, 3, bias=not batch_norm)]   # a bias before BN has a zero gradient
    layers += [nn.BatchNorm2d(4)] if batch_norm else []
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 5)]
    return nn.Sequential(*layers)


def batch(rng, n=6):
    return rng.standard_normal((n, 1, 10, 10)).astype(np.float32), rng.integers(0, 5, n)


def master_grads(model, policy, x, y):
    policy.prepare(model)
    opt = optim.SGD(model.parameters(), lr=1e-9)   # tiny step: the gradients are what we compare
    loss = ops.cross_entropy(model(policy.forward_input(x)), y)
    opt.zero_grad()
    assert policy.backward_and_step(loss, opt)
    return [p.grad.copy() for p in model.parameters()]


# --- bfloat16 rounding --------------------------------------------------------------------------------
def test_round_to_bfloat16_matches_ml_dtypes(rng):
    values = rng.standard_normal(1000).astype(np.float32) * np.float32(10.0) ** rng.integers(-30, 30, 1000)
    high = rng.integers(0, 2 ** 16, 200, dtype=np.uint32) << 16
    ties = (high | 0x8000).view(np.float32)                      # exactly half-way: ties go to even
    specials = np.array([0.0, -0.0, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-40, 1.00390625], np.float32)
    x = np.concatenate([values, ties[np.isfinite(ties)], specials])
    expected = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(round_to_bfloat16(x).view(np.uint32), expected.view(np.uint32))


def test_round_to_bfloat16_keeps_nan():
    assert np.isnan(round_to_bfloat16(np.array([np.nan], np.float32))).all()


def test_bf16_round_rounds_the_gradient_too():
    t = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    out = bf16_round(t)
    out.backward(np.array([1.00390625, 1.01171875], np.float32))   # 1 + 2^-8 (tie -> 1), 1 + 3*2^-8 (-> 1 + 2^-6)
    np.testing.assert_array_equal(t.grad, [1.0, 1.015625])


# --- policies by name ---------------------------------------------------------------------------------
def test_get_policy_knows_the_three_names():
    assert names() == ["float32", "mixed_float16", "mixed_bfloat16"]
    assert isinstance(get_policy("mixed_float16"), MixedFloat16Policy)
    assert get_policy(None).name == "float32"


def test_get_policy_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        get_policy("fp8")


# --- the float16 path ---------------------------------------------------------------------------------
def test_mixed_float16_runs_float16_with_float32_masters(rng):
    model, policy = tiny_cnn(), MixedFloat16Policy(DynamicLossScaler(init_scale=2.0 ** 8))
    seen = {}
    model[0].register_forward_hook(lambda m, i, o: seen.setdefault("conv", o.dtype))
    model[5].register_forward_hook(lambda m, i, o: seen.setdefault("linear", o.dtype))
    grads = master_grads(model, policy, *batch(rng))
    assert seen == {"conv": np.float16, "linear": np.float16}
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert all(g.dtype == np.float32 for g in grads)


def test_mixed_float16_gradients_match_float32(rng):
    x, y = batch(rng)
    reference = tiny_cnn()
    state = reference.state_dict()
    g32 = master_grads(reference, get_policy("float32"), x, y)
    mixed = tiny_cnn()
    mixed.load_state_dict(state)
    g16 = master_grads(mixed, MixedFloat16Policy(DynamicLossScaler(init_scale=2.0 ** 10)), x, y)
    for (name, _), a, b in zip(mixed.named_parameters(), g16, g32):
        # float16 keeps 11 significant bits (rel. error 2^-11 per rounding) and the error compounds
        # over a few layers, so 2% of the largest gradient entry is the float16 tolerance here
        np.testing.assert_allclose(a, b, rtol=2e-2, atol=2e-2 * np.abs(b).max(), err_msg=name)


def test_mixed_float16_evaluates_in_float32_on_master_weights(rng):
    model, policy = tiny_cnn(), get_policy("mixed_float16")
    policy.prepare(model)
    model.eval()
    out = model(Tensor(batch(rng)[0]))
    assert out.dtype == np.float32


def test_release_removes_the_transforms():
    model, policy = tiny_cnn(), get_policy("mixed_float16")
    policy.prepare(model)
    policy.release(model)
    assert all(not m.param_transforms(n) for m in model.modules() for n in m._parameters)


# --- loss scaling -------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")   # the overflow is the point
def test_overflow_skips_the_step_and_halves_the_scale(rng):
    model = nn.Sequential(nn.Flatten(), nn.Linear(100, 5))
    policy = MixedFloat16Policy(DynamicLossScaler(init_scale=2.0 ** 16))
    policy.prepare(model)
    opt = optim.SGD(model.parameters(), lr=0.1)
    before = [p.data.copy() for p in model.parameters()]
    x = np.full((8, 1, 10, 10), 1000.0, np.float32)       # 2^16 * 1000 / 8 per entry: far above 65504
    loss = ops.cross_entropy(model(policy.forward_input(x)), rng.integers(0, 5, 8))
    stepped = policy.backward_and_step(loss, opt)
    assert not stepped
    assert policy.scaler.scale == 2.0 ** 15
    assert policy.report()["skipped_steps"] == 1
    assert opt.step_count == 0 and all(p.grad is None for p in model.parameters())
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_scale_backs_off_until_a_step_succeeds(rng):
    model = nn.Sequential(nn.Flatten(), nn.Linear(100, 5))
    policy = MixedFloat16Policy(DynamicLossScaler(init_scale=2.0 ** 24))
    policy.prepare(model)
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = np.full((8, 1, 10, 10), 10.0, np.float32), rng.integers(0, 5, 8)
    results = []
    for _ in range(20):
        loss = ops.cross_entropy(model(policy.forward_input(x)), y)
        opt.zero_grad()
        results.append(policy.backward_and_step(loss, opt))
        if results[-1]:
            break
    assert results[-1] and not results[0]
    assert policy.scaler.scale == 2.0 ** 24 * 0.5 ** (len(results) - 1)
    assert opt.step_count == 1


def test_scale_grows_after_growth_interval_good_steps():
    scaler = DynamicLossScaler(init_scale=8.0, growth_interval=3)
    for _ in range(3):
        scaler.update(found_inf=False)
    assert scaler.scale == 16.0 and scaler.good_steps == 0
    scaler.update(found_inf=True)
    assert scaler.scale == 8.0 and scaler.skipped_steps == 1


def test_loss_scaling_rescues_gradients_that_underflow_in_float16(rng):
    x, y = rng.standard_normal((4, 1, 10, 10)).astype(np.float32), rng.integers(0, 5, 4)
    grads = {}
    for scale in (1.0, 2.0 ** 16):
        model = nn.Sequential(nn.Flatten(), nn.Linear(100, 5))
        model[1].weight.data[...] = 0.01
        policy = MixedFloat16Policy(DynamicLossScaler(init_scale=scale))
        policy.prepare(model)
        loss = ops.cross_entropy(model(policy.forward_input(x)), y) * 1e-8   # dloss/dlogits ~1e-9
        policy.backward_and_step(loss, optim.SGD(model.parameters(), lr=1e-9))
        grads[scale] = model[1].weight.grad
    assert np.count_nonzero(grads[1.0]) == 0                  # below float16's smallest subnormal (6e-8)
    assert np.count_nonzero(grads[2.0 ** 16]) == grads[2.0 ** 16].size


def test_scaler_rejects_bad_settings():
    with pytest.raises(ValueError, match="backoff_factor"):
        DynamicLossScaler(backoff_factor=2.0)


# --- memory -------------------------------------------------------------------------------------------
def test_saved_bytes_skips_parameters_and_counts_kept_arrays():
    w = nn.Parameter(np.ones((3, 4), np.float32))
    x = Tensor(np.ones((5, 3), np.float32))
    out = ops.relu(ops.matmul(x, w))
    # x (60 bytes) + the matmul output kept as relu's parent (80) + the output itself (80), which
    # relu's backward also reads (its mask is rebuilt from it); w is model state, not an activation
    assert saved_bytes(out) == 60 + 80 + 80


def test_activation_memory_is_lower_in_mixed_float16(rng):
    x, y = batch(rng, n=16)
    measured = {}
    for name in ("float32", "mixed_float16"):
        policy = get_policy(name, **({"scaler": DynamicLossScaler(2.0 ** 8)} if name != "float32" else {}))
        master_grads(tiny_cnn(), policy, x, y)
        measured[name] = policy.report()["activation_bytes"]
    assert 0 < measured["mixed_float16"] < 0.8 * measured["float32"]


# --- bfloat16 emulation -------------------------------------------------------------------------------
def test_mixed_bfloat16_rounds_layer_outputs_to_bfloat16(rng):
    model, policy = tiny_cnn(), MixedBFloat16Policy()
    outputs = []
    model[1].register_forward_pre_hook(lambda m, i: outputs.append(i[0].data))  # the conv output, as BN sees it
    grads = master_grads(model, policy, *batch(rng))
    np.testing.assert_array_equal(outputs[0], round_to_bfloat16(outputs[0]))
    np.testing.assert_array_equal(grads[0], round_to_bfloat16(grads[0]))


def test_mixed_bfloat16_gradients_match_float32(rng):
    # NOTE: the init draws from the global generator; seed it so the result does not depend on which
    # tests ran before (the 5% bound fails for about 6 of 20 init seeds)
    manual_seed(0)
    x, y = batch(rng)
    reference = tiny_cnn()
    state = reference.state_dict()
    g32 = master_grads(reference, get_policy("float32"), x, y)
    emulated = tiny_cnn()
    emulated.load_state_dict(state)
    gbf = master_grads(emulated, get_policy("mixed_bfloat16"), x, y)
    for a, b in zip(gbf, g32):
        # bfloat16 keeps 8 significant bits (rel. error 2^-8 per rounding), but batch norm over a
        # 6-image batch amplifies the rounding of a few entries (up to 16% of the tensor's norm over
        # 30 seeds), so the check is on the whole tensor: the direction and size of the gradient.
        assert np.linalg.norm(a - b) <= 0.25 * np.linalg.norm(b)
        assert float(np.dot(a.ravel(), b.ravel())) >= 0.95 * np.linalg.norm(a) * np.linalg.norm(b)


# --- with the training loop ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mixed_float16", "mixed_bfloat16"])
def test_fit_reports_precision(name):
    tr, te = load("synthetic", n_train=64, n_test=32, shape=(1, 8, 8), num_classes=3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3))
    metrics = train.fit(model, tr, te, epochs=1, batch_size=32, precision=get_policy(name), progress=False)
    report = metrics["precision"]
    assert report["precision"] == name and report["steps"] == 2 and report["activation_bytes"] > 0
    assert metrics["final_test_accuracy"] is not None
