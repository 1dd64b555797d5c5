"""Quantized model files: int8 weights, float32 scales, int32 biases and a JSON layer tree, no pickle.

A quantized model is saved with ``tinyeff.io.save(..., kind="quantized")``: the header's ``qmodel``
field is the layer tree (each node ``{"type", ...hyper-parameters, "name"}``), and each node's arrays
are stored under ``<name>.<array>`` (``body.3.weight_q``...). Loading rebuilds every layer with
``layer_from_record``, which re-derives what is cheap to derive (packed weights, fixed-point multipliers)
so the file holds only the essential tensors. ``tinyeff.io.load(path)`` reads the kind through
``load_quantized`` and returns a ``QuantizedModel``; ``load(path, expect_kind="float")`` refuses the
file with a clear ``ModelFileError``.

The same file kind holds dynamically quantized models (``"dynamic"`` nodes, dynamic.py).
"""
import os

import numpy as np

from tinyeff import io
from tinyeff.errors import ModelFileError
from tinyeff.quant import islands
from tinyeff.quant import qmodules as qm
from tinyeff.quant.convert import QuantizedModel
from tinyeff.quant.dynamic import DynamicModel

__all__ = ["save_quantized", "load_quantized", "model_to_record", "model_from_record", "tree_to_record",
           "tree_from_record", "file_and_memory_bytes"]

KIND = "quantized"


def _qp(spec_value):
    return None if spec_value is None else (np.float32(spec_value[0]), int(spec_value[1]))


def _qp_json(qp):
    return None if qp is None else [float(qp[0]), int(qp[1])]


def layer_record(layer):
    """(JSON spec, dict of arrays) describing one integer leaf layer: what ``layer_from_record`` needs."""
    spec = {"type": type(layer).__name__}
    if isinstance(layer, qm.QWeighted):
        spec.update(in_qparams=_qp_json(layer.in_qparams), out_qparams=_qp_json(layer.out_qparams),
                    relu=bool(layer.relu), sparse=bool(layer.sparse), act_qmax=layer.act_qmax)
        if isinstance(layer, qm.QConv2d):
            spec.update(stride=layer.stride, padding=layer.padding)
        return spec, {"weight_q": layer.weight_q, "weight_scale": layer.weight_scale, "bias_q": layer.bias_q}
    if isinstance(layer, (islands.QReLU6, islands.QFloat)):
        return layer.record()
    if isinstance(layer, qm.QReLU):
        spec["zero_point"] = layer.zero_point
    elif isinstance(layer, qm.QMaxPool2d):
        spec.update(kernel_size=layer.kernel_size, stride=layer.stride)
    elif isinstance(layer, qm.QAdd):
        spec.update(a_qparams=_qp_json(layer.a_qparams), b_qparams=_qp_json(layer.b_qparams),
                    out_qparams=_qp_json(layer.out_qparams), relu=bool(layer.relu), act_qmax=layer.act_qmax)
    return spec, {}


def layer_from_record(spec, arrays):
    """Inverse of ``layer_record``; packed weights and fixed-point multipliers are re-derived."""
    kind = spec["type"]
    if kind == "QConv2d":
        return qm.QConv2d(arrays["weight_q"], arrays["weight_scale"], arrays["bias_q"], _qp(spec["in_qparams"]),
                          _qp(spec["out_qparams"]), spec["stride"], spec["padding"], spec["relu"], spec["sparse"],
                          spec.get("act_qmax", 255))
    if kind == "QLinear":
        return qm.QLinear(arrays["weight_q"], arrays["weight_scale"], arrays["bias_q"], _qp(spec["in_qparams"]),
                          _qp(spec["out_qparams"]), spec["relu"], spec["sparse"], spec.get("act_qmax", 255))
    if kind == "QReLU":
        return qm.QReLU(spec["zero_point"])
    if kind == "QMaxPool2d":
        return qm.QMaxPool2d(spec["kernel_size"], spec["stride"])
    if kind == "QAdd":
        return qm.QAdd(_qp(spec["a_qparams"]), _qp(spec["b_qparams"]), _qp(spec["out_qparams"]), spec["relu"],
                       spec.get("act_qmax", 255))
    if kind == "QReLU6":
        return islands.QReLU6.from_record(spec, arrays)
    return qm.LAYERS[kind]()                                   # QGlobalAvgPool, QFlatten: no state


def tree_to_record(layer, name, arrays):
    """The JSON spec of ``layer`` (recursively); its arrays are added to ``arrays`` under ``name.``."""
    if isinstance(layer, qm.QSequential):
        return {"type": "QSequential", "layers": [tree_to_record(child, f"{name}.{i}", arrays)
                                                  for i, child in enumerate(layer.layers)]}
    if isinstance(layer, qm.QBasicBlock):
        spec = {"type": "QBasicBlock"}
        for part in ("conv1", "conv2", "shortcut", "add"):
            child = getattr(layer, part)
            spec[part] = None if child is None else tree_to_record(child, f"{name}.{part}", arrays)
        spec["out_qparams"] = _qp_json(layer.out_qparams)
        return spec
    if isinstance(layer, islands.QResidual):
        return {"type": "QResidual", **{part: None if getattr(layer, part) is None else
                                        tree_to_record(getattr(layer, part), f"{name}.{part}", arrays)
                                        for part in ("body", "shortcut", "add")}}
    spec, own = layer_record(layer)
    for key, value in own.items():
        arrays[f"{name}.{key}"] = value
    spec["name"] = name
    return spec


def tree_from_record(spec, arrays, skeleton=None):
    """Inverse of ``tree_to_record``. ``skeleton()`` returns the folded float model float islands
    take their module from (built on first use from the file's architecture)."""
    kind = spec.get("type")
    if kind == "QSequential":
        return qm.QSequential([tree_from_record(child, arrays, skeleton) for child in spec["layers"]])
    if kind == "QResidual":
        parts = {p: None if spec[p] is None else tree_from_record(spec[p], arrays, skeleton)
                 for p in ("body", "shortcut", "add")}
        return islands.QResidual(**parts)
    if kind == "QFloat":
        prefix = spec["name"] + "."
        own = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        return islands.QFloat.from_record(spec, own, skeleton() if skeleton else None)
    if kind == "QBasicBlock":
        parts = {p: None if spec[p] is None else tree_from_record(spec[p], arrays, skeleton)
                 for p in ("conv1", "conv2", "shortcut", "add")}
        block = qm.QBasicBlock(**parts)
        block.out_qparams = _qp(spec["out_qparams"])
        return block
    if kind not in qm.LAYERS and kind != "QReLU6":
        raise ModelFileError(f"quantized model file: unknown layer type {kind!r}; known: "
                             f"{sorted(qm.LAYERS) + ['QFloat', 'QReLU6', 'QResidual']}")
    prefix = spec["name"] + "."
    own = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix) and "." not in k[len(prefix):]}
    return layer_from_record(spec, own)


def model_to_record(model, arrays):
    """The JSON spec of a ``QuantizedModel`` or ``DynamicModel``; its arrays are added to ``arrays``."""
    if isinstance(model, DynamicModel):
        return model.to_record(arrays)
    return {"type": "QuantizedModel", "input_qparams": [float(model.input_qparams[0]), model.input_qparams[1]],
            "input_qmax": model.input_qmax,
            "output_qparams": None if model.output_qparams is None else
            [float(model.output_qparams[0]), model.output_qparams[1]],
            "body": tree_to_record(model.body, "body", arrays)}


def folded_skeleton(arch):
    """A function returning the folded float model of ``arch`` (weights not drawn), built once."""
    built = []

    def get():
        if not built:
            from tinyeff import models
            from tinyeff.nn.init import shapes_only
            from tinyeff.quant.fold import fold_batchnorm
            if not arch:
                raise ValueError("the file has float layers but no architecture record to rebuild them from")
            with shapes_only():
                built.append(fold_batchnorm(models.create(arch["name"], **arch.get("kwargs", {}))))
        return built[0]
    return get


def model_from_record(spec, arrays, arch=None):
    """Inverse of ``model_to_record``; ``arch`` (the file's record) rebuilds any float islands."""
    if spec["type"] == "DynamicModel":
        return DynamicModel.from_record(spec, arrays)
    return QuantizedModel(tree_from_record(spec["body"], arrays, folded_skeleton(arch)), spec["input_qparams"],
                          output_qparams=spec.get("output_qparams"), input_qmax=spec.get("input_qmax", 255))


def save_quantized(model, path, **header_fields):
    """Save a ``QuantizedModel`` (or dynamic model) to ``path``; return the file size in bytes."""
    arrays = {}
    spec = model_to_record(model, arrays)
    return io.save(model, path, kind=KIND, arrays=arrays, qmodel=spec, preprocess=model.preprocess,
                   quant_info=model.info, **header_fields)


def load_quantized(header, arrays):
    """The ``io`` reader of kind "quantized": rebuild the integer model from a file's header and arrays."""
    spec = header.get("qmodel")
    if not isinstance(spec, dict) or "type" not in spec:
        raise ModelFileError("quantized model file: the header has no 'qmodel' layer tree; re-save it with "
                             "tinyeff.quant.save_quantized")
    try:
        model = model_from_record(spec, arrays, header.get("arch"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"quantized model file: cannot rebuild the integer model: {exc!r}") from exc
    model.arch, model.preprocess = header.get("arch"), header.get("preprocess")
    model.info = dict(header.get("quant_info") or {})
    return model


def file_and_memory_bytes(model, path):
    """(file size in bytes, bytes of arrays held in memory) for a saved model."""
    return os.path.getsize(path), int(model.nbytes())

