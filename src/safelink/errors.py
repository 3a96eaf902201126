"""One exception hierarchy, so embedding tools can catch precisely.

Every error a user can act on carries a one-line message (what, where) and,
where there is one, a hint (what to do). The CLI prints exactly that line; it
never shows a traceback for a :class:`SafelinkError`.
"""

from __future__ import annotations


class SafelinkError(Exception):
    """Base class of every error safelink raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.errno = errno
        """The operating system's error number behind this error, if there was one."""

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class InvalidWheel(SafelinkError):
    """The file is not a well-formed wheel (bad zip, bad RECORD, bad name, bad metadata)."""


class UnsafeWheel(InvalidWheel):
    """The wheel tries to write outside its target (traversal, absolute path, link member)."""


class IncompatibleWheel(SafelinkError):
    """The wheel's tags do not match the target interpreter."""


class WheelTooLarge(InvalidWheel):
    """The wheel unpacks to more than the configured cap (zip-bomb guard)."""


class LinkFailed(SafelinkError):
    """A requested link mode cannot work between the cache and the target."""


class EnvironmentBusy(SafelinkError):
    """Another safelink process holds the environment's lock for too long."""


class CacheCorrupt(SafelinkError):
    """A cache entry failed verification and could not be healed."""


class TargetError(SafelinkError):
    """The target environment cannot be used (missing, unwritable, unknown layout)."""


class NotInstalled(SafelinkError):
    """``uninstall`` was asked for a distribution that is not installed."""


class InvalidLock(SafelinkError):
    """A ``pylock.toml`` cannot be used for this target (malformed, unsupported, or it
    selects something safelink cannot install: an sdist, a VCS checkout, a directory)."""


class DownloadFailed(SafelinkError):
    """A wheel a lock file names could not be fetched whole and with the locked hash."""


__all__ = [
    "CacheCorrupt",
    "DownloadFailed",
    "EnvironmentBusy",
    "IncompatibleWheel",
    "InvalidLock",
    "InvalidWheel",
    "LinkFailed",
    "NotInstalled",
    "SafelinkError",
    "TargetError",
    "UnsafeWheel",
    "WheelTooLarge",
]
