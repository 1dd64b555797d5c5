"""Run-time CPU features and the ISA paths they allow: the one vocabulary every kernel uses.

An *ISA path* names a family of C bodies compiled into the same extension and chosen at run time,
never by build flags: ``portable`` (plain C, any CPU), ``avx2`` (AVX2 + FMA), ``avx512``
(AVX-512 F/BW/VL), ``avx512_vnni`` (plus VNNI), ``neon`` (ARM64 Advanced SIMD, baseline on
ARM64) and ``neon_dotprod`` (plus the ``sdot``/``udot`` instructions). Each C kernel declares
which paths it has bodies for (``registry.register(..., isa=(...))``); it runs the best one that
this CPU allows.

Detection: on x86-64 the ``flags`` line of /proc/cpuinfo; on ARM64 the kernel's HWCAP bits
(``getauxval``), never /proc/cpuinfo: qemu-user passes the host's file through, so an emulated
ARM64 process would otherwise "see" x86 flags. macOS on Apple Silicon asks ``sysctl``.

``TINYEFF_CPU_FEATURES=avx2,fma`` is a *cap*: the effective features are the detected ones
intersected with the list, so a machine with AVX-512 can run and test its AVX2 and portable
paths, and a list naming a feature the CPU lacks can never select code the CPU cannot run.
``TINYEFF_CPU_FEATURES=`` (empty) leaves only the portable path.
"""
import ctypes
import ctypes.util
import functools
import platform

from tinyeff.kernels import settings

PATHS = ("portable", "avx2", "avx512", "avx512_vnni", "neon", "neon_dotprod")
CODE = {path: code for code, path in enumerate(PATHS)}    # the C side's ``isa`` argument (tinyeff.h)

_X86_AVX512 = ("avx512f", "avx512bw", "avx512vl")
NEEDS = {
    "portable": (),
    "avx2": ("avx2", "fma"),
    "avx512": ("avx2", "fma") + _X86_AVX512,
    "avx512_vnni": ("avx2", "fma") + _X86_AVX512 + ("avx512_vnni",),
    "neon": ("asimd",),
    "neon_dotprod": ("asimd", "asimddp"),
}
FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
         "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp")

_HWCAP_ASIMD, _HWCAP_ASIMDDP = 1 << 1, 1 << 20        # linux/arch/arm64/include/uapi/asm/hwcap.h
_AT_HWCAP = 16


@functools.lru_cache(maxsize=1)
def arch():
    """``x86_64``, ``arm64`` or the machine name as Python reports it."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "x86_64"
    if machine in ("aarch64", "arm64"):
        return "arm64"
    return machine


def _x86_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _arm64_flags():
    found = {"asimd"}                                   # Advanced SIMD is part of the ARMv8-A base
    if platform.system() == "Darwin":
        value = ctypes.c_int(0)
        size = ctypes.c_size_t(ctypes.sizeof(value))
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        if libc.sysctlbyname(b"hw.optional.arm.FEAT_DotProd", ctypes.byref(value),
                             ctypes.byref(size), None, 0) == 0 and value.value:
            found.add("asimddp")
        return frozenset(found)
    try:
        getauxval = ctypes.CDLL(None).getauxval
        getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
        hwcap = int(getauxval(_AT_HWCAP))
    except (AttributeError, OSError):
        return frozenset(found)
    if hwcap & _HWCAP_ASIMDDP:
        found.add("asimddp")
    return frozenset(found)


@functools.lru_cache(maxsize=1)
def detected():
    """The features this CPU reports (before any cap), as a frozenset of flag names."""
    machine = arch()
    if machine == "x86_64":
        return _x86_flags()
    if machine == "arm64":
        return _arm64_flags()
    return frozenset()


@functools.lru_cache(maxsize=16)
def _effective(cap):
    present = detected()
    if cap is not None:
        present = present & frozenset(f.strip() for f in cap.split(",") if f.strip())
    return present


def _cap():
    return settings.env("TINYEFF_CPU_FEATURES")


def features():
    """Dict flag -> bool for the flags tinyeff's kernels care about (detected, capped)."""
    present = _effective(_cap())
    return {flag: flag in present for flag in FLAGS}


def has(flag):
    """True if the CPU has ``flag`` and the cap allows it."""
    return flag in _effective(_cap())


@functools.lru_cache(maxsize=16)
def _usable(cap, machine):
    present = _effective(cap)
    family = {"x86_64": ("avx2", "avx512", "avx512_vnni"), "arm64": ("neon", "neon_dotprod")}
    allowed = ("portable",) + family.get(machine, ())
    return tuple(p for p in PATHS if p in allowed and all(f in present for f in NEEDS[p]))


def usable_paths():
    """ISA paths this CPU can run under the cap, lowest first (``portable`` always)."""
    return _usable(_cap(), arch())


def best_path():
    """The widest usable ISA path."""
    return usable_paths()[-1]
