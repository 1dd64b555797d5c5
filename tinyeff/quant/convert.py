"""Convert a calibrated (or QAT-trained) ``PreparedModel`` into an integer-only ``QuantizedModel``.

Per weighted layer: weights -> symmetric int8 per output channel (or one scale per tensor), bias ->
int32 ``rint(b / (s_in * s_w))``, output -> the observer's (scale, zero_point) with a fused ReLU
when one follows. The walk mirrors ``prepare.py``'s instrumentation. The last layer of the model,
when no ReLU follows it, keeps its int32 accumulators; ``QuantizedModel`` dequantizes them
(``acc * s_in * s_w``) as the only float step after the input quantization.

``QuantizedModel`` is an ``nn.Module`` whose forward takes the float (preprocessed) Tensor the float
model took, so ``tinyeff.train.evaluate`` runs it unchanged. ``simulate=True`` switches every layer to
its float64 reference (``QLayer.simulate``), used to check the integer path.
"""
import numpy as np

from tinyeff import nn
from tinyeff.nn.surgery import replace_child, sequence_stages
from tinyeff.models.resnet import BasicBlock, Bottleneck
from tinyeff.quant import islands
from tinyeff.quant import qmodules as qm
from tinyeff.quant.observers import make_observer
from tinyeff.quant.prepare import (CHAINS, RESIDUAL, SKIP, Observed, PreparedModel, integer_stages, observed_modules,
                                   residual_body)
from tinyeff.quant.qmodules.base import act_qmax
from tinyeff.quant.qmodules.plans import LayerPlans, one_pass
from tinyeff.quant.qparams import check_finite_input, quantize
from tinyeff.tensor import Tensor

__all__ = ["QuantizedModel", "convert", "quantize_weight", "float_weight"]

QAT_KEY = "qat_fake_quant"      # the parameter-transform key qat.py uses; skipped when reading weights


def float_weight(layer, name="weight"):
    """Parameter ``name`` with every transform applied except QAT's fake-quant (a pruning mask stays)."""
    value = layer._parameters[name]
    for key, fn in layer.param_transforms(name).items():
        if key != QAT_KEY:
            value = fn(value)
    return np.asarray(value.data, np.float32)


WEIGHT_BITS = (7, 8)


def check_weight_bits(weight_bits):
    if weight_bits not in WEIGHT_BITS:
        raise ValueError(f"quantize: weight_bits={weight_bits!r} is not supported; use 8 (int8) or 7 (codes in "
                         "[-63, 63], which AVX2's fast int8 kernel needs)")


def quantize_weight(w, per_channel=True, calibration="minmax", weight_bits=8):
    """Symmetric weights: (w_q int8 of w's shape, scale float32 (OC,)); zero stays zero.

    ``weight_bits=7`` keeps codes in [-63, 63]: every pair of adjacent weights then sums to at most
    126 in magnitude, so AVX2's vpmaddubsw (int16 pair sums) cannot saturate and the fast GEMM tile
    runs on every layer (csrc/int8_gemm/gemm_s8_avx2.h). The codes are the model's, so every ISA path computes
    the same logits.
    """
    check_weight_bits(weight_bits)
    obs = make_observer(calibration, dtype="int8", symmetric=True, per_channel=per_channel, axis=0)
    obs.observe(w)
    scale, zero_point = obs.qparams()
    qmax = 2 ** (weight_bits - 1) - 1
    scale = np.broadcast_to(np.asarray(scale, np.float32) * np.float32(127 / qmax), (w.shape[0],)).copy()
    return np.clip(quantize(w, scale, 0, "int8", axis=0), -qmax, qmax), scale


def _weighted(layer, in_qp, out_qp, relu, opts):
    w = float_weight(layer)
    w_q, w_scale = quantize_weight(w, opts["per_channel"], opts["weight_calibration"], opts["weight_bits"])
    bias_q = None
    if layer.bias is not None:
        acc_scale = np.float64(in_qp[0]) * w_scale.astype(np.float64)
        b = float_weight(layer, "bias").astype(np.float64)
        bias_q = np.clip(np.rint(b / acc_scale), -2**31, 2**31 - 1).astype(np.int32)
    if isinstance(layer, nn.Conv2d):
        return qm.QConv2d(w_q, w_scale, bias_q, in_qp, out_qp, layer.stride, layer.padding, relu,
                          opts["sparse"], opts["act_qmax"])
    return qm.QLinear(w_q, w_scale, bias_q, in_qp, out_qp, relu, opts["sparse"], opts["act_qmax"])


def _unobserved(module):
    return module.inner if isinstance(module, Observed) else module


def _convert_sequence(parent, qp, opts):
    # prepare() observed each stage's output: after its ReLU (fused into the integer layer) if one follows
    stages = {s.layer[0]: s for s in integer_stages(parent, unwrap=_unobserved)}
    fused = {s.relu[0] for s in stages.values() if s.relu is not None}
    layers = []
    for name, child in parent.named_children():
        if name in fused or isinstance(child, SKIP):
            continue
        if name in stages:
            relu = stages[name].relu
            observed = child if relu is None else relu[1]
            layer = _weighted(_unobserved(child), qp, observed.observer.qparams(), relu is not None, opts)
        elif isinstance(child, Observed) and isinstance(child.inner, RESIDUAL):
            layer = _convert_residual(child.inner, qp, child.observer.qparams(), opts)
        elif isinstance(child, Observed):                   # a float island
            layer = islands.QFloat(child.inner, child.island_path, qp, child.observer.qparams(), opts["act_qmax"])
        elif isinstance(child, nn.ReLU):
            layer = qm.QReLU(qp[1])
        elif isinstance(child, nn.ReLU6):
            layer = islands.QReLU6(qp, opts["act_qmax"])
        elif isinstance(child, nn.MaxPool2d):
            layer = qm.QMaxPool2d(child.kernel_size, child.stride)
        elif isinstance(child, nn.AdaptiveAvgPool2d):
            layer = qm.QGlobalAvgPool()
        elif isinstance(child, nn.Flatten):
            layer = qm.QFlatten()
        elif isinstance(child, BasicBlock):
            layer = _convert_block(child, qp, opts)
        elif isinstance(child, Bottleneck):
            layer = _convert_bottleneck(child, qp, opts)
        elif isinstance(child, RESIDUAL):                   # no identity add: just its body
            layer, qp = _convert_sequence(residual_body(child)[1], qp, opts)
        elif isinstance(child, CHAINS):
            layer, qp = _convert_sequence(child, qp, opts)
        else:
            raise ValueError(f"convert: no integer version of {type(child).__name__}; prepare() should have "
                             "made it a float island")
        qp = getattr(layer, "out_qparams", qp) if not isinstance(layer, qm.QSequential) else qp
        layers.append(layer)
    return qm.QSequential(layers), qp


def _add(a_qp, b_qp, out_qp, relu, opts):
    return qm.QAdd(a_qp, b_qp, out_qp, relu=relu, act_qmax=opts["act_qmax"])


def _convert_residual(block, qp_in, out_qp, opts):
    """Inverted residual / MBConv with its identity add: body, then QAdd (no ReLU)."""
    body, body_qp = _convert_sequence(residual_body(block)[1], qp_in, opts)
    return islands.QResidual(body, None, _add(body_qp, qp_in, out_qp, False, opts))


def _convert_bottleneck(block, qp_in, opts):
    conv1 = _weighted(block.conv1, qp_in, block.relu1.observer.qparams(), True, opts)
    conv2 = _weighted(block.conv2, conv1.out_qparams, block.relu2.observer.qparams(), True, opts)
    if not block.use_shortcut:
        conv3 = _weighted(block.conv3, conv2.out_qparams, block.relu3.observer.qparams(), True, opts)
        return qm.QSequential([conv1, conv2, conv3])
    conv3 = _weighted(block.conv3.inner, conv2.out_qparams, block.conv3.observer.qparams(), False, opts)
    shortcut, skip_qp = None, qp_in
    if isinstance(block.shortcut, nn.Sequential):
        shortcut, skip_qp = _convert_sequence(block.shortcut, qp_in, opts)
    add = _add(conv3.out_qparams, skip_qp, block.relu3.observer.qparams(), True, opts)
    return islands.QResidual(qm.QSequential([conv1, conv2, conv3]), shortcut, add)


def _convert_block(block, qp_in, opts):
    conv1 = _weighted(block.conv1, qp_in, block.relu1.observer.qparams(), True, opts)
    if not block.use_shortcut:
        conv2 = _weighted(block.conv2, conv1.out_qparams, block.relu2.observer.qparams(), True, opts)
        block_q = qm.QBasicBlock(conv1, conv2, None, None)
        block_q.out_qparams = conv2.out_qparams
        return block_q
    conv2 = _weighted(block.conv2.inner, conv1.out_qparams, block.conv2.observer.qparams(), False, opts)
    shortcut, skip_qp = None, qp_in
    if isinstance(block.shortcut, nn.Sequential):
        shortcut, skip_qp = _convert_sequence(block.shortcut, qp_in, opts)
    add = _add(conv2.out_qparams, skip_qp, block.relu2.observer.qparams(), True, opts)
    block_q = qm.QBasicBlock(conv1, conv2, shortcut, add)
    block_q.out_qparams = add.out_qparams
    return block_q


def _last_leaf(seq):
    while isinstance(seq, qm.QSequential) and seq.layers:
        parent, seq = seq, seq.layers[-1]
    return parent


def _raw_output(body):
    """Make the final linear/conv (if no ReLU follows it) return int32 accumulators."""
    parent = _last_leaf(body)
    last = parent.layers[-1]
    if isinstance(last, qm.QWeighted) and not last.relu:
        replace_child(parent, str(len(parent.layers) - 1), last.with_out_qparams(None))


class QuantizedModel(nn.Module):
    """Integer-only inference model: quantize the float input, run ``body``, dequantize the output.

    Attributes:
        body: a ``QSequential`` of integer layers.
        input_qparams: (scale, zero_point) of the uint8 input.
        simulate: run every layer's float64 reference instead of the integer kernels.
        arch, preprocess: copied from the float model (model files and ``evaluate`` need them).
        info: JSON-able description (mode, calibration, per_channel).
    """

    def __init__(self, body, input_qparams, arch=None, preprocess=None, info=None, output_qparams=None,
                 input_qmax=255):
        super().__init__()
        self.body = body
        self.input_qmax = int(input_qmax)        # 127 for 7-bit activations: the input codes too
        self.input_qparams = (np.float32(input_qparams[0]), int(input_qparams[1]))
        self.output_qparams = None if output_qparams is None else (np.float32(output_qparams[0]),
                                                                    int(output_qparams[1]))
        self.arch, self.preprocess, self.info = arch, preprocess, dict(info or {})
        self.simulate = False
        self._plans = LayerPlans()               # the input quantization's kernel call (qmodules/plans.py)
        self.eval()

    def quantize_input(self, x, nhwc=False):
        """uint8 codes of the float input, in its layout or (``nhwc``, a 4-D input) as (N, H, W, C):
        one pass of the ``quantize_f32_u8`` kernel (NaN/Inf refused, clamped at ``input_qmax``)."""
        x = np.asarray(x)
        if x.dtype.kind != "f":
            check_finite_input(x, "int8 model")              # integers: quantize as NumPy does
            q = np.minimum(quantize(x, self.input_qparams[0], self.input_qparams[1], "uint8"), self.input_qmax)
            return np.ascontiguousarray(q.transpose(0, 2, 3, 1)) if nhwc else q
        try:
            return self._plans.call(nhwc, "quantize_f32_u8", (x.astype(np.float32, copy=False),),
                                    self.input_qparams[0], self.input_qparams[1], self.input_qmax, nhwc)
        except ValueError:
            check_finite_input(x, "int8 model")             # the message names the model and the index
            raise

    def forward_int(self, q):
        """Integer output of the body for a uint8 input: int32 logits or uint8 codes."""
        return self.body.simulate(q) if self.simulate else self.body(q)

    def dequantize_output(self, out):
        last = _last_leaf(self.body).layers[-1]
        if out.dtype == np.int32:                            # raw accumulators of the last layer
            return (out * last.acc_scale.reshape(1, -1)).astype(np.float32)
        s, z = self.output_qparams                           # uint8 codes: the last quantization point
        return (np.float32(s) * (out.astype(np.int32) - z)).astype(np.float32)

    def forward(self, x):
        with one_pass():
            return self._forward(x)

    def _forward(self, x):
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        if data.ndim == 4 and not self.simulate and isinstance(self.body, qm.QSequential) and qm.runs_nhwc(self.body):
            out = self.body.forward_from_nhwc(self.quantize_input(data, nhwc=True))   # no NCHW copy
            # (a hooked body is called through Module.__call__ below, in NCHW, so its hooks run)
        else:
            out = self.forward_int(self.quantize_input(data))
        return Tensor(self.dequantize_output(out))

    def nbytes(self):
        """Bytes of every array the integer model holds (int8 weights, packed copies, int32 biases...)."""
        return self.body.nbytes()

    def extra_repr(self):
        return f"{self.info}, {self.nbytes()} bytes"


def convert(prepared, per_channel=True, weight_calibration="minmax", sparse=None, info=None, weight_bits=8,
            activation_bits=8):
    """Build the integer model from a calibrated ``PreparedModel``.

    Args:
        prepared: from ``prepare`` (then calibrated) or ``prepare_qat`` (then trained).
        per_channel: one weight scale per output channel (else one per tensor).
        weight_calibration: observer for weight ranges ("minmax" or "mse").
        sparse: True/False forces the sparse int8 kernels on/off; None uses them for layers at least
            ``qmodules.SPARSE_MIN`` sparse.
        weight_bits: 8, or 7 for weight codes in [-63, 63] (see ``quantize_weight``); recorded in the
            model header.
        activation_bits: 8, or 7: every activation (the input too) gets codes in [0, 127] (scale
            range / 127, requantization clamped at 127), PyTorch's ``reduce_range``. Then no pair of
            u8 x s8 products can saturate int16 (2 * 127 * 128 < 32768), so AVX2's vpmaddubsw runs
            8-bit weights exactly as well; the codes are the model's, the same on every ISA path.
            Sets the observers' ``quant_max``. Recorded in the model header.
    Returns:
        QuantizedModel.
    Raises:
        ValueError: an observer saw no data (calibrate first).
    """
    if not isinstance(prepared, PreparedModel):
        raise TypeError(f"convert: expected a PreparedModel from prepare()/prepare_qat(), got {type(prepared).__name__}")
    check_weight_bits(weight_bits)
    qmax = act_qmax(activation_bits)
    for _, module in observed_modules(prepared):
        module.observer.quant_max = qmax                  # the input's observer included
    opts = {"per_channel": per_channel, "weight_calibration": weight_calibration, "sparse": sparse,
            "weight_bits": weight_bits, "act_qmax": qmax}
    input_qp = prepared.input.observer.qparams()
    inner = prepared.model
    if isinstance(inner, BasicBlock):
        block = _convert_block(inner, input_qp, opts)
        body, output_qp = qm.QSequential([block]), block.out_qparams
    else:
        body, output_qp = _convert_sequence(inner, input_qp, opts)
    _raw_output(body)
    info = {"per_channel": per_channel, "weight_calibration": weight_calibration, "weight_bits": weight_bits,
            "activation_bits": activation_bits, **(info or {})}
    return QuantizedModel(body, input_qp, getattr(prepared, "arch", None), getattr(prepared, "preprocess", None),
                          info, output_qp, qmax)
