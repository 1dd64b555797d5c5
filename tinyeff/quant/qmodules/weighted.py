"""The integer layers with weights: ``QConv2d`` and ``QLinear`` (int8 weights, int32 bias, requantization).

See ``tinyeff.quant.qmodules``'s docstring for the arithmetic; ``simulate`` is each layer's float64
reference, ``forward`` the integer path through ``tinyeff.kernels``.
"""
import numpy as np

from tinyeff import kernels
from tinyeff.kernels import registry
from tinyeff.kernels.int8_conv_small.spec import fits as small_conv_fits
from tinyeff.kernels.int8_conv_small.spec import pack_conv_small  # NOTE: format builder, not a compute kernel
from tinyeff.kernels.layout.csr import pack_sparse   # NOTE: format builder, not a compute kernel
from tinyeff.kernels.sparse.spec import NHWC_BLOCK
from tinyeff.kernels.stopwatch import race
from tinyeff.quant.qmodules.base import QLayer, fixed_point_qm, requant_float, to_nchw, to_nhwc
from tinyeff.quant.qmodules.simple import QMaxPool2d

SPARSE_MIN = 0.5     # a layer whose weight is at least this sparse runs through the sparse int8 kernels


class QWeighted(QLayer):
    """Shared by QConv2d and QLinear: int8 weight (OC, K...), per-channel scales, int32 bias, requant.

    ``act_qmax``: the top code of the requantized output, 255, or 127 for a model with 7-bit
    activations (``activation_bits=7``; the next layer's GEMM then finds its input <= 127).
    """

    def __init__(self, weight_q, weight_scale, bias_q, in_qparams, out_qparams, relu=False, sparse=None,
                 act_qmax=255):
        super().__init__()
        self.act_qmax = int(act_qmax)
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
            self.multiplier, self.shift = fixed_point_qm(self.acc_scale / np.float64(out_qparams[0]))
        if self.sparse:
            self.packed = pack_sparse(self.weight_q)
            # Padding holds z_in, so every tap sees (q - z_in): fold -z_in * rowsum(w) into the bias.
            self.sparse_bias = (self.bias_q - np.int32(z_in) * w2d.astype(np.int32).sum(axis=1)).astype(np.int32)
            self.arrays = ("weight_q", "weight_scale", "bias_q", "multiplier", "shift", "sparse_bias")
        else:
            self.packed = kernels.get("pack_s8")(np.ascontiguousarray(self._gemm_weight().T))  # (K, OC) packed
            self.arrays = ("weight_q", "weight_scale", "bias_q", "multiplier", "shift")

    def with_out_qparams(self, out_qparams):
        """The same layer requantizing to ``out_qparams`` (None: return the raw int32 sums)."""
        return type(self)(self.weight_q, self.weight_scale, self.bias_q, self.in_qparams, out_qparams,
                          relu=self.relu, sparse=self.sparse, act_qmax=self.act_qmax, **self._geometry())

    def _geometry(self):
        return {}

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
            acc = self._plans.call("gemm", "gemm_u8s8_packed", (cols,), self.packed)
            return acc - np.int32(z_in) * self.packed.colsum + self.bias_q
        return self._plans.call("gemm", "gemm_u8s8_requant", (cols,), self.packed, z_in, self.bias_q,
                                self.multiplier, self.shift, self.out_qparams[1], qmax=self.act_qmax,
                                relu=self.relu)

    def _finish(self, acc2d):
        """int32 (M, OC) sums including bias -> requantized uint8, or int32 for the output layer."""
        if self.out_qparams is None:
            return acc2d
        return self._plans.call("requant", "requantize_s32", (np.ascontiguousarray(acc2d),), None, self.multiplier,
                                self.shift, self.out_qparams[1], qmax=self.act_qmax, relu=self.relu)

    def _simulate_2d(self, cols):
        """Float64 reference of ``_gemm`` on uint8 cols (M, K)."""
        s_in, z_in = self.in_qparams
        x = (cols.astype(np.float64) - z_in) * np.float64(s_in)
        w = self.weight_q.reshape(self.weight_q.shape[0], -1).astype(np.float64) * \
            self.weight_scale.astype(np.float64)[:, None]
        y = x @ w.T + self.bias_q * self.acc_scale                                    # (M, OC)
        if self.out_qparams is None:
            return np.rint(y / self.acc_scale).astype(np.int32)
        return requant_float(y, self.out_qparams, self.relu, self.act_qmax)


class QConv2d(QWeighted):
    """Integer conv: im2col (padding with z_in, which is real 0) then int8 GEMM + requantization.

    The dense path runs on NHWC (``im2col_u8_nhwc``'s columns (kh, kw, c), each kernel row padded to
    4 bytes), so its packed weight is ``weight_q.transpose(0, 2, 3, 1)`` with zero rows there; a
    requantized conv is one ``conv2d_u8s8_requant_nhwc`` call (the C tier never builds the im2col
    matrix), the raw int32 output layer im2col + GEMM. ``forward`` on NCHW converts at its two ends. A sparse
    requantized stride-1 conv is the same pipeline step on the CSR weight (``spconv_u8s8_requant_nhwc``:
    NHWC uint8 in and out, requantization, ReLU and max-pool fused); the other sparse layers (strided,
    or the raw int32 output layer) run ``spconv_u8s8_csr`` on NCHW and convert in ``forward_nhwc``.
    """
    nhwc = True

    def __init__(self, weight_q, weight_scale, bias_q, in_qparams, out_qparams, stride=1, padding=0,
                 relu=False, sparse=None, act_qmax=255):
        if weight_q.ndim != 4:
            raise ValueError(f"QConv2d: weight_q must be (OC, C, KH, KW), got shape {weight_q.shape}")
        super().__init__(weight_q, weight_scale, bias_q, in_qparams, out_qparams, relu, sparse, act_qmax)
        self.stride, self.padding = int(stride), int(padding)
        self.sparse_nhwc = self.sparse and self.stride == 1 and out_qparams is not None
        self._twin = {}                      # a plain dict, not a child module: hooks and nbytes skip it
        self.small_choice = {}               # (ISA path, pool) -> the small-vs-GEMM race (see _small_weight)

    ROW_ALIGN = 4       # one VNNI group: a 1-channel 3x3 kernel row (3 bytes) becomes one 4-byte group

    def _gemm_weight(self):
        """(OC, KH * roundup(KW*C, 4)): im2col_u8_nhwc's columns, zero weights on its row padding."""
        oc, c, kh, kw = self.weight_q.shape
        rows = self.weight_q.transpose(0, 2, 3, 1).reshape(oc, kh, kw * c)            # (OC, KH, KW*C)
        pad = -(kw * c) % self.ROW_ALIGN
        return np.ascontiguousarray(np.pad(rows, ((0, 0), (0, 0), (0, pad)))).reshape(oc, -1)

    def _geometry(self):
        return {"stride": self.stride, "padding": self.padding}

    def _out_hw(self, h, w):
        _, _, kh, kw = self.weight_q.shape
        return (h + 2 * self.padding - kh) // self.stride + 1, (w + 2 * self.padding - kw) // self.stride + 1

    def _to_nchw(self, out2d, n, oh, ow):
        return to_nchw(out2d.reshape(n, oh, ow, -1))

    def forward(self, q):
        if not self.sparse or self.sparse_nhwc:
            return to_nchw(self.forward_nhwc(to_nhwc(q)))
        n, oc = q.shape[0], self.weight_q.shape[0]
        oh, ow = self._out_hw(*q.shape[2:])
        acc = self._plans.call("spconv", "spconv_u8s8_csr", (q,), self.packed, self.sparse_bias, self.stride,
                               self.padding, 1, self.in_qparams[1])                     # (N, OC, OH, OW) int32
        acc2d = acc.transpose(0, 2, 3, 1).reshape(-1, oc)
        return self._to_nchw(self._finish(acc2d), n, oh, ow)

    def forward_nhwc(self, q, pool=1):
        """(N, H, W, C) uint8 -> (N, OH, OW, OC): uint8, or int32 sums when out_qparams is None.

        ``pool=2`` also applies a following 2x2 / stride-2 max-pool (see ``can_fuse_pool``): the
        GEMM takes the max of each window's int32 sums and requantizes once per window.
        """
        z_in = self.in_qparams[1]
        if self.sparse_nhwc and q.shape[0] < NHWC_BLOCK:
            # fewer images than the sparse kernel interleaves per block: most of its lanes would be idle
            return self._dense_twin().forward_nhwc(q, pool=pool)
        if self.sparse_nhwc:
            return self._plans.call(("spconv", pool), "spconv_u8s8_requant_nhwc", (q,), self.packed, self.padding,
                                    z_in, self.bias_q, self.multiplier, self.shift, self.out_qparams[1],
                                    pool=pool, qmax=self.act_qmax, relu=self.relu)
        if self.sparse:
            return to_nhwc(self.forward(to_nchw(q)))
        n, h, w, _ = q.shape
        _, _, kh, kw = self.weight_q.shape
        small = self._small_weight(pool, q) if self.out_qparams is not None else None
        if small is not None:                  # a first layer: output channels in the lanes
            return self._conv_small(q, small, pool)
        if self.out_qparams is not None:       # conv + requant (+ max-pool), no im2col matrix in the C tier
            return self._conv_gemm(q, pool)
        oh, ow = self._out_hw(h, w)
        cols = self._plans.call("im2col", "im2col_u8_nhwc", (q,), kh, kw, self.stride, self.padding, 1, z_in,
                                row_align=self.ROW_ALIGN)                               # (N*OH*OW, KH*KW*C)
        return self._gemm(cols).reshape(n, oh, ow, -1)                                  # int32 sums

    def _conv_gemm(self, q, pool):
        """The requantized conv (+ fused pool) on the implicit-im2col GEMM (``self.packed``)."""
        _, _, kh, kw = self.weight_q.shape
        return self._plans.call(("conv", pool), "conv2d_u8s8_requant_nhwc", (q,), self.packed, kh, kw, self.stride,
                                self.padding, self.in_qparams[1], self.bias_q, self.multiplier, self.shift,
                                self.out_qparams[1], pool=pool, qmax=self.act_qmax, relu=self.relu)

    def _conv_small(self, q, small, pool):
        """The same conv on the small-channel kernel (output channels in the vector lanes)."""
        return self._plans.call(("small", pool, id(small)), "conv2d_u8s8_smallc_nhwc", (q,), small, self.stride,
                                self.padding, self.in_qparams[1], self.bias_q, self.multiplier, self.shift,
                                self.out_qparams[1], pool=pool, qmax=self.act_qmax, relu=self.relu)

    SMALL_C = 4                              # input channels up to which a layer is a "first layer"
    SMALL_ISAS = ("avx2", "avx512_vnni")     # paths where the small-channel kernel was measured to beat the GEMM
    SMALL_OC_BLOCK = 16                      # its output channels come in blocks of 32 (the last one 16 wide)
    SMALL_RACE_IMAGES = 64                   # the race runs on at most this many images of the first batch
    SMALL_RACE_REPEATS = 7

    def _small_weight(self, pool, q=None):
        """The weight packed for ``conv2d_u8s8_smallc_nhwc`` when that kernel takes this layer, built
        on first use and kept; else None.

        It takes layers with few input channels and whole 16-channel blocks. On the ``SMALL_ISAS``
        paths it always does (measured there, docs/int8.md). On its other paths (ARM64 NEON, portable)
        nobody here has timed it, so the layer races it against the GEMM conv on the first batch ``q``
        it sees (the calibration batch, when ``quantize_static`` measures its kernels) and keeps the
        outcome in ``small_choice`` per (path, pool): later calls do not time again, and a saved
        model re-decides on the machine that loads it. Both kernels give the same codes.
        """
        oc, c, kh, kw = self.weight_q.shape
        if c > self.SMALL_C or oc % self.SMALL_OC_BLOCK or not small_conv_fits(oc, kh, kw, c, pool):
            return None
        name = "conv2d_u8s8_smallc_nhwc"
        isa = registry.best_isa(name, "c")
        if isa not in self.SMALL_ISAS:
            choice = self.small_choice.get((isa, pool))
            if choice is None:
                if q is None or q.shape[0] == 0 or registry.active_tier(name) != "c":
                    return None                # nothing to time on, or no C kernels to race: the GEMM
                choice = self.small_choice[(isa, pool)] = self._race_small(q, pool)
            if not choice["small"]:
                return None
        return self._packed_small()

    def _packed_small(self):
        if "small" not in self._twin:
            self._twin["small"] = pack_conv_small(self.weight_q)
        return self._twin["small"]

    def _race_small(self, q, pool):
        """Time the small-channel kernel against the GEMM conv on this layer's first images of ``q``
        (``kernels.stopwatch.race``): {"small": it won, "small_s", "gemm_s": the fastest call of each}."""
        q = q[:self.SMALL_RACE_IMAGES]
        small = self._packed_small()
        (small_s, gemm_s), k, _ = race([lambda: self._conv_small(q, small, pool), lambda: self._conv_gemm(q, pool)],
                                       self.SMALL_RACE_REPEATS)
        return {"small": k == 0, "small_s": small_s, "gemm_s": gemm_s}

    def _dense_twin(self):
        """This layer on the dense kernels, built on first use (small batches) and kept."""
        if "dense" not in self._twin:
            self._twin["dense"] = QConv2d(self.weight_q, self.weight_scale, self.bias_q, self.in_qparams,
                                          self.out_qparams, self.stride, self.padding, self.relu, sparse=False,
                                          act_qmax=self.act_qmax)
        return self._twin["dense"]

    def can_fuse_pool(self, layer):
        """True if ``layer`` is a max-pool this conv's GEMM can apply on its int32 sums (2x2, stride 2)."""
        return (isinstance(layer, QMaxPool2d) and layer.kernel_size == layer.stride == 2
                and (self.sparse_nhwc or not self.sparse) and self.out_qparams is not None)

    def simulate(self, q):
        _, _, kh, kw = self.weight_q.shape
        oh, ow = self._out_hw(*q.shape[2:])
        cols = kernels.get("im2col_u8", "ref")(q, kh, kw, self.stride, self.padding, 1, self.in_qparams[1])
        return self._to_nchw(self._simulate_2d(cols), q.shape[0], oh, ow)


class QLinear(QWeighted):
    """Integer linear: uint8 (N, IN) times int8 (OUT, IN) transposed, int32 sums, requantization."""

    def forward(self, q):
        if self.sparse:
            acc = self._plans.call("splinear", "splinear_u8s8_csr", (np.ascontiguousarray(q),), self.packed,
                                   self.sparse_bias)
            return self._finish(acc)
        return self._gemm(np.ascontiguousarray(q))

    def simulate(self, q):
        return self._simulate_2d(q)
