"""Atomic file writes: every file tinyeff writes goes through a unique temporary name and a rename.

The one idea: write the whole file under a temporary name in the *same directory* (so the rename
never crosses a filesystem), flush it to disk, then ``os.replace`` it over the target. A reader
sees either the old file or the complete new one, never a half-written or 0-byte file, whether the
writer hits a full disk, an exception or ``kill -9``. The temporary name is unique per write
(pid + random suffix), so two writers never share one, and it starts with ``TMP_PREFIX`` so the
leftovers of a killed run can be recognised and removed by the next one (``remove_stale_temps``).

JSON is written with ``allow_nan=False``: a NaN is not valid JSON and never becomes a saved result.
What this leaves out: locking (two runs writing one directory), see ``tinyeff.outdir``.
"""
import json
import os
import tempfile

import numpy as np

from tinyeff.errors import NonFiniteResult

TMP_PREFIX = ".tinyeff-tmp-"
_LEGACY_PREFIXES = (".tmp-",)         # the names earlier tinyeff versions used for model-file temps


def write_with(path, write, binary=True):
    """Call ``write(f)`` on a temporary file next to ``path``, then rename it to ``path``.

    Args:
        path: the target file; its directory is created if missing.
        write: a function of the open file object that writes the whole content.
        binary: open the temporary file in binary (default) or text mode (UTF-8).
    Returns:
        ``path``.
    Raises:
        OSError: the write or the rename failed (full disk, no permission); the temporary file is
            removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=f"-{os.path.basename(path)}",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())      # the rename must not become visible before the data is on disk
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
            raise OSError(exc.errno, exc.strerror, path) from exc     # name the file the user asked for
        raise
    return path


def write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically."""
    return write_with(path, lambda f: f.write(data))


def write_text(path, text):
    """Write ``text`` (str, UTF-8) to ``path`` atomically."""
    return write_with(path, lambda f: f.write(text), binary=False)


def dumps_json(data, indent=2):
    """``data`` as strict JSON text (NumPy scalars and arrays converted; NaN/Infinity refused).

    Raises:
        NonFiniteResult: ``data`` holds a NaN or an infinity (a ValueError; the message says so).
    """
    try:
        return json.dumps(data, indent=indent, default=_json_default, allow_nan=False)
    except ValueError as exc:
        raise NonFiniteResult(f"refusing to write a non-finite number (NaN or Infinity) as JSON: {exc}; "
                         "a NaN result means the computation failed upstream") from exc


def write_json(path, data, indent=2):
    """Write ``data`` to ``path`` as strict JSON (see ``dumps_json``), atomically.

    Raises:
        ValueError: ``data`` holds NaN or Infinity; nothing is written.
    """
    text = dumps_json(data, indent) + "\n"           # serialise first: a NaN refuses before any file exists
    return write_text(path, text)


def savez(path, arrays, compressed=True):
    """Write ``arrays`` (name -> array) as an ``.npz`` archive to ``path`` atomically."""
    buffer_fn = np.savez_compressed if compressed else np.savez
    return write_with(path, lambda f: buffer_fn(f, **arrays))


def write_figure(fig, path, **savefig_kwargs):
    """Save a matplotlib figure to ``path`` atomically (the format comes from ``path``'s extension)."""
    fmt = os.path.splitext(path)[1].lstrip(".") or "png"
    return write_with(path, lambda f: fig.savefig(f, format=fmt, **savefig_kwargs))


def remove_stale_temps(directory, recursive=True):
    """Delete temporary files that killed runs left in ``directory`` (and its subdirectories).

    Only files named by ``write_with`` (or the older ``.tmp-*.npz`` model temps) are touched, and
    only those whose writing process is gone, so a live writer's temp file is never pulled away.
    Call it while holding the directory's lock (``tinyeff.outdir``).

    Returns:
        The list of removed paths.
    """
    removed = []
    if not os.path.isdir(directory):
        return removed
    for root, dirs, files in os.walk(directory):
        for name in files:
            if _is_stale_temp(name):
                path = os.path.join(root, name)
                try:
                    os.unlink(path)
                    removed.append(path)
                except FileNotFoundError:
                    pass
        if not recursive:
            break
    return removed


def _is_stale_temp(name):
    if name.startswith(_LEGACY_PREFIXES) and name.endswith(".npz"):
        return True
    if not name.startswith(TMP_PREFIX):
        return False
    pid = name[len(TMP_PREFIX):].split("-", 1)[0]
    return not (pid.isdigit() and _process_alive(int(pid)))


def _process_alive(pid):
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return False          # NOTE: os.kill(pid, 0) would terminate the process on Windows; the lock suffices
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
