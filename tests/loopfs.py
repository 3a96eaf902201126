#!/usr/bin/env python3
"""Real loop-mounted filesystems for safelink's tests and benchmarks.

This module depends on the standard library only; it is imported by the pytest
plugin ``tests/fs_fixtures.py`` and by the benchmark suite (via ``sys.path``).

Typical use::

    reason = can_mount()
    if reason is not None:
        ...  # skip (or fail, in CI)
    with LoopFilesystems() as lfs:
        btrfs_root = lfs.path("btrfs")
        tiny = lfs.small("ext4", 8)       # extra small fs for ENOSPC tests

Every ``LoopFilesystems`` lives in its own fresh ``safelink-loopfs-*`` work
directory (under ``tempfile.gettempdir()`` unless *base* is given) that holds the
sparse image files and the mount points, so ``findmnt | grep safelink-loopfs``
shows everything it mounted.  ``close()`` (also run by ``__exit__`` and, as a last
resort, at interpreter exit) unmounts, detaches the loop devices and deletes the
work directory.

Command line::

    python tests/loopfs.py check     # "ok" + exit 0, or the reason + exit 1
    python tests/loopfs.py cleanup   # unmount leftovers of crashed runs
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import functools
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

__all__ = [
    "DEFAULT_SIZE_MIB",
    "FICLONE",
    "FIEMAP_EXTENT_SHARED",
    "FS_IOC_FIEMAP",
    "FS_KINDS",
    "NO_REFLINK_KINDS",
    "REFLINK_KINDS",
    "WORKDIR_PREFIX",
    "LoopFilesystems",
    "LoopFsError",
    "can_mount",
    "cleanup_stale",
    "fs_type",
    "is_mountpoint",
    "main",
    "rmtree_force",
    "shared_extents",
]

FS_KINDS: Final[tuple[str, ...]] = ("ext4", "xfs", "btrfs", "tmpfs")
REFLINK_KINDS: Final[tuple[str, ...]] = ("xfs", "btrfs")
NO_REFLINK_KINDS: Final[tuple[str, ...]] = ("ext4", "tmpfs")
SMALL_KINDS: Final[tuple[str, ...]] = ("ext4", "tmpfs")

DEFAULT_SIZE_MIB: Final = 512
# Smallest sizes mkfs accepts (XFS refuses < 300 MiB, btrfs < ~114 MiB).
MIN_SIZE_MIB: Final[Mapping[str, int]] = {"ext4": 2, "xfs": 300, "btrfs": 128, "tmpfs": 1}

WORKDIR_PREFIX: Final = "safelink-loopfs-"
ROOT_MODE: Final = 0o1777  # mode of every mounted filesystem's root directory

FICLONE: Final = 0x40049409
FS_IOC_FIEMAP: Final = 0xC020660B
FIEMAP_FLAG_SYNC: Final = 0x1
FIEMAP_EXTENT_LAST: Final = 0x1
FIEMAP_EXTENT_SHARED: Final = 0x2000

_MIB: Final = 1024 * 1024
_SBIN_DIRS: Final = ("/usr/local/sbin", "/usr/sbin", "/sbin")
_REQUIRED_TOOLS: Final = ("mount", "umount", "losetup", "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs")
_CMD_TIMEOUT: Final = 120.0

# struct fiemap (32 bytes) followed by struct fiemap_extent[n] (56 bytes each).
_FIEMAP_HDR: Final = struct.Struct("=QQIIII")
_FIEMAP_EXTENT: Final = struct.Struct("=QQQQQIIII")
_FIEMAP_BATCH: Final = 64
_FIEMAP_MAX_OFFSET: Final = 0xFFFFFFFFFFFFFFFF


class LoopFsError(RuntimeError):
    """A mount/mkfs/umount/losetup step failed, or teardown was incomplete."""


# --------------------------------------------------------------------------- helpers


def _one_line(text: str) -> str:
    return " ".join(text.split())


@functools.cache
def _which(tool: str) -> str | None:
    found = shutil.which(tool)
    if found is None:
        # Non-login root shells sometimes lack the sbin directories on PATH.
        found = shutil.which(tool, path=os.pathsep.join(_SBIN_DIRS))
    return found


def _run(argv: Sequence[str], *, timeout: float = _CMD_TIMEOUT) -> str:
    """Run a command quietly; return stdout or raise LoopFsError with its stderr."""
    exe = _which(argv[0])
    if exe is None:
        raise LoopFsError(f"{argv[0]}: command not found")
    try:
        proc = subprocess.run(
            [exe, *argv[1:]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C"},
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LoopFsError(f"{' '.join(argv)} timed out after {timeout:g}s") from exc
    if proc.returncode != 0:
        detail = _one_line(proc.stderr or proc.stdout) or "no output"
        raise LoopFsError(f"{' '.join(argv)} failed (exit {proc.returncode}): {detail}")
    return proc.stdout


def _unescape_mountinfo(field: bytes) -> str:
    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)
    return os.fsdecode(raw)


def _mount_table() -> list[tuple[str, str, str]]:
    """(mount point, fs type, source) for every mount, in /proc/self/mountinfo order."""
    with open("/proc/self/mountinfo", "rb") as f:
        data = f.read()
    table: list[tuple[str, str, str]] = []
    for line in data.splitlines():
        fields = line.split(b" ")
        try:
            sep = fields.index(b"-", 6)
            mountpoint = _unescape_mountinfo(fields[4])
            fstype = os.fsdecode(fields[sep + 1])
            source = _unescape_mountinfo(fields[sep + 2])
        except (ValueError, IndexError):
            continue
        table.append((mountpoint, fstype, source))
    return table


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))


def is_mountpoint(path: str | os.PathLike[str]) -> bool:
    """True if *path* is the mount point of some mount in this mount namespace."""
    target = _real(path)
    return any(mp == target for mp, _, _ in _mount_table())


def _mounts_under(directory: str | os.PathLike[str]) -> list[str]:
    root = _real(directory).rstrip("/") + "/"
    return [mp for mp, _, _ in _mount_table() if mp.startswith(root)]


def fs_type(path: str | os.PathLike[str]) -> str:
    """Filesystem type ("ext4", "xfs", "btrfs", "tmpfs", ...) that holds *path*.

    Uses the longest matching mount point in /proc/self/mountinfo (the latest
    mount wins for stacked mounts); falls back to ``stat -f -c %T``.
    """
    target = _real(path)
    try:
        table = _mount_table()
    except OSError:
        return _run(["stat", "-f", "-c", "%T", target]).strip()
    best: tuple[int, str] | None = None
    for mountpoint, fstype, _source in table:
        inside = mountpoint == "/" or target == mountpoint or target.startswith(mountpoint + "/")
        if inside and (best is None or len(mountpoint) >= best[0]):
            best = (len(mountpoint), fstype)
    if best is None:
        return _run(["stat", "-f", "-c", "%T", target]).strip()
    return best[1]


def _onexc_retry(func: Callable[..., Any], path: str, _exc: object) -> None:
    """shutil.rmtree error handler: make the entry and its parent writable, retry."""
    parent = os.path.dirname(path)
    with contextlib.suppress(OSError):
        os.chmod(parent, stat.S_IMODE(os.lstat(parent).st_mode) | stat.S_IRWXU)
    with contextlib.suppress(OSError):
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
    func(path)


def rmtree_force(path: str | os.PathLike[str]) -> None:
    """``shutil.rmtree`` that also removes trees containing read-only directories.

    Does nothing if *path* does not exist.  Refuses to delete across a mount
    point (raises LoopFsError) so it can never eat a mounted filesystem.
    """
    top = os.fspath(path)
    if not os.path.lexists(top):
        return
    if os.path.islink(top) or not os.path.isdir(top):
        os.unlink(top)
        return
    busy = _mounts_under(top)
    if busy or is_mountpoint(top):
        raise LoopFsError(f"refusing to delete {top}: mount points inside: {busy or [top]}")
    # Make every directory listable and writable first (matters when not root).
    with contextlib.suppress(OSError):
        os.chmod(top, stat.S_IMODE(os.lstat(top).st_mode) | stat.S_IRWXU)
    for root, dirs, _files in os.walk(top):
        for name in dirs:
            sub = os.path.join(root, name)
            with contextlib.suppress(OSError):
                st = os.lstat(sub)
                if stat.S_ISDIR(st.st_mode):
                    os.chmod(sub, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
    if sys.version_info >= (3, 12):
        shutil.rmtree(top, onexc=_onexc_retry)
    else:
        shutil.rmtree(top, onerror=_onexc_retry)


# ----------------------------------------------------------------------- extents


def _fiemap_shared(path: str | os.PathLike[str]) -> bool:
    """FIEMAP ioctl: does any extent of *path* carry FIEMAP_EXTENT_SHARED?"""
    import fcntl  # POSIX-only: imported here so the module imports everywhere

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        start = 0
        flags = FIEMAP_FLAG_SYNC  # flush delalloc on the first call only
        while True:
            buf = bytearray(_FIEMAP_HDR.size + _FIEMAP_BATCH * _FIEMAP_EXTENT.size)
            _FIEMAP_HDR.pack_into(
                buf, 0, start, _FIEMAP_MAX_OFFSET - start, flags, 0, _FIEMAP_BATCH, 0
            )
            fcntl.ioctl(fd, FS_IOC_FIEMAP, buf, True)
            mapped = _FIEMAP_HDR.unpack_from(buf, 0)[3]
            if mapped == 0:
                return False
            last_end = start
            for i in range(mapped):
                logical, _phys, length, _r1, _r2, fe_flags, *_ = _FIEMAP_EXTENT.unpack_from(
                    buf, _FIEMAP_HDR.size + i * _FIEMAP_EXTENT.size
                )
                if fe_flags & FIEMAP_EXTENT_SHARED:
                    return True
                if fe_flags & FIEMAP_EXTENT_LAST:
                    return False
                last_end = logical + length
            if mapped < _FIEMAP_BATCH or last_end <= start:
                return False
            start, flags = last_end, 0
    finally:
        os.close(fd)


_FILEFRAG_EXTENT = re.compile(r"^\s*\d+:\s")


def _filefrag_shared(path: str | os.PathLike[str]) -> bool:
    """Parse ``filefrag -v -s``: is any extent's flag list containing "shared"?"""
    out = _run(["filefrag", "-v", "-s", os.fspath(path)])
    for line in out.splitlines():
        if _FILEFRAG_EXTENT.match(line):
            flags = line.rsplit(":", 1)[-1]
            if "shared" in (f.strip() for f in flags.split(",")):
                return True
    return False


def shared_extents(path: str | os.PathLike[str]) -> bool:
    """True if any extent of the file at *path* is flagged SHARED (reflinked).

    Uses the FIEMAP ioctl (FS_IOC_FIEMAP with FIEMAP_FLAG_SYNC on the first call)
    and falls back to ``filefrag -v`` when the ioctl fails.  Files on
    filesystems without an extent map (e.g. tmpfs) report False.  A missing
    *path* raises FileNotFoundError.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), os.fspath(path))
    try:
        return _fiemap_shared(path)
    except OSError:
        pass
    try:
        return _filefrag_shared(path)
    except LoopFsError:
        return False  # neither FIEMAP nor FIBMAP: nothing can be shared


# ------------------------------------------------------------------ availability


def _kernel_supports(kind: str) -> bool:
    def registered() -> bool:
        try:
            with open("/proc/filesystems", encoding="ascii") as f:
                return any(line.split()[-1:] == [kind] for line in f)
        except OSError:
            return True  # cannot tell; let the real mount decide

    if registered():
        return True
    with contextlib.suppress(LoopFsError):
        _run(["modprobe", kind], timeout=30)
    return registered()


@functools.lru_cache(maxsize=1)
def can_mount() -> str | None:
    """None if loop-mounted test filesystems can be made here, else a one-line reason.

    The result is cached; ``can_mount.cache_clear()`` forces a re-check.
    """
    if not sys.platform.startswith("linux"):
        return f"loop-mounted filesystem tests need Linux (this is {sys.platform})"
    geteuid: Callable[[], int] | None = getattr(os, "geteuid", None)
    if geteuid is None or geteuid() != 0:
        return "not root: loop-mounted filesystem tests need root"
    missing = [tool for tool in _REQUIRED_TOOLS if _which(tool) is None]
    if missing:
        return (
            f"missing tools for loop-mounted filesystem tests: {', '.join(missing)} "
            "(install util-linux, e2fsprogs, xfsprogs and btrfs-progs)"
        )
    unsupported = [kind for kind in FS_KINDS if not _kernel_supports(kind)]
    if unsupported:
        return f"kernel has no support for filesystem(s): {', '.join(unsupported)}"
    try:
        with LoopFilesystems(kinds=()) as trial:
            probe = trial.small("ext4", 8) / "probe"
            probe.write_bytes(b"ok")
            if probe.read_bytes() != b"ok" or fs_type(probe) != "ext4":
                return "trial loop mount did not behave like ext4"
    except (OSError, LoopFsError) as exc:
        return _one_line(f"trial loop mount failed: {exc}")
    return None


# ------------------------------------------------------------------ filesystems


@dataclass
class _Mount:
    kind: str
    mountpoint: Path
    image: Path | None  # None for tmpfs
    small: bool


_OPEN_INSTANCES: set[LoopFilesystems] = set()
_atexit_registered = False


def _close_leftovers() -> None:
    for lfs in list(_OPEN_INSTANCES):
        try:
            lfs.close()
        except Exception as exc:
            print(f"loopfs: cleanup at exit failed: {exc}", file=sys.stderr)


def _loops_for(image: Path) -> list[str]:
    """Loop devices whose backing file is *image*."""
    if not image.exists():
        return []
    out = _run(["losetup", "-j", os.fspath(image)])
    return [line.split(":", 1)[0] for line in out.splitlines() if line.startswith("/dev/")]


def _detach(image: Path, *, wait: bool) -> None:
    """Detach every loop device of *image*; with *wait*, until none is left."""
    deadline = time.monotonic() + 10.0
    while True:
        devices = _loops_for(image)
        if not devices:
            return
        for device in devices:
            # Fails harmlessly if autoclear already released it.
            with contextlib.suppress(LoopFsError):
                _run(["losetup", "-d", device])
        if not wait:
            return  # still busy (lazy unmount): autoclear frees it on last close
        if time.monotonic() > deadline:
            raise LoopFsError(f"loop device(s) {', '.join(devices)} still attached to {image}")
        time.sleep(0.02)


def _mkfs_argv(kind: str, *, small: bool) -> list[str]:
    if kind == "ext4":
        # Initialise inode tables and journal now: otherwise ext4lazyinit keeps
        # writing in the background after mounting, which skews benchmarks.
        argv = ["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"]
        if small:
            argv += ["-m", "0"]  # root ignores reserved blocks; make ENOSPC exact
        return argv
    if kind == "xfs":
        return ["mkfs.xfs", "-q", "-f", "-m", "reflink=1"]
    if kind == "btrfs":
        return ["mkfs.btrfs", "-q", "-f"]
    raise ValueError(f"no mkfs for {kind!r}")


class LoopFilesystems:
    """Context manager mounting one fresh filesystem of each kind.

    ``base`` is the parent directory of the fresh ``safelink-loopfs-*`` work
    directory (default: ``tempfile.gettempdir()``).  ``size_mib`` is one size for
    all kinds or a per-kind mapping (default 512 MiB; images are sparse, tmpfs
    only uses what is written).
    """

    def __init__(
        self,
        base: str | os.PathLike[str] | None = None,
        *,
        kinds: Iterable[str] = FS_KINDS,
        size_mib: int | Mapping[str, int] | None = None,
    ) -> None:
        self.kinds: tuple[str, ...] = tuple(kinds)
        unknown = [k for k in self.kinds if k not in FS_KINDS]
        if unknown or len(set(self.kinds)) != len(self.kinds):
            raise ValueError(f"kinds must be distinct members of {FS_KINDS}, got {self.kinds}")
        self.sizes_mib: dict[str, int] = dict.fromkeys(FS_KINDS, DEFAULT_SIZE_MIB)
        if isinstance(size_mib, int):
            self.sizes_mib = dict.fromkeys(FS_KINDS, size_mib)
        elif size_mib is not None:
            bad = [k for k in size_mib if k not in FS_KINDS]
            if bad:
                raise ValueError(f"size_mib has unknown kinds: {bad}")
            self.sizes_mib.update(size_mib)
        for kind in self.kinds:
            if self.sizes_mib[kind] < MIN_SIZE_MIB[kind]:
                raise ValueError(
                    f"{kind} needs at least {MIN_SIZE_MIB[kind]} MiB, got {self.sizes_mib[kind]}"
                )
        self._parent = Path(base) if base is not None else Path(tempfile.gettempdir())
        self.base: Path | None = None  # the work directory, once opened
        self.mounts: dict[str, Path] = {}
        self._records: list[_Mount] = []
        self._counter = 0

    # -- lifecycle ----------------------------------------------------------------

    def open(self) -> LoopFilesystems:
        """Create the work directory and mount every requested kind."""
        global _atexit_registered
        if self.base is not None:
            raise LoopFsError("LoopFilesystems is already open")
        self.base = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=self._parent))
        os.chmod(self.base, 0o755)
        _OPEN_INSTANCES.add(self)
        if not _atexit_registered:
            atexit.register(_close_leftovers)
            _atexit_registered = True
        try:
            for kind in self.kinds:
                self.mounts[kind] = self._mount(kind, kind, self.sizes_mib[kind], small=False)
        except BaseException:
            with contextlib.suppress(LoopFsError):
                self.close()
            raise
        return self

    def __enter__(self) -> LoopFilesystems:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except LoopFsError as teardown_error:  # do not mask the original exception
            warnings.warn(str(teardown_error), RuntimeWarning, stacklevel=2)

    def close(self) -> None:
        """Unmount everything, detach loop devices, delete images and the work dir.

        Every step is attempted even if an earlier one fails; failures are
        collected and raised together as LoopFsError afterwards.  Idempotent.
        """
        errors: list[str] = []
        for record in reversed(list(self._records)):
            try:
                self._teardown(record)
            except (OSError, LoopFsError) as exc:
                errors.append(f"{record.mountpoint}: {exc}")
            else:
                self._records.remove(record)
        self.mounts = {k: p for k, p in self.mounts.items() if self._has_record(p)}
        if self.base is not None and not self._records:
            try:
                rmtree_force(self.base)
            except (OSError, LoopFsError) as exc:
                errors.append(f"{self.base}: {exc}")
            else:
                self.base = None
        if self.base is None:
            _OPEN_INSTANCES.discard(self)
        if errors:
            raise LoopFsError("loop filesystem teardown incomplete: " + "; ".join(errors))

    # -- queries ------------------------------------------------------------------

    def path(self, kind: str) -> Path:
        """Mount point of the filesystem of *kind*."""
        try:
            return self.mounts[kind]
        except KeyError:
            raise KeyError(f"{kind!r} is not mounted (mounted: {sorted(self.mounts)})") from None

    @property
    def small_mounts(self) -> list[Path]:
        return [r.mountpoint for r in self._records if r.small]

    # -- extra small filesystems --------------------------------------------------

    def small(self, kind: str, size_mib: int) -> Path:
        """Mount an extra tiny ext4 or tmpfs (for ENOSPC tests); return its mount point.

        It is torn down by ``close()`` or earlier by ``release()``.  ext4 is made
        with no reserved blocks so root hits ENOSPC at the same point as others.
        """
        if kind not in SMALL_KINDS:
            raise ValueError(f"small() supports {SMALL_KINDS}, not {kind!r}")
        if size_mib < MIN_SIZE_MIB[kind]:
            raise ValueError(f"{kind} needs at least {MIN_SIZE_MIB[kind]} MiB, got {size_mib}")
        if self.base is None:
            raise LoopFsError("LoopFilesystems is not open")
        self._counter += 1
        return self._mount(kind, f"small-{kind}-{self._counter}", size_mib, small=True)

    def release(self, mountpoint: str | os.PathLike[str]) -> None:
        """Tear down one filesystem made by this object (typically a ``small()`` one)."""
        target = Path(mountpoint)
        for record in self._records:
            if record.mountpoint == target:
                self._teardown(record)
                self._records.remove(record)
                self.mounts = {k: p for k, p in self.mounts.items() if p != target}
                return
        raise KeyError(f"{target} was not mounted by this LoopFilesystems")

    # -- internals ----------------------------------------------------------------

    def _has_record(self, mountpoint: Path) -> bool:
        return any(r.mountpoint == mountpoint for r in self._records)

    def _mount(self, kind: str, name: str, size_mib: int, *, small: bool) -> Path:
        assert self.base is not None
        mountpoint = self.base / name
        mountpoint.mkdir()
        if kind == "tmpfs":
            record = _Mount(kind, mountpoint, None, small)
            self._records.append(record)  # registered first: teardown covers failures
            options = f"size={size_mib}m,mode={ROOT_MODE:o}"
            _run(["mount", "-t", "tmpfs", "-o", options, "safelink-loopfs", os.fspath(mountpoint)])
        else:
            image = self.base / f"{name}.img"
            record = _Mount(kind, mountpoint, image, small)
            self._records.append(record)
            with open(image, "xb") as f:
                f.truncate(size_mib * _MIB)  # sparse
            _run([*_mkfs_argv(kind, small=small), os.fspath(image)])
            _run(["mount", "-t", kind, "-o", "loop", os.fspath(image), os.fspath(mountpoint)])
        os.chmod(mountpoint, ROOT_MODE)
        return mountpoint

    @staticmethod
    def _teardown(record: _Mount) -> None:
        lazy = False
        if is_mountpoint(record.mountpoint):
            try:
                _run(["umount", os.fspath(record.mountpoint)])
            except LoopFsError as exc:
                try:
                    _run(["umount", "-l", os.fspath(record.mountpoint)])
                except LoopFsError as lazy_exc:
                    raise LoopFsError(f"{exc}; lazy unmount: {lazy_exc}") from lazy_exc
                lazy = True
        if is_mountpoint(record.mountpoint):
            raise LoopFsError(f"{record.mountpoint} is still mounted")
        if record.image is not None:
            _detach(record.image, wait=not lazy)
            record.image.unlink(missing_ok=True)
        with contextlib.suppress(FileNotFoundError):
            record.mountpoint.rmdir()


# ----------------------------------------------------------------------- cleanup


def cleanup_stale(parent: str | os.PathLike[str] | None = None) -> list[str]:
    """Tear down leftovers of crashed runs: every ``safelink-loopfs-*`` work dir in
    *parent* (default: the temp dir) is unmounted, detached and deleted.

    Do not run this while another test session is using loop filesystems.
    Returns the work directories removed.
    """
    root = Path(_real(parent if parent is not None else tempfile.gettempdir()))
    workdirs = sorted(p for p in root.glob(WORKDIR_PREFIX + "*") if p.is_dir())
    removed: list[str] = []
    for workdir in workdirs:
        for mountpoint in sorted(_mounts_under(workdir), key=len, reverse=True):
            try:
                _run(["umount", mountpoint])
            except LoopFsError:
                _run(["umount", "-l", mountpoint])
        for image in workdir.glob("*.img"):
            _detach(image, wait=False)
        rmtree_force(workdir)
        removed.append(os.fspath(workdir))
    return removed


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="loopfs.py", description="Loop-mounted test filesystems for safelink."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help='print "ok" and exit 0 if loop mounts work, else the reason')
    cleanup = sub.add_parser("cleanup", help="remove leftovers of crashed runs")
    cleanup.add_argument("--parent", default=None, help="directory holding the work dirs")
    args = parser.parse_args(argv)
    if args.command == "check":
        reason = can_mount()
        print("ok" if reason is None else reason)
        return 0 if reason is None else 1
    for workdir in cleanup_stale(args.parent):
        print(f"removed {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
