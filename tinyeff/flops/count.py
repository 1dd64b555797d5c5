"""Count MACs, FLOPs, parameters and memory per layer through forward hooks.

The counter runs one forward pass and reads the shapes each leaf module actually saw, so a model
built for 32x32 and fed 28x28 is counted at 28x28. Definitions, used everywhere in tinyeff:

* 1 MAC (multiply-accumulate) = 2 FLOPs. Conv2d: MACs = N*OC*OH*OW * (C/groups)*KH*KW; Linear:
  MACs = rows * in * out. ``flops`` = 2*MACs + the other arithmetic (bias adds, BatchNorm's
  scale-and-shift = 2 per element, ReLU's compare = 1, pooling's compares/adds).
* dense vs effective vs nonzero: effective MACs count only stored nonzero weights, and only when a
  sparse kernel ran. A layer that ran one sets ``module.sparse_kernel_ran = True`` (and optionally
  ``module.weight_nnz``); a pruned layer run by a dense kernel still pays every MAC. Nonzero MACs
  are the MACs on nonzero weights whatever kernel ran: what a pruned model would cost on a kernel
  that skips every zero, the saving pruning makes available.
* dtype: the executed arithmetic, from the layer's output array (``module.compute_dtype`` wins).
* parameter bytes in the stored format (CSR with int32 indices when a sparse kernel ran).
* peak training memory (estimate) = saved activations (every layer output plus the input)
  + params + grads + optimizer state (SGD momentum: 1 copy, Adam: 2).

Left out: arithmetic outside modules (the residual ``out + shortcut`` in a ResNet block, a few
thousand adds against millions of MACs) and allocator overheads.
"""
import contextlib
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from tinyeff.energy.model import sparse_weight_bytes
from tinyeff.kernels.layout.geometry import check_conv_geometry

DTYPE_NAMES = {"float64": "fp64", "float32": "fp32", "float16": "fp16", "bfloat16": "bf16",
               "int8": "int8", "uint8": "int8", "int32": "int32"}
OPTIMIZER_STATE_COPIES = {"none": 0, "sgd": 0, "momentum": 1, "sgd-momentum": 1, "adam": 2}


@dataclass
class LayerCount:
    """What one leaf module did during the counted forward pass (summed over calls)."""
    name: str
    type: str
    input_shape: tuple
    output_shape: tuple
    dtype: str
    macs: int = 0               # dense MACs
    macs_effective: int = 0     # MACs a sparse kernel actually ran (== macs for dense kernels)
    macs_nonzero: int = 0       # MACs on nonzero weights, whichever kernel ran
    other_flops: int = 0        # bias, normalization, activation and pooling arithmetic
    params: int = 0
    params_nonzero: int = 0
    param_bytes: int = 0        # stored format
    input_bytes: int = 0
    activation_bytes: int = 0   # output size
    sparse: bool = False
    calls: int = 0

    @property
    def flops(self):
        return 2 * self.macs + self.other_flops

    @property
    def flops_effective(self):
        return 2 * self.macs_effective + self.other_flops

    def as_dict(self):
        d = asdict(self)
        d.update(flops=self.flops, flops_effective=self.flops_effective)
        return d


@dataclass
class FlopReport:
    """Per-layer counts and totals for one forward pass of ``input_shape``."""
    layers: list
    input_shape: tuple
    input_bytes: int
    optimizer: str = "sgd-momentum"
    totals: dict = field(default_factory=dict)

    def __post_init__(self):
        t = {k: sum(getattr(l, k) for l in self.layers)
             for k in ("macs", "macs_effective", "macs_nonzero", "other_flops", "flops", "flops_effective",
                       "params", "params_nonzero", "param_bytes", "activation_bytes")}
        by_dtype = {}
        for l in self.layers:
            by_dtype[l.dtype] = by_dtype.get(l.dtype, 0) + l.macs_effective
        t["macs_effective_by_dtype"] = by_dtype
        fp32_param_bytes = 4 * t["params"]           # grads and optimizer state are fp32
        copies = OPTIMIZER_STATE_COPIES[self.optimizer]
        t["train_peak_bytes"] = (self.input_bytes + t["activation_bytes"] + t["param_bytes"]
                                 + fp32_param_bytes * (1 + copies))
        self.totals = t

    def as_dict(self):
        return {"input_shape": list(self.input_shape), "optimizer": self.optimizer,
                "layers": [l.as_dict() for l in self.layers], "totals": self.totals}


def dtype_name(dtype):
    name = np.dtype(dtype).name if not hasattr(dtype, "name") else dtype.name
    return DTYPE_NAMES.get(name, name)


def count(model, input_shape, dtype=np.float32, optimizer="sgd-momentum", rng=None):
    """Run one forward pass of a random input and count every leaf module.

    Args:
        model: a tinyeff Module.
        input_shape: full input shape including the batch, e.g. (1, 3, 32, 32).
        dtype: input dtype.
        optimizer: "sgd", "sgd-momentum" or "adam" (state copies in the training-memory estimate).
        rng: numpy Generator for the input (default seeded 0).

    Returns:
        FlopReport with layers in execution order.

    Raises:
        ValueError: unknown optimizer.
    """
    from tinyeff.tensor import Tensor, no_grad
    if optimizer not in OPTIMIZER_STATE_COPIES:
        raise ValueError(f"flops.count: optimizer={optimizer!r}; use one of {sorted(OPTIMIZER_STATE_COPIES)}")
    rng = rng or np.random.default_rng(0)
    x = Tensor(rng.standard_normal(input_shape).astype(dtype))
    layers = {}
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad(), leaf_calls(model, lambda name, layer, x_in, y, _: _record(name, layer, x_in, y, layers)):
            model(x)
    finally:
        model.train(was_training)
    return FlopReport(list(layers.values()), tuple(input_shape), x.data.nbytes, optimizer)


def _record(name, module, x, y, layers):
    entry = layers.get(name)
    if entry is None:
        entry = layers[name] = LayerCount(
            name, type(module).__name__, tuple(x.shape), tuple(y.shape),
            getattr(module, "compute_dtype", None) or INTEGER_DTYPES.get(type(module).__name__)
            or dtype_name(y.dtype))
        _count_params(module, entry)
    macs, other = _arithmetic(module, x, y)
    entry.macs += macs
    entry.macs_effective += _effective(module, macs)
    entry.macs_nonzero += _nonzero(module, macs)
    entry.other_flops += other
    entry.input_bytes += x.nbytes
    entry.activation_bytes += y.nbytes
    entry.calls += 1


# Layers that compute like a Conv2d/Linear/... under another class name: the sparse layers of
# tinyeff.compress.sparse_infer and the integer layers of tinyeff.quant.
KIND_ALIASES = {"SparseConv2d": "Conv2d", "SparseLinear": "Linear", "QConv2d": "Conv2d", "QLinear": "Linear",
                "DynamicQLinear": "Linear",
                "QReLU": "ReLU", "QMaxPool2d": "MaxPool2d", "QGlobalAvgPool": "AdaptiveAvgPool2d", "QAdd": "Add"}
# int8 x int8 MACs, whatever the output type
INTEGER_DTYPES = {"QConv2d": "int8", "QLinear": "int8", "DynamicQLinear": "int8"}


@contextlib.contextmanager
def leaf_calls(model, on_call):
    """Within the block, call ``on_call(name, layer, x, y, seconds)`` after every call of a leaf module
    (float layers, and the integer layers of a QuantizedModel, which are Modules too) through forward
    hooks. ``x`` and ``y`` are arrays; ``seconds`` is the call's wall time. Used for counting and for
    per-layer timing."""
    started, handles = {}, []
    for name, module in model.named_modules():
        if list(module.children()):
            continue
        name = name or type(module).__name__
        handles.append(module.register_forward_pre_hook(
            lambda m, inputs, _n=name: started.__setitem__(_n, time.perf_counter())))
        handles.append(module.register_forward_hook(
            lambda m, inputs, out, _n=name: on_call(_n, m, _array(inputs[0]), _array(out),
                                                    time.perf_counter() - started[_n])))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _array(t):
    return t.data if hasattr(t, "data") and isinstance(t.data, np.ndarray) else np.asarray(t)


def _weight(module):
    w = getattr(module, "weight_q", None)
    if w is None:
        w = getattr(module, "weight", None)
    return None if w is None else _array(w)


def _arithmetic(module, x, y):
    """(MACs, other FLOPs) of one call, from the input x and output y arrays."""
    kind = KIND_ALIASES.get(type(module).__name__, type(module).__name__)
    w = _weight(module)
    has_bias = any(getattr(module, b, None) is not None for b in ("bias", "bias_f32", "bias_q"))
    if kind == "Conv2d":
        n, oc, oh, ow = y.shape
        if getattr(module, "pool", 1) > 1:     # a max-pool fused into the conv: y is pooled, MACs are not
            oh, ow = check_conv_geometry(x.shape, w.shape[2], w.shape[3], module.stride, module.padding,
                                         module.dilation, type(module).__name__)
        macs = n * oc * oh * ow * int(np.prod(w.shape[1:]))      # (C/groups)*KH*KW per output
        return macs, y.size if has_bias else 0
    if kind == "Linear":
        rows = y.size // y.shape[-1]
        return rows * w.shape[0] * w.shape[1], y.size if has_bias else 0
    if kind.startswith("BatchNorm"):
        return 0, 2 * y.size                                      # folded scale and shift
    if kind in ("ReLU", "LeakyReLU"):
        return 0, y.size
    if kind == "MaxPool2d":
        return 0, y.size * (module.kernel_size ** 2 - 1)          # compares
    if kind == "AvgPool2d":
        return 0, y.size * module.kernel_size ** 2                # adds + one scale
    if kind == "AdaptiveAvgPool2d":
        return 0, x.size + y.size
    if kind == "Add":
        return 0, y.size
    return 0, 0


def _ran_sparse(module):
    """True when a sparse kernel ran this layer: flagged by float sparse layers, or an int8 layer's
    ``sparse`` switch (its forward then calls the sparse int8 kernel)."""
    return bool(getattr(module, "sparse_kernel_ran", False)) or getattr(module, "sparse", None) is True


def _effective(module, macs):
    if not _ran_sparse(module):
        return macs
    w = _weight(module)
    nnz = getattr(module, "weight_nnz", None)
    nnz = int(np.count_nonzero(w)) if nnz is None else int(nnz)
    return macs * nnz // max(1, w.size)


def _nonzero(module, macs):
    """``macs`` scaled by the weight's nonzero fraction (every MAC of a layer uses each weight equally often)."""
    w = _weight(module) if macs else None
    if w is None or w.size == 0:
        return macs
    nnz = getattr(module, "weight_nnz", None)
    nnz = int(np.count_nonzero(w)) if nnz is None else int(nnz)
    return macs * nnz // w.size


def _stored_params(module):
    """name -> array of the layer's own weights, whatever holds them (Parameters, a packed sparse
    weight, int8 arrays)."""
    if hasattr(module, "weight_q"):
        return {"weight": module.weight_q, "bias": module.bias_q}
    if hasattr(module, "packed") and hasattr(module, "bias_f32"):
        return {"weight": _weight(module), "bias": module.bias_f32}
    if not hasattr(module, "named_parameters"):
        return {}
    return {n: _array(p) for n, p in module.named_parameters() if "." not in n}


def _count_params(module, entry):
    sparse = _ran_sparse(module)
    if hasattr(module, "weight_q"):                 # an integer layer knows its real footprint
        bias = getattr(module, "bias_q", None)
        bias = getattr(module, "bias", None) if bias is None else bias        # a dynamic layer's float bias
        bias = np.zeros(0) if bias is None else bias
        entry.params = int(module.weight_q.size + bias.size)
        entry.params_nonzero = int(np.count_nonzero(module.weight_q) + np.count_nonzero(bias))
        entry.param_bytes, entry.sparse = int(module.nbytes()), sparse
        return
    for pname, data in _stored_params(module).items():
        if data is None:
            continue
        entry.params += data.size
        nnz = int(np.count_nonzero(data))
        entry.params_nonzero += nnz
        if sparse and pname == "weight":
            entry.param_bytes += sparse_weight_bytes(nnz, data.shape[0], data.itemsize)
        else:
            entry.param_bytes += data.nbytes
    entry.sparse = sparse
