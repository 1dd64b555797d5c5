"""Depthwise convolution kernels: one filter per input channel (MobileNet, EfficientNet).

``spec.py`` holds the contract and the NumPy reference (KH*KW shifted multiply-adds over whole
planes); ``c.py`` wraps csrc/depthwise.c, a direct loop per output plane. Importing this package
registers the reference; the C tier registers through ``tinyeff.kernels.c``.
"""
from tinyeff.kernels.depthwise import spec  # noqa: F401
