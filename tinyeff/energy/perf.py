"""perf ``power/energy-*`` events through ``perf_event_open`` (ctypes, no perf binary needed).

The kernel's RAPL PMU (arch/x86/events/rapl.c) registers as ``power``; each event file under
``/sys/bus/event_source/devices/power/events/`` reads like ``event=0x02`` and has ``.scale``
(2.3283064365386962890625e-10 J per count: 2^-32 J) and ``.unit`` (Joules). The kernel widens the
32-bit hardware counter itself, so the 64-bit count seen here never wraps. Events are system-wide:
one fd per package, opened on a CPU from the PMU's ``cpumask``; needs CAP_PERFMON or a low
``perf_event_paranoid``.

``opener(pmu_type, config, cpu) -> handle`` with ``handle.read() -> int`` and ``handle.close()``
is injectable, so tests never call the syscall. On a KVM guest this PMU may exist and read 0
forever; the shared liveness check in ``base.py`` rejects that.
"""
import ctypes
import os
import platform
import struct
from fractions import Fraction

from tinyeff.energy.base import Backend, Domain
from tinyeff.errors import EnergyMeterError

PMU_DIR = "sys/bus/event_source/devices/power"
SYSCALL_NR = {"x86_64": 298, "aarch64": 241, "i686": 336}
ATTR_SIZE = 128   # PERF_ATTR_SIZE_VER7; trailing fields stay zero


def parse_scale(text):
    """Parse a ``.scale`` string exactly: ``2.3283064365386962890625e-10`` is exactly 2^-32."""
    return Fraction(text.strip())


def parse_config(text):
    """``event=0x05`` (maybe ``event=0x05,umask=0x1``) -> the integer config (event field only)."""
    fields = dict(part.split("=", 1) for part in text.strip().split(",") if "=" in part)
    if "event" not in fields:
        raise ValueError(f"no event= field in {text!r}")
    return int(fields["event"], 0)


class _PerfFd:
    """A perf event fd read as one u64 count."""

    def __init__(self, fd):
        self.fd = fd

    def read(self):
        return struct.unpack("Q", os.read(self.fd, 8))[0]

    def close(self):
        os.close(self.fd)


def syscall_opener(pmu_type, config, cpu):
    """Open a counting (not sampling) system-wide event on ``cpu``; raise EnergyMeterError."""
    nr = SYSCALL_NR.get(platform.machine())
    if nr is None:
        raise EnergyMeterError(f"perf_event_open syscall number unknown for {platform.machine()}")
    attr = bytearray(ATTR_SIZE)
    struct.pack_into("IIQ", attr, 0, pmu_type, ATTR_SIZE, config)   # type, size, config
    buf = (ctypes.c_char * ATTR_SIZE).from_buffer(attr)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(nr, buf, -1, cpu, -1, 0)   # pid=-1 (all tasks), group_fd=-1, flags=0
    if fd < 0:
        err = ctypes.get_errno()
        hint = (" (needs CAP_PERFMON or sysctl kernel.perf_event_paranoid=0)"
                if err in (1, 13) else "")
        raise EnergyMeterError(f"perf_event_open(type={pmu_type}, config={config:#x}, cpu={cpu}) "
                               f"failed: {os.strerror(err)}{hint}")
    return _PerfFd(fd)


class PerfBackend(Backend):
    """Read RAPL energy through perf events.

    Args:
        root: file-system root for ``sys/bus/event_source/devices/power``.
        events: event names to use, best first; the first present one is used (package energy
            by default, psys if no package event exists, as with powercap).
        include_dram: also add ``energy-ram``.
        opener: ``opener(pmu_type, config, cpu) -> handle``; default is the real syscall.
    """
    name = "perf"

    def __init__(self, root="/", events=("energy-pkg", "energy-psys"), include_dram=False,
                 opener=syscall_opener):
        super().__init__()
        self.root = root
        self.events = events
        self.include_dram = include_dram
        self.opener = opener
        self._handles = {}

    def discover(self):
        pmu = os.path.join(self.root, PMU_DIR)
        if not os.path.isdir(pmu):
            raise EnergyMeterError(f"perf PMU 'power' not present ({pmu} missing: no RAPL perf "
                                   f"driver, or a virtual machine)")
        present = self._present_events(pmu)
        if not present:
            raise EnergyMeterError(f"perf PMU 'power' has no energy-* events in {pmu}/events")
        wanted = [e for e in self.events if e in present][:1]
        if self.include_dram and "energy-ram" in present:
            wanted.append("energy-ram")
        if not wanted:
            raise EnergyMeterError(f"perf PMU 'power' has {sorted(present)}, none of {self.events}")
        pmu_type = int(self._read(os.path.join(pmu, "type")))
        cpus = self._cpus(os.path.join(pmu, "cpumask"))
        self.domains, self._handles = [], {}
        for event in wanted:
            config, scale = present[event]
            for cpu in cpus:
                label = f"{event}:cpu{cpu}"
                try:
                    self._handles[label] = self.opener(pmu_type, config, cpu)
                except EnergyMeterError:
                    self.close()
                    raise
                self.domains.append(Domain(label, float(scale), None, f"power/{event}/ cpu {cpu}"))

    def read(self):
        try:
            return {label: int(h.read()) for label, h in self._handles.items()}
        except OSError as exc:
            raise EnergyMeterError(f"perf: reading a counter failed: {exc}") from exc

    def close(self):
        for h in self._handles.values():
            h.close()
        self._handles = {}

    def _present_events(self, pmu):
        events_dir = os.path.join(pmu, "events")
        present = {}
        for entry in sorted(os.listdir(events_dir)) if os.path.isdir(events_dir) else ():
            if not entry.startswith("energy-") or "." in entry:
                continue
            try:
                config = parse_config(self._read(os.path.join(events_dir, entry)))
                scale = parse_scale(self._read(os.path.join(events_dir, entry + ".scale")))
            except (OSError, ValueError) as exc:
                self.notes.append(f"power/{entry}: unreadable event or scale ({exc}); skipped")
                continue
            present[entry] = (config, scale)
        return present

    def _cpus(self, path):
        """Parse a cpumask list such as ``0`` or ``0,28`` or ``0-1`` (one CPU per package)."""
        cpus = []
        for part in self._read(path).split(","):
            lo, _, hi = part.partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
        return cpus

    @staticmethod
    def _read(path):
        with open(path) as f:
            return f.read().strip()
