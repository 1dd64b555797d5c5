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
