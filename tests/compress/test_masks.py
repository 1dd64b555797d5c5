"""Pure mask functions: counts, composition, structure, N:M groups, global threshold, bad input."""
import numpy as np
import pytest

from tinyeff.compress import masks


@pytest.mark.parametrize("amount", [0.0, 0.5, 0.9, 0.99, 1.0])
def test_magnitude_mask_prunes_exact_fraction_of_smallest(amount, rng):
    w = rng.standard_normal((17, 31))
    keep = masks.magnitude_mask(w, amount)
    assert keep.dtype == bool and keep.shape == w.shape
    assert (~keep).sum() == round(amount * w.size)
    if 0 < amount < 1:
        assert np.abs(w[~keep]).max() <= np.abs(w[keep]).min()


def test_magnitude_mask_int_amount_is_a_count(rng):
    w = rng.standard_normal((8, 8))
    assert (~masks.magnitude_mask(w, 5)).sum() == 5


def test_magnitude_mask_composes_relative_to_kept(rng):
    w = rng.standard_normal((20, 20))
    first = masks.magnitude_mask(w, 0.5)
    second = masks.magnitude_mask(w, 0.5, mask=first)
    assert not (second & ~first).any()                 # nothing revived
    assert second.sum() == 100                         # 50% of the 200 still kept


def test_random_mask_is_seeded_and_differs_from_magnitude(rng):
    w = rng.standard_normal((30, 30))
    a, b = masks.random_mask(w, 0.5, seed=3), masks.random_mask(w, 0.5, seed=3)
    np.testing.assert_array_equal(a, b)
    assert (~a).sum() == 450
    assert not np.array_equal(a, masks.magnitude_mask(w, 0.5))


@pytest.mark.parametrize("norm", [1, 2])
def test_channel_mask_removes_whole_filters_with_smallest_norm(norm, rng):
    w = rng.standard_normal((8, 3, 3, 3))
    w[2] *= 0.01
    w[5] *= 0.02
    keep = masks.channel_mask(w, 0.25, dim=0, norm=norm)
    alive = keep.reshape(8, -1).all(axis=1)
    assert keep.reshape(8, -1).all(axis=1).sum() + (~keep.reshape(8, -1)).all(axis=1).sum() == 8
    np.testing.assert_array_equal(np.flatnonzero(~alive), [2, 5])


def test_channel_mask_composes_by_channels(rng):
    w = rng.standard_normal((8, 4))
    first = masks.channel_mask(w, 0.5)
    second = masks.channel_mask(w, 0.5, mask=first)
    assert second.any(axis=1).sum() == 2


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8)])
def test_nm_mask_keeps_n_of_every_m_inputs(n, m, rng):
    w = rng.standard_normal((6, 16, 3, 3))
    keep = masks.nm_mask(w, n, m)
    groups = keep.transpose(0, 2, 3, 1).reshape(-1, m)
    assert (groups.sum(axis=1) == n).all()
    wt = np.abs(w).transpose(0, 2, 3, 1).reshape(-1, m)
    assert (np.where(groups, wt, np.inf).min(axis=1) >= np.where(groups, -np.inf, wt).max(axis=1)).all()


def test_nm_mask_linear_groups_along_inputs(rng):
    w = rng.standard_normal((5, 8))
    keep = masks.nm_mask(w, 2, 4)
    assert (keep.reshape(5, 2, 4).sum(axis=2) == 2).all()


def test_nm_mask_rejects_indivisible_input_dim(rng):
    with pytest.raises(ValueError, match="not divisible by m=4"):
        masks.nm_mask(rng.standard_normal((4, 6)), 2, 4)


def test_global_mask_uses_one_threshold(rng):
    weights = {"a": rng.standard_normal((10, 10)), "b": 10 * rng.standard_normal((10, 10))}
    keep = masks.global_magnitude_masks(weights, 0.5)
    pruned = np.concatenate([np.abs(weights[k][~keep[k]]) for k in weights])
    kept = np.concatenate([np.abs(weights[k][keep[k]]) for k in weights])
    assert pruned.size == 100 and pruned.max() <= kept.min()
    assert (~keep["a"]).sum() > (~keep["b"]).sum()     # small layer loses more


@pytest.mark.parametrize("amount", [1.5, -0.1, float("nan"), "half", True, 10_000])
def test_bad_amount_is_rejected(amount, rng):
    with pytest.raises(ValueError, match="amount"):
        masks.magnitude_mask(rng.standard_normal((4, 4)), amount)
