"""The output-buffer pool: an array is handed out again only once nothing refers to it."""
import numpy as np
import pytest

from tinyeff.kernels import buffers

SHAPE = (4, 1 << 17)            # 2 MB of float32: large enough to be pooled


@pytest.fixture(autouse=True)
def empty_pool():
    buffers.clear()
    yield
    buffers.clear()


def test_buffer_in_use_is_not_handed_out_again():
    a = buffers.empty(SHAPE)
    b = buffers.empty(SHAPE)
    assert not np.shares_memory(a, b)


def test_buffer_referred_to_by_a_view_is_not_handed_out_again():
    view = buffers.empty(SHAPE).reshape(-1)[10:]      # only the view is kept; it holds its base
    assert not np.shares_memory(buffers.empty(SHAPE), view)


def test_released_buffer_is_reused():
    a = buffers.empty(SHAPE)
    address = a.ctypes.data
    del a
    assert buffers.empty(SHAPE).ctypes.data == address


def test_small_arrays_and_other_shapes_are_not_pooled():
    before = buffers.pooled_bytes()
    small = buffers.empty((3, 5))
    assert small.shape == (3, 5) and buffers.pooled_bytes() == before
    a = buffers.empty(SHAPE)
    del a
    assert buffers.empty((SHAPE[1], SHAPE[0])).shape == (SHAPE[1], SHAPE[0])
    assert buffers.pooled_bytes() == 2 * np.prod(SHAPE) * 4


def test_kernel_output_survives_later_calls_while_referenced(rng):
    """Two ReLU calls of the same shape: the first result, still held, is not overwritten."""
    from tinyeff import kernels
    x1, x2 = rng.standard_normal(SHAPE).astype(np.float32), rng.standard_normal(SHAPE).astype(np.float32)
    relu = kernels.get("relu_f32")
    y1 = relu(x1)
    y2 = relu(x2)
    np.testing.assert_array_equal(y1, np.maximum(x1, 0))
    np.testing.assert_array_equal(y2, np.maximum(x2, 0))
