"""Per-operation energy estimate: action counts times per-action energy from an editable profile.

For one piece of work (a layer call, a kernel, a training step)::

    E = sum_dtype MACs[dtype] * e_mac[dtype] + sum_op N_op * e_op
      + sum_level bytes[level] * e_byte[level] + static_w * time_s

``dtype`` is the arithmetic that ran, not the storage format: fp16 weights that NumPy computes in
fp32 are charged fp32 MACs and fp16 bytes. Sparse layers pay MACs only for stored nonzeros, and
their weight bytes include the index overhead (``sparse_weight_bytes``).

The default profile (``profiles/default_45nm.json``) holds Horowitz's 45 nm figures (ISSCC 2014:
fp32 MAC = 3.7 + 0.9 pJ, int8 MAC = 0.2 + 0.1 pJ, 64-bit read from 32 KB SRAM 20 pJ, 1 MB SRAM
100 pJ, DRAM 1.3-2.6 nJ), each with its source in the file's ``provenance``. They describe ALU and
SRAM physics only: a real CPU core spends far more per instruction, so uncalibrated joules are a
lower bound and only ratios mean much. ``calibrate.py`` fits effective constants for one machine.

What this file leaves out: counting MACs and bytes (``tinyeff.flops``) and measuring (``meter.py``).
"""
import copy
import json
import os
from dataclasses import dataclass, field

PROFILE_DIR = os.path.join(os.path.dirname(__file__), "profiles")
DEFAULT_PROFILE = "default_45nm"
PJ = 1e-12
SECTIONS = {
    "mac": {"fp64", "fp32", "fp16", "bf16", "int32", "int8"},
    "op": {"fp32_add", "fp32_mul", "fp32_cmp", "fp32_exp", "int32_add"},
    "byte": {"l1", "l2", "l3", "dram"},
    "sparse": {"index_bytes", "gather_factor"},
}
SCALARS = {"name", "units", "static_w", "cache_bytes", "calibrated", "provenance"}
LEVELS = ("l1", "l2", "l3", "dram")


@dataclass
class CostProfile:
    """Per-action energies (pJ) and static power (W); see the module docstring for the formula."""
    name: str
    mac: dict
    op: dict
    byte: dict
    static_w: float = 0.0
    sparse: dict = field(default_factory=lambda: {"index_bytes": 4, "gather_factor": 1.0})
    cache_bytes: dict = None      # {"l1": bytes, ...}; None -> read from sysfs
    calibrated: bool = False
    provenance: dict = field(default_factory=dict)
    units: str = "pJ per MAC, per op, per byte; static_w in watts"

    def as_dict(self):
        return {"name": self.name, "units": self.units, "mac": dict(self.mac), "op": dict(self.op),
                "byte": dict(self.byte), "static_w": self.static_w, "sparse": dict(self.sparse),
                "cache_bytes": self.cache_bytes, "calibrated": self.calibrated,
                "provenance": dict(self.provenance)}

    def save(self, path):
        """Write the profile as JSON (temp file, then rename: no half-written profile)."""
        from tinyeff import fsio
        fsio.write_json(path, self.as_dict())


def validate_profile(data, where="profile"):
    """Raise ValueError naming any unknown key or a negative/non-numeric constant in ``data``."""
    unknown = set(data) - SCALARS - set(SECTIONS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed: "
                         f"{sorted(SCALARS | set(SECTIONS))}")
    for section, allowed in SECTIONS.items():
        values = data.get(section, {})
        if not isinstance(values, dict):
            raise ValueError(f"{where}: '{section}' must be an object, got {values!r}")
        bad = set(values) - allowed
        if bad:
            raise ValueError(f"{where}: unknown {section} keys {sorted(bad)}; allowed: {sorted(allowed)}")
        for key, value in values.items():
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{where}: {section}.{key}={value!r} must be a number >= 0")
    static = data.get("static_w", 0.0)
    if not isinstance(static, (int, float)) or static < 0:
        raise ValueError(f"{where}: static_w={static!r} must be a number >= 0 (watts)")


def load_profile(name_or_path=None):
    """Load a cost profile: None or a bundled name (``default_45nm``), or a JSON file path.

    A user file may hold only the constants it changes; the rest come from the default profile.

    Raises:
        ValueError: unknown keys or bad values (a typo such as ``"fp23"`` is an error, not ignored).
        FileNotFoundError: neither a bundled name nor an existing file.
    """
    if isinstance(name_or_path, CostProfile):
        return name_or_path
    with open(os.path.join(PROFILE_DIR, f"{DEFAULT_PROFILE}.json")) as f:
        data = json.load(f)
    if name_or_path not in (None, DEFAULT_PROFILE):
        path = name_or_path
        if not os.path.exists(path):
            bundled = os.path.join(PROFILE_DIR, f"{name_or_path}.json")
            if not os.path.exists(bundled):
                raise FileNotFoundError(f"energy profile {name_or_path!r}: no such file and no bundled "
                                        f"profile of that name (bundled: {bundled_profiles()})")
            path = bundled
        with open(path) as f:
            user = json.load(f)
        validate_profile(user, where=str(path))
        data = _merge(data, user)
        data.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    validate_profile(data)
    return CostProfile(**{k: data[k] for k in data})


def bundled_profiles():
    return sorted(f[:-5] for f in os.listdir(PROFILE_DIR) if f.endswith(".json"))


def _merge(base, override):
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    if "name" not in override:
        merged.pop("name", None)
    return merged


@dataclass
class WorkCounts:
    """What a piece of work did: MACs by executed dtype, other ops, bytes moved per memory level."""
    macs: dict = field(default_factory=dict)     # {"fp32": n, "int8": n}
    ops: dict = field(default_factory=dict)      # {"fp32_add": n, ...}
    bytes: dict = field(default_factory=dict)    # {"l1": n, "l2": n, "l3": n, "dram": n}

    def __add__(self, other):
        return WorkCounts(_add(self.macs, other.macs), _add(self.ops, other.ops),
                          _add(self.bytes, other.bytes))

    def scaled(self, k):
        """The counts of ``k`` repetitions of this work."""
        return WorkCounts({d: n * k for d, n in self.macs.items()}, {o: n * k for o, n in self.ops.items()},
                          {lv: n * k for lv, n in self.bytes.items()})

    def is_empty(self):
        return not any(self.macs.values()) and not any(self.ops.values()) and not any(self.bytes.values())


def _add(a, b):
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + value
    return out


@dataclass
class EnergyEstimate:
    """Model estimate split into compute (MACs + ops), memory per level and static energy, in J."""
    compute_j: float
    memory_j: dict
    static_j: float
    profile: str
    calibrated: bool

    @property
    def total_j(self):
        return self.compute_j + sum(self.memory_j.values()) + self.static_j


def estimate(counts, profile=None, time_s=0.0):
    """Estimate the energy of ``counts`` (a WorkCounts) with ``profile`` (name, path or CostProfile).

    Args:
        counts: MACs by dtype, ops by name and bytes by level.
        profile: cost profile; default ``default_45nm``.
        time_s: wall time, charged at the profile's ``static_w``.

    Returns:
        EnergyEstimate in joules.

    Raises:
        ValueError: a dtype, op or level the profile has no constant for (add it to the profile).
    """
    p = load_profile(profile)
    compute_pj = (_charge(counts.macs, p.mac, "mac", p.name)
                  + _charge(counts.ops, p.op, "op", p.name))
    memory_j = {level: n * _constant(p.byte, level, "byte", p.name) * PJ
                for level, n in counts.bytes.items()}
    return EnergyEstimate(compute_pj * PJ, memory_j, p.static_w * time_s, p.name, p.calibrated)


def _charge(counts, table, section, name):
    return sum(n * _constant(table, key, section, name) for key, n in counts.items())


def _constant(table, key, section, name):
    if key not in table:
        raise ValueError(f"energy profile {name!r} has no {section}.{key}; add it to a profile "
                         f"JSON (known: {sorted(table)})")
    return table[key]


def sparse_weight_bytes(nnz, rows, value_bytes, index_bytes=4, ptr_bytes=4):
    """Bytes of a CSR weight: nnz values + nnz column indices + (rows + 1) row pointers."""
    return nnz * (value_bytes + index_bytes) + (rows + 1) * ptr_bytes


def gemm_l1_bytes(macs, bytes_a, bytes_b, mr=4, nr=8):
    """Operand traffic from L1 inside a register-blocked GEMM: each MAC loads a/nr + b/mr bytes.

    An mr x nr register block reuses one A element across nr columns and one B element across mr
    rows, so per MAC it reads bytes_a / nr of A and bytes_b / mr of B.
    """
    return macs * (bytes_a / nr + bytes_b / mr)


def place_bytes(tensor_bytes, cache_bytes):
    """Charge every tensor once at the smallest level whose capacity holds the whole working set.

    Args:
        tensor_bytes: sizes of the tensors the work touches (weights, input, output, buffers).
        cache_bytes: ``{"l1": capacity, "l2": ..., "l3": ...}``; missing levels are skipped.

    Returns:
        ``{level: bytes}`` with a single level.
    """
    working_set = sum(tensor_bytes)
    for level in LEVELS[:-1]:
        capacity = (cache_bytes or {}).get(level)
        if capacity and working_set <= capacity:
            return {level: working_set}
    return {"dram": working_set}


def cache_sizes(root="/", cpu=0):
    """Data/unified cache capacities ``{"l1": bytes, "l2": ..., "l3": ...}`` from sysfs ({} if absent)."""
    base = os.path.join(root, f"sys/devices/system/cpu/cpu{cpu}/cache")
    sizes = {}
    for entry in sorted(os.listdir(base)) if os.path.isdir(base) else ():
        if not entry.startswith("index"):
            continue
        try:
            level = int(_read(os.path.join(base, entry, "level")))
            kind = _read(os.path.join(base, entry, "type"))
            size = _parse_size(_read(os.path.join(base, entry, "size")))
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified") and 1 <= level <= 3:
            sizes[f"l{level}"] = size
    return sizes


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _parse_size(text):
    """``32K`` -> 32768, ``1M`` -> 1048576, ``512`` -> 512."""
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip()
    if text and text[-1].upper() in mult:
        return int(text[:-1]) * mult[text[-1].upper()]
    return int(text)
