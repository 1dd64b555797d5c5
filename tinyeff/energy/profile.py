"""Light profiling: per-layer wall time (forward), process CPU time and peak RSS.

Forward pre-hooks and hooks on every leaf module record the time between entering and leaving it.
Backward is not split per layer (the engine has no backward hooks); its total is the block's wall
time minus the forward times when the block trains. Peak RSS is the kernel's high-water mark
(``VmHWM`` in /proc/<pid>/status, root injectable), falling back to psutil's current RSS.
"""
import os
import time
from dataclasses import dataclass, field

import psutil


def peak_rss_bytes(root="/", pid="self"):
    """Peak resident set size of the process in bytes (VmHWM), or psutil's current RSS."""
    try:
        with open(os.path.join(root, f"proc/{pid}/status")) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024          # reported in kB
    except OSError:
        pass
    return psutil.Process().memory_info().rss


@dataclass
class ProfileResult:
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    layer_forward_s: dict = field(default_factory=dict)   # leaf name -> summed forward seconds
    layer_calls: dict = field(default_factory=dict)

    def rows(self):
        return sorted(((n, t, self.layer_calls[n]) for n, t in self.layer_forward_s.items()),
                      key=lambda r: -r[1])


class LayerProfiler:
    """Context manager: time each leaf module's forward, and the block's wall and CPU time.

    Args:
        model: a tinyeff Module (None: only wall/CPU time and RSS).
        clock: wall clock; ``cpu_clock``: process CPU clock (both injectable for tests).
    """

    def __init__(self, model=None, clock=time.perf_counter, cpu_clock=time.process_time, root="/"):
        self.model, self.clock, self.cpu_clock, self.root = model, clock, cpu_clock, root
        self.result = None
        self._handles, self._open = [], {}
        self._times, self._calls = {}, {}

    def __enter__(self):
        if self.model is not None:
            for name, module in self.model.named_modules():
                if not list(module.children()):
                    name = name or type(module).__name__
                    self._handles.append(module.register_forward_pre_hook(self._pre(name)))
                    self._handles.append(module.register_forward_hook(self._post(name)))
        self._t0, self._c0 = self.clock(), self.cpu_clock()
        return self

    def __exit__(self, *exc):
        wall, cpu = self.clock() - self._t0, self.cpu_clock() - self._c0
        for h in self._handles:
            h.remove()
        self.result = ProfileResult(wall, cpu, peak_rss_bytes(self.root), dict(self._times), dict(self._calls))
        return False

    def _pre(self, name):
        def hook(module, inputs):
            self._open[name] = self.clock()
        return hook

    def _post(self, name):
        def hook(module, inputs, output):
            dt = self.clock() - self._open.pop(name)
            self._times[name] = self._times.get(name, 0.0) + dt
            self._calls[name] = self._calls.get(name, 0) + 1
        return hook
