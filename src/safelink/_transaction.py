"""All-or-nothing changes to an environment, surviving ``kill -9``.

Before anything changes, a journal names what this install will touch (the
cache entries, whose plans list every destination, and the scheme roots).
Files that must make way (an older version, a stray file at a destination)
are *moved* into a stash inside the environment, not deleted, until the
install commits. If the process dies, the next safelink run on the
environment finds the journal and rolls back: it removes what the plans would
have created and moves the stash back. So an environment never keeps files
that no RECORD lists.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable

from ._environment import Target

JOURNAL = ".safelink-journal.json"


class Transaction:
    def __init__(self, target: Target, plans: list[dict[str, object]], stash: str | None = None):
        self.target = target
        self.plans = plans
        """Per wheel: {"dist_info": ..., "root_scheme": ..., "dests": {scheme_root: [rel...]}}"""
        self.stash = stash or os.path.join(
            target.root, f".safelink-stash-{os.getpid()}-{time.monotonic_ns()}"
        )
        self.journal = os.path.join(target.root, JOURNAL)
        self.phase = "new"

    # -- journal -----------------------------------------------------------
    def _write(self) -> None:
        data = {"phase": self.phase, "stash": self.stash, "plans": self.plans}
        tmp = f"{self.journal}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, self.journal)

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
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            data = {"phase": "stashing", "stash": "", "plans": []}
        txn = cls(target, list(data.get("plans", [])), str(data.get("stash") or "") or None)
        txn.phase = str(data.get("phase", "stashing"))
        return txn

    # -- stash -------------------------------------------------------------
    def _stashed(self, path: str) -> str:
        rel = os.path.relpath(path, self.target.root)
        return os.path.join(self.stash, rel)

    def displace(self, path: str) -> None:
        """Move *path* out of the way, keeping it until commit."""
        dest = self._stashed(path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            os.rename(path, dest)
        except FileNotFoundError:
            pass
        except OSError:
            if os.path.isdir(path) and not os.path.islink(path):
                raise
            os.unlink(path)

    # -- outcome -----------------------------------------------------------
    def commit(self) -> None:
        shutil.rmtree(self.stash, ignore_errors=True)
        try:
            os.unlink(self.journal)
        except FileNotFoundError:
            pass

    def rollback(self) -> None:
        if self.phase == "linking":
            for plan in self.plans:
                self._remove_planned(plan)
        self._restore_stash()
        try:
            os.unlink(self.journal)
        except FileNotFoundError:
            pass

    def _remove_planned(self, plan: dict[str, object]) -> None:
        dests: dict[str, list[str]] = plan["dests"]  # type: ignore[assignment]
        dirs: dict[str, list[str]] = plan.get("dirs", {})  # type: ignore[assignment]
        for root, rels in dests.items():
            for rel in rels:
                path = os.path.join(root, rel)
                _unlink_quiet(path)
                if rel.endswith(".py"):
                    _remove_pycs(path)
        for root, rels in dirs.items():
            for rel in reversed(rels):
                path = os.path.join(root, rel)
                _rmdir_quiet(os.path.join(path, "__pycache__"))
                _rmdir_quiet(path)

    def _restore_stash(self) -> None:
        if not self.stash or not os.path.isdir(self.stash):
            return
        for dirpath, _dirnames, filenames in os.walk(self.stash):
            for name in filenames:
                src = os.path.join(dirpath, name)
                dest = os.path.join(self.target.root, os.path.relpath(src, self.stash))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                _unlink_quiet(dest)
                os.rename(src, dest)
        shutil.rmtree(self.stash, ignore_errors=True)


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        pass


def _rmdir_quiet(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _remove_pycs(py: str) -> None:
    cache = os.path.join(os.path.dirname(py), "__pycache__")
    stem = os.path.splitext(os.path.basename(py))[0] + "."
    try:
        names = os.listdir(cache)
    except OSError:
        return
    for n in names:
        if n.startswith(stem) and n.endswith(".pyc"):
            _unlink_quiet(os.path.join(cache, n))


def recover(target: Target) -> bool:
    """Roll back an install that died in *target*; True if there was one."""
    txn = Transaction.load(target)
    if txn is None:
        return False
    txn.rollback()
    return True


def stash_paths(txn: Transaction, paths: Iterable[str]) -> None:
    for p in paths:
        txn.displace(p)
