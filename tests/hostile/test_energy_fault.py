"""An energy counter that fails in the middle of a run: the meter downgrades to the model estimate,
labelled, with one warning; training completes."""
import warnings

import pytest

from tinyeff.energy import model
from tinyeff.energy.base import Backend, Domain
from tinyeff.energy.meter import EnergyMeter
from tinyeff.errors import EnergyMeterError


class FlakyBackend(Backend):
    """A counter that moves on every read, and fails once ``broken`` is set."""
    name = "rapl"

    def __init__(self):
        super().__init__()
        self.broken, self.value = False, 0

    def discover(self):
        self.domains = [Domain("package-0", 1e-6, 2**32, "fake")]

    def read(self):
        if self.broken:
            raise EnergyMeterError("rapl: energy_uj vanished (EIO)")
        self.value += 1000
        return {"package-0": self.value}


def flaky_meter():
    backend = FlakyBackend()
    meter = EnergyMeter(backends=[backend], poll_s=0, liveness_s=0, busy=lambda s: None)
    assert meter.select() == "rapl"
    return meter, backend


def test_meter_falls_back_to_the_model_after_a_failure():
    meter, backend = flaky_meter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with meter:
            meter.add_work(model.WorkCounts(macs={"fp32": 10**6}))
            first = meter.checkpoint("epoch 1")
            backend.broken = True
            with pytest.raises(EnergyMeterError):
                meter.checkpoint("epoch 2")
            meter.fall_back_to_model("rapl: energy_uj vanished (EIO)")
            meter.add_work(model.WorkCounts(macs={"fp32": 10**6}))
            second = meter.checkpoint("epoch 2")
    assert first.source == "rapl" and second.source == "model"
    assert "failed during the run (rapl: energy_uj vanished (EIO))" in second.label
    assert second.energy_j > 0
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "is ESTIMATED by the model" in messages[0]
