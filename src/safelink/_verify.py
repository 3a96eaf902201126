"""Deep checks and repairs: re-hash against RECORD, find who shares a poisoned inode.

The install-time guard is one ``stat`` per file (size and mtime). It cannot see
a same-size write whose mtime was put back with ``os.utime``; ``verify``
re-hashes everything and can. ``repair`` heals the cache (from the wheel it
came from, or by evicting the entry) and, for ``--env``, replaces edited files
with pristine private copies (new inodes: the cache is not touched through them).
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

from ._cache import Cache, Entry
from ._lock import env_lock_path, env_lock_timeout, file_lock
from .errors import CacheCorrupt


@dataclass
class Finding:
    kind: str
    """``cache`` (a poisoned cache file) or ``env`` (an environment file differing from RECORD)."""
    path: str
    dist: str
    reason: str
    entry: str = ""
    member: str = ""
    shared_with: list[str] = field(default_factory=list)
    """Environments whose file is the same inode as this cache file."""


def _digest(path: str, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()


def _check(path: str, digest: str, size: int | None) -> str | None:
    algo, _, want = digest.partition("=")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "missing"
    if size is not None and st.st_size != size:
        return f"size {st.st_size}, expected {size}"
    try:
        if _digest(path, algo) != want:
            return "content differs from RECORD"
    except (ValueError, OSError) as exc:
        return f"unreadable ({exc})"
    return None


def verify_cache(cache: Cache) -> list[Finding]:
    out = []
    for entry in cache.entries():
        plan = entry.plan
        for rows in plan.links.values():
            for src, _dst, size, digest, _x in rows:
                path = os.path.join(entry.files, src)
                reason = _check(path, digest, size)
                if reason:
                    out.append(
                        Finding(
                            "cache",
                            path,
                            plan.name,
                            reason,
                            entry.sha256,
                            src,
                            _sharing(cache, entry, path),
                        )
                    )
    return out


def _sharing(cache: Cache, entry: Entry, path: str) -> list[str]:
    try:
        st = os.stat(path)
    except OSError:
        return []
    if st.st_nlink < 2:
        return []
    out = []
    for env in cache.envs_of(entry.sha256):
        for dirpath, _dirs, files in os.walk(env):
            for n in files:
                try:
                    s = os.lstat(os.path.join(dirpath, n))
                except OSError:
                    continue
                if s.st_ino == st.st_ino and s.st_dev == st.st_dev:
                    out.append(env)
                    break
            else:
                continue
            break
    return out


def _records(env: str) -> list[str]:
    out = []
    for dirpath, dirnames, files in os.walk(env):
        if dirpath.endswith(".dist-info") and "RECORD" in files:
            out.append(os.path.join(dirpath, "RECORD"))
            dirnames[:] = []
        dirnames[:] = [d for d in dirnames if not d.startswith(".safelink-stash")]
    return sorted(out)


def verify_env(env: str) -> list[Finding]:
    out = []
    root = os.path.realpath(env)
    for record in _records(env):
        site = os.path.dirname(os.path.dirname(record))
        dist = os.path.basename(os.path.dirname(record))[: -len(".dist-info")]
        with open(record, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        for row in rows:
            if len(row) < 3 or not row[1]:
                continue
            path = os.path.normpath(os.path.join(site, row[0]))
            if os.path.commonpath([root, os.path.realpath(os.path.dirname(path))]) != root:
                out.append(Finding("env", path, dist, "RECORD path outside the environment"))
                continue
            reason = _check(path, row[1], int(row[2]) if row[2].isdigit() else None)
            if reason:
                out.append(Finding("env", path, dist, reason))
    return out


def repair_cache(cache: Cache, findings: list[Finding], dry_run: bool) -> list[str]:
    done = []
    by_entry: dict[str, list[Finding]] = {}
    for f in findings:
        if f.kind == "cache":
            by_entry.setdefault(f.entry, []).append(f)
    for sha, items in by_entry.items():
        entry = cache.get(sha)
        if entry is None:
            continue
        for f in items:
            if dry_run:
                done.append(f"would restore {f.path}")
                continue
            try:
                cache.restore_file(entry, f.member)
                done.append(f"restored {f.path}")
            except (CacheCorrupt, OSError):
                cache.remove_entry(entry)
                done.append(f"evicted {entry.plan.filename} (its wheel is gone)")
                break
    return done


def _entry_for(cache: Cache, dist_info: str) -> Entry | None:
    try:
        with open(os.path.join(dist_info, "direct_url.json"), encoding="utf-8") as f:
            sha = json.load(f)["archive_info"]["hashes"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return cache.get(str(sha))


def repair_env(cache: Cache, env: str, findings: list[Finding], dry_run: bool) -> list[str]:
    """Replace each modified file with a pristine private copy from the cache or the wheel."""
    from .strategies.copy import copy_fd

    done = []
    for f in findings:
        if f.kind != "env" or f.reason == "RECORD path outside the environment":
            continue
        site_di = _find_dist_info(env, f.dist)
        entry = _entry_for(cache, site_di) if site_di else None
        member = _member_for(entry, os.path.dirname(site_di), f.path) if entry and site_di else None
        if entry is None or member is None:
            done.append(f"cannot restore {f.path}: not installed from a cache entry")
            continue
        if dry_run:
            done.append(f"would restore {f.path}")
            continue
        src = os.path.join(entry.files, member[0])
        if _check(src, member[3], member[2]) is not None:
            cache.restore_file(entry, member[0])
        tmp = f"{f.path}.safelink-repair-{os.getpid()}"
        sfd = os.open(src, os.O_RDONLY)
        try:
            dfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777 if member[4] else 0o666)
            try:
                copy_fd(sfd, dfd)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)
        os.replace(tmp, f.path)
        done.append(f"restored {f.path}")
    return done


def _find_dist_info(env: str, dist: str) -> str | None:
    for record in _records(env):
        d = os.path.dirname(record)
        if os.path.basename(d) == f"{dist}.dist-info":
            return d
    return None


def _member_for(entry: Entry, site: str, path: str) -> tuple[str, str, int, str, bool] | None:
    rel = os.path.relpath(path, site)
    for rows in entry.plan.links.values():
        for row in rows:
            if rel == row[1] or rel.endswith(os.sep + row[1]):
                return row
    return None


def cli(args: argparse.Namespace, cache: Cache) -> int:
    envs = [os.path.abspath(e) for e in args.env]
    if not envs and not getattr(args, "check_cache", False):
        seen: set[str] = set()
        for entry in cache.entries():
            seen.update(e for e in cache.envs_of(entry.sha256) if os.path.isdir(e))
        envs = sorted(seen)
    findings = verify_cache(cache)
    env_findings = {env: verify_env(env) for env in envs}
    if args.command == "repair":
        actions = repair_cache(cache, findings, args.dry_run)
        for env in args.env:
            root = os.path.abspath(env)
            with file_lock(
                env_lock_path(root), timeout=env_lock_timeout(None)
            ):  # not while an install runs
                actions += repair_env(cache, root, env_findings[root], args.dry_run)
        if args.json:
            print(json.dumps({"actions": actions}))
        else:
            for a in actions:
                print(a)
            if not actions:
                print("nothing to repair")
        return 0
    if args.json:
        print(
            json.dumps(
                {
                    "cache": [asdict(f) for f in findings],
                    "envs": {e: [asdict(f) for f in fs] for e, fs in env_findings.items()},
                }
            )
        )
    else:
        for f in findings:
            shared = f"; shared by {', '.join(f.shared_with)}" if f.shared_with else ""
            print(f"cache: poisoned {f.path} ({f.dist}: {f.reason}){shared}")
        for env, fs in env_findings.items():
            if not fs:
                print(f"{env}: clean")
            for f in fs:
                print(f"{env}: modified {f.path} ({f.dist}: {f.reason})")
        if not findings and not envs:
            print("cache: clean")
    found = bool(findings) or any(env_findings.values())
    return 1 if found else 0
