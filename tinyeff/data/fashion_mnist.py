"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017): 70,000 28x28 grayscale images of 10 clothing classes.

The data ships as four IDX files (see ``idx.py``), gzip-compressed. Uncompressed copies (same names
without ``.gz``) are accepted too. This module finds them (``locate.py``), checks what they mean
(28x28 uint8 images, one label per image, labels in 0..9) and can download them from the authors'
published location with the MD5 checksums they publish (``download.py``).
"""
from pathlib import Path

import numpy as np

from tinyeff.data import download as dl
from tinyeff.data import locate
from tinyeff.data.idx import read_idx
from tinyeff.data.split import Split
from tinyeff.errors import DataFormatError

NAME = "fashion-mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# MD5s published by the dataset authors (github.com/zalandoresearch/fashion-mnist, README)
CHECKSUMS = {
    "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
}
SPLITS = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801  # uint8 x 3 dims, uint8 x 1 dim
SIZE = (28, 28)
MAX_IMAGES = 4 * 70_000   # per file: room for re-packed or augmented copies, and a bound on what a header may claim


def _existing(directory, file_name):
    """The file itself, or its uncompressed twin, if either exists."""
    for candidate in (directory / file_name, directory / file_name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def find(root=None):
    """The first search directory holding all four files, or None."""
    for directory in locate.search_dirs(NAME, root):
        if all(_existing(directory, f) for f in CHECKSUMS):
            return directory
    return None


def read_split(images_path, labels_path, fix="delete the file and download it again"):
    """Read one images/labels IDX pair into a ``Split`` after checking that they belong together.

    Raises:
        DataFormatError: bad magic, not 28x28, counts differ, or a label outside 0..9.
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    def check_images(dims):
        if tuple(dims[1:]) != SIZE:
            raise DataFormatError(f"{images_path.name}: images are {'x'.join(map(str, dims[1:]))}, "
                                  f"Fashion-MNIST images are 28x28; {fix}")
        _check_count(images_path, dims[0], fix)

    images = read_idx(images_path, magic=IMAGES_MAGIC, fix=fix, check_dims=check_images)
    labels = read_idx(labels_path, magic=LABELS_MAGIC, fix=fix,
                      check_dims=lambda dims: _check_count(labels_path, dims[0], fix))
    if len(labels) != len(images):
        raise DataFormatError(f"{labels_path.name}: {len(labels):,} labels for {len(images):,} images in "
                              f"{images_path.name}; the two files are from different sets; {fix}")
    if len(labels) and labels.max() >= len(CLASSES):
        bad = int(np.argmax(labels >= len(CLASSES)))
        raise DataFormatError(f"{labels_path.name}: label {labels[bad]} at index {bad} is outside "
                              f"0..{len(CLASSES) - 1} (the file is mislabeled or corrupt); {fix}")
    return Split(images[:, None], labels.astype(np.int64), CLASSES, source=str(images_path.parent))


def _check_count(path, count, fix):
    if count > MAX_IMAGES:
        raise DataFormatError(f"{path.name}: the header claims {count:,} images, more than the {MAX_IMAGES:,} "
                              f"a Fashion-MNIST file can hold; the file is corrupt; {fix}")


def download(root=None, mirror=None, checksums=None, progress=True, retries=2):
    """Fetch the four files into ``locate.download_dir`` and verify them; return that directory.

    Args:
        root: base directory (files go to ``root/fashion-mnist``); default $TINYEFF_DATA or the cache.
        mirror: base URL replacing the official one (or set $TINYEFF_DATA_MIRROR).
        checksums: file name -> ``"md5:<hex>"`` table replacing ``CHECKSUMS`` (tests use their own).
        progress: show progress bars.
        retries: extra resuming attempts per file after an interrupted transfer.
    """
    table = CHECKSUMS if checksums is None else checksums
    target = locate.download_dir(NAME, root)
    for file_name in CHECKSUMS:
        dl.fetch(dl.resolve_url(BASE_URL, file_name, mirror), target / file_name, table[file_name],
                 progress=progress, retries=retries)
    return target


_download = download  # load() takes a flag called ``download``; keep a name for the function


def load(root=None, download=False, **download_options):
    """Load Fashion-MNIST as ``(train, test)`` Splits: (60000, 1, 28, 28) and (10000, 1, 28, 28) uint8.

    Args:
        root: extra directory to search first (see ``locate.py`` for the search order).
        download: fetch the files if they are not found anywhere.
        **download_options: passed to ``download`` (mirror, checksums, progress, retries).

    Raises:
        FileNotFoundError: not found and ``download`` is False (the message lists where it looked).
        DataFormatError: a file is truncated, corrupt or mislabeled.
    """
    directory = find(root)
    if directory is None:
        if not download:
            raise FileNotFoundError(locate.not_found_message(NAME, ", ".join(CHECKSUMS), root))
        directory = _download(root, **download_options)
    fix = ("reinstall the Debian package dataset-fashion-mnist" if locate.SYSTEM_DIR in directory.parents
           else f"delete it from {directory} and run `tinyeff data download {NAME}`")
    return tuple(read_split(_existing(directory, img), _existing(directory, lab), fix=fix)
                 for img, lab in SPLITS.values())
