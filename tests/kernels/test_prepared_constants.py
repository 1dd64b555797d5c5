"""``fn.prepare(..., varying=1)`` (kernels/contract.py) on every (kernel, tier, ISA path): the runner,
which keeps every argument but the first as checked once (and, where the C body has a ``bind``,
marshalled once), matches the reference on a *new* first argument of the same shape and dtype.

This is how the integer layers call their kernels (tinyeff/quant/qmodules/plans.py), so the exact
(integer) kernels are the ones tested; the cases are each kernel's own (its spec's ``cases``), the
new first argument random over its dtype's range.
"""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels import contract, registry

from test_parity import _id, _targets


def _like(rng, a):
    """A new array of ``a``'s shape and dtype (uint8 images, int32 sums, float inputs...)."""
    if a.dtype.kind == "f":
        return rng.uniform(-3, 3, a.shape).astype(a.dtype)
    if a.dtype.kind in "iu":
        info = np.iinfo(a.dtype)
        return rng.integers(info.min, info.max, a.shape, dtype=a.dtype, endpoint=True)
    return a.copy()


def _prepared_or_skip(fn, args, kwargs):
    try:
        return fn.prepare(*args, varying=1, **kwargs)
    except ValueError as exc:
        if "rewrites a varying array" in str(exc):       # its check normalizes the input: no runner
            return None
        raise


INTEGER = [t for t in _targets() if registry.spec(t[0]).tolerance.exact]


@pytest.mark.parametrize("target", INTEGER, ids=_id)
def test_prepared_runner_matches_reference_on_new_input(target):
    name, tier, path = target
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    if path is not None and path not in registry.isa_paths(name, tier):
        pytest.skip(f"{name} {tier}: ISA path {path} cannot run here")
    spec = registry.spec(name)
    fn = kernels.get(name, tier, isa=path)
    rng = np.random.default_rng(1234)
    count = 0
    for i, (args, kwargs) in enumerate(spec.cases(rng)):
        if not args or not isinstance(args[0], np.ndarray):
            continue
        runner = _prepared_or_skip(fn, args, kwargs)
        if runner is None:
            continue
        x = _like(rng, args[0])
        want = spec.reference(x, *args[1:], **kwargs)
        for _ in range(2):                                       # a runner is reused: nothing consumed
            contract.assert_matches(spec, runner(x), want, what=f"{_id(target)} case {i} (prepared)")
        count += 1
    if count == 0:
        pytest.skip(f"{name}: no case whose first argument the check leaves as given")


def test_prepared_runner_takes_only_the_varying_arguments(rng):
    fn = kernels.get("requantize_s32")
    acc = rng.integers(-2**20, 2**20, (3, 4), dtype=np.int32)
    runner = fn.prepare(acc, None, np.int32(2**30), np.int32(-3), 5, varying=1)
    with pytest.raises(TypeError, match="takes the 1 varying argument"):
        runner(acc, None)


def test_bound_runner_marshals_only_the_activation_and_output(rng, monkeypatch):
    name = "conv2d_u8s8_requant_nhwc"
    if not kernels.available(name, "c"):
        pytest.skip(kernels.why_unavailable(name, "c"))
    from tinyeff.kernels.int8_conv import c as conv_c
    spec = registry.spec(name)
    args, kwargs = next(iter(spec.cases(rng)))
    runner = kernels.get(name, "c").prepare(*args, varying=1, **kwargs)
    pointers = []
    real = conv_c.ptr
    monkeypatch.setattr(conv_c, "ptr", lambda kind, a: pointers.append(kind) or real(kind, a))
    contract.assert_matches(spec, runner(args[0]), spec.reference(*args, **kwargs))
    assert pointers == ["uint8_t", "uint8_t"]               # the padded input and the output; the weight's were kept
