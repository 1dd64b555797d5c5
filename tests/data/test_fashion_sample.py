"""The Fashion-MNIST sample shipped in the package: counts, stratification, integrity, provenance."""
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinyeff import data
from tinyeff.data import fashion_mnist, fashion_mnist_sample as sample
from tinyeff.errors import DataFormatError


def test_sample_counts_and_layout():
    train, test = data.load("fashion-mnist-sample")
    assert train.images.shape == (6000, 1, 28, 28) and test.images.shape == (1000, 1, 28, 28)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert train.classes == fashion_mnist.CLASSES


def test_sample_is_stratified():
    train, test = data.load("fashion-mnist-sample")
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=10), [600] * 10)
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=10), [100] * 10)


def test_sample_file_is_an_npz_without_pickles():
    with zipfile.ZipFile(sample.SAMPLE_PATH) as zf:
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in zf.infolist())
    with np.load(sample.SAMPLE_PATH, allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)


def test_corrupt_sample_fails_integrity_check(tmp_path):
    with np.load(sample.SAMPLE_PATH, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["test_images"] = arrays["test_images"].copy()
    arrays["test_images"][3, 0, 10, 10] ^= 1  # one flipped bit
    np.savez_compressed(tmp_path / "s.npz", **arrays)
    with pytest.raises(DataFormatError, match="s.npz: contents fail the integrity check"):
        sample.load(path=tmp_path / "s.npz")


def test_truncated_sample_file_names_the_problem(tmp_path):
    blob = sample.SAMPLE_PATH.read_bytes()
    (tmp_path / "s.npz").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(DataFormatError, match="s.npz: cannot be read as an .npz archive"):
        sample.load(path=tmp_path / "s.npz")


def test_sample_rebuild_is_reproducible_from_split_arrays(rng):
    images = rng.integers(0, 256, (2000, 1, 28, 28), dtype=np.uint8)
    labels = np.arange(2000, dtype=np.int64) % 10
    train = data.Split(images, labels, fashion_mnist.CLASSES)
    a = sample.build(train, train, seed=3, per_class={"train": 60, "test": 20})
    b = sample.build(train, train, seed=3, per_class={"train": 60, "test": 20})
    assert sample.content_sha256(a) == sample.content_sha256(b)
    np.testing.assert_array_equal(np.bincount(a["train_labels"]), [60] * 10)
    np.testing.assert_array_equal(a["train_images"], images[a["train_index"]])


def test_sample_matches_full_dataset_at_recorded_indices():
    system = Path("/usr/share/datasets/fashion-mnist")
    if not (system / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"{system} absent: install the Debian package dataset-fashion-mnist to run this test")
    _, full_test = fashion_mnist.load(root=system)
    with np.load(sample.SAMPLE_PATH, allow_pickle=False) as npz:
        index = npz["test_index"]
    _, test = data.load("fashion-mnist-sample")
    np.testing.assert_array_equal(test.images, full_test.images[index])
    np.testing.assert_array_equal(test.labels, full_test.labels[index])
