"""Direct convolution or im2col + BLAS? Measured once per layer geometry and pass on this machine.

The one idea: which lowering of a float32 convolution is faster depends on the layer (channels,
plane size, kernel), the pass (forward, input gradient, weight gradient), the CPU, the ISA path
the direct kernels run on, the thread count and the BLAS NumPy links. A threshold tuned on one
developer's CPU is wrong on the next one, so the first time a geometry is seen we time both
lowerings of each pass on random data, back to back, and keep the faster; no pass can then be
slower than im2col + BLAS (up to timing noise between two near-equal candidates).

    from tinyeff.kernels.conv import lowering
    from tinyeff.ops.conv import pass_on_random_data
    how = lowering.choose("forward", (64, 32, 15, 15, 64, 3, 3, 1, 0, 1), pass_on_random_data)

Geometry: (N, C, H, W, OC, KH, KW, stride, padding, dilation) of a groups == 1 convolution.
Passes: ``forward``, ``input_grad``, ``weight_grad``. The lowerings themselves are ops/conv.py's
(``forward_pass``, ``input_grad_pass``, ``weight_grad_pass``), handed in by the caller, so what is
timed is what runs.
Override: ``TINYEFF_LOWERING=direct|gemm|measure`` (default measure); ``direct`` still takes im2col
where the direct kernels do not apply (an input gradient with both stride and dilation > 1), and
every mode takes im2col when the direct kernels' C tier is not loaded. Verdicts are cached in memory and as JSON in
``$TINYEFF_CACHE_DIR`` or the user cache directory (``conv_lowering.json``, temp file then rename),
keyed by CPU model, ISA path, thread count, tinyeff version and the C extension's build time, so
a new machine, a capped ISA, a different thread count, an upgrade or a rebuild measures again.
Also here: the input-gradient filter that lets the direct kernel compute a stride-1 input gradient
as one more convolution (``flipped_weight``).
What it leaves out: float64/float16 (reference tiers only: always im2col), grouped convolutions.
"""
import functools
import importlib.metadata
import os
import platform

import numpy as np

from tinyeff.kernels import cache, registry, settings
from tinyeff.kernels.stopwatch import race

MODES = ("direct", "gemm", "measure")
PASSES = ("forward", "input_grad", "weight_grad")
CACHE_FILE = "conv_lowering.json"


def mode():
    """The lowering mode: ``TINYEFF_LOWERING`` or ``measure``."""
    value = (settings.env("TINYEFF_LOWERING") or "").strip() or "measure"
    if value not in MODES:
        raise ValueError(f"TINYEFF_LOWERING={value!r} is not one of {MODES}; unset it or pick one")
    return value


def direct_applies(pass_name, geometry):
    """Whether the direct kernels implement this pass (the input gradient at dilation 1: one
    correlation per phase of the stride, kernels/conv/phases.py; dilated, at stride 1 only, with a
    square kernel and padding within its reach: a "full" correlation with the flipped weight)."""
    _, _, _, _, _, kh, kw, stride, padding, dilation = geometry
    if pass_name != "input_grad" or dilation == 1:
        return True
    return stride == 1 and kh == kw and dilation * (kh - 1) - padding >= 0


def choose(pass_name, geometry, make_run):
    """``"direct"`` or ``"gemm"`` for one pass of a float32, groups == 1 convolution.

    Args:
        pass_name: ``forward``, ``input_grad`` or ``weight_grad``.
        geometry: (N, C, H, W, OC, KH, KW, stride, padding, dilation), ints.
        make_run: ``make_run(pass_name, geometry) -> run(how)``, a function running the pass once
            on random data with lowering ``how``; called only when a measurement is needed
            (ops/conv.py passes its own passes, so this module never imports ops).

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
    return _measured(_machine_key(), pass_name, geometry, make_run)


def _machine_key():
    from tinyeff.kernels import c as c_tier
    return _machine_key_of(registry.best_isa("conv2d_f32", "c"), c_tier.num_threads())


@functools.lru_cache(maxsize=64)
def _machine_key_of(isa, threads):
    """The cache key's machine part (formatted once per ISA path and thread count: choose runs
    for every conv pass)."""
    return (f"cpu={_cpu_model()}|isa={isa}|threads={threads}|tinyeff={_version()}|"
            f"build={_build_stamp()}")


@functools.lru_cache(maxsize=1)
def _build_stamp():
    """Modification time of the C extension: kernels changed without a version bump re-measure."""
    from tinyeff.kernels import c as c_tier
    try:
        return int(os.stat(c_tier._module().__file__).st_mtime)
    except (OSError, AttributeError):
        return 0


@functools.lru_cache(maxsize=1)
def _version():
    try:
        return importlib.metadata.version("tinyeff")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


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
    """Where measured verdicts are stored (kernels/cache.py's directory)."""
    return os.path.join(cache.cache_dir(), CACHE_FILE)


@functools.lru_cache(maxsize=1024)
def _measured(machine, pass_name, geometry, make_run):
    """The cached verdict for this machine, pass and geometry, else a new measurement (stored)."""
    key = f"{machine}|{pass_name}|" + ",".join(map(str, geometry))
    path = cache_path()
    cached = cache.load(path).get(key)
    if isinstance(cached, dict) and cached.get("choice") in ("direct", "gemm"):
        return cached["choice"]
    result = measure(make_run(pass_name, geometry))
    cache.store(path, key, result)
    return result["choice"]


def measure(run, repeats=5):
    """Time both lowerings of one pass, ``run("direct")`` and ``run("gemm")``, back to back in
    each of ``repeats`` rounds, and decide by the median of the rounds' time ratios
    (``stopwatch.race``).

    Returns:
        dict with ``direct_s`` and ``gemm_s`` (best of the rounds), ``direct_over_gemm`` (the
        median ratio) and ``choice``.
    """
    (gemm_s, direct_s), _, (_, ratio) = race([lambda: run("gemm"), lambda: run("direct")], repeats)
    return {"direct_s": direct_s, "gemm_s": gemm_s,
            "direct_over_gemm": ratio, "choice": "direct" if ratio <= 1.0 else "gemm"}


def flipped_weight(w):
    """(OC, C, KH, KW) -> (C, OC, KH, KW) rotated 180 degrees: the input-gradient filter."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
