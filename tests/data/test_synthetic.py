"""The synthetic dataset: any shape, balanced, deterministic per seed, and learnable."""
import numpy as np
import pytest

from tinyeff import data


def test_synthetic_shapes_and_balance():
    train, test = data.load("synthetic", n_train=103, n_test=17, shape=(3, 5, 7), num_classes=4, seed=1)
    assert train.images.shape == (103, 3, 5, 7) and test.images.shape == (17, 3, 5, 7)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    counts = np.bincount(train.labels, minlength=4)
    assert counts.max() - counts.min() <= 1 and train.classes == ("class_0", "class_1", "class_2", "class_3")


def test_synthetic_same_seed_same_arrays():
    a = data.load("synthetic", n_train=50, n_test=10, seed=7)
    b = data.load("synthetic", n_train=50, n_test=10, seed=7)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.images, y.images)
        np.testing.assert_array_equal(x.labels, y.labels)


def test_synthetic_different_seed_different_arrays():
    a, _ = data.load("synthetic", n_train=50, n_test=0, seed=1)
    b, _ = data.load("synthetic", n_train=50, n_test=0, seed=2)
    assert not np.array_equal(a.images, b.images)


def test_synthetic_is_learnable_by_nearest_class_mean():
    train, test = data.load("synthetic", n_train=500, n_test=200, shape=(1, 12, 12), num_classes=5, seed=0)
    x_train = train.images.reshape(len(train), -1).astype(np.float64)
    means = np.stack([x_train[train.labels == k].mean(axis=0) for k in range(5)])  # (5, 144)
    x_test = test.images.reshape(len(test), -1).astype(np.float64)
    pred = np.argmin(((x_test[:, None] - means[None]) ** 2).sum(axis=2), axis=1)
    assert (pred == test.labels).mean() > 0.9  # chance is 0.2


@pytest.mark.parametrize("kwargs,match", [({"n_train": 0}, "n_train=0"), ({"shape": (1, 0, 4)}, "shape="),
                                          ({"num_classes": 1}, "num_classes=1"), ({"noise": 2.0}, "noise=2.0")])
def test_synthetic_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load("synthetic", **kwargs)


def test_unknown_dataset_lists_names():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; choose one of fashion-mnist"):
        data.load("mnist")
