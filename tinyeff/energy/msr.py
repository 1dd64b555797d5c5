"""The MSR route: read RAPL energy-status registers from ``/dev/cpu/N/msr`` (root, module ``msr``).

``MSR_RAPL_POWER_UNIT`` (0x606) bits 12:8 hold the energy status unit ESU: one count is 2^-ESU J
(ESU 16 -> 15.2587890625 µJ). ``MSR_PKG_ENERGY_STATUS`` (0x611) and ``MSR_DRAM_ENERGY_STATUS``
(0x619) count in that unit; only the low 32 bits count, so the modulus is 2^32 counts. AMD uses
0xC0010299 (unit) and 0xC001029B (package). One CPU per package is read (the lowest-numbered CPU
of each ``physical_package_id``).

Lowest-priority CPU backend: root-only and without the driver's quirk handling (the DRAM unit on
Haswell servers is fixed at 2^-16 J whatever ESU says; we do not apply that quirk, so DRAM via MSR
is off by default). ``reader(cpu, register) -> int`` is injectable for tests.
"""
import os
import struct

from tinyeff.energy.base import Backend, Domain
from tinyeff.errors import EnergyMeterError

INTEL = {"unit": 0x606, "package": 0x611, "dram": 0x619}
AMD = {"unit": 0xC0010299, "package": 0xC001029B}
COUNTER_MASK = 0xFFFFFFFF


def energy_unit_j(unit_register):
    """Joules per count from the power-unit register: 2^-ESU with ESU = bits 12:8."""
    esu = (unit_register >> 8) & 0x1F
    return 0.5 ** esu


def make_dev_reader(root="/"):
    """A reader that preads 8 bytes at offset ``register`` from ``<root>/dev/cpu/<cpu>/msr``."""
    def read(cpu, register):
        path = os.path.join(root, f"dev/cpu/{cpu}/msr")
        fd = os.open(path, os.O_RDONLY)
        try:
            return struct.unpack("Q", os.pread(fd, 8, register))[0]
        finally:
            os.close(fd)
    return read


class MsrBackend(Backend):
    """Read package energy from MSRs, one CPU per package.

    Args:
        root: file-system root for ``dev/cpu`` and ``sys/devices/system/cpu``.
        vendor: ``"intel"`` or ``"amd"`` (register set); default from /proc/cpuinfo.
        reader: ``reader(cpu, register) -> int``; default reads the device file.
    """
    name = "msr"

    def __init__(self, root="/", vendor=None, reader=None):
        super().__init__()
        self.root = root
        self.vendor = vendor
        self._device = reader is None
        self.reader = reader or make_dev_reader(root)
        self._regs = {}

    def discover(self):
        if self._device and not os.path.exists(os.path.join(self.root, "dev/cpu/0/msr")):
            raise EnergyMeterError("/dev/cpu/0/msr missing: load the msr module (modprobe msr) "
                                   "and run as root; virtual machines usually lack RAPL MSRs")
        regs = AMD if (self.vendor or self._vendor()) == "amd" else INTEL
        self.domains, self._regs = [], {}
        for package, cpu in sorted(self._package_cpus().items()):
            try:
                unit_j = energy_unit_j(self.reader(cpu, regs["unit"]))
                self.reader(cpu, regs["package"])
            except OSError as exc:
                raise EnergyMeterError(f"reading MSR {regs['package']:#x} on cpu {cpu} failed "
                                       f"({exc}); needs root (CAP_SYS_RAWIO)") from exc
            label = f"package-{package}"
            self.domains.append(Domain(label, unit_j, COUNTER_MASK + 1, f"msr {regs['package']:#x} cpu {cpu}"))
            self._regs[label] = (cpu, regs["package"])

    def read(self):
        try:
            return {label: self.reader(cpu, reg) & COUNTER_MASK for label, (cpu, reg) in self._regs.items()}
        except OSError as exc:
            raise EnergyMeterError(f"msr: reading a counter failed: {exc}") from exc

    def _package_cpus(self):
        """{physical_package_id: lowest cpu} from sysfs topology; {0: 0} if topology is absent."""
        base = os.path.join(self.root, "sys/devices/system/cpu")
        found = {}
        for entry in sorted(os.listdir(base)) if os.path.isdir(base) else ():
            if not (entry.startswith("cpu") and entry[3:].isdigit()):
                continue
            try:
                with open(os.path.join(base, entry, "topology/physical_package_id")) as f:
                    package = int(f.read())
            except (OSError, ValueError):
                continue
            cpu = int(entry[3:])
            found[package] = min(cpu, found.get(package, cpu))
        return found or {0: 0}

    def _vendor(self):
        try:
            with open(os.path.join(self.root, "proc/cpuinfo")) as f:
                return "amd" if "AuthenticAMD" in f.read(4096) else "intel"
        except OSError:
            return "intel"
