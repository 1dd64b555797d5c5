"""Module: parameter order and PyTorch names, buffers, hooks, parameter transforms, train/eval,
state_dict round trip and errors, zero_grad, get_submodule, Sequential."""
import numpy as np
import pytest

import tinyeff
from tinyeff import Tensor, models, nn, no_grad, ops


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc2 = nn.Linear(3, 2)     # defined first on purpose: order is definition order, not alphabetical
        self.fc1 = nn.Linear(4, 3)
        self.scale = nn.Parameter(np.ones(1, np.float32))

    def forward(self, x):
        return self.fc2(self.fc1(x).relu()) * self.scale


def test_parameters_in_definition_order():
    m = TwoLayer()
    # as in PyTorch: a module's own parameters first, then each child's in definition order
    assert [n for n, _ in m.named_parameters()] == ["scale", "fc2.weight", "fc2.bias", "fc1.weight", "fc1.bias"]
    assert [p.shape for p in m.parameters()] == [(1,), (2, 3), (2,), (3, 4), (3,)]


def test_sequential_names_like_pytorch():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "2.0.weight", "2.0.bias",
                                                    "2.1.weight", "2.1.bias"]
    assert [n for n, _ in m.named_buffers()] == ["2.1.running_mean", "2.1.running_var"]


def test_resnet_parameter_names_like_pytorch():
    names = [n for n, _ in models.create("resnet20").named_parameters()]
    assert names[:3] == ["conv1.weight", "bn1.weight", "bn1.bias"]
    assert "layers.0.0.conv1.weight" in names
    assert "layers.1.0.shortcut.0.weight" in names     # projection shortcut where the shape changes
    assert names[-2:] == ["fc.weight", "fc.bias"]


def test_shared_parameter_is_listed_once():
    layer = nn.Linear(2, 2)
    m = nn.Sequential(layer, layer)
    assert len(list(m.parameters())) == 2


def test_assigning_none_removes_a_parameter():
    layer = nn.Linear(2, 2)
    layer.bias = None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]


def test_setattr_before_super_init_raises():
    class Broken(nn.Module):
        def __init__(self):
            self.w = 1

    with pytest.raises(RuntimeError, match="super"):
        Broken()


def test_forward_hook_fires_with_inputs_and_output_and_removes():
    layer = nn.Linear(3, 2)
    calls = []
    handle = layer.register_forward_hook(lambda mod, inputs, output: calls.append((mod, inputs[0].shape, output.shape)))
    layer(Tensor(np.ones((4, 3), np.float32)))
    assert calls == [(layer, (4, 3), (4, 2))]
    handle.remove()
    layer(Tensor(np.ones((4, 3), np.float32)))
    assert len(calls) == 1


def test_forward_pre_hook_fires_before_forward_and_removes():
    layer = nn.ReLU()
    order = []
    handle = layer.register_forward_pre_hook(lambda mod, inputs: order.append("pre"))
    layer.register_forward_hook(lambda mod, inputs, output: order.append("post"))
    layer(Tensor(np.ones(2, np.float32)))
    handle.remove()
    layer(Tensor(np.ones(2, np.float32)))
    assert order == ["pre", "post", "post"]


def test_hooks_on_children_fire_in_execution_order():
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    seen = []
    for name, child in m.named_children():
        child.register_forward_hook(lambda mod, i, o, name=name: seen.append(name))
    m(Tensor(np.ones((1, 2), np.float32)))
    assert seen == ["0", "1", "2"]


def test_mask_transform_zeroes_forward_weight_and_gradient(rng):
    layer = nn.Linear(4, 3)
    mask = np.array(rng.random((3, 4)) > 0.5, dtype=np.float32)
    layer.add_param_transform("weight", "mask", lambda w: w * Tensor(mask))
    x = Tensor(rng.standard_normal((5, 4)).astype(np.float32))
    out = layer(x)
    np.testing.assert_allclose(out.data, x.data @ (layer.weight.data * mask).T + layer.bias.data, rtol=1e-6)
    out.sum().backward()
    assert np.all(layer.weight.grad[mask == 0] == 0)
    assert np.all(layer.weight.grad[mask == 1] != 0)


def test_param_transforms_apply_in_order_and_remove():
    layer = nn.Linear(1, 1, bias=False)
    layer.weight.data[...] = 2.0
    layer.add_param_transform("weight", "plus1", lambda w: w + 1.0)
    layer.add_param_transform("weight", "times3", lambda w: w * 3.0)
    assert list(layer.param_transforms("weight")) == ["plus1", "times3"]
    assert layer.param("weight").item() == 9.0          # (2 + 1) * 3, not 2 * 3 + 1
    layer.remove_param_transform("weight", "plus1")
    assert layer.param("weight").item() == 6.0
    layer.remove_param_transform("weight", "times3")
    assert layer.param("weight") is layer.weight


def test_param_transform_on_unknown_parameter_raises():
    with pytest.raises(ValueError, match="no parameter 'bias'"):
        nn.Linear(2, 2, bias=False).add_param_transform("bias", "k", lambda w: w)


def test_train_and_eval_propagate_to_every_descendant():
    m = models.create("resnet8")
    m.eval()
    assert all(not mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())


def test_dropout_layer_respects_eval():
    layer = nn.Dropout(0.5).eval()
    x = Tensor(np.ones((4, 4), np.float32))
    np.testing.assert_array_equal(layer(x).data, x.data)


def test_state_dict_round_trip_reproduces_outputs(rng):
    tinyeff.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(27, 2))
    a(Tensor(rng.standard_normal((4, 2, 5, 5)).astype(np.float32)))     # move BN running stats
    tinyeff.manual_seed(1)
    b = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(27, 2))
    b.load_state_dict(a.state_dict())
    x = Tensor(rng.standard_normal((2, 2, 5, 5)).astype(np.float32))
    np.testing.assert_array_equal(a.eval()(x).data, b.eval()(x).data)
    assert list(a.state_dict()) == list(b.state_dict())


def test_state_dict_holds_copies():
    layer = nn.Linear(2, 2)
    state = layer.state_dict()
    state["weight"][...] = 123.0
    assert not np.any(layer.weight.data == 123.0)


def test_load_state_dict_wrong_shape_names_the_tensor_and_changes_nothing():
    layer = nn.Sequential(nn.Linear(3, 2))
    before = layer.state_dict()
    state = layer.state_dict()
    state["0.bias"] = np.zeros(2, np.float32) + 5.0
    state["0.weight"] = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(2, 4\), the model expects \(2, 3\)"):
        layer.load_state_dict(state)
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_missing_and_unexpected_keys_raise():
    layer = nn.Linear(2, 2)
    with pytest.raises(KeyError, match=r"missing \['bias'\].*unexpected \['extra'\]"):
        layer.load_state_dict({"weight": np.zeros((2, 2), np.float32), "extra": np.zeros(1)})


def test_load_state_dict_non_strict_ignores_missing_and_unexpected():
    layer = nn.Linear(2, 2)
    layer.load_state_dict({"weight": np.full((2, 2), 7.0), "extra": np.zeros(1)}, strict=False)
    np.testing.assert_array_equal(layer.weight.data, np.full((2, 2), 7.0))
    assert layer.weight.dtype == np.float32


def test_load_state_dict_keeps_parameter_identity_for_optimizers():
    layer = nn.Linear(2, 2)
    weight = layer.weight
    layer.load_state_dict({"weight": np.ones((2, 2)), "bias": np.ones(2)})
    assert layer.weight is weight


def test_buffers_are_saved_but_not_trained():
    bn = nn.BatchNorm2d(3)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var"}


def test_set_buffer_unknown_name_raises():
    with pytest.raises(KeyError, match="no buffer"):
        nn.BatchNorm2d(2).set_buffer("nope", np.zeros(2))


def test_zero_grad_clears_every_parameter():
    layer = nn.Linear(2, 2)
    layer(Tensor(np.ones((1, 2), np.float32))).sum().backward()
    assert layer.weight.grad is not None
    layer.zero_grad()
    assert all(p.grad is None for p in layer.parameters())


def test_gradient_accumulates_across_two_backwards_without_zero_grad():
    layer = nn.Linear(2, 1, bias=False)
    x = Tensor(np.array([[1.0, 2.0]], np.float32))
    layer(x).sum().backward()
    layer(x).sum().backward()
    np.testing.assert_allclose(layer.weight.grad, [[2.0, 4.0]])


def test_module_used_twice_accumulates_both_gradients():
    layer = nn.Linear(2, 2, bias=False)
    layer.weight.data = np.eye(2, dtype=np.float32) * 2.0
    x = Tensor(np.array([[1.0, 1.0]], np.float32))
    layer(layer(x)).sum().backward()
    # y = W W x; dL/dW = 1 (W x)^T + W^T 1 x^T = [[2, 2], [2, 2]] + [[2, 2], [2, 2]]
    np.testing.assert_allclose(layer.weight.grad, np.full((2, 2), 4.0))


def test_no_grad_forward_leaves_parameters_without_graph():
    layer = nn.Linear(2, 2)
    with no_grad():
        out = layer(Tensor(np.ones((1, 2), np.float32)))
    assert not out.requires_grad


def test_get_submodule_and_unknown_name_lists_layers():
    m = models.create("resnet8")
    assert isinstance(m.get_submodule("layers.0.0.conv1"), nn.Conv2d)
    assert m.get_submodule("") is m
    with pytest.raises(KeyError, match="no layer named 'layers.9'"):
        m.get_submodule("layers.9")


def test_sequential_indexing_len_iter():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    m = nn.Sequential(*layers)
    assert len(m) == 3 and m[0] is layers[0] and m[-1] is layers[2] and list(m) == layers


def test_module_without_forward_raises_type_error():
    with pytest.raises(TypeError, match="does not define forward"):
        nn.Module()(Tensor(np.ones(1)))


def test_repr_names_children():
    text = repr(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.ReLU()))
    assert "(0): Conv2d(1, 2, kernel_size=3, stride=2" in text and "(1): ReLU()" in text


def test_activation_layers_call_their_ops(rng):
    x = Tensor(rng.standard_normal((3, 4)).astype(np.float32))
    for layer, op in ((nn.ReLU(), ops.relu), (nn.Sigmoid(), ops.sigmoid), (nn.Tanh(), ops.tanh),
                      (nn.LeakyReLU(0.2), lambda t: ops.leaky_relu(t, 0.2)), (nn.ELU(0.5), lambda t: ops.elu(t, 0.5)),
                      (nn.Identity(), lambda t: t)):
        np.testing.assert_array_equal(layer(x).data, op(x).data)


def test_conv2d_rejects_non_square_kernel():
    with pytest.raises(ValueError, match="only square"):
        nn.Conv2d(1, 1, (3, 2))


def test_adaptive_avg_pool_rejects_other_output_sizes():
    with pytest.raises(ValueError, match="only output_size=1"):
        nn.AdaptiveAvgPool2d(2)


def test_assigning_an_array_to_a_buffer_name_updates_the_buffer():
    bn = nn.BatchNorm2d(3)
    bn.running_mean = np.full(3, 2.0, np.float32)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var"]
    np.testing.assert_array_equal(bn.state_dict()["running_mean"], [2.0, 2.0, 2.0])
