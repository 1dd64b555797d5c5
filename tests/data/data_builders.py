"""Builders of small dataset files in the exact official layouts, for the tests in this directory.

* Fashion-MNIST: IDX files (``tinyeff.data.idx.write_idx``), gzip-compressed, official names.
* CIFAR-10 binary: records ``<label byte><3072 pixel bytes>``, ``batches.meta.txt`` one name a line.
* CIFAR-10 python: Python 2 cPickle protocol-2 dicts. ``Py2Pickler`` reproduces what Python 2 wrote:
  every string (keys, dtype codes, raw array bytes) as a BINSTRING opcode, and NumPy's reconstructor
  under its NumPy 1.x name ``numpy.core.multiarray._reconstruct``.
Archives hold one directory (``cifar-10-batches-bin/`` or ``-py/``) plus ``readme.html``, as the real ones.
"""
import io
import pickle
import struct
import tarfile

import numpy as np

from tinyeff.data.idx import write_idx

FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_fashion(directory, rng, n_train=30, n_test=12):
    """Write four small Fashion-MNIST IDX files; return {split: (images (N, 28, 28), labels)}."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for part, n, (img_name, lab_name) in (("train", n_train, FASHION_FILES[:2]),
                                          ("test", n_test, FASHION_FILES[2:])):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(directory / img_name, images)
        write_idx(directory / lab_name, labels)
        out[part] = (images, labels)
    return out


def cifar_batches(rng, train_counts=(7, 5, 6, 4, 3), n_test=5):
    """Random CIFAR-like batches: {"data_batch_1": (images (N, 3, 32, 32), labels), ..., "test_batch": ...}."""
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {name: (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n))
            for name, n in zip(names, list(train_counts) + [n_test])}


def cifar_binary_files(batches):
    """{file name: bytes} of the binary version."""
    files = {}
    for name, (images, labels) in batches.items():
        records = np.concatenate([labels.astype(np.uint8)[:, None], images.reshape(len(images), -1)], axis=1)
        files[f"{name}.bin"] = records.tobytes()  # (N, 3073): label byte then R, G, B planes
    files["batches.meta.txt"] = ("\n".join(CIFAR_CLASSES) + "\n\n").encode("ascii")
    return files


class Py2Pickler(pickle._Pickler):
    """A protocol-2 pickler that writes what Python 2's cPickle wrote for the CIFAR batches."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        module, name = obj.__module__, name or obj.__qualname__
        if module in ("numpy._core.multiarray", "numpy.core.multiarray"):
            module = "numpy.core.multiarray"
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)


def py2_pickle(obj):
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def cifar_python_files(batches, pickler=py2_pickle):
    """{file name: bytes} of the python version (``pickler`` may be swapped to test other writers)."""
    files = {}
    for i, (name, (images, labels)) in enumerate(batches.items(), start=1):
        label = b"testing batch 1 of 1" if name == "test_batch" else f"training batch {i} of 5".encode()
        files[name] = pickler({
            b"batch_label": label,
            b"labels": [int(v) for v in labels],
            b"data": np.ascontiguousarray(images.reshape(len(images), -1)),
            b"filenames": [f"image_{i}_{k:06d}.png".encode() for k in range(len(images))],
        })
    files["batches.meta"] = pickler({b"num_cases_per_batch": 10000,
                                     b"label_names": [c.encode() for c in CIFAR_CLASSES],
                                     b"num_vis": 3072})
    return files


def write_dir(parent, dirname, files):
    target = parent / dirname
    target.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (target / name).write_bytes(data)
    return target


def tar_bytes(dirname, files):
    """A .tar.gz holding ``dirname/`` with ``files`` and a readme.html, like the official archives."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(dirname)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
        for name, data in dict(files, **{"readme.html": b"<html></html>"}).items():
            info = tarfile.TarInfo(f"{dirname}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def expected_arrays(batches, part):
    names = [n for n in batches if (n == "test_batch") == (part == "test")]
    return (np.concatenate([batches[n][0] for n in names]),
            np.concatenate([batches[n][1] for n in names]).astype(np.int64))
