"""Conv lowering chosen by measurement (kernels/conv/lowering.py) and the ReLU fused into inference."""
import json

import numpy as np
import pytest

from tinyeff import Tensor, kernels, nn, no_grad, ops
from tinyeff.kernels.conv import lowering
from tinyeff.models.cnn import seed_cnn
from tinyeff.ops.conv import pass_on_random_data as RUN

GEOMETRY = (2, 3, 9, 9, 4, 3, 3, 1, 1, 1)      # N, C, H, W, OC, KH, KW, stride, padding, dilation


def _need_direct():
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))


def test_forced_modes_are_obeyed(monkeypatch):
    _need_direct()
    monkeypatch.setenv("TINYEFF_LOWERING", "gemm")
    assert {lowering.choose(p, GEOMETRY, RUN) for p in lowering.PASSES} == {"gemm"}
    monkeypatch.setenv("TINYEFF_LOWERING", "direct")
    assert {lowering.choose(p, GEOMETRY, RUN) for p in lowering.PASSES} == {"direct"}
    strided = GEOMETRY[:7] + (2, 1, 1)         # no direct input gradient for stride 2
    assert lowering.choose("input_grad", strided, RUN) == "gemm"


def test_bad_mode_and_pass_name_the_fix(monkeypatch):
    monkeypatch.setenv("TINYEFF_LOWERING", "fastest")
    with pytest.raises(ValueError, match="TINYEFF_LOWERING='fastest'"):
        lowering.choose("forward", GEOMETRY, RUN)
    monkeypatch.setenv("TINYEFF_LOWERING", "gemm")
    with pytest.raises(ValueError, match="not one of"):
        lowering.choose("backward", GEOMETRY, RUN)


def test_measure_times_both_and_caches_per_machine(monkeypatch, tmp_path):
    _need_direct()
    monkeypatch.setenv("TINYEFF_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TINYEFF_LOWERING", "measure")
    lowering._measured.cache_clear()
    calls = []
    real = lowering.measure
    monkeypatch.setattr(lowering, "measure", lambda *a: calls.append(a) or real(*a))
    choices = [lowering.choose(p, GEOMETRY, RUN) for p in lowering.PASSES]
    assert set(choices) <= {"direct", "gemm"} and len(calls) == 3
    lowering._measured.cache_clear()            # a new process: the file answers, no new timing
    assert [lowering.choose(p, GEOMETRY, RUN) for p in lowering.PASSES] == choices and len(calls) == 3
    entries = json.loads((tmp_path / lowering.CACHE_FILE).read_text())
    assert len(entries) == 3
    for key, result in entries.items():
        assert all(f"{part}=" in key for part in ("cpu", "isa", "threads", "tinyeff", "build"))
        assert result["choice"] == ("direct" if result["direct_over_gemm"] <= 1 else "gemm")
    lowering._measured.cache_clear()


@pytest.fixture
def relu_requests(monkeypatch):
    """The ``relu`` argument of every forward pass ops.conv2d runs."""
    from tinyeff.ops import conv as conv_op
    seen, real = [], conv_op.forward_pass

    def spy(*args, relu=False, **kwargs):
        seen.append(relu)
        return real(*args, relu=relu, **kwargs)
    monkeypatch.setattr(conv_op, "forward_pass", spy)
    return seen


@pytest.mark.parametrize("lowering_mode", ["direct", "gemm"])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_relu_equals_conv_then_relu(lowering_mode, bias, rng, monkeypatch, relu_requests):
    monkeypatch.setenv("TINYEFF_LOWERING", lowering_mode)
    x = Tensor(rng.standard_normal((2, 3, 11, 10)).astype(np.float32))
    w = Tensor(rng.standard_normal((5, 3, 3, 3)).astype(np.float32))
    b = Tensor(rng.standard_normal(5).astype(np.float32)) if bias else None
    with no_grad():
        fused = ops.conv2d(x, w, b, 1, 1, relu=True)
        plain = ops.relu(ops.conv2d(x, w, b, 1, 1))
    assert relu_requests == [True, False]
    np.testing.assert_array_equal(fused.data, plain.data)   # same kernel, ReLU in its store


def test_relu_is_not_fused_when_a_gradient_is_recorded(rng, relu_requests):
    x = Tensor(rng.standard_normal((1, 2, 6, 6)).astype(np.float32))
    w = Tensor(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), requires_grad=True)
    out = ops.conv2d(x, w, relu=True)
    assert relu_requests == [False] and out.op == "relu" and out.requires_grad
    out.sum().backward()
    assert w.grad is not None


def test_sequential_fuses_conv_relu_in_inference(rng, relu_requests):
    model = seed_cnn()
    x = Tensor(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    with no_grad():
        fused = model(x).data
        assert relu_requests == [True, True, True]     # all three Conv2d-ReLU pairs
        seen = []
        handle = model[0].register_forward_hook(lambda m, i, o: seen.append(bool((o.data < 0).any())))
        unfused = model(x).data              # a hook on the conv: it must see the plain output
        handle.remove()
    assert seen == [True] and relu_requests[3:] == [False, True, True]
    np.testing.assert_allclose(fused, unfused, rtol=1e-6, atol=1e-6)
    assert isinstance(model[1], nn.ReLU)
    model(x)                                 # training mode, gradients recorded: never fused
    assert relu_requests[6:] == [False, False, False]


@pytest.fixture
def pool_requests(monkeypatch):
    """The ``pool`` argument of every forward pass ops.conv2d runs."""
    from tinyeff.ops import conv as conv_op
    seen, real = [], conv_op.forward_pass

    def spy(*args, pool=1, **kwargs):
        seen.append(pool)
        return real(*args, pool=pool, **kwargs)
    monkeypatch.setattr(conv_op, "forward_pass", spy)
    return seen


def test_sequential_fuses_the_max_pool_in_inference(rng, monkeypatch, pool_requests):
    _need_direct()
    monkeypatch.setenv("TINYEFF_LOWERING", "direct")
    model = seed_cnn()
    x = Tensor(rng.standard_normal((3, 3, 32, 32)).astype(np.float32))
    with no_grad():
        fused = model(x).data
        assert pool_requests == [2, 2, 1]          # conv-ReLU-pool twice, then conv-ReLU
        handle = model[2].register_forward_hook(lambda m, i, o: None)
        hooked = model(x).data                     # a hook on the first pool: it must run on its own
        handle.remove()
    assert pool_requests[3:] == [1, 2, 1]
    np.testing.assert_array_equal(fused, hooked)   # the same sums, max, bias and ReLU in another order
    model(x)                                       # gradients recorded: nothing fused
    assert pool_requests[6:] == [1, 1, 1]


def test_overlapping_or_padded_pools_are_not_fused(rng, pool_requests):
    layers = [nn.Conv2d(2, 4, 3), nn.ReLU()]
    x = Tensor(rng.standard_normal((1, 2, 12, 12)).astype(np.float32))
    with no_grad():
        for pool in (nn.MaxPool2d(3, stride=2), nn.MaxPool2d(2, padding=1)):
            model = nn.Sequential(*layers, pool)
            np.testing.assert_array_equal(model(x).data, pool(layers[1](layers[0](x))).data)
    assert pool_requests == [1, 1, 1, 1]
