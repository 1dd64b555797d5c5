"""Packed weights kept between inference calls: packed once, reused while the weight's bytes are unchanged.

The one idea: a direct convolution repacks its weight into the layout its register blocks read
(kernels/conv/c.py) on every call, 1-50 us a layer, as long as a batch-1 layer's whole kernel. At
inference the weight is the same array holding the same values from call to call, so the packing
can be kept. The danger is a stale packing, a silent wrong answer: weights are written in place
(optimizers assign ``param.data[...]``, ``load_state_dict`` and ``io.load`` set new values,
pruning multiplies a mask in, user code may write anything), and no version counter sees every
write to a NumPy array. So the cache checks the values themselves: an entry keeps a copy of the
bytes it packed, and a lookup compares the weight's bytes with that copy (one ``memcmp``, cffi's
buffer comparison: ~0.5 us for a 64x288 float32 weight, against 8-26 us to pack it). Equal bytes
pack to equal bytes whatever wrote them, so a hit is exact by construction; any difference packs
again. The pack functions are pure: the packing depends on nothing but the bytes, the shape and the
arguments, all part of the check or the key.

Entries are keyed on the weight array's identity, the pack function and its arguments, and dropped
when the array is freed (a weak reference): the cache holds one copy and one packing per live
weight, ``MAX_ENTRIES`` at most. An entry is never changed once made (a miss makes a new one), so a
kernel running on another thread keeps the packing it was handed.

Only inference asks for it (the prepared runners of inference plans: kernels/contract.py): a
training step changes every weight, so the check would miss at every call and the copies would cost
memory for nothing. ``TINYEFF_WEIGHT_CACHE=0`` turns it off (every call packs, as in
training); bench/bench_latency.py uses that switch to time both in one process.
"""
import weakref

from tinyeff.kernels import settings
from tinyeff.kernels.c import ffi

SWITCH = "TINYEFF_WEIGHT_CACHE"
MAX_ENTRIES = 512
_entries = {}      # (id(weight), pack, args) -> _Entry


class _Entry:
    """One packing: the weight it came from (weakly), a copy of its bytes, the packed array."""
    __slots__ = ("ref", "shape", "dtype", "copy", "saved", "packed")


def enabled():
    """False when ``TINYEFF_WEIGHT_CACHE=0`` (read on every call, so a change takes effect at once)."""
    return settings.env(SWITCH) != "0"


def packed(w, pack, *args):
    """``pack(w, *args)``, the array it returned last time if ``w`` still holds the same bytes.

    Args:
        w: the weight (an ndarray; a C-contiguous one is cached, any other is packed every call).
        pack: a pure function of the weight's values and ``args`` returning a new array; the caller
            must not write into what it returns (it is shared between calls).
        args: hashable arguments of ``pack``.
    Returns:
        The packed array.
    """
    if not w.flags.c_contiguous or not enabled():
        return pack(w, *args)
    key = (id(w), pack, args)
    entry = _entries.get(key)
    # cffi's buffer compares with any contiguous buffer by length, then memcmp: exact, no copy
    if (entry is not None and entry.ref() is w and entry.shape == w.shape and entry.dtype == w.dtype
            and entry.saved == w):
        return entry.packed
    entry = _Entry()
    entry.shape, entry.dtype = w.shape, w.dtype
    entry.copy = w.copy()        # packed from the copy: a write to ``w`` meanwhile cannot split the two
    entry.packed = pack(entry.copy, *args)
    entry.saved = ffi().buffer(ffi().from_buffer("char[]", entry.copy))
    entry.ref = weakref.ref(w, _forget(key))
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
    _entries[key] = entry
    return entry.packed


def _forget(key):
    """The weak reference's callback: drop the entry of a freed weight (not a newer one's)."""
    def callback(ref):
        entry = _entries.get(key)
        if entry is not None and entry.ref is ref:
            _entries.pop(key, None)             # another thread may have cleared it meanwhile
    return callback


def clear():
    """Drop every entry (each is packed again on its next call)."""
    _entries.clear()


def size():
    """Number of packings held."""
    return len(_entries)
