"""All-or-nothing changes to an environment, surviving ``kill -9``.

Before anything changes, a journal names what this install (or uninstall) will touch
(the cache entries, whose plans list every destination, and the scheme roots). Files
that must make way (an older version, a stray file at a destination) are *moved* into a
stash inside the environment, not deleted, until the transaction commits. If the
process dies, the next safelink run on the environment finds the journal and rolls
back (it removes what the plans would have created and moves the stash back) or, if
the journal says ``committed``, completes the commit; it says which.

Phases written to the journal, in order:

* ``stashing``  - moving old files into the stash; nothing new exists yet.
* ``linking``   - new files are being created at planned destinations.
* ``restoring`` - a rollback removed the new files and is moving the stash back
  (so a rollback interrupted in turn never removes restored files again).
* ``committed`` - the transaction is complete; only the stash is left to delete.

Rollback and recovery are idempotent: running them again after a crash during either
of them finishes the job.

The environment is not trusted (any wheel's ``.data/data`` reaches its root, and any
installer or user can put files and symlinks there), so:

* the journal and the stash are believed only under names and content authenticated
  with this user's key (:mod:`safelink._atomic` says why this design); a file that
  only looks like a journal is never read, moved or removed, and one that claims to
  be a journal but cannot be verified stops the run with one line, before anything
  changes (it may be another user's interrupted install);
* a believed journal still names only paths *relative to the environment's root*,
  checked when it is loaded (no absolute path, no ``..``), and every removal, move
  and restore first checks that the directory it acts in resolves inside the root,
  so nothing is ever deleted or written through a symlinked directory;
* moving aside never overwrites: a path moved aside twice keeps its first (original)
  content in the stash, and a directory is never moved aside for a file (refused,
  as pip and uv refuse it).
"""

from __future__ import annotations

import errno
import os
import stat

from ._atomic import (
    TOKEN,
    fresh_name,
    is_hex,
    kind_of,
    looks_like,
    make_name,
    open_new,
    replacing,
    sign,
    user_key,
    user_keys,
    verifies,
)
from ._environment import Target
from ._fsops import rmdir_quiet, rmtree_quiet, unlink_quiet, write_all
from ._hooks import crash_point
from ._jsontext import dumps, loads
from ._names import shown
from ._plan import Plan
from .errors import SafelinkError

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import Any

PHASES = ("stashing", "linking", "restoring", "committed")
JOURNAL_FORMAT = 1


class JournalError(SafelinkError):
    """A journal in the environment cannot be believed or understood; nothing was changed."""


class Transaction:
    def __init__(
        self,
        target: Target,
        plans: list[dict[str, object]],
        *,
        refs: list[dict[str, object]] | None = None,
        op: str = "install",
        what: list[str] | None = None,
    ):
        self.target = target
        self.root = os.path.abspath(target.root)
        self.root_real = os.path.realpath(self.root)
        self.plans = plans
        """Per wheel: {"name", "version", "dests": {scheme_root: [rel...]}, "dirs": {...},
        "made": [...]} with absolute scheme roots (in memory only)."""
        self.refs = refs
        """What the journal records instead of *plans*: per wheel, the cache entry,
        the wheel and the scheme roots (a few hundred bytes, not every path)."""
        self.op = op
        self.what = (
            what
            if what is not None
            else [f"{p.get('name', '')} {p.get('version', '')}".strip() for p in plans]
        )
        self.token = TOKEN
        """Temporary names of fresh files end with this (see :func:`_atomic.fresh_name`)."""
        self.phase = "new"
        self.stash = ""
        self.journal = ""
        self._key: bytes | None = None
        self._dirs_ok: dict[str, bool] = {}

    # -- journal -----------------------------------------------------------
    def _keyed(self) -> bytes:
        if self._key is None:
            self._key = user_key()
            self.stash = os.path.join(self.root, make_name("stash", self._key))
            self.journal = os.path.join(self.root, make_name("journal", self._key))
        return self._key

    def _body(self) -> dict[str, object]:
        body: dict[str, object] = {
            "format": JOURNAL_FORMAT,
            "op": self.op,
            "what": self.what,
            "phase": self.phase,
            "stash": os.path.basename(self.stash),
            "token": self.token,
        }
        # Only a rollback from "linking" needs the plans (what to remove): the other
        # phases write a few bytes, not every destination of every wheel.
        if self.phase == "linking":
            if self.refs is not None:
                body["refs"] = [self._rel_ref(r) for r in self.refs]
            else:
                body["plans"] = [self._rel_plan(p) for p in self.plans]
        return body

    def _write(self) -> None:
        key = self._keyed()
        text = dumps(self._body(), sort_keys=True)
        mac = sign(key, "journal", os.path.basename(self.journal), text)
        data = dumps({"journal": text, "mac": mac}).encode()
        tmp = os.path.join(self.root, make_name("tmp", key))
        with replacing(self.journal, tmp):
            fd = open_new(tmp, 0o600)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            crash_point("journal-written")

    def _rel(self, path: str) -> str:
        rel = os.path.relpath(os.path.abspath(path), self.root)
        if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
            raise SafelinkError(
                f"{shown(path)} is outside the environment {shown(self.root)}",
                "safelink only changes files inside the environment it installs into",
            )
        return rel.replace(os.sep, "/")

    def _rel_ref(self, ref: dict[str, object]) -> dict[str, object]:
        out = dict(ref)
        roots: dict[str, str] = ref["roots"]  # type: ignore[assignment]
        made: list[str] = ref.get("made", [])  # type: ignore[assignment]
        out["roots"] = {s: self._rel(r) for s, r in roots.items()}
        out["made"] = [self._rel(m) for m in made]
        return out

    def _rel_plan(self, plan: dict[str, object]) -> dict[str, object]:
        dests: dict[str, list[str]] = plan.get("dests", {})  # type: ignore[assignment]
        dirs: dict[str, list[str]] = plan.get("dirs", {})  # type: ignore[assignment]
        made: list[str] = plan.get("made", [])  # type: ignore[assignment]
        return {
            "name": plan.get("name", ""),
            "dests": {self._rel(r): v for r, v in dests.items()},
            "dirs": {self._rel(r): v for r, v in dirs.items()},
            "made": [self._rel(m) for m in made],
        }

    def begin(self) -> None:
        self._refuse_reserved()
        self.phase = "stashing"
        self._write()

    def _refuse_reserved(self) -> None:
        """A wheel file at the environment's root named like safelink's journal or stash
        would stop every later run (it cannot be authenticated): refused up front."""
        for plan in self.plans:
            dests: dict[str, list[str]] = plan.get("dests", {})  # type: ignore[assignment]
            for root, rels in dests.items():
                if os.path.abspath(root) != self.root:
                    continue
                for rel in rels:
                    if "/" not in rel and looks_like(rel):
                        raise SafelinkError(
                            f"{shown(str(plan.get('name', '')))} would install "
                            f"'{shown(rel)}' at the root of {shown(self.root)}, a name "
                            "reserved for safelink's journal",
                            "refused; nothing was changed",
                        )

    def linking(self) -> None:
        self.phase = "linking"
        self._write()

    # -- the environment's boundary ------------------------------------------
    def _dir_inside(self, directory: str) -> bool:
        """Does *directory* (its nearest existing ancestor, symlinks resolved) lie inside
        the environment? Cached per directory: a transaction never makes symlinks."""
        ok = self._dirs_ok.get(directory)
        if ok is None:
            probe = directory
            while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
                probe = os.path.dirname(probe)
            real = os.path.realpath(probe)
            ok = real == self.root_real or real.startswith(self.root_real + os.sep)
            if ok and os.path.lexists(directory):
                self._dirs_ok[directory] = ok
        return ok

    def inside(self, path: str) -> bool:
        """Is *path* strictly inside the environment, through no symlinked directory
        that leads out of it? (*path* itself may be a symlink: it is what is acted on.)"""
        path = os.path.abspath(path)
        rel = os.path.relpath(path, self.root)
        if rel in (".", "..") or rel.startswith(".." + os.sep) or os.path.isabs(rel):
            return False
        return self._dir_inside(os.path.dirname(path))

    def _refuse_outside(self, path: str) -> SafelinkError:
        return SafelinkError(
            f"refusing to remove {shown(path)}: it lies outside the environment "
            f"{shown(self.root)} (through a symlinked directory)",
            "remove the symlink or that file by hand; nothing was changed",
        )

    # -- stash -------------------------------------------------------------
    def displace(self, path: str) -> None:
        """Move *path* out of the way, keeping it until commit.

        Never deletes what was there before this transaction: the first move-aside of
        a path keeps it in the stash; a later one (the path was filled again by this
        transaction, e.g. two wheels with the same file) only removes what this
        transaction put there. A directory is never moved aside (refused). If the file
        cannot be moved (another filesystem than the environment's root, e.g. a
        mounted ``bin``), it is copied into the stash first.
        """
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise SafelinkError(
                f"a file would replace the directory {shown(path)}",
                "refused, as pip and uv refuse it; remove that directory or the "
                "distribution that owns it first; nothing was changed",
            )
        if not self.inside(path):
            raise self._refuse_outside(path)
        if not self.stash:
            self._keyed()
        dest = os.path.join(self.stash, self._rel(path))
        if os.path.lexists(dest):
            os.unlink(path)  # the original is in the stash already
            return
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            os.rename(path, dest)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            import shutil

            shutil.copy2(path, dest, follow_symlinks=False)
            os.unlink(path)

    # -- outcome -----------------------------------------------------------
    def commit(self) -> None:
        # Mark the transaction complete first: a crash while the stash is deleted
        # must finish the commit, never roll a complete install back.
        self.phase = "committed"
        try:
            self._write()
        except OSError:
            # No room even for the journal (a full disk): drop it instead, so the
            # install stands; the next run sweeps the stash this leaves.
            os.unlink(self.journal)
        crash_point("commit-mid")
        self._finish()

    def _finish(self) -> None:
        if self.stash:
            rmtree_quiet(self.stash)
        if self.journal:
            unlink_quiet(self.journal)

    def rollback(self) -> None:
        if self.phase == "committed":
            self._finish()
            return
        if self.phase == "new":
            return  # no journal was written: nothing was changed
        if self.phase == "linking":
            for plan in self.plans:
                self._remove_planned(plan)
            # From here on the planned paths hold nothing of ours: a rollback
            # interrupted below must not remove them again once restored.
            self.phase = "restoring"
            try:
                self._write()
            except OSError:
                pass
        self._restore_stash()
        unlink_quiet(self.journal)

    def _remove(self, path: str) -> None:
        if self.inside(path):
            unlink_quiet(path)

    def _remove_planned(self, plan: dict[str, object]) -> None:
        dests: dict[str, list[str]] = plan["dests"]  # type: ignore[assignment]
        dirs: dict[str, list[str]] = plan.get("dirs", {})  # type: ignore[assignment]
        for root, rels in dests.items():
            for rel in rels:
                path = os.path.join(root, rel)
                self._remove(path)
                self._remove(fresh_name(path, self.token))  # caught before its rename
                if rel.endswith(".py"):
                    self._remove_pycs(path)
        for root, rels in dirs.items():
            for rel in reversed(rels):
                path = os.path.join(root, rel)
                if self.inside(path):
                    cache = os.path.join(path, "__pycache__")
                    if not os.path.islink(cache):
                        rmdir_quiet(cache)
                    rmdir_quiet(path)
        made: list[str] = plan.get("made", [])  # type: ignore[assignment]
        for path in reversed(made):  # scheme roots this install created, deepest first
            if self.inside(path):
                rmdir_quiet(path)

    def _remove_pycs(self, py: str) -> None:
        cache = os.path.join(os.path.dirname(py), "__pycache__")
        if os.path.islink(cache) or not self.inside(os.path.join(cache, "x")):
            return  # never swept through a symlink
        stem = os.path.splitext(os.path.basename(py))[0] + "."
        try:
            names = os.listdir(cache)
        except OSError:
            return
        for n in names:
            if n.startswith(stem) and n.endswith(".pyc"):
                unlink_quiet(os.path.join(cache, n))

    def _restore_stash(self) -> None:
        try:
            st = os.lstat(self.stash)
        except OSError:
            return
        if not stat.S_ISDIR(st.st_mode):
            return
        for dirpath, dirnames, filenames in os.walk(self.stash):
            # Symlinks to directories are listed as directories: move them too.
            names = filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
            for name in names:
                src = os.path.join(dirpath, name)
                dest = os.path.join(self.root, os.path.relpath(src, self.stash))
                if not self.inside(dest):
                    raise JournalError(
                        f"cannot restore {shown(dest)}: its directory now leads outside "
                        f"the environment {shown(self.root)}",
                        f"remove that symlink; the file is kept in {shown(self.stash)}",
                    )
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                if os.path.isdir(dest) and not os.path.islink(dest):
                    try:
                        os.rmdir(dest)  # never a tree: whatever is in it is not ours
                    except OSError:
                        raise JournalError(
                            f"cannot restore {shown(dest)}: a directory is in its place",
                            f"move that directory away; the file is kept in {shown(src)}",
                        ) from None
                else:
                    unlink_quiet(dest)
                os.rename(src, dest)
                crash_point("restore-mid")
        rmtree_quiet(self.stash)


def plan_paths(
    plan: Plan, roots: dict[str, str], made: list[str] | None = None
) -> dict[str, object]:
    """What a rollback must remove for *plan*, as absolute roots and relative paths.

    *roots* maps each scheme to its directory in the environment. Schemes can
    share a root (``--target``: purelib, platlib and data are one directory), so
    their lists are merged, never overwritten. *made* lists the scheme roots
    this install creates (so a rollback removes them again).
    """
    dests: dict[str, list[str]] = {}
    for scheme, rels in plan.destinations().items():
        dests.setdefault(roots[scheme], []).extend(rels)
    dirs: dict[str, list[str]] = {}
    for scheme, rels in plan.dirs.items():
        dirs.setdefault(roots[scheme], []).extend(rels)
    for rels in dirs.values():
        rels.sort(key=lambda p: (p.count("/"), p))  # parents first; removed in reverse
    return {
        "name": plan.name,
        "version": plan.version,
        "dests": dests,
        "dirs": dirs,
        "made": made or [],
    }


def expand_ref(ref: dict[str, object]) -> dict[str, object]:
    """Turn a journal reference back into the paths to remove.

    The plan comes from the cache entry; if the entry was evicted meanwhile, it
    is rebuilt from the wheel in a scratch cache. If neither is there, nothing is
    removed (never guess): only the stash is restored.
    """
    from ._cache import Cache

    roots: dict[str, str] = ref["roots"]  # type: ignore[assignment]
    made: list[str] = ref.get("made", [])  # type: ignore[assignment]
    try:
        entry = Cache(str(ref["cache"])).get(str(ref["sha256"]))
        if entry is not None:
            return plan_paths(entry.plan, roots, made)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="safelink-recover-") as scratch:
            plan = Cache(scratch).admit(str(ref["wheel"])).plan
            return plan_paths(plan, roots, made)
    except Exception:
        return {"name": ref.get("name", ""), "dests": {}, "dirs": {}, "made": made}


# -- finding and believing a journal ------------------------------------------------------


def _damaged(path: str, why: str) -> JournalError:
    return JournalError(
        f"the journal {shown(path)} of an interrupted safelink run is damaged ({why})",
        "nothing was changed; move it out of the environment to continue",
    )


def _relpath_ok(rel: object, *, dot: bool = False) -> bool:
    if not isinstance(rel, str) or not rel or "\x00" in rel or rel.startswith(("/", "\\")):
        return False
    if os.path.isabs(rel) or (len(rel) > 1 and rel[1] == ":"):
        return False
    parts = rel.replace("\\", "/").split("/")
    if ".." in parts or "" in parts:
        return False
    return dot or parts != ["."]


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_body(body: object) -> str | None:
    """What is wrong with a journal's content, or None."""
    if not isinstance(body, dict):
        return "not an object"
    if body.get("format") != JOURNAL_FORMAT:
        return f"unknown format {body.get('format')!r}"
    if body.get("op") not in ("install", "uninstall") or body.get("phase") not in PHASES:
        return "unknown operation or phase"
    token = body.get("token")
    if not is_hex(token, 16):
        return "bad token"
    if not isinstance(body.get("stash"), str) or not _strings(body.get("what")):
        return "bad stash or names"
    for ref in body.get("refs", []) if isinstance(body.get("refs", []), list) else [None]:
        if not isinstance(ref, dict):
            return "bad reference"
        roots, made = ref.get("roots"), ref.get("made", [])
        if not isinstance(roots, dict) or not all(
            isinstance(k, str) and _relpath_ok(v, dot=True) for k, v in roots.items()
        ):
            return "a scheme root outside the environment"
        if not isinstance(made, list) or not all(_relpath_ok(m) for m in made):
            return "a directory outside the environment"
        if not all(isinstance(ref.get(k), str) for k in ("sha256", "cache", "wheel")):
            return "bad reference"
    for plan in body.get("plans", []) if isinstance(body.get("plans", []), list) else [None]:
        if not isinstance(plan, dict):
            return "bad plan"
        for key in ("dests", "dirs"):
            table = plan.get(key, {})
            if not isinstance(table, dict):
                return "bad plan"
            for root, rels in table.items():
                if not _relpath_ok(root, dot=True) or not isinstance(rels, list):
                    return "a path outside the environment"
                if not all(_relpath_ok(r) for r in rels):
                    return "a path outside the environment"
        made = plan.get("made", [])
        if not isinstance(made, list) or not all(_relpath_ok(m) for m in made):
            return "a directory outside the environment"
    return None


def _load(target: Target, name: str, key: bytes) -> Transaction:
    """The transaction an authentic journal describes, with absolute paths again."""
    root = os.path.abspath(target.root)
    path = os.path.join(root, name)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _damaged(path, "not a regular file")
            raw = b""
            while chunk := os.read(fd, 1 << 20):
                raw += chunk
                if len(raw) > 256 << 20:
                    raise _damaged(path, "too large")
        finally:
            os.close(fd)
        outer = loads(raw)
    except OSError as exc:
        raise _damaged(path, exc.strerror or "unreadable") from None
    except ValueError:
        raise _damaged(path, "not JSON") from None
    if not isinstance(outer, dict) or not isinstance(outer.get("journal"), str):
        raise _damaged(path, "not a journal")
    text, mac = outer["journal"], outer.get("mac")
    if not verifies(sign(key, "journal", name, text), mac):
        raise _damaged(path, "its authentication does not match")
    try:
        body: Any = loads(text)
    except ValueError:
        raise _damaged(path, "not JSON") from None
    why = _check_body(body)
    if why is None and kind_of(body["stash"], [key]) != "stash":
        why = "a stash safelink did not create"
    if why is not None:
        raise _damaged(path, why)

    def absolute(rel: str) -> str:
        return os.path.normpath(os.path.join(root, rel))

    plans: list[dict[str, object]] = []
    for ref in body.get("refs", []):
        ref = dict(ref)
        ref["roots"] = {s: absolute(r) for s, r in ref["roots"].items()}
        ref["made"] = [absolute(m) for m in ref.get("made", [])]
        plans.append(expand_ref(ref))
    for plan in body.get("plans", []):
        plans.append(
            {
                "name": plan.get("name", ""),
                "dests": {absolute(r): v for r, v in plan.get("dests", {}).items()},
                "dirs": {absolute(r): v for r, v in plan.get("dirs", {}).items()},
                "made": [absolute(m) for m in plan.get("made", [])],
            }
        )
    txn = Transaction(target, plans, op=body["op"], what=body["what"])
    txn._key = key
    txn.stash = os.path.join(root, body["stash"])
    txn.journal = path
    txn.token = body["token"]
    txn.phase = body["phase"]
    return txn


def interrupted(target: Target) -> bool:
    """Does *target* hold something that claims to be the journal of a dead transaction?
    (A cheap look before taking the lock; :func:`recover` decides what it is.)"""
    try:
        names = os.listdir(target.root)
    except OSError:
        return False
    return any(looks_like(n) == "journal" for n in names)


def recover(target: Target) -> str | None:
    """Finish or roll back a transaction that died in *target*; say which (None: none).

    Call with the environment's lock held. Also sweeps what a killed process can
    leave beside the journal: a half-written journal, and the stash of a
    transaction that had already committed. Only names authenticated with this
    user's key are touched; a name that claims to be a journal but is not
    authentic raises :class:`JournalError` before anything changes.
    """
    root = os.path.abspath(target.root)
    try:
        names = os.listdir(root)
    except OSError:
        return None
    claimed = [n for n in names if looks_like(n) is not None]
    if not claimed:
        return None
    keys = user_keys()
    journals = [n for n in claimed if looks_like(n) == "journal"]
    foreign = [n for n in journals if kind_of(n, keys) != "journal"]
    if foreign or len(journals) > 1:
        where = shown(os.path.join(root, (foreign or journals)[0]))
        raise JournalError(
            f"{where} looks like the journal of an interrupted safelink run, but not one "
            "safelink wrote for this user",
            "if another user's install was interrupted here, run safelink as that user; "
            "otherwise remove the file; nothing was changed",
        )
    message = None
    if journals:
        key = next(k for k in keys if kind_of(journals[0], [k]) == "journal")
        txn = _load(target, journals[0], key)
        done = txn.phase == "committed"
        txn.rollback()
        what = ", ".join(shown(w) for w in txn.what) or "unknown distributions"
        message = (
            f"{'completed' if done else 'rolled back'} an interrupted {txn.op} of {what} "
            f"in {shown(root)}"
        )
    for name in claimed:
        kind = kind_of(name, keys)
        path = os.path.join(root, name)
        if kind == "tmp":
            unlink_quiet(path)
        elif kind == "stash" and os.path.isdir(path) and not os.path.islink(path):
            # A stash exists only while its journal does (the journal is written
            # before the first file moves, and removed after the stash), so under
            # the lock, with the journal dealt with, any stash left is garbage a
            # commit could not delete.
            rmtree_quiet(path)
    return message
