"""Make this Python look like Windows where it matters to safelink: no ``os.fork``, no
``fcntl``, no ``signal.SIGKILL``; ``msvcrt.locking`` instead.

Active only when ``SAFELINK_TEST_NO_POSIX=1``. ``tests/conftest.py`` applies it to the
test process and puts this directory on ``PYTHONPATH`` so that every ``python -m
safelink`` the tests start gets it too (as ``sitecustomize``, before anything else).
What it exercises here: link and admission workers as threads instead of a forked
process, and the lock-file locking used where directories cannot be locked. The fake
``msvcrt.locking`` has the semantics safelink relies on (a non-blocking exclusive lock
per open file, released on close or on process death), borrowed from ``flock``.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import types

ACTIVE = os.environ.get("SAFELINK_TEST_NO_POSIX") == "1"


def apply() -> None:
    if getattr(sys, "_safelink_no_posix", False):
        return
    try:
        import fcntl as real
    except ImportError:  # a real Windows: nothing to take away
        return
    sys._safelink_no_posix = True  # type: ignore[attr-defined]
    # subprocess takes "import msvcrt works" to mean Windows: let it see the truth first.
    import subprocess  # noqa: F401

    fake = types.ModuleType("msvcrt")
    fake.LK_UNLCK, fake.LK_LOCK, fake.LK_NBLCK, fake.LK_RLCK, fake.LK_NBRLCK = 0, 1, 2, 3, 4

    def locking(fd: int, mode: int, nbytes: int) -> None:
        if mode == fake.LK_UNLCK:
            real.flock(fd, real.LOCK_UN)
            return
        flags = real.LOCK_EX | (real.LOCK_NB if mode in (fake.LK_NBLCK, fake.LK_NBRLCK) else 0)
        try:
            real.flock(fd, flags)
        except BlockingIOError:
            raise OSError(errno.EACCES, "Permission denied") from None

    def get_osfhandle(fd: int) -> int:
        raise OSError(errno.EBADF, "no Windows handles here")

    fake.locking = locking  # type: ignore[attr-defined]
    fake.get_osfhandle = get_osfhandle  # type: ignore[attr-defined]
    sys.modules["msvcrt"] = fake
    sys.modules["fcntl"] = None  # type: ignore[assignment]  # "import fcntl" -> ImportError
    for name in ("fork", "forkpty", "register_at_fork"):
        if hasattr(os, name):
            delattr(os, name)
    if hasattr(signal, "SIGKILL"):
        del signal.SIGKILL


if ACTIVE:
    apply()
