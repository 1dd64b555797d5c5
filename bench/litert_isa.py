"""Cap LiteRT's XNNPACK to the AVX2 level (x86-64-v3) on a machine with more, for a like-for-like
comparison with tinyeff's AVX2 path.

PyTorch takes environment variables for this (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, ...);
XNNPACK has none. It picks its kernels from the `cpuinfo` library's table of detected features
(`cpuinfo_isa`, one bool per feature), read once, when the first XNNPACK delegate is made. The
ai-edge-litert wheel links cpuinfo into ``libpywrap_litert_common.so`` and keeps its symbol table, so
this module runs cpuinfo's own detection, then clears the features an AVX2 machine lacks (AVX-512,
AVX-VNNI, AMX, GFNI, VAES, VPCLMULQDQ) in that table, before any interpreter exists. XNNPACK and ruy
(TFLite's built-in kernels) then choose what they would choose on an AVX2 + FMA machine.

The table's layout changes between cpuinfo releases, so nothing is written unless the table read
back matches this CPU: every feature below that Linux also reports in /proc/cpuinfo must agree, and
the bytes after the layout's end must not look like more bools. Otherwise ``cap_avx2`` raises
``CapError`` naming what disagreed, and the caller runs LiteRT uncapped and says so.

This edits another library's memory, so it is a bench-only tool (never imported by tinyeff).
"""
import ctypes
import os
import subprocess

LIBRARY = "libpywrap_litert_common.so"

# struct cpuinfo_x86_isa for x86-64, in declaration order (pytorch/cpuinfo include/cpuinfo.h,
# 2024-2026 releases), each with the /proc/cpuinfo flag Linux reports for it ("" where none).
LAYOUT = [
    ("rdtscp", "rdtscp"), ("rdpid", "rdpid"), ("sysenter", ""), ("msr", ""), ("clzero", "clzero"),
    ("clflush", "clflush"), ("clflushopt", "clflushopt"), ("mwait", ""), ("mwaitx", ""),
    ("fxsave", ""), ("xsave", ""), ("three_d_now", "3dnow"), ("three_d_now_plus", "3dnowext"),
    ("prefetch", ""), ("prefetchw", ""), ("prefetchwt1", ""), ("sse3", "pni"), ("ssse3", "ssse3"),
    ("sse4_1", "sse4_1"), ("sse4_2", "sse4_2"), ("sse4a", "sse4a"), ("misaligned_sse", "misalignsse"),
    ("avx", "avx"), ("avxvnni", "avx_vnni"), ("fma3", "fma"), ("fma4", "fma4"), ("xop", "xop"),
    ("f16c", "f16c"), ("avx2", "avx2"), ("avx512f", "avx512f"), ("avx512pf", "avx512pf"),
    ("avx512er", "avx512er"), ("avx512cd", "avx512cd"), ("avx512dq", "avx512dq"),
    ("avx512bw", "avx512bw"), ("avx512vl", "avx512vl"), ("avx512ifma", "avx512ifma"),
    ("avx512vbmi", "avx512vbmi"), ("avx512vbmi2", "avx512_vbmi2"), ("avx512bitalg", "avx512_bitalg"),
    ("avx512vpopcntdq", "avx512_vpopcntdq"), ("avx512vnni", "avx512_vnni"), ("avx512bf16", "avx512_bf16"),
    ("avx512fp16", "avx512_fp16"), ("avx512vp2intersect", "avx512_vp2intersect"),
    ("avx512_4vnniw", "avx512_4vnniw"), ("avx512_4fmaps", "avx512_4fmaps"), ("avx10_1", ""),
    ("avx10_2", ""), ("amx_bf16", "amx_bf16"), ("amx_tile", "amx_tile"), ("amx_int8", "amx_int8"),
    ("amx_fp16", "amx_fp16"), ("amx_fp8", ""), ("avx_vnni_int8", "avx_vnni_int8"),
    ("avx_vnni_int16", "avx_vnni_int16"), ("avx_ne_convert", "avx_ne_convert"), ("hle", "hle"),
    ("rtm", "rtm"), ("xtest", ""), ("mpx", "mpx"), ("cmpxchg16b", "cx16"), ("clwb", "clwb"),
    ("movbe", "movbe"), ("lahf_sahf", "lahf_lm"), ("fs_gs_base", "fsgsbase"), ("lzcnt", "abm"),
    ("popcnt", "popcnt"), ("tbm", "tbm"), ("bmi", "bmi1"), ("bmi2", "bmi2"), ("adx", "adx"),
    ("aes", "aes"), ("vaes", "vaes"), ("pclmulqdq", "pclmulqdq"), ("vpclmulqdq", "vpclmulqdq"),
    ("gfni", "gfni"), ("rdrand", "rdrand"), ("rdseed", "rdseed"), ("sha", "sha_ni"), ("rng", ""),
    ("ace", ""), ("ace2", ""), ("phe", ""), ("pmm", ""), ("lwp", "lwp")]

# What an AVX2 + FMA machine (Haswell, Zen 1-3: x86-64-v3) does not have.
ABOVE_AVX2 = {name for name, _ in LAYOUT
              if name.startswith(("avx512", "avx10", "amx", "avx_vnni", "avx_ne"))} \
    | {"avxvnni", "gfni", "vaes", "vpclmulqdq"}


class CapError(RuntimeError):
    """The feature table could not be found or did not match this CPU; nothing was written."""


def _symbols(path):
    """Symbol name -> address in the file, from ``nm`` (static symbols: cpuinfo's are not exported)."""
    try:
        out = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise CapError(f"cannot read the symbols of {path} ({err}); install binutils") from None
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            table[parts[2]] = int(parts[0], 16)
    return table


def _load_bias(handle, path, symbols):
    """Where the library was loaded: an exported function's address minus its address in the file."""
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "T" and parts[2] in symbols:
            return ctypes.cast(getattr(handle, parts[2]), ctypes.c_void_p).value - symbols[parts[2]]
    raise CapError(f"{path} exports no function to locate it by")


def check_layout(table, flags):
    """Names of the features whose bool in ``table`` (bytes) disagrees with the /proc/cpuinfo
    ``flags`` (a set), plus a note when the table is not bools where the layout says it is."""
    wrong = [name for (name, flag), value in zip(LAYOUT, table) if flag and bool(value) != (flag in flags)]
    if len(table) < len(LAYOUT) or any(v > 1 for v in table[:len(LAYOUT)]):
        wrong.append("(not a table of bools of the expected length)")
    return wrong


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    raise CapError("/proc/cpuinfo lists no flags")


def cap_avx2():
    """Clear every feature above AVX2 in LiteRT's cpuinfo table. Call before the first Interpreter
    of the process (XNNPACK reads the table once). Returns the names cleared that the CPU has."""
    import ai_edge_litert
    path = os.path.join(os.path.dirname(ai_edge_litert.__file__), LIBRARY)
    symbols = _symbols(path)
    if "cpuinfo_isa" not in symbols or "cpuinfo_initialize" not in symbols:
        raise CapError(f"{path} has no cpuinfo symbols (a stripped or different build)")
    handle = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    bias = _load_bias(handle, path, symbols)
    if not ctypes.CFUNCTYPE(ctypes.c_bool)(bias + symbols["cpuinfo_initialize"])():
        raise CapError("cpuinfo_initialize failed")
    table = (ctypes.c_uint8 * len(LAYOUT)).from_address(bias + symbols["cpuinfo_isa"])
    flags = cpu_flags()
    wrong = check_layout(bytes(table), flags)
    if wrong:
        raise CapError("LiteRT's cpuinfo table does not match this CPU at " + ", ".join(wrong[:6]))
    cleared = []
    for i, (name, _) in enumerate(LAYOUT):
        if name in ABOVE_AVX2 and table[i]:
            table[i] = 0
            cleared.append(name)
    return cleared
