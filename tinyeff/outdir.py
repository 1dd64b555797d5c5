"""One writer per output directory: ``DIR/.lock`` is held for the whole run.

Two runs writing the same ``--out`` would silently mix their files (the settings of one, the model
of the other), so every command that writes a directory holds a lock on it for the whole run. The
lock is the ``filelock`` package's (an OS-level lock on ``DIR/.lock``: released by the kernel when the
process dies, even by ``kill -9``, and portable to Windows, unlike a bare ``fcntl``). The holder's pid
goes into ``DIR/.lock.pid`` so the second writer's error can name it. Once the lock is held, the
temporary files a killed run left behind are removed (``fsio.remove_stale_temps``).
"""
import contextlib
import os

from tinyeff import fsio
from tinyeff.errors import OutputDirBusy

LOCK_NAME = ".lock"
PID_NAME = ".lock.pid"


@contextlib.contextmanager
def locked(directory):
    """Create ``directory`` if needed and hold its lock while the ``with`` body runs.

    Raises:
        OutputDirBusy: another process holds the lock ("DIR is in use by pid N").
        OSError: the directory cannot be created or written.
    """
    import filelock
    directory = os.fspath(directory)
    created = not os.path.isdir(directory)
    os.makedirs(directory, exist_ok=True)
    lock = filelock.FileLock(os.path.join(directory, LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise OutputDirBusy(f"{directory} is in use by {_holder(directory)}; wait for that run to finish "
                            "or choose another output directory") from None
    try:
        fsio.write_text(os.path.join(directory, PID_NAME), f"{os.getpid()}\n")
        fsio.remove_stale_temps(directory)
        yield directory
    finally:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, PID_NAME))
        lock.release()
        if created:
            _remove_if_unused(directory)


def _remove_if_unused(directory):
    """A run that failed before writing anything leaves no empty directory behind."""
    with contextlib.suppress(OSError):
        if os.listdir(directory) == [LOCK_NAME]:
            os.unlink(os.path.join(directory, LOCK_NAME))
            os.rmdir(directory)


def _holder(directory):
    try:
        with open(os.path.join(directory, PID_NAME)) as f:
            pid = f.read().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"
