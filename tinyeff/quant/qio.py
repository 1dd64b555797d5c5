"""Quantized model files: int8 weights, float32 scales, int32 biases and a JSON layer tree, no pickle.

A quantized model is saved with ``tinyeff.io.save(..., kind="quantized")``: the header's ``qmodel``
field is the layer tree (each node ``{"type", ...hyper-parameters, "name"}``), and each node's arrays
are stored under ``<name>.<array>`` (``body.3.weight_q``...). Loading rebuilds every layer with
``from_record``, which re-derives what is cheap to derive (packed weights, fixed-point multipliers)
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
        spec["out_qparams"] = qm._qp_json(layer.out_qparams)
        return spec
    if isinstance(layer, islands.QResidual):
        return {"type": "QResidual", **{part: None if getattr(layer, part) is None else
                                        tree_to_record(getattr(layer, part), f"{name}.{part}", arrays)
                                        for part in ("body", "shortcut", "add")}}
    spec, own = layer.record()
    for key, value in own.items():
        arrays[f"{name}.{key}"] = value
    spec["name"] = name
    return spec


LEAVES = {**qm.LAYERS, "QReLU6": islands.QReLU6}


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
        block.out_qparams = qm._qp(spec["out_qparams"])
        return block
    if kind not in LEAVES:
        raise ModelFileError(f"quantized model file: unknown layer type {kind!r}; known: {sorted(LEAVES)}")
    prefix = spec["name"] + "."
    own = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix) and "." not in k[len(prefix):]}
    return LEAVES[kind].from_record(spec, own)


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


def model_to_record(model, arrays):
    """The JSON spec of a ``QuantizedModel`` or ``DynamicModel``; its arrays are added to ``arrays``."""
    if isinstance(model, DynamicModel):
        return model.to_record(arrays)
    return {"type": "QuantizedModel", "input_qparams": [float(model.input_qparams[0]), model.input_qparams[1]],
            "output_qparams": None if model.output_qparams is None else
            [float(model.output_qparams[0]), model.output_qparams[1]],
            "body": tree_to_record(model.body, "body", arrays)}


def model_from_record(spec, arrays, arch=None):
    """Inverse of ``model_to_record``; ``arch`` (the file's record) rebuilds any float islands."""
    if spec["type"] == "DynamicModel":
        return DynamicModel.from_record(spec, arrays)
    return QuantizedModel(tree_from_record(spec["body"], arrays, folded_skeleton(arch)), spec["input_qparams"],
                          output_qparams=spec.get("output_qparams"))


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

