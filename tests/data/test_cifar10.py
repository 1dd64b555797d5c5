"""CIFAR-10 in both official formats, from archives and extracted directories built byte for byte."""
import pickle

import numpy as np
import pytest

from data_builders import (CIFAR_CLASSES, cifar_batches, cifar_binary_files, cifar_python_files,
                           expected_arrays, tar_bytes, write_dir)
from tinyeff import data
from tinyeff.data import cifar10
from tinyeff.errors import DataFormatError

LAYOUT = {"binary": ("cifar-10-batches-bin", "cifar-10-binary.tar.gz", cifar_binary_files),
          "python": ("cifar-10-batches-py", "cifar-10-python.tar.gz", cifar_python_files)}


def _install(tmp_path, fmt, archive, batches, files=None):
    dirname, archive_name, build = LAYOUT[fmt]
    files = build(batches) if files is None else files
    if archive:
        (tmp_path / archive_name).write_bytes(tar_bytes(dirname, files))
    else:
        write_dir(tmp_path, dirname, files)


@pytest.mark.parametrize("fmt", ["binary", "python"])
@pytest.mark.parametrize("archive", [True, False], ids=["tarball", "extracted"])
def test_cifar_loads_official_layout(tmp_path, rng, fmt, archive):
    batches = cifar_batches(rng)
    _install(tmp_path, fmt, archive, batches)
    train, test = data.load("cifar10", root=tmp_path)
    for split, part in ((train, "train"), (test, "test")):
        images, labels = expected_arrays(batches, part)
        assert split.images.dtype == np.uint8 and split.images.shape == images.shape
        np.testing.assert_array_equal(split.images, images)
        np.testing.assert_array_equal(split.labels, labels)
        assert split.classes == CIFAR_CLASSES
    assert len(train) == 25 and len(test) == 5


def test_cifar_record_layout_is_label_then_rgb_planes(tmp_path):
    record = bytes([7]) + bytes([10]) * 1024 + bytes([20]) * 1024 + bytes([30]) * 1024
    images, labels = cifar10.parse_binary_batch(record * 2, "test_batch.bin")
    assert labels.tolist() == [7, 7]
    assert images.shape == (2, 3, 32, 32) and images[1, :, 5, 9].tolist() == [10, 20, 30]


def test_cifar_python_batch_written_by_python3_protocol2(tmp_path, rng):
    batches = cifar_batches(rng)
    files = cifar_python_files(batches, pickler=lambda obj: pickle.dumps(obj, protocol=2))
    _install(tmp_path, "python", False, batches, files)
    train, _ = data.load("cifar10", root=tmp_path)
    np.testing.assert_array_equal(train.images, expected_arrays(batches, "train")[0])


def test_cifar_fmt_selects_version(tmp_path, rng):
    batches = cifar_batches(rng)
    _install(tmp_path, "python", True, batches)
    with pytest.raises(FileNotFoundError, match="cifar-10-binary.tar.gz"):
        data.load("cifar10", root=tmp_path, fmt="binary")
    assert len(data.load("cifar10", root=tmp_path, fmt="python")[1]) == 5


def test_cifar_binary_partial_record_is_truncated(tmp_path, rng):
    batches = cifar_batches(rng)
    files = cifar_binary_files(batches)
    files["data_batch_3.bin"] = files["data_batch_3.bin"][:-1000]
    _install(tmp_path, "binary", False, batches, files)
    expected = r"data_batch_3.bin: truncated \(17,438 bytes is 5 whole 3073-byte records plus 2,073"
    with pytest.raises(DataFormatError, match=expected):
        data.load("cifar10", root=tmp_path)


def test_cifar_binary_label_out_of_range(tmp_path, rng):
    batches = cifar_batches(rng)
    files = cifar_binary_files(batches)
    raw = bytearray(files["test_batch.bin"])
    raw[2 * 3073] = 12  # label byte of record 2
    files["test_batch.bin"] = bytes(raw)
    _install(tmp_path, "binary", True, batches, files)
    with pytest.raises(DataFormatError, match="test_batch.bin: label 12 of record 2 is outside 0..9"):
        data.load("cifar10", root=tmp_path)


def test_cifar_python_label_count_mismatch(tmp_path, rng):
    batches = cifar_batches(rng)
    batches["data_batch_2"] = (batches["data_batch_2"][0], batches["data_batch_2"][1][:-1])
    _install(tmp_path, "python", False, batches)
    with pytest.raises(DataFormatError, match="data_batch_2: 4 labels for 5 images"):
        data.load("cifar10", root=tmp_path)


def test_cifar_python_truncated_pickle(tmp_path, rng):
    batches = cifar_batches(rng)
    files = cifar_python_files(batches)
    files["data_batch_1"] = files["data_batch_1"][: len(files["data_batch_1"]) // 2]
    _install(tmp_path, "python", False, batches, files)
    with pytest.raises(DataFormatError, match="data_batch_1: truncated or corrupt pickle"):
        data.load("cifar10", root=tmp_path)


def test_cifar_truncated_archive(tmp_path, rng):
    batches = cifar_batches(rng)
    blob = tar_bytes("cifar-10-batches-bin", cifar_binary_files(batches))
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataFormatError, match="cifar-10-binary.tar.gz: the archive is truncated or corrupt"):
        data.load("cifar10", root=tmp_path)


def test_cifar_archive_missing_member(tmp_path, rng):
    files = cifar_binary_files(cifar_batches(rng))
    del files["data_batch_4.bin"]
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(tar_bytes("cifar-10-batches-bin", files))
    with pytest.raises(DataFormatError, match="missing data_batch_4.bin under cifar-10-batches-bin/"):
        data.load("cifar10", root=tmp_path)


def test_cifar_wrong_number_of_class_names(tmp_path, rng):
    batches = cifar_batches(rng)
    files = cifar_binary_files(batches)
    files["batches.meta.txt"] = b"airplane\nautomobile\n"
    _install(tmp_path, "binary", False, batches, files)
    with pytest.raises(DataFormatError, match="batches.meta.txt: 2 class names, expected 10"):
        data.load("cifar10", root=tmp_path)
