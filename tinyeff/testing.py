"""Checks shared by the test suite and by users writing their own ops or kernels.

``check_grad`` compares every element of an op's analytic gradient with central finite differences
in float64. The output is reduced with a fixed random weighting rather than a plain sum, because a
sum hides swapped or transposed gradients (every element would get the same upstream gradient).
"""
import numpy as np

from tinyeff.tensor import Tensor


def check_grad(fn, *inputs, eps=1e-6, rtol=1e-5, atol=1e-6, seed=0):
    """Assert that the gradient of ``fn(*inputs)`` matches central differences.

    Args:
        fn: maps Tensors to one Tensor.
        inputs: float64 ndarrays or Tensors; Tensors with ``requires_grad=False`` are held constant,
            arrays are all differentiated.
    Raises:
        AssertionError: names the input and the worst element.
    """
    tensors = [x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
               for x in inputs]
    for t in tensors:
        if t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"check_grad: inputs must be float64 for finite differences, got {t.dtype}")
    out = fn(*tensors)
    weights = np.random.default_rng(seed).uniform(0.5, 1.5, out.shape)

    def objective():
        return float((fn(*tensors).data * weights).sum())

    out.backward(weights)
    for index, t in enumerate(tensors):
        if not t.requires_grad:
            continue
        analytic = np.zeros_like(t.data) if t.grad is None else t.grad
        numeric = np.zeros_like(t.data)
        flat, num_flat = t.data.reshape(-1), numeric.reshape(-1)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            plus = objective()
            flat[i] = saved - eps
            minus = objective()
            flat[i] = saved
            num_flat[i] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol,
                                   err_msg=f"check_grad: gradient of input {index} (shape {t.shape}) is wrong")


def assert_matches_reference(actual, expected, rtol=1e-5, atol=1e-6, what="output"):
    """assert_allclose with a message naming ``what`` and the worst relative error."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape} differs from the reference {expected.shape}")
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=f"{what} differs from the reference")


def c_paths(*paths):
    """Test-parameter names ``"c:<path>"`` for the C tier bound to each ISA path (``cpu.PATHS``);
    with no arguments, the x86-64 and ARM64 SIMD paths plus portable."""
    return [f"c:{p}" for p in (paths or ("portable", "avx2", "avx512", "neon"))]


def kernel_or_skip(name, tier):
    """Kernel ``name`` of ``tier`` (``"ref"``, ``"numba"``, ``"c"`` or ``"c:<path>"``), or a pytest
    skip that says why it cannot run here (tier not built, or an ISA path this CPU lacks)."""
    import pytest

    from tinyeff import kernels
    from tinyeff.kernels import cpu, registry
    base, _, isa = tier.partition(":")
    if not kernels.available(name, base):
        pytest.skip(kernels.why_unavailable(name, base))
    if isa and isa not in registry.isa_paths(name, base):
        pytest.skip(f"{name}: ISA path {isa} cannot run here (usable: {', '.join(cpu.usable_paths())}, "
                    f"after the TINYEFF_CPU_FEATURES cap); run on such a CPU, or neon under qemu-aarch64")
    return kernels.get(name, base, isa=isa or None)
