"""CIFAR-10 (Krizhevsky, 2009): 60,000 32x32 colour images in 10 classes, in both official formats.

The authors publish two versions; each is a ``.tar.gz`` holding one directory, and this module reads
either the archive itself (members are read in place; nothing is extracted) or the extracted directory:

* binary, ``cifar-10-binary.tar.gz`` -> ``cifar-10-batches-bin/``: ``data_batch_1.bin`` ..
  ``data_batch_5.bin``, ``test_batch.bin``, each a run of 3073-byte records
  ``<1 label byte><1024 red><1024 green><1024 blue>`` (row-major 32x32 planes, 10,000 records per
  batch), and ``batches.meta.txt`` with one class name per line. Preferred: no pickle involved.
* python, ``cifar-10-python.tar.gz`` -> ``cifar-10-batches-py/``: ``data_batch_1`` .. ``data_batch_5``,
  ``test_batch``, each a Python 2 pickle of ``{b"batch_label", b"labels": [int], b"data": uint8
  (N, 3072) in the same plane order, b"filenames"}``, and ``batches.meta`` with ``b"label_names"``.
  Read with ``safe_pickle.RestrictedUnpickler``, never ``pickle.load``.

Any whole number of records per batch is accepted (tests build small batches); a partial record, a
label outside 0..9 or a malformed pickle raises ``DataFormatError`` naming the file.
"""
import tarfile
import zlib
from pathlib import Path

import numpy as np

from tinyeff.data import download as dl
from tinyeff.data import locate, safe_pickle
from tinyeff.data.split import Split
from tinyeff.errors import DataFormatError

NAME = "cifar10"
BASE_URL = "https://www.cs.toronto.edu/~kriz/"
# MD5s published on the dataset page (www.cs.toronto.edu/~kriz/cifar.html)
CHECKSUMS = {
    "cifar-10-binary.tar.gz": "md5:c32a1d4ab5d03f1284b67883e8d87530",
    "cifar-10-python.tar.gz": "md5:c58f30108f718f92721af3b95e74349a",
}
FORMATS = {  # in order of preference
    "binary": {"archive": "cifar-10-binary.tar.gz", "dir": "cifar-10-batches-bin",
               "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",),
               "meta": "batches.meta.txt"},
    "python": {"archive": "cifar-10-python.tar.gz", "dir": "cifar-10-batches-py",
               "train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",),
               "meta": "batches.meta"},
}
NUM_CLASSES = 10
PIXELS = 3 * 32 * 32
RECORD_BYTES = 1 + PIXELS
# per file, checked against the tar header or the file size before a byte is read: an official batch is
# 30.7 MB (10,000 records), so this leaves room for bigger batches and refuses archive bombs
MAX_MEMBER_BYTES = 64 << 20
FIX = f"delete it and run `tinyeff data download {NAME}` (or load with download=True)"


def _needed(fmt):
    spec = FORMATS[fmt]
    return spec["train"] + spec["test"] + (spec["meta"],)


def find(root=None, fmt=None):
    """The first ``(path, format, is_archive)`` holding CIFAR-10, or None.

    Each search directory is checked for the extracted directory, then the archive, binary first.
    """
    formats = [fmt] if fmt else list(FORMATS)
    for directory in locate.search_dirs(NAME, root):
        for f in formats:
            extracted = directory / FORMATS[f]["dir"]
            if all((extracted / m).is_file() for m in _needed(f)):
                return extracted, f, False
            if (directory / FORMATS[f]["archive"]).is_file():
                return directory / FORMATS[f]["archive"], f, True
    return None


def _read_archive(path, fmt):
    """The needed members of a CIFAR tarball as ``{file name: bytes}``, read without extracting."""
    spec, found = FORMATS[fmt], {}
    wanted = {f"{spec['dir']}/{m}": m for m in _needed(fmt)}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                name = wanted.get(member.name.removeprefix("./"))
                if name and member.isfile():
                    _check_size(member.size, f"{Path(path).name}: member {member.name}")
                    found[name] = _read_member(tar.extractfile(member), member.size)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DataFormatError(f"{Path(path).name}: the archive is truncated or corrupt ({exc}); {FIX}") from exc
    missing = [m for m in _needed(fmt) if m not in found]
    if missing:
        raise DataFormatError(f"{Path(path).name}: missing {', '.join(missing)} under {spec['dir']}/; "
                              f"this is not the official {fmt} archive; {FIX}")
    return found


def _check_size(size, what):
    if size > MAX_MEMBER_BYTES:
        raise DataFormatError(f"{what} claims {size:,} bytes, more than the {MAX_MEMBER_BYTES:,} a CIFAR-10 "
                              f"file can hold (an official batch is 30,730,000); {FIX}")


def _read_member(f, size):
    """Exactly ``size`` bytes, decompressed chunk by chunk: a short stream is an error, not a short batch."""
    data = f.read(size)
    if len(data) != size:
        raise EOFError(f"member ends after {len(data):,} of {size:,} bytes")
    return data


def _read_file(path):
    _check_size(path.stat().st_size, str(path))
    return path.read_bytes()


def _check_labels(labels, file_name):
    bad = (labels < 0) | (labels >= NUM_CLASSES)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataFormatError(f"{file_name}: label {labels[i]} of record {i} is outside 0..9 "
                              f"(mislabeled or corrupt); {FIX}")


def parse_binary_batch(data, file_name):
    """Decode one binary batch (records of 1 label byte + 3072 pixel bytes) into (images, labels)."""
    count, extra = divmod(len(data), RECORD_BYTES)
    if extra or not count:
        raise DataFormatError(f"{file_name}: truncated ({len(data):,} bytes is {count:,} whole "
                              f"{RECORD_BYTES}-byte records plus {extra:,} bytes of a partial one); {FIX}")
    records = np.frombuffer(data, dtype=np.uint8).reshape(count, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    _check_labels(labels, file_name)
    return records[:, 1:].reshape(count, 3, 32, 32), labels


def parse_binary_meta(data, file_name):
    """Class names from ``batches.meta.txt``: one per non-blank line."""
    names = [line.strip() for line in data.decode("ascii", "replace").splitlines() if line.strip()]
    if len(names) != NUM_CLASSES:
        raise DataFormatError(f"{file_name}: {len(names)} class names, expected {NUM_CLASSES}; {FIX}")
    return tuple(names)


def parse_python_batch(data, file_name):
    """Decode one pickled batch dict (``b"data"`` uint8 (N, 3072), ``b"labels"``) into (images, labels)."""
    batch = safe_pickle.loads(data, file_name)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataFormatError(f"{file_name}: expected a dict with keys b'data' and b'labels', got {keys}; {FIX}")
    images = batch[b"data"]
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 \
            or images.shape[1] != PIXELS or not len(images):
        raise DataFormatError(f"{file_name}: b'data' must be uint8 (N, {PIXELS}), got "
                              f"{getattr(images, 'dtype', type(images).__name__)} "
                              f"{getattr(images, 'shape', '')}; {FIX}")
    labels = _labels_array(batch[b"labels"], file_name)
    if labels.shape != (len(images),):
        raise DataFormatError(f"{file_name}: {labels.size:,} labels for {len(images):,} images; {FIX}")
    _check_labels(labels, file_name)
    return images.reshape(-1, 3, 32, 32), labels


def _labels_array(raw, file_name):
    """``raw`` as int64, refusing floats, strings, bytes and bools rather than truncating them to ints."""
    if isinstance(raw, np.ndarray):
        ok = raw.dtype.kind in "iu"
    else:
        ok = isinstance(raw, (list, tuple)) and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in raw)
    if not ok:
        raise DataFormatError(f"{file_name}: b'labels' must be a list of integers 0..9, got "
                              f"{_first_bad(raw)}; {FIX}")
    try:
        return np.asarray(raw, dtype=np.int64)
    except OverflowError:                     # an int beyond int64, e.g. 2**70
        big = next(v for v in raw if not -2**63 <= int(v) < 2**63)
        raise DataFormatError(f"{file_name}: label {big} is outside 0..9 (mislabeled or corrupt); {FIX}") from None


def _first_bad(raw):
    if isinstance(raw, np.ndarray):
        return f"an array of {raw.dtype}"
    if not isinstance(raw, (list, tuple)):
        return type(raw).__name__
    bad = next(v for v in raw if not isinstance(v, (int, np.integer)) or isinstance(v, bool))
    return f"{bad!r} ({type(bad).__name__})"


def parse_python_meta(data, file_name):
    """Class names from the pickled ``batches.meta`` (``b"label_names"``)."""
    meta = safe_pickle.loads(data, file_name)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != NUM_CLASSES or \
            not all(isinstance(n, (bytes, str)) for n in names):
        raise DataFormatError(f"{file_name}: expected b'label_names' with {NUM_CLASSES} names; {FIX}")
    return tuple(n.decode("ascii", "replace") if isinstance(n, bytes) else n for n in names)


PARSERS = {"binary": (parse_binary_batch, parse_binary_meta),
           "python": (parse_python_batch, parse_python_meta)}


def read(path, fmt, is_archive):
    """Read CIFAR-10 from an archive or extracted directory in format ``fmt``; return (train, test)."""
    path = Path(path)
    if is_archive:
        files = _read_archive(path, fmt)
    else:
        files = {m: _read_file(path / m) for m in _needed(fmt)}
    parse_batch, parse_meta = PARSERS[fmt]
    spec = FORMATS[fmt]
    classes = parse_meta(files[spec["meta"]], spec["meta"])
    splits = []
    for part in ("train", "test"):
        batches = [parse_batch(files[m], m) for m in spec[part]]
        images = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
        splits.append(Split(images, labels, classes, source=str(path)))
    return tuple(splits)


def download(root=None, mirror=None, checksums=None, progress=True, retries=2, fmt="binary"):
    """Fetch the ``fmt`` archive ("binary" or "python") into ``locate.download_dir``; return its path.

    Args:
        root: base directory (the archive goes to ``root/cifar10``); default $TINYEFF_DATA or the cache.
        mirror: base URL replacing the official one (or set $TINYEFF_DATA_MIRROR).
        checksums: archive name -> ``"md5:<hex>"`` table replacing ``CHECKSUMS``.
        progress: show a progress bar.
        retries: extra resuming attempts after an interrupted transfer.
        fmt: which official version to fetch.
    """
    if fmt not in FORMATS:
        raise ValueError(f"cifar10: fmt={fmt!r}, expected one of {list(FORMATS)}")
    archive = FORMATS[fmt]["archive"]
    table = CHECKSUMS if checksums is None else checksums
    dest = locate.download_dir(NAME, root) / archive
    return dl.fetch(dl.resolve_url(BASE_URL, archive, mirror), dest, table[archive],
                    progress=progress, retries=retries)


_download = download  # load() takes a flag called ``download``; keep a name for the function


def load(root=None, download=False, fmt=None, **download_options):
    """Load CIFAR-10 as ``(train, test)`` Splits of uint8 (N, 3, 32, 32) images.

    Args:
        root: extra directory to search first (see ``locate.py``).
        download: fetch the archive if none is found.
        fmt: "binary" or "python" to accept only that version; None accepts either (binary first).
        **download_options: passed to ``download`` (mirror, checksums, progress, retries).

    Raises:
        FileNotFoundError: not found and ``download`` is False.
        DataFormatError: a file is truncated, corrupt, mislabeled or an unsafe pickle.
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"cifar10: fmt={fmt!r}, expected one of {list(FORMATS)} or None")
    found = find(root, fmt)
    if found is None:
        if not download:
            wanted = " or ".join(f"{s['archive']} / {s['dir']}/" for f, s in FORMATS.items() if fmt in (None, f))
            raise FileNotFoundError(locate.not_found_message(NAME, wanted, root))
        found = (_download(root, fmt=fmt or "binary", **download_options), fmt or "binary", True)
    return read(*found)
