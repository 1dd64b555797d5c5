"""The IDX file format (used by MNIST and Fashion-MNIST): read and write, with full validation.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the values in C order:

    magic = 0x00 0x00 <type code> <number of dims>     e.g. 0x00000803 = uint8, 3 dims (images)
                                                              0x00000801 = uint8, 1 dim  (labels)

Files may be gzip-compressed (``.gz``). Every way a file can be broken (bad magic, wrong dims,
truncated or overlong data, a damaged gzip stream) raises ``DataFormatError`` naming the file. This
module knows nothing about images or labels; ``fashion_mnist.py`` checks what the arrays mean.
"""
import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from tinyeff import fsio
from tinyeff.errors import DataFormatError

# type code -> big-endian dtype, from the IDX specification
IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}


def _read_bytes(path):
    path = Path(path)
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataFormatError(
            f"{path.name}: the gzip stream is damaged or truncated ({exc}); "
            f"delete {path} and download it again") from exc


def read_idx(path, magic=None, fix="delete the file and download it again"):
    """Read an IDX file (plain or ``.gz``) into a native-endian NumPy array.

    Args:
        path: the file.
        magic: if given, the exact magic number required (e.g. 0x00000803 for uint8 images).
        fix: the remedy to name in error messages.

    Returns:
        np.ndarray with the dims from the header and the dtype from the type code.

    Raises:
        DataFormatError: bad magic, unknown type code, truncated or overlong data, damaged gzip.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataFormatError(f"{path.name}: only {len(raw)} bytes, too short for an IDX header; {fix}")
    (found,) = struct.unpack(">I", raw[:4])
    code, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or code not in IDX_TYPES or (magic is not None and found != magic):
        wanted = f"0x{magic:08X}" if magic is not None else "0x0000TTDD (TT a type code, DD the dims)"
        raise DataFormatError(f"{path.name}: bad magic number 0x{found:08X} (expected {wanted}); "
                              f"the file is not IDX data of the expected kind or is corrupt; {fix}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path.name}: truncated header ({len(raw)} of {header} bytes); {fix}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_TYPES[code]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) < expected:
        raise DataFormatError(f"{path.name}: truncated ({len(raw):,} of {expected:,} bytes for dims "
                              f"{dims}); {fix}")
    if len(raw) > expected:
        raise DataFormatError(f"{path.name}: {len(raw) - expected:,} unexpected bytes after the data "
                              f"for dims {dims}; the header and data disagree; {fix}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``).

    Args:
        path: destination file.
        array: any array whose dtype is one of the IDX types (uint8, int8, int16, int32, float32, float64).

    Raises:
        ValueError: the dtype has no IDX type code.
    """
    array = np.ascontiguousarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"write_idx: dtype {array.dtype} has no IDX type code; use one of "
                         f"{sorted(str(d.newbyteorder('=')) for d in IDX_TYPES.values())}")
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(IDX_TYPES[code], copy=False).tobytes()
    if Path(path).suffix == ".gz":
        payload = gzip.compress(payload)
    fsio.write_bytes(path, payload)
