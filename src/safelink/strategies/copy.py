"""Copy: the always-works fallback, done in the kernel where possible.

Linux: ``copy_file_range`` (which btrfs and XFS turn into a reflink by
themselves), then ``sendfile``. macOS: ``fcopyfile`` (its ``sendfile`` only
writes to sockets: ``ENOTSOCK``). Everywhere, and whenever a faster call says
it cannot do the job here: a plain read/write loop. A call that cannot work
here is not tried again in this process. The destination is created with
``O_EXCL`` and removed again if anything fails.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable

TYPE_CHECKING = False  # DirPair is only an annotation here (no import cycle)
if TYPE_CHECKING:
    from . import DirPair

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import ClassVar


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0)
_CHUNK = 1 << 30
_HAS_CFR = hasattr(os, "copy_file_range")
_HAS_SENDFILE = hasattr(os, "sendfile") and sys.platform.startswith("linux")
"""Only Linux's ``sendfile`` writes to regular files (macOS and the BSDs: ENOTSOCK)."""
_NO_FAST = frozenset(
    {
        errno.EXDEV,
        errno.EINVAL,
        errno.ENOSYS,
        errno.EOPNOTSUPP,
        errno.ENOTSUP,
        errno.EBADF,
        errno.ENOTSOCK,
    }
)
"""Errors that mean "this call cannot copy between these two files", not "the copy failed"."""

_fcopyfile: Callable[[int, int], None] | None = None
if sys.platform == "darwin":  # pragma: no cover - runs on the macOS CI runner
    import posix

    _fc = getattr(posix, "_fcopyfile", None)
    _data = getattr(posix, "_COPYFILE_DATA", None)
    if _fc is not None and _data is not None:

        def _fcopyfile(sfd: int, dfd: int) -> None:
            _fc(sfd, dfd, _data)


def _restart(sfd: int, dfd: int) -> None:
    """Back to the start of both files, the destination empty, for the next method."""
    os.lseek(sfd, 0, os.SEEK_SET)
    os.lseek(dfd, 0, os.SEEK_SET)
    os.ftruncate(dfd, 0)


def copy_fd(sfd: int, dfd: int) -> None:
    """Copy all of *sfd* to *dfd* with the cheapest call that works here."""
    global _HAS_CFR, _HAS_SENDFILE, _fcopyfile
    if _HAS_CFR:
        try:
            while os.copy_file_range(sfd, dfd, _CHUNK):
                pass
            return
        except OSError as exc:
            if exc.errno not in _NO_FAST:
                raise
            if exc.errno == errno.ENOSYS:
                _HAS_CFR = False
            _restart(sfd, dfd)
    if _fcopyfile is not None:  # pragma: no cover - macOS
        try:
            _fcopyfile(sfd, dfd)
            return
        except OSError as exc:
            if exc.errno not in _NO_FAST:
                raise
            _fcopyfile = None
            _restart(sfd, dfd)
    if _HAS_SENDFILE:
        try:
            offset = 0
            while n := os.sendfile(dfd, sfd, offset, _CHUNK):
                offset += n
            return
        except OSError as exc:
            if exc.errno not in _NO_FAST:
                raise
            _HAS_SENDFILE = False
            _restart(sfd, dfd)
    while data := os.read(sfd, 1 << 20):
        view = memoryview(data)
        while view:
            view = view[os.write(dfd, view) :]


class CopyStrategy:
    name: ClassVar[str] = "copy"
    shares_inode: ClassVar[bool] = False
    isolated: ClassVar[bool] = True

    def link(self, pair: DirPair, src: str, dst: str, executable: bool) -> None:
        dst = pair.dst(dst)
        sfd = os.open(pair.src(src), _READ, dir_fd=pair.src_fd)
        try:
            dfd = os.open(dst, _CREATE, 0o777 if executable else 0o666, dir_fd=pair.dst_fd)
            try:
                copy_fd(sfd, dfd)
            except BaseException:
                os.close(dfd)
                os.unlink(dst, dir_fd=pair.dst_fd)
                raise
            os.close(dfd)
        finally:
            os.close(sfd)
