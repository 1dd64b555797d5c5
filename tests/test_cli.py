"""The command line: every subcommand is wired, and train -> eval -> resume works through main()."""
import json
import os

import pytest

from tinyeff.cli import COMMANDS, build_parser, main


def test_every_command_has_help(capsys):
    parser = build_parser()
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_info_reports_kernel_tiers(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {row["kernel"] for row in info["kernels"]} >= {"gemm_f32", "im2col_f32", "maxpool2d_f32"}
    assert all(row["tiers"]["ref"] == "ok" for row in info["kernels"] if row["kernel"].endswith("_f32"))


def test_train_eval_and_resume(tmp_path, capsys):
    out = str(tmp_path / "run")
    args = ["train", "--data", "synthetic", "--epochs", "1", "--batch-size", "128", "--out", out, "--no-progress"]
    assert main(args) == 0
    assert os.path.exists(os.path.join(out, "model.npz"))
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["config"]["epochs"] == 1
    assert main(["eval", out, "--data", "synthetic", "--plot"]) == 0
    assert os.path.exists(os.path.join(out, "confusion.png"))
    assert "per-class accuracy" in capsys.readouterr().out
    # a finished run resumed with the same settings has nothing left to do but rewrite its files
    assert main(["train", "--resume", out, "--no-progress"]) == 0
    assert json.load(open(os.path.join(out, "metrics.json")))["history"]["epoch"] == [1]


def test_train_without_out_is_a_clear_error(capsys):
    assert main(["train", "--data", "synthetic", "--epochs", "1"]) == 2
    assert "--out DIR is required" in capsys.readouterr().err
