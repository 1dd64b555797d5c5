"""Bad numbers and names on the command line: argparse's usage error or one ``error:`` line, never a
traceback, never exit 0, and no output directory left behind."""
import pytest

from conftest import error_line

BAD_NUMBERS = [
    ("train", "--epochs", "0"), ("train", "--batch-size", "0"), ("train", "--lr", "nan"), ("train", "--lr", "inf"),
    ("train", "--lr", "-1"), ("train", "--width", "0"), ("train", "--weight-decay", "-0.1"),
    ("distill", "--alpha", "1.5"), ("distill", "--temperature", "0"), ("distill", "--batch-size", "0"),
    ("prune", "--sparsity", "1.5"), ("prune", "--batch-size", "0"), ("prune", "--lr", "nan"),
    ("quantize", "--batch-size", "0"), ("quantize", "--calibration-images", "0"),
    ("compare", "--epochs", "0"), ("compare", "--sparsity", "-0.1"), ("compare", "--batch-size", "0"),
    ("demo", "--epochs", "0"), ("eval", "--batch-size", "0"), ("flops", "--batch", "0"),
    ("sensitivity", "--sparsities", "2"),
]
NEEDS_MODEL = {"distill": ["--teacher"], "prune": [None], "quantize": [None], "eval": [None],
               "flops": [None], "sensitivity": [None]}


@pytest.mark.parametrize("command,flag,value", BAD_NUMBERS)
def test_bad_number_is_a_usage_error(cli, tmp_path, model_file, command, flag, value):
    out_dir = tmp_path / "out"
    argv = [command]
    for opt in NEEDS_MODEL.get(command, []):
        argv += [opt, model_file] if opt else [model_file]
    argv += [flag, value]
    if command not in ("eval", "flops"):
        argv += ["--out", out_dir]
    code, _, err = cli(*argv)
    assert code == 2
    assert f"argument {flag}: must be" in err and value in err
    assert not out_dir.exists()


def test_unknown_model_name(cli, tmp_path):
    code, _, err = cli("train", "--model", "resnet9000", "--data", "synthetic", "--epochs", "1", "--out", tmp_path / "o")
    assert code == 2 and "unknown model 'resnet9000'" in error_line(err)
    assert not (tmp_path / "o").exists()


def test_unknown_variant(cli, tmp_path):
    code, _, err = cli("compare", "--variants", "baseline,zipped", "--out", tmp_path / "o")
    assert code == 2 and "unknown variant 'zipped'" in error_line(err)
    assert not (tmp_path / "o").exists()


def test_unknown_augmentation_writes_nothing(cli, tmp_path):
    code, _, err = cli("train", "--data", "synthetic", "--augment", "rotate", "--out", tmp_path / "o")
    assert code == 2 and "unknown augmentation 'rotate'" in error_line(err)
    assert not (tmp_path / "o").exists()


def test_width_multiplier_must_be_positive(cli, tmp_path):
    code, _, err = cli("train", "--model", "resnet8", "--width", "0", "--data", "synthetic", "--out", tmp_path / "o")
    assert code == 2 and "--width" in err
    assert not (tmp_path / "o").exists()


def test_shortcut_knob_on_a_model_without_shortcuts(cli, tmp_path):
    code, _, err = cli("train", "--model", "mlp", "--no-shortcut", "--data", "synthetic", "--out", tmp_path / "o")
    assert code == 2 and "shortcut" in error_line(err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("nm", ["0:0", "3:2", "a:b", "2"])
def test_prune_bad_nm_pattern(cli, tmp_path, model_file, nm):
    code, _, err = cli("prune", model_file, "--data", "synthetic", "--method", "nm", "--nm", nm, "--out", tmp_path / "o")
    assert code == 2 and "--nm" in error_line(err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("shape", ["0x28x28", "1x28", "1x-2x28", "axbxc"])
def test_flops_bad_input_shape(cli, shape):
    code, _, err = cli("flops", "seed-cnn", "--input", shape)
    assert code == 2 and "--input" in error_line(err)


def test_flops_unknown_name_and_no_such_file(cli):
    code, _, err = cli("flops", "no-such-model.npz")
    assert code == 2 and "not a model name" in error_line(err)


def test_quantize_dynamic_on_a_cnn_names_the_modes_that_work(cli, tmp_path, model_file):
    code, _, err = cli("quantize", model_file, "--data", "synthetic", "--mode", "dynamic", "--out", tmp_path / "q")
    assert code == 2 and "--mode static" in error_line(err)
    assert not (tmp_path / "q").exists()


def test_debug_flag_shows_the_traceback(capsys, tmp_path):
    from tinyeff.cli import main
    assert main(["--debug", "train", "--model", "nope", "--data", "synthetic", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("error: unknown model 'nope'; choose one of: " +
                                                          err.rstrip().split("choose one of: ")[-1])
