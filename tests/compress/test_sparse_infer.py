"""to_sparse: sparse modules match the masked dense model, report nnz / MACs, and follow the policy."""
import copy

import numpy as np
import pytest

from tinyeff import Tensor, models, no_grad
from tinyeff.compress import prune
from tinyeff.compress.sparse_infer import SparseConv2d, SparseLinear, sparse_layers, to_sparse


@pytest.fixture
def pruned_cnn():
    model = models.create("seed-cnn", in_channels=1, input_size=20).eval()
    return prune(model, 0.8, "global")


def _run(model, x):
    with no_grad():
        return model(Tensor(x)).data


def test_to_sparse_always_matches_masked_model(pruned_cnn, rng):
    x = rng.random((5, 1, 20, 20)).astype(np.float32)
    sparse, decisions = to_sparse(copy.deepcopy(pruned_cnn), x, policy="always")
    assert set(decisions) == {"0", "3", "6", "9", "11"} and all(d["sparse"] for d in decisions.values())
    assert isinstance(sparse[3], SparseConv2d) and isinstance(sparse[9], SparseLinear)
    assert sparse[3].fuse_relu and type(sparse[4]).__name__ == "Identity"
    assert sparse[3].pool == 2 and type(sparse[5]).__name__ == "Identity"    # MaxPool2d(2) fused too
    np.testing.assert_allclose(_run(sparse, x), _run(pruned_cnn, x), rtol=1e-5, atol=1e-5)
    # ^ the direct sparse loop sums in a different order from im2col + GEMM


def test_fuse_pool_off_and_overlapping_pools_stay_separate(rng):
    from tinyeff import nn
    x = rng.random((3, 2, 16, 16)).astype(np.float32)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(3, stride=2),
                          nn.Conv2d(4, 5, 3), nn.MaxPool2d(2), nn.Flatten()).eval()
    want = _run(model, x)
    fused, _ = to_sparse(copy.deepcopy(model), x, policy="always", candidates="all")
    assert fused[0].pool == 1 and type(fused[2]).__name__ == "MaxPool2d"     # overlapping: not fused
    assert fused[3].pool == 2 and not fused[3].fuse_relu and type(fused[4]).__name__ == "Identity"
    np.testing.assert_allclose(_run(fused, x), want, rtol=1e-5, atol=1e-5)
    unfused, _ = to_sparse(copy.deepcopy(model), x, policy="always", candidates="all", fuse_pool=False)
    assert unfused[3].pool == 1 and type(unfused[4]).__name__ == "MaxPool2d"
    np.testing.assert_allclose(_run(unfused, x), want, rtol=1e-5, atol=1e-5)


def test_sparse_layers_report_nnz_and_effective_macs(pruned_cnn, rng):
    x = rng.random((2, 1, 20, 20)).astype(np.float32)
    sparse, _ = to_sparse(copy.deepcopy(pruned_cnn), x, policy="always")
    _run(sparse, x)
    conv = sparse[3]
    nnz = int(np.count_nonzero(pruned_cnn[3].param("weight").data))
    assert conv.sparse_kernel_ran and conv.nnz == nnz
    positions = 2 * 7 * 7                               # N * OH * OW of the second conv at 20x20
    assert conv.effective_macs == nnz * positions
    assert conv.dense_macs == 64 * 32 * 9 * positions


def test_policy_never_and_force_override(pruned_cnn, rng):
    x = rng.random((2, 1, 20, 20)).astype(np.float32)
    model, decisions = to_sparse(copy.deepcopy(pruned_cnn), x, policy="never", force={"3": True})
    assert list(sparse_layers(model)) == ["3"]
    assert not decisions["0"]["sparse"] and decisions["3"]["sparse"]


def test_auto_policy_records_measured_speedup(pruned_cnn, rng):
    x = rng.random((2, 1, 20, 20)).astype(np.float32)
    model, decisions = to_sparse(copy.deepcopy(pruned_cnn), x, force={"0": False})
    assert decisions["3"]["speedup"] > 0 and decisions["0"]["speedup"] is None
    np.testing.assert_allclose(_run(model, x), _run(pruned_cnn, x), rtol=1e-5, atol=1e-5)


def test_unpruned_layers_are_left_dense(rng):
    model = models.create("seed-cnn", in_channels=1, input_size=20).eval()
    prune(model, 0.5, layers=["3"])
    _, decisions = to_sparse(model, rng.random((1, 1, 20, 20)).astype(np.float32), policy="always")
    assert list(decisions) == ["3"]


def test_bad_policy_is_rejected(pruned_cnn, rng):
    with pytest.raises(ValueError, match="policy"):
        to_sparse(pruned_cnn, rng.random((1, 1, 20, 20)).astype(np.float32), policy="sometimes")


def test_candidates_all_runs_unpruned_layers_as_direct_conv(rng):
    model = models.create("seed-cnn", in_channels=1, input_size=20).eval()
    x = rng.random((2, 1, 20, 20)).astype(np.float32)
    reference = _run(model, x)
    fast, decisions = to_sparse(copy.deepcopy(model), x, policy="always", candidates="all")
    assert len(decisions) == 5 and decisions["3"]["sparsity"] == 0.0
    np.testing.assert_allclose(_run(fast, x), reference, rtol=1e-5, atol=1e-5)
