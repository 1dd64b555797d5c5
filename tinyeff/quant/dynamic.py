"""Dynamic quantization: int8 weights stored ahead of time, activations quantized on the fly per batch.

For Linear-heavy models (the MLP) most time and bytes are in the weight matrices, and activation
ranges vary with the input, so each ``DynamicQLinear`` measures its input's min/max per batch,
quantizes it to uint8, runs the int8 GEMM (``gemm_u8s8_packed``, int32 sums), corrects the zero
point and dequantizes with ``s_x * s_w``; the float bias and the layers between stay float.
No calibration is needed. Left out: dynamic convolutions (static quantization covers CNNs).
"""
import numpy as np

from tinyeff import kernels, nn
from tinyeff.quant.convert import float_weight, quantize_weight
from tinyeff.quant.qparams import check_finite_input, compute_qparams, quantize
from tinyeff.tensor import Tensor

__all__ = ["DynamicQLinear", "DynamicModel", "quantize_dynamic"]

FLOAT_LAYERS = {"ReLU": nn.ReLU, "Flatten": nn.Flatten, "Identity": nn.Identity, "Dropout": nn.Dropout}


class DynamicQLinear(nn.Module):
    """y = dequant(int8 GEMM(quant(x), w_q)) + b, with x's (scale, zero_point) taken from each batch.

    A Module (its arrays plain attributes, nothing trains), so forward hooks count and time it."""

    def __init__(self, weight_q, weight_scale, bias):
        super().__init__()
        self.weight_q, self.weight_scale = np.ascontiguousarray(weight_q), np.asarray(weight_scale, np.float32)
        self.bias = None if bias is None else np.asarray(bias, np.float32)
        self.packed = kernels.get("pack_s8")(np.ascontiguousarray(self.weight_q.T))      # (IN, OUT)

    def forward(self, x):
        data = np.asarray(x.data, np.float32)
        check_finite_input(data, "dynamic int8 Linear")
        scale, zero_point = compute_qparams(float(data.min(initial=0.0)), float(data.max(initial=0.0)))
        q = quantize(data, scale, zero_point)                                          # (N, IN) uint8
        acc = kernels.get("gemm_u8s8_packed")(q, self.packed) - np.int32(zero_point) * self.packed.colsum
        y = acc.astype(np.float32) * (np.float32(scale) * self.weight_scale)
        return Tensor(y if self.bias is None else y + self.bias)

    def nbytes(self):
        return int(self.weight_q.nbytes + self.weight_scale.nbytes + self.packed.data.nbytes +
                   self.packed.colsum.nbytes + (0 if self.bias is None else self.bias.nbytes))


class DynamicModel(nn.Module):
    """A Sequential-like model: DynamicQLinear layers and parameter-free float layers, in order."""

    def __init__(self, layers, arch=None, preprocess=None, info=None):
        super().__init__()
        for i, layer in enumerate(layers):
            self._modules[str(i)] = layer            # children "0", "1", ...: named like nn.Sequential's
        self.arch, self.preprocess, self.info = arch, preprocess, dict(info or {"mode": "dynamic"})
        self.eval()

    @property
    def layers(self):
        return list(self._modules.values())

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def nbytes(self):
        return sum(layer.nbytes() for layer in self.layers if isinstance(layer, DynamicQLinear))

    def to_record(self, arrays):
        specs = []
        for i, layer in enumerate(self.layers):
            if isinstance(layer, DynamicQLinear):
                arrays.update({f"layers.{i}.weight_q": layer.weight_q, f"layers.{i}.weight_scale": layer.weight_scale})
                if layer.bias is not None:
                    arrays[f"layers.{i}.bias"] = layer.bias
                specs.append({"type": "DynamicQLinear"})
            else:
                specs.append({"type": type(layer).__name__})
        return {"type": "DynamicModel", "layers": specs}

    @classmethod
    def from_record(cls, spec, arrays):
        layers = []
        for i, layer_spec in enumerate(spec["layers"]):
            if layer_spec["type"] == "DynamicQLinear":
                layers.append(DynamicQLinear(arrays[f"layers.{i}.weight_q"], arrays[f"layers.{i}.weight_scale"],
                                             arrays.get(f"layers.{i}.bias")))
            else:
                layers.append(FLOAT_LAYERS[layer_spec["type"]]().eval())
        return cls(layers)


def quantize_dynamic(model, per_channel=True):
    """Replace every Linear of a Sequential ``model`` by a ``DynamicQLinear``.

    Raises:
        ValueError: the model is not a Sequential of Linear/ReLU/Flatten/Identity/Dropout layers.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"quantize_dynamic: expected an nn.Sequential of Linear layers (e.g. the mlp), got "
                         f"{type(model).__name__}; use static quantization (--mode static) or QAT for CNNs")
    layers = []
    for name, layer in model.named_children():
        if isinstance(layer, nn.Linear):
            w_q, w_scale = quantize_weight(float_weight(layer), per_channel)
            bias = None if layer.bias is None else float_weight(layer, "bias")
            layers.append(DynamicQLinear(w_q, w_scale, bias))
        elif type(layer).__name__ in FLOAT_LAYERS:
            layers.append(FLOAT_LAYERS[type(layer).__name__](*([layer.start_dim] if isinstance(layer, nn.Flatten)
                                                               else [])).eval())
        else:
            raise ValueError(f"quantize_dynamic: layer 'model.{name}' ({type(layer).__name__}) is not supported "
                             f"(dynamic quantization covers Linear, {', '.join(FLOAT_LAYERS)}); "
                             "for a CNN use static quantization (--mode static) or QAT (--mode qat)")
    return DynamicModel(layers, getattr(model, "arch", None), getattr(model, "preprocess", None),
                        {"mode": "dynamic", "per_channel": per_channel})

