"""Kernels: NumPy references plus faster Numba and C tiers, behind one registry.

Importing this package registers every reference kernel, then tries to load the faster tiers. A tier
that cannot load is recorded (with its reason) and warned about once; see ``registry.report()`` and
``tinyeff info``.
"""
import os

# NOTE: our OpenMP regions are short and many (one per kernel call). With GNU OpenMP's default, idle
# threads spin between them, which on a shared 2-core machine starves every other process (we measured
# a 3.6x slower training step under load). Passive waiting costs microseconds per region. Set before
# the C extension (and its libgomp) loads; an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from tinyeff.kernels import registry  # noqa: E402
from tinyeff.kernels.registry import (active_tier, available, get, names, register, report,
                                      why_unavailable)
from tinyeff.kernels import ref  # noqa: F401  (registers the reference tier)
from tinyeff.kernels import depthwise  # noqa: F401  (a family folder: its spec registers its reference)


def _load_numba_tier():
    try:
        import numba  # noqa: F401
    except ImportError as exc:
        registry.disable_tier("numba", f"Numba is not installed ({exc}); pip install numba")
        return
    from tinyeff.kernels import numba as _numba_tier  # noqa: F401


def _load_c_tier():
    from tinyeff.kernels import c as _c_tier
    reason = _c_tier.load()
    if reason is not None:
        registry.disable_tier("c", reason)


_load_numba_tier()
_load_c_tier()

__all__ = ["active_tier", "available", "get", "names", "register", "report", "why_unavailable"]
