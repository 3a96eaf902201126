"""A cache per filesystem: satellites, so that only the first install onto another
filesystem copies.

Links cannot cross filesystems. When the cache is on one filesystem and the target
on another, ``auto`` keeps a *satellite* cache on the target's filesystem: the
main cache's entry is copied into it once (no unzip: the files are already
verified and sealed; the plan comes along), and every install from then on links
from the satellite exactly as from a cache on the same filesystem, guarded the
same way.

Where a satellite lives (one rule, first match):

1. ``SAFELINK_SATELLITES``: ``off`` (or ``0``, ``no``, ``false``) turns satellites
   off; otherwise a list of directories (separated by ``os.pathsep``), each serving
   the filesystem it is on: the first one on the target's filesystem is used
   (created if missing).
2. Else ``.safelink-cache`` in the highest directory of the target's filesystem,
   above the environment, where this user may keep one: the mount point's root
   first (as pnpm does), then each directory down towards the environment. A
   directory there is used only if it is a real directory (not a link) owned by
   this user and writable by nobody else; one is created (mode 0700) only in a
   directory this user can write that nobody else can rename things in.
3. No such place: no satellite; every file is copied, and the install says so once.

A satellite is never inside an environment, nor inside the main cache. The main
cache remembers its satellites (``satellites`` in its root), so ``cache dir``,
``list``, ``size``, ``prune``, ``clean`` and ``verify`` cover them.

Filling is crash-safe and concurrency-safe the same way admission is: under the
satellite's per-entry lock, into a fresh temporary directory of the satellite,
renamed into place only when whole (plan last). A main-cache file whose
fingerprint moved is healed from the wheel before it is copied, so a satellite
never inherits a poisoned file.
"""

from __future__ import annotations

import errno
import os
import stat

from . import _layout
from ._fsops import rmtree, write_all
from ._guard import FINGERPRINT_MTIME_NS, heal, seal, sealed_mode
from ._hooks import crash_point
from ._lock import file_lock
from .errors import CacheCorrupt

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from ._cache import Cache, Entry


ENV = "SAFELINK_SATELLITES"
DIRNAME = ".safelink-cache"
_OFF = frozenset({"off", "0", "no", "false", "none"})


def enabled() -> bool:
    return os.environ.get(ENV, "").strip().lower() not in _OFF


def _existing(path: str) -> str:
    """*path*, or its nearest existing ancestor."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _dev(path: str) -> int:
    return os.stat(_existing(path)).st_dev


def same_filesystem(a: str, b: str) -> bool:
    try:
        return _dev(a) == _dev(b)
    except OSError:
        return False


def _is_env(path: str) -> bool:
    return os.path.exists(os.path.join(path, "pyvenv.cfg"))


def _ours(path: str) -> bool:
    """A real directory owned by this user that nobody else can write."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return False
    return not st.st_mode & 0o022


def _safe_parent(path: str) -> bool:
    """May this user create a directory here that nobody else can swap out?"""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if not os.access(path, os.W_OK | os.X_OK):
        return False
    others_write = st.st_mode & 0o022
    if others_write and not st.st_mode & stat.S_ISVTX:
        return False
    return not hasattr(os, "geteuid") or st.st_uid in (os.geteuid(), 0)


def _usable(base: str, *, create: bool) -> bool:
    if _ours(base):
        return True
    if os.path.lexists(base) or not create:
        return False
    try:
        os.mkdir(base, 0o700)
    except FileExistsError:
        return _ours(base)
    except OSError:
        return False
    return _ours(base)


def _candidates(target_dir: str, env_root: str) -> list[str]:
    """Directories of *target_dir*'s filesystem above *env_root*, mount root first."""
    start = _existing(env_root)
    dev = os.stat(start).st_dev
    chain: list[str] = []
    path = os.path.dirname(os.path.abspath(env_root)) if start == env_root else start
    while True:
        try:
            if os.stat(path).st_dev != dev:
                break
        except OSError:
            break
        chain.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return chain[::-1]


def locate(main: Cache, target_dir: str, env_root: str) -> tuple[str | None, str]:
    """The satellite directory for *target_dir*'s filesystem, or (None, why not)."""
    main_base = os.path.realpath(main.base)
    env_real = os.path.realpath(env_root)

    def acceptable(base: str) -> bool:
        real = os.path.realpath(base)
        inside = (real + os.sep).startswith
        return not (
            inside(env_real + os.sep)
            or inside(main_base + os.sep)
            or (main_base + os.sep).startswith(real + os.sep)
        )

    try:
        dev = _dev(target_dir)
    except OSError as exc:
        return None, f"cannot look at {target_dir}: {exc.strerror}"
    pinned = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()]
    for p in pinned:
        p = os.path.abspath(os.path.expanduser(p))
        try:
            if _dev(p) != dev:
                continue
        except OSError:
            continue
        if not acceptable(p):
            return None, f"{ENV} names {p}, which is inside the environment or the cache"
        try:
            os.makedirs(os.path.dirname(p), exist_ok=True)
        except OSError:
            pass
        if _usable(p, create=True):
            return p, ""
        return None, f"{ENV} names {p}, which is not a directory of yours that only you can write"
    for parent in _candidates(target_dir, env_root):
        if _is_env(parent):
            break  # never inside an environment (the target may sit in one)
        base = os.path.join(parent, DIRNAME)
        if not acceptable(base):
            continue
        if _usable(base, create=_safe_parent(parent)):
            return base, ""
    return None, "no directory there that only you can write"


def remember(main: Cache, satellite_base: str) -> None:
    """Add a satellite to the main cache's list (advisory: a read-only cache skips it)."""
    path = _layout.satellites_file(main.root)
    line = satellite_base + "\n"
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            if line in f.readlines():
                return
    except FileNotFoundError:
        pass
    except OSError:
        return
    try:
        os.makedirs(main.root, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8", "surrogateescape"))
        finally:
            os.close(fd)
    except OSError:
        pass


def known(main: Cache) -> list[str]:
    """Satellite directories the main cache knows of that still exist and are ours."""
    try:
        with open(
            _layout.satellites_file(main.root), encoding="utf-8", errors="surrogateescape"
        ) as f:
            lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    except OSError:
        return []
    out: list[str] = []
    for base in lines:
        if base not in out and _ours(base):
            out.append(base)
    return out


def fill(main_entry: Entry, satellite: Cache, wheel: str | None) -> tuple[Entry, bool]:
    """The satellite's entry for *main_entry*, copied into it first if missing.

    Returns the entry and whether this call filled it. Under the satellite's
    per-entry lock, in a temporary directory renamed into place when whole.
    """
    sha = main_entry.sha256
    found = satellite.get(sha)
    if found is not None:
        return found, False
    satellite.ensure_dir(_layout.LOCKS)
    with file_lock(_layout.entry_lock(satellite.root, sha)):
        found = satellite.get(sha)
        if found is not None:
            return found, False
        tmp = _layout.temp_path(satellite.ensure_dir(_layout.TMP), _layout.FILL)
        os.mkdir(tmp, 0o700)
        try:
            _copy_entry(main_entry, tmp, wheel)
            crash_point("satellite-before-rename")
            satellite.ensure_dir(_layout.ENTRIES)
            dest = satellite.entry_path(sha)
            try:
                os.rename(tmp, dest)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                rmtree(dest)  # an incomplete directory (no plan): nothing trusts it
                os.rename(tmp, dest)
        except BaseException:
            rmtree(tmp)
            raise
    entry = satellite.get(sha)
    assert entry is not None
    return entry, True


_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _copy_entry(entry: Entry, tmp: str, wheel: str | None) -> None:
    from .strategies.copy import copy_fd

    plan = entry.plan
    rows = {r[0]: (r[2], r[4]) for rows in plan.links.values() for r in rows}
    for src, _dst, _digest in plan.shebang_scripts:
        rows.setdefault(src, (-1, True))
    src_root = entry.files
    dst_root = _layout.entry_files(tmp)
    os.mkdir(dst_root, 0o755)
    for dirpath, dirnames, filenames in os.walk(src_root):
        rel_dir = os.path.relpath(dirpath, src_root)
        out_dir = dst_root if rel_dir == "." else os.path.join(dst_root, rel_dir)
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                raise CacheCorrupt(
                    f"cache entry {entry.path} holds a symbolic link ({d})",
                    "remove it with 'safelink cache clean'",
                )
            os.mkdir(os.path.join(out_dir, d), 0o755)
        for name in filenames:
            member = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
            src = os.path.join(dirpath, name)
            size, executable = rows.get(member, (-1, None))  # type: ignore[assignment]
            sfd = _open_pristine(entry, member, src, size, executable, wheel)
            try:
                mode = os.fstat(sfd).st_mode
                dst = os.path.join(out_dir, name)
                dfd = os.open(dst, _CREATE, 0o600)
                try:
                    copy_fd(sfd, dfd)
                    seal(dfd, dst, sealed_mode(bool(mode & 0o111)))
                finally:
                    os.close(dfd)
            finally:
                os.close(sfd)
            crash_point("satellite-mid")
    with open(_layout.entry_plan(entry.path), "rb") as f:
        data = f.read()
    fd = os.open(_layout.entry_plan(tmp), _CREATE, 0o644)
    try:
        write_all(fd, data)  # a short write (a full disk) raises: never a cut plan
    finally:
        os.close(fd)


def _fingerprint_ok(st: os.stat_result, size: int, executable: bool | None) -> bool:
    if not stat.S_ISREG(st.st_mode) or st.st_mtime_ns != FINGERPRINT_MTIME_NS:
        return False
    if size >= 0 and st.st_size != size:
        return False
    perm = stat.S_IMODE(st.st_mode)
    if executable is None:
        return perm in (sealed_mode(False), sealed_mode(True))
    return perm == sealed_mode(executable)


def _open_pristine(
    entry: Entry, member: str, src: str, size: int, executable: bool | None, wheel: str | None
) -> int:
    """Open a main-cache file whose fingerprint holds, healing it from the wheel first."""
    for attempt in (0, 1):
        fd = os.open(src, _READ)
        if _fingerprint_ok(os.fstat(fd), size, executable):
            return fd
        os.close(fd)
        if attempt or executable is None:
            break
        heal(entry.plan, entry.files, member, wheel)
    from ._names import shown

    raise CacheCorrupt(
        f"cached file {shown(member)} of {shown(entry.plan.filename)} was modified",
        f"run 'safelink cache clean {shown(entry.plan.name)}' and install again",
    )


def caches(main: Cache) -> list[Cache]:
    """The main cache's satellites, as caches (for the cache commands and verify)."""
    from ._cache import Cache

    return [Cache(base) for base in known(main)]


def route(
    main: Cache, target_dir: str, env_root: str, entries: list[tuple[str | None, Entry, bool]]
) -> tuple[Cache, list[tuple[str | None, Entry, bool]], list[str]]:
    """Where ``auto`` links from: the main cache, or the satellite on *target_dir*'s
    filesystem, filled first with what it lacks. Returns the cache, the entries in
    it and the warnings to show (one, the first time a satellite is filled)."""
    if not enabled() or same_filesystem(main.root, target_dir):
        return main, entries, []
    base, _why = locate(main, target_dir, env_root)
    if base is None:
        return main, entries, []  # the link policy warns that every file is copied
    from ._cache import Cache

    satellite = Cache(base)
    out: list[tuple[str | None, Entry, bool]] = []
    filled = 0
    try:
        for path, entry, admitted in entries:
            sat_entry, did = fill(entry, satellite, path)
            filled += did
            out.append((path, sat_entry, admitted))
    except OSError as exc:
        why = exc.strerror or str(exc)
        return main, entries, [
            f"could not fill the satellite cache {base} ({why}); copying from {main.base}"
        ]
    remember(main, base)
    notes = []
    if filled:
        notes.append(
            f"the cache ({main.base}) is on another filesystem than {target_dir}: copied "
            f"{filled} wheel(s) once into the satellite cache {base}; later installs onto "
            "this filesystem link from it"
        )
    return satellite, out, notes
