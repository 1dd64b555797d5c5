"""One parity test over the whole registry: every (kernel, tier, ISA path) against its reference.

Each kernel's spec (``kernels/<family>/spec.py``) supplies ``cases(rng)``, shapes that break tiling and
value extremes, and the tolerance (bit for bit for integer kernels). The parameter list is built from
the registry, so a new tier or ISA path is tested by being registered; one that cannot run here is
skipped with the registry's reason, never dropped from the list.
"""
import copy

import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels import contract, cpu, registry


def _targets():
    for name in registry.names():
        for tier in ("numba", "c"):
            declared = registry.declared_isas(name, tier)
            if tier in registry.tiers(name) and declared:
                for path in declared:
                    yield name, tier, path
            else:
                yield name, tier, None


def _id(target):
    name, tier, path = target
    return f"{name}-{tier}" + (f"-{path}" if path else "")


def _snapshot(values):
    return copy.deepcopy(values)


def _assert_unchanged(before, after, name):
    """The kernel did not write into its inputs."""
    for b, a in zip(before, after):
        if isinstance(b, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} modified one of its inputs")


@pytest.mark.parametrize("target", list(_targets()), ids=_id)
def test_tier_matches_reference(target):
    name, tier, path = target
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    if path is not None and path not in registry.isa_paths(name, tier):
        pytest.skip(f"{name} {tier}: ISA path {path} cannot run here (usable: "
                    f"{', '.join(cpu.usable_paths())}; the CPU and TINYEFF_CPU_FEATURES decide)")
    spec = registry.spec(name)
    fast = kernels.get(name, tier, isa=path)
    rng = np.random.default_rng(1234)
    count = 0
    for i, call in enumerate(spec.cases(rng)):
        args, kwargs = call
        before = _snapshot(args)
        want = spec.reference(*copy.deepcopy(args), **kwargs)
        got = fast(*args, **kwargs)
        contract.assert_matches(spec, got, want, what=f"{_id(target)} case {i}")
        _assert_unchanged(before, args, name)
        count += 1
    assert count >= 3, f"{name}: its spec gives {count} cases; give at least 3 (tiling-breaking shapes, extremes)"


@pytest.mark.parametrize("name", registry.names())
def test_every_kernel_has_a_contract(name):
    """A spec with cases and a validated reference for every registered kernel."""
    spec = registry.spec(name)
    assert spec.reference is kernels.get(name, "ref")
    assert spec.cases is not None and spec.tolerance is not None
    cases = list(spec.cases(np.random.default_rng(0)))
    assert len(cases) >= 3
    for args, kwargs in cases:          # the reference runs on all of its own cases
        spec.reference(*args, **kwargs)
