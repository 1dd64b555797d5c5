"""The measured FMA peak of an ISA path: what "% of peak" in every bench divides by.

The one idea: a percentage of peak is only honest against the peak of the same instructions, on
the same cores, at the same thread count, on this machine today (clock boost, a core shared with
other work). So we do not look the peak up in a data sheet: ``tinyeff_fma_peak`` (csrc/peak.c)
runs a register-only loop of independent FMAs at the ISA path's vector width on every C thread,
and this module times it.

    from tinyeff.kernels import peak
    gflops = peak.fma_peak_gflops("avx2")      # all C threads; best of a few short runs
    gmacs = peak.int8_peak_gmacs("avx2")       # the int8 tile's step (csrc/int8_gemm/peak_s8.c)

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
    isa = _usable(isa, clock, "fma_peak_gflops")
    return _best_rate(lambda out: c_tier.lib().tinyeff_fma_peak(cpu.CODE[isa], iters, out), "fma_peak",
                      repeats, clock)


def int8_peak_gmacs(isa=None, quad=False, iters=300_000, repeats=20, clock="wall"):
    """Best-of-``repeats`` int8 GMAC/s (uint8 x int8 multiply-adds) of the int8 tile's step on ``isa``.

    The step is the instruction chain the int8 GEMM tile of that path runs per multiply-add
    (csrc/int8_gemm/peak_s8.c): on AVX2 (and AVX-512 without VNNI, which runs the AVX2 tiles)
    vpmaddubsw + vpmaddwd + vpaddd, or with ``quad=True`` the two-group step that 7-bit activations
    take where ``quads_fit`` allows; vpdpbusd on AVX-512 VNNI; vmull_s8 + vpadalq_s16 on NEON; sdot
    on NEON dot-product; scalar int32 on portable.

    Args:
        isa: an ISA path name from ``cpu.PATHS`` that this CPU can run (under TINYEFF_CPU_FEATURES).
        quad: AVX2's two-group step (only the ``avx2`` and ``avx512`` paths have it).
        iters, repeats, clock: as in ``fma_peak_gflops`` (an iteration is 8 or 12 vector steps).

    Returns:
        float GMAC/s (one multiply-add = 2 int8 ops).

    Raises:
        ValueError: ``isa`` cannot run here, or has no quad step.
        KernelUnavailable: the C tier did not load.
    """
    from tinyeff.kernels import c as c_tier
    isa = _usable(isa, clock, "int8_peak_gmacs")
    if quad and isa not in ("avx2", "avx512"):
        raise ValueError(f"int8_peak_gmacs: quad=True is AVX2's two-group step; path {isa!r} has none "
                         "(use avx2 or avx512)")
    return _best_rate(lambda out: c_tier.lib().tinyeff_int8_peak(cpu.CODE[isa], int(quad), iters, out),
                      "int8_peak", repeats, clock)


def _usable(isa, clock, name):
    isa = cpu.best_path() if isa is None else isa
    if isa not in cpu.usable_paths():
        raise ValueError(f"{name}: ISA path {isa!r} cannot run here; usable: "
                         f"{', '.join(cpu.usable_paths())} (TINYEFF_CPU_FEATURES caps them)")
    if clock not in ("wall", "cpu"):
        raise ValueError(f"{name}: clock={clock!r} must be 'wall' or 'cpu'")
    return isa


def _best_rate(run, name, repeats, clock):
    """Work per second (in units of 1e9) of the fastest of ``repeats`` timed calls of ``run(out)``,
    which returns a C status and writes the work done to ``out[0]``; one untimed warm-up first."""
    from tinyeff.kernels import c as c_tier
    timer = time.perf_counter if clock == "wall" else time.process_time
    out = c_tier.ffi().new("double *")
    best = float("inf")
    for i in range(repeats + 1):
        t0 = timer()
        c_tier.check(run(out), name)
        if i:
            best = min(best, max(timer() - t0, 1e-9))
    return out[0] / best / 1e9
