"""Run-time CPU feature detection (Linux /proc/cpuinfo): kernels pick AVX-512/VNNI/AMX paths here,
never from build-time assumptions. ``TINYEFF_CPU_FEATURES=avx2,avx512f`` overrides for tests."""
import functools
import os

FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
         "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")


@functools.lru_cache(maxsize=1)
def _cpuinfo_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def features():
    """Dict flag -> bool for the flags tinyeff's kernels care about."""
    override = os.environ.get("TINYEFF_CPU_FEATURES")
    present = frozenset(override.split(",")) if override is not None else _cpuinfo_flags()
    return {flag: flag in present for flag in FLAGS}


def has(flag):
    """True if the CPU (or the override) has ``flag``."""
    return features().get(flag, False)
