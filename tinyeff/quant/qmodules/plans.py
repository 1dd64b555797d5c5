"""Prepared integer layers: a layer's kernel calls checked once per input signature, then replayed.

The one idea (the integer side of the float ops' inference plans, ops/plan.py): everything an
integer layer passes its kernels besides the activations is a constant of the layer: the packed
weight, the int32 bias, the per-channel multiplier and shift, the zero points, the clamp bounds,
the geometry. At batch 1 a layer's C kernel runs in tens of microseconds, and binding, checking
and normalizing those constants on every call (``check_requant_args`` and the geometry checks,
``kernels.get``) cost as much again. So a layer's first call for a given *plan key* is checked in
full by the kernel's contract and prepared (``fn.prepare(..., varying=k)``, kernels/contract.py),
and later calls hand only the activations to the prepared body.

The plan key: the call site inside the layer (with the arguments that change between the layer's
own calls, such as a fused pool), the shape and dtype of each activation, and the settings every
kernel choice reads (``plan.settings_key()``: TINYEFF_TIER, TINYEFF_CPU_FEATURES, the C thread
count, the registry's generation; and the usable ISA paths). So a changed tier, ISA cap or thread
count prepares anew on the next call, and a new input shape (another batch size, or a wrong
channel count) or dtype misses and is checked in full: a bad input raises the kernel's one-line
error and gets no plan, and nothing reaches C unchecked. The memo is per layer and bounded
(``MAX_PLANS``; emptied when full).

NOTE: a layer's arrays are constants once it is built (its weight is packed at construction
already); a layer with other arrays is a new layer (``with_out_qparams``, ``kernel_twin``).

``TINYEFF_INT8_PLANS=0`` turns the plans off: every call is checked in full, as a debugging aid
and to measure what the plans save (bench/bench_int8_latency.py). What this leaves out: the
Python between kernel calls (the NHWC scheduler, the float input's quantization and the output's
dequantization keep their plain code).
"""
import threading

from tinyeff import kernels
from tinyeff.kernels import cpu, settings
from tinyeff.ops.plan import settings_key

MAX_PLANS = 64       # per layer: one per batch size and call site is the common case
SWITCH = "TINYEFF_INT8_PLANS"


def enabled():
    """False when ``TINYEFF_INT8_PLANS=0`` (read on every call, so a change takes effect at once)."""
    return settings.env(SWITCH) != "0"


_pass = threading.local()    # depth: one_pass blocks this thread is in; environment: read in the outermost


class one_pass:
    """Within the block (a quantized model's forward), the settings half of every plan key is read
    once, at the first kernel call, instead of at each: at batch 1 that read (environment, thread
    count, registry generation, usable ISA paths) costs 4-6 us per kernel call, as much as a small
    layer's kernel. NOTE: so a setting changed inside one forward, by a hook say, takes effect from
    the next forward on."""
    __slots__ = ()

    def __enter__(self):
        depth = getattr(_pass, "depth", 0)
        if depth == 0:
            _pass.environment = None
        _pass.depth = depth + 1
        return self

    def __exit__(self, *exc):
        _pass.depth -= 1
        if _pass.depth == 0:
            _pass.environment = None
        return False


def _environment():
    """(the plans switch, the settings key, the usable ISA paths): once per ``one_pass`` block."""
    held = getattr(_pass, "depth", 0)
    if held and _pass.environment is not None:
        return _pass.environment
    environment = (settings.env(SWITCH), settings_key(), cpu.usable_paths())
    if held:
        _pass.environment = environment
    return environment


class LayerPlans:
    """One layer's prepared kernel calls, by plan key (see the module docstring)."""
    __slots__ = ("_runners",)

    def __init__(self):
        self._runners = {}

    def call(self, site, name, arrays, *args, **kwargs):
        """``kernels.get(name)(*arrays, *args, **kwargs)``, prepared once per plan key.

        Args:
            site: hashable: names the call within the layer, with every argument in ``args`` and
                ``kwargs`` that is not the same on each of the layer's calls (e.g. ``("conv", pool)``).
            name: the kernel.
            arrays: tuple of the arrays that change from call to call (the activations), which
                the kernel takes first.
            args, kwargs: the rest of the kernel's arguments: constants of the layer.
        """
        switch, settings_now, paths = _environment()
        if switch == "0":
            return kernels.get(name)(*arrays, *args, **kwargs)
        x = arrays[0]
        key = (site, x.shape, x.dtype, settings_now, paths)
        if len(arrays) > 1:
            key += tuple((a.shape, a.dtype) for a in arrays[1:])
        runner = self._runners.get(key)
        if runner is None:
            runner = kernels.get(name).prepare(*arrays, *args, varying=len(arrays), **kwargs)  # checks: may raise
            if len(self._runners) >= MAX_PLANS:
                self._runners.clear()
            self._runners[key] = runner
        return runner(*arrays)

    def __reduce__(self):
        return LayerPlans, ()        # copied or pickled: empty; a copy prepares calls on its own arrays

    def forget(self):
        """Drop every prepared call (rebuilt on the next calls)."""
        self._runners.clear()

    def __len__(self):
        return len(self._runners)
