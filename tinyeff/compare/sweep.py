"""Sparsity vs speedup for each convolution of a model: our sparse kernel against our dense path on the
layer's real shape, at sparsities from 0 to 95%, with the ideal 1/(1-s) drawn beside it."""
import numpy as np

from tinyeff import kernels, nn, ops
from tinyeff.timing import median_time
from tinyeff.flops import count
from tinyeff.kernels.layout.csr import pack_sparse
from tinyeff.tensor import Tensor, no_grad

SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)


def sparsity_sweep(model, image_shape, batch=64, sparsities=SPARSITIES, min_time_s=0.1, rng=None):
    """Dict conv layer name -> list of (sparsity, dense time / sparse time), measured here."""
    rng = rng or np.random.default_rng(0)
    shapes = {layer.name: layer.input_shape for layer in count(model, (1,) + tuple(image_shape)).layers}
    index = 0
    spconv = kernels.get("spconv_f32_csr")
    points = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d) or module.groups != 1 or name not in shapes:
            continue
        x = rng.standard_normal((batch,) + tuple(shapes[name][1:])).astype(np.float32)
        w = module.weight.data
        geom = (module.stride, module.padding, module.dilation)
        index += 1
        label = f"{index}: Conv2d {w.shape[1]}->{w.shape[0]}, {w.shape[2]}x{w.shape[3]} ({name})"
        points[label] = []
        for s in sparsities:
            pruned = np.where(rng.random(w.shape) < s, 0.0, w).astype(np.float32)
            dense_t, _, _ = median_time(lambda: _dense(x, pruned, geom), min_time_s=min_time_s)
            packed = pack_sparse(pruned)
            sparse_t, _, _ = median_time(lambda: spconv(x, packed, None, *geom), min_time_s=min_time_s)
            points[label].append((float(s), dense_t / sparse_t))
    return points


def _dense(x, w, geom):
    with no_grad():
        return ops.conv2d(Tensor(x), Tensor(w), None, *geom)
