"""``tinyeff info``: versions, CPU features, and which kernel tier runs each kernel (and why not others)."""
import json
import os
import platform

import numpy as np


def register(subparsers):
    p = subparsers.add_parser("info", help="show kernel tiers, CPU features and energy meters")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def collect():
    """Everything ``tinyeff info`` shows, as a dict."""
    from tinyeff import kernels
    from tinyeff.kernels import c as c_tier
    from tinyeff.kernels import cpu
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "arch": cpu.arch(),
        "cpu_features": cpu.features(),
        "cpu_cap": os.environ.get("TINYEFF_CPU_FEATURES"),
        "isa_paths": cpu.usable_paths(),
        "isa_built": c_tier.isa_built() if c_tier.load_error() is None else (),
        "kernels": kernels.report(),
        "c_code_paths": c_tier.code_paths(),
    }
    try:
        from tinyeff.energy import probe
        info["energy"] = probe.probe_all()
    except ImportError as exc:  # energy package not installed in this build
        info["energy"] = {"error": str(exc)}
    return info


def run(args):
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"python {info['python']}, numpy {info['numpy']}")
    flags = [k for k, v in info["cpu_features"].items() if v]
    print(f"CPU features used by kernels: {', '.join(flags) or 'none detected'}"
          + (" (capped by TINYEFF_CPU_FEATURES)" if info["cpu_cap"] is not None else ""))
    print(f"ISA paths this CPU runs: {', '.join(info['isa_paths'])} ({info['arch']}; built: "
          f"{', '.join(info['isa_built']) or 'C tier off'})")
    for line in info["c_code_paths"]:
        print(line)
    width = max([26] + [len(row["kernel"]) + 2 for row in info["kernels"]])     # the longest name, a gap
    print(f"\n{'kernel':<{width + 2}}{'tier':<8}{'ISA path':<14}why other tiers are off")
    for row in info["kernels"]:
        off = "; ".join(f"{t}: {r}" for t, r in row["tiers"].items() if r != "ok" and t != row["active"])
        print(f"  {row['kernel']:<{width}}{row['active']:<8}{row['isa'] or '-':<14}{off}")
    energy = info["energy"]
    print("\nenergy meters:")
    if isinstance(energy, dict) and "error" in energy:
        print(f"  unavailable: {energy['error']}")
    else:
        for line in energy.get("lines", []) if isinstance(energy, dict) else energy:
            print(f"  {line}")
    return 0
