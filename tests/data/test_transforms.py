"""Preprocessing and augmentation: value ranges, fitted statistics, crop and flip semantics."""
import numpy as np
import pytest

from tinyeff.data import RandomCrop, RandomFlip, Split, Standardize, scale_01, scale_pm1


def test_scale_01_and_pm1_ranges():
    x = np.array([0, 51, 255], dtype=np.uint8).reshape(1, 1, 1, 3)
    np.testing.assert_allclose(scale_01(x).ravel(), [0.0, 0.2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(scale_pm1(x).ravel(), [-1.0, -0.6, 1.0], rtol=1e-6)
    assert scale_01(x).dtype == np.float32 and scale_pm1(x).dtype == np.float32


def test_standardize_fits_per_channel_stats_on_train(rng):
    x = np.stack([rng.integers(0, 100, (64, 8, 8)), rng.integers(100, 256, (64, 8, 8))], axis=1).astype(np.uint8)
    train = Split(x, np.zeros(64, dtype=np.int64), ("a",))
    std = Standardize.fit(train)
    np.testing.assert_allclose(std.mean, (x / 255).mean(axis=(0, 2, 3)), rtol=1e-6)
    out = std(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), [0, 0], atol=1e-5)  # float32 rounding
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), [1, 1], rtol=1e-4)


def test_standardize_constant_channel_maps_to_zero():
    x = np.full((4, 1, 2, 2), 7, dtype=np.uint8)
    std = Standardize.fit(x)
    np.testing.assert_array_equal(std(x), np.zeros_like(x, dtype=np.float32))


def test_standardize_channel_mismatch_is_explained():
    std = Standardize([0.5], [0.2])
    with pytest.raises(ValueError, match="batch has 3 channels, fitted on 1"):
        std(np.zeros((2, 3, 4, 4), dtype=np.uint8))


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image(rng):
    x = rng.integers(1, 256, (16, 3, 6, 5), dtype=np.uint8)
    out = RandomCrop(2)(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    # replay the same offsets and check each image against a plain per-image crop
    g = np.random.default_rng(0)
    dy, dx = g.integers(0, 5, size=16), g.integers(0, 5, size=16)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for i in range(16):
        np.testing.assert_array_equal(out[i], padded[i, :, dy[i]:dy[i] + 6, dx[i]:dx[i] + 5])


def test_random_crop_zero_padding_appears_only_at_the_border(rng):
    x = np.full((200, 1, 4, 4), 9, dtype=np.uint8)
    out = RandomCrop(1)(x, rng)
    assert set(np.unique(out)) == {0, 9}
    assert (out[:, :, 1:3, 1:3] == 9).all()  # a 1-pixel shift never reaches the centre
    assert (out == 0).any()


def test_random_flip_mirrors_selected_images(rng):
    x = rng.integers(0, 256, (300, 2, 3, 4), dtype=np.uint8)
    out = RandomFlip(0.5)(x, rng)
    flipped = np.array([np.array_equal(out[i], x[i, :, :, ::-1]) for i in range(300)])
    kept = np.array([np.array_equal(out[i], x[i]) for i in range(300)])
    assert (flipped | kept).all()
    assert 100 < flipped.sum() < 200


def test_random_flip_p1_and_p0(rng):
    x = rng.integers(0, 256, (5, 1, 2, 3), dtype=np.uint8)
    np.testing.assert_array_equal(RandomFlip(1.0)(x, rng), x[..., ::-1])
    np.testing.assert_array_equal(RandomFlip(0.0)(x, rng), x)
