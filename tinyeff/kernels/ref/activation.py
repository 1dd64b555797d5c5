"""Reference ReLU kernels: the forward and the backward that training runs after every conv.

ReLU is memory-bound: one read and one write per element forward, two reads and a write backward.
The reference is NumPy (one thread); the C tier runs the same loops on every core. The backward
takes the forward's *output*, not a saved mask: ``out > 0`` exactly where the input was positive,
so the op keeps no extra array alive between forward and backward.

Semantics (every tier): forward ``max(x, 0)`` with NaN passed through (``np.maximum``); backward
``g * (out > 0)``, so a NaN or inf gradient where ``out <= 0`` still gives NaN, as the product does.
"""
import numpy as np

from tinyeff.kernels.registry import register


def check_relu_backward(g, out, name):
    """Raise ValueError unless the gradient and the forward output have the same shape."""
    if g.shape != out.shape:
        raise ValueError(f"{name}: gradient {g.shape} and forward output {out.shape} differ; pass the "
                         "output relu returned for this input")


@register("relu_f32", tier="ref")
def relu_f32(x):
    """max(x, 0) elementwise; any float dtype is kept (float32 on the faster tiers)."""
    return np.maximum(x, 0)


@register("relu_backward_f32", tier="ref")
def relu_backward_f32(g, out):
    """Gradient of ReLU: ``g * (out > 0)`` where ``out`` is the forward's output."""
    check_relu_backward(g, out, "relu_backward_f32")
    return g * (out > 0)
