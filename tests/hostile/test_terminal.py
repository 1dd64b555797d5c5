"""The terminal: progress bars only on a terminal, one log line per epoch otherwise, ``--no-progress``
on every long command, and warnings as one clean line (no source file, no code snippet)."""
import io
import warnings

import pytest

from tinyeff.cli import build_parser
from tinyeff.cli.common import show_progress

LONG_COMMANDS = ("train", "distill", "prune", "quantize", "compare", "demo")


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("command", LONG_COMMANDS)
def test_every_long_command_has_no_progress(command):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    assert any("--no-progress" in a.option_strings for a in sub._actions)


def test_progress_bar_only_when_stderr_is_a_terminal(monkeypatch):
    class Args:
        no_progress = False
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not show_progress(Args())
    monkeypatch.setattr("sys.stderr", FakeTTY())
    assert show_progress(Args())
    Args.no_progress = True
    assert not show_progress(Args())


def test_train_piped_to_a_file_logs_one_line_per_epoch(cli, tmp_path):
    code, out, err = cli("train", "--data", "synthetic", "--epochs", "2", "--batch-size", "32", "--out", tmp_path / "r")
    assert code == 0
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert "\r" not in out + err and len((out + err).encode()) < 4096


def test_prune_piped_to_a_file_is_short(cli, tmp_path, model_file):
    code, out, err = cli("prune", model_file, "--data", "synthetic", "--finetune-epochs", "2", "--batch-size", "32",
                         "--out", tmp_path / "p")
    assert code == 0
    assert "\r" not in out + err and len((out + err).encode()) < 4096


def test_a_warning_is_one_clean_line(cli, monkeypatch):
    def noisy(args):
        warnings.warn("energy counter froze;\n    falling back to the model", RuntimeWarning)
        return 0
    monkeypatch.setattr("tinyeff.cli.info.run", noisy)
    monkeypatch.setattr("tinyeff.cli.info.register",
                        lambda sub: sub.add_parser("info").set_defaults(func=noisy))
    code, _, err = cli("info")
    assert code == 0
    assert err == "warning: energy counter froze; falling back to the model\n"
