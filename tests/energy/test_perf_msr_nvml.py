"""perf events, MSR decode and NVML with injected readers (spec §6: 11-13)."""
import os
import sys
import types
from fractions import Fraction

import pytest

from energy_fakes import no_busy
from tinyeff.energy.base import probe
from tinyeff.energy.msr import MsrBackend, energy_unit_j
from tinyeff.energy.nvml import NvmlBackend
from tinyeff.energy.perf import PerfBackend, parse_config, parse_scale
from tinyeff.errors import EnergyMeterError

SCALE = "2.3283064365386962890625e-10"


def fake_pmu(root, events=(("energy-pkg", "0x02"),), cpumask="0"):
    pmu = os.path.join(root, "sys/bus/event_source/devices/power")
    os.makedirs(os.path.join(pmu, "events"))
    for path, text in [("type", "9"), ("cpumask", cpumask)]:
        with open(os.path.join(pmu, path), "w") as f:
            f.write(text + "\n")
    for name, event in events:
        with open(os.path.join(pmu, "events", name), "w") as f:
            f.write(f"event={event}\n")
        with open(os.path.join(pmu, "events", name + ".scale"), "w") as f:
            f.write(SCALE + "\n")
        with open(os.path.join(pmu, "events", name + ".unit"), "w") as f:
            f.write("Joules\n")


class FakeFd:
    def __init__(self, counts):
        self.counts = iter(counts)

    def read(self):
        return next(self.counts)

    def close(self):
        pass


def test_perf_scale_parsed_exactly():
    assert parse_scale(SCALE) == Fraction(1, 2**32)
    assert parse_config("event=0x05") == 5


def test_perf_count_two_to_32_is_one_joule(tmp_path):
    fake_pmu(str(tmp_path))
    opened = []

    def opener(pmu_type, config, cpu):
        opened.append((pmu_type, config, cpu))
        return FakeFd([0, 2**32])
    b = PerfBackend(str(tmp_path), opener=opener)
    b.discover()
    assert opened == [(9, 2, 0)]
    d = b.domains[0]
    assert (b.read()["energy-pkg:cpu0"] - 0) * d.unit_j == 0.0
    assert b.read()["energy-pkg:cpu0"] * d.unit_j == 1.0
    assert d.range_raw is None   # the kernel widens the counter: no wrap


def test_perf_frozen_psys_rejected(tmp_path):
    fake_pmu(str(tmp_path), events=(("energy-psys", "0x05"),))   # what the dev VM's PMU looked like
    b = PerfBackend(str(tmp_path), opener=lambda *a: FakeFd([0, 0]))
    result = probe(b, busy=no_busy)
    assert not result.ok and "counter frozen" in result.reason


def test_perf_absent_pmu_rejected(tmp_path):
    result = probe(PerfBackend(str(tmp_path)), busy=no_busy)
    assert not result.ok and "'power' not present" in result.reason


def test_perf_open_failure_message_passed_on(tmp_path):
    fake_pmu(str(tmp_path))

    def opener(*a):
        raise EnergyMeterError("perf_event_open failed: Permission denied (needs CAP_PERFMON ...)")
    result = probe(PerfBackend(str(tmp_path), opener=opener), busy=no_busy)
    assert not result.ok and "CAP_PERFMON" in result.reason


def test_msr_unit_decode():
    assert energy_unit_j(0xA1003) == 2.0 ** -16 == 15.2587890625e-6


def test_msr_counter_wraps_at_32_bits(tmp_path):
    values = {0x606: 0xA1003, 0x611: (1 << 40) | 0xFFFF_FFFF}   # high bits must be masked off
    b = MsrBackend(str(tmp_path), vendor="intel", reader=lambda cpu, reg: values[reg])
    b.discover()
    assert b.read() == {"package-0": 0xFFFF_FFFF}
    assert b.domains[0].range_raw == 2**32


def test_msr_missing_device_rejected(tmp_path):
    result = probe(MsrBackend(str(tmp_path)), busy=no_busy)
    assert not result.ok and "/dev/cpu/0/msr missing" in result.reason


def test_nvml_absent_is_rejected_without_crash():
    result = probe(NvmlBackend("tinyeff_no_such_nvml_module"), busy=no_busy)
    assert not result.ok and "not installed" in result.reason


def test_nvml_present_reads_millijoules(monkeypatch):
    energy = iter([1000, 1000, 3500, 4000])
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: f"h{i}",
        nvmlDeviceGetTotalEnergyConsumption=lambda h: next(energy))
    monkeypatch.setitem(sys.modules, "fake_pynvml", fake)
    b = NvmlBackend("fake_pynvml")
    assert probe(b, busy=no_busy).ok
    assert b.read()["gpu0"] * b.domains[0].unit_j == pytest.approx(4.0)


def test_nvml_error_rejected(monkeypatch):
    def init():
        raise RuntimeError("NVML Shared Library Not Found")
    monkeypatch.setitem(sys.modules, "fake_pynvml", types.SimpleNamespace(nvmlInit=init))
    result = probe(NvmlBackend("fake_pynvml"), busy=no_busy)
    assert not result.ok and "NVML unusable" in result.reason
