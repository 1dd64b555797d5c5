"""Integer-model pieces for the ImageNet-style zoo: float islands, ReLU6, and residual blocks.

- ``QFloat``: a layer with no integer kernel (a depthwise conv, SiLU, a squeeze-excitation gate, a
  padded max-pool...) runs in float between a dequantize and a quantize: ``q_out =
  quantize(module(scale_in * (q - z_in)), scale_out, z_out)``. The island keeps its float module
  (BatchNorm already folded); ``float_layers(model)`` lists the islands, so a summary shows what
  did not run in integers. In a model file an island is stored as the path of its module in the
  folded float architecture plus that module's tensors; loading rebuilds the architecture from the
  file's ``arch`` record and takes the module from it.
- ``QReLU6``: ReLU6 in integers is a clamp to [z, z + round(6 / scale)] on the same grid.
- ``QResidual``: ``body`` (a QSequential), an optional ``shortcut``, then a ``QAdd`` (with or
  without ReLU): MobileNetV2's inverted residual, EfficientNet's MBConv and ResNet's bottleneck.
"""
import copy

import numpy as np

from tinyeff.quant import qmodules as qm
from tinyeff.quant.qparams import quantize
from tinyeff.tensor import Tensor, no_grad


def _qp(value):
    return None if value is None else (np.float32(value[0]), int(value[1]))


def _qp_json(qp):
    return None if qp is None else [float(qp[0]), int(qp[1])]


class QFloat(qm.QLayer):
    """Dequantize -> float ``module`` -> quantize. ``path`` names the module in the folded float model."""
    compute_dtype = "fp32"      # what tinyeff.flops reports its MACs as

    def __init__(self, module, path, in_qparams, out_qparams, act_qmax=255):
        super().__init__()
        self.module, self.path = module.eval(), path          # a child: flops and timing hooks see its layers
        self.in_qparams, self.out_qparams = _qp(in_qparams), _qp(out_qparams)
        self.act_qmax = int(act_qmax)                         # 127 for 7-bit activations

    def forward(self, q):
        s_in, z_in = self.in_qparams
        x = (np.float32(s_in) * (q.astype(np.int32) - z_in)).astype(np.float32)
        with no_grad():
            y = self.module(Tensor(x)).data
        return np.minimum(quantize(y, self.out_qparams[0], self.out_qparams[1], "uint8"), np.uint8(self.act_qmax))

    def nbytes(self):
        return sum(int(a.nbytes) for a in self.module.state_dict().values())

    def record(self):
        spec = {"type": "QFloat", "path": self.path, "module": type(self.module).__name__,
                "in_qparams": _qp_json(self.in_qparams), "out_qparams": _qp_json(self.out_qparams),
                "act_qmax": self.act_qmax}
        return spec, dict(self.module.state_dict())

    @classmethod
    def from_record(cls, spec, arrays, skeleton):
        """``skeleton``: the folded float model the path refers to (built from the file's arch)."""
        if skeleton is None:
            raise ValueError(f"float island {spec['path']!r}: the file has no architecture to rebuild it from")
        module = copy.deepcopy(skeleton.get_submodule(spec["path"]))
        module.load_state_dict(arrays)
        return cls(module, spec["path"], spec["in_qparams"], spec["out_qparams"], spec.get("act_qmax", 255))

    def __repr__(self):
        return f"QFloat({self.path}: {type(self.module).__name__}, float32 between dequantize/quantize)"


class QReLU6(qm.QLayer):
    """min(max(x, 0), 6) on a uint8 grid: a clamp of the codes, (scale, zero_point) unchanged."""
    nhwc = True

    def __init__(self, qparams, act_qmax=255):
        super().__init__()
        scale, self.zero_point = float(qparams[0]), int(qparams[1])
        self.scale, self.act_qmax = scale, int(act_qmax)
        self.six = int(min(self.act_qmax, self.zero_point + round(6.0 / scale)))

    def forward(self, q):
        return np.clip(q, self.zero_point, self.six).astype(np.uint8)

    forward_nhwc = forward

    def record(self):
        return {"type": "QReLU6", "qparams": [self.scale, self.zero_point], "act_qmax": self.act_qmax}, {}

    @classmethod
    def from_record(cls, spec, arrays):
        return cls(spec["qparams"], spec.get("act_qmax", 255))


class QResidual(qm.QLayer):
    """``add(body(q), shortcut(q) or q)``; the add carries the output (scale, zero_point) and the ReLU."""

    def __init__(self, body, shortcut, add):
        super().__init__()
        self.body, self.shortcut, self.add = body, shortcut, add
        self.out_qparams = add.out_qparams

    def _run(self, q, how):
        def run(layer, *inputs):              # "forward": through __call__, so hooks run
            return layer(*inputs) if how == "forward" else getattr(layer, how)(*inputs)
        out = run(self.body, q)
        skip = q if self.shortcut is None else run(self.shortcut, q)
        return run(self.add, out, skip)

    def forward(self, q):
        return self._run(q, "forward")

    def simulate(self, q):
        return self._run(q, "simulate")

    def nbytes(self):
        return sum(m.nbytes() for m in (self.body, self.shortcut, self.add) if m is not None)


def float_layers(model):
    """[(where, QFloat)] for every float island of a quantized model (its ``body`` tree)."""
    found = []

    def walk(layer, where):
        if isinstance(layer, QFloat):
            found.append((where, layer))
        for i, child in enumerate(getattr(layer, "layers", None) or []):
            walk(child, f"{where}.{i}")
        for part in ("conv1", "conv2", "body", "shortcut", "add"):
            child = getattr(layer, part, None)
            if isinstance(child, qm.QLayer):
                walk(child, f"{where}.{part}")
    walk(getattr(model, "body", model), "body")
    return found


def summary_lines(model):
    """One line per float island (what runs in float32 between dequantize and quantize), or a line saying none."""
    islands = float_layers(model)
    if not islands:
        return ["every layer runs in integers"]
    return [f"{len(islands)} layer(s) run in float32 between dequantize/quantize (no integer kernel):"] + \
        [f"  {where}: {layer.path} ({type(layer.module).__name__})" for where, layer in islands]
