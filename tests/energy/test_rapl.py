"""Powercap discovery and policy on fake sysfs trees (spec §6: 1, 6-10)."""
import os

import pytest

from tinyeff.energy.meter import EnergyMeter
from tinyeff.energy.rapl import RaplBackend, read_text
from tinyeff.errors import EnergyMeterError

from energy_fakes import no_busy


def names(backend):
    return [d.name for d in backend.domains]


def test_no_powercap_at_all_is_rejected_as_virtual_machine(tmp_path):
    with pytest.raises(EnergyMeterError, match=r"powercap not present \(virtual machine\?\)"):
        RaplBackend(str(tmp_path)).discover()


def test_two_packages_found_and_zone_index_ten(powercap):
    powercap.zone("intel-rapl:0", "package-0", 10)
    powercap.zone("intel-rapl:1", "package-1", 20)
    powercap.zone("intel-rapl:10", "package-10-die-1", 30)   # a regex with one \d misses this
    b = RaplBackend(powercap.root)
    b.discover()
    assert names(b) == ["package-0", "package-1", "package-10-die-1"]
    assert b.read() == {"package-0": 10, "package-1": 20, "package-10-die-1": 30}


def test_core_and_uncore_never_added_dram_only_when_asked(powercap):
    powercap.zone("intel-rapl:0", "package-0", 10)
    powercap.zone("intel-rapl:0:0", "core", 1, parent="intel-rapl:0")
    powercap.zone("intel-rapl:0:1", "uncore", 2, parent="intel-rapl:0")
    powercap.zone("intel-rapl:0:2", "dram", 3, parent="intel-rapl:0")
    plain = RaplBackend(powercap.root)
    plain.discover()
    assert names(plain) == ["package-0"]
    assert any("core" in n and "not added" in n for n in plain.notes)
    with_dram = RaplBackend(powercap.root, include_dram=True)
    with_dram.discover()
    assert names(with_dram) == ["package-0", "package-0/dram"]


def test_psys_used_only_when_asked_or_no_package(powercap):
    powercap.zone("intel-rapl:0", "package-0", 10)
    powercap.zone("intel-rapl:1", "psys", 99)
    default = RaplBackend(powercap.root)
    default.discover()
    assert names(default) == ["package-0"]
    psys = RaplBackend(powercap.root, prefer_psys=True)
    psys.discover()
    assert names(psys) == ["psys"]


def test_psys_used_when_there_is_no_package(tmp_path):
    from energy_fakes import FakePowercap
    fake = FakePowercap(tmp_path)
    fake.zone("intel-rapl:1", "psys", 99)
    b = RaplBackend(fake.root)
    b.discover()
    assert names(b) == ["psys"]


def test_mmio_duplicate_is_dropped(powercap):
    powercap.zone("intel-rapl:0", "package-0", 10)
    powercap.zone("intel-rapl-mmio:0", "package-0", 10)
    b = RaplBackend(powercap.root)
    b.discover()
    assert names(b) == ["package-0"]
    assert any("duplicates" in n for n in b.notes)


def test_unreadable_max_range_accepted_with_note(powercap):
    powercap.zone("intel-rapl:0", "package-0", 10, max_uj=None)
    b = RaplBackend(powercap.root)
    b.discover()
    assert b.domains[0].range_raw is None
    assert any("max_energy_range_uj unreadable" in n for n in b.notes)


def denying_reader(path):
    if path.endswith("energy_uj") and "max_energy" not in path:
        raise PermissionError(13, "Permission denied", path)
    return read_text(path)


def test_permission_denied_message_names_file_and_fixes(powercap):
    powercap.zone("intel-rapl:0", "package-0", 10)
    with pytest.raises(EnergyMeterError) as info:
        RaplBackend(powercap.root, reader=denying_reader).discover()
    message = str(info.value)
    assert os.path.join(powercap.paths["intel-rapl:0"], "energy_uj") in message
    assert "chmod" in message and "udev" in message and "perf" in message


def test_permission_denied_auto_falls_back_to_model_with_one_warning(powercap, clock):
    powercap.zone("intel-rapl:0", "package-0", 10)
    meter = EnergyMeter(backends=[RaplBackend(powercap.root, reader=denying_reader)], clock=clock,
                        busy=no_busy)
    with pytest.warns(RuntimeWarning, match="permission denied.*Fixes") as record:
        with meter:
            clock.advance(1.0)
    assert len(record) == 1
    assert meter.result.source == "model"
    assert str(meter.result).startswith("ESTIMATED")


def test_permission_denied_explicit_backend_raises(powercap, clock):
    powercap.zone("intel-rapl:0", "package-0", 10)
    meter = EnergyMeter("rapl", backends=[RaplBackend(powercap.root, reader=denying_reader)],
                        clock=clock, busy=no_busy)
    with pytest.raises(EnergyMeterError, match="permission denied"):
        meter.select()


def test_disabled_zone_with_moving_counter_is_measured(powercap, clock):
    powercap.zone("intel-rapl:0", "package-0", 1_000_000, enabled=0)   # enabled is about capping
    meter = EnergyMeter(backends=[RaplBackend(powercap.root)], clock=clock, poll_s=0,
                        busy=lambda s: powercap.advance("intel-rapl:0", 0.5))
    with meter:
        powercap.set("intel-rapl:0", 6_000_000)
        clock.advance(1.0)
    # the liveness check moved the counter before the start reading, so the block saw 1.5 -> 6 J
    assert meter.result.source == "rapl"


def test_one_package_five_joules_in_one_second(powercap, clock):
    powercap.zone("intel-rapl:0", "package-0", 0)
    meter = EnergyMeter(backends=[RaplBackend(powercap.root)], clock=clock, poll_s=0,
                        busy=lambda s: powercap.advance("intel-rapl:0", 0.1))
    meter.select()
    powercap.set("intel-rapl:0", 1_000_000)
    with meter:
        powercap.set("intel-rapl:0", 6_000_000)
        clock.advance(1.0)
    r = meter.result
    assert (r.energy_j, r.time_s, r.mean_w) == (5.0, 1.0, 5.0)
    assert r.label == "measured(rapl: package-0)"
    assert str(r) == "5 J over 1.000 s (5 W), measured(rapl: package-0)"


def test_frozen_counter_rejected(powercap, clock):
    powercap.zone("intel-rapl:0", "package-0", 42)
    meter = EnergyMeter(backends=[RaplBackend(powercap.root)], clock=clock, busy=no_busy)
    with pytest.warns(RuntimeWarning, match="counter frozen"):
        assert meter.select() == "model"
    assert "counter frozen" in meter.probes[0].reason


def test_two_packages_summed_per_package_kept(powercap, clock):
    powercap.zone("intel-rapl:0", "package-0", 0)
    powercap.zone("intel-rapl:1", "package-1", 0)
    meter = EnergyMeter(backends=[RaplBackend(powercap.root)], clock=clock, poll_s=0,
                        busy=lambda s: powercap.advance("intel-rapl:0", 0.1))
    with meter:
        powercap.advance("intel-rapl:0", 2.0)
        powercap.advance("intel-rapl:1", 3.0)
        clock.advance(1.0)
    assert meter.result.per_domain_j == {"package-0": 2.0, "package-1": 3.0}
    assert meter.result.energy_j == 5.0


def test_poller_catches_several_wraps(powercap, clock):
    # 3.5 ranges between the start and the end reading: only polling in steps can see each wrap
    powercap.zone("intel-rapl:0", "package-0", 0)
    meter = EnergyMeter(backends=[RaplBackend(powercap.root)], clock=clock, poll_s=0,
                        busy=lambda s: powercap.advance("intel-rapl:0", 0.1))
    with meter:
        for _ in range(35):
            powercap.advance("intel-rapl:0", 6553.6)
            clock.advance(20.0)
            meter.sample()
    assert meter.result.energy_j == pytest.approx(3.5 * 65536.0, abs=1e-6)
    assert not meter.result.flags


def test_poller_thread_samples_on_its_own(powercap):
    import threading
    powercap.zone("intel-rapl:0", "package-0", 0)
    meter = EnergyMeter(backends=[RaplBackend(powercap.root)], poll_s=0.005,
                        busy=lambda s: powercap.advance("intel-rapl:0", 0.1))
    sampled = threading.Event()
    original = meter.sample

    def spy():
        original()
        sampled.set()
    meter.sample = spy
    with meter:
        assert sampled.wait(5.0)
