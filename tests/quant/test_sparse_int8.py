"""Pruned models quantized with the sparse int8 kernels: the same integers as the dense int8 path."""
import copy

import numpy as np
import pytest

from tinyeff import models
from tinyeff.compress import prune
from tinyeff.quant import qmodules as qm
from tinyeff.quant.ptq import quantize_static


def _pruned_pair(rng, batch=20):
    pruned = prune(models.create("seed-cnn", in_channels=1, input_size=28), 0.9, "global").eval()
    images = rng.integers(0, 256, (batch, 1, 28, 28), dtype=np.uint8)
    sparse = quantize_static(copy.deepcopy(pruned), images, num_images=batch, sparse=True)
    dense = quantize_static(copy.deepcopy(pruned), images, num_images=batch, sparse=False)
    return sparse, dense, rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)


def test_pruned_seed_cnn_sparse_int8_equals_dense_int8(rng):
    """Sparse stride-1 convs run NHWC with the max-pool fused, and give the dense path's integers exactly."""
    sparse, dense, x = _pruned_pair(rng)
    convs = [m for m in sparse.body.layers if isinstance(m, qm.QConv2d)]
    assert any(c.sparse_nhwc for c in convs)
    layers = sparse.body.layers
    assert any(c.sparse_nhwc and c.can_fuse_pool(layers[layers.index(c) + 1]) for c in convs)
    q = sparse.quantize_input(x)
    np.testing.assert_array_equal(sparse.forward_int(q), dense.forward_int(q))


def test_sparse_conv_nchw_forward_equals_nhwc_forward(rng):
    """A sparse layer called on its own (NCHW, as hooks see it) gives what the NHWC pipeline gives."""
    sparse, _, x = _pruned_pair(rng, batch=3)
    conv = next(m for m in sparse.body.layers if isinstance(m, qm.QConv2d) and m.sparse_nhwc)
    c = conv.weight_q.shape[1]
    q = rng.integers(0, 256, (17, c, 11, 9), dtype=np.uint8)     # one 16-image block and a partial one
    np.testing.assert_array_equal(conv.forward(q), qm.to_nchw(conv.forward_nhwc(qm.to_nhwc(q))))
    dense = qm.QConv2d(conv.weight_q, conv.weight_scale, conv.bias_q, conv.in_qparams, conv.out_qparams,
                       conv.stride, conv.padding, relu=conv.relu, sparse=False, act_qmax=conv.act_qmax)
    np.testing.assert_array_equal(conv.forward(q), dense.forward(q))


def test_choose_sparse_kernels_times_every_sparse_layer_and_keeps_the_integers(rng):
    """Each sparse layer (and stride-1 conv) is timed against its twin; whichever stays, the output is unchanged."""
    from tinyeff.quant.sparse_choice import choose_sparse_kernels
    sparse, dense, x = _pruned_pair(rng)
    layers = sparse.body.layers
    candidates = [i for i, m in enumerate(layers) if getattr(m, "sparse", False)
                  or (isinstance(m, qm.QConv2d) and m.stride == 1 and m.out_qparams is not None)]
    flatten = next(i for i, m in enumerate(layers) if isinstance(m, qm.QFlatten))   # then the requantized fc1
    decisions = choose_sparse_kernels(sparse, x, repeats=1)
    assert sorted(decisions) == sorted(set(candidates) - {flatten + 1} | {flatten})
    for i, d in decisions.items():
        layer = sparse.body.layers[i]
        assert min(v for k, v in d.items() if k.endswith("_s")) > 0
        if i == flatten:                    # fc1 as a conv over the whole map, where that was faster
            assert d["linear_as_conv"] == isinstance(layer, qm.QConv2d)
            assert d["sparse"] == (d["linear_as_conv"] and layer.sparse)
            continue
        assert d["sparse"] == layer.sparse
    q = sparse.quantize_input(x)
    np.testing.assert_array_equal(sparse.forward_int(q), dense.forward_int(q))


def test_race_picks_by_the_in_round_ratio():
    """The kernel that is slower in most rounds loses, even if one of its calls was the fastest of all."""
    import time

    from tinyeff.kernels.stopwatch import race
    calls = {"a": 0}

    def a():                                # fast once (its first timed call), slow every other round
        calls["a"] += 1
        time.sleep(0 if calls["a"] == 2 else 0.004)

    def b():
        time.sleep(0.002)
    (t_a, t_b), winner, _ = race([a, b], 5)
    assert t_a < t_b and winner == 1


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("top", [127, 255])
def test_linear_as_conv_gives_the_linear_layers_codes(sparse, top, rng):
    """A requantized linear layer on the NCHW flatten of a (C, H, W) map and its conv over the whole map
    (read in NHWC, no transpose) give the same codes: dense and sparse kernels, 7- and 8-bit inputs."""
    from tinyeff.quant.sparse_choice import linear_as_conv
    n, c, h, w, out = 19, 6, 3, 2, 9
    weight = rng.integers(-128, 128, (out, c * h * w), dtype=np.int8)
    weight[rng.random(weight.shape) < 0.8] = 0
    linear = qm.QLinear(weight, rng.uniform(1e-3, 1e-2, out), rng.integers(-500, 500, out), (0.02, 3), (0.05, 1),
                        relu=True, sparse=sparse, act_qmax=top)
    q = rng.integers(0, top + 1, (n, c, h, w), dtype=np.uint8)
    conv = linear_as_conv(linear, q.shape, sparse)
    np.testing.assert_array_equal(conv.forward_nhwc(qm.to_nhwc(q)).reshape(n, out), linear(q.reshape(n, -1)))
    assert linear_as_conv(linear, (n, c * h * w, 1, 1), sparse) is None        # nothing to gain on a 1x1 map


def test_sparse_conv_below_one_block_runs_dense_kernels_with_the_same_integers(rng):
    """Fewer images than the sparse kernel's 16-image block run the layer's dense twin: same output."""
    sparse, dense, x = _pruned_pair(rng, batch=5)
    conv = next(m for m in sparse.body.layers if isinstance(m, qm.QConv2d) and m.sparse_nhwc)
    q = sparse.quantize_input(x)
    np.testing.assert_array_equal(sparse.forward_int(q), dense.forward_int(q))
    assert not conv._twin["dense"].sparse
