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

Each layer also knows how to describe itself for a model file: ``record() -> (spec, arrays)`` and
``LAYERS[spec["type"]].from_record(spec, arrays)`` (see qio.py). Left out: grouped/depthwise
convolutions, average pooling other than global, max-pool padding.
"""
import numpy as np

from tinyeff import kernels
from tinyeff.quant.qparams import quantize

SPARSE_MIN = 0.5     # a layer whose weight is at least this sparse runs through the sparse int8 kernels


def to_nhwc(q):
    """(N, C, H, W) -> contiguous (N, H, W, C); a 1-channel tensor only changes its shape."""
    return np.ascontiguousarray(q.transpose(0, 2, 3, 1))


def to_nchw(q):
    """(N, H, W, C) -> contiguous (N, C, H, W)."""
    return np.ascontiguousarray(q.transpose(0, 3, 1, 2))


def _qm(real):
    """(multiplier, shift) int32 arrays for positive reals, by the int8 kernels' own rule (kernels/layout/fixed_point.py)."""
    from tinyeff.kernels.layout.fixed_point import quantize_multiplier   # NOTE: a plain helper, not a registered kernel
    return quantize_multiplier(np.asarray(real, np.float64))


def _fixed_point_multiply(x, multiplier, shift):
    """gemmlowp's MultiplyByQuantizedMultiplier on int64 ``x`` (|x| < 2**31) without the 8-bit clamp.

    ``x * multiplier * 2**(shift - 31)``: a saturating-free doubling high multiply and a rounding
    right shift, both rounding half away from zero, as ``requantize_s32`` does (kernels/int8_eltwise/spec.py).
    """
    x = np.asarray(x, np.int64) << max(shift, 0)
    total = x * multiplier + np.where(x * multiplier >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))                    # truncate toward 0
    right = max(-shift, 0)
    mask = (1 << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def _requant_float(y, out_qparams, relu):
    """Float reference requantization: rint(y / s_out) + z_out, clamped (at z_out for a fused ReLU)."""
    s_out, z_out = out_qparams
    q = np.rint(y / np.float64(s_out)) + z_out
    return np.clip(q, z_out if relu else 0, 255).astype(np.uint8)


def _qp(spec_value):
    return None if spec_value is None else (np.float32(spec_value[0]), int(spec_value[1]))


def _qp_json(qp):
    return None if qp is None else [float(qp[0]), int(qp[1])]


class QLayer:
    """Base: ``simulate`` defaults to ``forward`` (exact layers), ``nbytes`` sums the arrays held.

    ``nhwc = True`` marks a layer that also has ``forward_nhwc`` on (N, H, W, C) activations.
    """
    arrays = ()
    nhwc = False

    def __call__(self, q):
        return self.forward(q)

    def simulate(self, q):
        return self.forward(q)

    def nbytes(self):
        return sum(int(getattr(self, name).nbytes) for name in self.arrays if getattr(self, name) is not None)

    def record(self):
        return {"type": type(self).__name__}, {}

    @classmethod
    def from_record(cls, spec, arrays):
        return cls()


class _QWeighted(QLayer):
    """Shared by QConv2d and QLinear: int8 weight (OC, K...), per-channel scales, int32 bias, requant."""

    def __init__(self, weight_q, weight_scale, bias_q, in_qparams, out_qparams, relu=False, sparse=None):
        if weight_q.dtype != np.int8:
            raise TypeError(f"{type(self).__name__}: weight_q must be int8, got {weight_q.dtype}")
        self.weight_q = np.ascontiguousarray(weight_q)
        self.weight_scale = np.asarray(weight_scale, np.float32).reshape(-1)
        oc = weight_q.shape[0]
        self.bias_q = np.zeros(oc, np.int32) if bias_q is None else np.asarray(bias_q, np.int32)
        self.in_qparams, self.out_qparams, self.relu = in_qparams, out_qparams, relu
        s_in, z_in = in_qparams
        self.acc_scale = np.float64(s_in) * self.weight_scale.astype(np.float64)      # (OC,)
        w2d = self.weight_q.reshape(oc, -1)                                            # (OC, K)
        sparsity = float(np.mean(w2d == 0))
        self.sparse = (sparsity >= SPARSE_MIN) if sparse is None else bool(sparse)
        self.multiplier = self.shift = None
        if out_qparams is not None:
            self.multiplier, self.shift = _qm(self.acc_scale / np.float64(out_qparams[0]))
        if self.sparse:
            self.packed = _pack_sparse(self.weight_q)
            # Padding holds z_in, so every tap sees (q - z_in): fold -z_in * rowsum(w) into the bias.
            self.sparse_bias = (self.bias_q - np.int32(z_in) * w2d.astype(np.int32).sum(axis=1)).astype(np.int32)
            self.arrays = ("weight_q", "weight_scale", "bias_q", "multiplier", "shift", "sparse_bias")
        else:
            self.packed = kernels.get("pack_s8")(np.ascontiguousarray(self._gemm_weight().T))  # (K, OC) packed
            self.arrays = ("weight_q", "weight_scale", "bias_q", "multiplier", "shift")

    def _gemm_weight(self):
        """int8 (OC, K) in the column order of the GEMM's activation rows."""
        return self.weight_q.reshape(self.weight_q.shape[0], -1)

    def nbytes(self):
        packed = self.packed
        extra = (packed.indptr.nbytes + packed.indices.nbytes + packed.data.nbytes) if self.sparse \
            else packed.data.nbytes + packed.colsum.nbytes
        return super().nbytes() + int(extra)

    def _gemm(self, cols):
        """uint8 cols (M, K) -> uint8 (M, OC) requantized, or int32 (M, OC) when out_qparams is None."""
        z_in = self.in_qparams[1]
        if self.out_qparams is None:
            acc = kernels.get("gemm_u8s8_packed")(cols, self.packed)
            return acc - np.int32(z_in) * self.packed.colsum + self.bias_q
        return kernels.get("gemm_u8s8_requant")(cols, self.packed, z_in, self.bias_q, self.multiplier,
                                                  self.shift, self.out_qparams[1], relu=self.relu)

    def _finish(self, acc2d):
        """int32 (M, OC) sums including bias -> requantized uint8, or int32 for the output layer."""
        if self.out_qparams is None:
            return acc2d
        return kernels.get("requantize_s32")(np.ascontiguousarray(acc2d), None, self.multiplier, self.shift,
                                             self.out_qparams[1], relu=self.relu)

    def _simulate_2d(self, cols):
        """Float64 reference of ``_gemm`` on uint8 cols (M, K)."""
        s_in, z_in = self.in_qparams
        x = (cols.astype(np.float64) - z_in) * np.float64(s_in)
        w = self.weight_q.reshape(self.weight_q.shape[0], -1).astype(np.float64) * \
            self.weight_scale.astype(np.float64)[:, None]
        y = x @ w.T + self.bias_q * self.acc_scale                                    # (M, OC)
        if self.out_qparams is None:
            return np.rint(y / self.acc_scale).astype(np.int32)
        return _requant_float(y, self.out_qparams, self.relu)

    def _base_spec(self):
        return {"type": type(self).__name__, "in_qparams": _qp_json(self.in_qparams),
                "out_qparams": _qp_json(self.out_qparams), "relu": bool(self.relu), "sparse": bool(self.sparse)}

    def _base_arrays(self):
        return {"weight_q": self.weight_q, "weight_scale": self.weight_scale, "bias_q": self.bias_q}


def _pack_sparse(w):
    from tinyeff.kernels.layout.csr import pack_sparse   # NOTE: format builder, not a compute kernel
    return pack_sparse(w)


class QConv2d(_QWeighted):
    """Integer conv: im2col (padding with z_in, which is real 0) then int8 GEMM + requantization.

    The dense path runs on NHWC (``im2col_u8_nhwc``'s columns (kh, kw, c), each kernel row padded to
    4 bytes), so its packed weight is ``weight_q.transpose(0, 2, 3, 1)`` with zero rows there; a
    requantized conv is one ``conv2d_u8s8_requant_nhwc`` call (the C tier never builds the im2col
    matrix), the raw int32 output layer im2col + GEMM. ``forward`` on NCHW converts at its two ends. The sparse
    path (``spconv_u8s8_csr``) is NCHW and converts the other way in ``forward_nhwc``.
    """
    nhwc = True

    def __init__(self, weight_q, weight_scale, bias_q, in_qparams, out_qparams, stride=1, padding=0,
                 relu=False, sparse=None):
        if weight_q.ndim != 4:
            raise ValueError(f"QConv2d: weight_q must be (OC, C, KH, KW), got shape {weight_q.shape}")
        self.stride, self.padding = int(stride), int(padding)
        super().__init__(weight_q, weight_scale, bias_q, in_qparams, out_qparams, relu, sparse)

    ROW_ALIGN = 4       # one VNNI group: a 1-channel 3x3 kernel row (3 bytes) becomes one 4-byte group

    def _gemm_weight(self):
        """(OC, KH * roundup(KW*C, 4)): im2col_u8_nhwc's columns, zero weights on its row padding."""
        oc, c, kh, kw = self.weight_q.shape
        rows = self.weight_q.transpose(0, 2, 3, 1).reshape(oc, kh, kw * c)            # (OC, KH, KW*C)
        pad = -(kw * c) % self.ROW_ALIGN
        return np.ascontiguousarray(np.pad(rows, ((0, 0), (0, 0), (0, pad)))).reshape(oc, -1)

    def _out_hw(self, h, w):
        _, _, kh, kw = self.weight_q.shape
        return (h + 2 * self.padding - kh) // self.stride + 1, (w + 2 * self.padding - kw) // self.stride + 1

    def _to_nchw(self, out2d, n, oh, ow):
        return to_nchw(out2d.reshape(n, oh, ow, -1))

    def forward(self, q):
        if not self.sparse:
            return to_nchw(self.forward_nhwc(to_nhwc(q)))
        n, oc = q.shape[0], self.weight_q.shape[0]
        oh, ow = self._out_hw(*q.shape[2:])
        acc = kernels.get("spconv_u8s8_csr")(q, self.packed, self.sparse_bias, self.stride, self.padding,
                                             1, self.in_qparams[1])                     # (N, OC, OH, OW) int32
        acc2d = acc.transpose(0, 2, 3, 1).reshape(-1, oc)
        return self._to_nchw(self._finish(acc2d), n, oh, ow)

    def forward_nhwc(self, q, pool=1):
        """(N, H, W, C) uint8 -> (N, OH, OW, OC): uint8, or int32 sums when out_qparams is None.

        ``pool=2`` also applies a following 2x2 / stride-2 max-pool (see ``can_fuse_pool``): the
        GEMM takes the max of each window's int32 sums and requantizes once per window.
        """
        if self.sparse:
            return to_nhwc(self.forward(to_nchw(q)))
        n, h, w, _ = q.shape
        _, _, kh, kw = self.weight_q.shape
        z_in = self.in_qparams[1]
        if self.out_qparams is not None:       # conv + requant (+ max-pool), no im2col matrix in the C tier
            return kernels.get("conv2d_u8s8_requant_nhwc")(q, self.packed, kh, kw, self.stride, self.padding, z_in,
                                                            self.bias_q, self.multiplier, self.shift,
                                                            self.out_qparams[1], pool=pool, relu=self.relu)
        oh, ow = self._out_hw(h, w)
        cols = kernels.get("im2col_u8_nhwc")(q, kh, kw, self.stride, self.padding, 1, z_in,
                                             row_align=self.ROW_ALIGN)                  # (N*OH*OW, KH*KW*C)
        return self._gemm(cols).reshape(n, oh, ow, -1)                                  # int32 sums

    def can_fuse_pool(self, layer):
        """True if ``layer`` is a max-pool this conv's GEMM can apply on its int32 sums (2x2, stride 2)."""
        return (isinstance(layer, QMaxPool2d) and layer.kernel_size == layer.stride == 2 and not self.sparse
                and self.out_qparams is not None)

    def simulate(self, q):
        _, _, kh, kw = self.weight_q.shape
        oh, ow = self._out_hw(*q.shape[2:])
        cols = kernels.get("im2col_u8", "ref")(q, kh, kw, self.stride, self.padding, 1, self.in_qparams[1])
        return self._to_nchw(self._simulate_2d(cols), q.shape[0], oh, ow)

    def record(self):
        spec = self._base_spec()
        spec.update(stride=self.stride, padding=self.padding)
        return spec, self._base_arrays()

    @classmethod
    def from_record(cls, spec, arrays):
        return cls(arrays["weight_q"], arrays["weight_scale"], arrays["bias_q"], _qp(spec["in_qparams"]),
                   _qp(spec["out_qparams"]), spec["stride"], spec["padding"], spec["relu"], spec["sparse"])


class QLinear(_QWeighted):
    """Integer linear: uint8 (N, IN) times int8 (OUT, IN) transposed, int32 sums, requantization."""

    def forward(self, q):
        if self.sparse:
            acc = kernels.get("splinear_u8s8_csr")(np.ascontiguousarray(q), self.packed, self.sparse_bias)
            return self._finish(acc)
        return self._gemm(np.ascontiguousarray(q))

    def simulate(self, q):
        return self._simulate_2d(q)

    def record(self):
        return self._base_spec(), self._base_arrays()

    @classmethod
    def from_record(cls, spec, arrays):
        return cls(arrays["weight_q"], arrays["weight_scale"], arrays["bias_q"], _qp(spec["in_qparams"]),
                   _qp(spec["out_qparams"]), spec["relu"], spec["sparse"])


class QReLU(QLayer):
    """A ReLU that no conv absorbed: clamp at the zero point (real 0), scale unchanged."""
    nhwc = True

    def __init__(self, zero_point):
        self.zero_point = int(zero_point)

    def forward(self, q):
        return np.maximum(q, np.uint8(self.zero_point))

    forward_nhwc = forward        # elementwise: any layout

    def record(self):
        return {"type": "QReLU", "zero_point": self.zero_point}, {}

    @classmethod
    def from_record(cls, spec, arrays):
        return cls(spec["zero_point"])


class QMaxPool2d(QLayer):
    """uint8 max-pool: max commutes with the monotonic dequantization, so (scale, zero_point) pass through."""
    nhwc = True

    def __init__(self, kernel_size, stride):
        self.kernel_size, self.stride = int(kernel_size), int(stride)

    def forward(self, q):
        return kernels.get("maxpool2d_u8")(q, self.kernel_size, self.stride)

    def forward_nhwc(self, q):
        return kernels.get("maxpool2d_u8_nhwc")(q, self.kernel_size, self.stride)

    def simulate(self, q):
        return kernels.get("maxpool2d_u8", "ref")(q, self.kernel_size, self.stride)

    def record(self):
        return {"type": "QMaxPool2d", "kernel_size": self.kernel_size, "stride": self.stride}, {}

    @classmethod
    def from_record(cls, spec, arrays):
        return cls(spec["kernel_size"], spec["stride"])


class QGlobalAvgPool(QLayer):
    """Global average pool in integers: ``(sum + count // 2) // count``, same (scale, zero_point)."""
    nhwc = True

    def forward(self, q):
        count = q.shape[2] * q.shape[3]
        total = q.reshape(q.shape[0], q.shape[1], -1).sum(axis=2, dtype=np.int32)    # <= 255 * H * W
        return ((total + count // 2) // count).astype(np.uint8)[:, :, None, None]

    def forward_nhwc(self, q):
        count = q.shape[1] * q.shape[2]
        total = q.reshape(q.shape[0], -1, q.shape[3]).sum(axis=1, dtype=np.int32)    # (N, C)
        return ((total + count // 2) // count).astype(np.uint8)[:, None, None, :]

    def simulate(self, q):
        mean = q.astype(np.float64).mean(axis=(2, 3), keepdims=True)
        return np.floor(mean + 0.5).astype(np.uint8)


class QFlatten(QLayer):
    """Flatten in NCHW order (what the float model's Linear weights expect), from either layout."""
    nhwc = True

    def forward(self, q):
        return q.reshape(q.shape[0], -1)

    def forward_nhwc(self, q):
        if q.shape[1] * q.shape[2] != 1:                   # (N, 1, 1, C) flattens the same either way
            q = to_nchw(q)
        return q.reshape(q.shape[0], -1)


class QAdd(QLayer):
    """Residual add of two uint8 tensors with different (scale, zero_point), ReLU fused by clamping."""

    LEFT_SHIFT = 20     # headroom: |q - z| <= 255 < 2**8, so (q - z) << 20 < 2**28 fits int32
    nhwc = True

    def __init__(self, a_qparams, b_qparams, out_qparams, relu=True):
        self.a_qparams, self.b_qparams, self.out_qparams, self.relu = a_qparams, b_qparams, out_qparams, relu
        twice_max = 2.0 * max(float(a_qparams[0]), float(b_qparams[0]))
        self.table_a = self._table(a_qparams, float(a_qparams[0]) / twice_max)
        self.table_b = self._table(b_qparams, float(b_qparams[0]) / twice_max)
        self.multiplier, self.shift = _qm(twice_max / ((1 << self.LEFT_SHIFT) * float(out_qparams[0])))
        self.arrays = ("table_a", "table_b")

    def _table(self, qparams, real):
        """int32 (256,): code v -> MultiplyByQuantizedMultiplier((v - z) << 20, real), real < 1."""
        m, shift = _qm(real)
        x = (np.arange(256, dtype=np.int64) - qparams[1]) << self.LEFT_SHIFT
        return _fixed_point_multiply(x, int(m), int(shift)).astype(np.int32)

    def forward(self, a, b):
        # table_a[a] + table_b[b] (int32, |.| < 2**29), requantized: one pass in add_u8
        return kernels.get("add_u8")(a, b, self.table_a, self.table_b, self.multiplier, self.shift,
                                     self.out_qparams[1], relu=self.relu)

    forward_nhwc = forward        # elementwise with per-tensor parameters: any layout

    def simulate(self, a, b):
        (sa, za), (sb, zb) = self.a_qparams, self.b_qparams
        y = np.float64(sa) * (a.astype(np.float64) - za) + np.float64(sb) * (b.astype(np.float64) - zb)
        return _requant_float(y, self.out_qparams, self.relu)

    def record(self):
        return {"type": "QAdd", "a_qparams": _qp_json(self.a_qparams), "b_qparams": _qp_json(self.b_qparams),
                "out_qparams": _qp_json(self.out_qparams), "relu": bool(self.relu)}, {}

    @classmethod
    def from_record(cls, spec, arrays):
        return cls(_qp(spec["a_qparams"]), _qp(spec["b_qparams"]), _qp(spec["out_qparams"]), spec["relu"])


def _runs_nhwc(layer):
    """NHWC-capable, and ``forward`` not wrapped on the instance: a tracing hook (tinyeff.flops wraps
    ``layer.forward`` to read the shapes a layer sees) must see its layer run, in NCHW."""
    return layer.nhwc and "forward" not in vars(layer)


class QSequential(QLayer):
    """Runs integer layers in order, in NHWC across every run of layers that accept it (module docstring)."""
    nhwc = True

    def __init__(self, layers):
        self.layers = list(layers)

    def forward(self, q):
        return self._run(q, in_nhwc=False, out_nhwc=False)

    def forward_nhwc(self, q):
        return self._run(q, in_nhwc=True, out_nhwc=True)

    def _run(self, q, in_nhwc, out_nhwc):
        nhwc = in_nhwc                                     # layout of q while it is 4-D
        layers, i = self.layers, 0
        while i < len(layers):
            layer = layers[i]
            i += 1
            if q.ndim == 4 and _runs_nhwc(layer):
                if not nhwc:
                    q, nhwc = to_nhwc(q), True
                if isinstance(layer, QConv2d) and i < len(layers) and layer.can_fuse_pool(layers[i]) \
                        and _runs_nhwc(layers[i]):
                    q = layer.forward_nhwc(q, pool=2)      # conv + ReLU + max-pool in one GEMM
                    i += 1
                else:
                    q = layer.forward_nhwc(q)
            else:
                if q.ndim == 4 and nhwc:
                    q = to_nchw(q)
                nhwc = False
                q = layer.forward(q)
            if q.ndim != 4:                                # flattened: layout no longer matters
                nhwc = out_nhwc
        if q.ndim == 4 and nhwc != out_nhwc:
            q = to_nhwc(q) if out_nhwc else to_nchw(q)
        return q

    def simulate(self, q):
        for layer in self.layers:
            q = layer.simulate(q)
        return q

    def nbytes(self):
        return sum(layer.nbytes() for layer in self.layers)


class QBasicBlock(QLayer):
    """ResNet basic block: conv1 (+ReLU) -> conv2, shortcut (identity or 1x1 conv), QAdd (+ReLU)."""
    nhwc = True

    def __init__(self, conv1, conv2, shortcut, add):
        self.conv1, self.conv2, self.shortcut, self.add = conv1, conv2, shortcut, add

    def _run(self, q, how):
        out = getattr(self.conv2, how)(getattr(self.conv1, how)(q))
        if self.add is None:                   # shortcut=False: a plain block, ReLU fused into conv2
            return out
        skip = q if self.shortcut is None else getattr(self.shortcut, how)(q)
        return getattr(self.add, how)(out, skip)

    def forward(self, q):
        return self._run(q, "forward")

    def forward_nhwc(self, q):
        parts = [m for m in (self.conv1, self.conv2, self.shortcut, self.add) if m is not None]
        if not all(_runs_nhwc(m) for m in parts):            # a traced part runs in NCHW
            return to_nhwc(self.forward(to_nchw(q)))
        return self._run(q, "forward_nhwc")

    def simulate(self, q):
        return self._run(q, "simulate")

    def nbytes(self):
        return sum(m.nbytes() for m in (self.conv1, self.conv2, self.shortcut, self.add) if m is not None)


LAYERS = {cls.__name__: cls for cls in (QConv2d, QLinear, QReLU, QMaxPool2d, QGlobalAvgPool, QFlatten, QAdd,
                                        QSequential, QBasicBlock)}
