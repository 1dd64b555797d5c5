"""``activation_bits=7``: every activation code in [0, 127] (PyTorch's reduce_range), recorded in the
model header and the model file; the same logits on every int8 GEMM path; the CLI flag."""
import json

import numpy as np
import pytest

from tinyeff import Tensor, io, kernels, models, no_grad
from tinyeff.cli import main
from tinyeff.quant import quantize_static, save_quantized
from tinyeff.quant import qmodules as qm


def _seed_cnn(rng, activation_bits, weight_bits=8, in_channels=1, size=28):
    model = models.create("seed-cnn", in_channels=in_channels, num_classes=10, input_size=size, width=0.5).eval()
    images = rng.integers(0, 256, (32, in_channels, size, size), dtype=np.uint8)
    return quantize_static(model, images, num_images=32, weight_bits=weight_bits,
                           activation_bits=activation_bits), images


def _activations(qmodel, images):
    """Every uint8 tensor the integer body produces, the quantized input first."""
    seen = []
    hooks = [layer.register_forward_hook(lambda m, i, o: seen.append(o)) for layer in qmodel.body.layers]
    q = qmodel.quantize_input(images.astype(np.float32) / 255)
    qmodel.forward_int(q)
    for h in hooks:
        h.remove()
    return [q] + [o for o in seen if o.dtype == np.uint8]


def test_activation_bits_7_every_code_below_128(rng):
    qmodel, images = _seed_cnn(rng, 7)
    assert qmodel.info["activation_bits"] == 7 and qmodel.input_qmax == 127
    acts = _activations(qmodel, images)
    assert len(acts) >= 4 and all(int(a.max()) <= 127 for a in acts)
    # the calibrated range maps to the full 7-bit grid: the codes reach 127 somewhere
    assert max(int(a.max()) for a in acts) == 127
    full, _ = _seed_cnn(np.random.default_rng(0), 8)
    assert max(int(a.max()) for a in _activations(full, images)) > 127


def test_activation_bits_7_matches_its_float_reference(rng):
    qmodel, images = _seed_cnn(rng, 7)
    x = Tensor(images[:16].astype(np.float32) / 255)
    with no_grad():
        got = qmodel(x).data
        qmodel.simulate = True
        want = qmodel(x).data
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 0.05 * scale     # integer vs float64 rounding (one code per layer)


def test_activation_bits_7_saved_and_loaded(tmp_path, rng):
    qmodel, images = _seed_cnn(rng, 7)
    save_quantized(qmodel, tmp_path / "q.npz")
    loaded = io.load(tmp_path / "q.npz")
    assert loaded.info["activation_bits"] == 7 and loaded.input_qmax == 127
    assert all(layer.act_qmax == 127 for layer in loaded.body.layers if isinstance(layer, qm.QWeighted))
    x = Tensor(images[:8].astype(np.float32) / 255)
    with no_grad():
        np.testing.assert_array_equal(loaded(x).data, qmodel(x).data)


@pytest.mark.parametrize("weight_bits,in_channels,size", [(8, 1, 28), (7, 1, 28), (8, 3, 32)])
def test_activation_bits_7_same_logits_on_every_gemm_path(weight_bits, in_channels, size, rng,
                                                          assert_same_logits_on_every_cap):
    if not kernels.available("gemm_u8s8_packed", "c"):
        pytest.skip(kernels.why_unavailable("gemm_u8s8_packed", "c"))
    qmodel, images = _seed_cnn(rng, 7, weight_bits, in_channels, size)
    x = Tensor(images[:8].astype(np.float32) / 255)
    assert_same_logits_on_every_cap(qmodel, x)


def test_activation_bits_rejects_other_widths(rng):
    with pytest.raises(ValueError, match="activation_bits=6"):
        _seed_cnn(rng, 6)


def test_cli_quantize_activation_bits_7(tmp_path):
    model = models.create("seed-cnn", in_channels=1, num_classes=10, input_size=28, width=0.25)
    io.save(model, tmp_path / "float.npz")
    out = tmp_path / "q"
    assert main(["quantize", str(tmp_path / "float.npz"), "--data", "synthetic", "--per-channel",
                 "--activation-bits", "7", "--calibration-images", "32", "--repeats", "1", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["activation_bits"] == 7
    assert io.load(out / "model.npz").info["activation_bits"] == 7


def test_hooked_body_still_sees_its_call(rng):
    """The NHWC fast path skips Module.__call__ of the body; a hook on it must still run."""
    qmodel, images = _seed_cnn(rng, 7)
    x = Tensor(images[:4].astype(np.float32) / 255)
    with no_grad():
        plain = qmodel(x).data
        seen = []
        handle = qmodel.body.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
        hooked = qmodel(x).data
        handle.remove()
    assert seen == [(4, 1, 28, 28)]
    np.testing.assert_array_equal(hooked, plain)
