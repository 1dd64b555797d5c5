"""``DataLoader``: seeded, shuffled mini-batches of (float32 images, int64 labels) from a ``Split``.

    loader = DataLoader(train, batch_size=128, shuffle=True, seed=0,
                        preprocess=Standardize.fit(train), augment=[RandomCrop(2), RandomFlip()])
    for x, y in loader:          # x float32 (B, C, H, W), y int64 (B,)
        ...

Epoch e draws its permutation and its augmentation randomness from ``Generator((seed, e))``: every
epoch is shuffled differently, and the same seed replays the same batches on any machine. Iterating
the loader again starts the next epoch; ``set_epoch`` jumps to one (e.g. when resuming training).
Every example appears exactly once per epoch; the last batch is smaller unless ``drop_last``.
No worker processes or prefetching: batches are built on demand from in-memory arrays.
"""
import numpy as np

from tinyeff.data.transforms import scale_01


class DataLoader:
    """Iterate a ``Split`` in mini-batches.

    Args:
        split: a ``Split`` (uint8 images (N, C, H, W), int64 labels (N,)).
        batch_size: examples per batch (>= 1).
        shuffle: draw a new permutation each epoch; otherwise keep the split's order.
        seed: base seed of the per-epoch generators.
        preprocess: uint8 batch -> float32 batch (default ``scale_01``).
        augment: a callable ``(x, rng) -> x`` or a sequence of them, applied to the uint8 batch
            before ``preprocess``; None for none.
        drop_last: skip a final batch smaller than ``batch_size``.
    """

    def __init__(self, split, batch_size, shuffle=True, seed=0, preprocess=scale_01, augment=None,
                 drop_last=False):
        if int(batch_size) < 1:
            raise ValueError(f"DataLoader: batch_size={batch_size} must be at least 1")
        if not hasattr(split, "images") or not hasattr(split, "labels"):
            raise TypeError(f"DataLoader: expected a Split (from tinyeff.data.load), got {type(split).__name__}")
        self.split = split
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.preprocess = preprocess or scale_01
        self.augment = [] if augment is None else list(augment) if isinstance(augment, (list, tuple)) else [augment]
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def __len__(self):
        """Number of batches per epoch."""
        n = len(self.split.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch):
        """Make the next iteration produce epoch ``epoch``'s order."""
        self.epoch = int(epoch)

    def order(self, epoch):
        """The example indices of ``epoch`` in visiting order (int64, length N)."""
        n = len(self.split.labels)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng((self.seed, epoch)).permutation(n)

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        # one generator per epoch: its first draw is the permutation, the rest feed augmentation
        rng = np.random.default_rng((self.seed, epoch))
        n = len(self.split.labels)
        index = rng.permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            batch = index[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.split.images[batch]
            for transform in self.augment:
                x = transform(x, rng)
            x = np.asarray(self.preprocess(x), dtype=np.float32)
            yield x, self.split.labels[batch]

    def __repr__(self):
        return (f"DataLoader({len(self.split.labels)} examples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed}, epoch={self.epoch}, batches={len(self)})")
