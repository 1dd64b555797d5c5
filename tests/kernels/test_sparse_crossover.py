"""crossover.should_use_sparse: overrides, caching (temp-then-rename JSON) and argument errors."""
import json

import pytest

from tinyeff.kernels import crossover

CONV = {"n": 2, "c": 4, "h": 9, "w": 9, "oc": 8, "kh": 3, "kw": 3, "stride": 1, "padding": 1,
        "dilation": 1}
LINEAR = {"n": 4, "in": 32, "out": 16}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYEFF_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TINYEFF_SPARSE", raising=False)
    return tmp_path


def test_mode_argument_overrides_measurement(cache_dir, monkeypatch):
    monkeypatch.setattr(crossover, "measure", lambda *a, **k: pytest.fail("must not measure"))
    assert crossover.should_use_sparse("conv", CONV, 0.1, mode="always") is True
    assert crossover.should_use_sparse("conv", CONV, 0.99, mode="never") is False


def test_env_var_overrides_measurement(cache_dir, monkeypatch):
    monkeypatch.setattr(crossover, "measure", lambda *a, **k: pytest.fail("must not measure"))
    monkeypatch.setenv("TINYEFF_SPARSE", "never")
    assert crossover.should_use_sparse("linear", LINEAR, 0.99) is False
    assert crossover.should_use_sparse("linear", LINEAR, 0.99, mode="always") is True  # arg wins


def test_auto_measures_once_then_reads_cache(cache_dir, monkeypatch):
    calls = []
    real = crossover.measure

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, repeats=1)
    monkeypatch.setattr(crossover, "measure", counting)
    first = crossover.should_use_sparse("conv", CONV, 0.9)
    second = crossover.should_use_sparse("conv", CONV, 0.901)    # same 1% bucket
    assert first == second and len(calls) == 1
    data = json.loads((cache_dir / crossover.CACHE_FILE).read_text())
    (entry,) = data.values()
    assert entry["sparse_wins"] == first and entry["dense_s"] > 0 and entry["sparse_s"] > 0
    assert not list(cache_dir.glob(".crossover-*"))              # no temp file left behind


def test_corrupt_cache_is_remeasured(cache_dir, monkeypatch):
    (cache_dir / crossover.CACHE_FILE).write_text("{not json")
    monkeypatch.setattr(crossover, "measure",
                        lambda *a, **k: {"dense_s": 1.0, "sparse_s": 0.5, "sparse_wins": True})
    assert crossover.should_use_sparse("linear", LINEAR, 0.5) is True
    assert len(json.loads((cache_dir / crossover.CACHE_FILE).read_text())) == 1


def test_all_zero_weights_always_sparse(cache_dir, monkeypatch):
    monkeypatch.setattr(crossover, "measure", lambda *a, **k: pytest.fail("must not measure"))
    assert crossover.should_use_sparse("conv", CONV, 1.0) is True


@pytest.mark.parametrize("sparsity,bucket", [(0.0, 0.0), (0.52, 0.5), (0.874, 0.85),
                                             (0.904, 0.9), (0.987, 0.99), (1.0, 1.0)])
def test_sparsity_bucket(sparsity, bucket):
    assert crossover.sparsity_bucket(sparsity) == bucket


def test_bad_arguments_name_the_fix(cache_dir, monkeypatch):
    with pytest.raises(ValueError, match="fraction"):
        crossover.should_use_sparse("conv", CONV, 1.5)
    with pytest.raises(ValueError, match="'conv' or 'linear'"):
        crossover.should_use_sparse("pool", CONV, 0.5)
    with pytest.raises(ValueError, match="lacks"):
        crossover.should_use_sparse("linear", {"n": 1}, 0.5)
    monkeypatch.setenv("TINYEFF_SPARSE", "sometimes")
    with pytest.raises(ValueError, match="TINYEFF_SPARSE"):
        crossover.should_use_sparse("linear", LINEAR, 0.5)


def test_each_isa_cap_gets_its_own_verdict(cache_dir, monkeypatch):
    """A verdict measured on the widest path must not decide for the same machine capped lower."""
    from tinyeff import kernels
    from tinyeff.kernels import cpu
    if not kernels.available("splinear_f32_csr", "c"):
        pytest.skip(kernels.why_unavailable("splinear_f32_csr", "c"))
    monkeypatch.setattr(crossover, "measure",
                        lambda *a, **k: {"dense_s": 1.0, "sparse_s": 0.5, "sparse_wins": True})

    def cap(features):
        monkeypatch.setenv("TINYEFF_CPU_FEATURES", features)
        cpu._effective.cache_clear()
        cpu._usable.cache_clear()
    try:
        cap("")                                       # portable only
        crossover.should_use_sparse("linear", LINEAR, 0.5)
        cap(",".join(cpu.detected()))                 # everything this CPU has
        crossover.should_use_sparse("linear", LINEAR, 0.5)
    finally:
        monkeypatch.delenv("TINYEFF_CPU_FEATURES")
        cpu._effective.cache_clear()
        cpu._usable.cache_clear()
    keys = sorted(json.loads((cache_dir / crossover.CACHE_FILE).read_text()))
    assert any("c/portable" in k for k in keys)
    if cpu.best_path() != "portable":
        assert len(keys) == 2
