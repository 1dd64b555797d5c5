"""Sparse inference: ``to_sparse(model)`` runs pruned layers through the CSR sparse kernels.

The one idea: a pruned weight only pays off in wall-clock time if a kernel skips its zeros, and
only when there are enough of them for that layer's shape. ``SparseConv2d`` / ``SparseLinear``
pack the effective (masked) weight into CSR once (``kernels.layout.csr.pack_sparse``) and call
``spconv_f32_csr`` / ``splinear_f32_csr`` through the registry (best tier: C, Numba, then the
reference). ``to_sparse`` swaps a layer only when the sparse kernel is measured faster than the
dense path *on this machine* for that layer's input shape and sparsity. The timing is
``tinyeff/kernels/crossover.py``'s (one measurement and one on-disk cache, per shape, batch,
sparsity bucket and active tiers); ``min_speedup`` is this file's threshold on it, and ``force``
overrides it per layer.

For FLOP and energy counting each sparse module exposes ``sparse_kernel_ran`` (True after a
forward ran the sparse kernel), ``nnz``, ``dense_macs`` and ``effective_macs`` of its last call
(effective MACs = nonzeros x output positions).

What this file leaves out: training through sparse kernels (modules are inference-only: outputs
carry no gradient) and int8 sparse inference (``spconv_u8s8_csr`` is the quantization path's job).
"""
import numpy as np

from tinyeff import kernels, nn
from tinyeff.compress.prune import get_mask
from tinyeff.kernels import crossover
from tinyeff.kernels.layout.geometry import check_conv_geometry
from tinyeff.kernels.layout.csr import pack_sparse, unpack_sparse
from tinyeff.nn.surgery import join_name, replace_child, sequence_stages
from tinyeff.tensor import Tensor, no_grad


class _SparseLayer(nn.Module):
    """Shared bookkeeping: the packed weight, bias and the counters the FLOP counter reads."""

    def __init__(self, layer, fuse_relu):
        super().__init__()
        w = np.ascontiguousarray(layer.param("weight").data, dtype=np.float32)
        self.packed = pack_sparse(w)
        self.bias_f32 = None if layer.bias is None else np.ascontiguousarray(layer.param("bias").data,
                                                                             dtype=np.float32)
        self.fuse_relu = fuse_relu
        self.sparse_kernel_ran = False
        self.dense_macs = self.effective_macs = 0

    @property
    def nnz(self):
        return self.packed.nnz

    @property
    def sparsity(self):
        return self.packed.sparsity

    @property
    def weight_nnz(self):
        """Nonzero weights, under the name ``tinyeff.flops`` reads."""
        return self.packed.nnz

    @property
    def weight(self):
        """The dense weight the packed one stands for (unpacked on demand, for counters and checks)."""
        return unpack_sparse(self.packed)

    def _count(self, positions):
        """Record MACs of a call: ``positions`` output positions (N*OH*OW, or N for a linear)."""
        self.sparse_kernel_ran = True
        self.dense_macs = int(np.prod(self.packed.shape[1:])) * self.packed.shape[0] * positions
        self.effective_macs = self.nnz * positions


class SparseConv2d(_SparseLayer):
    """Inference-only Conv2d on a CSR-packed pruned weight (``spconv_f32_csr``), optional fused ReLU
    and fused non-overlapping max-pool (``pool`` > 1: the output is the pooled map)."""

    def __init__(self, conv, fuse_relu=False, pool=1):
        if conv.groups != 1:
            raise ValueError("SparseConv2d: grouped/depthwise convolutions are not supported by spconv_f32_csr")
        super().__init__(conv, fuse_relu)
        self.pool = pool
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.in_channels, self.out_channels, self.kernel_size = conv.in_channels, conv.out_channels, conv.kernel_size

    def forward(self, x):
        x = np.ascontiguousarray(x.data if isinstance(x, Tensor) else x, dtype=np.float32)
        out = kernels.get("spconv_f32_csr")(x, self.packed, self.bias_f32, self.stride, self.padding,
                                            self.dilation, relu=self.fuse_relu, pool=self.pool)
        _, _, kh, kw = self.packed.shape
        oh, ow = check_conv_geometry(x.shape, kh, kw, self.stride, self.padding, self.dilation, "SparseConv2d")
        self._count(x.shape[0] * oh * ow)          # MACs are the conv's, before any fused pooling
        return Tensor(out)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, nnz={self.nnz}, "
                f"sparsity={self.sparsity:.1%}" + (", relu" if self.fuse_relu else "")
                + (f", max_pool={self.pool}" if self.pool > 1 else ""))


class SparseLinear(_SparseLayer):
    """Inference-only Linear on a CSR-packed pruned weight (``splinear_f32_csr``), optional fused ReLU."""

    def __init__(self, linear, fuse_relu=False):
        super().__init__(linear, fuse_relu)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x):
        x = np.ascontiguousarray(x.data if isinstance(x, Tensor) else x, dtype=np.float32)
        out = kernels.get("splinear_f32_csr")(x, self.packed, self.bias_f32, relu=self.fuse_relu)
        self._count(out.shape[0])
        return Tensor(out)

    def extra_repr(self):
        return (f"{self.in_features}, {self.out_features}, nnz={self.nnz}, sparsity={self.sparsity:.1%}"
                + (", relu" if self.fuse_relu else ""))


def _shape_info(layer, x_shape):
    """The ``crossover`` shape description of ``layer`` run on an input of ``x_shape``."""
    w_shape = layer.param("weight").data.shape
    if isinstance(layer, nn.Conv2d):
        n, c, h, w = x_shape
        return {"n": n, "c": c, "h": h, "w": w, "oc": w_shape[0], "kh": w_shape[2], "kw": w_shape[3],
                "stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation}
    return {"n": x_shape[0], "in": w_shape[1], "out": w_shape[0]}


def measure_speedup(layer, x_shape, remeasure=False):
    """Dense time / sparse time for ``layer``'s shape and current sparsity on input ``x_shape``.

    Measured by ``tinyeff.kernels.crossover.measured_speedup``: cached on disk per (layer shape,
    batch, sparsity bucket, active tiers), so identical layers are timed once per machine.
    """
    kind = "conv" if isinstance(layer, nn.Conv2d) else "linear"
    sparsity = float(np.mean(layer.param("weight").data == 0))
    return crossover.measured_speedup(kind, _shape_info(layer, tuple(x_shape)), sparsity, remeasure)


def _input_shapes(model, example):
    """Record the input shape of every Conv2d/Linear in one forward pass on ``example``."""
    shapes, handles = {}, []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            handles.append(module.register_forward_hook(
                lambda m, inputs, out, name=name: shapes.setdefault(name, inputs[0].shape)))
    try:
        with no_grad():
            model(example if isinstance(example, Tensor) else Tensor(example))
    finally:
        for h in handles:
            h.remove()
    return shapes


def to_sparse(model, example, policy="auto", force=None, min_speedup=1.1, fuse_relu=True, candidates="pruned",
              fuse_pool=True):
    """Swap pruned Conv2d/Linear layers for SparseConv2d/SparseLinear where that is faster. In place.

    Args:
        model: a pruned model (masks attached, or weights with zeros). It is switched to eval mode.
        example: an input batch (N, C, H, W) float32 of the size inference will use; the decision
            is measured at this shape.
        policy: "auto" (measure), "always" (every pruned layer) or "never".
        force: dict layer name -> bool overriding the policy for that layer.
        min_speedup: in "auto", swap only when dense time / sparse time exceeds this.
        fuse_relu: when a swapped layer is followed by a ReLU in the same Sequential, run the ReLU
            inside the kernel and replace the ReLU with Identity.
        fuse_pool: likewise for a non-overlapping MaxPool2d (kernel = stride, no padding) right
            after a swapped conv (or after its fused ReLU): the kernel writes only the pooled map.
        candidates: "pruned" (layers with a mask or zeros) or "all": also consider unpruned layers,
            for which the CSR kernel is simply a direct convolution (no im2col); on narrow layers
            that can beat im2col + GEMM, so use it to give a dense baseline its best path too.

    Returns:
        (model, decisions): decisions maps each pruned layer to {"sparse", "sparsity", "speedup"}.
    """
    if policy not in ("auto", "always", "never"):
        raise ValueError(f"to_sparse: policy={policy!r} must be 'auto', 'always' or 'never'")
    if candidates not in ("pruned", "all"):
        raise ValueError(f"to_sparse: candidates={candidates!r} must be 'pruned' or 'all'")
    force = dict(force or {})
    model.eval()
    shapes = _input_shapes(model, example)
    decisions = {}
    for parent_name, parent in list(model.named_modules()):
        for stage in list(sequence_stages(parent)):
            name, child = stage.layer
            full = join_name(parent_name, name)
            if full not in shapes:
                continue
            sparsity = float(np.mean(child.param("weight").data == 0))
            unpruned = get_mask(child) is None and sparsity == 0
            if unpruned and candidates == "pruned" or getattr(child, "groups", 1) != 1:
                continue
            speedup = measure_speedup(child, shapes[full]) if policy == "auto" and full not in force else None
            use = force.get(full, policy == "always" or (speedup is not None and speedup > min_speedup))
            decisions[full] = {"sparse": bool(use), "sparsity": sparsity, "speedup": speedup}
            if use:
                _swap(parent, stage, fuse_relu, fuse_pool)
    return model, decisions


def _fusable_pool(m):
    return (type(m) is nn.MaxPool2d and isinstance(m.kernel_size, int) and m.stride == m.kernel_size
            and m.padding == 0)


def _swap(parent, stage, fuse_relu, fuse_pool):
    """Replace the stage's layer by its sparse module; fold the ReLU and max-pool right after it into it
    (inside an ``nn.Sequential`` only: there the children's order is the order they run in)."""
    name, layer = stage.layer
    adjacent = isinstance(parent, nn.Sequential) and stage.bn is None
    relu = fuse_relu and adjacent and stage.relu is not None and type(stage.relu[1]) is nn.ReLU
    pool = (isinstance(layer, nn.Conv2d) and fuse_pool and adjacent and stage.pool is not None
            and (relu or stage.relu is None) and _fusable_pool(stage.pool[1]) and stage.pool[1].kernel_size > 1)
    if isinstance(layer, nn.Conv2d):
        sparse = SparseConv2d(layer, relu, stage.pool[1].kernel_size if pool else 1)
    else:
        sparse = SparseLinear(layer, relu)
    replace_child(parent, name, sparse)
    for fused in (stage.relu if relu else None, stage.pool if pool else None):
        if fused is not None:
            replace_child(parent, fused[0], nn.Identity())


def sparse_layers(model):
    """dict name -> SparseConv2d/SparseLinear module in ``model``."""
    return {n: m for n, m in model.named_modules() if isinstance(m, _SparseLayer)}


def mac_totals(model, x):
    """(dense MACs, effective MACs) of one forward pass on ``x`` over every Conv2d/Linear/sparse layer.

    Dense MACs count every weight at every output position; effective MACs count only nonzeros,
    and only in layers a sparse kernel ran (a pruned layer left on the dense path pays every MAC).
    """
    totals, handles = [0, 0], []

    def hook(module, inputs, out):
        if isinstance(module, _SparseLayer):
            totals[0] += module.dense_macs
            totals[1] += module.effective_macs
            return
        w = module.weight.data
        positions = out.shape[0] * (out.shape[2] * out.shape[3] if out.ndim == 4 else 1)
        macs = int(np.prod(w.shape[1:])) * w.shape[0] * positions
        totals[0] += macs
        totals[1] += macs
    for _, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, _SparseLayer)):
            handles.append(module.register_forward_hook(hook))
    try:
        with no_grad():
            model(x if isinstance(x, Tensor) else Tensor(x))
    finally:
        for h in handles:
            h.remove()
    return totals[0], totals[1]
