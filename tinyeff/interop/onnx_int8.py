"""Integer models -> ONNX in QDQ form, with tinyeff's own scales, zero points and int8 weights.

QDQ ("quantize-dequantize") is ONNX's portable way to say which tensors are integers: every uint8
activation of the tinyeff model becomes ``QuantizeLinear`` with its (scale, zero_point), every
consumer reads it back through ``DequantizeLinear``, weights are int8 initializers with per-channel
scales (``axis=0``) and biases int32 with scale ``s_in * s_w`` -- exactly the integers tinyeff
stores. ONNX Runtime fuses ``DQ -> Conv -> Q`` into QLinearConv (integer GEMM, float
requantization rounding half to even), so its activations match tinyeff's integer path within one
step of the grid at a rounding tie (tinyeff's fixed-point requantization rounds half away from zero).
A fused ReLU is a ``Relu`` before the ``QuantizeLinear`` (same as clamping at the zero point).
The last layer, whose int32 sums tinyeff dequantizes, ends in float without a final Quantize.

Layers with no integer kernel in tinyeff (``QFloat`` islands: dequantize -> float op -> quantize)
export the same way, their float module through the float emitters, so the graph says what ran in
float. Dynamically quantized models (float activations, int8
weights quantized per batch) are refused: ONNX's DynamicQuantizeLinear rounds its ranges differently.
"""
import numpy as np

from tinyeff.quant import islands
from tinyeff.quant import qmodules as qm


class _Q:
    """A uint8 tensor in the graph: its name and (scale, zero_point)."""

    def __init__(self, name, qparams):
        self.name, self.qparams = name, (np.float32(qparams[0]), int(qparams[1]))


def _qp_consts(g, prefix, qparams):
    return (g.const(f"{prefix}.scale", np.float32(qparams[0])),
            g.const(f"{prefix}.zero_point", np.uint8(qparams[1])))


def quantize_linear(g, x, qparams, prefix, qmax=255):
    """Float tensor ``x`` -> QuantizeLinear to uint8 with ``qparams``, then a uint8 Clip at ``qmax``
    when the model has 7-bit activations (``act_qmax`` 127: QuantizeLinear alone saturates at 255)."""
    q = g.node("QuantizeLinear", [x, *_qp_consts(g, prefix, qparams)], f"{prefix}.q")
    if qmax < 255:
        q = g.node("Clip", [q, g.const(f"{prefix}.qmin", np.uint8(0)), g.const(f"{prefix}.qmax", np.uint8(qmax))],
                   f"{prefix}.q7")
    return _Q(q, qparams)


def dequantize_linear(g, t, prefix):
    """uint8 ``t`` -> its float value through DequantizeLinear."""
    return g.node("DequantizeLinear", [t.name, *_qp_consts(g, f"{prefix}.in", t.qparams)], f"{prefix}.dq")


def _per_channel(g, prefix, q, scale):
    """DequantizeLinear of an int8/int32 initializer with one scale per output channel (axis 0)."""
    inputs = [g.const(f"{prefix}_q", q), g.const(f"{prefix}.scale", np.asarray(scale, np.float32))]
    inputs.append(g.const(f"{prefix}.zero_point", np.zeros(len(scale), q.dtype)))
    return g.node("DequantizeLinear", inputs, f"{prefix}.dq", axis=0)


def _finish(g, y, layer, prefix):
    if layer.relu:
        y = g.node("Relu", [y], f"{prefix}.relu")
    if layer.out_qparams is None:       # the model's raw int32 output: float acc * s_in * s_w
        return y
    return quantize_linear(g, y, layer.out_qparams, prefix, layer.act_qmax)


def _weighted(g, layer, t, prefix):
    x = dequantize_linear(g, t, prefix)
    w = _per_channel(g, f"{prefix}.weight", layer.weight_q, layer.weight_scale)
    b = _per_channel(g, f"{prefix}.bias", layer.bias_q, layer.acc_scale.astype(np.float32))
    if isinstance(layer, qm.QConv2d):
        k = layer.weight_q.shape[2]
        y = g.node("Conv", [x, w, b], prefix, kernel_shape=[k, k], strides=[layer.stride] * 2,
                   pads=[layer.padding] * 4)
    else:
        y = g.node("Gemm", [x, w, b], prefix, transB=1)
    return _finish(g, y, layer, prefix)


def _float_op(g, t, prefix, op_type, out_qparams=None, **attrs):
    """dequantize -> ``op_type`` -> quantize (to ``out_qparams``, default the input's)."""
    y = g.node(op_type, [dequantize_linear(g, t, prefix)], prefix, **attrs)
    return quantize_linear(g, y, out_qparams or t.qparams, prefix)


def _add(g, layer, a, b, prefix):
    y = g.node("Add", [dequantize_linear(g, a, f"{prefix}.a"), dequantize_linear(g, b, f"{prefix}.b")], prefix)
    if layer.relu:
        y = g.node("Relu", [y], f"{prefix}.relu")
    return quantize_linear(g, y, layer.out_qparams, prefix, layer.act_qmax)


def _block(g, block, t, prefix):
    out = emit_layer(g, block.conv2, emit_layer(g, block.conv1, t, f"{prefix}.conv1"), f"{prefix}.conv2")
    if block.add is None:
        return out
    skip = t if block.shortcut is None else emit_layer(g, block.shortcut, t, f"{prefix}.shortcut")
    return _add(g, block.add, out, skip, f"{prefix}.add")


def float_island(g, layer, t, prefix):
    """A ``QFloat`` island: dequantize, the float module's own ONNX nodes, quantize."""
    from tinyeff.interop.onnx_float import emit
    y = emit(g, layer.module, dequantize_linear(g, t, prefix), f"{prefix}.float")
    return quantize_linear(g, y, layer.out_qparams, prefix, layer.act_qmax)


def relu6(g, layer, t, prefix):
    """QReLU6's clamp [z, z + round(6/s)] as a uint8 Clip (exact)."""
    lo, hi = g.const(f"{prefix}.lo", np.uint8(layer.zero_point)), g.const(f"{prefix}.hi", np.uint8(layer.six))
    return _Q(g.node("Clip", [t.name, lo, hi], prefix), t.qparams)


def emit_layer(g, layer, t, prefix):
    """Nodes for one integer layer on the uint8 tensor ``t``; returns a ``_Q`` or, at the end, a float name."""
    if isinstance(layer, islands.QFloat):
        return float_island(g, layer, t, prefix)
    if isinstance(layer, islands.QReLU6):
        return relu6(g, layer, t, prefix)
    if isinstance(layer, islands.QResidual):
        out = emit_layer(g, layer.body, t, f"{prefix}.body")
        skip = t if layer.shortcut is None else emit_layer(g, layer.shortcut, t, f"{prefix}.shortcut")
        return _add(g, layer.add, out, skip, f"{prefix}.add")
    if isinstance(layer, qm.QSequential):
        for i, child in enumerate(layer.layers):
            t = emit_layer(g, child, t, f"{prefix}.{i}")
        return t
    if isinstance(layer, qm.QBasicBlock):
        return _block(g, layer, t, prefix)
    if isinstance(layer, (qm.QConv2d, qm.QLinear)):
        return _weighted(g, layer, t, prefix)
    if isinstance(layer, qm.QReLU):
        return _float_op(g, t, prefix, "Relu")
    if isinstance(layer, qm.QMaxPool2d):       # max commutes with dequantization: stays in uint8
        return _Q(g.node("MaxPool", [t.name], prefix, kernel_shape=[layer.kernel_size] * 2,
                         strides=[layer.stride] * 2), t.qparams)
    if isinstance(layer, qm.QGlobalAvgPool):
        return _float_op(g, t, prefix, "GlobalAveragePool")
    if isinstance(layer, qm.QFlatten):
        return _Q(g.node("Flatten", [t.name], prefix, axis=1), t.qparams)
    raise ValueError(f"export_onnx: no ONNX form for integer layer {prefix!r} ({type(layer).__name__})")


def emit_quantized(g, model, x):
    """Nodes for a ``QuantizedModel`` on float input ``x``; returns the float output's name."""
    if not isinstance(getattr(model, "body", None), qm.QLayer):
        raise ValueError(f"export_onnx: {type(model).__name__} is not a statically quantized model; "
                         "export the float model, or quantize it with `tinyeff quantize --mode static`")
    out = emit_layer(g, model.body, quantize_linear(g, x, model.input_qparams, "input", model.input_qmax), "body")
    return dequantize_linear(g, out, "output") if isinstance(out, _Q) else out
