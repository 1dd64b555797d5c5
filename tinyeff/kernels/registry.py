"""The kernel registry: one name per kernel, up to three tiers behind it, chosen at run time.

Every kernel has a plain NumPy reference (tier ``ref``), which is the contract. Faster tiers
(``numba``, ``c``) register under the same name with the same signature. ``get(name)`` returns the
best tier that is available (c, then numba, then ref); ``TINYEFF_TIER=ref|numba|c`` forces
one tier for every kernel that has it (kernels without it keep their best tier, and we say so in
``report()``). A tier that cannot load (no compiler, no Numba) is recorded with its reason, warned
about once, and skipped: a fallback is never silent and never a crash.

A second dimension, inside a tier: ISA paths (``cpu.PATHS``: portable, avx2, avx512, ...). A C
kernel registers the paths it has bodies for; ``get`` binds the widest one the CPU runs under
``TINYEFF_CPU_FEATURES``, or the one asked for (``get(name, isa="avx2")``), so tests and benches
reach every path through the same call.

Each kernel also has a contract (``contract.Spec``: checks, reference, test cases, tolerance),
declared by its family's ``spec.py`` and kept here by name, so tests and benches can walk every
(kernel, tier, ISA path) without a list of their own.

What this file leaves out: the kernels themselves (one folder per family, ``kernels/<family>/``),
how a call is checked (``contract.py``) and how the tiers are loaded (``kernels/__init__.py``).
"""
import functools
import warnings

from tinyeff.errors import KernelUnavailable
from tinyeff.kernels import cpu, settings

TIERS = ("ref", "numba", "c")
# The kernel folders (kernels/<family>/{spec,numba,c}.py), in load order: a family's spec may use an
# earlier family's reference (conv's uses im2col's, the int8 GEMM's uses the requantization).
FAMILIES = ("gemm", "im2col", "pad", "pool", "relu", "norm", "conv", "depthwise", "sparse", "int8_eltwise",
            "int8_gemm", "int8_conv", "int8_conv_small")
PREFERENCE = ("c", "numba", "ref")

_kernels = {}          # name -> {tier: function}
_specs = {}            # name -> contract.Spec
_isa = {}              # (name, tier) -> ISA paths that tier has bodies for
_tier_off = {}         # tier -> reason the whole tier is unavailable
_warned = set()
# Memos for the hot path: ``get`` runs per kernel call, per layer, per step, and resolving a tier
# and an ISA path from scratch (environment reads, path filtering, a partial) costs as much as a
# small kernel. Both are keyed on what decides them, TINYEFF_TIER and the usable ISA paths
# (``cpu.usable_paths()``: the detected features under the TINYEFF_CPU_FEATURES cap), so changing
# either still takes effect on the next call, and are emptied whenever the registry itself changes
# (register, disable_tier).
_resolved = {}         # (name, tier, isa, TINYEFF_TIER, usable paths) -> function
_paths = {}            # (name, tier, usable paths) -> the ones this tier has bodies for
_changes = [0]         # how many times the registry changed: memos built above it compare this


def _forget():
    _resolved.clear()
    _paths.clear()
    _changes[0] += 1


def generation():
    """A number that changes whenever a kernel is registered or a tier disabled (for memos of
    resolved kernels outside this module, such as the ops' inference plans)."""
    return _changes[0]


def register(name, tier, isa=None):
    """Decorator: register ``fn`` as tier ``tier`` of kernel ``name``.

    Args:
        name: kernel name, ``<op>_<dtype>[_<variant>]`` such as ``gemm_f32``.
        tier: one of ``ref``, ``numba``, ``c``.
        isa: for a tier with bodies per instruction set (the C tier), the ISA paths it has
            (names from ``cpu.PATHS``). The function then takes a keyword ``isa`` (a path name;
            None means the best usable one), and ``get`` binds the path it picks.
    """
    if tier not in TIERS:
        raise ValueError(f"register: tier={tier!r} is not one of {TIERS}")
    if isa is not None:
        unknown = [p for p in isa if p not in cpu.PATHS]
        if unknown or "portable" not in isa:
            raise ValueError(f"register({name!r}): isa={isa!r} must name paths from {cpu.PATHS}, "
                             "portable included")

    def decorate(fn):
        _forget()
        _kernels.setdefault(name, {})[tier] = fn
        if isa is not None:
            _isa[(name, tier)] = tuple(p for p in cpu.PATHS if p in isa)
        return fn
    return decorate


def define(spec):
    """Record kernel ``spec.name``'s contract (done by ``contract.define``)."""
    if spec.name in _specs:
        raise ValueError(f"kernel {spec.name!r} is defined twice; one spec.py owns each kernel")
    _specs[spec.name] = spec


def spec(name):
    """The contract of kernel ``name`` (``contract.Spec``)."""
    if name not in _specs:
        raise KeyError(f"kernel {name!r} has no spec; known: {', '.join(sorted(_specs))}")
    return _specs[name]


def declared_isas(name, tier):
    """The ISA paths ``name``'s ``tier`` has bodies for (None: no ISA dimension)."""
    return _isa.get((name, tier))


def isa_paths(name, tier):
    """The ISA paths of ``name``'s ``tier`` that can run here, lowest first (``()`` if none)."""
    usable = cpu.usable_paths()
    key = (name, tier, usable)
    paths = _paths.get(key)
    if paths is None:
        declared = _isa.get((name, tier))
        paths = () if declared is None else tuple(p for p in declared if p in usable)
        _paths[key] = paths
    return paths


def best_isa(name, tier="c"):
    """The widest ISA path of ``name``'s ``tier`` this CPU runs (None: no ISA dimension)."""
    paths = isa_paths(name, tier)
    return paths[-1] if paths else None


def resolve_isa(name, tier, isa):
    """``isa`` checked against the paths that can run here, or the best one if ``isa`` is None."""
    paths = isa_paths(name, tier)
    if isa is None:
        return paths[-1]
    if isa not in paths:
        raise KernelUnavailable(
            f"kernel {name!r}, tier {tier!r} has no ISA path {isa!r} here; it can run: "
            f"{', '.join(paths)} (declared: {', '.join(_isa.get((name, tier), ()))}; the CPU and "
            "TINYEFF_CPU_FEATURES decide the rest)")
    return isa


def disable_tier(tier, reason):
    """Record that a whole tier cannot be used here, and warn once with ``reason``."""
    _forget()
    _tier_off[tier] = reason
    if tier not in _warned:
        _warned.add(tier)
        warnings.warn(f"tinyeff: {tier} kernels are off ({reason}); using the next tier",
                      RuntimeWarning, stacklevel=3)


def tiers(name):
    """The tiers kernel ``name`` has an implementation in (usable here or not), in ``TIERS`` order."""
    return tuple(t for t in TIERS if t in _kernels.get(name, {}))


def tier_off(tier):
    """Why the whole ``tier`` did not load here (no compiler, no Numba), or None."""
    return _tier_off.get(tier)


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
    if tier not in _kernels[name]:
        return f"{name} has no {tier} implementation; it has: {', '.join(sorted(_kernels[name]))}"
    return None


def _forced_tier():
    forced = (settings.env("TINYEFF_TIER") or "").strip()
    if forced and forced not in TIERS:
        raise ValueError(f"TINYEFF_TIER={forced!r} is not one of {TIERS}; unset it or pick one")
    return forced or None


def active_tier(name):
    """The tier ``get(name)`` would use now."""
    forced = _forced_tier()
    if forced and available(name, forced):
        return forced
    for tier in PREFERENCE:
        if available(name, tier):
            return tier
    raise KernelUnavailable(f"kernel {name!r} has no usable tier: "
                            + "; ".join(f"{t}: {why_unavailable(name, t)}" for t in TIERS))


def get(name, tier=None, isa=None):
    """Return the function for kernel ``name``: the given ``tier``, or the best available one.

    For a tier with ISA paths, the function comes bound to ``isa`` (or to the best path this CPU
    runs under ``TINYEFF_CPU_FEATURES``).

    Raises:
        KernelUnavailable: the tier or ISA path asked for cannot run here (the message says why).
    """
    key = (name, tier, isa, settings.env("TINYEFF_TIER"), cpu.usable_paths())
    fn = _resolved.get(key)
    if fn is None:
        fn = _resolved[key] = _resolve(name, tier, isa)     # raises (and memoizes nothing) if unusable
    return fn


def _resolve(name, tier, isa):
    if tier is None:
        tier = active_tier(name)
    reason = why_unavailable(name, tier)
    if reason is not None:
        raise KernelUnavailable(f"kernel {name!r}, tier {tier!r}: {reason}")
    if (name, tier) not in _isa:
        if isa is not None:
            raise KernelUnavailable(f"kernel {name!r}, tier {tier!r} has no ISA paths; "
                                    "call get() without isa")
        return _kernels[name][tier]
    return _bound(name, tier, resolve_isa(name, tier, isa))


@functools.lru_cache(maxsize=None)
def _bound(name, tier, isa):
    fn = _kernels[name][tier]
    bound = functools.partial(fn, isa=isa)
    functools.update_wrapper(bound, fn)
    if hasattr(fn, "prepare"):
        bound.prepare = functools.partial(fn.prepare, isa=isa)
    return bound


def report():
    """One dict per kernel: its active tier, that tier's ISA path (and the paths it could run here),
    and, for each tier, ``"ok"`` or the reason it is off."""
    rows = []
    for name in names():
        tiers = {t: (why_unavailable(name, t) or "ok") for t in TIERS}
        active = active_tier(name)
        rows.append({"kernel": name, "active": active, "isa": best_isa(name, active),
                     "isa_paths": isa_paths(name, active), "tiers": tiers})
    return rows
