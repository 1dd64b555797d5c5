"""Fake sysfs trees, clock and backend shared by the energy tests (imported by conftest and tests)."""
import os

from tinyeff.energy.base import Backend

RANGE_UJ = 65_536_000_000   # 2^32 counts of 2^-16 J, rounded down to µJ as powercap reports


class FakePowercap:
    """Writes ``sys/class/powercap/<zone>/{name,energy_uj,max_energy_range_uj,enabled}`` under root."""

    def __init__(self, root):
        self.root = str(root)
        self.base = os.path.join(self.root, "sys/class/powercap")
        os.makedirs(self.base, exist_ok=True)
        self.paths = {}

    def zone(self, zone_id, name, uj=0, max_uj=RANGE_UJ, parent=None, enabled=1):
        """Add a zone; a sub-zone goes inside its parent's directory (as the kernel nests them)."""
        where = os.path.join(self.base, parent) if parent else self.base
        path = os.path.join(where, zone_id)
        os.makedirs(path, exist_ok=True)
        self._write(path, "name", name)
        self._write(path, "enabled", enabled)
        if max_uj is not None:
            self._write(path, "max_energy_range_uj", max_uj)
        self.paths[zone_id] = path
        self.set(zone_id, uj)
        return path

    def set(self, zone_id, uj):
        self._write(self.paths[zone_id], "energy_uj", uj)

    def get(self, zone_id):
        with open(os.path.join(self.paths[zone_id], "energy_uj")) as f:
            return int(f.read())

    def advance(self, zone_id, joules, max_uj=RANGE_UJ):
        """Add energy modulo the range, so wraps come from arithmetic."""
        self.set(zone_id, (self.get(zone_id) + round(joules * 1e6)) % max_uj)

    @staticmethod
    def _write(path, name, value):
        with open(os.path.join(path, name), "w") as f:
            f.write(f"{value}\n")


class FakeClock:
    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


class FakeBackend(Backend):
    """A backend whose counters are a dict the test mutates; ``tick`` is added on every read if set."""
    name = "rapl"

    def __init__(self, domains, values, tick=0, fail=None):
        super().__init__()
        self._domains, self.values, self.tick, self.fail = domains, values, tick, fail

    def discover(self):
        if self.fail:
            from tinyeff.errors import EnergyMeterError
            raise EnergyMeterError(self.fail)
        self.domains = list(self._domains)

    def read(self):
        for k in self.values:
            self.values[k] += self.tick
        return dict(self.values)


def no_busy(seconds):
    """Liveness check without spinning: the fake counters move by ``tick`` per read instead."""
