"""IDX reading/writing and the Fashion-MNIST loader on small files written by the tests."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from data_builders import FASHION_FILES, write_fashion
from tinyeff import data
from tinyeff.data import fashion_mnist, locate
from tinyeff.data.idx import read_idx, write_idx
from tinyeff.errors import DataFormatError


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, rng, dtype, suffix):
    x = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    write_idx(tmp_path / f"x.idx{suffix}", x)
    y = read_idx(tmp_path / f"x.idx{suffix}")
    assert y.dtype == np.dtype(dtype) and y.shape == (3, 4, 5)
    np.testing.assert_array_equal(y, x)


def test_idx_header_is_big_endian_with_magic(tmp_path):
    write_idx(tmp_path / "l.idx", np.array([1, 2, 3], dtype=np.uint8))
    assert (tmp_path / "l.idx").read_bytes() == b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x01\x02\x03"


def test_fashion_loads_from_root(tmp_path, rng):
    written = write_fashion(tmp_path / "fm", rng)
    train, test = data.load("fashion-mnist", root=tmp_path / "fm")
    assert train.images.shape == (30, 1, 28, 28) and test.images.shape == (12, 1, 28, 28)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    np.testing.assert_array_equal(train.images[:, 0], written["train"][0])
    np.testing.assert_array_equal(test.labels, written["test"][1])
    assert train.classes[9] == "Ankle boot" and train.source == str(tmp_path / "fm")


def test_fashion_found_under_root_subdirectory_and_uncompressed(tmp_path, rng):
    written = write_fashion(tmp_path / "fashion-mnist", rng)
    for name in FASHION_FILES:  # replace each .gz by its uncompressed twin
        gz = tmp_path / "fashion-mnist" / name
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    train, _ = data.load("fashion-mnist", root=tmp_path)
    np.testing.assert_array_equal(train.labels, written["train"][1])


def test_fashion_found_via_env_var(tmp_path, rng, monkeypatch):
    write_fashion(tmp_path / "envroot" / "fashion-mnist", rng)
    monkeypatch.setenv("TINYEFF_DATA", str(tmp_path / "envroot"))
    train, _ = data.load("fashion-mnist")
    assert len(train) == 30


def test_fashion_missing_names_searched_dirs_and_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(locate, "SYSTEM_DIR", tmp_path / "no-system")
    with pytest.raises(FileNotFoundError, match="download=True") as err:
        data.load("fashion-mnist", root=tmp_path / "empty")
    assert str(tmp_path / "empty") in str(err.value)


def test_fashion_truncated_images_names_file(tmp_path, rng):
    write_fashion(tmp_path, rng)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte.gz: truncated \(23,436 of 23,536 bytes"):
        data.load("fashion-mnist", root=tmp_path)


def test_fashion_truncated_gzip_stream(tmp_path, rng):
    write_fashion(tmp_path, rng)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataFormatError, match="t10k-images-idx3-ubyte.gz: the gzip stream is damaged or truncated"):
        data.load("fashion-mnist", root=tmp_path)


def test_fashion_bad_magic(tmp_path, rng):
    write_fashion(tmp_path, rng)
    # a labels file where the images should be: valid IDX, wrong magic
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros(30, dtype=np.uint8))
    expected = r"train-images-idx3-ubyte.gz: bad magic number 0x00000801 \(expected 0x00000803"
    with pytest.raises(DataFormatError, match=expected):
        data.load("fashion-mnist", root=tmp_path)


def test_fashion_label_out_of_range(tmp_path, rng):
    write_fashion(tmp_path, rng)
    labels = np.zeros(12, dtype=np.uint8)
    labels[7] = 10
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DataFormatError, match="t10k-labels-idx1-ubyte.gz: label 10 at index 7 is outside 0..9"):
        data.load("fashion-mnist", root=tmp_path)


def test_fashion_label_count_mismatch(tmp_path, rng):
    write_fashion(tmp_path, rng)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(29, dtype=np.uint8))
    with pytest.raises(DataFormatError, match="train-labels-idx1-ubyte.gz: 29 labels for 30 images"):
        data.load("fashion-mnist", root=tmp_path)


def test_fashion_wrong_image_size(tmp_path, rng):
    write_fashion(tmp_path, rng)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((30, 32, 32), dtype=np.uint8))
    with pytest.raises(DataFormatError, match="images are 32x32"):
        data.load("fashion-mnist", root=tmp_path)


def test_full_fashion_mnist_counts():
    system = Path("/usr/share/datasets/fashion-mnist")
    if not (system / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"{system} absent: install the Debian package dataset-fashion-mnist to run this test")
    train, test = fashion_mnist.load(root=system)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(train.labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test.labels), [1000] * 10)
