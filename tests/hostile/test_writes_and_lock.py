"""One writer per output directory, and no half-written file: a second run on the same ``--out`` is
refused with the holder's pid, a failed write (full disk) leaves the old file or none, and the
temporary files of a killed run are removed by the next run."""
import errno
import json
import os
import subprocess
import sys

import pytest

from conftest import error_line
from tinyeff import fsio, outdir
from tinyeff.errors import NonFiniteResult


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_writer_on_one_out_is_refused(cli, tmp_path):
    out = tmp_path / "run"
    with outdir.locked(out):                           # the first run, still going
        code, _, err = cli("train", "--data", "synthetic", "--epochs", "1", "--out", out, "--no-progress")
        assert sorted(os.listdir(out)) == [".lock", ".lock.pid"]     # the refused run wrote nothing
    assert code == 1
    assert f"{out} is in use by pid {os.getpid()}" in error_line(err)


def test_lock_is_released_after_the_run(tmp_path):
    with outdir.locked(tmp_path / "d"):
        pass
    with outdir.locked(tmp_path / "d"):                # would raise OutputDirBusy if still held
        pass


def test_lock_is_refused_across_processes(tmp_path):
    code = ("import sys; from tinyeff import outdir\n"
            "try:\n    outdir.locked(sys.argv[1]).__enter__()\n"
            "except Exception as e:\n    print(e); sys.exit(1)\n")
    with outdir.locked(tmp_path / "d"):
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert done.returncode == 1 and f"in use by pid {os.getpid()}" in done.stdout


def test_stale_temp_files_of_a_killed_run_are_removed(tmp_path):
    out = tmp_path / "d"
    (out / "models").mkdir(parents=True)
    stale = [out / f"{fsio.TMP_PREFIX}{dead_pid()}-abc-model.npz", out / "models" / ".tmp-x1y2.npz"]
    live = out / f"{fsio.TMP_PREFIX}{os.getpid()}-def-metrics.json"
    for path in stale + [live]:
        path.write_bytes(b"partial")
    with outdir.locked(out):
        assert not any(p.exists() for p in stale)
        assert live.exists()                            # a live writer's temp is never pulled away


def test_full_disk_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    fsio.write_json(target, {"accuracy": 0.5})

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(fsio.os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left") as info:
        fsio.write_json(target, {"accuracy": 0.9})
    assert info.value.filename == str(target)
    assert json.loads(target.read_text()) == {"accuracy": 0.5}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_full_disk_in_a_command_is_one_line_exit_1(cli, tmp_path, model_file, monkeypatch):
    real_fsync = os.fsync

    def no_space_for_results(fd):                   # the disk fills up when the results are written
        if "sensitivity" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to tell which file is being written (Linux)")
    monkeypatch.setattr(fsio.os, "fsync", no_space_for_results)
    code, _, err = cli("sensitivity", model_file, "--data", "synthetic", "--sparsities", "0.5", "--out", tmp_path / "s")
    assert code == 1
    assert error_line(err).startswith("error: No space left on device: ")
    assert not (tmp_path / "s").exists()            # nothing half-written, not even an empty directory


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_json_refuses_non_finite_numbers(tmp_path, value):
    with pytest.raises(NonFiniteResult, match="non-finite"):
        fsio.write_json(tmp_path / "m.json", {"loss": value})
    assert not os.listdir(tmp_path)


def test_atomic_write_of_npz_round_trips(tmp_path, rng):
    import numpy as np
    x = rng.standard_normal((3, 4)).astype(np.float32)
    fsio.savez(tmp_path / "a.npz", {"x": x})
    with np.load(tmp_path / "a.npz", allow_pickle=False) as f:
        np.testing.assert_array_equal(f["x"], x)
    assert os.listdir(tmp_path) == ["a.npz"]
