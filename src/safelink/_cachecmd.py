"""``safelink cache dir | list | size | prune | clean [NAME...]``."""

from __future__ import annotations

import argparse
import json
import os

from ._cache import Cache, Entry
from ._fsops import rmtree


def _entry_size(entry: Entry, cache: Cache | None = None) -> tuple[int, int]:
    """(bytes, files) of an entry and its cached bytecode."""
    total, files = 0, 0
    roots = [entry.files]
    if cache is not None:
        roots.append(os.path.join(cache.root, "pyc", entry.sha256))
    for dirpath, _dirs, names in (w for root in roots for w in os.walk(root)):
        for n in names:
            st = os.lstat(os.path.join(dirpath, n))
            total += st.st_size
            files += 1
    return total, files


def entry_in_use(cache: Cache, entry: Entry) -> bool:
    """Does any environment still use this entry?

    Hardlinked entries tell by link counts; for clone/copy/symlink installs the
    registry of environments is checked (an environment counts while it still
    has the distribution's ``.dist-info``, whichever tool wrote it: symlinks made
    through :class:`safelink.destination.LinkingDestination` point into the entry too).
    """
    plan = entry.plan
    for rows in plan.links.values():
        for src, *_ in rows[:64]:
            try:
                if os.stat(os.path.join(entry.files, src)).st_nlink > 1:
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


def cli(args: argparse.Namespace, cache: Cache) -> int:
    if args.action == "dir":
        print(cache.base)
        return 0
    entries = list(cache.entries())
    if args.action == "list":
        rows = []
        for e in entries:
            p = e.plan
            rows.append(
                {
                    "name": p.name,
                    "version": p.version,
                    "filename": p.filename,
                    "sha256": e.sha256,
                    "files": p.nfiles,
                    "envs": cache.envs_of(e.sha256),
                }
            )
        if args.json:
            print(json.dumps(rows))
        else:
            for r in rows:
                print(
                    f"{r['name']} {r['version']}  {r['files']} files  {str(r['sha256'])[:12]}  "
                    f"{r['filename']}"
                )
        return 0
    if args.action == "size":
        total = files = 0
        for e in entries:
            b, f = _entry_size(e, cache)
            total += b
            files += f
        if args.json:
            print(json.dumps({"entries": len(entries), "files": files, "bytes": total}))
        else:
            mib = total / 1024**2
            print(f"{len(entries)} entries, {files:,} files, {mib:,.1f} MiB in {cache.base}")
        return 0
    if args.action == "prune":
        removed = []
        for e in entries:
            if not entry_in_use(cache, e):
                cache.remove_entry(e)
                removed.append(e.plan.filename)
        stale = cache.stale_temp_dirs()
        for d in stale:
            rmtree(d)
        if args.json:
            print(json.dumps({"removed": removed, "temp_dirs": len(stale)}))
        elif not args.quiet:
            for filename in removed:
                print(f"removed {filename}")
            print(f"pruned {len(removed)} unused entries and {len(stale)} stale temp dirs")
        return 0
    # clean
    from packaging.utils import canonicalize_name

    wanted = {canonicalize_name(n) for n in args.names}
    cleaned: list[str] = []
    for e in entries:
        if not wanted or e.plan.name in wanted:
            cache.remove_entry(e)
            cleaned.append(e.plan.filename)
    if not wanted:
        for sub in ("index", "probes", "interpreters"):
            rmtree(os.path.join(cache.root, sub))
        for d in cache.stale_temp_dirs():
            rmtree(d)
    if args.json:
        print(json.dumps({"removed": cleaned}))
    elif not args.quiet:
        print(f"removed {len(cleaned)} entries from {cache.base}")
    return 0
