"""The user cache of measured verdicts: one JSON file per question, in one directory.

Measured choices (sparse or dense, direct conv or im2col + BLAS) are timed once and kept here, so
the next process on the same machine does not time them again. The directory is
``$TINYEFF_CACHE_DIR``, else ``$XDG_CACHE_HOME/tinyeff``, else ``~/.cache/tinyeff``. A missing or
corrupt file reads as empty (the caller measures again); writes go to a temporary file that is then
renamed over the old one, so a crash never leaves half a file.
"""
import json
import os
import tempfile


def cache_dir():
    """The directory (created on first write)."""
    return os.environ.get("TINYEFF_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "tinyeff")


def load(path):
    """The JSON object in ``path``, or ``{}`` if it is missing or unreadable."""
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def store(path, key, value):
    """Add one entry: read, update, write a temporary file, rename it over the old one."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = load(path)
    data[key] = value
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".cache-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
