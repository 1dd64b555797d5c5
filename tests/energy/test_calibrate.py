"""NNLS calibration recovers known constants and refuses a poor fit (spec §6: 16)."""
import os

import numpy as np
import pytest

from tinyeff.energy.calibrate import CalibrationRun, fit, save_fit
from tinyeff.energy.model import WorkCounts, load_profile

TRUE = {"mac.fp32": 40.0, "mac.int8": 6.0, "byte.l1": 3.0, "byte.l2": 20.0, "byte.dram": 400.0,
        "static_w": 8.0}


# counts that cost 20-40 J of each action, like the microbenchmarks (each dominated by one action)
SCALE = {"fp32": 1e12, "int8": 6e12, "l1": 1e13, "l2": 2e12, "dram": 1e11}


def synthetic_runs(rng, noise):
    runs = []
    for i in range(60):
        kind = list(SCALE)[i % 6] if i % 6 < 5 else None          # every sixth run is idle
        amount = {k: (SCALE[k] * rng.uniform(0.5, 1.0) if k == kind else SCALE[k] * rng.uniform(0, 0.1))
                  for k in SCALE} if kind else dict.fromkeys(SCALE, 0)
        counts = WorkCounts({"fp32": int(amount["fp32"]), "int8": int(amount["int8"])}, {},
                            {lv: int(amount[lv]) for lv in ("l1", "l2", "dram")})
        t = float(rng.uniform(1.0, 3.0))
        e = (counts.macs["fp32"] * TRUE["mac.fp32"] + counts.macs["int8"] * TRUE["mac.int8"]
             + counts.bytes["l1"] * TRUE["byte.l1"] + counts.bytes["l2"] * TRUE["byte.l2"]
             + counts.bytes["dram"] * TRUE["byte.dram"]) * 1e-12 + TRUE["static_w"] * t
        runs.append(CalibrationRun(f"run{i}", counts, t, e * (1 + noise * rng.standard_normal())))
    return runs


def test_nnls_recovers_known_constants_within_5_percent(rng):
    result = fit(synthetic_runs(rng, noise=0.02))
    assert result.ok, result.reason
    for name, value in TRUE.items():
        assert result.constants[name] == pytest.approx(value, rel=0.05), name


def test_poor_fit_is_not_saved(rng, tmp_path):
    runs = synthetic_runs(rng, noise=0.0)
    noisy = [CalibrationRun(r.name, r.counts, r.time_s, r.energy_j * float(rng.uniform(0.1, 3.0)))
             for r in runs]
    result = fit(noisy)
    assert not result.ok and ("R^2" in result.reason or "off by" in result.reason)
    path = tmp_path / "p.json"
    with pytest.raises(ValueError, match="not saved"):
        save_fit(result, str(path))
    assert not os.path.exists(path)


def test_good_fit_saved_as_calibrated_profile(rng, tmp_path):
    result = fit(synthetic_runs(rng, noise=0.0))
    path = str(tmp_path / "calibrated.json")
    save_fit(result, path, backend="rapl", name="test_box")
    p = load_profile(path)
    assert p.calibrated and p.name == "test_box"
    assert p.mac["fp32"] == pytest.approx(40.0) and p.static_w == pytest.approx(8.0)
    assert np.isclose(p.provenance["r2"], 1.0)
