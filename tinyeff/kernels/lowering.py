"""Direct convolution or im2col + BLAS? Measured once per layer geometry and pass on this machine.

The one idea: which lowering of a float32 convolution is faster depends on the layer (channels,
plane size, kernel), the pass (forward, input gradient, weight gradient), the CPU, the ISA path
the direct kernels run on, the thread count and the BLAS NumPy links. A threshold tuned on one
developer's CPU is wrong on the next one, so the first time a geometry is seen we time both
lowerings of each pass on random data and keep the faster; no pass can then be slower than
im2col + BLAS (up to timing noise between two near-equal candidates).

    from tinyeff.kernels import lowering
    how = lowering.choose("forward", (64, 32, 15, 15, 64, 3, 3, 1, 0, 1))   # "direct" or "gemm"

Geometry: (N, C, H, W, OC, KH, KW, stride, padding, dilation) of a groups == 1 convolution.
Passes: ``forward``, ``input_grad``, ``weight_grad``. The lowerings themselves are ops/conv.py's
(``forward_pass``, ``input_grad_pass``, ``weight_grad_pass``), so what is timed is what runs.
Override: ``TINYEFF_LOWERING=direct|gemm|measure`` (default measure); ``direct`` still takes im2col
where the direct kernels do not apply (an input gradient with stride > 1), and every mode takes
im2col when the direct kernels' C tier is not loaded. Verdicts are cached in memory and as JSON in
``$TINYEFF_CACHE_DIR`` or the user cache directory (``conv_lowering.json``, temp file then rename),
keyed by CPU model, ISA path, thread count and tinyeff version, so a new machine, a capped ISA, a
different thread count or an upgrade measures again.
What it leaves out: float64/float16 (reference tiers only: always im2col), grouped convolutions.
"""
import functools
import json
import os
import platform
import time

import numpy as np

from tinyeff.kernels import crossover, registry

MODES = ("direct", "gemm", "measure")
PASSES = ("forward", "input_grad", "weight_grad")
CACHE_FILE = "conv_lowering.json"


def mode():
    """The lowering mode: ``TINYEFF_LOWERING`` or ``measure``."""
    value = os.environ.get("TINYEFF_LOWERING", "").strip() or "measure"
    if value not in MODES:
        raise ValueError(f"TINYEFF_LOWERING={value!r} is not one of {MODES}; unset it or pick one")
    return value


def direct_applies(pass_name, geometry):
    """Whether the direct kernels implement this pass (the input gradient needs stride 1, a square
    kernel and padding within the kernel's reach: a "full" correlation with the flipped weight)."""
    _, _, _, _, _, kh, kw, stride, padding, dilation = geometry
    if pass_name != "input_grad":
        return True
    return stride == 1 and kh == kw and dilation * (kh - 1) - padding >= 0


def choose(pass_name, geometry):
    """``"direct"`` or ``"gemm"`` for one pass of a float32, groups == 1 convolution.

    Args:
        pass_name: ``forward``, ``input_grad`` or ``weight_grad``.
        geometry: (N, C, H, W, OC, KH, KW, stride, padding, dilation), ints.

    Raises:
        ValueError: unknown pass or TINYEFF_LOWERING value.
    """
    if pass_name not in PASSES:
        raise ValueError(f"lowering: pass {pass_name!r} is not one of {PASSES}")
    geometry = tuple(int(v) for v in geometry)
    how = mode()
    if registry.active_tier("conv2d_f32") != "c" or not direct_applies(pass_name, geometry):
        return "gemm"
    if how != "measure":
        return how
    return _measured(_machine_key(), pass_name, geometry)


def _machine_key():
    from tinyeff import __version__
    from tinyeff.kernels import c as c_tier
    return (f"cpu={_cpu_model()}|isa={registry.best_isa('conv2d_f32', 'c')}|"
            f"threads={c_tier.num_threads()}|tinyeff={__version__}")


@functools.lru_cache(maxsize=1)
def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_path():
    """Where measured verdicts are stored (the sparse crossover's cache directory)."""
    return os.path.join(os.path.dirname(crossover.cache_path()), CACHE_FILE)


@functools.lru_cache(maxsize=1024)
def _measured(machine, pass_name, geometry):
    """The cached verdict for this machine, pass and geometry, else a new measurement (stored)."""
    key = f"{machine}|{pass_name}|" + ",".join(map(str, geometry))
    path = cache_path()
    cached = crossover._load_cache(path).get(key)
    if isinstance(cached, dict) and cached.get("choice") in ("direct", "gemm"):
        return cached["choice"]
    result = measure(pass_name, geometry)
    crossover._store(path, key, result)
    return result["choice"]


def measure(pass_name, geometry, repeats=3, seed=0):
    """Time both lowerings of one pass on random data, alternating them (noise hits both).

    Returns:
        dict with ``direct_s`` and ``gemm_s`` (best of ``repeats`` rounds) and ``choice``.
    """
    from tinyeff.ops import conv as conv_op      # late: ops imports the kernels package
    n, c, h, w, oc, kh, kw, stride, padding, dilation = geometry
    geom = (stride, padding, dilation)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((oc, c, kh, kw)).astype(np.float32)
    oh, ow = conv_op.output_size(x.shape, wt.shape, geom)
    g = rng.standard_normal((n, oc, oh, ow)).astype(np.float32)
    runs = {
        "forward": lambda how: conv_op.forward_pass(x, wt, geom, oh, ow, how),
        "input_grad": lambda how: conv_op.input_grad_pass(g, wt, x.shape, geom, how),
        "weight_grad": lambda how: conv_op.weight_grad_pass(x, g, wt.shape, geom, how),
    }[pass_name]
    times = {how: float("inf") for how in ("direct", "gemm")}
    for how in times:
        runs(how)                                # warm-up: caches, page faults, thread wake-up
    for _ in range(repeats):
        for how in times:
            t0 = time.perf_counter()
            runs(how)
            times[how] = min(times[how], time.perf_counter() - t0)
    choice = "direct" if times["direct"] <= times["gemm"] else "gemm"
    return {"direct_s": times["direct"], "gemm_s": times["gemm"], "choice": choice}
