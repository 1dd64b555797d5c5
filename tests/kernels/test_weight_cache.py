"""kernels/weight_cache.py: a packing is reused only while the weight holds the same bytes."""
import gc

import numpy as np

from tinyeff.kernels import weight_cache


def _counting_pack():
    calls = []

    def pack(w, scale):
        calls.append(1)
        return w * scale
    return pack, calls


def test_unchanged_weight_is_packed_once(rng):
    pack, calls = _counting_pack()
    w = rng.standard_normal((4, 5)).astype(np.float32)
    first = weight_cache.packed(w, pack, 2.0)
    again = weight_cache.packed(w, pack, 2.0)
    assert again is first and len(calls) == 1
    np.testing.assert_array_equal(again, w * 2.0)


def test_in_place_write_packs_again(rng):
    pack, calls = _counting_pack()
    w = rng.standard_normal((4, 5)).astype(np.float32)
    weight_cache.packed(w, pack, 2.0)
    w[3, 4] += 1.0                                     # one element, the last byte range
    np.testing.assert_array_equal(weight_cache.packed(w, pack, 2.0), w * 2.0)
    w[...] = np.nextafter(w, np.inf)                  # every value moved by one ulp
    np.testing.assert_array_equal(weight_cache.packed(w, pack, 2.0), w * 2.0)
    assert len(calls) == 3


def test_sign_of_zero_is_a_change():
    pack, _ = _counting_pack()
    w = np.zeros((2, 3), np.float32)
    weight_cache.packed(w, lambda a, s: np.signbit(a).astype(np.float32), None)
    w[0, 0] = -0.0                                     # equal as floats, different bytes
    out = weight_cache.packed(w, lambda a, s: np.signbit(a).astype(np.float32), None)
    assert out[0, 0] == 1.0


def test_arguments_and_arrays_are_separate_entries(rng):
    pack, calls = _counting_pack()
    w = rng.standard_normal((3, 3)).astype(np.float32)
    v = w.copy()
    np.testing.assert_array_equal(weight_cache.packed(w, pack, 2.0), w * 2.0)
    np.testing.assert_array_equal(weight_cache.packed(w, pack, 3.0), w * 3.0)
    np.testing.assert_array_equal(weight_cache.packed(v, pack, 2.0), v * 2.0)
    assert len(calls) == 3


def test_freed_weight_drops_its_entry(rng):
    pack, _ = _counting_pack()
    weight_cache.clear()
    w = rng.standard_normal((3, 3)).astype(np.float32)
    weight_cache.packed(w, pack, 2.0)
    assert weight_cache.size() == 1
    del w
    gc.collect()
    assert weight_cache.size() == 0


def test_switch_off_packs_every_call(rng, monkeypatch):
    pack, calls = _counting_pack()
    w = rng.standard_normal((3, 3)).astype(np.float32)
    monkeypatch.setenv(weight_cache.SWITCH, "0")
    weight_cache.packed(w, pack, 2.0)
    weight_cache.packed(w, pack, 2.0)
    assert len(calls) == 2


def test_non_contiguous_weight_is_not_cached(rng):
    pack, calls = _counting_pack()
    w = rng.standard_normal((4, 6)).astype(np.float32)[:, ::2]
    weight_cache.packed(w, pack, 2.0)
    np.testing.assert_array_equal(weight_cache.packed(w, pack, 2.0), w * 2.0)
    assert len(calls) == 2


def test_read_only_weight_is_cached(rng):
    pack, calls = _counting_pack()
    w = rng.standard_normal((3, 4)).astype(np.float32)
    w.flags.writeable = False
    first = weight_cache.packed(w, pack, 2.0)
    assert weight_cache.packed(w, pack, 2.0) is first and len(calls) == 1
