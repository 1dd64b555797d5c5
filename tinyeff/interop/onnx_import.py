"""Import an ONNX file of a supported architecture (tinyeff's own exports, torch.onnx exports).

ONNX graphs name their tensors freely (``onnx::Conv_497``, ``features.0.0.weight``), so weights
are matched by *position*, not by name: tinyeff runs the architecture once and records the order
its Conv2d, BatchNorm2d and Linear layers execute in; the ONNX graph's Conv, BatchNormalization
and Gemm/MatMul nodes are read in graph order, and the two sequences are zipped with a shape check
at every step. torch.onnx folds each BatchNorm into the conv before it (a conv with a bias and no
BatchNormalization node); tinyeff's BN then becomes ``y + bias`` (running mean 0, variance 1,
weight sqrt(1 + eps)), so the imported model computes exactly the folded graph. The number of
classes, input channels and ResNet stem come from the first conv and the last Gemm, as in
torch_import.py.
"""
import os

import numpy as np

from tinyeff import nn
from tinyeff.errors import ModelFileError
from tinyeff.interop.torch_import import check_arch, IMAGENET_PREPROCESS

WEIGHTED_OPS = ("Conv", "BatchNormalization", "Gemm", "MatMul")


def _read(path):
    from tinyeff.interop.onnx_graph import require_onnx
    onnx = require_onnx()
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:        # protobuf's DecodeError and friends
        raise ModelFileError(f"{path}: not a readable ONNX file ({exc})") from exc
    init = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:   # some exporters keep weights in Constant nodes
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            init[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)
    return model.graph, init


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return a.i if a.type == a.INT else a.f
    return default


def onnx_layers(graph, init, where):
    """[(op, {arrays})] for every Conv, BatchNormalization and Gemm/MatMul(+Add) in graph order."""
    layers, consumers = [], {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        if node.op_type not in WEIGHTED_OPS:
            continue
        arrays = [init.get(name) for name in node.input[1:]]
        if node.op_type == "Conv":
            layers.append(("Conv", {"weight": arrays[0], "bias": arrays[1] if len(arrays) > 1 else None}))
        elif node.op_type == "BatchNormalization":
            layers.append(("BatchNormalization", {"weight": arrays[0], "bias": arrays[1], "running_mean": arrays[2],
                                                  "running_var": arrays[3], "eps": _attr(node, "epsilon", 1e-5)}))
        elif arrays and arrays[0] is not None:
            w = arrays[0] if node.op_type == "MatMul" or not _attr(node, "transB", 0) else arrays[0].T
            bias = arrays[1] if len(arrays) > 1 else None
            if node.op_type == "MatMul":            # Linear as MatMul + Add(bias)
                adds = [c for c in consumers.get(node.output[0], []) if c.op_type == "Add"]
                bias = next((init[i] for c in adds for i in c.input if i in init), None)
            layers.append(("Linear", {"weight": np.ascontiguousarray(w.T), "bias": bias}))
        if any(a is None for a in layers[-1][1].values() if not isinstance(a, float)) and \
                layers[-1][1].get("weight") is None:
            raise ModelFileError(f"{where}: {node.op_type} node {node.name!r} takes its weights from another node, "
                                 "not an initializer; export with constant folding on")
    return layers


def execution_order(model, input_shape):
    """tinyeff's Conv2d / BatchNorm2d / Linear layers in the order one forward pass runs them."""
    from tinyeff.tensor import Tensor, no_grad
    order, handles = [], []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
            handles.append(m.register_forward_pre_hook(lambda mod, inputs: order.append(mod)))
    try:
        with no_grad():
            model.eval()(Tensor(np.zeros((1, *input_shape), np.float32)))
    finally:
        for h in handles:
            h.remove()
    return order


def _set(layer, name, value, where, step):
    target = getattr(layer, name)
    current = target.data if hasattr(target, "data") and not isinstance(target, np.ndarray) else target
    value = np.asarray(value, np.float32)
    if value.shape != current.shape:
        raise ModelFileError(f"{where}: ONNX weight #{step} ({type(layer).__name__}.{name}) has shape "
                             f"{value.shape}, the {type(layer).__name__} expects {current.shape}; "
                             "is --arch right?")
    if isinstance(target, np.ndarray):
        layer.set_buffer(name, value)
    else:
        target.data = value.copy()


def _identity_bn(bn, bias):
    """BN that adds ``bias``: what a conv with a folded BN leaves behind."""
    bn.set_buffer("running_mean", np.zeros(bn.num_features, np.float32))
    bn.set_buffer("running_var", np.ones(bn.num_features, np.float32))
    bn.weight.data = np.full(bn.num_features, np.sqrt(1.0 + bn.eps), np.float32)
    bn.bias.data = np.zeros(bn.num_features, np.float32) if bias is None else np.asarray(bias, np.float32).copy()


def load_weights(model, ops, order, where):
    """Zip tinyeff's ``order`` with the ONNX ``ops``; a folded BN takes its conv's bias."""
    i = 0
    for k, layer in enumerate(order):
        if isinstance(layer, nn.BatchNorm2d):
            if i < len(ops) and ops[i][0] == "BatchNormalization":
                for name in ("weight", "bias", "running_mean", "running_var"):
                    _set(layer, name, ops[i][1][name], where, i)
                i += 1
            else:
                prev = ops[i - 1][1] if i and ops[i - 1][0] == "Conv" else {}
                _identity_bn(layer, prev.get("bias"))
            continue
        kind = "Conv" if isinstance(layer, nn.Conv2d) else "Linear"
        if i >= len(ops) or ops[i][0] != kind:
            found = ops[i][0] if i < len(ops) else "the end of the graph"
            raise ModelFileError(f"{where}: expected a {kind} as weighted layer #{i} but found {found}; "
                                 f"the file is not a {model.arch['name']}")
        _set(layer, "weight", ops[i][1]["weight"], where, i)
        folded_bn = k + 1 < len(order) and isinstance(order[k + 1], nn.BatchNorm2d)
        if layer.bias is not None:
            bias = ops[i][1]["bias"]
            _set(layer, "bias", np.zeros(layer.bias.shape) if bias is None else bias, where, i)
        elif ops[i][1]["bias"] is not None and not folded_bn and np.any(ops[i][1]["bias"]):
            raise ModelFileError(f"{where}: ONNX layer #{i} has a bias that tinyeff's {kind} has no place for")
        i += 1
    if i != len(ops):
        raise ModelFileError(f"{where}: {len(ops) - i} weighted ONNX layers left over after the last tinyeff "
                             f"layer; the file is bigger than a {model.arch['name']}")


def import_onnx(path, arch):
    """Build tinyeff's ``arch`` from the ONNX file at ``path`` (weights matched by position).

    Raises:
        ValueError: unknown ``arch``. ModelFileError: unreadable file, or a graph whose weighted
            layers do not match the architecture (the message says which layer).
        ImportError: the onnx package is missing.
    """
    from tinyeff import models
    from tinyeff.models.input_shape import input_shape
    check_arch(arch)
    path = os.fspath(path)
    graph, init = _read(path)
    ops = onnx_layers(graph, init, path)
    convs, linears = [o for o in ops if o[0] == "Conv"], [o for o in ops if o[0] == "Linear"]
    if not convs or not linears:
        raise ModelFileError(f"{path}: the graph has {len(convs)} Conv and {len(linears)} Gemm/MatMul layers; "
                             f"a {arch} has both")
    stem, fc = convs[0][1]["weight"], linears[-1][1]["weight"]
    kwargs = {"in_channels": int(stem.shape[1]), "num_classes": int(fc.shape[0])}
    if arch.startswith("resnet"):
        kwargs.update(stem="imagenet" if stem.shape[-1] == 7 else "cifar", width=int(stem.shape[0]))
    model = models.create(arch, **kwargs)
    c = kwargs["in_channels"]
    load_weights(model, ops, execution_order(model, (c, 32, 32)), path)
    model.preprocess = dict(IMAGENET_PREPROCESS) if c == 3 and kwargs.get("stem") != "cifar" else None
    assert input_shape(model)[0] == c
    return model.eval()
