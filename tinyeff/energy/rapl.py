"""Linux powercap RAPL: discover package (and optionally dram/psys) zones and read ``energy_uj``.

Layout (kernel Documentation/power/powercap/powercap.rst): control types ``intel-rapl`` and, on
newer Intel parts, ``intel-rapl-mmio``; zones ``intel-rapl:N`` (any number of digits: a regex with
one ``\\d`` misses ``intel-rapl:10``); sub-zones ``intel-rapl:N:M``, listed at top level and/or
nested inside their parent. Each zone has ``name``, ``energy_uj`` (µJ counter) and
``max_energy_range_uj`` (its modulus). Since CVE-2020-8694 both counter files are root-only.

Policy, to avoid double counting (core and uncore are parts of a package; psys contains the
packages): sum every ``package-N`` / ``package-N-die-D`` zone; add each package's ``dram`` child
only with ``include_dram=True``; use ``psys`` only with ``prefer_psys=True`` or when there is no
package zone; drop an ``intel-rapl-mmio`` zone whose name duplicates an ``intel-rapl`` zone.

Every path is joined to ``root`` and every file goes through ``reader(path) -> str``, so tests
build a fake tree under tmp_path and inject errors (root ignores chmod 000).
What this file leaves out: wraparound (``counters.py``) and polling (``meter.py``).
"""
import os
import re
from dataclasses import dataclass

from tinyeff.energy.base import Backend, Domain
from tinyeff.errors import EnergyMeterError

ZONE_RE = re.compile(r"^(intel-rapl(?:-mmio)?):(\d+)(?::(\d+))?$")
PACKAGE_RE = re.compile(r"^package-\d+(-die-\d+)?$")
POWERCAP = "sys/class/powercap"
UJ = 1e-6

PERMISSION_FIXES = (
    "Fixes: (1) sudo chmod a+r /sys/class/powercap/intel-rapl*/energy_uj "
    "/sys/class/powercap/intel-rapl*/max_energy_range_uj (lasts until reboot); "
    "(2) make it permanent for a group with a udev rule or sysfsutils "
    "(mode class/powercap/intel-rapl:0/energy_uj = 0440, owner root:power); "
    "(3) use the perf backend instead (CAP_PERFMON, or sysctl kernel.perf_event_paranoid=0), "
    "or run as root.")


def read_text(path):
    with open(path) as f:
        return f.read().strip()


@dataclass
class Zone:
    control: str      # "intel-rapl" or "intel-rapl-mmio"
    index: int
    sub: int          # None for a top-level zone
    path: str
    name: str

    @property
    def zone_id(self):
        tail = "" if self.sub is None else f":{self.sub}"
        return f"{self.control}:{self.index}{tail}"


class RaplBackend(Backend):
    """Read powercap RAPL counters.

    Args:
        root: file-system root that ``sys/class/powercap`` is joined to (tests pass tmp_path).
        include_dram: also add each package's ``dram`` child zone.
        prefer_psys: measure the platform (``psys``) zone instead of the packages.
        reader: ``reader(path) -> str``; the default opens and reads the file.
    """
    name = "rapl"

    def __init__(self, root="/", include_dram=False, prefer_psys=False, reader=read_text):
        super().__init__()
        self.root = root
        self.include_dram = include_dram
        self.prefer_psys = prefer_psys
        self.reader = reader
        self._paths = {}

    def discover(self):
        base = os.path.join(self.root, POWERCAP)
        if not os.path.isdir(base):
            raise EnergyMeterError(
                "powercap not present (virtual machine?): /sys/class/powercap is missing; RAPL is "
                "not exposed to guests, and on bare metal needs the intel_rapl_msr module")
        zones = self._scan(base)
        if not zones:
            raise EnergyMeterError(f"no intel-rapl zones under {base} (no RAPL driver bound)")
        chosen = self._choose(self._dedupe(zones), zones)
        self.domains, self._paths = [], {}
        denied = []
        for label, zone in chosen:
            energy = os.path.join(zone.path, "energy_uj")
            try:
                int(self.reader(energy))
            except PermissionError:
                denied.append(energy)
                continue
            except (OSError, ValueError) as exc:
                self.notes.append(f"{zone.zone_id} ({zone.name}): energy_uj unreadable: {exc}")
                continue
            self.domains.append(Domain(label, UJ, self._range(zone), zone.zone_id))
            self._paths[label] = energy
        if denied:
            raise EnergyMeterError(
                f"permission denied reading {denied[0]}"
                f"{f' (and {len(denied) - 1} more)' if len(denied) > 1 else ''}: RAPL counters are "
                f"root-only since CVE-2020-8694. {PERMISSION_FIXES}")
        if not self.domains:
            raise EnergyMeterError("no readable RAPL zone: " + "; ".join(self.notes))

    def read(self):
        try:
            return {label: int(self.reader(path)) for label, path in self._paths.items()}
        except (OSError, ValueError) as exc:
            raise EnergyMeterError(f"rapl: reading a counter failed: {exc}") from exc

    def _scan(self, base):
        zones, seen = [], set()
        top = sorted(e for e in os.listdir(base) if ZONE_RE.match(e))
        for entry in top:
            path = os.path.join(base, entry)
            self._add_zone(zones, seen, entry, path)
            for child in sorted(os.listdir(path)) if os.path.isdir(path) else ():
                if ZONE_RE.match(child):
                    self._add_zone(zones, seen, child, os.path.join(path, child))
        return zones

    def _add_zone(self, zones, seen, entry, path):
        if entry in seen:      # a sub-zone listed both at top level and inside its parent
            return
        seen.add(entry)
        control, index, sub = ZONE_RE.match(entry).groups()
        try:
            name = self.reader(os.path.join(path, "name"))
        except OSError as exc:
            self.notes.append(f"{entry}: name unreadable ({exc}); skipped")
            return
        zones.append(Zone(control, int(index), None if sub is None else int(sub), path, name))

    def _dedupe(self, zones):
        msr_names = {z.name for z in zones if z.control == "intel-rapl" and z.sub is None}
        kept = []
        for z in zones:
            if z.control == "intel-rapl-mmio" and z.sub is None and z.name in msr_names:
                self.notes.append(f"{z.zone_id} ({z.name}) duplicates an intel-rapl zone; dropped")
            else:
                kept.append(z)
        return [z for z in kept if z.sub is None]   # children are matched to kept parents later

    def _choose(self, top, all_zones):
        """Return [(label, zone)] by the package/psys/dram policy, noting what was left out."""
        packages = [z for z in top if PACKAGE_RE.match(z.name)]
        psys = [z for z in top if z.name == "psys"]
        for z in top:
            if z not in packages and z not in psys:
                self.notes.append(f"{z.zone_id} ({z.name}): not a package or psys zone; not added")
        if psys and (self.prefer_psys or not packages):
            why = "prefer_psys=True" if packages else "no package zone"
            self.notes.append(f"using psys ({why}); package zones are inside it and not added")
            return [(z.name, z) for z in psys]
        if psys:
            self.notes.append("psys not added: it contains the packages (pass prefer_psys=True)")
        if not packages:
            raise EnergyMeterError(
                "no package or psys zone among " + ", ".join(f"{z.zone_id}={z.name}" for z in top))
        chosen = [(z.name, z) for z in packages]
        for z in all_zones:
            if z.sub is None:
                continue
            parent = next((p for p in packages if (p.control, p.index) == (z.control, z.index)), None)
            if parent is None:
                continue
            if z.name == "dram" and self.include_dram:
                chosen.append((f"{parent.name}/dram", z))
            elif z.name == "dram":
                self.notes.append(f"{z.zone_id} (dram) not added (pass include_dram=True)")
            else:
                self.notes.append(f"{z.zone_id} ({z.name}) is part of {parent.name}; not added")
        return chosen

    def _range(self, zone):
        path = os.path.join(zone.path, "max_energy_range_uj")
        try:
            value = int(self.reader(path))
            if value <= 0:
                raise ValueError(f"non-positive range {value}")
            return value
        except (OSError, ValueError) as exc:
            self.notes.append(
                f"{zone.zone_id} ({zone.name}): max_energy_range_uj unreadable ({exc}); a wrap "
                f"cannot be undone, so an interval where the counter goes backwards is dropped")
            return None
