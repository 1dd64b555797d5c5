"""DataLoader: batch shapes and dtypes, coverage of every index once per epoch, seeded determinism."""
import numpy as np
import pytest

from tinyeff.data import DataLoader, RandomCrop, RandomFlip, Split


@pytest.fixture
def split():
    n = 23
    images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 1, 4, 4), np.uint8)  # image i is all i
    return Split(images, np.arange(n, dtype=np.int64) % 3, ("a", "b", "c"))


def _ids(loader):
    return [x[:, 0, 0, 0].round().astype(int) for x, _ in loader]


def test_batches_shapes_dtypes_and_len(split):
    loader = DataLoader(split, batch_size=5, seed=0, preprocess=lambda x: x.astype(np.float32))
    batches = list(loader)
    assert len(loader) == 5 == len(batches)
    assert [len(y) for _, y in batches] == [5, 5, 5, 5, 3]
    x, y = batches[0]
    assert x.dtype == np.float32 and x.shape == (5, 1, 4, 4) and y.dtype == np.int64


def test_drop_last(split):
    loader = DataLoader(split, batch_size=5, drop_last=True)
    assert len(loader) == 4 and [len(y) for _, y in loader] == [5] * 4


def test_every_index_exactly_once_per_epoch_and_labels_follow(split):
    loader = DataLoader(split, batch_size=4, seed=3, preprocess=lambda x: x.astype(np.float32))
    for _ in range(3):
        seen = np.concatenate(_ids(loader))
        assert sorted(seen.tolist()) == list(range(23))
    for x, y in loader:
        np.testing.assert_array_equal(y, x[:, 0, 0, 0].astype(int) % 3)


def test_epochs_differ_and_same_seed_replays(split):
    f32 = lambda x: x.astype(np.float32)  # noqa: E731
    a, b = DataLoader(split, 23, seed=5, preprocess=f32), DataLoader(split, 23, seed=5, preprocess=f32)
    epochs_a = [_ids(a)[0] for _ in range(3)]
    epochs_b = [_ids(b)[0] for _ in range(3)]
    for ea, eb in zip(epochs_a, epochs_b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(epochs_a[0], epochs_a[1])
    b.set_epoch(1)
    np.testing.assert_array_equal(_ids(b)[0], epochs_a[1])
    np.testing.assert_array_equal(a.order(2), epochs_a[2])


def test_no_shuffle_keeps_order(split):
    loader = DataLoader(split, 10, shuffle=False, preprocess=lambda x: x.astype(np.float32))
    assert np.concatenate(_ids(loader)).tolist() == list(range(23))


def test_default_preprocess_scales_to_unit_range(split):
    x, _ = next(iter(DataLoader(split, 23, shuffle=False)))
    assert x.dtype == np.float32 and x.max() == pytest.approx(22 / 255)


def test_augmentation_is_deterministic_per_seed(rng):
    images = rng.integers(0, 256, (40, 3, 8, 8), dtype=np.uint8)
    split = Split(images, np.zeros(40, dtype=np.int64), ("only",))
    make = lambda: DataLoader(split, 8, seed=11, augment=[RandomCrop(2), RandomFlip()])  # noqa: E731
    for (xa, _), (xb, _) in zip(make(), make()):
        np.testing.assert_array_equal(xa, xb)
    xs = np.concatenate([x for x, _ in make()])
    assert xs.shape == (40, 3, 8, 8) and (xs == 0).any()  # zero padding visible after the crop


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size=0 must be at least 1"):
        DataLoader(Split(np.zeros((1, 1, 1, 1), np.uint8), np.zeros(1, np.int64), ("a",)), 0)
