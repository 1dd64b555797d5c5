"""Attribution arithmetic with fake /proc trees (spec §6: 18)."""
import os

import pytest

from tinyeff.energy.attribution import CpuShare, CpuShareTracker, attribute
from tinyeff.energy.meter import Measurement


def write_proc(root, busy, proc_ticks, n_cpus=2):
    os.makedirs(os.path.join(root, "proc/self"), exist_ok=True)
    user, system = busy // 2, busy - busy // 2
    lines = [f"cpu  {user} 0 {system} 5000 7 0 0 3 0 0"]   # idle 5000, iowait 7, steal 3: not busy
    lines += [f"cpu{i} 0 0 0 0 0 0 0 0 0 0" for i in range(n_cpus)]
    with open(os.path.join(root, "proc/stat"), "w") as f:
        f.write("\n".join(lines) + "\nintr 0\n")
    utime, stime = proc_ticks // 2, proc_ticks - proc_ticks // 2
    fields = ["S"] + ["0"] * 10 + [str(utime), str(stime), "0", "0"] + ["0"] * 30
    with open(os.path.join(root, "proc/self/stat"), "w") as f:
        f.write("4242 (python (odd) name) " + " ".join(fields) + "\n")


def test_share_is_process_ticks_over_busy_ticks(tmp_path):
    root = str(tmp_path)
    write_proc(root, busy=1000, proc_ticks=100)
    tracker = CpuShareTracker(root, clock_ticks=100).start()
    write_proc(root, busy=1400, proc_ticks=200)     # 100 of 400 busy ticks were ours
    with pytest.warns(RuntimeWarning, match="other processes used 75%"):
        share = tracker.stop()
    assert share.share == 0.25
    assert (share.proc_cpu_s, share.system_busy_s, share.n_cpus) == (1.0, 4.0, 2)


def test_attributed_energy_formula():
    gross = Measurement(10.0, 2.0, "rapl", label="measured(rapl: package-0)", idle_j=4.0)
    share = CpuShare(proc_cpu_s=1.0, system_busy_s=4.0, share=0.25, n_cpus=2)
    r = attribute(gross, share)
    # (10 - 4) * 0.25 + 4 * 1.0 / (2.0 * 2) = 1.5 + 1.0
    assert r.energy_j == 2.5
    assert r.source == "attributed" and r.kind == "attributed"
    assert str(r).startswith("ATTRIBUTED")


def test_share_clamped_to_one():
    gross = Measurement(8.0, 1.0, "rapl")
    r = attribute(gross, CpuShare(3.0, 2.0, 1.5, 4))
    assert r.energy_j == 8.0


def test_attributing_an_estimate_is_refused():
    with pytest.raises(ValueError, match="needs a measured figure"):
        attribute(Measurement(1.0, 1.0, "model"), CpuShare(1, 1, 1, 1))
