"""EnergyMeter fallback, labels, checkpoints and measure_kernel with fake clocks (spec §6: 10, 17, 19)."""
import pytest

from energy_fakes import FakeBackend, no_busy
from tinyeff.energy import EnergyMeter, Measurement, WorkCounts, measure_kernel, probe_all
from tinyeff.energy.base import Domain


def test_no_powercap_auto_falls_back_to_model(tmp_path, clock):
    meter = EnergyMeter(root=str(tmp_path), clock=clock, busy=no_busy)
    with pytest.warns(RuntimeWarning, match="ESTIMATED"):
        with meter:
            meter.add_work(WorkCounts(macs={"fp32": 10**9}))
            clock.advance(2.0)
    r = meter.result
    assert r.source == "model" and r.kind == "estimated"
    assert r.energy_j == pytest.approx(10**9 * 4.6e-12)
    assert str(r).startswith("ESTIMATED")
    assert "powercap not present (virtual machine?)" in r.label


def test_model_without_work_says_so(clock):
    with EnergyMeter("model", clock=clock) as meter:
        clock.advance(1.0)
    assert meter.result.energy_j == 0.0 and "no work recorded" in meter.result.warnings[0]


def test_probe_all_on_machine_without_counters(tmp_path):
    report = probe_all(root=str(tmp_path), backends=None)
    assert report["active"] == "model" and report["estimated"]
    assert report["lines"][0].startswith("rapl  rejected: powercap not present")
    assert "ESTIMATED" in report["lines"][-1]


@pytest.mark.parametrize("source,kind", [("rapl", "measured"), ("perf", "measured"), ("msr", "measured"),
                                         ("nvml", "measured"), ("model", "estimated"),
                                         ("attributed", "attributed")])
def test_every_measurement_carries_its_source(source, kind):
    assert Measurement(1.0, 1.0, source).kind == kind


def test_unknown_source_rejected():
    with pytest.raises(ValueError, match="source"):
        Measurement(1.0, 1.0, "guess")


def make_meter(clock, backend):
    return EnergyMeter(backends=[backend], clock=clock, poll_s=0, busy=no_busy)


def test_checkpoints_give_per_interval_energy(clock):
    backend = FakeBackend([Domain("package-0", 1e-6, 2**32, "fake")], {"package-0": 0}, tick=1)
    with make_meter(clock, backend) as meter:
        backend.values["package-0"] += 3_000_000
        clock.advance(1.0)
        first = meter.checkpoint("epoch1")
        backend.values["package-0"] += 5_000_000
        clock.advance(1.0)
        second = meter.checkpoint("epoch2")
    assert first.energy_j == pytest.approx(3.0, abs=1e-5)
    assert second.energy_j == pytest.approx(5.0, abs=1e-5)
    assert meter.result.energy_j == pytest.approx(8.0, abs=1e-5)


class Workload:
    """A kernel that takes 0.125 s (exact in binary) of fake time and 2 J of fake energy per call."""

    def __init__(self, clock, backend):
        self.clock, self.backend, self.calls = clock, backend, 0

    def __call__(self):
        self.calls += 1
        self.clock.advance(0.125)
        self.backend.values["package-0"] += 2_000_000


def test_measure_kernel_repeats_subtracts_idle_and_reports_per_call(clock):
    backend = FakeBackend([Domain("package-0", 1e-6, 2**32, "fake")], {"package-0": 0}, tick=1)
    kernel = Workload(clock, backend)

    def sleep(seconds):                          # idle: 5 W
        clock.advance(seconds)
        backend.values["package-0"] += int(5e6 * seconds)

    r = measure_kernel(kernel, min_time_s=1.0, warmup=2, trials=3, idle_time_s=2.0, batch_size=4,
                       meter=make_meter(clock, backend), clock=clock, sleep=sleep)
    assert r.calls == [8, 8, 8] and kernel.calls == 26        # 2 warm-up calls not measured
    assert r.j_per_call == pytest.approx(2.0, abs=1e-5)          # gross (the counter ticks 1 µJ/read)
    assert r.idle_w == pytest.approx(5.0, abs=1e-5)
    assert r.net_j_per_call == pytest.approx(2.0 - 5.0 * 0.125, abs=1e-5)
    assert r.j_per_image == pytest.approx(0.5, abs=1e-5)
    assert r.mean_w == pytest.approx(16.0, abs=1e-4)
    assert r.iqr_j_per_call == pytest.approx(0.0, abs=1e-6)
    assert r.source == "rapl" and "measured(rapl" in str(r)


def test_measure_kernel_estimates_from_work_without_counter(tmp_path, clock):
    meter = EnergyMeter(root=str(tmp_path), clock=clock, busy=no_busy)
    kernel = Workload(clock, FakeBackend([], {}))
    kernel.backend.values = {"package-0": 0}
    with pytest.warns(RuntimeWarning):
        r = measure_kernel(kernel, min_time_s=0.5, warmup=0, trials=1, idle_time_s=0,
                           work=WorkCounts(macs={"fp32": 10**6}), meter=meter, clock=clock)
    assert r.source == "model" and str(r).startswith("ESTIMATED")
    assert r.j_per_call == pytest.approx(10**6 * 4.6e-12)
