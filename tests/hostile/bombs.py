"""Builders of small files that claim or inflate to gigabytes, for the bounded-read tests.

Gzip members can be concatenated and gzip readers inflate them in sequence, so one 16 MiB run of
zeros compressed once (about 16 KB) and repeated gives a file of about 1 MiB that inflates to 1 GiB,
built in milliseconds instead of compressing a gigabyte.
"""
import gzip
import io
import struct
import tarfile
import zlib

ZEROS_16M_GZ = gzip.compress(bytes(16 << 20), compresslevel=9)


def gz_bomb(path, prefix, inflated_gib=1):
    """``prefix`` then ``inflated_gib`` GiB of zeros, gzip-compressed into a file of about 1 MiB per GiB."""
    with open(path, "wb") as f:
        f.write(gzip.compress(prefix))
        for _ in range(64 * inflated_gib):
            f.write(ZEROS_16M_GZ)
    return path


def idx_header(code, dims):
    return struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


def tar_gz_bomb(path, member_name, member_gib=1):
    """A .tar.gz whose member ``member_name`` holds ``member_gib`` GiB of zeros (about 1 MiB on disk)."""
    info = tarfile.TarInfo(member_name)
    info.size = member_gib << 30
    with open(path, "wb") as f:
        f.write(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
        for _ in range(64 * member_gib):
            f.write(ZEROS_16M_GZ)
    return path


def zip_bomb_model(path, header_json, tensor_name="model.0.weight", inflated_gib=2):
    """A model .npz: a genuine tinyeff header, then a member ``tensor_name.npy`` that inflates to
    ``inflated_gib`` GiB (about 2 MB on disk for 2 GiB).

    Deflate blocks ended by a full flush do not depend on earlier data, so the compressed form of
    16 MiB of zeros is computed once and repeated. The member's CRC is not computed (a reader that
    checks it has already inflated everything by then).
    """
    import numpy as np
    header = io.BytesIO()
    np.save(header, np.frombuffer(header_json.encode(), np.uint8))
    chunks = 64 * inflated_gib                                  # of 16 MiB
    npy = b"\x93NUMPY\x01\x00" + _npy_dict(chunks << 24)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(npy) + c.flush(zlib.Z_FULL_FLUSH)
    chunk = c.compress(bytes(16 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    data = head + chunk * chunks + c.flush()
    size = len(npy) + (chunks << 24)
    members = [("__header__.npy", 0, header.getvalue(), zlib.crc32(header.getvalue()), len(header.getvalue())),
               (f"{tensor_name}.npy", 8, data, 0, size)]
    with open(path, "wb") as f:
        f.write(_zip(members))
    return path


def _zip(members):
    """A minimal zip archive: (name, method, stored bytes, crc, uncompressed size) per member."""
    local, central = b"", b""
    for name, method, data, crc, usize in members:
        n = name.encode()
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data), usize,
                               len(n), 0, 0, 0, 0, 0, len(local)) + n
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), usize, len(n), 0)
        local += n + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    return local + central + end


def _npy_dict(nbytes):
    """A .npy version-1 header for a float32 vector of ``nbytes`` bytes."""
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({nbytes // 4},), }}"
    text += " " * (63 - (len(text) + 10) % 64) + "\n"
    return struct.pack("<H", len(text)) + text.encode("latin1")
