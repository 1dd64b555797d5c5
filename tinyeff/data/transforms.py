"""Preprocessing and augmentation of image batches (N, C, H, W), vectorised over the batch.

Preprocessing maps uint8 pixels to float32: ``scale_01`` ([0, 1]), ``scale_pm1`` ([-1, 1]) and
``Standardize`` (per-channel mean/std fitted on the training split, applied to any split, so the test
set never leaks into the statistics).

Augmentation works on uint8 batches before preprocessing (so the zero padding of a crop is black, as
in the usual recipes) and takes a ``numpy.random.Generator``, so a seeded loader replays it exactly:
``RandomCrop(padding)`` and ``RandomFlip(p)``. No per-image Python loops: one fancy-indexing gather
crops the whole batch. Colour jitter, rotation and resizing are left out on purpose.

A model records its preprocessing as a JSON-able dict (``preprocess_config``, saved in its file);
``make_preprocess`` turns that dict back into the function, and ``make_augment`` builds
augmentations from their names (what the CLI and ``fit`` accept).
"""
import numpy as np


def scale_01(x):
    """uint8 (N, C, H, W) -> float32 in [0, 1]."""
    return np.asarray(x, dtype=np.float32) / np.float32(255)


def scale_pm1(x):
    """uint8 (N, C, H, W) -> float32 in [-1, 1]."""
    return np.asarray(x, dtype=np.float32) / np.float32(127.5) - np.float32(1)


class Standardize:
    """Per-channel ``(x / 255 - mean) / std`` with statistics fitted on a training split.

    Attributes:
        mean, std: float32 arrays of shape (C,), on the [0, 1] pixel scale.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        std = np.asarray(std, dtype=np.float32).reshape(-1)
        # NOTE: a constant channel has std 0; use 1 so it maps to 0 instead of dividing by zero
        self.std = np.where(std > 0, std, np.float32(1))
        if self.mean.shape != self.std.shape:
            raise ValueError(f"Standardize: mean has {self.mean.size} channels, std {std.size}; give one per channel")

    @classmethod
    def fit(cls, images):
        """Fit mean/std per channel on uint8 images (N, C, H, W) or a ``Split``; float64 accumulation."""
        x = getattr(images, "images", images)
        if x.ndim != 4:
            raise ValueError(f"Standardize.fit: images must be (N, C, H, W), got shape {x.shape}")
        x = x.astype(np.float64) / 255
        return cls(x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3)))

    def __call__(self, x):
        if x.shape[1] != self.mean.size:
            raise ValueError(f"Standardize: batch has {x.shape[1]} channels, fitted on {self.mean.size}; "
                             f"fit on a split with the same channels")
        return (scale_01(x) - self.mean[:, None, None]) / self.std[:, None, None]

    def __repr__(self):
        return f"Standardize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop:
    """Zero-pad by ``padding`` on every side, then crop back to (H, W) at a random offset per image."""

    def __init__(self, padding):
        if int(padding) < 0:
            raise ValueError(f"RandomCrop: padding={padding} must be >= 0")
        self.padding = int(padding)

    def __call__(self, x, rng):
        """x (N, C, H, W) any dtype, rng a numpy Generator -> same shape and dtype."""
        p = self.padding
        if p == 0:
            return x.copy()
        n, c, h, w = x.shape
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))  # (N, C, H+2p, W+2p)
        dy = rng.integers(0, 2 * p + 1, size=n)
        dx = rng.integers(0, 2 * p + 1, size=n)
        rows = dy[:, None] + np.arange(h)  # (N, H)
        cols = dx[:, None] + np.arange(w)  # (N, W)
        return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                      rows[:, None, :, None], cols[:, None, None, :]]

    def __repr__(self):
        return f"RandomCrop(padding={self.padding})"


class RandomFlip:
    """Mirror each image left-right with probability ``p``."""

    def __init__(self, p=0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomFlip: p={p} must be a probability in [0, 1]")
        self.p = float(p)

    def __call__(self, x, rng):
        """x (N, C, H, W) any dtype, rng a numpy Generator -> same shape and dtype."""
        flip = rng.random(len(x)) < self.p  # (N,)
        return np.where(flip[:, None, None, None], x[..., ::-1], x)

    def __repr__(self):
        return f"RandomFlip(p={self.p})"


# --- preprocessing recorded with a model, augmentations by name --------------------------------------
PREPROCESS_KINDS = ("standardize", "scale01", "scale_pm1")


def preprocess_config(train_split, kind="standardize"):
    """The preprocessing ``kind`` as a JSON-able dict, saved with the model so ``eval`` applies it too:
    "standardize" (per channel, fitted on the training images), "scale01" ([0, 1]) or "scale_pm1"
    ([-1, 1]).

    It also records the input the model was trained on -- ``image_size`` [H, W], ``channels`` and
    the class names -- so ``tinyeff predict`` can prepare an image file and name the class.
    """
    if kind not in PREPROCESS_KINDS:
        raise ValueError(f"unknown preprocessing {kind!r}; choose {', '.join(PREPROCESS_KINDS)}")
    _, c, h, w = train_split.images.shape
    record = {"kind": kind}
    if kind == "standardize":
        std = Standardize.fit(train_split.images)
        record.update(mean=std.mean.tolist(), std=std.std.tolist())
    record.update(image_size=[int(h), int(w)], channels=int(c), classes=[str(k) for k in train_split.classes])
    return record


def make_preprocess(config):
    """The uint8 -> float32 function a ``preprocess_config`` dict describes."""
    if config is None:
        return scale_01
    kind = config.get("kind")
    if kind == "scale01":
        return scale_01
    if kind == "scale_pm1":
        return scale_pm1
    if kind != "standardize":
        raise ValueError(f"unknown preprocessing {kind!r}; expected one of {', '.join(PREPROCESS_KINDS)}")
    return Standardize(config["mean"], config["std"])


def make_augment(names, image_size):
    """Augmentations by name: "crop" (random crop, padding size // 8) and "flip" (horizontal)."""
    table = {"crop": lambda: RandomCrop(max(1, image_size // 8)), "flip": lambda: RandomFlip()}
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {sorted(table)}")
    return [table[n]() for n in names]
