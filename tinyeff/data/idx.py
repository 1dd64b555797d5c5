"""The IDX file format (used by MNIST and Fashion-MNIST): read and write, with full validation.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the values in C order:

    magic = 0x00 0x00 <type code> <number of dims>     e.g. 0x00000803 = uint8, 3 dims (images)
                                                              0x00000801 = uint8, 1 dim  (labels)

Files may be gzip-compressed (``.gz``). Every way a file can be broken (bad magic, wrong dims,
truncated or overlong data, a damaged gzip stream) raises ``DataFormatError`` naming the file. This
module knows nothing about images or labels; ``fashion_mnist.py`` checks what the arrays mean.
"""
import gzip
import math
import os
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


MAX_BYTES = 1 << 30      # default ceiling on one file's data: 1 GiB, far above any IDX dataset we load
_CHUNK = 1 << 20


def _open(path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_exactly(f, n):
    """``n`` bytes from ``f`` into one preallocated buffer, in chunks: never more than ``n`` + 1 in memory."""
    out = bytearray(n)
    view, got = memoryview(out), 0
    while got < n:
        k = f.readinto(view[got:got + _CHUNK])
        if not k:
            break
        got += k
    return out, got


def read_idx(path, magic=None, fix="delete the file and download it again", max_bytes=MAX_BYTES, check_dims=None):
    """Read an IDX file (plain or ``.gz``) into a native-endian NumPy array.

    The header is read and checked first; the data is then streamed (decompressed chunk by chunk)
    into one buffer of exactly the size the header implies, so a small file that claims or inflates
    to gigabytes is refused before it is read, never after.

    Args:
        path: the file.
        magic: if given, the exact magic number required (e.g. 0x00000803 for uint8 images).
        fix: the remedy to name in error messages.
        max_bytes: refuse a header whose dims imply more data bytes than this.
        check_dims: optional ``check_dims(dims)`` run on the header's dims before any data is read;
            it raises ``DataFormatError`` for dims the caller cannot accept.

    Returns:
        np.ndarray with the dims from the header and the dtype from the type code.

    Raises:
        DataFormatError: bad magic, unknown type code, too large, truncated or overlong data,
            damaged gzip.
    """
    path = Path(path)
    try:
        with _open(path) as f:
            dims, dtype, header = _read_header(f, path, magic, fix)
            if check_dims is not None:
                check_dims(dims)
            expected = math.prod(dims) * dtype.itemsize        # Python ints: no int64 overflow
            if expected > max_bytes:
                raise DataFormatError(f"{path.name}: the header's dims {dims} imply {expected:,} bytes of data, "
                                      f"more than the {max_bytes:,}-byte limit; the file is corrupt or not "
                                      f"the dataset it claims to be; {fix}")
            if path.suffix != ".gz":
                size = os.fstat(f.fileno()).st_size
                if size != header + expected:
                    _wrong_size(path, size, header + expected, dims, fix)
            raw, got = _read_exactly(f, expected)
            if got < expected:
                _wrong_size(path, header + got, header + expected, dims, fix)
            if f.read(1):
                raise DataFormatError(f"{path.name}: unexpected bytes after the {expected:,} data bytes for "
                                      f"dims {dims}; the header and data disagree; {fix}")
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataFormatError(
            f"{path.name}: the gzip stream is damaged or truncated ({exc}); "
            f"delete {path} and download it again") from exc
    data = np.frombuffer(raw, dtype=dtype).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=False)


def _read_header(f, path, magic, fix):
    """(dims, dtype, header bytes) from the first 4 + 4 * ndim bytes."""
    first = f.read(4)
    if len(first) < 4:
        raise DataFormatError(f"{path.name}: only {len(first)} bytes, too short for an IDX header; {fix}")
    (found,) = struct.unpack(">I", first)
    code, ndim = first[2], first[3]
    if first[:2] != b"\x00\x00" or code not in IDX_TYPES or (magic is not None and found != magic):
        wanted = f"0x{magic:08X}" if magic is not None else "0x0000TTDD (TT a type code, DD the dims)"
        raise DataFormatError(f"{path.name}: bad magic number 0x{found:08X} (expected {wanted}); "
                              f"the file is not IDX data of the expected kind or is corrupt; {fix}")
    header = 4 + 4 * ndim
    rest = f.read(4 * ndim)
    if len(rest) < 4 * ndim:
        raise DataFormatError(f"{path.name}: truncated header ({4 + len(rest)} of {header} bytes); {fix}")
    return struct.unpack(f">{ndim}I", rest), IDX_TYPES[code], header


def _wrong_size(path, size, expected, dims, fix):
    if size < expected:
        raise DataFormatError(f"{path.name}: truncated ({size:,} of {expected:,} bytes for dims {dims}); {fix}")
    raise DataFormatError(f"{path.name}: {size - expected:,} unexpected bytes after the data for dims {dims}; "
                          f"the header and data disagree; {fix}")


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
