"""The ``cache`` commands as data: ``dir``, ``list``, ``size``, ``prune``, ``clean [NAME...]``.

Each function returns plain data (dicts, lists, strings, numbers) that ``cli.py``
prints as text or JSON; nothing here prints. Every sub-directory of the cache
(see ``_layout``) is covered by ``size`` and by ``clean`` without names.
"""

from __future__ import annotations

import os
from typing import Any

from . import _layout
from ._cache import Cache, Entry
from ._fsops import rmtree, unlink_quiet
from .errors import CacheCorrupt

SCHEMA = 1
"""Version of the JSON the cache commands print (the ``"schema"`` key)."""


def walk_size(path: str) -> tuple[int, int]:
    """(bytes, files) under *path*, without recursion (deep trees cannot overflow the
    stack) and without following symlinks."""
    total = files = 0
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                        continue
                    total += e.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
                files += 1
    return total, files


def _name_of(entry: Entry) -> tuple[str, str]:
    """(project name, file name) of an entry; a corrupt entry is named by its hash."""
    try:
        return entry.plan.name, entry.plan.filename
    except CacheCorrupt:
        return "", f"{entry.sha256} (corrupt)"


def entry_in_use(cache: Cache, entry: Entry) -> bool:
    """Does any environment still use this entry?

    Hardlinked entries tell by link counts; for clone/copy/symlink installs the
    registry of environments is checked (an environment counts while it still
    has the distribution's ``.dist-info``, whichever tool wrote it: symlinks made
    through :class:`safelink.destination.LinkingDestination` point into the entry too).
    """
    try:
        plan = entry.plan
    except CacheCorrupt:
        return False
    for rows in plan.links.values():
        for src, *_ in rows[:64]:
            try:
                if os.lstat(os.path.join(entry.files, src)).st_nlink > 1:
                    return True
            except OSError:
                pass
    for env in cache.envs_of(entry.sha256):
        if not os.path.isdir(env):
            continue
        for dirpath, dirnames, _files in os.walk(env):
            if plan.dist_info in dirnames:
                return True  # whoever wrote INSTALLER, it may still point into the entry
            if dirpath.count(os.sep) - env.count(os.sep) > 4:
                dirnames[:] = []
    return False


def _satellites(cache: Cache) -> list[Cache]:
    from ._satellite import caches

    return caches(cache)


def cache_dir(cache: Cache) -> dict[str, Any]:
    return {"schema": SCHEMA, "dir": cache.base, "satellites": [s.base for s in _satellites(cache)]}


def list_entries(cache: Cache, *, satellites: bool = True) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for e in cache.entries():
        try:
            p = e.plan
        except CacheCorrupt:
            rows.append({"name": None, "version": None, "filename": None, "sha256": e.sha256,
                         "files": None, "envs": cache.envs_of(e.sha256), "corrupt": True})
            continue
        rows.append(
            {
                "name": p.name,
                "version": p.version,
                "filename": p.filename,
                "sha256": e.sha256,
                "files": p.nfiles,
                "envs": cache.envs_of(e.sha256),
                "corrupt": False,
            }
        )
    out: dict[str, Any] = {"schema": SCHEMA, "entries": rows}
    if satellites:
        out["satellites"] = [
            {"dir": s.base, **list_entries(s, satellites=False)} for s in _satellites(cache)
        ]
    return out


def size(cache: Cache, *, satellites: bool = True) -> dict[str, Any]:
    """Entries and what they cost (their files and bytecode), and every sub-directory."""
    dirs: dict[str, dict[str, int]] = {}
    try:
        names = sorted(os.listdir(cache.root))
    except OSError:
        names = []
    for name in names:
        path = os.path.join(cache.root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            b, f = walk_size(path)
        else:
            try:
                b, f = os.lstat(path).st_size, 1
            except OSError:
                continue
        dirs[name] = {"files": f, "bytes": b}
    entries = list(cache.entries())
    n = len(entries)
    entry_bytes = entry_files = 0
    for e in entries:  # what the cached wheels cost: their files and their bytecode
        for path in (e.files, _layout.pyc_dir(cache.root, e.sha256)):
            b, f = walk_size(path)
            entry_bytes += b
            entry_files += f
    out = {
        "schema": SCHEMA,
        "dir": cache.base,
        "entries": n,
        "files": entry_files,
        "bytes": entry_bytes,
        "total_files": sum(d["files"] for d in dirs.values()),
        "total_bytes": sum(d["bytes"] for d in dirs.values()),
        "dirs": dirs,
    }
    if satellites:
        out["satellites"] = [size(s, satellites=False) for s in _satellites(cache)]
    return out


def prune(cache: Cache, *, satellites: bool = True) -> dict[str, Any]:
    """Remove entries no environment uses, and temporary names whose process is gone.

    An entry an install is using right now (it holds the entry's lock) is skipped.
    """
    removed: list[str] = []
    skipped: list[str] = []
    for e in list(cache.entries()):
        if not entry_in_use(cache, e):
            _name, filename = _name_of(e)
            (removed if cache.remove_entry(e, wait=False) else skipped).append(filename)
    stale = cache.stale_temps()
    for path in stale:
        _remove(path)
    cache.discard_locks()
    out: dict[str, Any] = {
        "schema": SCHEMA, "removed": removed, "skipped": skipped, "temp_dirs": len(stale)
    }
    if satellites:
        out["satellites"] = [
            {"dir": s.base, **prune(s, satellites=False)} for s in _satellites(cache)
        ]
    return out


def clean(cache: Cache, names: list[str], *, satellites: bool = True) -> dict[str, Any]:
    """Remove the entries of *names* (all entries, and everything remembered, if none).

    An entry an install is using right now (it holds the entry's lock) is skipped.
    """
    from packaging.utils import canonicalize_name

    wanted = {canonicalize_name(n) for n in names}
    removed: list[str] = []
    skipped: list[str] = []
    for e in list(cache.entries()):
        name, filename = _name_of(e)
        if wanted and canonicalize_name(name) not in wanted:
            continue
        (removed if cache.remove_entry(e, wait=False) else skipped).append(filename)
    if not wanted:
        for sub in _layout.REMEMBERED:
            rmtree(_layout.subdir(cache.root, sub))
        for path in cache.stale_temps():
            _remove(path)
        kept = {e.sha256 for e in cache.entries()}
        for sub in (_layout.PYC, _layout.ENVS, _layout.WHEELS):  # of entries no longer there
            for sha in _listdir(_layout.subdir(cache.root, sub)):
                if sha not in kept:
                    rmtree(_layout.subdir(_layout.subdir(cache.root, sub), sha))
    cache.discard_locks()
    out: dict[str, Any] = {
        "schema": SCHEMA, "dir": cache.base, "removed": removed, "skipped": skipped
    }
    if satellites:
        out["satellites"] = [clean(s, names, satellites=False) for s in _satellites(cache)]
    return out


def _remove(path: str) -> None:
    """Delete a temporary file or directory (a symlink is removed, never followed)."""
    if os.path.isdir(path) and not os.path.islink(path):
        rmtree(path)
    else:
        unlink_quiet(path)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
