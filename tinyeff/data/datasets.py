"""``load(name)``: the one entry point that maps a dataset name to the module that reads it.

Each dataset module exposes ``load(root=None, download=False, **options) -> (train, test)``;
downloadable ones also expose ``download(root=None, mirror=None, checksums=None, progress=True)``.
This file only dispatches and lists names; formats live in the dataset modules.
"""
from tinyeff.data import cifar10, fashion_mnist, fashion_mnist_sample, local, synthetic

DATASETS = {m.NAME: m for m in (fashion_mnist, fashion_mnist_sample, cifar10, synthetic)}


def names():
    """All dataset names ``load`` accepts."""
    return tuple(DATASETS)


def _module(name):
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def load(name, root=None, download=False, **options):
    """Load dataset ``name`` as a ``(train, test)`` pair of ``Split``s.

    Args:
        name: "fashion-mnist", "fashion-mnist-sample", "cifar10" or "synthetic"; or the path of a
            MedMNIST-layout .npz or an image folder (``local.py``: options ``image_size``,
            ``test_fraction``, ``seed``).
        root: a directory to search first (see ``locate.py`` for the full search order).
        download: fetch missing files from the official location (or a mirror).
        **options: dataset-specific, e.g. ``fmt="python"`` for cifar10, or ``n_train``, ``shape``,
            ``num_classes``, ``seed`` for synthetic, or ``mirror``/``checksums`` for downloads.

    Returns:
        (train, test): ``Split``s with uint8 (N, C, H, W) images and int64 labels.

    Raises:
        ValueError: unknown name or bad options. FileNotFoundError: files absent and download=False.
        DataFormatError / ChecksumError: files present but broken.
    """
    if name not in DATASETS and local.is_local(name):
        return local.load(name, **options)
    return _module(name).load(root=root, download=download, **options)


def download_dataset(name, root=None, **options):
    """Fetch dataset ``name``'s files (verified) and return where they were written.

    Raises:
        ValueError: ``name`` is unknown or is not downloadable (sample and synthetic need no files).
    """
    module = _module(name)
    if not hasattr(module, "download"):
        raise ValueError(f"{name} is not downloaded: it ships with tinyeff or is generated; "
                         f"just call tinyeff.data.load({name!r})")
    return module.download(root=root, **options)


def require_images(name, train, test):
    """Return ``(train, test)``, or raise DataFormatError if either split is empty.

    An empty split would not fail where it is loaded but later, as a NaN mean loss or accuracy;
    commands that train or evaluate call this first.
    """
    from tinyeff.errors import DataFormatError
    for part, split in (("training", train), ("test", test)):
        if len(split.labels) == 0:
            raise DataFormatError(f"{name}: the {part} split has no images (from {split.source or 'nowhere'}); "
                                  "the files are empty or were cut short; replace them")
    return train, test
