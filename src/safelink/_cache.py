"""The unpacked-wheel cache: entries, the wheel-hash index, the environment registry
and eviction.

The layout (which sub-directory holds what, and every temporary name) lives in
``_layout``; admission (unpacking and checking a wheel) in ``_admit``; the
fingerprint, sealing and healing of cached files in ``_guard``. An entry appears
by one ``rename`` of a complete temp dir, under its lock, so a crash at any point
leaves at most a temp dir that nothing trusts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from functools import cached_property
from operator import itemgetter

from . import _layout
from ._atomic import write_atomic
from ._dataclass import dataclass
from ._fsops import rmtree
from ._guard import heal
from ._lock import LockTimeout, discard, file_lock
from ._names import shown
from ._plan import Plan
from ._plan import load as load_plan
from ._record import bulk_sha256, sha256
from .errors import CacheCorrupt, InvalidWheel, SafelinkError

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import BinaryIO, TypeVar

    _W = TypeVar("_W", bound="str | None")


_CHUNK = 1 << 20


def default_cache_dir() -> str:
    env = os.environ.get("SAFELINK_CACHE_DIR")
    if env:
        return env
    from platformdirs import user_cache_dir

    return user_cache_dir("safelink", appauthor=False)


@dataclass(frozen=True)
class Entry:
    """One admitted wheel: an immutable directory of files plus its plan."""

    path: str
    sha256: str

    @property
    def files(self) -> str:
        return _layout.entry_files(self.path)

    @cached_property
    def plan(self) -> Plan:
        """The entry's plan, checked: malformed or escaping plans are :class:`CacheCorrupt`."""
        try:
            plan = load_plan(self.path)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise self._corrupt(f"is unreadable: {exc}") from None
        problem = plan_problem(plan, self.sha256)
        if problem:
            raise self._corrupt(problem)
        return plan

    def _corrupt(self, what: str) -> CacheCorrupt:
        return CacheCorrupt(
            f"cache entry {self.path} {what}",
            "remove it with 'safelink cache clean' and install again",
        )

    def tampered_dirs(self) -> list[tuple[str, str]]:
        """(directory, why) for every directory of the entry that is not a plain directory
        of this user's (a symlink, someone else's, writable by others). ``lstat`` only:
        one call per directory of the plan, none per file."""
        plan = self.plan
        data = plan.dist_info[: -len(".dist-info")] + ".data"
        rels = ["", *plan.dirs.get(plan.root_scheme, ())]
        others = [s for s in (*plan.links, *plan.dirs) if s != plan.root_scheme]
        if plan.shebang_scripts:
            others.append("scripts")
        if others:
            rels.append(data)
        for scheme in dict.fromkeys(others):
            rels.append(f"{data}/{scheme}")
            rels.extend(f"{data}/{scheme}/{d}" for d in plan.dirs.get(scheme, ()))
        out = []
        for rel in [None, *rels]:
            path = self.path if rel is None else os.path.join(self.files, rel)
            why = dir_problem(path)
            if why:
                out.append((path, why))
        return out


def _tampered(entry: Entry) -> list[tuple[str, str]] | None:
    """:meth:`Entry.tampered_dirs` once its plan is loaded (and checked); None if the
    entry was evicted meanwhile (``cache clean`` in another process)."""
    try:
        _ = entry.plan
        tampered = entry.tampered_dirs()
    except CacheCorrupt:
        if not os.path.isdir(entry.path):
            return None
        raise
    if tampered and not os.path.isdir(entry.path):
        return None
    return tampered


class Cache:
    """A cache directory shared by every process and environment of a user."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        base = os.fspath(root) if root is not None else default_cache_dir()
        self.base = os.path.abspath(base)
        self.root = _layout.version_root(self.base)
        self._trusted = False

    def __repr__(self) -> str:
        return f"Cache({self.base!r})"

    # -- paths -------------------------------------------------------------
    def check_trusted(self) -> None:
        """Refuse a cache that someone other than this user (or root) could write.

        Like ssh with a loose key file: the cache decides what lands in every
        environment, so a directory of it that another user owns or may write is an
        error naming the fix, never silently believed. Checked once per instance.
        """
        if self._trusted:
            return
        problem = trust_problem(self.base, self.root)
        if problem:
            path, why, fix = problem
            raise SafelinkError(f"refusing the cache at {self.base}: {path} {why}", fix)
        self._trusted = True

    def prepare(self) -> None:
        """:meth:`check_trusted`, then make the cache directory and its root if missing,
        writable by this user only whatever the umask (a read-only cache is fine)."""
        self.check_trusted()
        for d in (self.base, self.root):
            try:
                os.mkdir(d, 0o755)
            except FileNotFoundError:
                try:
                    os.makedirs(d, 0o755, exist_ok=True)
                except OSError:
                    return
            except OSError:
                pass

    def ensure_dir(self, name: str) -> str:
        """The cache sub-directory *name* (see ``_layout``), created if missing, and
        only writable by this user whatever the umask (like the cache root above it)."""
        path = _layout.subdir(self.root, name)
        if not os.path.isdir(path):
            for d in (self.base, self.root, path):
                try:
                    os.mkdir(d, 0o755)
                except FileExistsError:
                    pass
                except FileNotFoundError:
                    os.makedirs(d, 0o755, exist_ok=True)
        return path

    def entry_path(self, sha256: str) -> str:
        return _layout.entry_dir(self.root, sha256)

    # -- lookup ------------------------------------------------------------
    def get(self, sha256: str) -> Entry | None:
        path = self.entry_path(sha256)
        if os.path.exists(_layout.entry_plan(path)):
            return Entry(path, sha256)
        return None

    def entries(self) -> Iterator[Entry]:
        self.check_trusted()
        try:
            names = sorted(os.listdir(_layout.subdir(self.root, _layout.ENTRIES)))
        except FileNotFoundError:
            return
        for name in names:
            entry = self.get(name)
            if entry is not None:
                yield entry

    # -- admission ---------------------------------------------------------
    def _index_key(self, wheel: str, st: os.stat_result | None = None) -> str:
        st = st or os.stat(wheel)
        key_src = (
            f"{os.path.realpath(wheel)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_dev}"
        )
        return sha256(key_src.encode("utf-8", "surrogateescape")).hexdigest()

    def indexed_sha256(self, wheel: str, st: os.stat_result | None = None) -> str | None:
        """The wheel's hash if the stat index knows this exact file (no hashing)."""
        try:
            path = _layout.index_file(self.root, self._index_key(wheel, st))
            with open(path, "rb") as f:  # bytes.decode: no codec module to import
                value = f.read().decode("ascii").strip()
        except OSError:
            return None
        return value if len(value) == 64 else None

    def wheel_sha256(self, wheel: str) -> str:
        """Hash of the wheel file, via the stat index when the file is unchanged."""
        with open(wheel, "rb") as f:
            digest, key = self._sha256_of_open(wheel, f)
        if key is not None:
            self._record_index(key, digest)
        return digest

    def _sha256_of_open(self, wheel: str, f: BinaryIO) -> tuple[str, str | None]:
        """The wheel's hash, and the index key to record it under (None: it is there)."""
        st = os.fstat(f.fileno())
        known = self.indexed_sha256(wheel, st)
        if known is not None:
            return known, None
        key = self._index_key(wheel, st)
        h = bulk_sha256()
        while chunk := f.read(_CHUNK):
            h.update(chunk)
        return h.hexdigest(), key

    def _record_index(self, key: str, digest: str) -> None:
        try:
            self.ensure_dir(_layout.INDEX)
            write_atomic(_layout.index_file(self.root, key), digest.encode())
        except OSError:
            pass  # a read-only cache still works, it just re-hashes

    def admit(self, wheel: str | os.PathLike[str], *, max_unpacked: int | None = None) -> Entry:
        """Return the cache entry for *wheel*, unpacking and verifying it first if needed."""
        return self.admit_status(wheel, max_unpacked=max_unpacked)[0]

    def admit_status(
        self, wheel: str | os.PathLike[str], *, max_unpacked: int | None = None
    ) -> tuple[Entry, bool]:
        """Like :meth:`admit`; also say whether *this* call unpacked the wheel.

        When several processes admit one wheel at once, exactly one of them
        unpacks it; the others wait for its lock and get its entry. A refused wheel
        leaves the cache as it was (no index record, no lock file).
        """
        self.check_trusted()
        wheel = os.path.abspath(os.fspath(wheel))
        filename = os.path.basename(wheel)
        if not os.path.exists(wheel):
            raise SafelinkError(f"{shown(wheel)}: no such file")
        if not os.path.isfile(wheel) or not filename.endswith(".whl"):
            raise InvalidWheel(f"{shown(wheel)}: not a wheel file (expected a .whl file)")
        with contextlib.ExitStack() as held:
            # One open file for hashing and unpacking: a wheel replaced on disk meanwhile
            # cannot be stored under the hash of the one that was there before.
            f = held.enter_context(open(wheel, "rb"))
            st = os.fstat(f.fileno())
            sha, key = self._sha256_of_open(wheel, f)
            got = self._entry_of(held, wheel, filename, sha, max_unpacked, f, st)
        if key is not None:  # recorded once the cache holds the wheel, never for a refused one
            self._record_index(key, sha)
        return got

    def _entry_of(
        self,
        held: contextlib.ExitStack,
        wheel: str,
        filename: str,
        sha: str,
        max_unpacked: int | None,
        f: BinaryIO,
        st: os.stat_result,
    ) -> tuple[Entry, bool]:
        entry = self.get(sha)
        if entry is not None:
            checked = self._checked(entry, wheel, filename)
            if checked is not None:
                return checked, False
            # evicted while we looked at it: admit it again, under its lock
        lock = _layout.entry_lock(self.root, sha)
        try:
            self.ensure_dir(_layout.LOCKS)
            held.enter_context(file_lock(lock))
        except OSError as exc:
            raise self.unwritable(exc, filename) from None
        entry = self.get(sha)
        if entry is not None:
            checked = self._checked(entry, wheel, filename)
            if checked is not None:  # under the lock nothing evicts it
                return checked, False
        f.seek(0)
        from ._admit import admit_locked

        try:
            path, plan = admit_locked(self, wheel, filename, sha, max_unpacked, f, st)
        except BaseException:
            if self.get(sha) is None:  # refused (or failed): no lock file for no entry
                discard(lock, held=True)
            raise
        entry = Entry(path, sha)
        entry.__dict__["plan"] = plan  # known already (and safe from an eviction right now)
        return entry, True

    def _checked(self, entry: Entry, wheel: str, filename: str) -> Entry | None:
        """An existing entry, after the checks a fresh admission would make of this file:
        the file name must name what the entry holds (same answer with a warm or a cold
        cache), and the entry must be whole and ours (see :meth:`checked`).
        None if the entry was evicted meanwhile (``cache clean`` in another process)."""
        tampered = _tampered(entry)
        if tampered is None:
            return None
        if entry.plan.filename != filename:
            _check_filename(wheel, filename, entry.plan)
        if tampered:
            path, why = tampered[0]
            raise entry._corrupt(f"cannot be trusted: {path} {why}")
        return entry

    def checked(self, sha256: str) -> Entry | None:
        """The entry of *sha256* after the checks every use of an entry makes: its plan
        loads and passes, its directories are plain directories of this user's (or
        root's) that nobody else can write. None if there is none (or it was evicted
        meanwhile); :class:`CacheCorrupt` if it cannot be trusted."""
        entry = self.get(sha256)
        if entry is None:
            return None
        tampered = _tampered(entry)
        if tampered is None:
            return None
        if tampered:
            path, why = tampered[0]
            raise entry._corrupt(f"cannot be trusted: {path} {why}")
        return entry

    def unwritable(self, exc: OSError, filename: str) -> SafelinkError:
        if exc.errno == errno.ENOSPC:
            return SafelinkError(
                f"no space left on device while unpacking {filename} into the cache at {self.base}",
                "free space or point SAFELINK_CACHE_DIR elsewhere; nothing was kept",
            )
        return SafelinkError(
            f"cannot write to the cache at {self.base}: {exc.strerror}",
            "set SAFELINK_CACHE_DIR or --cache-dir to a writable directory",
        )

    # -- guard support -----------------------------------------------------
    def restore_file(self, entry: Entry, member: str, wheel: str | None = None) -> None:
        """Replace one cached file with a pristine copy from the wheel (new inode).

        The file is the cache's, not the target's: a failure says so (one line naming
        this cache), whichever command met it."""
        try:
            heal(entry.plan, entry.files, member, wheel)
        except OSError as exc:
            raise CacheCorrupt(
                f"cannot restore the modified cached file {shown(member)} in the cache at "
                f"{self.base}: {exc.strerror or exc}",
                f"fix the cache's permissions or run 'safelink cache clean "
                f"{shown(entry.plan.name)}'; nothing was changed",
                errno=exc.errno,
            ) from None

    # -- environment registry ---------------------------------------------
    def register_env(self, sha256: str, env_root: str) -> None:
        path = _layout.envs_file(self.root, sha256)
        line = env_root + "\n"
        try:
            with open(path, encoding="utf-8") as f:
                if line in f.readlines():
                    return
        except FileNotFoundError:
            try:
                self.ensure_dir(_layout.ENVS)
            except OSError:
                return  # a read-only (or someone else's) cache: the registry is advisory
        except OSError:
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8", "surrogateescape"))
            finally:
                os.close(fd)
        except OSError:
            pass  # a read-only cache: the registry is advisory

    def envs_of(self, sha256: str) -> list[str]:
        try:
            with open(_layout.envs_file(self.root, sha256), encoding="utf-8") as f:
                return [line.rstrip("\n") for line in f if line.strip()]
        except OSError:
            return []

    # -- entries in use ------------------------------------------------------
    @contextlib.contextmanager
    def in_use(
        self, entries: list[tuple[_W, Entry, bool]], max_unpacked: int | None = None
    ) -> Iterator[list[tuple[_W, Entry, bool]]]:
        """Hold a shared lock on each (wheel, entry, admitted) entry for the ``with`` body,
        so that ``cache clean``/``prune`` (which take it exclusively, without waiting)
        skip them. An entry evicted since it was admitted is admitted again from its
        wheel. Yields the entries, now all present."""
        with contextlib.ExitStack() as held:
            out = list(entries)
            for i in sorted(range(len(out)), key=lambda i: out[i][1].sha256):
                for _attempt in range(3):
                    wheel, entry, admitted = out[i]
                    one = contextlib.ExitStack()
                    try:
                        self.ensure_dir(_layout.LOCKS)
                        one.enter_context(
                            file_lock(_layout.entry_lock(self.root, entry.sha256), shared=True)
                        )
                    except OSError:
                        break  # a read-only cache: nobody can evict from it either
                    if os.path.exists(_layout.entry_plan(entry.path)):
                        held.enter_context(one)
                        break
                    one.close()  # evicted meanwhile: admit it again, then hold it
                    source = wheel if wheel is not None else entry.plan.source
                    if not source or not os.path.isfile(source):
                        raise CacheCorrupt(
                            f"cache entry {entry.path} was removed before it could be used",
                            "install again",
                        )
                    again, did = self.admit_status(source, max_unpacked=max_unpacked)
                    out[i] = (wheel, again, admitted or did)
            yield out

    # -- maintenance ----------------------------------------------------------
    def remove_entry(self, entry: Entry, *, wait: bool = True) -> bool:
        """Evict an entry: rename it away atomically, then delete it.

        With ``wait=False`` an entry in use (an install holds its lock) is left alone
        and False is returned.
        """
        self.ensure_dir(_layout.LOCKS)
        lock = _layout.entry_lock(self.root, entry.sha256)
        try:
            with file_lock(lock, timeout=None if wait else 0):
                if not os.path.isdir(entry.path):
                    discard(lock, held=True)
                    return True  # someone else removed it meanwhile
                trash = _layout.temp_path(self.ensure_dir(_layout.TMP), _layout.EVICT)
                os.rename(entry.path, trash)
                discard(lock, held=True)  # the entry is gone: so is its lock file
        except LockTimeout:
            return False
        rmtree(trash)
        rmtree(_layout.pyc_dir(self.root, entry.sha256))  # its compiled bytecode
        rmtree(_layout.kept_wheel(self.root, entry.sha256))  # its downloaded wheel
        try:
            os.unlink(_layout.envs_file(self.root, entry.sha256))
        except OSError:
            pass
        return True

    def discard_locks(self) -> None:
        """Delete the lock files of entries the cache does not hold (its bytecode's too),
        unless a process holds them (an admission under way)."""
        locks = _layout.subdir(self.root, _layout.LOCKS)
        try:
            names = os.listdir(locks)
        except OSError:
            return
        for name in names:
            sha = _layout.locked_entry(name)
            if sha is not None and self.get(sha) is None:
                discard(os.path.join(locks, name))

    def stale_temps(self) -> list[str]:
        """Temporary names in the cache whose process is gone (safe to delete).

        Only safelink writes ``tmp/``: a name there that ``_layout`` did not make is
        stale too. Everywhere else (a write, heal or relink temp next to the file it
        replaces) only a name ``_layout`` made whose owner is gone is; a live one, and
        any other name, is left alone.
        """
        tmp = _layout.tmp_dir(self.root)
        try:
            names = os.listdir(tmp)
        except FileNotFoundError:
            names = []
        out = [
            os.path.join(tmp, name)
            for name in names
            if _layout.parse_temp(name) is None or _layout.temp_is_stale(name)
        ]
        for sub in _layout.SUBDIRS:
            if sub == _layout.TMP:
                continue
            for dirpath, dirnames, filenames in os.walk(_layout.subdir(self.root, sub)):
                out += [
                    os.path.join(dirpath, n)
                    for n in dirnames + filenames
                    if _layout.temp_is_stale(n)
                ]
                dirnames[:] = [n for n in dirnames if _layout.parse_temp(n) is None]
        return out


# -- checks of what the cache holds ------------------------------------------------------
_SCHEMES = frozenset({"purelib", "platlib", "scripts", "headers", "data"})


def _bad_paths(paths: list[str]) -> bool:
    """Does any relative path have a NUL, a backslash, an empty, '.' or '..' component,
    a leading or trailing '/', or a drive prefix? Joined by '/', every component of
    every path sits between two slashes, so a few substring searches (C speed) see
    them all: a regex, or a loop over the paths, costs more than loading the plan."""
    if not paths:
        return False
    j = "/".join(paths)
    if not j or "\x00" in j or "\\" in j or "//" in j or j.startswith("/") or j.endswith("/"):
        return True
    if ("/." in j or j.startswith(".")) and (
        "/./" in j
        or "/../" in j
        or j.endswith(("/.", "/.."))
        or j.startswith(("./", "../"))
        or j in (".", "..")
    ):
        return True
    if ":" not in j:
        return False
    import re

    drive = re.compile(r"[A-Za-z]:").match
    return any(drive(p) for p in paths)


_COLUMNS = [itemgetter(i) for i in range(5)]


def _all_of(values: object, kind: type) -> bool:
    return isinstance(values, (list, tuple)) and set(map(type, values)) <= {kind}


def plan_problem(plan: Plan, sha256: str) -> str | None:
    """Why a loaded plan cannot be used (wrong types, paths that leave the entry or the
    environment), or None. Column-wise checks: a few C-level passes, no per-row Python."""
    if not all(
        isinstance(v, str)
        for v in (plan.sha256, plan.filename, plan.name, plan.version, plan.dist_info)
    ):
        return "has a malformed plan (wrong types)"
    if plan.sha256 != sha256:
        return "has the plan of another wheel"
    if plan.root_scheme not in ("purelib", "platlib"):
        return "has a malformed plan (root scheme)"
    if not (isinstance(plan.links, dict) and isinstance(plan.dirs, dict)):
        return "has a malformed plan (wrong types)"
    if not set(plan.links) | set(plan.dirs) <= _SCHEMES:
        return "has a malformed plan (unknown scheme)"
    paths: list[str] = []
    for rows in plan.links.values():
        if not _all_of(rows, tuple) or (rows and set(map(len, rows)) != {5}):
            return "has a malformed plan (wrong types)"
        srcs = list(map(_COLUMNS[0], rows))
        dsts = list(map(_COLUMNS[1], rows))
        if not (
            _all_of(srcs, str)
            and _all_of(dsts, str)
            and _all_of(list(map(_COLUMNS[2], rows)), int)
            and _all_of(list(map(_COLUMNS[3], rows)), str)
            and _all_of(list(map(_COLUMNS[4], rows)), bool)
        ):
            return "has a malformed plan (wrong types)"
        paths += srcs
        paths += dsts
    for dirs in plan.dirs.values():
        if not _all_of(dirs, str):
            return "has a malformed plan (wrong types)"
        paths += dirs
    scripts = plan.shebang_scripts
    if not _all_of(scripts, tuple) or not all(
        len(r) == 3 and _all_of(r, str) for r in scripts
    ):
        return "has a malformed plan (wrong types)"
    paths += (p for r in scripts for p in r[:2])
    eps = plan.entry_points
    if not _all_of(eps, tuple) or not all(len(e) == 4 and _all_of(e, str) for e in eps):
        return "has a malformed plan (wrong types)"
    singles = [plan.dist_info, *(e[0] for e in eps)]
    if any("/" in s for s in singles):
        return "has a plan whose paths leave the entry or the environment"
    paths += singles
    if _bad_paths(paths):
        return "has a plan whose paths leave the entry or the environment"
    return None


def dir_problem(path: str) -> str | None:
    """Why a directory of the cache is not to be trusted, or None: a symlink (``lstat``:
    never followed), not a directory, or another user's or writable by others (the rule
    :func:`trust_problem` applies to the cache's own directories)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"is unreadable ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    return _foreign(st)


def _foreign(st: os.stat_result) -> str | None:
    """Why a directory of the cache with this ``stat`` could be written by another user
    (owned by someone other than this user or root, or writable by others; group-writable
    only for a user-private group), or None. Windows: not checked (ACLs)."""
    if not hasattr(os, "geteuid"):  # pragma: no cover - Windows
        return None
    if st.st_uid not in (os.geteuid(), 0):
        return f"is owned by uid {st.st_uid}, not by you or root"
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o002 or (mode & 0o020 and not _private_group(st.st_gid)):
        return f"is writable by other users (mode {mode:04o})"
    return None


def _check_filename(wheel: str, filename: str, plan: Plan) -> None:
    """Refuse a wheel file whose name does not name what the cache holds for its content
    (a cold admission refuses it too: the name is checked against the metadata)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion, ValueError) as exc:
        raise InvalidWheel(
            f"{shown(filename)}: not a valid wheel filename: {shown(str(exc))}"
        ) from None
    try:
        same = name == plan.name and version == Version(plan.version)
    except InvalidVersion:
        same = False
    if not same:
        raise InvalidWheel(
            f"{shown(filename)}: .dist-info directory {plan.dist_info!r} does not match the "
            "filename"
        )


_CACHE_DIRS = _layout.SUBDIRS
"""Every sub-directory decides something about what is installed, and where."""


def _private_group(gid: int) -> bool:
    """Is *gid* this user's own group (a user-private group, as many systems give each
    user with ``umask 002``)? Then group-writable is as good as private."""
    try:
        import grp
        import pwd

        group = grp.getgrgid(gid)
        return group.gr_name == pwd.getpwuid(os.geteuid()).pw_name and not (
            set(group.gr_mem) - {group.gr_name}
        )
    except (ImportError, KeyError, OSError):
        return False


def trust_problem(base: str, root: str) -> tuple[str, str, str] | None:
    """(path, what is wrong, the fix) for the first directory of the cache, or above it,
    that another user could write; None when only this user (or root) can.

    The cache and its sub-directories: owned by this user or root, writable by nobody
    else (group-writable only for a user-private group). The directories above it:
    owned by this user or root, and not writable by others unless sticky (``/tmp``).
    Windows: not checked (ACLs; see SECURITY.md).
    """
    if not hasattr(os, "geteuid"):  # pragma: no cover - Windows
        return None
    me = os.geteuid()
    own_fix = "use a cache directory of your own (--cache-dir or SAFELINK_CACHE_DIR)"
    checks: list[tuple[str, bool]] = [(base, False), (root, True)]
    checks += [(os.path.join(root, d), True) for d in _CACHE_DIRS]
    for path, inside in checks:
        try:
            st = os.lstat(path) if inside else os.stat(path)
        except FileNotFoundError:
            continue
        except OSError:
            return None  # unreadable: the operations themselves will say so
        if stat.S_ISLNK(st.st_mode):
            return path, "is a symlink", f"remove it: rm {path}"
        why = _foreign(st)
        if why is not None and st.st_uid not in (me, 0):
            return path, why, own_fix
        if why is not None:
            return path, why, f"run 'chmod go-w {path}' or {own_fix[0].lower()}{own_fix[1:]}"
    parent = os.path.dirname(os.path.realpath(base))
    while True:
        try:
            st = os.stat(parent)
        except FileNotFoundError:  # made when the cache is: what is above it decides
            up = os.path.dirname(parent)
            if up == parent:
                return None
            parent = up
            continue
        except OSError:
            return None
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid not in (me, 0):
            return parent, f"is owned by uid {st.st_uid}, not by you or root", own_fix
        if mode & 0o002 and not mode & stat.S_ISVTX:
            return (
                parent,
                f"is writable by other users (mode {mode:04o}), so the cache in it can be replaced",
                own_fix,
            )
        up = os.path.dirname(parent)
        if up == parent:
            return None
        parent = up
