"""Attribution on a shared machine: this process's share of a measured machine-wide energy.

RAPL measures the whole package, including other people's processes. Following
experiment-impact-tracker, the share is busy-time based::

    share = d(utime + stime [+ cutime + cstime] of this process) / d(user + nice + system + irq
            + softirq of all CPUs)                       (from /proc/self/stat and /proc/stat)
    attributed_J = (gross_J - idle_J) * share + idle_J * proc_cpu_s / (time_s * n_cpus)

The share is clamped to [0, 1]. Known limits: SMT siblings, frequency differences, memory-bound
phases and DRAM energy are not proportional to CPU time. ``root`` is injectable for tests.
"""
import os
import warnings
from dataclasses import dataclass

from tinyeff.energy.meter import Measurement

BUSY_FIELDS = (0, 1, 2, 5, 6)   # user nice system [idle iowait] irq softirq; steal is not ours


def read_system_busy_ticks(root="/"):
    """Busy clock ticks of all CPUs together, from the ``cpu`` line of /proc/stat."""
    with open(os.path.join(root, "proc/stat")) as f:
        for line in f:
            if line.startswith("cpu "):
                values = [int(v) for v in line.split()[1:]]
                return sum(values[i] for i in BUSY_FIELDS if i < len(values))
    raise ValueError(f"{root}/proc/stat has no 'cpu ' line")


def read_process_ticks(root="/", pid="self", children=True):
    """utime + stime (+ cutime + cstime) of a process in clock ticks, from /proc/<pid>/stat."""
    with open(os.path.join(root, f"proc/{pid}/stat")) as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()   # the command name may contain spaces
    # after "pid (comm) ", fields[0] is state; utime..cstime are stat fields 14-17 -> indexes 11-14
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return utime + stime + (cutime + cstime if children else 0)


def count_cpus(root="/"):
    """Number of CPUs listed as ``cpuN`` lines in /proc/stat."""
    with open(os.path.join(root, "proc/stat")) as f:
        return sum(1 for line in f if line.startswith("cpu") and line[3:4].isdigit()) or 1


@dataclass
class CpuShare:
    """CPU time of this process over an interval and its share of all busy CPU time."""
    proc_cpu_s: float
    system_busy_s: float
    share: float
    n_cpus: int


class CpuShareTracker:
    """Track this process's share of busy CPU time between ``start()`` and ``stop()``.

    Args:
        root: file-system root for /proc (tests pass a fake tree).
        pid: process to follow (``"self"`` by default).
        clock_ticks: ticks per second (``os.sysconf("SC_CLK_TCK")`` by default).
    """

    def __init__(self, root="/", pid="self", clock_ticks=None):
        self.root, self.pid = root, pid
        self.clock_ticks = clock_ticks or os.sysconf("SC_CLK_TCK")
        self._start = None

    def start(self):
        self._start = (read_process_ticks(self.root, self.pid), read_system_busy_ticks(self.root))
        return self

    def stop(self):
        """Return the CpuShare since ``start()``."""
        proc0, sys0 = self._start
        d_proc = read_process_ticks(self.root, self.pid) - proc0
        d_sys = read_system_busy_ticks(self.root) - sys0
        share = d_proc / d_sys if d_sys > 0 else 0.0
        clamped = min(1.0, max(0.0, share))
        if d_sys > 0 and clamped < 0.9:
            warnings.warn(f"tinyeff.energy: other processes used {1 - clamped:.0%} of busy CPU time; "
                          f"attributed energy is this process's share only", RuntimeWarning, stacklevel=2)
        return CpuShare(d_proc / self.clock_ticks, d_sys / self.clock_ticks, clamped,
                        count_cpus(self.root))


def attribute(measurement, cpu_share):
    """This process's part of a measured machine-wide Measurement.

    Args:
        measurement: a measured Measurement (rapl/perf/msr/nvml), optionally with ``idle_j``.
        cpu_share: CpuShare over the same interval.

    Returns:
        Measurement with source="attributed"; ``detail`` keeps the gross figure and the share.

    Raises:
        ValueError: the measurement is an estimate (attributing a model figure would hide that).
    """
    if measurement.kind != "measured":
        raise ValueError(f"attribute: needs a measured figure, got source={measurement.source!r}; "
                         f"a model estimate is already per-process")
    idle_j = measurement.idle_j or 0.0
    share = min(1.0, max(0.0, cpu_share.share))
    idle_share = cpu_share.proc_cpu_s / (measurement.time_s * cpu_share.n_cpus) if measurement.time_s > 0 else 0.0
    energy_j = (measurement.energy_j - idle_j) * share + idle_j * min(1.0, idle_share)
    return Measurement(energy_j, measurement.time_s, "attributed", {},
                       f"{share:.0%} CPU share of {measurement.label} {measurement.energy_j:.4g} J",
                       warnings=list(measurement.warnings), flags=list(measurement.flags),
                       detail={"gross_j": measurement.energy_j, "share": share,
                               "proc_cpu_s": cpu_share.proc_cpu_s, "n_cpus": cpu_share.n_cpus})
