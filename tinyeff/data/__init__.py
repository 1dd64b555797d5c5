"""Datasets, preprocessing and mini-batching: ``load(name)`` returns (train, test) ``Split``s.

Names: "fashion-mnist", "fashion-mnist-sample" (ships with the package), "cifar10", "synthetic".
See ``datasets.py`` for dispatch, one module per dataset for formats, ``download.py`` for fetching,
``transforms.py`` for preprocessing/augmentation and ``loader.py`` for batching.

NOTE: the fetch-a-dataset function is exported as ``download_dataset``, not ``download``, so that
``tinyeff.data.download`` stays the module (``download.py``) instead of being shadowed by a function.
"""
from tinyeff.data.datasets import download_dataset, load, names, require_images
from tinyeff.data.loader import DataLoader
from tinyeff.data.split import Split
from tinyeff.data.transforms import RandomCrop, RandomFlip, Standardize, scale_01, scale_pm1

__all__ = ["load", "download_dataset", "names", "require_images", "Split", "DataLoader",
           "scale_01", "scale_pm1", "Standardize", "RandomCrop", "RandomFlip"]
