"""ReLU contract and reference: the forward and the backward that training runs after every conv.

ReLU is memory-bound: one read and one write per element forward, two reads and a write backward.
The reference is NumPy (one thread); the C tier (c.py, csrc/relu/relu.c) runs the same loops on
every core. The backward takes the forward's *output*, not a saved mask: ``out > 0`` exactly where
the input was positive, so the op keeps no extra array alive between forward and backward.

Semantics (every tier): forward ``max(x, 0)`` with NaN passed through (``np.maximum``); backward
``g * (out > 0)``, so a NaN or inf gradient where ``out <= 0`` still gives NaN, as the product does.
"""
import numpy as np

from tinyeff.kernels.contract import Tolerance, case, define

EXACT_F32 = Tolerance(why="one comparison per element: every tier gives the same bits")
SIZES = [(1,), (15,), (16,), (17,), (2, 3, 33, 7), (4, 1000)]     # vector tails 1..VL+1


def check_relu_backward(g, out):
    """Raise ValueError unless the gradient and the forward output have the same shape."""
    if g.shape != out.shape:
        raise ValueError(f"relu_backward_f32: gradient {g.shape} and forward output {out.shape} differ; "
                         "pass the output relu returned for this input")


def _extremes():
    return np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3e38, -3e38], np.float32)


def relu_cases(rng):
    for shape in SIZES:
        yield case(rng.standard_normal(shape).astype(np.float32))
    yield case(_extremes())


def relu_backward_cases(rng):
    for shape in SIZES:
        out = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)
        yield case(rng.standard_normal(shape).astype(np.float32), out)
    g = _extremes()
    yield case(g, np.maximum(g[::-1].copy(), 0))      # NaN/inf gradients where out <= 0 stay NaN


@define("relu_f32", cases=relu_cases, tolerance=EXACT_F32, faster_dtypes={"x": np.float32})
def relu_f32(x):
    """max(x, 0) elementwise; any float dtype is kept (float32 on the faster tiers)."""
    return np.maximum(x, 0)


@define("relu_backward_f32", check=check_relu_backward, cases=relu_backward_cases, tolerance=EXACT_F32,
        faster_dtypes={"g": np.float32, "out": np.float32})
def relu_backward_f32(g, out):
    """Gradient of ReLU: ``g * (out > 0)`` where ``out`` is the forward's output."""
    with np.errstate(invalid="ignore"):      # inf * 0 is NaN by the contract, not a surprise
        return g * (out > 0)
