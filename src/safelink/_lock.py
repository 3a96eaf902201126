"""Advisory inter-process file locks with a timeout.

Cache entries and environments are shared by concurrent processes. A lock is a
file opened once and locked with ``flock`` where there is ``fcntl`` (POSIX; a
directory can be locked itself), else with ``msvcrt.locking`` on a lock file
(Windows). The kernel drops either when the process dies, so a crash never
leaves a stale lock.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import Any

try:
    import fcntl
except ImportError:  # Windows (or simulated Windows in the tests): no flock
    _msvcrt: Any = import_module("msvcrt")
    DIRECTORY_LOCKS = False

    def _try_lock(fd: int, shared: bool = False) -> bool:
        try:
            _msvcrt.locking(fd, _msvcrt.LK_NBLCK, 1)  # no shared locks: exclusive
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        _msvcrt.locking(fd, _msvcrt.LK_UNLCK, 1)

else:
    DIRECTORY_LOCKS = True
    """A directory can be locked itself (no lock file left in it)."""

    def _try_lock(fd: int, shared: bool = False) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class LockTimeout(Exception):
    """The lock was not acquired within the timeout (see :mod:`safelink._translate`)."""

    def __init__(self, path: str, timeout: float, what: str | None = None) -> None:
        super().__init__(path)
        self.path = path
        self.timeout = timeout
        self.what = what or path
        """What the lock protects, for messages (``environment /x/.venv``)."""


@contextmanager
def file_lock(
    path: str, timeout: float | None = None, *, what: str | None = None, shared: bool = False
) -> Iterator[None]:
    """Hold an exclusive (or *shared*) lock on *path* (a directory, or a file created if
    missing). Shared locks are exclusive on Windows.

    ``timeout=None`` waits forever. Polls with a short back-off: locks here are
    held for milliseconds to seconds, and polling keeps the code portable.
    A time-out raises :class:`LockTimeout` naming *what* (default: *path*).

    A lock file may be deleted by whoever holds its lock (:func:`discard`): a lock
    taken on a file that no longer has that name is let go and taken again on the
    file now there, so two processes never both hold "the" lock of *path*.
    """
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    while True:
        is_dir = DIRECTORY_LOCKS and os.path.isdir(path)
        fd = os.open(path, os.O_RDONLY) if is_dir else _open_lock_file(path)
        try:
            delay = 0.001
            while not _try_lock(fd, shared):
                if deadline is not None and time.monotonic() >= deadline:
                    raise LockTimeout(path, deadline - start, what)
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
            if not is_dir and not _still_named(fd, path):
                _unlock(fd)  # deleted (or replaced) while we waited: lock the new one
                continue
            try:
                yield
            finally:
                _unlock(fd)
            return
        finally:
            os.close(fd)


def _open_lock_file(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        # A lock file made by another user (0644), or on a read-only mount: flock
        # works on a read-only descriptor too, so an existing file is enough.
        if not os.path.isfile(path):
            raise
        try:
            return os.open(path, os.O_RDONLY)
        except OSError:
            raise exc from None


def _still_named(fd: int, path: str) -> bool:
    """Is the open file *fd* still the file at *path*?"""
    try:
        st = os.stat(path)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def discard(path: str, *, held: bool = False) -> bool:
    """Delete the lock file *path* if nobody holds its lock (or the caller does: *held*).

    Deleted under its lock, so a process waiting for it notices and locks a new file
    (see :func:`file_lock`). False if it is in use, or cannot be deleted (Windows
    keeps an open file), in which case it stays: an empty file, harmless.
    """
    try:
        if held:
            os.unlink(path)
        elif os.path.isfile(path):
            with file_lock(path, timeout=0):
                os.unlink(path)
        return True
    except (OSError, LockTimeout):
        return False


ENV_LOCK_FILE = ".safelink.lock"
"""Where directories cannot be locked (Windows): the lock file in an environment's root."""


def env_lock_path(root: str) -> str:
    """What to lock for an environment: its root directory, or a lock file in it."""
    return root if DIRECTORY_LOCKS else os.path.join(root, ENV_LOCK_FILE)


DEFAULT_TIMEOUT = 120.0
"""How long to wait for another safelink process using the same environment."""


def env_lock_timeout(explicit: float | None) -> float:
    """*explicit*, else ``$SAFELINK_LOCK_TIMEOUT``, else :data:`DEFAULT_TIMEOUT` seconds."""
    if explicit is not None:
        return explicit
    return float(os.environ.get("SAFELINK_LOCK_TIMEOUT", DEFAULT_TIMEOUT))


@contextmanager
def env_lock(root: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the lock of the environment at *root* (every command that reads or changes
    an environment's distributions takes it). *timeout*: see :func:`env_lock_timeout`.

    A *root* that is not a directory is ``FileNotFoundError``: locking it must not
    create a file there.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(errno.ENOENT, "no such environment", root)
    with file_lock(env_lock_path(root), env_lock_timeout(timeout), what=f"environment {root}"):
        yield
