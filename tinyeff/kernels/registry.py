"""The kernel registry: one name per kernel, up to three tiers behind it, chosen at run time.

Every kernel has a plain NumPy reference (tier ``ref``), which is the contract. Faster tiers
(``numba``, ``c``) register under the same name with the same signature. ``get(name)`` returns the
best tier that is available, in the kernel's preference order; ``TINYEFF_TIER=ref|numba|c`` forces
one tier for every kernel that has it (kernels without it keep their best tier, and we say so in
``report()``). A tier that cannot load (no compiler, no Numba, CPU lacks a feature) is recorded
with its reason, warned about once, and skipped: a fallback is never silent and never a crash.

What this file leaves out: the kernels themselves (``ref/``, ``numba/``, ``c.py``) and how they are
loaded (``kernels/__init__.py``).
"""
import os
import warnings

from tinyeff.errors import KernelUnavailable

TIERS = ("ref", "numba", "c")
DEFAULT_PREFERENCE = ("c", "numba", "ref")

_kernels = {}          # name -> {tier: function}
_preference = {}       # name -> tuple of tiers, best first
_tier_off = {}         # tier -> reason the whole tier is unavailable
_kernel_off = {}       # (name, tier) -> reason one kernel's tier is unavailable
_warned = set()


def register(name, tier, preference=None):
    """Decorator: register ``fn`` as tier ``tier`` of kernel ``name``.

    Args:
        name: kernel name, ``<op>_<dtype>[_<variant>]`` such as ``gemm_f32``.
        tier: one of ``ref``, ``numba``, ``c``.
        preference: optional tuple of tiers, best first, for this kernel (set from bench/ results).
    """
    if tier not in TIERS:
        raise ValueError(f"register: tier={tier!r} is not one of {TIERS}")

    def decorate(fn):
        _kernels.setdefault(name, {})[tier] = fn
        if preference is not None:
            _preference[name] = tuple(preference)
        return fn
    return decorate


def set_preference(name, preference):
    """Set the order in which tiers of ``name`` are tried, best first."""
    bad = [t for t in preference if t not in TIERS]
    if bad:
        raise ValueError(f"set_preference: unknown tiers {bad}; use {TIERS}")
    _preference[name] = tuple(preference)


def disable_tier(tier, reason):
    """Record that a whole tier cannot be used here, and warn once with ``reason``."""
    _tier_off[tier] = reason
    if tier not in _warned:
        _warned.add(tier)
        warnings.warn(f"tinyeff: {tier} kernels are off ({reason}); using the next tier",
                      RuntimeWarning, stacklevel=3)


def disable_kernel(name, tier, reason):
    """Record that one kernel's tier cannot be used here (a CPU feature is missing, say)."""
    _kernel_off[(name, tier)] = reason


def names():
    """All registered kernel names, sorted."""
    return sorted(_kernels)


def available(name, tier):
    """True if kernel ``name`` has a usable implementation in ``tier``."""
    return why_unavailable(name, tier) is None


def why_unavailable(name, tier):
    """The reason ``name`` cannot run on ``tier``, or None if it can."""
    if name not in _kernels:
        return f"no kernel named {name!r}; known kernels: {', '.join(names())}"
    if tier in _tier_off:
        return _tier_off[tier]
    if (name, tier) in _kernel_off:
        return _kernel_off[(name, tier)]
    if tier not in _kernels[name]:
        return f"{name} has no {tier} implementation; it has: {', '.join(sorted(_kernels[name]))}"
    return None


def _forced_tier():
    forced = os.environ.get("TINYEFF_TIER", "").strip()
    if forced and forced not in TIERS:
        raise ValueError(f"TINYEFF_TIER={forced!r} is not one of {TIERS}; unset it or pick one")
    return forced or None


def active_tier(name):
    """The tier ``get(name)`` would use now."""
    forced = _forced_tier()
    if forced and available(name, forced):
        return forced
    for tier in _preference.get(name, DEFAULT_PREFERENCE):
        if available(name, tier):
            return tier
    raise KernelUnavailable(f"kernel {name!r} has no usable tier: "
                            + "; ".join(f"{t}: {why_unavailable(name, t)}" for t in TIERS))


def get(name, tier=None):
    """Return the function for kernel ``name``: the given ``tier``, or the best available one.

    Raises:
        KernelUnavailable: the tier asked for cannot run here (the message says why).
    """
    if tier is None:
        tier = active_tier(name)
    reason = why_unavailable(name, tier)
    if reason is not None:
        raise KernelUnavailable(f"kernel {name!r}, tier {tier!r}: {reason}")
    return _kernels[name][tier]


def report():
    """One dict per kernel: its active tier and, for each tier, ``"ok"`` or the reason it is off."""
    rows = []
    for name in names():
        tiers = {t: (why_unavailable(name, t) or "ok") for t in TIERS}
        rows.append({"kernel": name, "active": active_tier(name), "tiers": tiers})
    return rows
