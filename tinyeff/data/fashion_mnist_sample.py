"""A small stratified subset of real Fashion-MNIST, shipped inside the package.

6,000 training images (600 per class) and 1,000 test images (100 per class), chosen with a fixed seed
by ``scripts/make_fashion_sample.py``, so demos and tests run on a fresh machine with nothing
downloaded. The file is a compressed ``.npz`` read with ``allow_pickle=False``. It also stores the
indices into the full splits the images came from, so the subset can be checked against the source.

Integrity: zip archives embed timestamps, so the file's own bytes are not reproducible; instead
``CONTENT_SHA256`` is a SHA-256 over the arrays (name, dtype, shape, bytes, in a fixed order),
recomputed on every load. A damaged or edited file raises ``DataFormatError``.
"""
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from tinyeff.data.fashion_mnist import CLASSES
from tinyeff.data.split import Split
from tinyeff.errors import DataFormatError

NAME = "fashion-mnist-sample"
SAMPLE_PATH = Path(__file__).with_name("fashion_mnist_sample.npz")
PER_CLASS = {"train": 600, "test": 100}
SEED = 0
ARRAYS = ("train_images", "train_labels", "train_index", "test_images", "test_labels", "test_index")
# Written by scripts/make_fashion_sample.py; it prints the new value whenever the sample is rebuilt.
CONTENT_SHA256 = "7195e0585e80742f23561de5ae1a66e83b567261fdeadee08cffda01575ccf42"
FIX = "reinstall tinyeff, or rebuild the file with scripts/make_fashion_sample.py"


def content_sha256(arrays):
    """SHA-256 of the sample's arrays, independent of zip timestamps and compression level."""
    h = hashlib.sha256()
    for name in ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def stratified_indices(labels, per_class, rng):
    """``per_class`` indices of each class drawn without replacement, returned sorted (int64)."""
    picks = []
    for c in range(len(CLASSES)):
        pool = np.flatnonzero(labels == c)
        if len(pool) < per_class:
            raise ValueError(f"stratified_indices: class {c} has {len(pool)} examples, need {per_class}")
        picks.append(rng.choice(pool, size=per_class, replace=False))
    return np.sort(np.concatenate(picks)).astype(np.int64)


def build(train, test, seed=SEED, per_class=None):
    """The sample's arrays, drawn from full Fashion-MNIST ``train``/``test`` Splits with ``seed``.

    ``per_class`` ({"train": int, "test": int}) defaults to ``PER_CLASS`` (600 and 100).
    """
    per_class = PER_CLASS if per_class is None else per_class
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, split in (("train", train), ("test", test)):
        index = stratified_indices(split.labels, per_class[part], rng)
        arrays.update({f"{part}_images": split.images[index], f"{part}_labels": split.labels[index],
                       f"{part}_index": index})
    return arrays


def _read(path):
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [n for n in ARRAYS if n not in npz.files]
            if missing:
                raise DataFormatError(f"{path.name}: missing arrays {missing}; {FIX}")
            return {n: npz[n] for n in ARRAYS}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(f"{path.name}: cannot be read as an .npz archive ({exc}); {FIX}") from exc


def load(root=None, download=False, path=None, expected_sha256=CONTENT_SHA256):
    """Load the shipped sample as ``(train, test)``: 6000 and 1000 images of shape (1, 28, 28).

    Args:
        root, download: accepted for a uniform ``tinyeff.data.load`` signature; the sample is
            always the packaged file, so neither is used.
        path: read another copy of the sample instead of the packaged one.
        expected_sha256: the content hash to verify against.

    Raises:
        DataFormatError: the file is missing arrays, unreadable, or its contents fail the SHA-256 check.
    """
    path = Path(path) if path is not None else SAMPLE_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the Fashion-MNIST sample is missing from the package; {FIX}")
    arrays = _read(path)
    got = content_sha256(arrays)
    if got != expected_sha256:
        raise DataFormatError(f"{path.name}: contents fail the integrity check (expected SHA-256 "
                              f"{expected_sha256}, got {got}); the file is corrupt or was modified; {FIX}")
    return tuple(Split(arrays[f"{p}_images"], arrays[f"{p}_labels"], CLASSES, source=str(path))
                 for p in ("train", "test"))
