"""The ISA vocabulary: feature detection, TINYEFF_CPU_FEATURES as a cap, and the registry's paths."""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.errors import KernelUnavailable
from tinyeff.kernels import cpu, registry


@pytest.fixture
def detected(monkeypatch):
    """Pretend the CPU reports ``flags`` on architecture ``arch``."""
    def set_cpu(flags, arch="x86_64"):
        monkeypatch.setattr(cpu, "detected", lambda: frozenset(flags))
        monkeypatch.setattr(cpu, "arch", lambda: arch)
        cpu._effective.cache_clear()
        cpu._usable.cache_clear()
    yield set_cpu
    cpu._effective.cache_clear()
    cpu._usable.cache_clear()


AVX512_VNNI = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni")


def test_paths_follow_the_features(detected, monkeypatch):
    monkeypatch.delenv("TINYEFF_CPU_FEATURES", raising=False)
    detected(AVX512_VNNI)
    assert cpu.usable_paths() == ("portable", "avx2", "avx512", "avx512_vnni")
    detected(("avx2", "fma"))
    assert cpu.usable_paths() == ("portable", "avx2")
    detected(("avx2",))                       # AVX2 without FMA: no avx2 path
    assert cpu.usable_paths() == ("portable",)


def test_cap_intersects_never_adds(detected, monkeypatch):
    detected(("avx2", "fma"))
    monkeypatch.setenv("TINYEFF_CPU_FEATURES", "avx2,fma,avx512f,avx512bw,avx512vl")
    assert cpu.usable_paths() == ("portable", "avx2")      # listing AVX-512 cannot enable it
    assert not cpu.has("avx512f")
    detected(AVX512_VNNI)
    monkeypatch.setenv("TINYEFF_CPU_FEATURES", "avx2,fma")
    assert cpu.best_path() == "avx2"
    monkeypatch.setenv("TINYEFF_CPU_FEATURES", "")
    assert cpu.usable_paths() == ("portable",)


def test_arm64_never_takes_x86_flags(detected, monkeypatch):
    """qemu-user shows the host's /proc/cpuinfo: x86 flags on an ARM64 process select nothing."""
    monkeypatch.delenv("TINYEFF_CPU_FEATURES", raising=False)
    detected(AVX512_VNNI + ("asimd", "asimddp"), arch="arm64")
    assert cpu.usable_paths() == ("portable", "neon", "neon_dotprod")
    detected(("asimd",), arch="arm64")
    assert cpu.best_path() == "neon"


def test_registry_binds_and_refuses_paths(monkeypatch):
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))
    monkeypatch.setenv("TINYEFF_CPU_FEATURES", "")
    assert registry.isa_paths("conv2d_f32", "c") == ("portable",)
    with pytest.raises(KernelUnavailable, match="no ISA path 'avx512'"):
        kernels.get("conv2d_f32", "c", isa="avx512")
    with pytest.raises(KernelUnavailable, match="has no ISA paths"):
        kernels.get("im2col_f32", "c", isa="portable")
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    out = kernels.get("conv2d_f32", "c")(x, w, padding=1)
    np.testing.assert_allclose(out, kernels.get("conv2d_f32", "ref")(x, w, padding=1), rtol=1e-6)


def test_register_rejects_unknown_paths():
    with pytest.raises(ValueError, match="portable included"):
        registry.register("x_f32", "c", isa=("avx2",))
    with pytest.raises(ValueError, match="must name paths"):
        registry.register("x_f32", "c", isa=("portable", "sse9"))


def test_get_follows_cap_and_features_after_a_call(detected, monkeypatch):
    """``get`` memoizes the bound kernel; a new cap or new detected features must still rebind it."""
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))
    monkeypatch.delenv("TINYEFF_CPU_FEATURES", raising=False)
    detected(AVX512_VNNI)
    assert kernels.get("conv2d_f32", "c").keywords["isa"] == "avx512"
    detected(("avx2", "fma"))
    assert kernels.get("conv2d_f32", "c").keywords["isa"] == "avx2"
    assert registry.best_isa("conv2d_f32") == "avx2"
    monkeypatch.setenv("TINYEFF_CPU_FEATURES", "")
    assert kernels.get("conv2d_f32", "c").keywords["isa"] == "portable"
    assert registry.isa_paths("conv2d_f32", "c") == ("portable",)
