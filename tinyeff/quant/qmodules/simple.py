"""The integer layers without weights: ReLU, max-pool, global average pool, flatten, residual add.

ReLU and pooling pass (scale, zero_point) through (max and average commute with the monotonic
dequantization); ``QAdd`` rescales both inputs to a common grid through 256-entry tables (see
``tinyeff.quant.qmodules``'s docstring).
"""
import numpy as np

from tinyeff import kernels
from tinyeff.kernels.layout.fixed_point import requantize_int64   # gemmlowp's fixed-point multiply
from tinyeff.quant.qmodules.base import QLayer, fixed_point_qm, requant_float, to_nchw


class QReLU(QLayer):
    """A ReLU that no conv absorbed: clamp at the zero point (real 0), scale unchanged."""
    nhwc = True

    def __init__(self, zero_point):
        super().__init__()
        self.zero_point = int(zero_point)

    def forward(self, q):
        return np.maximum(q, np.uint8(self.zero_point))

    forward_nhwc = forward        # elementwise: any layout


class QMaxPool2d(QLayer):
    """uint8 max-pool: max commutes with the monotonic dequantization, so (scale, zero_point) pass through."""
    nhwc = True

    def __init__(self, kernel_size, stride):
        super().__init__()
        self.kernel_size, self.stride = int(kernel_size), int(stride)

    def forward(self, q):
        return self._plans.call("nchw", "maxpool2d_u8", (q,), self.kernel_size, self.stride)

    def forward_nhwc(self, q):
        return self._plans.call("nhwc", "maxpool2d_u8_nhwc", (q,), self.kernel_size, self.stride)

    def simulate(self, q):
        return kernels.get("maxpool2d_u8", "ref")(q, self.kernel_size, self.stride)


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

    def __init__(self, a_qparams, b_qparams, out_qparams, relu=True, act_qmax=255):
        super().__init__()
        self.a_qparams, self.b_qparams, self.out_qparams, self.relu = a_qparams, b_qparams, out_qparams, relu
        self.act_qmax = int(act_qmax)            # 127 for 7-bit activations (see QWeighted)
        twice_max = 2.0 * max(float(a_qparams[0]), float(b_qparams[0]))
        self.table_a = self._table(a_qparams, float(a_qparams[0]) / twice_max)
        self.table_b = self._table(b_qparams, float(b_qparams[0]) / twice_max)
        self.multiplier, self.shift = fixed_point_qm(twice_max / ((1 << self.LEFT_SHIFT) * float(out_qparams[0])))
        self.arrays = ("table_a", "table_b")

    def _table(self, qparams, real):
        """int32 (256,): code v -> MultiplyByQuantizedMultiplier((v - z) << 20, real), real < 1."""
        m, shift = fixed_point_qm(real)
        x = (np.arange(256, dtype=np.int64) - qparams[1]) << self.LEFT_SHIFT
        return requantize_int64(x, int(m), int(shift)).astype(np.int32)       # |x| < 2**28: never saturates

    def forward(self, a, b):
        # table_a[a] + table_b[b] (int32, |.| < 2**29), requantized: one pass in add_u8
        return self._plans.call("add", "add_u8", (a, b), self.table_a, self.table_b, self.multiplier, self.shift,
                                self.out_qparams[1], qmax=self.act_qmax, relu=self.relu)

    forward_nhwc = forward        # elementwise with per-tensor parameters: any layout

    def simulate(self, a, b):
        (sa, za), (sb, zb) = self.a_qparams, self.b_qparams
        y = np.float64(sa) * (a.astype(np.float64) - za) + np.float64(sb) * (b.astype(np.float64) - zb)
        return requant_float(y, self.out_qparams, self.relu, self.act_qmax)
