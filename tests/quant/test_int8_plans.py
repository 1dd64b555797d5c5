"""Prepared integer layers (qmodules/plans.py): the same codes as the full path on every tier and ISA
path, the one-line error on every bad input, and a new plan whenever a setting it depends on changes."""
import numpy as np
import pytest

from tinyeff import Tensor, kernels, models, no_grad
from tinyeff.kernels import c as c_tier
from tinyeff.kernels import cpu
from tinyeff.quant import qmodules as qm
from tinyeff.quant import quantize_static
from tinyeff.quant.qmodules import plans

SETTINGS = [("TINYEFF_CPU_FEATURES", None), ("TINYEFF_CPU_FEATURES", "avx2,fma"), ("TINYEFF_CPU_FEATURES", ""),
            ("TINYEFF_TIER", "numba"), ("TINYEFF_TIER", "ref")]


def _images(rng, n, c, size):
    return rng.integers(0, 256, (n, c, size, size), dtype=np.uint8)


@pytest.fixture(scope="module")
def int8_models():
    """Small int8 models covering every integer layer kind: the seed CNN (its first conv on the
    small-channel kernel on x86, the rest on the implicit-im2col GEMM, a raw int32 output layer),
    ResNet-8 (residual adds, 1x1 shortcuts) and a pruned seed CNN on the sparse kernels."""
    rng = np.random.default_rng(7)
    seed = models.create("seed-cnn", in_channels=1, num_classes=10, input_size=20).eval()
    resnet = models.create("resnet8", in_channels=3, num_classes=10, width=4).eval()
    images1, images3 = _images(rng, 16, 1, 20), _images(rng, 16, 3, 16)
    from tinyeff.compress import prune
    pruned = prune(models.create("seed-cnn", in_channels=1, num_classes=10, input_size=20).eval(), 0.9, "global")
    return {"seed-cnn": (quantize_static(seed, images1, num_images=16, sparse=False), images1),
            "resnet8": (quantize_static(resnet, images3, num_images=16, sparse=False), images3),
            "pruned": (quantize_static(pruned, images1, num_images=16, sparse=True), images1)}


def _forward(model, x):
    with no_grad():
        return model(Tensor(x)).data


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"{s[0]}={s[1]}")
@pytest.mark.parametrize("name", ["seed-cnn", "resnet8", "pruned"])
def test_prepared_codes_equal_the_full_path(name, setting, int8_models, monkeypatch):
    model, images = int8_models[name]
    variable, value = setting
    if value is None:
        monkeypatch.delenv(variable, raising=False)
    else:
        monkeypatch.setenv(variable, value)
    for batch in (1, 3):
        x = (images[:batch] / np.float32(255)).astype(np.float32)
        monkeypatch.setenv(plans.SWITCH, "0")
        full = _forward(model, x)
        monkeypatch.delenv(plans.SWITCH)
        first, replay = _forward(model, x), _forward(model, x)          # the plan's first run, then a replay
        np.testing.assert_array_equal(first, full)
        np.testing.assert_array_equal(replay, full)


def _conv(rng, c=3, oc=8):
    w = rng.integers(-128, 128, (oc, c, 3, 3), dtype=np.int8)
    return qm.QConv2d(w, np.full(oc, 0.01, np.float32), rng.integers(-500, 500, oc).astype(np.int32),
                      (np.float32(0.02), 3), (np.float32(0.05), 4), padding=1, relu=True)


def test_every_bad_input_gets_the_one_line_error_not_only_the_first(rng):
    conv = _conv(rng)
    conv.forward_nhwc(rng.integers(0, 256, (2, 6, 6, 3), dtype=np.uint8))          # a plan for the good shape
    for _ in range(2):
        with pytest.raises(ValueError, match="activation has K=24 columns but the packed weight has K=36"):
            conv.forward_nhwc(rng.integers(0, 256, (2, 6, 6, 2), dtype=np.uint8))
        with pytest.raises(TypeError, match="expected a uint8 input, got int8"):
            conv.forward_nhwc(rng.integers(-128, 128, (2, 6, 6, 3), dtype=np.int8))
        with pytest.raises(ValueError, match="pool=2 must be >= 1 and fit the 1x1 output"):
            conv.forward_nhwc(rng.integers(0, 256, (2, 1, 1, 3), dtype=np.uint8), pool=2)
    add = qm.QAdd((np.float32(0.05), 10), (np.float32(0.02), 200), (np.float32(0.04), 5))
    a = rng.integers(0, 256, (1, 4, 4, 8), dtype=np.uint8)
    add.forward(a, a)
    for _ in range(2):
        with pytest.raises(ValueError, match="the two inputs must have the same shape"):
            add.forward(a, a[:, :3])


def _reference(layer, x, monkeypatch):
    """``layer.forward_nhwc(x)`` on the reference kernels, every call checked in full."""
    with monkeypatch.context() as m:
        m.setenv(plans.SWITCH, "0")
        m.setenv("TINYEFF_TIER", "ref")
        return layer.forward_nhwc(x)


def test_a_new_batch_size_is_checked_and_gets_its_own_plan(rng, monkeypatch):
    conv = _conv(rng)
    for n in (1, 4, 1):
        x = rng.integers(0, 256, (n, 6, 6, 3), dtype=np.uint8)
        np.testing.assert_array_equal(conv.forward_nhwc(x), _reference(conv, x, monkeypatch))
    assert len(conv._plans) == 2


def _recording(monkeypatch):
    """Record (kernel, tier, ISA path, C threads) each time a plan resolves a kernel."""
    asked = []
    real = plans.kernels.get

    def get(name, *args, **kwargs):
        threads = c_tier.num_threads() if kernels.available(name, "c") else 1
        asked.append((name, kernels.active_tier(name), cpu.best_path(), threads))
        return real(name, *args, **kwargs)
    monkeypatch.setattr(plans.kernels, "get", get)
    return asked


def _uncapped_conv(rng, monkeypatch):
    """A conv layer and an input with no tier or cap set, the kernels it asks for recorded, and
    the widest ISA path."""
    if not kernels.available("conv2d_u8s8_requant_nhwc", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_u8s8_requant_nhwc", "c"))
    monkeypatch.delenv("TINYEFF_TIER", raising=False)
    monkeypatch.delenv("TINYEFF_CPU_FEATURES", raising=False)
    conv, x = _conv(rng), rng.integers(0, 256, (1, 6, 6, 3), dtype=np.uint8)
    return conv, x, _recording(monkeypatch), cpu.best_path()


def test_a_changed_tier_or_isa_cap_builds_a_new_plan(rng, monkeypatch):
    conv, x, asked, best = _uncapped_conv(rng, monkeypatch)
    want = conv.forward_nhwc(x)
    for variable, value in [("TINYEFF_CPU_FEATURES", ""), ("TINYEFF_TIER", "ref")]:
        monkeypatch.setenv(variable, value)
        for _ in range(2):                                     # a replay asks for no kernel
            np.testing.assert_array_equal(conv.forward_nhwc(x), want)
    name = "conv2d_u8s8_requant_nhwc"
    assert [a[:3] for a in asked] == [(name, "c", best), (name, "c", "portable"), (name, "ref", "portable")]


def test_a_changed_thread_count_builds_a_new_plan(rng, monkeypatch):
    if not kernels.available("conv2d_u8s8_requant_nhwc", "c") or not c_tier.has_openmp():
        pytest.skip("needs the C tier with OpenMP")
    conv, x = _conv(rng), rng.integers(0, 256, (2, 6, 6, 3), dtype=np.uint8)
    before = c_tier.num_threads()
    asked = _recording(monkeypatch)
    try:
        for threads in (1, 2, 2):
            c_tier.set_num_threads(threads)
            conv.forward_nhwc(x)
    finally:
        c_tier.set_num_threads(before)
    assert [a[3] for a in asked] == [1, 2]


def test_switch_off_checks_every_call(rng, monkeypatch):
    conv, x = _conv(rng), rng.integers(0, 256, (1, 6, 6, 3), dtype=np.uint8)
    monkeypatch.setenv(plans.SWITCH, "0")
    asked = _recording(monkeypatch)
    conv.forward_nhwc(x)
    conv.forward_nhwc(x)
    assert len(asked) == 2 and len(conv._plans) == 0


def test_a_copied_layer_prepares_its_own_calls(rng, monkeypatch):
    import copy
    conv, x = _conv(rng), rng.integers(0, 256, (1, 6, 6, 3), dtype=np.uint8)
    before = conv.forward_nhwc(x)
    twin = copy.deepcopy(conv)
    assert len(twin._plans) == 0
    twin.bias_q[:] = -2**20                             # its own arrays, not the original's
    got = twin.forward_nhwc(x)
    np.testing.assert_array_equal(got, _reference(twin, x, monkeypatch))
    assert not np.array_equal(got, before)
    np.testing.assert_array_equal(conv.forward_nhwc(x), before)


def test_one_pass_reads_the_settings_once_and_the_next_pass_again(rng, monkeypatch):
    """A model's forward reads the settings half of its plan keys once: a cap set inside the pass
    takes effect from the next pass (the one place a forward may differ from kernel-by-kernel)."""
    conv, x, asked, best = _uncapped_conv(rng, monkeypatch)
    want = conv.forward_nhwc(x)
    with plans.one_pass():
        conv.forward_nhwc(x)
        monkeypatch.setenv("TINYEFF_CPU_FEATURES", "")
        np.testing.assert_array_equal(conv.forward_nhwc(x), want)     # still the plan made before the cap
    np.testing.assert_array_equal(conv.forward_nhwc(x), want)         # the next pass sees the cap
    name = "conv2d_u8s8_requant_nhwc"
    assert [a[:3] for a in asked] == [(name, "c", best), (name, "c", "portable")]


def test_a_model_forward_is_one_pass_and_equals_the_per_call_path(int8_models):
    model, images = int8_models["seed-cnn"]
    x = Tensor(images[:2].astype(np.float32) / 255)
    with no_grad():
        np.testing.assert_array_equal(model(x).data, model._forward(x).data)
