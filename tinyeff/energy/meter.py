"""``EnergyMeter``: one context manager over every backend, and ``Measurement``, which says where
each joule came from.

``backend="auto"`` tries powercap RAPL, then perf events, then the MSRs; each must pass a liveness
check (``base.probe``). The reason every backend was rejected is kept (``meter.probes``). If none
works, the meter falls back to the per-operation model (``model.py``) applied to the work recorded
with ``add_work`` and labels the result ESTIMATED; a permission problem is reported in one warning
that names the file and the fixes. An explicit backend (``backend="rapl"``) raises
``EnergyMeterError`` instead of falling back.

While the meter runs, a daemon thread polls the counters every ``poll_s`` seconds (default: a
quarter of the time the fastest-wrapping counter takes to wrap at ``p_max_w``, at most 10 s), so
no wrap is missed even in a long epoch; ``sample()`` polls by hand, ``checkpoint()`` also returns
the energy since the previous checkpoint.
"""
import threading
import time
import warnings
from dataclasses import dataclass, field

from tinyeff.energy import base, model
from tinyeff.energy.counters import DEFAULT_P_MAX_W, WrapCounter
from tinyeff.errors import EnergyMeterError

MEASURED_SOURCES = ("rapl", "perf", "msr", "nvml")
SOURCES = MEASURED_SOURCES + ("model", "attributed")
AUTO_ORDER = ("rapl", "perf", "msr")
MAX_POLL_S = 10.0


@dataclass
class Measurement:
    """An energy figure and where it came from.

    ``source`` is ``rapl``, ``perf``, ``msr`` or ``nvml`` (measured), ``model`` (estimated) or
    ``attributed`` (a measured machine total times this process's CPU share). ``kind`` groups these
    into measured / estimated / attributed; ``str()`` starts with ESTIMATED or ATTRIBUTED for those,
    so an estimate can never be printed as a measurement.
    """
    energy_j: float
    time_s: float
    source: str
    per_domain_j: dict = field(default_factory=dict)
    label: str = ""
    idle_j: float = None
    warnings: list = field(default_factory=list)
    flags: list = field(default_factory=list)
    detail: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"Measurement: source={self.source!r} must be one of {SOURCES}")
        if not self.label:
            self.label = self.source

    @property
    def kind(self):
        if self.source in MEASURED_SOURCES:
            return "measured"
        return "estimated" if self.source == "model" else "attributed"

    @property
    def mean_w(self):
        return self.energy_j / self.time_s if self.time_s > 0 else float("nan")

    @property
    def net_j(self):
        """Energy above the idle baseline (None when no baseline was taken). Never shown alone."""
        return None if self.idle_j is None else self.energy_j - self.idle_j

    def __str__(self):
        body = f"{self.energy_j:.4g} J"
        if self.time_s > 0:
            body += f" over {self.time_s:.3f} s ({self.mean_w:.3g} W)"
        if self.idle_j is not None:
            body += f", idle {self.idle_j:.4g} J, net {self.net_j:.4g} J"
        if self.flags:
            body += f" [{', '.join(self.flags)}]"
        if self.kind == "measured":
            return f"{body}, {self.label}"
        return f"{self.kind.upper()} {body} ({self.label})"

    def as_dict(self):
        return {"energy_j": self.energy_j, "time_s": self.time_s, "mean_w": self.mean_w,
                "source": self.source, "kind": self.kind, "label": self.label,
                "per_domain_j": dict(self.per_domain_j), "idle_j": self.idle_j, "net_j": self.net_j,
                "warnings": list(self.warnings), "flags": list(self.flags), "detail": dict(self.detail)}


def make_backends(names, root="/", include_dram=False, prefer_psys=False):
    """Build backend objects for ``names`` (rapl, perf, msr, nvml), reading under ``root``."""
    from tinyeff.energy.msr import MsrBackend
    from tinyeff.energy.nvml import NvmlBackend
    from tinyeff.energy.perf import PerfBackend
    from tinyeff.energy.rapl import RaplBackend
    makers = {
        "rapl": lambda: RaplBackend(root, include_dram=include_dram, prefer_psys=prefer_psys),
        "perf": lambda: PerfBackend(root, include_dram=include_dram,
                                    events=("energy-psys", "energy-pkg") if prefer_psys
                                    else ("energy-pkg", "energy-psys")),
        "msr": lambda: MsrBackend(root),
        "nvml": lambda: NvmlBackend(),
    }
    unknown = [n for n in names if n not in makers]
    if unknown:
        raise ValueError(f"EnergyMeter: unknown backend {unknown[0]!r}; use 'auto', 'model' or one "
                         f"of {sorted(makers)}")
    return [makers[n]() for n in names]


class EnergyMeter:
    """Measure (or, without a usable counter, estimate) the energy of the code in a ``with`` block.

    Args:
        backend: ``"auto"``, ``"rapl"``, ``"perf"``, ``"msr"``, ``"nvml"`` or ``"model"``.
        include_dram: add DRAM domains where the backend has them.
        prefer_psys: measure the platform (psys) domain instead of the packages.
        root: file-system root for sysfs/dev paths (tests pass a fake tree).
        profile: cost profile for the model fallback (name, path or CostProfile).
        poll_s: polling period of the wraparound thread; None picks one, 0 disables the thread.
        p_max_w: largest believable power per domain (plausibility and poll period).
        liveness_s: busy-loop length of each backend's liveness check.
        clock: monotonic clock in seconds.
        backends: Backend objects to use instead of building them from ``backend`` (tests).

    Raises:
        EnergyMeterError: an explicitly named backend is unusable (the message says why and the fix).
    """

    def __init__(self, backend="auto", include_dram=False, prefer_psys=False, root="/",
                 profile=None, poll_s=None, p_max_w=DEFAULT_P_MAX_W, liveness_s=0.2,
                 clock=time.perf_counter, backends=None, busy=base.busy_loop):
        self.requested = backend
        self.profile = model.load_profile(profile)
        self.poll_s, self.p_max_w, self.liveness_s = poll_s, p_max_w, liveness_s
        self.clock, self.busy = clock, busy
        if backends is None:
            names = AUTO_ORDER if backend == "auto" else (() if backend == "model" else (backend,))
            backends = make_backends(names, root, include_dram, prefer_psys)
        self._candidates = list(backends)
        self.backend = None          # the chosen Backend, or None for the model
        self.probes = []             # ProbeResult for every backend tried
        self.result = None           # Measurement of the whole block, set on exit
        self.checkpoints = []        # (name, Measurement since the previous checkpoint)
        self._work = model.WorkCounts()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._poll_error = None
        self._counters = {}
        self._t0 = self._last_cp_t = None
        self._last_cp_raw = {}
        self._last_cp_work = model.WorkCounts()

    @property
    def source(self):
        return self.backend.name if self.backend is not None else "model"

    def select(self):
        """Probe the candidates in order and keep the first live one; return the source name."""
        self.probes = []
        for candidate in self._candidates:
            result = base.probe(candidate, self.liveness_s, self.busy)
            self.probes.append(result)
            if result.ok:
                self.backend = candidate
                return self.source
        if self.requested not in ("auto", "model"):
            raise EnergyMeterError(f"energy backend {self.requested!r} unusable: {self.probes[-1].reason}")
        if self.probes:
            reasons = "; ".join(f"{p.backend}: {p.reason}" for p in self.probes)
            warnings.warn(f"tinyeff.energy: no energy counter is usable, so figures are ESTIMATED by "
                          f"the model '{self.profile.name}' ({reasons})", RuntimeWarning, stacklevel=3)
        return self.source

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        self.close()
        return False

    def close(self):
        """Release the backend's file descriptors (``with`` does this on exit)."""
        if self.backend is not None:
            self.backend.close()

    def start(self):
        """Choose a backend (if not yet chosen), take the first reading and start the poller."""
        if not self.probes and self.backend is None:
            self.select()
        self._work, self._last_cp_work, self.checkpoints = model.WorkCounts(), model.WorkCounts(), []
        self._t0 = self._last_cp_t = self.clock()
        if self.backend is not None:
            raw = self.backend.read()
            self._counters = {d.name: WrapCounter(d.name, d.unit_j, d.range_raw, self.p_max_w)
                              for d in self.backend.domains}
            for d in self.backend.domains:
                self._counters[d.name].start(raw[d.name], self._t0)
            self._last_cp_raw = {n: 0 for n in self._counters}
            period = self._poll_period()
            if period:
                self._stop.clear()
                self._thread = threading.Thread(target=self._poll, args=(period,), daemon=True,
                                                name="tinyeff-energy-poller")
                self._thread.start()

    def stop(self):
        """Stop the poller, take the last reading and set ``self.result``; return it."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        try:
            self.sample()
        except EnergyMeterError as exc:
            if self.requested != "auto":           # an explicitly chosen counter must not turn into a model
                raise
            self.fall_back_to_model(str(exc))
        self.result = self._measure(self._t0, {n: 0 for n in self._counters}, model.WorkCounts())
        return self.result

    def sample(self):
        """Read every counter now and fold the readings in (what the poller thread does)."""
        if self.backend is None:
            return
        if self._poll_error is not None:
            raise EnergyMeterError(f"the counter poller stopped ({self._poll_error}); counter wraps may be missed")
        with self._lock:
            t = self.clock()
            raw = self.backend.read()
            for name, counter in self._counters.items():
                counter.update(raw[name], t)

    def add_work(self, counts):
        """Record work (a WorkCounts) done in the block; the model fallback estimates from it."""
        with self._lock:
            self._work = self._work + counts

    def checkpoint(self, name):
        """Sample now; return (and keep) the Measurement since the previous checkpoint."""
        self.sample()
        with self._lock:
            totals = {n: c.total_raw for n, c in self._counters.items()}
        result = self._measure(self._last_cp_t, self._last_cp_raw, self._last_cp_work)
        self._last_cp_t, self._last_cp_raw, self._last_cp_work = self._now, totals, self._work
        self.checkpoints.append((name, result))
        return result

    def fall_back_to_model(self, reason):
        """Stop reading the live counter (it failed mid-run) and estimate with the model from now on.

        The measurements already taken stay as they were; later checkpoints are labelled ESTIMATED
        and say why. One warning is given. Used by training, which must not abort after an epoch's
        work because a counter stopped answering.
        """
        if self.backend is None:
            return
        if self._thread is not None:
            self._stop.set()
            if self._thread is not threading.current_thread():
                self._thread.join()
            self._thread = None
        failed = self.source
        try:
            self.backend.close()
        except OSError:
            pass
        self.backend, self._counters, self._last_cp_raw, self._poll_error = None, {}, {}, None
        self.probes.append(base.ProbeResult(failed, False, f"failed during the run ({reason})"))
        warnings.warn(f"tinyeff.energy: the {failed} counter failed during the run ({reason}); energy from "
                      f"here on is ESTIMATED by the model '{self.profile.name}'", RuntimeWarning, stacklevel=2)

    def _measure(self, t_start, raw_start, work_start):
        self._now = self.clock()
        elapsed = self._now - t_start
        if self.backend is None:
            return self._estimate(elapsed, work_start)
        with self._lock:
            per_domain = {n: (c.total_raw - raw_start[n]) * c.unit_j for n, c in self._counters.items()}
            notes = [w for c in self._counters.values() for w in c.warnings]
            flags = sorted({f for c in self._counters.values() for f in c.flags})
        label = f"measured({self.source}: {'+'.join(per_domain)})"
        return Measurement(sum(per_domain.values()), elapsed, self.source, per_domain, label,
                           warnings=notes, flags=flags)

    def _estimate(self, elapsed, work_start):
        work = self._work + work_start.scaled(-1)
        est = model.estimate(work, self.profile, time_s=elapsed)
        why = "; ".join(f"{p.backend}: {p.reason}" for p in self.probes) or "model requested"
        state = "calibrated" if est.calibrated else "uncalibrated"
        notes = [] if not work.is_empty() else [
            "no work recorded with add_work(); the estimate covers static power only"]
        per_domain = {"compute": est.compute_j, "static": est.static_j}
        per_domain.update({f"memory:{lv}": j for lv, j in est.memory_j.items()})
        return Measurement(est.total_j, elapsed, "model", per_domain,
                           f"model={est.profile}, {state}; no live counter: {why}", warnings=notes,
                           detail={"profile": est.profile, "calibrated": est.calibrated})

    def _poll_period(self):
        if self.poll_s is not None:
            return self.poll_s
        ranges = [d.range_raw * d.unit_j for d in self.backend.domains if d.range_raw]
        if not ranges:
            return 0           # perf and NVML counters never wrap: nothing to poll for
        return min(MAX_POLL_S, min(ranges) / self.p_max_w / 4)

    def _poll(self, period):
        while not self._stop.wait(period):
            try:
                self.sample()
            except EnergyMeterError as exc:
                # a missed poll may lose a counter wrap: the next read in the caller's thread reports it
                self._poll_error = exc
                return
