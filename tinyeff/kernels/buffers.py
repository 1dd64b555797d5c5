"""Reusing the large output arrays of memory-bound kernels from one call (and training step) to the next.

The one idea: fresh memory is not free. A new multi-megabyte array comes from ``mmap`` (or from heap
the allocator had returned to the system), so the kernel that first writes it takes a page fault,
and the system zero-fills a page, every 4 KB: a ResNet-20 training step at batch 128 made ~13-28
thousand such faults, 60-150 ms of system time on top of ~650 ms of compute. Batch norm, ReLU and
padding make an activation-sized array per call, of the same few shapes every step, so this module
keeps those arrays and hands one out again once nothing refers to it any more.

"Nothing refers to it": CPython counts references, and every NumPy view of an array holds one to
it (``view.base``), so an array whose only references are this pool's is free to reuse, whatever
views were made of it and dropped. Only arrays of at least ``MIN_BYTES`` are pooled (small ones
come from the allocator's free lists without faults), and at most ``MAX_BYTES`` in all (1 GiB, less on small machines): past that,
``empty`` falls back to ``np.empty``. ``clear()`` drops every pooled array (the memory of the ones
still in use is freed when their last user lets go).
What this leaves out: memory other code allocates (NumPy temporaries, other kernels' outputs).
"""
import math
import os
import sys
import threading

import numpy as np

MIN_BYTES = 1 << 20


def _max_bytes():
    """1 GiB, or an eighth of the machine's memory if that is less: a 1-4 GB board (a Raspberry Pi)
    must not keep a quarter of its RAM in dead activations."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):          # no sysconf names (Windows)
        return 1 << 30
    return min(1 << 30, ram // 8)


MAX_BYTES = _max_bytes()


def _references_when_free():
    """What ``sys.getrefcount`` says, inside the loop of ``empty``, of an array only the pool's list
    refers to: 3 on CPython 3.11 (the list, the loop variable, the call's argument); measured rather
    than assumed, because newer interpreters skip some of those counts. Any other reference (a
    Tensor, a view's ``base``, a local variable anywhere) makes it larger."""
    arrays = [np.empty(1)]
    for a in arrays:
        return sys.getrefcount(a)


FREE_REFERENCES = _references_when_free()
_lock = threading.Lock()
_pool = {}                      # (shape, dtype) -> arrays handed out before (in use or free)
_pooled_bytes = [0]


def empty(shape, dtype=np.float32):
    """An uninitialized C-contiguous array, like ``np.empty``: a pooled one if one is free."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    nbytes = math.prod(shape) * dtype.itemsize          # not np.prod: 4 us a call, as long as a small kernel
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    key = (shape, dtype.str)
    with _lock:
        arrays = _pool.setdefault(key, [])
        for a in arrays:
            if sys.getrefcount(a) == FREE_REFERENCES:
                return a
        if _pooled_bytes[0] + nbytes > MAX_BYTES:
            return np.empty(shape, dtype)
        a = np.empty(shape, dtype)
        arrays.append(a)
        _pooled_bytes[0] += nbytes
        return a


def empty_like(x):
    """``empty(x.shape, x.dtype)``."""
    return empty(x.shape, x.dtype)


def clear():
    """Forget every pooled array (each is freed once nothing else refers to it)."""
    with _lock:
        _pool.clear()
        _pooled_bytes[0] = 0


def pooled_bytes():
    """Bytes of the arrays the pool holds (free or in use)."""
    return _pooled_bytes[0]
