"""Your own data: ``load(path)`` for a MedMNIST-layout ``.npz`` or an image folder.

- ``.npz`` (MedMNIST's layout): ``train_images``, ``train_labels``, ``test_images``,
  ``test_labels`` (``val_*`` is read and, having no role in tinyeff's training, joined to nothing);
  images (N, H, W) grey or (N, H, W, C) RGB uint8, labels (N,) or (N, 1). Read with
  ``allow_pickle=False``. Multi-label files (labels (N, K > 1)) are refused.
- a folder: ``train/`` and ``test/`` sub-folders, each with one sub-folder per class; or a single
  tree of class folders, split per class by a seeded ``test_fraction``. Class names are the folder
  names, sorted.

Class names travel with the Splits and are recorded in a trained model's file.
"""
import os

import numpy as np

from tinyeff.data.images import EXTENSIONS, read_images
from tinyeff.data.split import Split
from tinyeff.errors import DataFormatError

NPZ_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


def is_local(name):
    """True if ``name`` names a file or folder rather than a built-in dataset."""
    return os.path.isdir(name) or name.endswith(".npz") or os.sep in name


def load(path, image_size=None, test_fraction=0.2, seed=0):
    """(train, test) Splits from a MedMNIST-layout .npz or an image folder.

    Raises:
        FileNotFoundError: ``path`` does not exist. DataFormatError: the layout is not one of the two.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or folder; --data takes a dataset name, a .npz file "
                                "(MedMNIST layout) or an image folder")
    if os.path.isdir(path):
        return load_folder(path, image_size, test_fraction, seed)
    return load_npz(path, image_size)


def _resize(images, image_size):
    if image_size is None:
        return images
    from PIL import Image
    c = images.shape[1]
    out = []
    for img in images:
        pil = Image.fromarray(img[0] if c == 1 else img.transpose(1, 2, 0))
        a = np.asarray(pil.resize((image_size, image_size), Image.BILINEAR), np.uint8)
        out.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    return np.stack(out)


def _npz_split(archive, part, path, image_size):
    images, labels = archive[f"{part}_images"], archive[f"{part}_labels"]
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise DataFormatError(f"{path}: {part}_images must be uint8 (N, H, W) or (N, H, W, C), got "
                              f"{images.dtype} {images.shape}")
    if labels.ndim == 2 and labels.shape[1] != 1:
        raise DataFormatError(f"{path}: {part}_labels has shape {labels.shape}: a multi-label dataset; tinyeff "
                              "trains single-label classifiers (one label per image)")
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(_resize(images, image_size)), labels.reshape(-1).astype(np.int64)


def load_npz(path, image_size=None):
    """MedMNIST layout; class names are the label numbers (the files carry no names)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in NPZ_KEYS if k not in archive.files]
            if missing:
                raise DataFormatError(f"{path}: missing arrays {missing}; a MedMNIST-layout .npz holds "
                                      f"{', '.join(NPZ_KEYS)} (val_* optional)")
            (xtr, ytr), (xte, yte) = (_npz_split(archive, p, path, image_size) for p in ("train", "test"))
    except (ValueError, OSError, EOFError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(f"{path}: not a readable .npz of arrays ({exc})") from exc
    classes = tuple(str(i) for i in range(int(max(ytr.max(initial=0), yte.max(initial=0))) + 1))
    return Split(xtr, ytr, classes, path), Split(xte, yte, classes, path)


def _class_files(folder):
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    files = {c: sorted(os.path.join(folder, c, f) for f in os.listdir(os.path.join(folder, c))
                       if f.lower().endswith(EXTENSIONS)) for c in classes}
    return {c: f for c, f in files.items() if f}


def _split_from(files_by_class, classes, image_size, channels, where):
    paths = [p for c in classes for p in files_by_class.get(c, [])]
    labels = np.array([i for i, c in enumerate(classes) for _ in files_by_class.get(c, [])], np.int64)
    return Split(read_images(paths, image_size, channels), labels, classes, where)


def _channels(paths):
    from PIL import Image
    from tinyeff.data.images import GREY_MODES
    for p in paths:
        try:
            with Image.open(p) as img:
                if img.mode not in GREY_MODES:
                    return 3
        except OSError:
            continue            # read_images reports the unreadable file by name
    return 1


def load_folder(folder, image_size=None, test_fraction=0.2, seed=0):
    """``train/`` + ``test/`` class folders, or one class-folder tree split by ``test_fraction`` (seeded)."""
    if os.path.isdir(os.path.join(folder, "train")) and os.path.isdir(os.path.join(folder, "test")):
        train, test = _class_files(os.path.join(folder, "train")), _class_files(os.path.join(folder, "test"))
    else:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"--test-fraction {test_fraction} must be in (0, 1)")
        rng, train, test = np.random.default_rng(seed), {}, {}
        for c, files in _class_files(folder).items():
            order = rng.permutation(len(files))
            n_test = int(round(test_fraction * len(files)))
            test[c] = [files[i] for i in sorted(order[:n_test])]
            train[c] = [files[i] for i in sorted(order[n_test:])]
    classes = tuple(sorted(set(train) | set(test)))
    if len(classes) < 2:
        raise DataFormatError(f"{folder}: found {len(classes)} class folder(s) with images; an image folder holds "
                              "one sub-folder per class (or train/ and test/ folders that do)")
    channels = _channels([p for files in list(train.values()) + list(test.values()) for p in files])
    return (_split_from(train, classes, image_size, channels, folder),
            _split_from(test, classes, image_size, channels, folder))
