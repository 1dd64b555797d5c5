"""Inference plans: an op's checks, lowering and kernels resolved once per call signature, then reused.

The one idea: at batch 1 a layer's kernels run in microseconds, and picking and checking them in
Python on every call (the op's argument checks, the conv lowering, ``kernels.get``, the kernel
contract's binding and checks) costs as much again. None of that depends on the values in the arrays, only on
what a *plan key* holds: the op, the shapes and dtypes of its arrays, its scalar arguments, and the
settings every kernel choice reads (``TINYEFF_TIER``, ``TINYEFF_CPU_FEATURES``, ``TINYEFF_LOWERING``,
the C thread count, the registry's generation). So when no gradient is recorded, an op runs through
``run(key, validate, body)``:

- a new key runs ``validate()`` (the op's own checks, raising on bad input, and its decisions such
  as the lowering), then ``body(kernel, decided)``, where ``kernel(name, x)`` stands in for
  ``kernel_for``: it returns the kernel, checked in full by its contract, and records a prepared
  runner of it (``fn.prepare``, kernels/contract.py);
- a known key skips ``validate`` and hands ``body`` the recorded runners, in the order it asks for
  them: the same op code runs, minus the checks and look-ups.

Validation thus happens once per key, at the op's boundary, and a bad input never gets a plan (the
failing call raises before anything is stored). Plans hold no arrays: weights are read on every
call, so training, a new state dict or a pruning mask never meets a stale plan. (What a kernel
derives from a weight, a conv's packed weight, is kept by the kernel under a prepared runner and
checked against the weight's bytes on every call: kernels/weight_cache.py.) A changed setting,
thread count or registered kernel is part of the key, so it builds a new plan. The memo is bounded
(``MAX_PLANS``; emptied when full, as shapes rarely vary much in inference).

What this leaves out: recording a graph (training runs the ops' full path), and a plan spanning
several layers: each op's plan is its own, so hooks and parameter transforms keep working.
"""
from tinyeff.kernels import c as c_tier
from tinyeff.kernels import registry, settings
from tinyeff.ops.kernel_choice import kernel_for

MAX_PLANS = 1024
_plans = {}      # plan key -> _Plan


class _Plan:
    """What ``validate`` decided, and the prepared kernels of the first complete run."""
    __slots__ = ("decided", "kernels")

    def __init__(self, decided):
        self.decided, self.kernels = decided, None


class _Recorder:
    """``kernel_for`` for a plan's first run: each kernel is checked in full, then prepared."""

    def __init__(self):
        self.kernels = []

    def __call__(self, name, x):
        fn = kernel_for(name, x)
        prepare = getattr(fn, "prepare", None)
        if prepare is None:                  # a kernel registered without a contract
            self.kernels.append(fn)
            return fn

        def first_call(*args, **kwargs):
            runner = prepare(*args, **kwargs)
            self.kernels.append(runner)
            return runner(*args, **kwargs)
        return first_call


class _Replay:
    """``kernel_for`` for later runs: the recorded runners, in the order the op asks for them."""
    __slots__ = ("kernels", "i")

    def __init__(self, kernels):
        self.kernels, self.i = kernels, 0

    def __call__(self, name, x):
        self.i += 1
        return self.kernels[self.i - 1]


def settings_key():
    """Everything outside a call's arguments that decides its kernels and lowering."""
    threads = 1 if registry.tier_off("c") else c_tier.lib().tinyeff_get_num_threads()
    return settings.snapshot(), threads, registry.generation()


def run(key, validate, body):
    """``body(kernel, decided)`` through the plan for ``key`` (see the module docstring).

    Args:
        key: hashable: the op's name, its arrays' shapes and dtypes and its scalar arguments.
        validate: ``validate() -> decided``: the op's checks (raising on bad input) and decisions;
            None when the kernels' own checks are all there is (``decided`` is then None).
        body: ``body(kernel, decided) -> result``; ``kernel(name, x)`` replaces ``kernel_for``.
    """
    key = (key, settings_key())
    try:
        plan = _plans.get(key)
    except TypeError:                        # an unhashable argument (a list): no plan, full path
        return body(kernel_for, validate and validate())
    if plan is not None and plan.kernels is not None:
        return body(_Replay(plan.kernels), plan.decided)
    plan = _Plan(validate and validate())
    recorder = _Recorder()
    result = body(recorder, plan.decided)
    plan.kernels = recorder.kernels
    if len(_plans) >= MAX_PLANS:
        _plans.clear()
    _plans[key] = plan
    return result


def forget():
    """Drop every plan (they are rebuilt on the next calls)."""
    _plans.clear()
