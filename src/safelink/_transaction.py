"""All-or-nothing changes to an environment, surviving ``kill -9``.

Before anything changes, a journal names what this install will touch (the
cache entries, whose plans list every destination, and the scheme roots).
Files that must make way (an older version, a stray file at a destination)
are *moved* into a stash inside the environment, not deleted, until the
install commits. If the process dies, the next safelink run on the
environment finds the journal and rolls back: it removes what the plans would
have created and moves the stash back. So an environment never keeps files
that no RECORD lists.

Phases written to the journal, in order:

* ``stashing``  - moving old files into the stash; nothing new exists yet.
* ``linking``   - new files are being created at planned destinations.
* ``restoring`` - a rollback removed the new files and is moving the stash back
  (so a rollback interrupted in turn never removes restored files again).
* ``committed`` - the install is complete; only the stash is left to delete.

Rollback and recovery are idempotent: running them again after a crash
during either of them finishes the job.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time

from ._atomic import replacing
from ._environment import Target
from ._fsops import rmdir_quiet, rmtree_quiet, unlink_quiet
from ._hooks import crash_point
from ._plan import Plan

JOURNAL = ".safelink-journal.json"
STASH_PREFIX = ".safelink-stash-"
FRESH_SUFFIX = ".safelink-"
"""Fresh files (RECORD, scripts, metadata) are written to ``<dest>.safelink-<pid>`` first."""


class Transaction:
    def __init__(
        self,
        target: Target,
        plans: list[dict[str, object]],
        stash: str | None = None,
        pid: int | None = None,
        refs: list[dict[str, object]] | None = None,
    ):
        self.target = target
        self.plans = plans
        self.refs = refs
        """What the journal records instead of *plans*: per wheel, the cache entry,
        the wheel and the scheme roots (a few hundred bytes, not every path)."""
        """Per wheel: {"name": ..., "dests": {scheme_root: [rel...]}, "dirs": {...}}"""
        self.pid = os.getpid() if pid is None else pid
        self.stash = stash or os.path.join(
            target.root, f"{STASH_PREFIX}{self.pid}-{time.monotonic_ns()}"
        )
        self.journal = os.path.join(target.root, JOURNAL)
        self.phase = "new"

    # -- journal -----------------------------------------------------------
    def _write(self) -> None:
        # Only a rollback from "linking" needs the plans (what to remove): the other
        # phases write a few bytes, not every destination of every wheel.
        data: dict[str, object] = {"phase": self.phase, "stash": self.stash, "pid": self.pid}
        if self.phase == "linking":
            if self.refs is not None:
                data["refs"] = self.refs
            else:
                data["plans"] = self.plans
        tmp = f"{self.journal}.{os.getpid()}"
        with replacing(self.journal, tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f)
            crash_point("journal-written")

    def begin(self) -> None:
        self.phase = "stashing"
        self._write()

    def linking(self) -> None:
        self.phase = "linking"
        self._write()

    @classmethod
    def load(cls, target: Target) -> Transaction | None:
        try:
            with open(os.path.join(target.root, JOURNAL), encoding="utf-8") as f:
                data = json.load(f)
            if not isinstance(data, dict):
                raise ValueError("not a journal")
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # Unreadable (only outside tampering does this): restore every stash,
            # remove nothing, since what was created is unknown.
            data = {"phase": "stashing", "stash": "", "plans": []}
        pid = data.get("pid")
        plans = list(data.get("plans", []))
        if data.get("refs"):
            plans = [expand_ref(ref) for ref in data["refs"]]
        txn = cls(
            target,
            plans,
            str(data.get("stash") or "") or None,
            pid if isinstance(pid, int) else None,
        )
        txn.phase = str(data.get("phase", "stashing"))
        if not data.get("stash"):
            txn.stash = ""
        return txn

    # -- stash -------------------------------------------------------------
    def _stashed(self, path: str) -> str:
        rel = os.path.relpath(path, self.target.root)
        return os.path.join(self.stash, rel)

    def displace(self, path: str) -> None:
        """Move *path* out of the way, keeping it until commit.

        Never deletes: if the file cannot be kept (it is on another filesystem
        than the environment's root, e.g. a mounted ``bin``), it is copied into
        the stash first.
        """
        dest = self._stashed(path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            os.rename(path, dest)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.EXDEV or (os.path.isdir(path) and not os.path.islink(path)):
                raise
            import shutil

            shutil.copy2(path, dest, follow_symlinks=False)
            os.unlink(path)

    # -- outcome -----------------------------------------------------------
    def commit(self) -> None:
        # Mark the install complete first: a crash while the stash is deleted
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
        unlink_quiet(self.journal)

    def rollback(self) -> None:
        if self.phase == "committed":
            self._finish()
            return
        if self.phase == "linking":
            for plan in self.plans:
                self._remove_planned(plan)
            # From here on the planned paths hold nothing of ours: a rollback
            # interrupted below must not remove them again once restored.
            self.phase = "restoring"
            with contextlib.suppress(OSError):
                self._write()
        self._restore_stash()
        unlink_quiet(self.journal)

    def _remove_planned(self, plan: dict[str, object]) -> None:
        dests: dict[str, list[str]] = plan["dests"]  # type: ignore[assignment]
        dirs: dict[str, list[str]] = plan.get("dirs", {})  # type: ignore[assignment]
        fresh = f"{FRESH_SUFFIX}{self.pid}"
        for root, rels in dests.items():
            for rel in rels:
                path = os.path.join(root, rel)
                unlink_quiet(path)
                unlink_quiet(path + fresh)  # a fresh file caught before its rename
                if rel.endswith(".py"):
                    _remove_pycs(path)
        for root, rels in dirs.items():
            for rel in reversed(rels):
                path = os.path.join(root, rel)
                rmdir_quiet(os.path.join(path, "__pycache__"))
                rmdir_quiet(path)
        made: list[str] = plan.get("made", [])  # type: ignore[assignment]
        for path in reversed(made):  # scheme roots this install created, deepest first
            rmdir_quiet(path)

    def _restore_stash(self) -> None:
        if not self.stash:
            # The journal was unreadable: put back whatever any stash holds.
            for stash in _stashes(self.target.root):
                Transaction(self.target, [], stash)._restore_stash()
            return
        if not os.path.isdir(self.stash):
            return
        for dirpath, dirnames, filenames in os.walk(self.stash):
            # Symlinks to directories are listed as directories: move them too.
            names = filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
            for name in names:
                src = os.path.join(dirpath, name)
                dest = os.path.join(self.target.root, os.path.relpath(src, self.stash))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                if os.path.isdir(dest) and not os.path.islink(dest):
                    rmtree_quiet(dest)
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
    return {"name": plan.name, "dests": dests, "dirs": dirs, "made": made or []}


def expand_ref(ref: dict[str, object]) -> dict[str, object]:
    """Turn a journal reference back into the paths to remove.

    The plan comes from the cache entry; if the entry was evicted meanwhile, it
    is rebuilt from the wheel in a scratch cache. If neither is there, nothing is
    removed (never guess): only the stash is restored.
    """
    from ._cache import Cache

    roots: dict[str, str] = ref["roots"]  # type: ignore[assignment]
    made: list[str] = ref.get("made", [])  # type: ignore[assignment]
    entry = Cache(str(ref["cache"])).get(str(ref["sha256"]))
    try:
        if entry is not None:
            return plan_paths(entry.plan, roots, made)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="safelink-recover-") as scratch:
            plan = Cache(scratch).admit(str(ref["wheel"])).plan
            return plan_paths(plan, roots, made)
    except Exception:
        return {"name": ref.get("name", ""), "dests": {}, "dirs": {}, "made": made}


def _stashes(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return [os.path.join(root, n) for n in names if n.startswith(STASH_PREFIX)]


def _remove_pycs(py: str) -> None:
    cache = os.path.join(os.path.dirname(py), "__pycache__")
    stem = os.path.splitext(os.path.basename(py))[0] + "."
    try:
        names = os.listdir(cache)
    except OSError:
        return
    for n in names:
        if n.startswith(stem) and n.endswith(".pyc"):
            unlink_quiet(os.path.join(cache, n))


def recover(target: Target) -> bool:
    """Finish or roll back an install that died in *target*; True if there was one.

    Call with the environment's lock held. Also sweeps what a killed process
    can leave beside the journal: a half-written journal, and stashes of
    installs that had already committed.
    """
    txn = Transaction.load(target)
    if txn is not None:
        txn.rollback()
    try:
        names = os.listdir(target.root)
    except OSError:
        return txn is not None
    for name in names:
        path = os.path.join(target.root, name)
        if name.startswith(JOURNAL + "."):
            unlink_quiet(path)
        elif name.startswith(STASH_PREFIX):
            # A stash exists only while its journal does (the journal is written
            # before the first file moves, and removed after the stash), so under
            # the lock, with the journal dealt with, any stash left is garbage a
            # commit could not delete.
            rmtree_quiet(path)
    return txn is not None
