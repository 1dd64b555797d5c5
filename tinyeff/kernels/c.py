"""C tier: loads the cffi extension built from ``csrc/`` by ``setup.py`` and registers its kernels.

``load()`` returns None when the C tier is usable, otherwise the reason it is not (the extension was
not built because no C compiler was found, or ``TINYEFF_NO_C=1`` simulates that). Each kernel family
has its own marshalling module (``kernels/<family>/c.py``); it receives arguments its spec already
checked, calls the C function and turns a nonzero status into an exception with ``check()``.

Also here: the C side's thread count (OpenMP's own runtime state, so no module state of ours).
"""
import importlib
import importlib.util
import os

from tinyeff.kernels import cpu, registry

# Status codes returned by every exported C function (csrc/tinyeff.h, "status codes").
_STATUS = {1: "an argument the Python wrapper should have rejected",
           2: "a code path this CPU or build does not have",
           3: "out of memory for a per-thread buffer"}


_loaded = []     # the extension module once imported: every kernel call marshals through it


def _module():
    if not _loaded:
        from tinyeff import _tinyeff_c
        _loaded.append(_tinyeff_c)
    return _loaded[0]


def lib():
    """The compiled library (``ffi``, ``lib``); only call after ``load()`` returned None."""
    return (_loaded[0] if _loaded else _module()).lib      # on every kernel call: no extra call


def ffi():
    """The cffi FFI object of the compiled library."""
    return _module().ffi


def ptr(ctype, a):
    """A typed C pointer into contiguous array ``a`` (no copy): ``ptr("float", x)``."""
    return (_loaded[0] if _loaded else _module()).ffi.from_buffer(ctype + "[]", a)


_codes = {}      # (name, isa, usable paths, registry generation) -> code: runs on every C kernel call


def isa_code(name, isa=None):
    """The C ``isa`` argument for kernel ``name``: ``isa`` (a path name) checked against the paths
    that can run here, or the widest one; codes as in csrc/tinyeff.h."""
    key = (name, isa, cpu.usable_paths(), registry.generation())
    code = _codes.get(key)
    if code is None:
        code = _codes[key] = cpu.CODE[registry.resolve_isa(name, "c", isa)]   # raises if unusable
    return code


def isa_built():
    """ISA paths compiled into this build of the extension (x86-64 or ARM64 bodies), by name."""
    from tinyeff.kernels import cpu
    mask = int(lib().tinyeff_isa_built())
    return tuple(p for p in cpu.PATHS if mask >> cpu.CODE[p] & 1)


def check(status, name):
    """Raise RuntimeError if a C kernel returned a nonzero status (a bug in its wrapper)."""
    if status != 0:
        raise RuntimeError(f"{name}: C kernel returned status {status} "
                           f"({_STATUS.get(status, 'unknown status')}); please report this bug")


def num_threads():
    """Threads the C kernels use (OMP_NUM_THREADS or set_num_threads; 1 without OpenMP)."""
    return int(lib().tinyeff_get_num_threads())


def set_num_threads(n):
    """Set the C kernels' thread count (no effect when the extension was built without OpenMP)."""
    if int(n) < 1:
        raise ValueError(f"set_num_threads: n={n} must be >= 1")
    check(lib().tinyeff_set_num_threads(int(n)), "set_num_threads")


def has_openmp():
    """True if the extension was compiled with OpenMP."""
    return bool(lib().tinyeff_has_openmp())


def code_paths():
    """One line per C family saying which code path runs here (ISA, threads), for ``tinyeff info``."""
    reason = load_error()
    if reason is not None:
        return [f"C tier off: {reason}"]
    lines = []
    for family in registry.FAMILIES:
        name = f"tinyeff.kernels.{family}.c"
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        if hasattr(module, "code_path"):
            lines.append(module.code_path())
    return lines


def load_error():
    """Why the C tier cannot load here, or None; does not import the extension."""
    if os.environ.get("TINYEFF_NO_C", "") not in ("", "0"):
        return "TINYEFF_NO_C is set (simulating a machine without a C compiler); unset it to use the C tier"
    try:
        _module()
    except ImportError as exc:
        return (f"the C extension is not built ({exc}); install a C compiler (apt-get install gcc) "
                "and re-run pip install -e .")
    return None


def load(modules):
    """Import the compiled extension and the C tier ``modules`` (which register their kernels);
    return the reason on failure."""
    reason = load_error()
    if reason is not None:
        return reason
    for module in modules:
        importlib.import_module(module)
    return None
