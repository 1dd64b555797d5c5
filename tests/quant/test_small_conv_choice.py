"""QConv2d's choice between the small-channel kernel and the implicit-im2col GEMM conv for a first layer.

On the x86 vector paths (``QConv2d.SMALL_ISAS``) the choice is fixed. On the small kernel's other paths
(ARM64 NEON, portable) the layer times both once, on the first batch it sees, and keeps the outcome. This
machine is x86, so the race is reached by emptying ``SMALL_ISAS``; the two kernels give the same codes,
so whichever wins, the outputs must not change.
"""
import numpy as np
import pytest

from tinyeff import Tensor, data, io, kernels, manual_seed, models, no_grad
from tinyeff.kernels import registry
from tinyeff.quant import qmodules as qm
from tinyeff.quant import quantize_static
from tinyeff.quant.qio import save_quantized
from tinyeff.quant.qmodules import weighted

NAME = "conv2d_u8s8_smallc_nhwc"


def _first_layer(rng, c=3, oc=32):
    wq = rng.integers(-128, 128, (oc, c, 3, 3), dtype=np.int8)
    return qm.QConv2d(wq, rng.uniform(1e-3, 1e-2, oc).astype(np.float32), rng.integers(-999, 999, oc).astype(np.int32),
                      (np.float32(0.02), 3), (np.float32(0.1), 0), padding=1, relu=True)


def _gemm_codes(layer, x, pool):
    return kernels.get("conv2d_u8s8_requant_nhwc")(x, layer.packed, 3, 3, layer.stride, layer.padding,
                                                    layer.in_qparams[1], layer.bias_q, layer.multiplier, layer.shift,
                                                    layer.out_qparams[1], pool=pool, relu=True)


@pytest.fixture
def counted_race(monkeypatch):
    """``weighted.race`` as it is, counting its calls."""
    calls = []

    def race(fns, repeats):
        calls.append(len(fns))
        return real(fns, repeats)
    real = weighted.race
    monkeypatch.setattr(weighted, "race", race)
    return calls


def _needs_c():
    if not kernels.available(NAME, "c"):
        pytest.skip(kernels.why_unavailable(NAME, "c"))


def test_x86_vector_paths_keep_the_fixed_choice(rng, counted_race):
    _needs_c()
    if registry.best_isa(NAME, "c") not in qm.QConv2d.SMALL_ISAS:
        pytest.skip(f"{NAME} runs on {registry.best_isa(NAME, 'c')} here, not on {qm.QConv2d.SMALL_ISAS}")
    layer, x = _first_layer(rng), rng.integers(0, 256, (3, 12, 12, 3), dtype=np.uint8)
    np.testing.assert_array_equal(layer.forward_nhwc(x, pool=2), _gemm_codes(layer, x, 2))
    assert counted_race == [] and layer.small_choice == {} and "small" in layer._twin


def test_race_decides_once_per_pool_with_the_same_codes(rng, monkeypatch, counted_race):
    _needs_c()
    monkeypatch.setattr(qm.QConv2d, "SMALL_ISAS", ())
    layer, x = _first_layer(rng), rng.integers(0, 256, (5, 14, 13, 3), dtype=np.uint8)
    isa = registry.best_isa(NAME, "c")
    for _ in range(2):
        np.testing.assert_array_equal(layer.forward_nhwc(x, pool=2), _gemm_codes(layer, x, 2))
    assert counted_race == [2]                                   # timed once, on the first call
    choice = layer.small_choice[(isa, 2)]
    assert isinstance(choice["small"], bool) and choice["small_s"] > 0 and choice["gemm_s"] > 0
    np.testing.assert_array_equal(layer.forward_nhwc(x[:1]), _gemm_codes(layer, x[:1], 1))
    assert counted_race == [2, 2] and set(layer.small_choice) == {(isa, 2), (isa, 1)}


@pytest.mark.parametrize("winner", [0, 1])
def test_the_winner_runs_the_layer(rng, monkeypatch, winner):
    """A race won by the small kernel (0) sends later calls to it; won by the GEMM (1), to the GEMM."""
    _needs_c()
    monkeypatch.setattr(qm.QConv2d, "SMALL_ISAS", ())
    monkeypatch.setattr(weighted, "race", lambda fns, repeats: ([1e-3, 1e-3], winner, [1.0, 1.0]))
    layer, x = _first_layer(rng, c=1, oc=16), rng.integers(0, 256, (2, 11, 11, 1), dtype=np.uint8)
    ran = []
    for kind in ("small", "gemm"):
        def spy(*args, kind=kind, original=getattr(layer, f"_conv_{kind}")):
            ran.append(kind)
            return original(*args)
        monkeypatch.setattr(layer, f"_conv_{kind}", spy)
    out = layer.forward_nhwc(x, pool=2)
    assert ran == [("small", "gemm")[winner]]
    np.testing.assert_array_equal(out, _gemm_codes(layer, x, 2))


def test_no_race_on_an_empty_batch_or_off_the_c_tier(rng, monkeypatch, counted_race):
    _needs_c()
    monkeypatch.setattr(qm.QConv2d, "SMALL_ISAS", ())
    layer = _first_layer(rng)
    assert layer.forward_nhwc(np.zeros((0, 9, 9, 3), np.uint8), pool=2).shape == (0, 4, 4, 32)
    monkeypatch.setenv("TINYEFF_TIER", "ref")
    x = rng.integers(0, 256, (1, 9, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(layer.forward_nhwc(x, pool=2), _gemm_codes(layer, x, 2))
    assert counted_race == [] and layer.small_choice == {}


def test_decided_at_quantize_time_and_again_after_loading(monkeypatch, tmp_path, counted_race):
    """quantize_static times its kernels on the calibration batch, which decides the first layer; the
    file keeps no timing (it belongs to the machine), so a loaded model decides on its first batch."""
    _needs_c()
    monkeypatch.setattr(qm.QConv2d, "SMALL_ISAS", ())
    train, test = data.load("synthetic", n_train=48, n_test=16, shape=(1, 20, 20))
    manual_seed(0)
    model = models.create("seed-cnn", in_channels=1, num_classes=10, input_size=20, width=0.5)   # 16 first channels
    qmodel = quantize_static(model, train, num_images=32)
    first = next(m for m in qmodel.body.modules() if isinstance(m, qm.QConv2d))
    assert len(first.small_choice) == 1
    save_quantized(qmodel, tmp_path / "q.npz")
    loaded = io.load(tmp_path / "q.npz")
    loaded_first = next(m for m in loaded.body.modules() if isinstance(m, qm.QConv2d))
    assert loaded_first.small_choice == {}
    x = Tensor(test.images.astype(np.float32) / 255.0)
    with no_grad():
        np.testing.assert_array_equal(loaded(x).data, qmodel(x).data)
    assert len(loaded_first.small_choice) == 1
