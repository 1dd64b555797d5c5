"""Kernel contracts: a reference defines the kernel, faster tiers implement it behind the same checks.

The one idea: a kernel's arguments are validated once, in one place, for every tier. A family's
``spec.py`` declares each kernel with ``@define``: the NumPy reference (whose signature and docstring
*are* the contract), a ``check`` that validates the arguments and derives what the loops need (output
sizes, normalized per-channel vectors), the ``cases(rng)`` every tier is tested on, and the tolerance
a faster tier must meet. A faster tier's ``numba.py`` or ``c.py`` then registers a *body* with
``@implements``: a function that only allocates and loops, on arguments already checked.

How a call runs (``run`` below): bind the caller's arguments to the reference's signature (defaults
filled in), call ``check`` with the arguments it names, merge what it returns (new names, or
normalized values of existing ones), then call the tier's body with the arguments *it* names. So a
body declares just what it uses, e.g. ``def im2col_f32(x, kh, kw, stride, padding, dilation, oh, ow)``,
and a check or body never re-reads a default the reference already chose. The reference itself is
written the same way: its keyword-only parameters (after ``*``) are the derived values, not part of
the public signature.

Called per layer per step, the binding and checking cost more than a small kernel (batch-1 inference).
So every kernel also has ``fn.prepare(*args, **kwargs)``: it checks one call in full and returns a
runner that calls the body directly, the derived values kept, on later calls whose positional
arguments have the same shapes and dtypes (and the same values for scalars). Checks depend only on
those for the kernels an inference plan prepares (ops/plan.py keys its plans on them): the arguments
are validated once per shape, not once per call. ``fn.prepare(*args, varying=k, **kwargs)`` is the
form for callers whose other arguments are constants, arrays included (a quantized layer's packed
weight and requantization vectors: tinyeff/quant/qmodules/plans.py): its runner takes only the first
k positional arguments (of the shapes and dtypes it was prepared with), everything else stays as
checked and normalized once, and a C body with a ``bind`` (see ``implements``) marshals it once.

``faster_dtypes`` is the one rule the reference relaxes: it accepts float64 (gradient checks) and
float16, while the faster tiers take float32 only.
"""
import dataclasses
import functools
import inspect
from collections import namedtuple

import numpy as np

from tinyeff.kernels import registry

Case = namedtuple("Case", "args kwargs")


def case(*args, **kwargs):
    """One call of a kernel, as a parity test or a benchmark makes it."""
    return Case(args, kwargs)


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How close a faster tier must be to the reference; all zero means bit for bit."""
    rtol: float = 0.0
    atol: float = 0.0
    why: str = "integer arithmetic: every tier matches the reference bit for bit"

    @property
    def exact(self):
        return self.rtol == 0 and self.atol == 0


EXACT = Tolerance()


@dataclasses.dataclass(frozen=True)
class Spec:
    """One kernel's contract (see the module docstring)."""
    name: str
    reference: object          # the validated reference function (what ``get(name, "ref")`` returns)
    check: object              # check(**named args) -> dict of derived / normalized arguments, or None
    cases: object              # cases(rng) -> iterable of Case
    tolerance: Tolerance
    faster_dtypes: dict        # argument -> dtype the faster tiers require (None values are skipped)
    signature: inspect.Signature


def _takes(fn):
    """The argument names ``fn`` declares, or None if it takes ``**kwargs`` (then it gets all)."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return tuple(p.name for p in params)


def _pick(args, names):
    return dict(args) if names is None else {k: args[k] for k in names if k in args}


def _check_dtypes(name, args, dtypes):
    for arg, dtype in dtypes.items():
        value = args.get(arg)
        if value is not None and getattr(value, "dtype", None) != dtype:
            raise TypeError(f"{name}: {arg} is {getattr(value, 'dtype', type(value).__name__)}; the numba "
                            f"and c tiers take {np.dtype(dtype)} (cast with .astype(np.{np.dtype(dtype)}), "
                            "or use tier='ref')")


def _binder(name, signature):
    """A fast ``signature.bind`` + ``apply_defaults`` for plain positional-or-keyword parameters
    (every kernel signature): returns ``bind(args, kwargs) -> dict``. Kernels are called per layer
    per step, so this runs in a couple of microseconds instead of ``inspect``'s ten."""
    params = list(signature.parameters.values())
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params), name
    names = tuple(p.name for p in params)
    known = frozenset(names)
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

    def bind(args, kwargs):
        if len(args) > len(names):
            raise TypeError(f"{name}() takes {len(names)} arguments ({', '.join(names)}), got {len(args)}")
        arguments = dict(defaults)
        arguments.update(zip(names, args))
        if kwargs:
            for key in kwargs:
                if key not in known or key in names[:len(args)]:
                    raise TypeError(f"{name}() got an unexpected or repeated argument {key!r}; it takes "
                                    f"{', '.join(names)}")
            arguments.update(kwargs)
        if len(arguments) < len(names):
            missing = [n for n in names if n not in arguments]
            raise TypeError(f"{name}() is missing required argument(s) {', '.join(missing)}")
        return arguments
    return bind


def run(spec, body, faster, bind=None):
    """Wrap ``body`` so that it runs on arguments bound, defaulted and checked by ``spec`` (``bind``:
    see ``implements``)."""
    check_takes = _takes(spec.check) if spec.check else ()
    body_takes = _takes(body)
    bind_args = _binder(spec.name, spec.signature)
    dtypes = spec.faster_dtypes if faster else None
    check = spec.check
    positional = tuple(spec.signature.parameters)       # the order positional arguments bind in

    def checked(args, kwargs, isa):
        """(the body's arguments: bound, dtype-checked, validated, derived values merged in;
        the derived values alone)."""
        arguments = bind_args(args, kwargs)
        if dtypes:
            _check_dtypes(spec.name, arguments, dtypes)
        derived = check(**_pick(arguments, check_takes)) if check else None
        if derived:
            arguments.update(derived)           # a check returns a dict of derived values, or None
        if isa is not None:
            arguments["isa"] = isa
        return _pick(arguments, body_takes), derived or {}

    def call(*args, isa=None, **kwargs):
        return body(**checked(args, kwargs, isa)[0])

    def prepare(*args, isa=None, varying=None, **kwargs):
        arguments, derived = checked(args, kwargs, isa)
        if varying is not None:
            return _prepared_constants(spec.name, body, arguments, derived, positional[:varying], bind)
        return _prepared(spec.name, body, arguments, derived, positional[:len(args)], kwargs)
    functools.update_wrapper(call, body)
    call.prepare = prepare
    if not faster:
        call.__doc__ = body.__doc__
    else:
        call.__doc__ = f"{spec.name}: see its reference for the contract." + (
            f"\n\n{inspect.cleandoc(body.__doc__)}" if body.__doc__ else "")
    call.__signature__ = spec.signature
    return call


def _prepared(name, body, arguments, derived, positional, kwargs):
    """``prepare``'s runner: ``body`` on ``arguments`` (checked), the ``positional`` ones replaced
    by each call's; keyword arguments (the same on every call) and derived values stay as checked."""
    if any(isinstance(v, np.ndarray) for v in kwargs.values()):
        raise TypeError(f"{name}.prepare: pass arrays positionally (they change from call to call)")
    if any(isinstance(derived[n], np.ndarray) for n in positional if n in derived):
        raise ValueError(f"{name}.prepare: its check rewrites an array argument; call the kernel itself")
    picks = tuple(i for i, n in enumerate(positional) if n in arguments and n not in derived)
    names = tuple(positional[i] for i in picks)              # what each call passes anew
    fixed = {n: v for n, v in arguments.items() if n not in names}
    count = len(positional)
    # The usual case: the call's positional arguments are the body's first parameters, in order.
    direct = picks == tuple(range(count)) and (_takes(body) or ())[:count] == names

    def prepared(*args, **again):
        if len(args) != count or again != kwargs:
            raise TypeError(f"{name} (prepared): takes {count} positional arguments and the keyword "
                            f"arguments {kwargs}; got {len(args)} and {again}")
        if direct:
            return body(*args, **fixed)
        arguments = dict(fixed)
        arguments.update(zip(names, [args[i] for i in picks]))
        return body(**arguments)
    return prepared


def _prepared_constants(name, body, arguments, derived, names, bind):
    """``prepare(..., varying=k)``'s runner: ``body`` on the arguments as checked, the first k
    (``names``) replaced by each call's, which passes exactly those; every other argument, arrays
    included, is a constant of the caller (a quantized layer's packed weight, bias, multiplier).
    Where the body has a ``bind`` taking exactly those constants, the runner is what it returns."""
    if any(isinstance(derived.get(n), np.ndarray) for n in names):
        raise ValueError(f"{name}.prepare: its check rewrites a varying array; call the kernel itself")
    fixed = {n: v for n, v in arguments.items() if n not in names}
    count = len(names)
    if bind is not None and set(_takes(bind) or ()) == set(fixed):
        run = bind(**fixed)
    elif (_takes(body) or ())[:count] == names:
        run = functools.partial(body, **fixed)
    else:
        def run(*args):
            return body(**fixed, **dict(zip(names, args)))

    def prepared(*args):
        if len(args) != count:
            raise TypeError(f"{name} (prepared): takes the {count} varying argument(s) {', '.join(names)}; "
                            f"got {len(args)}")
        return run(*args)
    return prepared


def define(name, check=None, cases=None, tolerance=EXACT, faster_dtypes=None):
    """Decorator for a reference kernel: declare ``name``'s contract and register its ``ref`` tier.

    Args:
        name: the kernel name (``<op>_<dtype>[_<variant>]``).
        check: validates the arguments it names (raising ValueError/TypeError with the fix) and
            returns a dict of derived values for the bodies, or None.
        cases: ``cases(rng)`` yielding ``Case`` calls: tiling-breaking shapes and value extremes.
        tolerance: what a faster tier must meet against this reference.
        faster_dtypes: dtypes the faster tiers require of some arguments (the reference may be
            more lenient).
    Returns:
        The decorator; it returns the validated reference function.
    """
    def decorate(reference):
        full = inspect.signature(reference)
        public = full.replace(parameters=[p for p in full.parameters.values()
                                          if p.kind is not inspect.Parameter.KEYWORD_ONLY])
        placeholder = Spec(name, None, check, cases, tolerance, dict(faster_dtypes or {}), public)
        validated = run(placeholder, reference, faster=False)
        spec = dataclasses.replace(placeholder, reference=validated)
        registry.define(spec)
        registry.register(name, "ref")(validated)
        return validated
    return decorate


def implements(name, tier, isa=None, bind=None):
    """Decorator for a faster tier's body of kernel ``name``: register it behind the spec's checks.

    The body declares the (checked) arguments and derived values it needs, plus ``isa`` when the
    tier has ISA paths (``isa=`` as in ``registry.register``). Returns the registered function,
    which takes the reference's signature.

    ``bind``, optional: ``bind(**constants) -> run(*varying)``, the body split in two: what depends
    only on the constants (C pointers to a packed weight, the ISA code) marshalled once, ``run``
    the rest per call. The body should be ``bind(...)(x)`` itself, so the two cannot drift apart.
    ``prepare(..., varying=k)`` uses it when it takes exactly the arguments after the first k.
    """
    def decorate(body):
        spec = registry.spec(name)
        wrapped = run(spec, body, faster=True, bind=bind)
        if isa is not None:
            wrapped.__signature__ = spec.signature.replace(parameters=[
                *spec.signature.parameters.values(),
                inspect.Parameter("isa", inspect.Parameter.KEYWORD_ONLY, default=None)])
        registry.register(name, tier, isa=isa)(wrapped)
        return wrapped
    return decorate


def assert_matches(spec, got, want, what=None):
    """Assert a tier's result ``got`` equals the reference's ``want`` within ``spec.tolerance``.

    Handles arrays, tuples of results, None (an output the call did not ask for) and dataclass
    results such as packed weights (field by field).
    """
    what = what or spec.name
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), \
            f"{what}: got {type(got).__name__} of {len(got) if hasattr(got, '__len__') else '?'}, want {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_matches(spec, g, w, f"{what}[{i}]")
        return
    if want is None:
        assert got is None, f"{what}: got {type(got).__name__}, want None"
        return
    if dataclasses.is_dataclass(want):
        assert type(got) is type(want), f"{what}: got {type(got).__name__}, want {type(want).__name__}"
        for field in dataclasses.fields(want):
            assert_matches(spec, getattr(got, field.name), getattr(want, field.name), f"{what}.{field.name}")
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, the reference gives {want.dtype}"
    if spec.tolerance.exact:
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, rtol=spec.tolerance.rtol, atol=spec.tolerance.atol,
                                   err_msg=f"{what} ({spec.tolerance.why})")
