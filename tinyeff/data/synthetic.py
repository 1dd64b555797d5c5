"""Procedurally generated labelled images of any shape: learnable, deterministic, instant.

Each class gets a prototype: per channel, a sum of three random 2-D sinusoids (integer frequencies
1..3, random phases and amplitudes), normalised to [-1, 1]. An example is its class prototype at a
random contrast, plus a random brightness offset and Gaussian pixel noise, clipped to uint8:

    x = clip(128 + 80 * contrast * prototype[y] + offset + 255 * noise * N(0, 1), 0, 255)

so a linear model already beats chance and a small CNN gets near-perfect accuracy at the default
noise. Everything comes from one ``numpy.random.Generator(seed)``: same arguments, same arrays. For
tests and benchmarks; it makes no claim to resemble natural images.
"""
import numpy as np

from tinyeff.data.split import Split

NAME = "synthetic"


def _prototypes(rng, num_classes, shape):
    c, h, w = shape
    yy, xx = np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij")  # (H, W) each
    freqs = rng.integers(1, 4, size=(num_classes, c, 3, 2))
    phases = rng.uniform(0, 2 * np.pi, size=(num_classes, c, 3))
    amps = rng.uniform(0.5, 1.0, size=(num_classes, c, 3))
    angle = 2 * np.pi * (freqs[..., 0, None, None] * yy + freqs[..., 1, None, None] * xx) \
        + phases[..., None, None]  # (K, C, 3, H, W)
    waves = (amps[..., None, None] * np.sin(angle)).sum(axis=2)  # (K, C, H, W)
    return waves / amps.sum(axis=2)[..., None, None]  # in [-1, 1]


def _examples(rng, prototypes, n, noise):
    k = len(prototypes)
    labels = rng.permutation(np.arange(n) % k).astype(np.int64)  # balanced classes
    contrast = rng.uniform(0.6, 1.0, size=(n, 1, 1, 1))
    offset = rng.uniform(-20, 20, size=(n, 1, 1, 1))
    pixels = rng.standard_normal((n,) + prototypes.shape[1:])
    x = 128 + 80 * contrast * prototypes[labels] + offset + 255 * noise * pixels
    return np.clip(np.rint(x), 0, 255).astype(np.uint8), labels


def load(root=None, download=False, n_train=1000, n_test=200, shape=(1, 28, 28), num_classes=10,
         seed=0, noise=0.15):
    """Generate ``(train, test)`` Splits of class-patterned noisy images.

    Args:
        root, download: accepted for a uniform ``tinyeff.data.load`` signature; unused.
        n_train, n_test: number of examples in each split (n_test may be 0).
        shape: (C, H, W) of every image.
        num_classes: number of classes (>= 2); labels are balanced to within one.
        seed: seed of the single Generator everything is drawn from.
        noise: standard deviation of the pixel noise as a fraction of 255.

    Raises:
        ValueError: a count, shape, class count or noise level out of range.
    """
    if int(n_train) < 1 or int(n_test) < 0:
        raise ValueError(f"synthetic: n_train={n_train} must be >= 1 and n_test={n_test} >= 0")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"synthetic: shape={shape} must be (C, H, W) with every entry >= 1")
    if int(num_classes) < 2:
        raise ValueError(f"synthetic: num_classes={num_classes} must be at least 2")
    if not 0 <= noise <= 1:
        raise ValueError(f"synthetic: noise={noise} must be a fraction of 255 in [0, 1]")
    rng = np.random.default_rng(seed)
    prototypes = _prototypes(rng, int(num_classes), shape)
    classes = tuple(f"class_{k}" for k in range(int(num_classes)))
    source = f"synthetic(shape={shape}, num_classes={num_classes}, seed={seed}, noise={noise})"
    train = Split(*_examples(rng, prototypes, int(n_train), noise), classes, source=source)
    test = Split(*_examples(rng, prototypes, int(n_test), noise), classes, source=source)
    return train, test
