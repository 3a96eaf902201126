"""``sync`` and ``install -r``: make an environment match a ``pylock.toml``.

1. Select: the lock's wheels for the *target* interpreter (:mod:`safelink._pylock`).
2. Compare with what is installed: one ``listdir`` per site directory and, per
   selected distribution already there, one small read (:mod:`safelink._marker`).
   A distribution installed from the selected wheel is left alone, untouched.
3. Fetch only what the cache lacks (:mod:`safelink._fetch`); nothing in the
   environment changes until every selected wheel is a verified cache entry.
4. One transaction (:func:`safelink.install` with ``remove=``) adds, replaces
   and, for ``sync``, removes what the lock does not select; a failure or a
   ``kill -9`` leaves the environment as it was.

A distribution without a RECORD cannot be removed safely: ``sync`` reports it
and leaves it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ._cache import Cache
from ._environment import Target, resolve_target
from ._marker import installed_sha256
from ._names import shown
from ._progress import Progress, ProgressCallback
from ._uninstall import Installed, canonicalize_name

if TYPE_CHECKING:
    from ._guard import Guard
    from ._report import InstallReport

# A no-op sync imports neither packaging nor the install machinery: the selection is
# remembered per lock content and target (see _pylock.select_remembered), and
# _install is imported only when something must change.


@dataclass(frozen=True)
class Change:
    """One distribution added (``old`` is None), removed (``new`` is None) or replaced."""

    name: str
    old: str | None
    new: str | None

    def line(self) -> str:
        """The same line ``install`` prints (:func:`safelink._report.change_line`)."""
        from ._report import change_line

        return change_line(self.name, self.old, self.new)


@dataclass
class SyncReport:
    """The outcome of :func:`safelink.sync` and :func:`safelink.install_lock`."""

    target: str
    lock: str
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    """``name==version`` of distributions already installed from the selected wheel."""
    not_removed: list[str] = field(default_factory=list)
    """Distributions ``sync`` would remove but cannot safely (no RECORD)."""
    downloaded: list[str] = field(default_factory=list)
    dry_run: bool = False
    install: InstallReport | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One `` + name==version`` / `` - name==version`` / `` ~ name old -> new`` per change."""
        return [c.line() for c in self.changes]

    def summary(self) -> str:
        added = sum(1 for c in self.changes if c.old is None)
        removed = sum(1 for c in self.changes if c.new is None)
        replaced = len(self.changes) - added - removed
        if not self.changes:
            what = f"nothing to do: {len(self.unchanged)} distribution(s) already match the lock"
        else:
            verb = "would change" if self.dry_run else "changed"
            what = (
                f"{verb} {len(self.changes)} distribution(s) "
                f"({added} added, {replaced} replaced, {removed} removed), "
                f"{len(self.unchanged)} unchanged"
            )
        if self.downloaded:
            what += f", {len(self.downloaded)} downloaded"
        return f"{what} in {self.target} ({self.seconds:.2f} s)"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["install"] = self.install.to_dict() if self.install else None
        d["lines"] = self.lines()
        d["summary"] = self.summary()
        return d


def sync(
    lock: str | os.PathLike[str],
    target: Target | str | os.PathLike[str] | None = None,
    *,
    python: str | None = None,
    prefix: str | None = None,
    flat_target: str | None = None,
    cache: Cache | str | os.PathLike[str] | None = None,
    extras: Collection[str] = (),
    groups: Collection[str] | None = None,
    exact: bool = True,
    dry_run: bool = False,
    reinstall: bool = False,
    offline: bool = False,
    link_mode: str = "auto",
    allow_fallback: bool | None = None,
    guard: Guard | str = "check",
    compile_bytecode: bool = False,
    lock_timeout: float | None = None,
    threads: int | None = None,
    max_unpacked: int | None = None,
    progress: ProgressCallback | None = None,
) -> SyncReport:
    """Make *target* match the PEP 751 lock file *lock*.

    Every distribution the lock selects for the target's interpreter (its
    markers and wheel tags; *extras* and dependency *groups* as the lock
    declares them, ``None`` for the lock's default groups) is installed from
    its locked wheel, unless it is already installed from that very wheel
    (*reinstall* forces it). With *exact* (``sync``), distributions the lock
    does not select are removed in the same transaction; without it
    (:func:`install_lock`), they stay. *dry_run* returns the plan and changes
    nothing. *offline* refuses the network: wheels must be in the cache or on disk.

    The other options are :func:`safelink.install`'s. Raises
    :class:`~safelink.errors.InvalidLock` for a lock that cannot be used for
    the target (before anything changes),
    :class:`~safelink.errors.DownloadFailed` when a wheel cannot be fetched
    with the locked hash, or another :class:`~safelink.errors.SafelinkError`;
    the environment is then left as it was.
    """
    from ._pylock import select_remembered

    t0 = time.perf_counter()
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    tgt = resolve_target(
        target, python=python, prefix=prefix, flat=flat_target, cache_root=cache.root
    )
    lock_path = os.path.abspath(os.fspath(lock))
    selection = select_remembered(lock_path, tgt, cache, extras=extras, groups=groups)
    wheels = selection.wheels
    report = SyncReport(target=tgt.root, lock=lock_path, dry_run=dry_run)

    if _interrupted(tgt):
        if dry_run:
            report.warnings.append(
                f"an interrupted install in {tgt.root} will be rolled back first; "
                "this plan is from the environment as it is now"
            )
        else:
            _recover(tgt, lock_timeout)
    installed = installed_distributions(tgt)
    todo = []
    for w in wheels:
        insts = installed.pop(w.name, [])
        if (
            len(insts) == 1
            and not reinstall
            and installed_sha256(insts[0].dist_info) == w.sha256
        ):
            report.unchanged.append(w.spec)
            continue
        todo.append(w)
        report.changes.append(Change(w.name, insts[0].version if insts else None, w.version))
    remove: list[str] = []
    if exact:
        for name, insts in sorted(installed.items()):
            if all(os.path.isfile(os.path.join(i.dist_info, "RECORD")) for i in insts):
                remove.append(name)
                report.changes.extend(Change(name, i.version, None) for i in insts)
            else:
                report.not_removed.extend(f"{i.name}=={i.version}" for i in insts)
                report.warnings.append(
                    f"not removing {shown(insts[0].name)}: {shown(insts[0].dist_info)} has no "
                    "RECORD (installed by a tool that keeps none); remove it by hand"
                )
    if dry_run or not report.changes:
        if not dry_run:
            selection.keep()
        return _done(report, t0)

    def fetched(name: str, done: int, total: int) -> None:
        if progress:
            progress(Progress("download", name, done, total))

    from ._fetch import ensure
    from ._install import install

    entries, report.downloaded = ensure(
        cache, todo, offline=offline, progress=fetched, max_unpacked=max_unpacked
    )
    if entries:
        report.install = install(
            entries,
            tgt,
            cache=cache,
            link_mode=link_mode,
            allow_fallback=allow_fallback,
            guard=guard,
            compile_bytecode=compile_bytecode,
            lock_timeout=lock_timeout,
            threads=threads,
            progress=progress,
            remove=remove,
        )
    elif remove:
        from ._uninstall import uninstall

        uninstall(remove, tgt, lock_timeout=lock_timeout, missing_ok=True)
    selection.keep()
    return _done(report, t0)


def _done(report: SyncReport, t0: float) -> SyncReport:
    from ._log import warn

    for message in report.warnings:
        warn(message)
    report.seconds = time.perf_counter() - t0
    return report


def install_lock(
    lock: str | os.PathLike[str],
    target: Target | str | os.PathLike[str] | None = None,
    *,
    python: str | None = None,
    prefix: str | None = None,
    flat_target: str | None = None,
    cache: Cache | str | os.PathLike[str] | None = None,
    extras: Collection[str] = (),
    groups: Collection[str] | None = None,
    dry_run: bool = False,
    reinstall: bool = False,
    offline: bool = False,
    link_mode: str = "auto",
    allow_fallback: bool | None = None,
    guard: Guard | str = "check",
    compile_bytecode: bool = False,
    lock_timeout: float | None = None,
    threads: int | None = None,
    max_unpacked: int | None = None,
    progress: ProgressCallback | None = None,
) -> SyncReport:
    """Install what *lock* selects for *target*, leaving other distributions alone.

    :func:`sync` without removals (``exact=False``); the same options.
    """
    return sync(
        lock,
        target,
        python=python,
        prefix=prefix,
        flat_target=flat_target,
        cache=cache,
        extras=extras,
        groups=groups,
        exact=False,
        dry_run=dry_run,
        reinstall=reinstall,
        offline=offline,
        link_mode=link_mode,
        allow_fallback=allow_fallback,
        guard=guard,
        compile_bytecode=compile_bytecode,
        lock_timeout=lock_timeout,
        threads=threads,
        max_unpacked=max_unpacked,
        progress=progress,
    )


def _interrupted(tgt: Target) -> bool:
    from ._transaction import interrupted

    return interrupted(tgt)


def _recover(tgt: Target, lock_timeout: float | None) -> None:
    """Roll back a dead install before looking at what is installed (it may be half there)."""
    from ._lock import env_lock
    from ._transaction import recover
    from ._translate import translated

    with translated("sync", tgt.root), env_lock(tgt.root, lock_timeout):
        message = recover(tgt)
    if message:
        from ._log import warn

        warn(message)


@dataclass
class WheelPlan:
    """What ``install --dry-run`` with wheel files would change (:func:`plan_wheels`)."""

    target: str
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    """``name==version`` of distributions already installed from that very wheel."""
    dry_run: bool = True

    def lines(self) -> list[str]:
        """The same lines as :meth:`SyncReport.lines`."""
        return [c.line() for c in self.changes]

    def summary(self) -> str:
        n = len(self.changes)
        line = f"Would install {n} wheel{'s' if n != 1 else ''} into {self.target}"
        if self.unchanged:
            line += f" ({len(self.unchanged)} already installed from the same wheel)"
        return line

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lines"] = self.lines()
        d["summary"] = self.summary()
        return d


def plan_wheels(wheels: Collection[str], tgt: Target) -> WheelPlan:
    """What installing the wheel files *wheels* into *tgt* would change; changes nothing.

    Name and version come from each file's name; a distribution already installed
    from a wheel with the same sha256 is unchanged (as :func:`sync` decides).
    """
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    from .errors import SafelinkError

    plan = WheelPlan(target=tgt.root)
    installed = installed_distributions(tgt)
    for path in wheels:
        base = os.path.basename(os.fspath(path))
        try:
            name, version, _, _ = parse_wheel_filename(base)
        except InvalidWheelFilename:
            raise SafelinkError(
                f"{shown(base)} is not a valid wheel file name",
                "a wheel is named NAME-VERSION(-BUILD)-PY-ABI-PLATFORM.whl",
            ) from None
        if not os.path.isfile(path):
            raise SafelinkError(f"no such wheel file: {shown(os.fspath(path))}", "check the path")
        insts = installed.get(canonicalize_name(name), [])
        if len(insts) == 1 and installed_sha256(insts[0].dist_info) == _sha256_of(path):
            plan.unchanged.append(f"{name}=={version}")
            continue
        old = insts[0].version if insts else None
        plan.changes.append(Change(name, old, str(version)))
    plan.changes.sort(key=lambda c: c.name)
    return plan


def _sha256_of(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def installed_distributions(tgt: Target) -> dict[str, list[Installed]]:
    """Every ``.dist-info`` directly in the target's site directories, by canonical name."""
    out: dict[str, list[Installed]] = {}
    for site in tgt.site_dirs:
        try:
            names = os.listdir(site)
        except OSError:
            continue
        for entry in names:
            if not entry.endswith(".dist-info"):
                continue
            dist, _, version = entry[: -len(".dist-info")].rpartition("-")
            if dist:
                inst = Installed(dist, version, os.path.join(site, entry))
                out.setdefault(canonicalize_name(dist), []).append(inst)
    return out

