"""Fit the model's constants to a live energy counter by non-negative least squares.

Each calibration run is a microbenchmark with known counts (fp32 and int8 GEMMs at sizes that sit
in L1, L2 and DRAM, a STREAM-like copy, an idle period) measured by the ``measure_kernel``
protocol. Rows of A are runs, columns are [MACs fp32, MACs int8, L1 bytes, L2 bytes, DRAM bytes,
seconds]; E is the measured joules. ``scipy.optimize.nnls(A, E)`` gives per-action energies that
are never negative. The fitted constants include core overheads (fetch, decode, out-of-order
machinery), so they are "effective" costs on this machine, not physics.

Save criterion (``FitResult.ok``): R^2 >= 0.9 and every run within 25% of its measured energy;
otherwise the profile is not written and the reason says which test failed.
What this file leaves out: GPU calibration; calibration without a live counter (refused).
"""
import datetime
import platform
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

from tinyeff.energy.model import PJ, CostProfile, WorkCounts, load_profile

COLUMNS = ("mac.fp32", "mac.int8", "byte.l1", "byte.l2", "byte.dram", "static_w")
MIN_R2 = 0.9
MAX_REL_ERROR = 0.25


@dataclass
class CalibrationRun:
    """One microbenchmark: its name, the counts it did, its wall time and measured joules."""
    name: str
    counts: WorkCounts
    time_s: float
    energy_j: float


@dataclass
class FitResult:
    constants: dict                   # column -> value (pJ, or W for static_w)
    r2: float
    rel_errors: dict                  # run name -> (predicted - measured) / measured
    ok: bool
    reason: str
    runs: list = field(default_factory=list)


def design_row(run):
    """One row of A in the units of COLUMNS: counts scaled to pJ-constants give joules."""
    c = run.counts
    return [c.macs.get("fp32", 0) * PJ, c.macs.get("int8", 0) * PJ, c.bytes.get("l1", 0) * PJ,
            c.bytes.get("l2", 0) * PJ, c.bytes.get("dram", 0) * PJ, run.time_s]


def fit(runs, min_r2=MIN_R2, max_rel_error=MAX_REL_ERROR):
    """Fit COLUMNS to ``runs`` by NNLS and judge the fit.

    Args:
        runs: CalibrationRuns; at least as many as columns with nonzero counts.
        min_r2: smallest acceptable coefficient of determination.
        max_rel_error: largest acceptable |predicted - measured| / measured of any run.

    Returns:
        FitResult; ``ok`` is False (with the reason) when the fit fails the criterion.
    """
    if len(runs) < 2:
        raise ValueError(f"calibrate.fit: got {len(runs)} runs; need several microbenchmarks")
    a = np.array([design_row(r) for r in runs])       # (runs, columns)
    e = np.array([r.energy_j for r in runs])           # (runs,)
    scale = np.where(a.max(axis=0) > 0, a.max(axis=0), 1.0)   # column scaling keeps NNLS well conditioned
    x, _ = nnls(a / scale, e)
    x = x / scale
    predicted = a @ x
    ss_res = float(np.sum((e - predicted) ** 2))
    ss_tot = float(np.sum((e - e.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    rel = {r.name: float((p - r.energy_j) / r.energy_j) for r, p in zip(runs, predicted)}
    worst = max(rel, key=lambda k: abs(rel[k]))
    if r2 < min_r2:
        ok, reason = False, f"R^2 = {r2:.3f} < {min_r2}: the linear model does not explain the readings"
    elif abs(rel[worst]) > max_rel_error:
        ok, reason = False, (f"run {worst!r} is off by {rel[worst]:+.0%} (limit {max_rel_error:.0%}); "
                             f"re-run on a quiet machine or with longer runs")
    else:
        ok, reason = True, f"R^2 = {r2:.4f}, worst run {worst!r} {rel[worst]:+.1%}"
    return FitResult(dict(zip(COLUMNS, x.tolist())), r2, rel, ok, reason, list(runs))


def fitted_profile(result, base=None, backend="", name=None):
    """A CostProfile with the fitted constants over ``base``; provenance records how it was made."""
    profile = load_profile(base)
    data = profile.as_dict()
    for column, value in result.constants.items():
        if column == "static_w":
            data["static_w"] = value
        else:
            section, key = column.split(".")
            data[section][key] = value
    data["name"] = name or f"calibrated_{platform.node() or 'host'}"
    data["calibrated"] = True
    data["provenance"] = {
        "source": f"NNLS fit to {backend} readings by tinyeff energy calibrate",
        "date": datetime.date.today().isoformat(), "cpu": _cpu_model(), "kernel": platform.release(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "r2": result.r2, "rel_errors": result.rel_errors,
        "not_fitted": "fp16/bf16/int32/fp64 MACs, ops, L3 keep the base profile's values",
    }
    return CostProfile(**data)


def save_fit(result, path, **kwargs):
    """Write the fitted profile to ``path`` only if the fit passed; raise ValueError otherwise."""
    if not result.ok:
        raise ValueError(f"calibration not saved: {result.reason}")
    profile = fitted_profile(result, **kwargs)
    profile.save(path)
    return profile


def microbenchmarks(cache_bytes, rng=None):
    """The calibration workloads: ``[(name, fn, WorkCounts per call)]`` sized against the caches."""
    rng = rng or np.random.default_rng(0)
    l1 = cache_bytes.get("l1", 32 << 10)
    l2 = cache_bytes.get("l2", 1 << 20)
    l3 = cache_bytes.get("l3", 32 << 20)
    benches = []
    for level, capacity in (("l1", l1), ("l2", l2), ("dram", 4 * l3)):
        for dtype, macname, nbytes in ((np.float32, "fp32", 4), (np.int8, "int8", 1)):
            n = max(8, int((capacity / 3 / nbytes) ** 0.5 * (0.8 if level != "dram" else 1.0)))
            a = rng.standard_normal((n, n)).astype(dtype)
            b = rng.standard_normal((n, n)).astype(dtype)
            acc = np.int32 if dtype == np.int8 else np.float32
            counts = WorkCounts({macname: n ** 3}, {}, {level: 3 * n * n * nbytes})
            benches.append((f"gemm_{macname}_{level}_{n}",
                            lambda a=a, b=b, acc=acc: np.matmul(a, b, dtype=acc), counts))
    src = np.ones(4 * l3 // 8)
    dst = np.empty_like(src)
    benches.append(("copy_dram", lambda: np.copyto(dst, src), WorkCounts({}, {}, {"dram": 2 * src.nbytes})))
    return benches


def run_calibration(meter_factory, cache_bytes, min_time_s=1.0, idle_time_s=2.0):
    """Measure every microbenchmark and an idle period; return CalibrationRuns (gross joules)."""
    from tinyeff.energy.measure import measure_kernel
    runs = []
    for name, fn, counts in microbenchmarks(cache_bytes):
        m = measure_kernel(fn, min_time_s=min_time_s, trials=1, idle_time_s=0, meter=meter_factory())
        calls = m.calls[0]
        runs.append(CalibrationRun(name, counts.scaled(calls), m.trials[0].time_s, m.trials[0].energy_j))
    m = measure_kernel(time.sleep, idle_time_s, min_time_s=idle_time_s, trials=1, warmup=0,
                       idle_time_s=0, meter=meter_factory())
    runs.append(CalibrationRun("idle", WorkCounts(), m.trials[0].time_s, m.trials[0].energy_j))
    return runs


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


__all__ = ["CalibrationRun", "FitResult", "fit", "fitted_profile", "microbenchmarks", "run_calibration",
           "save_fit"]
