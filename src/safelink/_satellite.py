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
   off; otherwise a list of absolute directories (separated by ``os.pathsep``; a
   relative one is refused), each serving the filesystem it is on: the first one
   on the target directory's filesystem is used (created if missing).
2. Else ``.safelink-cache`` in the highest directory of the filesystem the files
   are linked into (the target directory, symlinks resolved), above the
   environment: the mount point's root first (as pnpm does), then each directory
   down towards the environment.
3. No such place: no satellite; every file is copied, and the install says so once.

A satellite is a cache, and the main cache's trust rule decides where one may be
(:func:`problem`): before it is made and whenever it is used. One that fails it
is not used (the install copies and says why); the cache commands, ``verify`` and
``repair`` skip it with one warning. Its entries get the checks of any entry
(:meth:`Cache.checked`). A satellite is never inside an environment, the target
directory, nor the main cache. The main cache records its satellites
(``satellites`` in its root) *before* one is filled, so ``cache dir``, ``list``,
``size``, ``prune``, ``clean``, ``verify`` and ``repair`` cover every satellite,
even one whose first fill was killed.

Filling is crash-safe and concurrency-safe the same way admission is: under the
satellite's per-entry lock, into a fresh temporary directory of the satellite,
renamed into place only when whole (plan last). Only the files of the plan are
copied, and a main-cache file whose fingerprint moved is healed from the wheel
before it is copied, so a satellite never inherits a poisoned file.
"""

from __future__ import annotations

import errno
import os
import stat

from . import _layout
from ._cache import Cache, Entry, trust_problem
from ._fsops import rmtree, write_all
from ._guard import FINGERPRINT_MTIME_NS, heal, seal, sealed_mode
from ._hooks import crash_point
from ._lock import file_lock
from ._log import warn
from ._names import shown
from ._plan import save as save_plan
from .errors import CacheCorrupt

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


def problem(base: str) -> str | None:
    """Why *base* cannot serve as a satellite cache, or None: one line, what and where.

    A satellite is a cache, so the main cache's rule applies whole
    (:func:`~safelink._cache.trust_problem`: the directory, its ``v1`` root and every
    sub-directory owned by this user or root and writable by nobody else; every
    directory above it owned by this user or root and not writable by others unless
    sticky), for a missing *base* too (where it would be made). And its top directory,
    if there, is a real directory (``lstat``) of this user's own.
    """
    try:
        st = os.lstat(base)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        return f"{base} is unreadable ({exc.strerror})"
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            return f"{base} is a symlink"
        if not stat.S_ISDIR(st.st_mode):
            return f"{base} is not a directory"
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            return f"{base} is owned by uid {st.st_uid}, not by you"
    found = trust_problem(base, _layout.version_root(base))
    if found is None:
        return None
    path, why, _fix = found
    return f"{path} {why}"


_FIX = "fix its permissions, or pin a directory of your own with " + ENV


def _usable(base: str, *, create: bool) -> str | None:
    """None if *base* can serve as a satellite (made now, mode 0700, when it is missing
    and *create*: the same rule before it is made as after); else why not."""
    if not os.path.lexists(base):
        if not create:
            return f"{base} does not exist"
        why = problem(base)  # the directories it would be made in
        if why is not None:
            return why
        try:
            os.mkdir(base, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            return f"cannot create {base} ({exc.strerror})"
    return problem(base)


def _may_create_in(parent: str) -> bool:
    return os.access(parent, os.W_OK | os.X_OK)


def _make_parents(path: str) -> None:
    """Make the missing directories above *path*, each 0755 whatever the umask allows
    more (checked first: nothing is made under a directory the rule refuses)."""
    missing: list[str] = []
    parent = os.path.dirname(path)
    while not os.path.lexists(parent):
        missing.append(parent)
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            pass
        except OSError:
            return


def _candidates(target_dir: str) -> list[str]:
    """The directories above *target_dir* on its filesystem, symlinks resolved (the
    files are linked where they really go), mount root first."""
    start = os.path.realpath(_existing(target_dir))
    dev = os.stat(start).st_dev
    chain: list[str] = []
    path = start
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


def _within(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r + os.sep) for r in roots)


def locate(main: Cache, target_dir: str, env_root: str) -> tuple[str | None, str]:
    """The satellite directory for *target_dir*'s filesystem, or (None, why not: a
    warning when a pinned directory is refused, else empty)."""
    main_base = os.path.realpath(main.base)
    inside_of = (os.path.realpath(env_root), os.path.realpath(target_dir))

    def acceptable(base: str) -> bool:
        real = os.path.realpath(base)
        return not (
            _within(real, (*inside_of, main_base)) or _within(main_base, (real,))
        )

    try:
        dev = _dev(target_dir)
    except OSError as exc:
        return None, f"cannot look at {target_dir}: {exc.strerror}"
    pinned = [p.strip() for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()]
    for p in pinned:
        p = os.path.expanduser(p)
        if not os.path.isabs(p):
            return None, (
                f"{ENV} names {shown(p)}, which is not an absolute path; give absolute "
                "directories (or 'off')"
            )
    for p in pinned:
        p = os.path.normpath(os.path.expanduser(p))
        try:
            if _dev(p) != dev:
                continue
        except OSError:
            continue
        if not acceptable(p):
            return None, f"{ENV} names {p}, which is inside the environment or the cache"
        why = problem(p)
        if why is None:
            _make_parents(p)
            why = _usable(p, create=True)
        if why is None:
            return p, ""
        return None, f"not using the satellite cache {p} ({ENV}): {why} ({_FIX})"
    for parent in _candidates(target_dir):
        if _within(parent, inside_of) or _is_env(parent):
            break  # never inside an environment (the target may sit in one)
        base = os.path.join(parent, DIRNAME)
        if not acceptable(base):
            continue
        if _usable(base, create=_may_create_in(parent)) is None:
            return base, ""
    return None, ""


def remember(main: Cache, satellite_base: str) -> str | None:
    """Add a satellite to the main cache's list, before anything is put in it (a
    satellite the list does not name is one the cache commands and ``verify`` miss).
    None once it is listed, else why it cannot be (a read-only main cache)."""
    path = _layout.satellites_file(main.root)
    line = satellite_base + "\n"
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            if line in f.readlines():
                return None
    except FileNotFoundError:
        pass
    except OSError as exc:
        return f"{path} is unreadable ({exc.strerror})"
    try:
        os.makedirs(main.root, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            write_all(fd, line.encode("utf-8", "surrogateescape"))
        finally:
            os.close(fd)
    except OSError as exc:
        return f"cannot record it in {main.base} ({exc.strerror})"
    return None


def known(main: Cache) -> list[str]:
    """Satellite directories the main cache lists, each once."""
    try:
        with open(
            _layout.satellites_file(main.root), encoding="utf-8", errors="surrogateescape"
        ) as f:
            lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    except OSError:
        return []
    return list(dict.fromkeys(lines))


class _Refused(Exception):
    """The satellite (not the main cache) cannot be used: why, one line."""


def _present(satellite: Cache, sha: str) -> Entry | None:
    """The satellite's entry for *sha* after the checks any cache's entry gets before it
    is used (:meth:`Cache.checked`), or None (absent, or evicted meanwhile)."""
    try:
        return satellite.checked(sha)
    except CacheCorrupt as exc:
        raise _Refused(f"{exc.message} ({exc.hint})") from None


def fill(main_entry: Entry, satellite: Cache, wheel: str | None) -> tuple[Entry, bool]:
    """The satellite's entry for *main_entry*, copied into it first if missing.

    Returns the entry and whether this call filled it. Under the satellite's
    per-entry lock, in a temporary directory renamed into place when whole.
    """
    sha = main_entry.sha256
    found = _present(satellite, sha)
    if found is not None:
        return found, False
    satellite.ensure_dir(_layout.LOCKS)
    with file_lock(_layout.entry_lock(satellite.root, sha)):
        found = _present(satellite, sha)
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
        # Made under the lock: a 'cache clean' right after it is met by the install's
        # own shared lock (Cache.in_use admits again what was evicted meanwhile).
        entry = Entry(dest, sha)
        entry.__dict__["plan"] = main_entry.plan  # the plan just copied
    return entry, True


_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _copy_entry(entry: Entry, tmp: str, wheel: str | None) -> None:
    """Copy the files of *entry*'s plan, each checked (or healed) first, then the plan.

    Only what the plan names: anything else in the entry (a heal's temporary file left
    by a ``kill -9``) is nobody's business here."""
    from .strategies.copy import copy_fd

    plan = entry.plan
    tampered = entry.tampered_dirs()  # one lstat per directory: never through a symlink
    if tampered:
        path, why = tampered[0]
        raise CacheCorrupt(
            f"cache entry {entry.path} cannot be trusted: {path} {why}",
            "remove it with 'safelink cache clean' and install again",
        )
    rows: dict[str, tuple[int, bool | None]] = {
        r[0]: (r[2], r[4]) for rows in plan.links.values() for r in rows
    }
    for src, _dst, _digest in plan.shebang_scripts:
        rows.setdefault(src, (-1, True))
    src_root = entry.files
    dst_root = _layout.entry_files(tmp)
    os.mkdir(dst_root, 0o755)
    made = {""}
    for member, (size, executable) in rows.items():
        parent = member.rpartition("/")[0]
        if parent not in made:
            prefix = ""
            for part in parent.split("/"):
                prefix = f"{prefix}/{part}" if prefix else part
                if prefix not in made:
                    try:
                        os.mkdir(os.path.join(dst_root, prefix), 0o755)
                    except FileExistsError:
                        pass
                    made.add(prefix)
        src = os.path.join(src_root, member)
        sfd = _open_pristine(entry, member, src, size, executable, wheel)
        try:
            mode = os.fstat(sfd).st_mode
            dst = os.path.join(dst_root, member)
            dfd = os.open(dst, _CREATE, 0o600)
            try:
                copy_fd(sfd, dfd)
                seal(dfd, dst, sealed_mode(bool(mode & 0o111)))
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)
        crash_point("satellite-mid")
    save_plan(plan, tmp)  # plan.bin and plan.json, as admission writes them; json last


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
    raise CacheCorrupt(
        f"cached file {shown(member)} of {shown(entry.plan.filename)} was modified",
        f"run 'safelink cache clean {shown(entry.plan.name)}' and install again",
    )


def caches(main: Cache) -> list[Cache]:
    """The main cache's satellites that pass the cache trust rule, as caches (for the
    cache commands, ``verify`` and ``repair``). One that is there but fails it is
    skipped with one warning: the other caches are still served."""
    out = []
    for base in known(main):
        if not os.path.lexists(base):
            continue  # removed by its owner: nothing to cover
        why = problem(base)
        if why is not None:
            warn(f"skipping the satellite cache {base}: {why} ({_FIX})")
            continue
        out.append(Cache(base))
    return out


def route(
    main: Cache, target_dir: str, env_root: str, entries: list[tuple[str | None, Entry, bool]]
) -> tuple[Cache, list[tuple[str | None, Entry, bool]], list[str]]:
    """Where ``auto`` links from: the main cache, or the satellite on *target_dir*'s
    filesystem, filled first with what it lacks. Returns the cache, the entries in
    it and the warnings to show: one the first time a satellite is filled, one when
    the satellite cannot be used (then the link policy says that every file is copied)."""
    if not enabled() or same_filesystem(main.root, target_dir):
        return main, entries, []
    base, why = locate(main, target_dir, env_root)
    if base is None:
        return main, entries, [why] if why else []
    not_listed = remember(main, base)  # first: a crash mid-fill leaves a known satellite
    if not_listed is not None:
        return main, entries, [f"not using the satellite cache {base}: {not_listed}"]
    satellite = Cache(base)
    out: list[tuple[str | None, Entry, bool]] = []
    filled = 0
    try:
        for path, entry, admitted in entries:
            sat_entry, did = fill(entry, satellite, path)
            filled += did
            out.append((path, sat_entry, admitted))
    except _Refused as exc:
        return main, entries, [f"not using the satellite cache {base}: {exc}"]
    except OSError as exc:
        why = exc.strerror or str(exc)
        return main, entries, [
            f"could not fill the satellite cache {base} ({why}); copying from {main.base}"
        ]
    notes = []
    if filled:
        notes.append(
            f"the cache ({main.base}) is on another filesystem than {target_dir}: copied "
            f"{filled} wheel(s) once into the satellite cache {base}; later installs onto "
            "this filesystem link from it"
        )
    return satellite, out, notes
