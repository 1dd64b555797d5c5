"""Downloads against a local HTTP server: success, checksum mismatch, resume and restart."""
import hashlib

import numpy as np
import pytest

from data_builders import FASHION_FILES, cifar_batches, cifar_binary_files, expected_arrays, tar_bytes, write_fashion
from tinyeff import data
from tinyeff.data import download as dl
from tinyeff.errors import ChecksumError


def _md5(blob):
    return "md5:" + hashlib.md5(blob).hexdigest()


@pytest.fixture
def fashion_blobs(tmp_path, rng):
    write_fashion(tmp_path / "src", rng)
    return {name: (tmp_path / "src" / name).read_bytes() for name in FASHION_FILES}


def test_download_fashion_then_load(tmp_path, file_server, fashion_blobs):
    server = file_server(fashion_blobs)
    table = {name: _md5(blob) for name, blob in fashion_blobs.items()}
    where = data.download_dataset("fashion-mnist", root=tmp_path / "dl", mirror=server.url, checksums=table,
                                  progress=False)
    assert where == tmp_path / "dl" / "fashion-mnist"
    assert sorted(p.name for p in where.iterdir()) == sorted(FASHION_FILES)
    train, test = data.load("fashion-mnist", root=tmp_path / "dl")
    assert len(train) == 30 and len(test) == 12
    assert {path for path, _ in server.requests} == {"/" + n for n in FASHION_FILES}


def test_download_cifar_via_load_and_env_mirror(tmp_path, file_server, rng, monkeypatch):
    batches = cifar_batches(rng)
    blob = tar_bytes("cifar-10-batches-bin", cifar_binary_files(batches))
    server = file_server({"cifar-10-binary.tar.gz": blob})
    monkeypatch.setenv("TINYEFF_DATA_MIRROR", server.url)
    train, test = data.load("cifar10", root=tmp_path, download=True, progress=False,
                            checksums={"cifar-10-binary.tar.gz": _md5(blob)})
    np.testing.assert_array_equal(test.images, expected_arrays(batches, "test")[0])
    assert (tmp_path / "cifar10" / "cifar-10-binary.tar.gz").read_bytes() == blob


def test_checksum_mismatch_leaves_nothing(tmp_path, file_server):
    server = file_server({"f.bin": b"x" * 5000})
    wrong = "md5:" + "0" * 32
    with pytest.raises(ChecksumError) as err:
        dl.fetch(server.url + "f.bin", tmp_path / "out" / "f.bin", wrong, progress=False)
    message = str(err.value)
    assert "f.bin" in message and "0" * 32 in message and hashlib.md5(b"x" * 5000).hexdigest() in message
    assert list((tmp_path / "out").iterdir()) == []


def test_interrupted_download_resumes_with_range(tmp_path, file_server, rng):
    blob = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    server = file_server({"big.bin": blob}, drop_next=1, drop_after=70_000)
    dest = tmp_path / "big.bin"
    with pytest.raises(ConnectionError, match="big.bin: download .* was interrupted 1 times"):
        dl.fetch(server.url + "big.bin", dest, _md5(blob), progress=False, retries=0)
    part = tmp_path / "big.bin.part"
    assert not dest.exists() and part.stat().st_size == 70_000
    dl.fetch(server.url + "big.bin", dest, _md5(blob), progress=False, retries=0)
    assert dest.read_bytes() == blob and not part.exists()
    assert server.requests[-1] == ("/big.bin", "bytes=70000-")


def test_interrupted_download_restarts_when_server_ignores_range(tmp_path, file_server, rng):
    blob = rng.integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    server = file_server({"big.bin": blob}, drop_next=1, drop_after=30_000, ranges=False)
    dest = dl.fetch(server.url + "big.bin", tmp_path / "big.bin", _md5(blob), progress=False, retries=1)
    assert dest.read_bytes() == blob
    assert [r for _, r in server.requests] == [None, "bytes=30000-"]


def test_stale_partial_file_beyond_end_restarts(tmp_path, file_server):
    blob = b"abc" * 1000
    server = file_server({"f.bin": blob})
    (tmp_path / "f.bin.part").write_bytes(b"z" * 5000)  # longer than the file: server answers 416
    dl.fetch(server.url + "f.bin", tmp_path / "f.bin", _md5(blob), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == blob


def test_verified_file_is_not_downloaded_again(tmp_path, file_server):
    blob = b"hello" * 100
    server = file_server({"f.bin": blob})
    dl.fetch(server.url + "f.bin", tmp_path / "f.bin", _md5(blob), progress=True)
    dl.fetch(server.url + "f.bin", tmp_path / "f.bin", _md5(blob), progress=False)
    assert len(server.requests) == 1


def test_parse_checksum_rejects_unknown_algorithm():
    with pytest.raises(ValueError, match="must look like 'md5:<hex>'"):
        dl.parse_checksum("crc32:1234")


def test_official_tables_hold_published_md5s():
    from tinyeff.data import cifar10, fashion_mnist
    assert fashion_mnist.CHECKSUMS["train-images-idx3-ubyte.gz"] == "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert cifar10.CHECKSUMS["cifar-10-python.tar.gz"] == "md5:c58f30108f718f92721af3b95e74349a"
    assert dl.resolve_url(cifar10.BASE_URL, "cifar-10-binary.tar.gz") == \
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
