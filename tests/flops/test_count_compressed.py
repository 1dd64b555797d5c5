"""FLOP counting of compressed models: sparse layers count nonzeros x output positions, integer
layers count int8 MACs equal to the float model's, with their real stored bytes."""
import numpy as np
import pytest

import tinyeff
from tinyeff import data, flops, models
from tinyeff.compress import prune
from tinyeff.compress.sparse_infer import SparseConv2d, SparseLinear, to_sparse
from tinyeff.quant import quantize_static

SHAPE = (1, 1, 20, 20)


@pytest.fixture(scope="module")
def split():
    return data.load("synthetic", n_train=64, n_test=16, shape=(1, 20, 20), num_classes=4, seed=1)[0]


def _model():
    tinyeff.manual_seed(0)
    return models.create("seed-cnn", in_channels=1, input_size=20, num_classes=4)


def test_sparse_layers_count_nonzeros_times_output_positions(rng):
    model = prune(_model(), 0.9, method="global")
    dense = flops.count(model, SHAPE)
    model, _ = to_sparse(model, rng.standard_normal((4,) + SHAPE[1:]).astype(np.float32), policy="always")
    report = flops.count(model, SHAPE)
    assert report.totals["macs"] == dense.totals["macs"]
    modules = dict(model.named_modules())
    sparse_rows = [row for row in report.layers if isinstance(modules.get(row.name), (SparseConv2d, SparseLinear))]
    assert sparse_rows
    dense_rows = {row.name: row for row in dense.layers}
    for row in sparse_rows:
        shape = dense_rows[row.name].output_shape       # the conv's own output, before a fused max-pool
        positions = int(np.prod(shape)) // shape[1]     # N*OH*OW (or N for linear)
        assert row.macs_effective == modules[row.name].weight_nnz * positions
        assert row.sparse
    assert report.totals["macs_effective"] < 0.25 * report.totals["macs"]


def test_integer_model_counts_int8_macs_like_the_float_model(split):
    model = _model()
    qmodel = quantize_static(model, split, num_images=32)
    float_counts, int_counts = flops.count(model, SHAPE).totals, flops.count(qmodel, SHAPE).totals
    assert int_counts["macs"] == float_counts["macs"]
    assert int_counts["macs_effective_by_dtype"] == {"int8": float_counts["macs"]}
    assert int_counts["params"] == float_counts["params"]
    assert 0 < int_counts["param_bytes"] < float_counts["param_bytes"]


def test_counting_leaves_the_integer_model_unchanged(split, rng):
    qmodel = quantize_static(_model(), split, num_images=32)
    x = tinyeff.Tensor(rng.standard_normal((2,) + SHAPE[1:]).astype(np.float32))
    before = qmodel(x).data
    flops.count(qmodel, SHAPE)
    np.testing.assert_array_equal(qmodel(x).data, before)
    assert all("forward" not in vars(layer) for layer in qmodel.body.layers)
