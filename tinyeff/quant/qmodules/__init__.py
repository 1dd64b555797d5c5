"""Integer-only layers: what a statically quantized model runs between its input Quant and output DeQuant.

Every activation between layers is a uint8 NumPy array with a per-tensor (scale, zero_point);
every weight is symmetric int8 per output channel (zero point 0); biases are int32 in units of
``scale_in * scale_w`` (so they add straight into the accumulators). Each layer has two forwards:

- ``forward(q)``: the integer path, through ``tinyeff.kernels`` only (conv2d_u8s8_requant_nhwc,
  im2col_u8, pack_s8, gemm_u8s8_requant, requantize_s32, add_u8, maxpool2d_u8, spconv_u8s8_csr).
- ``simulate(q)``: the same layer computed in float64 from the dequantized operands and re-quantized
  with ``np.rint``. It is the readable reference for the integer path: the two agree exactly on
  everything but the requantization, where the fixed-point multiplier (31-bit) and gemmlowp's
  round-half-away-from-zero can move an output by at most 1 (tests/quant/test_convert.py).

Requantization (Jacob et al. 2018, eq. 5-6; docs/int8.md): ``q_out = z_out + M * acc`` with
``M = s_in * s_w / s_out`` written as a 31-bit fixed-point multiplier and a power-of-two shift by
``quantize_multiplier``; a fused ReLU is the clamp ``q_out >= z_out``.

Residual add (``QAdd``, after TFLite): both inputs are rescaled to a common fine grid,
``(q - z) << 20`` times a fixed-point multiplier < 1, summed in int32, then requantized to the output.
Since each input is uint8, the rescaling is precomputed as a 256-entry int32 table per input: the
same integers, one lookup instead of five int64 passes; ``add_u8`` does lookups, sum and
requantization in one C pass (docs/int8.md, section 8).

Layout: ``forward(q)`` takes and returns NCHW like the float model. Layers with ``nhwc = True``
also have ``forward_nhwc(q)`` on (N, H, W, C), and ``QSequential`` keeps activations in NHWC across
a run of such layers: a conv's GEMM output (N*OH*OW, OC) *is* the next layer's NHWC input, so no
transpose happens between layers, only where the run starts and ends (for the seed CNN: a free
reshape of the 1-channel input, and one small transpose before ``QFlatten``). There, a conv followed
by a 2x2 / stride-2 ``QMaxPool2d`` runs as one GEMM that max-pools its int32 sums before
requantizing (exact: requantization is monotonic; ``gemm_u8s8_requant_rowmax``). Conv weights are
packed once in the matching (KH, KW, C) column order; integer sums do not depend on the order of
their terms, so both layouts give identical outputs.

Files: ``base.py`` (QLayer, layout helpers), ``weighted.py`` (QConv2d, QLinear), ``simple.py``
(ReLU, pooling, flatten, QAdd), ``nhwc.py`` (the NHWC scheduler: QSequential, QBasicBlock). Model
files: ``tinyeff.quant.qio``. Left out: grouped/depthwise convolutions, average pooling other than
global, max-pool padding.
"""
from tinyeff.quant.qmodules.base import QLayer, to_nchw, to_nhwc
from tinyeff.quant.qmodules.nhwc import QBasicBlock, QSequential, runs_nhwc
from tinyeff.quant.qmodules.simple import QAdd, QFlatten, QGlobalAvgPool, QMaxPool2d, QReLU
from tinyeff.quant.qmodules.weighted import SPARSE_MIN, QConv2d, QLinear, QWeighted

LAYERS = {cls.__name__: cls for cls in (QConv2d, QLinear, QReLU, QMaxPool2d, QGlobalAvgPool, QFlatten, QAdd,
                                        QSequential, QBasicBlock)}

__all__ = ["LAYERS", "SPARSE_MIN", "QAdd", "QBasicBlock", "QConv2d", "QFlatten", "QGlobalAvgPool", "QLayer",
           "QLinear", "QMaxPool2d", "QReLU", "QSequential", "QWeighted", "runs_nhwc", "to_nchw", "to_nhwc"]
