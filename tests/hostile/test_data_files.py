"""Hostile dataset files: headers whose dims overflow or claim gigabytes, small archives that inflate
to gigabytes, CIFAR labels that are not small integers, pickles asking for huge arrays, and an
explicit ``--root`` that must not fall back to other copies. Each is one DataFormatError (exit 1 at
the command line) naming the file, read within bounded memory."""
import gzip
import io
import os
import pickle
import subprocess
import sys
import tarfile

import numpy as np
import pytest

import bombs
from conftest import error_line
from tinyeff import data
from tinyeff.data import safe_pickle
from tinyeff.data.idx import read_idx, write_idx
from tinyeff.errors import DataFormatError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FASHION = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
RSS_LIMIT_MB = 600


def write_fashion(directory, n_train=20, n_test=10):
    directory.mkdir(parents=True, exist_ok=True)
    for (img, lab), n in ((FASHION[:2], n_train), (FASHION[2:], n_test)):
        write_idx(directory / img, np.zeros((n, 28, 28), np.uint8))
        write_idx(directory / lab, (np.arange(n) % 10).astype(np.uint8))
    return directory


def peak_rss_mb_of(code, *args):
    """Run ``code`` in a fresh interpreter; return (its stdout, its peak RSS in MB from getrusage)."""
    wrapper = code + "\nimport resource\nprint('RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    done = subprocess.run([sys.executable, "-c", wrapper, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    out, rss = done.stdout.rsplit("RSS_KB", 1)
    return out, int(rss) / 1024      # ru_maxrss is in KiB on Linux


def test_idx_dims_whose_product_overflows_int64_are_refused(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(bombs.idx_header(0x08, (2**32 - 1,) * 3) + bytes(16))
    with pytest.raises(DataFormatError, match=r"x.idx: the header's dims .* imply 79,228,162,"):
        read_idx(path)


def test_fashion_header_claiming_too_many_images_is_refused_before_reading(tmp_path):
    directory = write_fashion(tmp_path / "f")
    bombs.gz_bomb(directory / FASHION[0], bombs.idx_header(0x08, (10_000_000, 28, 28)), inflated_gib=0)
    with pytest.raises(DataFormatError, match="claims 10,000,000 images"):
        data.load("fashion-mnist", root=directory)


def test_fashion_gz_bomb_is_refused_in_bounded_memory(tmp_path):
    """1 MiB .gz: a valid header for 60,000 images, then 1 GiB of zeros."""
    directory = write_fashion(tmp_path / "f")
    bombs.gz_bomb(directory / FASHION[0], bombs.idx_header(0x08, (60_000, 28, 28)), inflated_gib=1)
    assert os.path.getsize(directory / FASHION[0]) < 1.2 * 2**20
    out, rss_mb = peak_rss_mb_of(
        "import sys\nfrom tinyeff import data\nfrom tinyeff.errors import DataFormatError\n"
        "try:\n    data.load('fashion-mnist', root=sys.argv[1])\nexcept DataFormatError as e:\n    print('REFUSED', e)\n",
        directory)
    assert "REFUSED train-images-idx3-ubyte.gz: unexpected bytes after the 47,040,000 data bytes" in out
    assert rss_mb < RSS_LIMIT_MB


def test_idx_truncated_gz_stream_names_the_file(tmp_path):
    directory = write_fashion(tmp_path / "f")
    raw = (directory / FASHION[1]).read_bytes()
    (directory / FASHION[1]).write_bytes(raw[:len(raw) // 2])
    with pytest.raises(DataFormatError, match="train-labels-idx1-ubyte.gz: the gzip stream is damaged"):
        data.load("fashion-mnist", root=directory)


def test_empty_training_split_is_refused_at_the_command_line(cli, tmp_path):
    directory = write_fashion(tmp_path / "f", n_train=0)
    code, _, err = cli("train", "--data", "fashion-mnist", "--root", directory, "--epochs", "1",
                       "--out", tmp_path / "o", "--no-progress")
    assert code == 1 and "the training split has no images" in error_line(err)
    assert not (tmp_path / "o").exists()


def test_explicit_root_never_falls_back_to_another_copy(cli, tmp_path, monkeypatch):
    good = write_fashion(tmp_path / "env-data" / "fashion-mnist")     # where $TINYEFF_DATA points
    assert data.load("fashion-mnist")[0].source == str(good)
    code, _, err = cli("data", "info", "fashion-mnist", "--root", tmp_path / "empty")
    assert code == 1
    line = error_line(err)
    assert str(tmp_path / "empty") in line and str(good) not in line and "only place searched" in line


def test_explicit_root_with_a_broken_file_reports_that_file(tmp_path):
    write_fashion(tmp_path / "env-data" / "fashion-mnist")
    broken = write_fashion(tmp_path / "mine")
    (broken / FASHION[2]).write_bytes(b"\x1f\x8b not gzip")
    with pytest.raises(DataFormatError, match="t10k-images-idx3-ubyte.gz"):
        data.load("fashion-mnist", root=broken)


# --- CIFAR-10 ---------------------------------------------------------------------------------------
def cifar_python_dir(root, labels=None, data_array=None):
    directory = root / "cifar-10-batches-py"
    directory.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.zeros((2, 3072), np.uint8) if data_array is None else data_array,
                 b"labels": [1, 2] if labels is None or name != "data_batch_1" else labels}
        (directory / name).write_bytes(pickle.dumps(batch, protocol=2))
    names = [f"class{i}".encode() for i in range(10)]
    (directory / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))
    return root


@pytest.mark.parametrize("labels,shown", [([2**70, 1], str(2**70)), ([1.7, 1], "1.7"), ([b"3", 1], "b'3'"),
                                          ([True, 1], "True"), ("01", "str")])
def test_cifar_labels_must_be_small_integers(tmp_path, labels, shown):
    root = cifar_python_dir(tmp_path / "c", labels=labels)
    with pytest.raises(DataFormatError, match=f"data_batch_1: .*{shown}"):
        data.load("cifar10", root=root)


class HugeArray:
    """Pickles as numpy's array reconstructor asked for a 2**40-element array."""

    def __reduce__(self):
        return safe_pickle._reconstruct, (np.ndarray, (2**40,), b"b")


def test_cifar_pickle_asking_for_a_huge_array_is_refused_before_allocating(tmp_path):
    with pytest.raises(DataFormatError, match=r"exceeds the .*-byte limit"):
        safe_pickle.loads(pickle.dumps(HugeArray(), protocol=2), "data_batch_1")


def test_cifar_archive_member_claiming_a_gigabyte_is_refused_before_reading(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    bombs.tar_gz_bomb(root / "cifar-10-binary.tar.gz", "cifar-10-batches-bin/data_batch_1.bin", member_gib=1)
    with pytest.raises(DataFormatError, match=r"data_batch_1.bin claims 1,073,741,824 bytes"):
        data.load("cifar10", root=root)


def test_cifar_extracted_file_too_large_is_refused(tmp_path):
    directory = tmp_path / "c" / "cifar-10-batches-bin"
    directory.mkdir(parents=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        (directory / name).write_bytes(bytes(3073))
    (directory / "batches.meta.txt").write_text("\n".join(f"c{i}" for i in range(10)))
    with open(directory / "data_batch_3.bin", "r+b") as f:       # sparse: no disk space used
        f.truncate(100 << 20)
    with pytest.raises(DataFormatError, match="data_batch_3.bin claims 104,857,600 bytes"):
        data.load("cifar10", root=tmp_path / "c")
