"""``measure_kernel``: the measurement protocol for one function, with honest statistics.

1. Warm up (JIT compilation, caches, page faults) outside every measurement.
2. Idle baseline: measure ``idle_time_s`` of sleep to get the idle power P_idle.
3. ``trials`` trials, each repeating ``fn`` until ``min_time_s`` has passed: one counter read is
   uncertain by ~1 ms of energy (~50 mJ at 50 W), so a window of >= 1 s keeps that under ~5%.
4. Report gross J per call (median over trials, with the IQR), idle J, net J = gross - P_idle * t
   (never net alone), J per image for a batch, mean W.

Without a live counter the meter's model estimate is used for the ``work`` done per call, and the
result says ESTIMATED. Clock, sleep and meter are injectable, so tests never sleep.
"""
import time
from dataclasses import dataclass, field

import numpy as np

from tinyeff.energy.meter import EnergyMeter


@dataclass
class KernelMeasurement:
    """Per-call energy of a kernel, from ``trials`` Measurements and an idle baseline."""
    source: str
    label: str
    calls: list                       # calls per trial
    trials: list                      # Measurement per trial
    idle_w: float                     # 0.0 when no idle baseline was taken
    batch_size: int = 1
    warnings: list = field(default_factory=list)

    def _per_call(self, net):
        return np.array([(m.energy_j - (self.idle_w * m.time_s if net else 0.0)) / n
                         for m, n in zip(self.trials, self.calls)])

    @property
    def j_per_call(self):
        """Median gross joules per call."""
        return float(np.median(self._per_call(net=False)))

    @property
    def net_j_per_call(self):
        """Median joules per call above the idle baseline."""
        return float(np.median(self._per_call(net=True)))

    @property
    def iqr_j_per_call(self):
        q25, q75 = np.percentile(self._per_call(net=False), [25, 75])
        return float(q75 - q25)

    @property
    def j_per_image(self):
        return self.j_per_call / self.batch_size

    @property
    def net_j_per_image(self):
        return self.net_j_per_call / self.batch_size

    @property
    def time_per_call_s(self):
        return float(np.median([m.time_s / n for m, n in zip(self.trials, self.calls)]))

    @property
    def mean_w(self):
        return sum(m.energy_j for m in self.trials) / sum(m.time_s for m in self.trials)

    @property
    def kind(self):
        return self.trials[0].kind

    def __str__(self):
        prefix = "" if self.kind == "measured" else f"{self.kind.upper()} "
        return (f"{prefix}{self.j_per_call:.4g} J/call (IQR {self.iqr_j_per_call:.2g}), "
                f"net {self.net_j_per_call:.4g} J/call above {self.idle_w:.3g} W idle, "
                f"{self.j_per_image:.4g} J/image, {self.mean_w:.3g} W mean, "
                f"{self.time_per_call_s * 1e3:.3g} ms/call, {self.label}")

    def as_dict(self):
        return {"source": self.source, "kind": self.kind, "label": self.label,
                "j_per_call": self.j_per_call, "iqr_j_per_call": self.iqr_j_per_call,
                "net_j_per_call": self.net_j_per_call, "j_per_image": self.j_per_image,
                "net_j_per_image": self.net_j_per_image, "mean_w": self.mean_w, "idle_w": self.idle_w,
                "time_per_call_s": self.time_per_call_s, "calls": list(self.calls),
                "batch_size": self.batch_size, "warnings": list(self.warnings)}


def measure_kernel(fn, *args, min_time_s=1.0, warmup=1, trials=3, idle_time_s=5.0, batch_size=1,
                   work=None, meter=None, clock=time.perf_counter, sleep=time.sleep, **kwargs):
    """Measure the energy per call of ``fn(*args, **kwargs)``.

    Args:
        fn: the kernel; its return value is ignored.
        min_time_s: each trial repeats ``fn`` until at least this much time has passed.
        warmup: calls before measuring (JIT, caches); not counted.
        trials: number of trials; the median and IQR are over trials.
        idle_time_s: length of the idle baseline (0 skips it; net then equals gross).
        batch_size: images per call, for J per image.
        work: WorkCounts of one call, used by the model when no counter is live.
        meter: an EnergyMeter (default: ``EnergyMeter("auto", clock=clock)``).
        clock, sleep: injectable for tests.

    Returns:
        KernelMeasurement.

    Raises:
        ValueError: a non-positive ``min_time_s``, ``trials`` or ``batch_size``.
    """
    if min_time_s <= 0 or trials < 1 or batch_size < 1 or warmup < 0:
        raise ValueError(f"measure_kernel: min_time_s={min_time_s}, trials={trials}, "
                         f"batch_size={batch_size}, warmup={warmup}; need min_time_s > 0, trials >= 1, "
                         f"batch_size >= 1, warmup >= 0")
    meter = meter or EnergyMeter("auto", clock=clock)
    if not meter.probes and meter.backend is None:
        meter.select()
    for _ in range(warmup):
        fn(*args, **kwargs)
    idle_w = 0.0
    try:
        if idle_time_s > 0:
            meter.start()
            sleep(idle_time_s)
            idle = meter.stop()
            idle_w = idle.energy_j / idle.time_s if idle.time_s > 0 else 0.0
        results, calls = [], []
        for _ in range(trials):
            meter.start()
            t0, n = clock(), 0
            while n == 0 or clock() - t0 < min_time_s:
                fn(*args, **kwargs)
                n += 1
            if work is not None:
                meter.add_work(work.scaled(n))
            results.append(meter.stop())
            calls.append(n)
    finally:
        meter.close()
    notes = sorted({w for m in results for w in m.warnings})
    return KernelMeasurement(meter.source, results[0].label, calls, results, idle_w, batch_size, notes)
