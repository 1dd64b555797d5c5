"""The environment settings read on every kernel call, read cheaply.

The one idea: ``TINYEFF_TIER``, ``TINYEFF_CPU_FEATURES`` and ``TINYEFF_LOWERING`` are read each
time a kernel is picked, so a setting changed at run time (a test's ``monkeypatch.setenv``, a
benchmark capping the ISA) takes effect on the next call. ``os.environ.get`` of a name that is
*not* set costs microseconds (the mapping raises and catches a KeyError inside), which, a few times
per layer, is a large part of a batch-1 forward pass. ``env`` reads the same mapping without the
exception. ``snapshot`` is every setting that decides a kernel choice, as one hashable key for the
memos built on it (the ops' inference plans).

What this leaves out: settings read once at import or on rare paths (``TINYEFF_NO_C``, cache
directories), which keep plain ``os.environ.get``.
"""
import os

KERNEL_SETTINGS = ("TINYEFF_TIER", "TINYEFF_CPU_FEATURES", "TINYEFF_LOWERING")

# NOTE: ``os.environ`` keeps its encoded contents in ``_data`` (every CPython since 3.2, POSIX and
# Windows alike); ``encodekey`` / ``decodevalue`` are the mapping's own converters. Where that
# layout is missing (another Python), the plain, slower lookup is used.
_data = getattr(os.environ, "_data", None)
_keys = {}     # name -> encoded key (a fixed function of the name)


def env(name):
    """``os.environ.get(name)``: the value of environment variable ``name``, or None if unset."""
    if _data is None:
        return os.environ.get(name)
    key = _keys.get(name)
    if key is None:
        key = _keys[name] = os.environ.encodekey(name)
    value = _data.get(key)
    return None if value is None else os.environ.decodevalue(value)


def snapshot():
    """The kernel settings now, as a tuple of their values as the environment holds them (encoded;
    None for each one unset): a key to compare, not to read."""
    if _data is None:
        return tuple(os.environ.get(name) for name in KERNEL_SETTINGS)
    get = _data.get
    return get(_ENCODED[0]), get(_ENCODED[1]), get(_ENCODED[2])


_ENCODED = tuple(os.environ.encodekey(name) for name in KERNEL_SETTINGS) if _data is not None else ()
