"""Float models -> ONNX nodes: one emitter per layer type, found through the class hierarchy.

An emitter ``fn(g, module, x, prefix) -> y`` adds the ONNX nodes that compute ``module(x)`` to the
``GraphBuilder`` ``g`` (x and y are tensor names). Layers map one to one onto ONNX operators (Conv,
BatchNormalization, Gemm, Relu, MaxPool, ...); containers whose ``forward`` is more than a chain
(ResNet blocks, inverted residuals, squeeze-excitation) have their own emitter that repeats that
forward in ONNX terms (onnx_blocks.py). Weights are read through ``module.param(name)``, so a pruning
mask is part of the exported weight. A layer type without an emitter is refused by name.
"""
import numpy as np

from tinyeff import nn

EMITTERS = {}


def emitter(*classes):
    """Register the decorated function as the ONNX emitter of ``classes``."""
    def wrap(fn):
        for cls in classes:
            EMITTERS[cls] = fn
        return fn
    return wrap


def emit(g, module, x, prefix):
    """Nodes for ``module(x)``; the most specific registered class wins."""
    for cls in type(module).__mro__:
        if cls in EMITTERS:
            return EMITTERS[cls](g, module, x, prefix)
    raise ValueError(f"export_onnx: no ONNX form for layer {prefix or 'model'!r} ({type(module).__name__}); "
                     f"exportable layers: {', '.join(sorted(c.__name__ for c in EMITTERS))}")


def weight(module, name):
    """Parameter ``name`` as the forward sees it (masks applied), float32."""
    return np.asarray(module.param(name).data, np.float32)


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def emit_children(g, module, x, prefix, names=None):
    """Run the children ``names`` (default: all, in order) as a chain."""
    for name in (names if names is not None else list(module._modules)):
        x = emit(g, module._modules[name], x, _join(prefix, name))
    return x


@emitter(nn.Sequential)
def _sequential(g, module, x, prefix):
    return emit_children(g, module, x, prefix)


@emitter(nn.Identity, nn.Dropout)
def _identity(g, module, x, prefix):
    return x


@emitter(nn.Conv2d)
def _conv(g, m, x, prefix):
    inputs = [x, g.const(f"{prefix}.weight", weight(m, "weight"))]
    if m.bias is not None:
        inputs.append(g.const(f"{prefix}.bias", weight(m, "bias")))
    k, p = m.kernel_size, m.padding
    return g.node("Conv", inputs, prefix, kernel_shape=[k, k], strides=[m.stride] * 2, pads=[p] * 4,
                  dilations=[m.dilation] * 2, group=m.groups)


@emitter(nn.Linear)
def _linear(g, m, x, prefix):
    inputs = [x, g.const(f"{prefix}.weight", weight(m, "weight"))]
    if m.bias is not None:
        inputs.append(g.const(f"{prefix}.bias", weight(m, "bias")))
    return g.node("Gemm", inputs, prefix, transB=1)


@emitter(nn.BatchNorm2d, nn.BatchNorm1d)
def _batch_norm(g, m, x, prefix):
    if m.training:
        raise ValueError(f"export_onnx: {prefix} is in training mode; call model.eval() before exporting")
    names = [g.const(f"{prefix}.{k}", np.asarray(v, np.float32)) for k, v in
             (("weight", weight(m, "weight")), ("bias", weight(m, "bias")), ("running_mean", m.running_mean),
              ("running_var", m.running_var))]
    return g.node("BatchNormalization", [x, *names], prefix, epsilon=float(m.eps))


@emitter(nn.ReLU)
def _relu(g, m, x, prefix):
    return g.node("Relu", [x], prefix)


@emitter(nn.LeakyReLU)
def _leaky(g, m, x, prefix):
    return g.node("LeakyRelu", [x], prefix, alpha=float(m.negative_slope))


@emitter(nn.ELU)
def _elu(g, m, x, prefix):
    return g.node("Elu", [x], prefix, alpha=float(m.alpha))


@emitter(nn.Sigmoid)
def _sigmoid(g, m, x, prefix):
    return g.node("Sigmoid", [x], prefix)


@emitter(nn.Tanh)
def _tanh(g, m, x, prefix):
    return g.node("Tanh", [x], prefix)


@emitter(nn.MaxPool2d)
def _max_pool(g, m, x, prefix):
    return g.node("MaxPool", [x], prefix, kernel_shape=[m.kernel_size] * 2, strides=[m.stride] * 2,
                  pads=[m.padding] * 4)


@emitter(nn.AvgPool2d)
def _avg_pool(g, m, x, prefix):
    return g.node("AveragePool", [x], prefix, kernel_shape=[m.kernel_size] * 2, strides=[m.stride] * 2,
                  pads=[m.padding] * 4, count_include_pad=1)      # zero padding counts, as in ops.avg_pool2d


@emitter(nn.AdaptiveAvgPool2d)
def _global_pool(g, m, x, prefix):
    return g.node("GlobalAveragePool", [x], prefix)


@emitter(nn.Flatten)
def _flatten(g, m, x, prefix):
    return g.node("Flatten", [x], prefix, axis=int(m.start_dim))
