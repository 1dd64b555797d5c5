"""Which energy meters work on this machine, and why the others do not.

``probe_all()`` is what ``tinyeff info`` and ``tinyeff energy probe`` show: every backend
(powercap RAPL, perf events, MSRs, NVML) is discovered and liveness-checked, and the result says
which one ``EnergyMeter("auto")`` would use, or that figures will be model estimates.
"""
from tinyeff.energy import base
from tinyeff.energy.meter import AUTO_ORDER, make_backends
from tinyeff.energy.model import load_profile

ALL_BACKENDS = AUTO_ORDER + ("nvml",)


def probe_all(root="/", liveness_s=0.2, backends=None, include_dram=False, prefer_psys=False):
    """Probe every backend; return a JSON-able dict.

    Args:
        root: file-system root for sysfs/dev/proc paths.
        liveness_s: busy-loop length of each liveness check (only for counters that exist).
        backends: Backend objects to probe instead of the real ones (tests).

    Returns:
        ``{"lines": [one human-readable string per backend, then a summary],
        "backends": [ProbeResult.as_dict()...], "active": name or "model", "estimated": bool}``.
    """
    if backends is None:
        backends = make_backends(ALL_BACKENDS, root, include_dram, prefer_psys)
    results = []
    for backend in backends:
        results.append(base.probe(backend, liveness_s))
        backend.close()
    cpu = [r for r in results if r.ok and r.backend in AUTO_ORDER]
    active = cpu[0].backend if cpu else "model"
    lines = [r.line() for r in results]
    for r in results:
        lines.extend(f"        note: {n}" for n in r.notes)
    if cpu:
        lines.append(f"EnergyMeter('auto') measures with {active}.")
    else:
        profile = load_profile()
        lines.append(f"No usable energy counter here: every energy figure will be ESTIMATED by the "
                     f"model '{profile.name}' ({'calibrated' if profile.calibrated else 'uncalibrated'}"
                     f" per-operation constants), labelled source=model, never shown as measured.")
    return {"lines": lines, "backends": [r.as_dict() for r in results], "active": active,
            "estimated": not cpu}
