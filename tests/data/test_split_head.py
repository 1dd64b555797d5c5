"""Split.head: the first N examples, for --limit."""
import numpy as np
import pytest

from tinyeff.data import Split


def _split(n):
    return Split(np.arange(n * 4, dtype=np.uint8).reshape(n, 1, 2, 2), np.arange(n) % 3, ("a", "b", "c"), "test")


def test_head_keeps_the_first_examples_in_order():
    head = _split(10).head(4)
    assert len(head) == 4 and head.labels.tolist() == [0, 1, 2, 0]
    np.testing.assert_array_equal(head.images, _split(10).images[:4])


def test_head_longer_than_the_split_keeps_everything():
    assert len(_split(3).head(100)) == 3


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_head_rejects_a_non_positive_count(bad):
    with pytest.raises(ValueError, match="--limit"):
        _split(3).head(bad)
