"""Error translation: ``OSError`` and lock time-outs become one-line ``SafelinkError``\\s.

Every command (install, uninstall, repair, verify, the cache commands) runs its
work inside :func:`translated`, and the command line passes anything that still
escapes through :func:`translate`, so a user never sees a traceback for an
operating-system error: one line says what failed, where, and what to do.
The texts live here and only here.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

from ._lock import LockTimeout
from .errors import EnvironmentBusy, SafelinkError, TargetError

_UNCHANGED = {
    "install": "the environment was left as it was",
    "uninstall": "nothing was removed",
}
"""What a failed command promises about the environment (it rolled back)."""

_DOING = {
    "install": "installing into",
    "uninstall": "uninstalling from",
    "repair": "repairing",
    "verify": "verifying",
    "cache": "managing the cache at",
    "sync": "syncing",
}

_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def busy(exc: LockTimeout) -> EnvironmentBusy:
    """Another safelink process held the lock for longer than the time-out."""
    return EnvironmentBusy(
        f"{exc.what} is being modified by another safelink process",
        f"waited {exc.timeout:g} s; try again when it has finished",
    )


def os_error(exc: OSError, command: str, root: str | None = None) -> SafelinkError:
    """*exc*, raised while *command* worked on *root* (an environment or the cache): one line."""
    where = exc.filename or root or ""
    if root and os.path.basename(str(where)).startswith(".safelink-"):
        where = root  # our journal or stash: the environment itself is the problem
    unchanged = _UNCHANGED.get(command)
    code = exc.errno
    strerror = exc.strerror or str(exc)
    if code == errno.ENOENT and root and where == root and command != "install":
        return TargetError(
            f"{root} does not exist", "check the path of the environment", errno=code
        )
    if code == errno.ENOSPC:
        doing = f"{_DOING.get(command, command)} {root}" if root else command
        return SafelinkError(
            f"no space left on device while {doing}",
            f"free some space; {unchanged}" if unchanged else "free some space",
            errno=code,
        )
    if command == "uninstall":
        at = f" at {where}" if where != root else ""
        return TargetError(
            f"cannot uninstall from {root}: {strerror}{at}",
            f"fix its permissions; {unchanged}",
            errno=code,
        )
    if code in _DENIED:
        fix = (
            "fix its permissions or choose another target"
            if command == "install"
            else ("fix its permissions")
        )
        return TargetError(
            f"cannot write to {where}: {strerror}",
            f"{fix}; nothing was changed" if command == "install" else fix,
            errno=code,
        )
    if command == "install":
        return SafelinkError(
            f"install into {root} failed at {where}: {strerror}", unchanged, errno=code
        )
    at = f" at {where}" if where else ""
    return SafelinkError(f"{command} failed{at}: {strerror}", errno=code)


def unwritable_target(exc: OSError, where: str) -> TargetError:
    """The target cannot be written at all (checked before anything is changed)."""
    return TargetError(
        f"cannot write to {where}: {exc.strerror or exc}",
        "choose a writable target (--python, --prefix, --target) or fix its permissions",
        errno=exc.errno,
    )


def translate(exc: BaseException, command: str, root: str | None = None) -> BaseException:
    """The ``SafelinkError`` for an ``OSError`` or a lock time-out; anything else unchanged."""
    if isinstance(exc, LockTimeout):
        return busy(exc)
    if isinstance(exc, OSError):
        return os_error(exc, command, root)
    return exc


@contextmanager
def translated(command: str, root: str | None = None) -> Iterator[None]:
    """Run a command's work: operating-system errors and lock time-outs leave it as one line."""
    try:
        yield
    except (OSError, LockTimeout) as exc:
        raise translate(exc, command, root) from None


__all__ = ["busy", "os_error", "translate", "translated", "unwritable_target"]
