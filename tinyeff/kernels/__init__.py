"""Kernels: NumPy references plus faster Numba and C tiers, behind one registry.

One folder per kernel family (``registry.FAMILIES``): ``spec.py`` (the contract and the NumPy
reference), ``numba.py`` and ``c.py`` (the faster tiers, loops and marshalling only). Importing this
package registers every reference kernel, then tries to load the faster tiers. A tier
that cannot load is recorded (with its reason) and warned about once; see ``registry.report()`` and
``tinyeff info``.
"""
import importlib
import importlib.util
import os
import sys
import warnings

# NOTE: our OpenMP regions are short and many (one per kernel call). With GNU OpenMP's default, idle
# threads spin between them, which on a shared 2-core machine starves every other process.
# Passive waiting costs microseconds per region. Set before
# the C extension (and its libgomp) loads; an explicit user setting wins.
if "OMP_WAIT_POLICY" not in os.environ and "torch" in sys.modules:
    # PyTorch's libgomp loaded first with its spinning default, and the C extension will share it.
    warnings.warn("tinyeff: PyTorch was imported first, so tinyeff's OpenMP kernels share its "
                  "libgomp, whose idle threads spin (a 2-thread training step ran at 0.31x its "
                  "1-thread speed); import tinyeff first or set OMP_WAIT_POLICY=PASSIVE",
                  RuntimeWarning, stacklevel=2)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from tinyeff.kernels import registry  # noqa: E402
from tinyeff.kernels.registry import (active_tier, available, get, names, register, report,
                                      why_unavailable)


def _tier_modules(tier):
    """``tinyeff.kernels.<family>.<tier>`` for every family that has that tier, in load order."""
    names = (f"tinyeff.kernels.{family}.{tier}" for family in registry.FAMILIES)
    return [name for name in names if importlib.util.find_spec(name) is not None]


for _spec_module in _tier_modules("spec"):   # registers the reference tier with its contracts
    importlib.import_module(_spec_module)


def _load_numba_tier():
    try:
        import numba  # noqa: F401
    except ImportError as exc:
        registry.disable_tier("numba", f"Numba is not installed ({exc}); pip install numba")
        return
    for module in _tier_modules("numba"):
        importlib.import_module(module)


def _load_c_tier():
    from tinyeff.kernels import c as _c_tier
    reason = _c_tier.load(_tier_modules("c"))
    if reason is not None:
        registry.disable_tier("c", reason)


_load_numba_tier()
_load_c_tier()

__all__ = ["active_tier", "available", "get", "names", "register", "report", "why_unavailable"]
