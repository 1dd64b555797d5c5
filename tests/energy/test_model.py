"""The per-operation model and its profile file (spec §6: 15)."""
import json

import pytest

from tinyeff.energy.model import (WorkCounts, cache_sizes, estimate, load_profile, place_bytes,
                                  sparse_weight_bytes)

# fp32 conv 3x3, 16 -> 16 channels, 32x32 output, batch 1: MACs = 16*16*9 * 32*32
CONV_MACS = 16 * 16 * 9 * 32 * 32          # 2 359 296
CONV_WEIGHTS = 16 * 16 * 9                 # 2 304


def test_default_profile_has_documented_horowitz_figures():
    p = load_profile()
    assert p.mac["fp32"] == pytest.approx(3.7 + 0.9) and p.mac["int8"] == pytest.approx(0.2 + 0.1)
    assert p.byte["dram"] == 1300 / 8 and not p.calibrated
    assert "Horowitz" in p.provenance["source"]


def test_conv_compute_energy_is_macs_times_fp32_cost():
    est = estimate(WorkCounts(macs={"fp32": CONV_MACS}))
    assert est.compute_j == pytest.approx(CONV_MACS * 4.6e-12, rel=1e-12)
    assert est.total_j == est.compute_j


def test_int8_compute_cheaper_than_fp32():
    assert (estimate(WorkCounts(macs={"int8": CONV_MACS})).compute_j
            < estimate(WorkCounts(macs={"fp32": CONV_MACS})).compute_j)


def test_half_pruned_conv_halves_compute_but_not_weight_bytes():
    dense = WorkCounts({"fp32": CONV_MACS}, {}, {"dram": CONV_WEIGHTS * 4})
    nnz = CONV_WEIGHTS // 2
    sparse = WorkCounts({"fp32": CONV_MACS // 2}, {}, {"dram": sparse_weight_bytes(nnz, rows=16, value_bytes=4)})
    d, s = estimate(dense), estimate(sparse)
    assert s.compute_j == pytest.approx(d.compute_j / 2)
    # 1152 * (4 + 4) + 17 * 4 = 9284 bytes > half of 9216: indices cost memory energy
    assert s.memory_j["dram"] > d.memory_j["dram"] / 2
    assert sparse_weight_bytes(nnz, 16, 4) == 9284


def test_static_power_times_time(tmp_path):
    path = tmp_path / "static.json"
    path.write_text(json.dumps({"static_w": 2.5}))
    assert estimate(WorkCounts(), str(path), time_s=4.0).static_j == 10.0


def test_user_profile_overrides_one_constant(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"mac": {"fp32": 10.0}}))
    p = load_profile(str(path))
    assert p.mac["fp32"] == 10.0 and p.mac["int8"] == 0.3 and p.name == "mine"


@pytest.mark.parametrize("bad", [{"mac": {"fp23": 1.0}}, {"macs": {}}, {"byte": {"dram": -1}}])
def test_unknown_key_or_negative_value_is_an_error(tmp_path, bad):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="unknown|>= 0"):
        load_profile(str(path))


def test_dtype_without_constant_names_the_fix(tmp_path):
    with pytest.raises(ValueError, match="no mac.fp8"):
        estimate(WorkCounts(macs={"fp8": 1}))


def test_place_bytes_picks_smallest_level_holding_working_set():
    caches = {"l1": 32 << 10, "l2": 1 << 20, "l3": 32 << 20}
    assert place_bytes([10_000, 10_000], caches) == {"l1": 20_000}
    assert place_bytes([600_000], caches) == {"l2": 600_000}
    assert place_bytes([64 << 20], caches) == {"dram": 64 << 20}


def test_cache_sizes_read_from_fake_sysfs(tmp_path):
    for i, (level, kind, size) in enumerate([(1, "Data", "32K"), (1, "Instruction", "32K"),
                                             (2, "Unified", "1024K"), (3, "Unified", "32M")]):
        d = tmp_path / f"sys/devices/system/cpu/cpu0/cache/index{i}"
        d.mkdir(parents=True)
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    assert cache_sizes(str(tmp_path)) == {"l1": 32 << 10, "l2": 1 << 20, "l3": 32 << 20}
