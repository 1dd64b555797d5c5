"""The base of every integer layer, the NCHW <-> NHWC helpers and the float reference requantization.

See ``tinyeff.quant.qmodules``'s docstring for the integer arithmetic these layers share.
"""
import numpy as np

from tinyeff.kernels.layout.fixed_point import quantize_multiplier   # NOTE: a plain helper, not a registered kernel
from tinyeff.nn.module import Module
from tinyeff.quant.qmodules.plans import LayerPlans


def to_nhwc(q):
    """(N, C, H, W) -> contiguous (N, H, W, C); a 1-channel tensor only changes its shape."""
    return np.ascontiguousarray(q.transpose(0, 2, 3, 1))


def to_nchw(q):
    """(N, H, W, C) -> contiguous (N, C, H, W)."""
    return np.ascontiguousarray(q.transpose(0, 3, 1, 2))


def fixed_point_qm(real):
    """(multiplier, shift) int32 arrays for positive reals, by the int8 kernels' own rule (kernels/layout/fixed_point.py)."""
    return quantize_multiplier(np.asarray(real, np.float64))


def requant_float(y, out_qparams, relu, qmax=255):
    """Float reference requantization: rint(y / s_out) + z_out, clamped to [0, qmax] (at z_out for a fused ReLU)."""
    s_out, z_out = out_qparams
    q = np.rint(y / np.float64(s_out)) + z_out
    return np.clip(q, z_out if relu else 0, qmax).astype(np.uint8)


def act_qmax(activation_bits):
    """The top uint8 code of ``activation_bits``-bit activations: 255, or 127 for 7 bits."""
    if activation_bits not in (7, 8):
        raise ValueError(f"quantize: activation_bits={activation_bits!r} is not supported; use 8 (codes 0..255) "
                         "or 7 (codes 0..127, which lets AVX2's vpmaddubsw run any int8 weights exactly)")
    return (1 << activation_bits) - 1


class QLayer(Module):
    """Base: ``simulate`` defaults to ``forward`` (exact layers), ``nbytes`` sums the arrays held.

    An ``nn.Module``, so forward hooks see integer layers as they see float ones (``tinyeff.flops``
    counts and times them that way). ``nhwc = True`` marks a layer that also has ``forward_nhwc``
    on (N, H, W, C) activations. Arrays are plain attributes, not parameters: nothing here trains,
    so a layer's kernel calls are prepared once per input signature (``self._plans``, plans.py).
    """
    arrays = ()
    nhwc = False

    def __init__(self):
        super().__init__()
        self._plans = LayerPlans()     # its kernel calls, checked once per input signature (plans.py)

    def simulate(self, q):
        return self.forward(q)

    def nbytes(self):
        return sum(int(getattr(self, name).nbytes) for name in self.arrays if getattr(self, name) is not None)
