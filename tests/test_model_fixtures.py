"""Every kind of model file tinyeff writes still loads and computes what it computed when written.

The files in tests/fixtures/models/ were written by scripts/make_model_fixtures.py (float, pruned,
thinned, int8 static / sparse / dynamic / QAT, float16 and bfloat16 storage); beside each,
``<name>.expected.npz`` holds its logits on a fixed input, its accuracy on the default synthetic
test split and its FLOP totals. They are read here through ``tinyeff.io`` and through the commands
that take a model file: ``eval``, ``flops``, ``compare --baseline`` and ``quantize``.
"""
import json
import os

import numpy as np
import pytest

from tinyeff import io, train
from tinyeff.cli import main
from tinyeff.quant.convert import QuantizedModel

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "models")
NAMES = sorted(f[:-len(".expected.npz")] for f in os.listdir(FIXTURES) if f.endswith(".expected.npz"))
# the slower commands (compare takes ~4 s) run these by default and every fixture under -m slow
DEFAULT_RUN = {"quantize": ("float_seed_cnn", "pruned_channel", "thinned", "lowprec_bfloat16"),
               "compare": ("pruned_channel", "thinned")}


def _path(name):
    return os.path.join(FIXTURES, f"{name}.npz")


def _expected(name):
    with np.load(os.path.join(FIXTURES, f"{name}.expected.npz"), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _is_int8(name):
    return name.startswith("int8_")


def _params(names, test):
    return [n if n in DEFAULT_RUN[test] else pytest.param(n, marks=pytest.mark.slow) for n in names]


def test_every_kind_has_a_fixture():
    kinds = {io.read(_path(n))[0]["kind"] for n in NAMES}
    assert kinds == {"float", "pruned", "thinned", "quantized", "lowprec"}


@pytest.mark.parametrize("name", NAMES)
def test_fixture_gives_the_saved_logits(name):
    expected = _expected(name)
    logits = train.predict(io.load(_path(name)), expected["images"])
    if _is_int8(name):
        np.testing.assert_array_equal(logits, expected["logits"])    # integer kernels are bit-exact
    else:  # float kernels may sum in another order (tier, ISA path, blocking)
        np.testing.assert_allclose(logits, expected["logits"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_cli_eval_reads_every_kind(name, capsys):
    assert main(["eval", _path(name), "--data", "synthetic", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == pytest.approx(float(_expected(name)["accuracy"]), abs=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_cli_flops_reads_every_kind(name, capsys):
    assert main(["flops", _path(name), "--input", "1x28x28", "--json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    expected = _expected(name)
    for key in ("macs", "macs_effective", "params", "params_nonzero"):
        assert totals[key] == int(expected[key]), key


@pytest.mark.parametrize("name", _params(NAMES, "compare"))
def test_cli_compare_baseline_reads_every_kind(name, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--baseline", _path(name), "--data", "synthetic", "--variants", "baseline",
                 "--out", str(out), "--no-progress"]) == 0
    row = json.loads((out / "results.json").read_text())["rows"][0]
    assert row["accuracy"] == pytest.approx(float(_expected(name)["accuracy"]), abs=1e-9)
    saved = io.load(out / row["model_file"])             # the baseline file compare writes reads back
    logits = train.predict(saved, _expected(name)["images"])
    np.testing.assert_allclose(logits, _expected(name)["logits"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", _params([n for n in NAMES if not _is_int8(n)], "quantize"))
def test_cli_quantize_reads_every_float_kind(name, tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["quantize", _path(name), "--data", "synthetic", "--calibration-images", "32", "--repeats", "1",
                 "--out", str(out)]) == 0
    assert isinstance(io.load(out / "model.npz"), QuantizedModel)
    for precision in ("float16", "bfloat16"):      # the 16-bit copies of this kind read back too
        logits = train.predict(io.load(out / f"{precision}.npz"), _expected(name)["images"])
        assert logits.shape == _expected(name)["logits"].shape and np.isfinite(logits).all()


def test_cli_quantize_refuses_an_int8_model(tmp_path, capsys):
    assert main(["quantize", _path("int8_static_per_channel"), "--data", "synthetic",
                 "--out", str(tmp_path / "q")]) == 1
    assert "holds a quantized model, but a float or pruned or thinned or lowprec" in capsys.readouterr().err


def test_compare_refuses_to_derive_variants_from_an_int8_baseline(tmp_path, capsys):
    assert main(["compare", "--baseline", _path("int8_static_per_channel"), "--data", "synthetic",
                 "--variants", "baseline,quantized", "--out", str(tmp_path / "cmp"), "--no-progress"]) == 2
    assert "holds a quantized model, which variants ['quantized'] cannot start" in capsys.readouterr().err
