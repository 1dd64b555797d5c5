"""``Split``: one part (train or test) of a labelled image dataset, as plain NumPy arrays.

Every loader in ``tinyeff.data`` returns a pair of these, so training code sees one layout whatever
the file format was: uint8 images in NCHW, int64 labels, and the class names. The dataclass checks
that layout once, on construction; it deliberately holds no transforms or batching (see
``transforms.py`` and ``loader.py``).
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """A labelled set of images.

    Attributes:
        images: uint8 array, shape (N, C, H, W).
        labels: int64 array, shape (N,), each in [0, len(classes)).
        classes: class names; ``classes[label]`` names a label.
        source: where the data came from (a path, or a description for generated data).
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple
    source: str = ""

    def __post_init__(self):
        x, y = self.images, self.labels
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
            raise ValueError(
                f"Split: images must be a uint8 array of shape (N, C, H, W), got "
                f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}; "
                f"convert with np.asarray(images, dtype=np.uint8) and add a channel axis if needed")
        if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
            raise ValueError(
                f"Split: labels must be an int64 array of shape (N,), got "
                f"{getattr(y, 'dtype', type(y).__name__)} {getattr(y, 'shape', '')}; "
                f"convert with labels.astype(np.int64)")
        if len(x) != len(y):
            raise ValueError(f"Split: {len(x)} images but {len(y)} labels; they must pair one to one")
        object.__setattr__(self, "classes", tuple(self.classes))
        if len(y) and (y.min() < 0 or y.max() >= len(self.classes)):
            raise ValueError(
                f"Split: labels span [{y.min()}, {y.max()}] but there are {len(self.classes)} classes; "
                f"labels must lie in [0, {len(self.classes)})")

    def __len__(self):
        return len(self.labels)

    @property
    def num_classes(self):
        """Number of classes (``len(classes)``)."""
        return len(self.classes)

    def __repr__(self):
        return (f"Split(images={self.images.dtype}{list(self.images.shape)}, labels={len(self.labels)}, "
                f"classes={len(self.classes)}, source={self.source!r})")

    def head(self, n):
        """The first ``n`` examples (all of them if there are fewer): ``--limit N`` for quick runs.

        Raises:
            ValueError: ``n`` is not a positive integer.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"limit: {n!r} must be a positive number of images, e.g. --limit 1000")
        return Split(self.images[:n], self.labels[:n], self.classes, self.source)
