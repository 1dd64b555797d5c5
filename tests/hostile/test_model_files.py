"""Hostile model files: missing, a FIFO, a symlink loop, a plain .npy, headers that are not objects,
shapes that disagree with the arrays, and small files that claim gigabytes. Every one is a single
``error:`` line with exit 1 from ``tinyeff eval``, read within bounded memory."""
import json
import os
import zipfile

import numpy as np
import pytest

import bombs
from conftest import error_line
from test_data_files import RSS_LIMIT_MB, peak_rss_mb_of
from tinyeff import io, models


def eval_error(cli, path):
    code, out, err = cli("eval", path, "--data", "synthetic")
    assert code == 1, (out, err)
    return error_line(err)


def npz_with_header(path, header_bytes, arrays=None):
    np.savez(path, __header__=np.frombuffer(header_bytes, np.uint8), **(arrays or {}))
    return path


def test_missing_file(cli, tmp_path):
    assert "no such model file" in eval_error(cli, tmp_path / "nope.npz")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_fifo_is_refused_without_blocking(cli, tmp_path):
    os.mkfifo(tmp_path / "pipe.npz")
    assert "is a FIFO (named pipe), not a model file" in eval_error(cli, tmp_path / "pipe.npz")


def test_symlink_loop_says_so(cli, tmp_path):
    os.symlink(tmp_path / "b.npz", tmp_path / "a.npz")
    os.symlink(tmp_path / "a.npz", tmp_path / "b.npz")
    assert "Too many levels of symbolic links" in eval_error(cli, tmp_path / "a.npz")


def test_plain_npy_is_named(cli, tmp_path):
    np.save(tmp_path / "w.npy", np.ones(3))
    assert "is a plain .npy array, not a tinyeff model file" in eval_error(cli, tmp_path / "w.npy")


@pytest.mark.parametrize("header,kind", [(b"[1, 2]", "list"), (b"null", "null"), (b'"seed-cnn"', "string"),
                                         (b"42", "number")])
def test_header_that_is_not_an_object(cli, tmp_path, header, kind):
    path = npz_with_header(tmp_path / "m.npz", header)
    assert f"the header is a JSON {kind}, expected an object" in eval_error(cli, path)


@pytest.mark.parametrize("fields,what", [({"tensors": [1]}, "'tensors' must map names to shapes"),
                                         ({"arch": "seed-cnn"}, "'arch' must be"),
                                         ({"arch": {"name": "seed-cnn", "kwargs": []}}, "'arch' must be")])
def test_header_with_malformed_fields(cli, tmp_path, fields, what):
    path = npz_with_header(tmp_path / "m.npz", json.dumps({"kind": "float", **fields}).encode())
    assert what in eval_error(cli, path)


def test_member_shape_disagreeing_with_the_header(cli, tmp_path, model_file):
    header, arrays = io.read(model_file)
    arrays["0.weight"] = arrays["0.weight"][:1]
    io.write(tmp_path / "m.npz", header, arrays)
    assert "tensor '0.weight' is stored with shape (1," in eval_error(cli, tmp_path / "m.npz")


def test_member_whose_declared_size_lies(cli, tmp_path, model_file):
    """The zip directory claims another size than the member's .npy header implies."""
    raw = bytearray(model_file.read_bytes())
    with zipfile.ZipFile(model_file) as z:
        info = z.getinfo("0.weight.npy")
    central = raw.index(b"PK\x01\x02")                       # the central directory starts here
    start = raw.index(b"0.weight.npy", central) - 46
    assert raw[start:start + 4] == b"PK\x01\x02"               # 46-byte entry header, then the name
    raw[start + 24:start + 28] = (info.file_size + 4096).to_bytes(4, "little")
    (tmp_path / "m.npz").write_bytes(bytes(raw))
    assert f"member '0.weight' claims {info.file_size + 4096:,} bytes, its header implies" in \
        eval_error(cli, tmp_path / "m.npz")


def test_file_lacking_tensors_its_architecture_needs(cli, tmp_path, model_file):
    header, arrays = io.read(model_file)
    del arrays["0.weight"], header["tensors"]["0.weight"]
    io.write(tmp_path / "m.npz", header, arrays)
    assert "it needs tensors the file does not hold (missing ['0.weight'])" in eval_error(cli, tmp_path / "m.npz")


def width_header_file(path):
    """A model file of a few hundred bytes whose header asks for a seed CNN of width 60 (~1.2 GiB)."""
    arch = {"name": "seed-cnn", "kwargs": {**models.input_kwargs("seed-cnn", 1, 28, 10), "width": 60}}
    io.write(path, {"format_version": 1, "kind": "float", "arch": arch, "tensors": {}}, {})
    return path


def test_width_header_message(cli, tmp_path):
    line = eval_error(cli, width_header_file(tmp_path / "wide.npz"))
    assert "needs 1,327," in line and "more than the 1,073,741,824-byte limit" in line


def test_width_header_and_zip_bomb_are_refused_in_bounded_memory(tmp_path, model_file):
    """A 331-byte header asking for a width-60 seed CNN, and a 2 MB file with a member that inflates to
    2 GiB: ``tinyeff eval`` refuses both (exit 1) in one fresh interpreter whose peak RSS stays low."""
    wide = width_header_file(tmp_path / "wide.npz")
    bomb = bombs.zip_bomb_model(tmp_path / "bomb.npz", json.dumps(io.read(model_file)[0]))
    assert os.path.getsize(wide) < 600 and os.path.getsize(bomb) < 2.5 * 2**20
    out, rss_mb = peak_rss_mb_of(
        "import sys\nfrom tinyeff.cli import main\n"
        "for path in sys.argv[1:]:\n    print('EXIT', main(['eval', path, '--data', 'synthetic']))", wide, bomb)
    assert out.split() == ["EXIT", "1", "EXIT", "1"] and rss_mb < RSS_LIMIT_MB


def test_zip_bomb_model_message(cli, tmp_path, model_file):
    path = bombs.zip_bomb_model(tmp_path / "bomb.npz", json.dumps(io.read(model_file)[0]))
    assert "holds more than 1,073,741,824 bytes of arrays" in eval_error(cli, path)
