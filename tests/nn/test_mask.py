"""Pruning masks are module state: load_state_dict re-attaches them, so any file or checkpoint keeps them."""
import numpy as np
import pytest

from tinyeff import Tensor, nn
from tinyeff.compress import prune


def test_load_state_dict_reattaches_a_mask_and_its_transform(rng):
    pruned = prune(nn.Linear(6, 4), 0.5)
    fresh = nn.Linear(6, 4)
    fresh.load_state_dict(pruned.state_dict())
    assert list(fresh.param_transforms("weight")) == ["prune"]
    np.testing.assert_array_equal(fresh.weight_mask, pruned.weight_mask)
    fresh.weight.data[:] = 1.0                       # the mask, not the stored zeros, keeps pruned weights out
    x = rng.standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_allclose(fresh(Tensor(x)).data, x @ pruned.weight_mask.T + fresh.bias.data, rtol=1e-6)


def test_a_mask_of_the_wrong_shape_changes_nothing():
    fresh = nn.Linear(6, 4)
    state = dict(fresh.state_dict(), weight_mask=np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="weight_mask"):
        fresh.load_state_dict(state)
    assert fresh.param_transforms("weight") == {} and getattr(fresh, "weight_mask", None) is None


def test_a_mask_for_a_missing_parameter_is_unexpected():
    with pytest.raises(KeyError, match="unexpected.*gamma_mask"):
        nn.Linear(6, 4).load_state_dict(dict(nn.Linear(6, 4).state_dict(), gamma_mask=np.ones(4, bool)))
