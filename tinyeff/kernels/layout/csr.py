"""CSR: the one packed format every sparse kernel tier reads.

A pruned weight ``w`` is viewed as a matrix with one row per output channel (or output feature) and
one column per weight tap, ``(OC, C*KH*KW)`` for a conv and ``(OUT, IN)`` for a linear layer, and
stored in compressed sparse rows: ``indptr`` (rows + 1,) int64, ``indices`` (nnz,) int64 column
numbers (c, kh, kw flattened row-major), and ``data`` (nnz,) float32 or int8. ``pack_sparse(w)``
builds it once per layer; the kernels (``kernels/sparse/``), the pruning code and the integer layers
all read the same ``SparseWeight``.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SparseWeight:
    """A pruned weight in CSR form. ``shape`` is the dense shape: (OC, C, KH, KW) or (OUT, IN)."""
    shape: tuple
    indptr: np.ndarray    # (rows + 1,) int64
    indices: np.ndarray   # (nnz,) int64, column in the flattened row (c, kh, kw)
    data: np.ndarray      # (nnz,) float32 or int8

    @property
    def nnz(self):
        return int(self.data.size)

    @property
    def sparsity(self):
        """Measured fraction of zeros in the dense weight."""
        return 1.0 - self.nnz / max(1, int(np.prod(self.shape)))


def pack_sparse(w):
    """Pack a pruned float32 or int8 weight into CSR, keeping only its nonzeros.

    Args:
        w: (OC, C, KH, KW) conv weight or (OUT, IN) linear weight, float32 or int8.

    Returns:
        SparseWeight holding copies (later edits to ``w`` do not leak in).

    Raises:
        TypeError: ``w`` is not float32 or int8. ValueError: ``w`` is not 2-D or 4-D.
    """
    w = np.asarray(w)
    if w.dtype not in (np.float32, np.int8):
        raise TypeError(f"pack_sparse: weight dtype is {w.dtype}; expected float32 or int8 "
                        "(cast with w.astype(np.float32), or quantize first)")
    if w.ndim not in (2, 4):
        raise ValueError(f"pack_sparse: weight shape {w.shape} must be (OC, C, KH, KW) or (OUT, IN)")
    w2d = np.ascontiguousarray(w.reshape(w.shape[0], -1))          # (rows, cols)
    nonzero = w2d != 0
    indptr = np.zeros(w2d.shape[0] + 1, dtype=np.int64)
    np.cumsum(nonzero.sum(axis=1), out=indptr[1:])
    rows, cols = np.nonzero(nonzero)                                # row-major: sorted by row
    return SparseWeight(tuple(w.shape), indptr, cols.astype(np.int64), w2d[rows, cols].copy())


def unpack_sparse(packed):
    """The dense weight a ``SparseWeight`` stands for (same dtype as its data)."""
    rows = packed.shape[0]
    w2d = np.zeros((rows, int(np.prod(packed.shape[1:]))), dtype=packed.data.dtype)
    row_of = np.repeat(np.arange(rows), np.diff(packed.indptr))
    w2d[row_of, packed.indices] = packed.data
    return w2d.reshape(packed.shape)

