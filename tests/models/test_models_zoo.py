"""The model zoo: create() by name, output shapes, parameter counts, errors, and overfitting one
small fixed batch (the end-to-end check that forward, backward and the optimizer fit together)."""
import numpy as np
import pytest

import tinyeff
from tinyeff import Tensor, models, no_grad, ops, optim


def images(shape, seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


@pytest.mark.parametrize("name,kwargs,shape", [
    ("seed-cnn", dict(in_channels=1, input_size=28), (2, 1, 28, 28)),
    ("seed-cnn", dict(), (1, 3, 32, 32)),
    ("seed-cnn", dict(width=0.5, num_classes=4), (2, 3, 32, 32)),
    ("mlp", dict(), (3, 1, 28, 28)),
    ("mlp", dict(in_channels=3, input_size=8, hidden=(5,), dropout=0.1, num_classes=7), (2, 3, 8, 8)),
    ("resnet8", dict(), (2, 3, 16, 16)),
    ("resnet20", dict(in_channels=1), (1, 1, 12, 12)),
    ("resnet", dict(depth=14, width=4, shortcut=False), (2, 3, 8, 8)),
    ("resnet18", dict(width=4), (2, 3, 16, 16)),
    ("mobilenet", dict(width_mult=0.125), (2, 3, 32, 32)),
])
def test_model_output_shape(name, kwargs, shape):
    tinyeff.manual_seed(0)
    model = models.create(name, **kwargs)
    with no_grad():
        out = model(images(shape))
    assert out.shape == (shape[0], kwargs.get("num_classes", 10))
    assert out.dtype == np.float32 and np.all(np.isfinite(out.data))


def test_create_records_the_architecture():
    model = models.create("resnet", depth=8, width=4)
    assert model.arch == {"name": "resnet", "kwargs": {"depth": 8, "width": 4}}


def test_unknown_model_name_lists_the_known_names():
    with pytest.raises(ValueError, match=r"unknown model 'resnet21'; choose one of: .*resnet20.*seed-cnn"):
        models.create("resnet21")


def test_resnet_depth_must_be_6n_plus_2():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        models.create("resnet", depth=21)


def test_seed_cnn_input_too_small_raises():
    with pytest.raises(ValueError, match="too small"):
        models.create("seed-cnn", input_size=16)


def test_seed_cnn_parameter_count_for_fashion_mnist():
    model = models.create("seed-cnn", in_channels=1, input_size=28)
    # conv 1->32: 288+32, conv 32->64: 18432+64, conv 64->64: 36864+64,
    # fc 576->64: 36864+64, fc 64->10: 640+10
    assert sum(p.size for p in model.parameters()) == 320 + 18496 + 36928 + 36928 + 650


def test_resnet20_has_19_convolutions_with_two_projection_shortcuts():
    from tinyeff import nn
    convs = [n for n, m in models.create("resnet20").named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 + 2
    assert sum("shortcut" in n for n in convs) == 2


def test_resnet_without_shortcuts_has_no_projections():
    from tinyeff import nn
    model = models.create("resnet", depth=20, shortcut=False)
    assert not any("shortcut" in n for n, m in model.named_modules() if isinstance(m, nn.Conv2d))


def test_mobilenet_blocks_are_depthwise_separable():
    from tinyeff import nn
    model = models.create("mobilenet", width_mult=0.25)
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 7 and all(m.groups == m.in_channels == m.out_channels for m in depthwise)


def test_input_kwargs_for_image_size_models():
    assert models.input_kwargs("seed-cnn", 1, 28, 10) == {"in_channels": 1, "num_classes": 10, "input_size": 28}
    assert models.input_kwargs("resnet20", 3, 32, 100) == {"in_channels": 3, "num_classes": 100}


def test_eval_forward_is_deterministic():
    tinyeff.manual_seed(0)
    model = models.create("resnet8").eval()
    x = images((2, 3, 8, 8))
    with no_grad():
        np.testing.assert_array_equal(model(x).data, model(x).data)


def overfit(model, x, labels, lr, max_steps):
    """Train on one batch; return the loss before the first step and the lowest loss reached."""
    opt = optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(max_steps):
        opt.zero_grad()
        loss = ops.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] < 0.25 * losses[0]:
            break
    return losses[0], min(losses)


def test_seed_cnn_overfits_one_batch():
    tinyeff.manual_seed(0)
    model = models.create("seed-cnn", in_channels=1, input_size=28)
    x, labels = images((16, 1, 28, 28), seed=1), np.random.default_rng(2).integers(0, 10, 16)
    first, best = overfit(model, x, labels, lr=1e-2, max_steps=40)
    assert best < 0.25 * first, f"loss only fell from {first:.3f} to {best:.3f}"


def test_resnet20_overfits_one_batch():
    tinyeff.manual_seed(0)
    model = models.create("resnet20")
    # 8x8 keeps it fast; global average pooling accepts any input size
    x, labels = images((16, 3, 8, 8), seed=3), np.random.default_rng(4).integers(0, 10, 16)
    first, best = overfit(model, x, labels, lr=1e-2, max_steps=30)
    assert best < 0.25 * first, f"loss only fell from {first:.3f} to {best:.3f}"
