"""Fixtures for the hostile-input tests: a small synthetic dataset, a saved model, and ``cli(argv)``,
which runs ``tinyeff.cli.main`` in process and checks the one-line error contract on every call."""
import functools

import pytest

from tinyeff import io, models
from tinyeff.data import synthetic


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No user dataset or debug setting leaks in; the synthetic dataset is small enough to train in seconds."""
    monkeypatch.setenv("TINYEFF_DATA", str(tmp_path / "env-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("TINYEFF_DEBUG", raising=False)
    monkeypatch.setattr(synthetic, "load", functools.partial(synthetic.load, n_train=96, n_test=48))


@pytest.fixture
def cli(capsys):
    """``cli(*argv) -> (exit code, stdout, stderr)``; fails on any traceback in stderr."""
    from tinyeff.cli import main

    def run(*argv):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:          # argparse's own exits (code 2 for bad usage)
            code = exc.code
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return code, out, err
    return run


def error_line(err):
    """The one ``error: ...`` line of stderr (there must be exactly one)."""
    lines = [line for line in err.splitlines() if line.startswith("error: ") or ": error: " in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def model_file(tmp_path):
    """An untrained seed CNN for 1x28x28 synthetic images, saved as tmp_path/model/model.npz."""
    model = models.create("seed-cnn", **models.input_kwargs("seed-cnn", 1, 28, 10))
    path = tmp_path / "model" / "model.npz"
    path.parent.mkdir()
    io.save(model, path)
    return path
