"""ResNet training with BatchNorm + (shortcut add +) ReLU fused into one op against the same model
run layer by layer: the fusion must change the speed only, not the training trajectory."""
import numpy as np
import pytest

import tinyeff
import tinyeff.nn.functional as F
from tinyeff import models, optim
from tinyeff.models.resnet import set_fused


def _ops_in_graph(root):
    """Op name -> count over the graph that ends at ``root`` (before backward frees it)."""
    counts, seen, stack = {}, set(), [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        counts[node.op] = counts.get(node.op, 0) + 1
        stack.extend(node._parents)
    return counts


def _train(name, fused, steps, x, y, **kwargs):
    """Losses of ``steps`` SGD steps, the op counts of the first graph, and the final weights."""
    tinyeff.manual_seed(0)
    model = models.create(name, **kwargs)
    set_fused(model, fused)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    losses, counts = [], None
    for _ in range(steps):
        loss = F.cross_entropy(model(tinyeff.Tensor(x)), y)
        counts = counts or _ops_in_graph(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.data))
    return losses, counts, [p.data.copy() for p in model.parameters()]


@pytest.mark.parametrize("name,kwargs", [("resnet8", dict(width=4)),
                                         ("resnet50", dict(width=2, stem="imagenet"))])
def test_resnet_fused_training_matches_layer_by_layer(name, kwargs):
    rng = np.random.default_rng(0)
    side = 32 if kwargs.get("stem") == "imagenet" else 8
    x = rng.standard_normal((4, 3, side, side)).astype(np.float32)
    y = rng.integers(0, 10, 4)
    plain_losses, plain_ops, plain_w = _train(name, False, 3, x, y, **kwargs)
    fused_losses, fused_ops, fused_w = _train(name, True, 3, x, y, **kwargs)
    assert "relu" in plain_ops and "relu" not in fused_ops and "add" not in fused_ops
    # the fused kernels evaluate the same float32 expressions in the same order: equal up to rounding
    np.testing.assert_allclose(fused_losses, plain_losses, rtol=1e-6)
    for a, b in zip(fused_w, plain_w):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
