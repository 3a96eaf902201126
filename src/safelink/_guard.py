"""The guard: how hard safelink works to keep shared inodes from poisoning the cache.

Levels:

* ``off``    - no check before linking (what other installers do).
* ``check``  - the default: one ``lstat`` per cached file before it is handed on;
  a file whose size, mtime or mode moved was written (or chmod-ed) through a
  hardlink, so it is restored from the wheel first. Catches editors, patches,
  appends, truncations and permission changes; a same-size write followed by
  ``os.utime`` back to the old mtime is only caught by ``safelink verify``
  (which re-hashes).
* ``strict`` - ``check``, and hardlinks only where the cache and the target both
  belong to the current user, so nobody else's environment shares inodes with
  yours (elsewhere: clone, or copy).

The fingerprint: every cached file is sealed at admission with mode 0o444
(0o555 if executable) and the fixed mtime :data:`FINGERPRINT_MTIME_NS`; the plan
records its size. Healing writes a pristine copy from the wheel to a temporary
name next to the cached file, seals it, and renames it over the poisoned one (a
new inode: environments linked to the old one keep what they wrote).
"""

from __future__ import annotations

import enum
import os
import stat
import sys

from . import _layout
from ._fsops import write_all
from ._record import encode_digest
from .errors import CacheCorrupt

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from ._plan import Plan


class Guard(str, enum.Enum):
    OFF = "off"
    CHECK = "check"
    STRICT = "strict"


FINGERPRINT_MTIME_NS = 946_684_800 * 10**9
"""Every cached file's mtime (2000-01-01). A write through a hardlink moves it."""

_CHUNK = 1 << 20


def sealed_mode(executable: bool) -> int:
    """The permission bits of a sealed cached file."""
    return 0o555 if executable else 0o444


SEALED_FILE_MODES = (stat.S_IFREG | 0o444, stat.S_IFREG | 0o555)
"""``st_mode`` of a sealed cached file (not executable, executable), as ``lstat`` gives it:
a symlink or a ``chmod`` through a hardlink changes it."""

MODES_CHECKED = sys.platform != "win32"
"""Windows derives the executable bits from the file name: only size and mtime there."""


def fingerprint_problem(path: str, size: int | None, executable: bool) -> str | None:
    """What is wrong with a cached file's fingerprint (type, mode, size, mtime), or None.

    Uses ``lstat``: a symlink is never a cached file, whatever it points to.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(st.st_mode):
        return "is a symlink, not a cached file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    want = sealed_mode(executable)
    if MODES_CHECKED and stat.S_IMODE(st.st_mode) != want:
        return f"mode {stat.S_IMODE(st.st_mode):04o}, expected {want:04o}"
    if size is not None and st.st_size != size:
        return f"size {st.st_size}, expected {size}"
    return None  # the content itself is for a hash to tell


def hardlink_allowed(guard: Guard, cache_root: str, target_root: str) -> bool:
    if guard is not Guard.STRICT or not hasattr(os, "getuid"):
        return True
    uid = os.getuid()
    for path in (cache_root, target_root):
        try:
            if os.stat(path).st_uid != uid:
                return False
        except OSError:
            return False
    return True


_FD_CALLS = hasattr(os, "fchmod") and os.utime in os.supports_fd


def seal(fd: int, path: str, mode: int) -> None:
    """Make a cached file read-only with the fingerprint mtime (by fd where the OS can)."""
    if _FD_CALLS:
        os.fchmod(fd, mode)
        os.utime(fd, ns=(FINGERPRINT_MTIME_NS, FINGERPRINT_MTIME_NS))
    else:  # pragma: no cover - Windows
        os.utime(path, ns=(FINGERPRINT_MTIME_NS, FINGERPRINT_MTIME_NS))
        os.chmod(path, mode)


def seal_path(path: str, mode: int) -> None:
    """:func:`seal` for a file safelink wrote by name (compiled bytecode)."""
    os.chmod(path, mode)
    os.utime(path, ns=(FINGERPRINT_MTIME_NS, FINGERPRINT_MTIME_NS))


def heal(plan: Plan, files: str, member: str, wheel: str | None = None) -> None:
    """Replace one cached file of the entry with *plan* and *files* (its ``files/``
    directory) with a pristine copy from the wheel (new inode).

    Environments still linked to the old inode keep whatever they wrote;
    the cache itself, and everything installed from it from now on, is clean.
    """
    source = wheel or plan.source
    row = plan.member_row(member)
    algo, _, want = row[3].partition("=")
    try:
        import zipfile

        zf = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as exc:
        from ._names import shown

        raise CacheCorrupt(
            f"cached file {shown(member)} of {shown(plan.filename)} was modified and the "
            f"wheel to restore it from is unavailable ({shown(str(exc))})",
            f"run 'safelink cache clean {shown(plan.name)}' and install again",
        ) from None
    with zf:
        dst = os.path.join(files, member)
        tmp = _layout.temp_beside(dst, _layout.HEAL)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            import hashlib  # healing only: not on the way of an ordinary install

            h = hashlib.new(algo)
            with zf.open(member) as src:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    write_all(fd, chunk)
            if encode_digest(h.digest()) != want:
                from ._names import shown

                raise CacheCorrupt(
                    f"{shown(source)}: {shown(member)} does not match its RECORD hash; "
                    "cannot heal the cache",
                    f"run 'safelink cache clean {shown(plan.name)}'",
                )
            seal(fd, tmp, sealed_mode(row[4]))
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, dst)
