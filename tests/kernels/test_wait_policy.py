"""The OpenMP wait policy: passive unless the user set one, and a warning when PyTorch's libgomp
(spinning by default) was loaded first, since the C extension then shares it."""
import os
import subprocess
import sys

import pytest

FAKE_TORCH_FIRST = "import sys, types; sys.modules['torch'] = types.ModuleType('torch'); import tinyeff"
TINYEFF_FIRST = "import tinyeff, os; assert os.environ['OMP_WAIT_POLICY'] == 'PASSIVE'"


def _run(code, **env):
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    try:
        return subprocess.run([sys.executable, "-c", code], env=dict(base, **env), capture_output=True,
                              text=True, timeout=120)
    except OSError as e:    # ENOEXEC: an interpreter emulated by qemu-user, with no binfmt_misc entry
        pytest.skip(f"cannot start a child interpreter ({sys.executable}: {e.strerror}); the wait-policy "
                    "check needs one, so run it natively")


def test_torch_imported_first_warns_with_the_fix():
    result = _run(FAKE_TORCH_FIRST)
    assert result.returncode == 0, result.stderr
    assert "PyTorch was imported first" in result.stderr and "OMP_WAIT_POLICY=PASSIVE" in result.stderr


@pytest.mark.parametrize("code,env", [(FAKE_TORCH_FIRST, {"OMP_WAIT_POLICY": "PASSIVE"}),
                                      (TINYEFF_FIRST, {})])
def test_no_warning_when_the_policy_is_set_or_tinyeff_comes_first(code, env):
    result = _run(code, **env)
    assert result.returncode == 0, result.stderr
    assert "PyTorch was imported first" not in result.stderr
