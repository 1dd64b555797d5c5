"""A restricted unpickler for the CIFAR "python version" batches: data only, never code.

A pickle is a small program: its GLOBAL opcode imports any name and REDUCE calls it, so
``pickle.load`` on a downloaded file can run ``os.system``. The CIFAR files were written by Python 2's
cPickle (protocol 2) and need only the names that rebuild a NumPy array:

    numpy.core.multiarray._reconstruct  (numpy._core.multiarray in NumPy 2), numpy.ndarray, numpy.dtype

plus ``_codecs.encode`` when a batch was re-saved by Python 3 at protocol 2 (which stores bytes as
``_codecs.encode(text, "latin1")``). ``find_class`` maps exactly those names to objects from an
explicit table and rejects every other name *before* anything is called, so a malicious file fails
with ``DataFormatError`` without running. Python 2 strings load as ``bytes`` (``encoding="bytes"``),
which is why the CIFAR keys are ``b"data"``, ``b"labels"``.
"""
import codecs
import io
import math
import pickle

import numpy as np

from tinyeff.errors import DataFormatError

try:  # NumPy >= 2 moved the implementation; both spellings appear in real pickles
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle asked for a global outside ``ALLOWED`` (raised before anything is called)."""


def _latin1_encode(text, encoding="utf-8"):
    """``_codecs.encode`` limited to the one use protocol-2 pickles make of it."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise ForbiddenGlobal(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not allowed")
    return codecs.encode(text, "latin1")


MAX_ARRAY_BYTES = 256 << 20    # one CIFAR batch's pixels are 30 MB


def _bounded_reconstruct(subtype, shape, dtype):
    """``_reconstruct`` for plain ndarrays whose shape fits ``MAX_ARRAY_BYTES`` (checked before allocating)."""
    if subtype is not np.ndarray:
        raise ForbiddenGlobal(f"_reconstruct of {subtype!r} is not allowed (only numpy.ndarray)")
    try:
        dims = [int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,))]
        itemsize = np.dtype(dtype).itemsize
    except (TypeError, ValueError) as exc:
        raise ForbiddenGlobal(f"_reconstruct with shape {shape!r}, dtype {dtype!r}: {exc}") from None
    if any(d < 0 for d in dims) or math.prod(dims) * itemsize > MAX_ARRAY_BYTES:
        raise ForbiddenGlobal(f"_reconstruct with shape {tuple(dims)} ({math.prod(dims) * itemsize:,} bytes) "
                              f"exceeds the {MAX_ARRAY_BYTES:,}-byte limit")
    return _reconstruct(subtype, tuple(dims), dtype)


ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _bounded_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _bounded_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` admits only the names in ``ALLOWED``."""

    def find_class(self, module, name):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(
                f"global {module}.{name} is not allowed (only NumPy array reconstruction is)") from None


def loads(data, file_name):
    """Unpickle ``data`` (bytes) with ``RestrictedUnpickler`` and Python 2 strings as bytes.

    Args:
        data: the pickle bytes.
        file_name: named in error messages.

    Raises:
        DataFormatError: the pickle references a forbidden global, or is truncated or corrupt.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except ForbiddenGlobal as exc:
        raise DataFormatError(f"{file_name}: refused to unpickle ({exc}); this is not a genuine CIFAR "
                              f"batch file; delete it and download the dataset again") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            OverflowError, MemoryError) as exc:
        raise DataFormatError(f"{file_name}: truncated or corrupt pickle ({type(exc).__name__}: {exc}); "
                              f"delete it and download the dataset again") from exc
