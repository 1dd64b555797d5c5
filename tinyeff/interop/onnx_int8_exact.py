"""Integer models -> ONNX with tinyeff's integer arithmetic spelled out: bit-exact in ONNX Runtime.

The QDQ form (onnx_int8.py) lets the runtime requantize in float32, rounding half to even, so a
few activations land one step away from tinyeff's and the difference grows with depth. This form
computes what tinyeff's kernels compute, with standard integer operators:

- conv / linear: ``ConvInteger`` / ``MatMulInteger`` (uint8 activations with their zero point,
  int8 weights; a conv weight goes in as uint8 ``w + 128`` with zero point 128, the form every
  runtime implements), then the int32 bias;
- requantization (``requantize_s32``, docs/int8.md): in int64, ``x = sat32((acc + bias) << left)``,
  gemmlowp's doubling high multiply ``(x * m + nudge) / 2**31`` (truncating ``Div``), then the
  rounding right shift (``Mod`` gives the remainder, ties away from zero), ``+ z_out``, clamp;
- residual add: ``Gather`` on QAdd's two 256-entry tables, the sum requantized the same way;
- global average pool: ``(sum + count // 2) // count`` in integers.

Slower than QDQ (int64 elementwise work) and not what accelerators pattern-match; its use is an
export whose every uint8 activation equals tinyeff's. Float islands (``QFloat``) stay float in both
runtimes, so a model with islands matches up to float rounding at the island outputs.
"""
import numpy as np

from tinyeff.interop.onnx_int8 import _Q, float_island, relu6
from tinyeff.quant import islands
from tinyeff.quant import qmodules as qm

I64 = 7         # onnx.TensorProto.INT64
U8 = 2          # onnx.TensorProto.UINT8
DOUBLE = 11
FLOAT = 1


def _per_channel(values, rank):
    """(OC,) -> (1, OC, 1, 1) for NCHW tensors or (1, OC) for (N, OC)."""
    values = np.asarray(values, np.int64)
    return values.reshape((1, -1, 1, 1) if rank == 4 else (1, -1))


def requantize(g, acc64, multiplier, shift, z_out, relu, rank, prefix, qmax=255):
    """int64 sums (already including the bias) -> uint8, exactly as ``requantize_s32``."""
    multiplier, shift = np.asarray(multiplier, np.int64), np.asarray(shift, np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    c = lambda name, v: g.const(f"{prefix}.{name}", _per_channel(v, rank) if np.ndim(v) else np.int64(v))
    x = g.node("Clip", [acc64, c("int32_min", -2**31), c("int32_max", 2**31 - 1)], f"{prefix}.sat")
    x = g.node("Clip", [g.node("Mul", [x, c("pow_left", 2 ** left)], f"{prefix}.left"),
                        c("sat_min", -2**31), c("sat_max", 2**31 - 1)], f"{prefix}.sat_left")
    prod = g.node("Mul", [x, c("multiplier", multiplier)], f"{prefix}.prod")
    nonneg = g.node("GreaterOrEqual", [prod, c("zero", 0)], f"{prefix}.nonneg")
    nudge = g.node("Where", [nonneg, c("nudge_pos", 1 << 30), c("nudge_neg", 1 - (1 << 30))], f"{prefix}.nudge")
    high = g.node("Div", [g.node("Add", [prod, nudge], f"{prefix}.nudged"), c("two31", 1 << 31)],
                  f"{prefix}.high")                                  # integer Div truncates toward zero
    pot = c("pow_right", 2 ** right)
    rem = g.node("Mod", [high, pot], f"{prefix}.rem")                # fmod=0: sign of the divisor, = high & mask
    floor = g.node("Div", [g.node("Sub", [high, rem], f"{prefix}.down"), pot], f"{prefix}.floor")
    negative = g.node("Cast", [g.node("Less", [high, c("zero2", 0)], f"{prefix}.neg")], f"{prefix}.neg64", to=I64)
    threshold = g.node("Add", [c("half_mask", (2 ** right - 1) >> 1), negative], f"{prefix}.threshold")
    up = g.node("Cast", [g.node("Greater", [rem, threshold], f"{prefix}.up")], f"{prefix}.up64", to=I64)
    q = g.node("Add", [g.node("Add", [floor, up], f"{prefix}.rounded"), c("z_out", int(z_out))], f"{prefix}.zp")
    q = g.node("Clip", [q, c("qmin", int(z_out) if relu else 0), c("qmax", int(qmax))], f"{prefix}.clamp")
    return g.node("Cast", [q], f"{prefix}.u8", to=U8)


def _weighted(g, layer, t, prefix):
    x_zp = g.const(f"{prefix}.x_zero_point", np.uint8(t.qparams[1]))
    if isinstance(layer, qm.QConv2d):
        k, rank = layer.weight_q.shape[2], 4
        w = g.const(f"{prefix}.weight_u8", (layer.weight_q.astype(np.int16) + 128).astype(np.uint8))
        acc = g.node("ConvInteger", [t.name, w, x_zp, g.const(f"{prefix}.w_zero_point", np.uint8(128))], prefix,
                     kernel_shape=[k, k], strides=[layer.stride] * 2, pads=[layer.padding] * 4)
    else:
        rank = 2
        w = g.const(f"{prefix}.weight_t", np.ascontiguousarray(layer.weight_q.T))               # (IN, OUT) int8
        acc = g.node("MatMulInteger", [t.name, w, x_zp, g.const(f"{prefix}.w_zero_point", np.int8(0))], prefix)
    acc = g.node("Add", [g.node("Cast", [acc], f"{prefix}.acc64", to=I64),
                         g.const(f"{prefix}.bias", _per_channel(layer.bias_q, rank))], f"{prefix}.biased")
    if layer.out_qparams is None:      # the raw output: acc * s_in * s_w in float64, as QuantizedModel does
        real = g.node("Mul", [g.node("Cast", [acc], f"{prefix}.acc_f64", to=DOUBLE),
                              g.const(f"{prefix}.acc_scale", layer.acc_scale.reshape(_per_channel(layer.acc_scale,
                                                                                                  rank).shape))],
                      f"{prefix}.real")
        return g.node("Cast", [real], f"{prefix}.out", to=FLOAT)
    q = requantize(g, acc, layer.multiplier, layer.shift, layer.out_qparams[1], layer.relu, rank, f"{prefix}.rq",
                   layer.act_qmax)
    return _Q(q, layer.out_qparams)


def _add(g, layer, a, b, prefix):
    def looked_up(t, table, name):
        index = g.node("Cast", [t.name], f"{prefix}.{name}.index", to=I64)
        values = g.node("Gather", [g.const(f"{prefix}.{name}.table", table.astype(np.int64)), index],
                        f"{prefix}.{name}.gather")
        return values
    total = g.node("Add", [looked_up(a, layer.table_a, "a"), looked_up(b, layer.table_b, "b")], f"{prefix}.sum")
    q = requantize(g, total, layer.multiplier, layer.shift, layer.out_qparams[1], layer.relu, 0, f"{prefix}.rq",
                   layer.act_qmax)
    return _Q(q, layer.out_qparams)


def _global_avg_pool(g, t, count, prefix):
    total = g.node("ReduceSum", [g.node("Cast", [t.name], f"{prefix}.i64", to=I64),
                                 g.const(f"{prefix}.axes", np.array([2, 3], np.int64))], f"{prefix}.sum", keepdims=1)
    mean = g.node("Div", [g.node("Add", [total, g.const(f"{prefix}.half", np.int64(count // 2))], f"{prefix}.r"),
                          g.const(f"{prefix}.count", np.int64(count))], f"{prefix}.div")
    return _Q(g.node("Cast", [mean], f"{prefix}.u8", to=U8), t.qparams)


def emit_layer(g, layer, t, probe, prefix):
    """(output ``_Q`` or float name, probe output): ``probe`` is a uint8 array the layer also runs on,
    for the shapes ONNX needs as constants (the pooled plane size)."""
    if isinstance(layer, qm.QSequential):
        for i, child in enumerate(layer.layers):
            t, probe = emit_layer(g, child, t, probe, f"{prefix}.{i}")
        return t, probe
    if isinstance(layer, islands.QResidual):
        out, p_out = emit_layer(g, layer.body, t, probe, f"{prefix}.body")
        skip, p_skip = (t, probe) if layer.shortcut is None else \
            emit_layer(g, layer.shortcut, t, probe, f"{prefix}.shortcut")
        return _add(g, layer.add, out, skip, f"{prefix}.add"), layer.add.forward(p_out, p_skip)
    if isinstance(layer, qm.QBasicBlock):
        out, p_out = emit_layer(g, layer.conv1, t, probe, f"{prefix}.conv1")
        out, p_out = emit_layer(g, layer.conv2, out, p_out, f"{prefix}.conv2")
        if layer.add is None:
            return out, p_out
        skip, p_skip = (t, probe) if layer.shortcut is None else \
            emit_layer(g, layer.shortcut, t, probe, f"{prefix}.shortcut")
        return _add(g, layer.add, out, skip, f"{prefix}.add"), layer.add.forward(p_out, p_skip)
    out = layer.forward(probe)
    if isinstance(layer, islands.QFloat):         # float in both runtimes: equal up to float rounding
        return float_island(g, layer, t, prefix), out
    if isinstance(layer, islands.QReLU6):
        return relu6(g, layer, t, prefix), out
    if isinstance(layer, (qm.QConv2d, qm.QLinear)):
        return _weighted(g, layer, t, prefix), out
    if isinstance(layer, qm.QReLU):
        z = g.const(f"{prefix}.zero_point", np.uint8(layer.zero_point))
        return _Q(g.node("Max", [t.name, z], prefix), t.qparams), out
    if isinstance(layer, qm.QMaxPool2d):
        return _Q(g.node("MaxPool", [t.name], prefix, kernel_shape=[layer.kernel_size] * 2,
                         strides=[layer.stride] * 2), t.qparams), out
    if isinstance(layer, qm.QGlobalAvgPool):
        return _global_avg_pool(g, t, probe.shape[2] * probe.shape[3], prefix), out
    if isinstance(layer, qm.QFlatten):
        return _Q(g.node("Flatten", [t.name], prefix, axis=1), t.qparams), out
    raise ValueError(f"export_onnx: no exact integer ONNX form for layer {prefix!r} ({type(layer).__name__})")


def emit_quantized_exact(g, model, x, example_shape):
    """Nodes for a ``QuantizedModel`` on float input ``x``; returns the float output's name."""
    from tinyeff.interop.onnx_int8 import dequantize_linear, quantize_linear
    probe = model.quantize_input(np.zeros((1, *example_shape), np.float32))
    x_q = quantize_linear(g, x, model.input_qparams, "input", model.input_qmax)
    out, _ = emit_layer(g, model.body, x_q, probe, "body")
    return dequantize_linear(g, out, "output") if isinstance(out, _Q) else out
