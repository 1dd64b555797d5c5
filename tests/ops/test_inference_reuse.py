"""Inference reuses packed conv weights (kernels/weight_cache.py) and holds BLAS at one thread per
pass (kernels/blas.py): the outputs are those of packing on every call, bit for bit, whatever wrote
the weights between two inferences (an optimizer step, pruning, a state dict, a user's in-place
write). The direct lowering is forced so every conv runs the kernel that packs."""
import numpy as np
import pytest

from tinyeff import Tensor, kernels, models, no_grad, optim
from tinyeff.compress import prune
from tinyeff.kernels import blas, weight_cache
from tinyeff.kernels.conv import c as conv_c
from tinyeff.ops.loss import cross_entropy


@pytest.fixture(autouse=True)
def _direct(monkeypatch):
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))
    monkeypatch.setenv("TINYEFF_LOWERING", "direct")


def _model():
    return models.create("seed-cnn", in_channels=3, num_classes=10, input_size=32).eval()


def _infer(model, x):
    with no_grad():
        return model(Tensor(x)).data


def _uncached(model, x, monkeypatch):
    with monkeypatch.context() as m:
        m.setenv(weight_cache.SWITCH, "0")
        return _infer(model, x)


def _check_matches_uncached(model, x, monkeypatch):
    got = _infer(model, x)
    np.testing.assert_array_equal(got, _uncached(model, x, monkeypatch))
    return got


def _train_step(model, opt, rng):
    """One training step on a random batch, then back to inference mode."""
    xb, y = rng.standard_normal((4, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 4)
    model.train()
    loss = cross_entropy(model(Tensor(xb)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    model.eval()


@pytest.mark.parametrize("batch", [1, 3])
def test_reused_packing_matches_packing_every_call(batch, rng, monkeypatch):
    model, x = _model(), rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    weight_cache.clear()
    first = _check_matches_uncached(model, x, monkeypatch)
    assert weight_cache.size() > 0, "no conv packed through the cache: the test would prove nothing"
    np.testing.assert_array_equal(_check_matches_uncached(model, x, monkeypatch), first)


def test_optimizer_step_between_inferences(rng, monkeypatch):
    model, x = _model(), rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    before = _check_matches_uncached(model, x, monkeypatch)
    _train_step(model, optim.Adam(model.parameters(), lr=1e-2), rng)
    after = _check_matches_uncached(model, x, monkeypatch)
    assert not np.array_equal(after, before)


def test_pruning_between_inferences(rng, monkeypatch):
    model, x = _model(), rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    before = _check_matches_uncached(model, x, monkeypatch)
    prune(model, 0.5)
    after = _check_matches_uncached(model, x, monkeypatch)
    assert not np.array_equal(after, before)


def test_load_state_dict_between_inferences(rng, monkeypatch):
    model, other = _model(), _model()
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    _check_matches_uncached(model, x, monkeypatch)
    model.load_state_dict(other.state_dict())
    np.testing.assert_array_equal(_check_matches_uncached(model, x, monkeypatch), _infer(other, x))


def test_users_in_place_write_between_inferences(rng, monkeypatch):
    model, x = _model(), rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    before = _check_matches_uncached(model, x, monkeypatch)
    model[3].weight.data[5, 7, 1, 1] += 0.25         # one weight of the second conv
    after = _check_matches_uncached(model, x, monkeypatch)
    assert not np.array_equal(after, before)


@pytest.mark.parametrize("mode", ["flat", "rows"])
def test_both_packings_of_the_kernel_follow_a_write(mode, rng):
    """dconv.c's 4-channel blocks and dconv_oc.c's transposed taps, each reused then repacked."""
    x = rng.standard_normal((2, 5, 9, 9)).astype(np.float32)
    w = rng.standard_normal((6, 5, 3, 3)).astype(np.float32)
    for pool in (1, 2):                               # pool 2: dconv_oc.c's tile
        for _ in range(2):
            want = conv_c.forward(x, w, None, 1, 0, 1, True, pool, mode=mode)
            got = conv_c.forward(x, w, None, 1, 0, 1, True, pool, mode=mode, keep_packed=True)
            np.testing.assert_array_equal(got, want)
            w[1, 2, 0, 1] -= 0.5


def test_one_thread_block_restores_blas_threads():
    libraries = blas._blas_libraries()
    if not libraries:
        pytest.skip("threadpoolctl found no BLAS library to set")
    saved = [lib.get_num_threads() for lib in libraries]
    a = np.ones((2, 3), np.float32)
    try:
        for lib in libraries:
            lib.set_num_threads(2)                     # a count the block must lower and restore
        with blas.one_thread():
            assert all(lib.get_num_threads() == 2 for lib in libraries)     # no GEMM yet: untouched
            with blas.one_thread():
                np.testing.assert_array_equal(blas.matmul(a, a.T), a @ a.T)
            assert all(lib.get_num_threads() == 1 for lib in libraries)     # held to the outer end
        assert all(lib.get_num_threads() == 2 for lib in libraries)
    finally:
        for lib, n in zip(libraries, saved):
            lib.set_num_threads(n)


def test_qat_step_between_inferences(rng, monkeypatch):
    """QAT rounds the weights in a parameter transform (a new array every forward)."""
    from tinyeff.quant import prepare_qat
    model = prepare_qat(_model())
    model.eval()
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    before = _check_matches_uncached(model, x, monkeypatch)
    _train_step(model, optim.SGD(model.parameters(), lr=0.1), rng)
    after = _check_matches_uncached(model, x, monkeypatch)
    assert not np.array_equal(after, before)
