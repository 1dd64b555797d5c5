"""The measured FMA peak of an ISA path: what "% of peak" in every bench divides by.

The one idea: a percentage of peak is only honest against the peak of the same instructions, on
the same cores, at the same thread count, on this machine today (clock boost, a core shared with
other work). So we do not look the peak up in a data sheet: ``tinyeff_fma_peak`` (csrc/peak.c)
runs a register-only loop of independent FMAs at the ISA path's vector width on every C thread,
and this module times it.

    from tinyeff.kernels import peak
    gflops = peak.fma_peak_gflops("avx2")      # all C threads; best of a few short runs

What it leaves out: memory bandwidth (a kernel can be bound by it long before this peak).
"""
import time

from tinyeff.kernels import cpu


def fma_peak_gflops(isa=None, iters=1_000_000, repeats=20, clock="wall"):
    """Best-of-``repeats`` GFLOP/s of the FMA loop on ``isa`` (default: the best usable path).

    Args:
        isa: an ISA path name from ``cpu.PATHS`` that this CPU can run (under TINYEFF_CPU_FEATURES).
        iters: loop steps per thread per run (12 vector FMAs each).
        repeats: timed runs after one warm-up; the fastest counts (others were interrupted).
        clock: ``"wall"`` (GFLOP/s summed over the C tier's threads) or ``"cpu"`` (GFLOP per
            CPU-second of this process: the peak of one core, blind to time spent descheduled,
            which is what to compare a kernel's flops per CPU-second with on a shared machine).

    Returns:
        float GFLOP/s.

    Raises:
        ValueError: ``isa`` is not a path this CPU can run.
        KernelUnavailable: the C tier did not load.
    """
    from tinyeff.kernels import c as c_tier
    isa = cpu.best_path() if isa is None else isa
    if isa not in cpu.usable_paths():
        raise ValueError(f"fma_peak_gflops: ISA path {isa!r} cannot run here; usable: "
                         f"{', '.join(cpu.usable_paths())} (TINYEFF_CPU_FEATURES caps them)")
    if clock not in ("wall", "cpu"):
        raise ValueError(f"fma_peak_gflops: clock={clock!r} must be 'wall' or 'cpu'")
    timer = time.perf_counter if clock == "wall" else time.process_time
    lib, ffi = c_tier.lib(), c_tier.ffi()
    flops = ffi.new("double *")
    best = float("inf")
    for run in range(repeats + 1):
        t0 = timer()
        c_tier.check(lib.tinyeff_fma_peak(cpu.CODE[isa], iters, flops), "fma_peak")
        if run:
            best = min(best, max(timer() - t0, 1e-9))
    return flops[0] / best / 1e9
