"""What every energy backend (rapl, perf, msr, nvml) provides, and the liveness check they share.

A backend discovers its domains once (``discover()``, raising ``EnergyMeterError`` with the reason
and the fix when it cannot be used) and then reads raw integer counters (``read()``). Each domain
says how many joules one count is and when the counter wraps. ``liveness_check`` reads twice around
a short busy loop and rejects a counter that is present but does not move: on a KVM guest the perf
``power`` PMU exists and reads 0 forever, which an existence check alone would accept.
"""
import time
from dataclasses import dataclass, field

from tinyeff.errors import EnergyMeterError


@dataclass
class Domain:
    """One counter: ``name`` (e.g. ``package-0``), joules per count, modulus in counts (None: no wrap)."""
    name: str
    unit_j: float
    range_raw: int = None
    where: str = ""        # file, event or register it comes from, for messages


@dataclass
class ProbeResult:
    """Outcome of probing one backend: usable or not, and why."""
    backend: str
    ok: bool
    reason: str
    domains: list = field(default_factory=list)
    notes: list = field(default_factory=list)   # per-zone rejections, duplicates dropped, ...

    def line(self):
        names = ", ".join(d.name for d in self.domains)
        state = f"active ({names})" if self.ok else "rejected"
        return f"{self.backend:<6}{state}: {self.reason}"

    def as_dict(self):
        return {"backend": self.backend, "ok": self.ok, "reason": self.reason,
                "domains": [d.name for d in self.domains], "notes": list(self.notes)}


class Backend:
    """Base class: subclasses set ``name`` and implement ``discover`` and ``read``."""
    name = "base"

    def __init__(self):
        self.domains = []
        self.notes = []

    def discover(self):
        """Find the domains; raise EnergyMeterError (reason and fix) if the backend is unusable."""
        raise EnergyMeterError(f"{self.name}: discover() is not implemented")

    def read(self):
        """Return ``{domain name: raw integer count}`` for every discovered domain."""
        raise EnergyMeterError(f"{self.name}: read() is not implemented")

    def close(self):
        """Release file descriptors; the default has none."""


def busy_loop(seconds, clock=time.perf_counter):
    """Spin the CPU for ``seconds`` so a live energy counter has something to count."""
    end = clock() + seconds
    x = 0
    while clock() < end:
        for i in range(1000):
            x += i * i
    return x


def liveness_check(backend, seconds=0.2, busy=busy_loop):
    """Read, busy-loop ``seconds``, read again; raise EnergyMeterError if no domain moved."""
    before = backend.read()
    busy(seconds)
    after = backend.read()
    if any(after[name] != before[name] for name in before):
        return
    values = ", ".join(f"{n}={before[n]}" for n in before)
    raise EnergyMeterError(
        f"counter frozen: {values} before and after a {seconds:g} s busy loop "
        f"(a virtual machine exposes the counter but does not feed it)")


def probe(backend, liveness_s=0.2, busy=busy_loop):
    """Discover and liveness-check ``backend``; return a ProbeResult, never raise."""
    try:
        backend.discover()
        liveness_check(backend, liveness_s, busy)
    except EnergyMeterError as exc:
        backend.close()
        return ProbeResult(backend.name, False, str(exc), [], list(backend.notes))
    names = ", ".join(f"{d.name} <- {d.where}" for d in backend.domains)
    return ProbeResult(backend.name, True, f"counters move ({names})",
                       list(backend.domains), list(backend.notes))
