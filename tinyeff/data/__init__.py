"""Datasets, preprocessing and mini-batching: ``load(name)`` returns (train, test) ``Split``s.

Names: "fashion-mnist", "fashion-mnist-sample" (ships with the package), "cifar10", "synthetic".
See ``datasets.py`` for dispatch, one module per dataset for formats, ``download.py`` for fetching,
``transforms.py`` for preprocessing/augmentation and ``loader.py`` for batching.
"""
from tinyeff.data.datasets import download, load, names
from tinyeff.data.loader import DataLoader
from tinyeff.data.split import Split
from tinyeff.data.transforms import RandomCrop, RandomFlip, Standardize, scale_01, scale_pm1

__all__ = ["load", "download", "names", "Split", "DataLoader",
           "scale_01", "scale_pm1", "Standardize", "RandomCrop", "RandomFlip"]
