"""The FMA peak loop (csrc/peak.c): it counts the flops it does and refuses bad arguments."""
import pytest

from tinyeff import kernels
from tinyeff.kernels import cpu, peak

VL = {"portable": 4, "avx2": 8, "avx512": 16, "neon": 4}


@pytest.fixture
def c_tier():
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))
    from tinyeff.kernels import c
    return c


@pytest.mark.parametrize("isa", sorted(VL))
def test_fma_peak_counts_its_flops(c_tier, isa):
    if isa not in cpu.usable_paths():
        pytest.skip(f"ISA path {isa!r} cannot run on this CPU (usable: {cpu.usable_paths()})")
    flops = c_tier.ffi().new("double *")
    assert c_tier.lib().tinyeff_fma_peak(cpu.CODE[isa], 1000, flops) == 0
    assert flops[0] == c_tier.num_threads() * 1000 * 12 * VL[isa] * 2   # 12 FMAs of VL lanes a step
    assert peak.fma_peak_gflops(isa, iters=1000, repeats=1) > 0


def test_fma_peak_rejects_bad_arguments(c_tier):
    flops = c_tier.ffi().new("double *")
    assert c_tier.lib().tinyeff_fma_peak(0, 0, flops) == 1
    assert c_tier.lib().tinyeff_fma_peak(99, 10, flops) == 2
    with pytest.raises(ValueError, match="cannot run here"):
        peak.fma_peak_gflops("no_such_path")


# multiply-adds per loop iteration of csrc/int8_gemm/peak_s8.c, per path (and AVX2's quad step)
INT8_MACS = {("portable", 0): 32, ("avx2", 0): 256, ("avx2", 1): 512, ("avx512", 0): 256, ("avx512", 1): 512,
             ("avx512_vnni", 0): 768, ("neon", 0): 64, ("neon_dotprod", 0): 128}


@pytest.mark.parametrize("isa,quad", sorted(INT8_MACS))
def test_int8_peak_counts_its_multiply_adds(c_tier, isa, quad):
    if isa not in cpu.usable_paths():
        pytest.skip(f"ISA path {isa!r} cannot run on this CPU (usable: {cpu.usable_paths()})")
    macs = c_tier.ffi().new("double *")
    assert c_tier.lib().tinyeff_int8_peak(cpu.CODE[isa], quad, 1000, macs) == 0
    assert macs[0] == c_tier.num_threads() * 1000 * INT8_MACS[isa, quad]
    assert peak.int8_peak_gmacs(isa, quad=bool(quad), iters=1000, repeats=1) > 0


def test_int8_peak_rejects_bad_arguments(c_tier):
    macs = c_tier.ffi().new("double *")
    assert c_tier.lib().tinyeff_int8_peak(cpu.CODE["portable"], 0, 0, macs) == 1
    assert c_tier.lib().tinyeff_int8_peak(99, 0, 10, macs) == 2
    assert c_tier.lib().tinyeff_int8_peak(cpu.CODE["portable"], 1, 10, macs) == 3   # no quad step there
    with pytest.raises(ValueError, match="has none"):
        peak.int8_peak_gmacs("portable", quad=True)
