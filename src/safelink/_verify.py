"""Deep checks and repairs: re-hash against RECORD, find who shares a poisoned inode.

The install-time guard is one ``stat`` per file (size and mtime). It cannot see
a same-size write whose mtime was put back with ``os.utime``; ``verify``
re-hashes everything and can. ``repair`` heals the cache (from the wheel it
came from, or by evicting the entry) and, for ``--env``, replaces edited files
with pristine private copies (new inodes: the cache is not touched through them).

An environment's distributions are the ``*.dist-info`` directories straight in
its site directories, exactly what ``importlib.metadata`` finds: a
``.dist-info`` vendored inside a package (setuptools ships several) is data,
not an installed distribution. This module returns findings (raw paths: data) and
actions (messages, their names escaped); the command line prints them, escaped.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ._cache import Cache, Entry
from ._environment import Target, flat_target, prefix_target, site_dirs_of, venv_target
from ._guard import fingerprint_problem
from ._jsontext import loads
from ._lock import env_lock
from ._names import installed_path, shown
from ._plan import LinkRow
from ._record import InstalledRow, file_digest, read_installed
from ._translate import translated
from .errors import CacheCorrupt, SafelinkError, TargetError

OUTSIDE = "RECORD path outside the environment"


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


@dataclass
class VerifyReport:
    """What :func:`verify` found: poisoned cache files, and modified files per environment."""

    cache: list[Finding] = field(default_factory=list)
    envs: dict[str, list[Finding]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.cache and not any(self.envs.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "cache": [asdict(f) for f in self.cache],
            "envs": {e: [asdict(f) for f in fs] for e, fs in self.envs.items()},
            "clean": self.clean,
        }


def _check(path: str, digest: str, size: int | None) -> str | None:
    algo, _, want = digest.partition("=")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if size is not None and st.st_size != size:
        return f"size {st.st_size}, expected {size}"
    try:
        if file_digest(path, algo) != want:
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
                reason = fingerprint_problem(path, size, _x) or _check(path, digest, size)
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


def dist_infos(env: str) -> list[str]:
    """The installed distributions of *env*: each site directory's own ``*.dist-info``."""
    out = []
    for site in site_dirs_of(env):
        try:
            names = sorted(os.listdir(site))
        except OSError:
            continue
        for name in names:
            path = os.path.join(site, name)
            if name.endswith(".dist-info") and os.path.isdir(path) and not os.path.islink(path):
                out.append(path)
    return out


def _rows(record: str) -> list[InstalledRow] | str:
    """RECORD's rows, or why they cannot be read (it is untrusted input)."""
    try:
        return read_installed(record, "reinstall the distribution")
    except FileNotFoundError:
        return "no RECORD"
    except OSError as exc:
        return f"unreadable RECORD ({exc.strerror})"
    except SafelinkError as exc:
        return exc.message


def verify_env(env: str) -> list[Finding]:
    """Every file of every distribution installed in *env* that differs from its RECORD."""
    out = []
    root = os.path.realpath(env)
    for dist_info in dist_infos(env):
        site = os.path.dirname(dist_info)
        dist = os.path.basename(dist_info)[: -len(".dist-info")]
        record = os.path.join(dist_info, "RECORD")
        rows = _rows(record)
        if isinstance(rows, str):
            out.append(Finding("env", record, dist, rows))
            continue
        for row in rows:
            if not row.hash or not row.path:
                continue
            path = installed_path(site, root, row.path)
            if path is None:
                shown_path = os.path.normpath(os.path.join(site, row.path.replace("\x00", "")))
                out.append(Finding("env", shown_path, dist, OUTSIDE))
                continue
            reason = _check(path, row.hash, row.size)
            if reason:
                out.append(Finding("env", path, dist, reason))
    return out


def known_envs(cache: Cache) -> list[str]:
    """Every environment the cache has installed into that is still an environment."""
    seen: set[str] = set()
    for entry in cache.entries():
        seen.update(e for e in cache.envs_of(entry.sha256) if os.path.isdir(e))
    out = []
    for env in sorted(seen):
        try:
            site_dirs_of(env)
        except TargetError:
            continue
        out.append(env)
    return out


def _every_cache(cache: Cache) -> list[Cache]:
    """The caches ``verify`` checks and ``repair`` heals: the cache and its satellites
    on other filesystems (one that fails the cache trust rule is skipped, with a warning)."""
    from ._satellite import caches

    return [cache, *caches(cache)]


def verify(
    cache: Cache, envs: list[str] | None = None, *, cache_only: bool = False
) -> VerifyReport:
    """Re-hash the cache and environments against RECORD.

    *envs* ``None`` means every environment the cache knows; a path given that is
    not an environment raises :class:`~safelink.errors.TargetError` before
    anything is checked.
    """
    every = _every_cache(cache)
    if envs is not None:
        envs = [os.path.abspath(e) for e in envs]
        for env in envs:
            site_dirs_of(env)
    elif not cache_only:
        envs = sorted({e for c in every for e in known_envs(c)})
    report = VerifyReport(cache=[f for c in every for f in verify_cache(c)])
    for env in envs or []:
        # Under the environment's lock: files an install is still placing are not damage.
        with translated("verify", env), env_lock(env):
            report.envs[env] = verify_env(env)
    return report


def repair(
    cache: Cache, envs: list[str], *, dry_run: bool = False, lock_timeout: float | None = None
) -> list[str]:
    """Heal the cache, then restore each environment's modified files; the actions taken.

    What to restore in an environment is decided under that environment's lock,
    so an install running meanwhile is never mistaken for damage, and only once a
    transaction that died there is finished or rolled back (as every command that
    changes an environment does first): half an install is not damage. Every path is
    checked to be an environment first: nothing is created at a wrong path.
    """
    from ._transaction import interrupted, recover

    roots = [os.path.abspath(e) for e in envs]
    for root in roots:
        site_dirs_of(root)
    actions = [a for c in _every_cache(cache) for a in repair_cache(c, verify_cache(c), dry_run)]
    for root in roots:
        with translated("repair", root), env_lock(root, lock_timeout):
            tgt = _env_target(root) or prefix_target(root)  # recovery needs only its root
            if dry_run and interrupted(tgt):
                actions.append(
                    f"would first finish or roll back an interrupted safelink run in {shown(root)}"
                )
                continue  # what is damaged is known only after that
            recovered = None if dry_run else recover(tgt)
            if recovered:
                actions.append(recovered)
            actions += repair_env(cache, root, verify_env(root), dry_run)
    return actions


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
                done.append(f"would restore {shown(f.path)}")
                continue
            try:
                cache.restore_file(entry, f.member)
                done.append(f"restored {shown(f.path)}")
            except (CacheCorrupt, OSError):
                cache.remove_entry(entry)
                done.append(f"evicted {shown(entry.plan.filename)} (its wheel is gone)")
                break
    return done


def _entry_for(cache: Cache, dist_info: str) -> Entry | None:
    try:
        with open(os.path.join(dist_info, "direct_url.json"), "rb") as f:
            sha = loads(f.read())["archive_info"]["hashes"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return cache.get(str(sha))


def _env_target(env: str) -> Target | None:
    """The scheme roots of *env*, where they can be known without guessing."""
    try:
        if os.path.isfile(os.path.join(env, "pyvenv.cfg")):
            return venv_target(env)
        if env in site_dirs_of(env):
            return flat_target(env)
    except TargetError:
        pass
    return None


def _members(entry: Entry, site: str, tgt: Target | None) -> dict[str, LinkRow]:
    """Absolute destination -> plan row, by exact path (never by suffix)."""
    plan = entry.plan
    out = {}
    for scheme, rows in plan.links.items():
        if tgt is not None:
            base = tgt.scheme_root(scheme, plan.name)
        elif scheme in ("purelib", "platlib"):
            base = site
        else:
            continue
        for row in rows:
            out[os.path.normpath(os.path.join(base, row[1]))] = row
    return out


def repair_env(cache: Cache, env: str, findings: list[Finding], dry_run: bool) -> list[str]:
    """Replace each modified file with a pristine private copy from the cache or the wheel."""
    from ._atomic import create_temp
    from .strategies.copy import copy_fd

    done = []
    tgt = _env_target(env)
    by_dist = {os.path.basename(d)[: -len(".dist-info")]: d for d in dist_infos(env)}
    found: dict[str, tuple[Entry | None, dict[str, LinkRow]]] = {}
    for f in findings:
        if f.kind != "env" or f.reason == OUTSIDE:
            continue
        if f.dist not in found:
            dist_info = by_dist.get(f.dist)
            entry = _entry_for(cache, dist_info) if dist_info else None
            rows = _members(entry, os.path.dirname(dist_info), tgt) if entry and dist_info else {}
            found[f.dist] = (entry, rows)
        entry, rows = found[f.dist]
        member = rows.get(os.path.normpath(f.path))
        if entry is None or member is None:
            done.append(f"cannot restore {shown(f.path)}: not installed from a cache entry")
            continue
        if dry_run:
            done.append(f"would restore {shown(f.path)}")
            continue
        src = os.path.join(entry.files, member[0])
        if _check(src, member[3], member[2]) is not None:
            cache.restore_file(entry, member[0])
        sfd = os.open(src, os.O_RDONLY)
        try:
            dfd, tmp = create_temp(f.path, 0o777 if member[4] else 0o666)  # O_EXCL, O_NOFOLLOW
            try:
                copy_fd(sfd, dfd)
            except BaseException:
                os.close(dfd)
                os.unlink(tmp)
                raise
            os.close(dfd)
        finally:
            os.close(sfd)
        os.replace(tmp, f.path)
        done.append(f"restored {shown(f.path)}")
    return done
