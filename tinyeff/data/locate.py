"""Where dataset files are looked for and where downloads go.

Search order for a dataset NAME (first directory holding all its files wins):
  1. ``root`` (the argument), then ``root/NAME``; an explicit root is searched ALONE: when its files
     are missing or broken, the error says so instead of quietly using a copy from elsewhere
  2. ``$TINYEFF_DATA``, then ``$TINYEFF_DATA/NAME``
  3. the user cache, ``$XDG_CACHE_HOME/tinyeff`` or ``~/.cache/tinyeff`` (and ``.../NAME``)
  4. ``/usr/share/datasets/NAME`` (Debian's ``dataset-*`` packages install there)

Downloads go to ``<first of root, $TINYEFF_DATA, cache>/NAME``. This module only computes paths;
it never creates or reads files.
"""
import os
from pathlib import Path

SYSTEM_DIR = Path("/usr/share/datasets")


def cache_dir():
    """The user cache directory for tinyeff data: ``$XDG_CACHE_HOME/tinyeff`` or ``~/.cache/tinyeff``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "tinyeff"


def _bases(root):
    bases = []
    if root is not None:
        bases.append(Path(root).expanduser())
    env = os.environ.get("TINYEFF_DATA")
    if env:
        bases.append(Path(env).expanduser())
    bases.append(cache_dir())
    return bases


def search_dirs(name, root=None):
    """Directories to search for dataset ``name``, in priority order (existing or not).

    With ``root`` given, only ``root`` and ``root/name``.
    """
    if root is not None:
        base = Path(root).expanduser()
        return [base, base / name]
    dirs = []
    for base in _bases(root):
        dirs += [base, base / name]
    dirs.append(SYSTEM_DIR / name)
    unique = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def download_dir(name, root=None):
    """The directory a download of dataset ``name`` is written to (not created here)."""
    return _bases(root)[0] / name


def not_found_message(name, wanted, root=None):
    """The text of the error raised when no directory holds dataset ``name``'s files."""
    searched = ", ".join(str(d) for d in search_dirs(name, root))
    if root is not None:
        return (f"{name}: could not find {wanted} in {searched} (an explicit root is the only place "
                f"searched); point --root (root=) at the directory holding them, or drop it to search "
                f"the usual places, or fetch them there with download=True (`tinyeff data download {name} --root {root}`)")
    return (f"{name}: could not find {wanted} in any of: {searched}; "
            f"pass download=True (or run `tinyeff data download {name}`), "
            f"or point root= or $TINYEFF_DATA at a directory holding them")
