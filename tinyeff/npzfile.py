"""Reading ``.npz`` archives within bounds: sizes are checked before anything is inflated.

An ``.npz`` is a zip of ``.npy`` members. ``np.load`` inflates a member when it is indexed, trusting
the sizes the file declares, so a 2 MB file can inflate to gigabytes, and a damaged one fails with a
raw ``BadZipFile``. This reader:

1. refuses what is not a regular file (a FIFO would block the open forever, a directory or device
   is never a model) and a symlink loop, with a message naming the path;
2. for every member, reads only the ``.npy`` header (a few hundred bytes inflated) and checks that
   the member's declared size in the zip directory is exactly the header's shape times the item
   size ("file claims N bytes, header implies M"), and that the sum stays under ``max_bytes``;
3. only then reads the arrays, with ``allow_pickle=False``.

Every failure is a ``ModelFileError`` naming the file and the fix. What this leaves out: the meaning
of the arrays (``tinyeff.io`` checks them against the architecture).
"""
import math
import os
import stat
import zipfile
import zlib

import numpy as np

from tinyeff.errors import ModelFileError

MAX_BYTES_ENV = "TINYEFF_MAX_MODEL_BYTES"
DEFAULT_MAX_BYTES = 1 << 30
NPY_MAGIC = b"\x93NUMPY"


def max_bytes():
    """The size limit for one archive's arrays: ``$TINYEFF_MAX_MODEL_BYTES`` or 1 GiB."""
    text = os.environ.get(MAX_BYTES_ENV, "")
    try:
        return int(text) if text else DEFAULT_MAX_BYTES
    except ValueError:
        raise ValueError(f"{MAX_BYTES_ENV}={text!r} must be a whole number of bytes") from None


def check_regular_file(path, what="model file", fix="re-save or re-train the model"):
    """Raise ModelFileError unless ``path`` is an existing regular file (after following symlinks)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such {what}") from None
    except OSError as exc:                       # ELOOP (symlink loop), EACCES, ENAMETOOLONG, ...
        raise ModelFileError(f"{path}: cannot open the {what}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode)
                else "a device or socket")
        raise ModelFileError(f"{path}: is {kind}, not a {what}; give the path of the .npz file")
    return st.st_size


def inspect(path, what="model file", fix="re-save or re-train the model", limit=None):
    """The archive's members as ``{name: (dtype, shape)}``, checked against their declared sizes.

    Nothing but the ``.npy`` headers is inflated.

    Raises:
        ModelFileError: not a regular file, not a zip, a member whose declared size disagrees with
            its header, a pickled (object) member, or more than ``limit`` bytes in total.
    """
    path = os.fspath(path)
    check_regular_file(path, what, fix)
    limit = max_bytes() if limit is None else limit
    with _open_zip(path, what, fix) as archive:
        members, total = {}, 0
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            dtype, shape, header_bytes = _member_header(archive, info, path, fix)
            implied = header_bytes + math.prod(shape) * dtype.itemsize
            if info.file_size != implied:
                raise ModelFileError(f"{path}: member {name!r} claims {info.file_size:,} bytes, its header "
                                     f"implies {implied:,} ({dtype} {tuple(shape)}); the file is corrupt or "
                                     f"crafted; {fix}")
            total += implied
            if total > limit:
                raise ModelFileError(f"{path}: holds more than {limit:,} bytes of arrays (the limit; raise it with "
                                     f"{MAX_BYTES_ENV}=BYTES if the file is trusted)")
            members[name] = (dtype, tuple(shape))
    return members


def read(path, names=None, what="model file", fix="re-save or re-train the model", limit=None):
    """``{name: array}`` for the members ``names`` (default all), after ``inspect`` passed.

    Raises:
        ModelFileError: see ``inspect``, plus damage found while inflating (bad CRC, truncated).
    """
    path = os.fspath(path)
    members = inspect(path, what, fix, limit)
    wanted = list(members) if names is None else list(names)
    missing = [n for n in wanted if n not in members]
    if missing:
        raise ModelFileError(f"{path}: lacks the arrays {missing}; {fix}")
    arrays = {}
    with _open_zip(path, what, fix) as archive:
        for name in wanted:
            try:
                with archive.open(f"{name}.npy") as f:
                    arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
            except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
                raise ModelFileError(f"{path}: member {name!r} is damaged (truncated or corrupt: {exc}); {fix}") from exc
    return arrays


def _open_zip(path, what, fix):
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        with open(path, "rb") as f:
            start = f.read(len(NPY_MAGIC))
        if start == NPY_MAGIC:
            raise ModelFileError(f"{path}: is a plain .npy array, not a tinyeff {what} (an .npz archive with a "
                                 f"header); {fix}") from None
        raise ModelFileError(f"{path}: not a readable tinyeff {what} (not a zip archive: truncated or "
                             f"corrupt); {fix}") from None
    except (OSError, EOFError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a readable tinyeff {what} ({exc}); {fix}") from exc


def _member_header(archive, info, path, fix):
    """(dtype, shape, bytes before the data) from the first bytes of a ``.npy`` member."""
    if not info.filename.endswith(".npy"):
        raise ModelFileError(f"{path}: member {info.filename!r} is not a .npy array; {fix}")
    try:
        with archive.open(info) as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f".npy format version {version} is not supported")
            shape, _, dtype = read_header(f)
            header_bytes = f.tell()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, NotImplementedError) as exc:
        raise ModelFileError(f"{path}: member {info.filename!r} is damaged (truncated or corrupt: {exc}); {fix}") from exc
    if dtype.hasobject:
        raise ModelFileError(f"{path}: member {info.filename!r} holds Python objects (a pickle); tinyeff never "
                             "unpickles model files; re-save the model with tinyeff")
    return dtype, shape, header_bytes
