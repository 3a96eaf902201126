"""Clone (reflink): a new inode that shares the cached file's blocks copy-on-write.

Fully isolated and nearly as fast as a hardlink. Platform back-ends:

* Linux: ``ioctl(dst, FICLONE, src)`` on a destination created with
  ``O_EXCL`` (btrfs, XFS with reflink=1, bcachefs, OCFS2, NFS 4.2, ZFS >= 2.2).
  ext4/tmpfs answer EOPNOTSUPP, different filesystems EXDEV.
* macOS: ``clonefileat`` (APFS) through ctypes, then ``fchmod`` to normal modes.
* Windows: ``FSCTL_DUPLICATE_EXTENTS_TO_FILE`` (ReFS, Dev Drive) through ctypes,
  in cluster-aligned ranges.
"""

from __future__ import annotations

import errno
import os
import sys

TYPE_CHECKING = False  # DirPair is only an annotation here (no import cycle)
if TYPE_CHECKING:
    from . import DirPair

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import ClassVar


FICLONE = 0x40049409
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0)


def _has_fcntl() -> bool:
    try:
        import fcntl  # noqa: F401
    except ImportError:  # simulated Windows in the tests
        return False
    return True


if sys.platform.startswith("linux") and _has_fcntl():
    import fcntl

    def _clone(pair: DirPair, src: str, dst: str, executable: bool) -> None:
        dst = pair.dst(dst)
        sfd = os.open(pair.src(src), _READ, dir_fd=pair.src_fd)
        try:
            dfd = os.open(dst, _CREATE, 0o777 if executable else 0o666, dir_fd=pair.dst_fd)
            try:
                fcntl.ioctl(dfd, FICLONE, sfd)
            except BaseException:
                os.close(dfd)
                os.unlink(dst, dir_fd=pair.dst_fd)
                raise
            os.close(dfd)
        finally:
            os.close(sfd)

elif sys.platform == "darwin":  # pragma: no cover - runs on the macOS CI runner
    import ctypes

    _libc = ctypes.CDLL(None, use_errno=True)
    _clonefileat = _libc.clonefileat
    _clonefileat.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint32,
    ]
    _clonefileat.restype = ctypes.c_int
    _CLONE_NOFOLLOW = 0x0001
    _umask = os.umask(0)
    os.umask(_umask)

    def _clone(pair: DirPair, src: str, dst: str, executable: bool) -> None:
        rc = _clonefileat(
            pair.src_fd, os.fsencode(src), pair.dst_fd, os.fsencode(dst), _CLONE_NOFOLLOW
        )
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), dst)
        # clonefile copies the cache's read-only mode; give the new inode normal bits.
        os.chmod(dst, (0o777 if executable else 0o666) & ~_umask, dir_fd=pair.dst_fd)

elif sys.platform == "win32":  # pragma: no cover - runs on the Windows CI runner
    import ctypes
    import msvcrt
    from ctypes import wintypes

    _k32 = ctypes.WinDLL("kernel32", use_last_error=True)
    _FSCTL_DUPLICATE_EXTENTS_TO_FILE = 0x00098344
    _FSCTL_SET_SPARSE = 0x000900C4

    class _DUPLICATE_EXTENTS_DATA(ctypes.Structure):
        _fields_ = [
            ("FileHandle", wintypes.HANDLE),
            ("SourceFileOffset", ctypes.c_int64),
            ("TargetFileOffset", ctypes.c_int64),
            ("ByteCount", ctypes.c_int64),
        ]

    _DeviceIoControl = _k32.DeviceIoControl
    _DeviceIoControl.argtypes = [
        wintypes.HANDLE,
        wintypes.DWORD,
        ctypes.c_void_p,
        wintypes.DWORD,
        ctypes.c_void_p,
        wintypes.DWORD,
        ctypes.POINTER(wintypes.DWORD),
        ctypes.c_void_p,
    ]
    _DeviceIoControl.restype = wintypes.BOOL
    _GetDiskFreeSpaceW = _k32.GetDiskFreeSpaceW

    def _cluster_size(path: str) -> int:
        root = os.path.splitdrive(os.path.abspath(path))[0] + "\\"
        spc, bps, free, total = (wintypes.DWORD() for _ in range(4))
        if not _GetDiskFreeSpaceW(
            root, ctypes.byref(spc), ctypes.byref(bps), ctypes.byref(free), ctypes.byref(total)
        ):
            return 4096
        return int(spc.value * bps.value)

    def _clone(pair: DirPair, src: str, dst: str, executable: bool) -> None:
        src_path = os.path.join(pair.src_root, src)
        dst_path = os.path.join(pair.dst_root, dst)
        sfd = os.open(src_path, _READ)
        try:
            size = os.fstat(sfd).st_size
            dfd = os.open(dst_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_BINARY, 0o666)
            try:
                cluster = _cluster_size(dst_path)
                aligned = (size + cluster - 1) // cluster * cluster
                os.ftruncate(dfd, aligned)
                data = _DUPLICATE_EXTENTS_DATA(msvcrt.get_osfhandle(sfd), 0, 0, aligned)
                returned = wintypes.DWORD()
                ok = _DeviceIoControl(
                    msvcrt.get_osfhandle(dfd),
                    _FSCTL_DUPLICATE_EXTENTS_TO_FILE,
                    ctypes.byref(data),
                    ctypes.sizeof(data),
                    None,
                    0,
                    ctypes.byref(returned),
                    None,
                )
                if not ok:
                    err = ctypes.get_last_error()
                    raise OSError(
                        errno.EOPNOTSUPP, f"block cloning failed (Windows error {err})", dst_path
                    )
                os.ftruncate(dfd, size)
            except BaseException:
                os.close(dfd)
                os.unlink(dst_path)
                raise
            os.close(dfd)
        finally:
            os.close(sfd)

else:  # pragma: no cover

    def _clone(pair: DirPair, src: str, dst: str, executable: bool) -> None:
        raise OSError(errno.EOPNOTSUPP, "cloning is not implemented on this platform", dst)


class CloneStrategy:
    name: ClassVar[str] = "clone"
    shares_inode: ClassVar[bool] = False
    isolated: ClassVar[bool] = True

    def link(self, pair: DirPair, src: str, dst: str, executable: bool) -> None:
        _clone(pair, src, dst, executable)
