"""Removing an installed distribution by its RECORD, never outside the environment.

RECORD files of installed distributions are untrusted too (any installer, any
wheel wrote them): every path is resolved and must stay inside the target's
root, or nothing at all is removed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ._dataclass import dataclass
from ._environment import Target
from ._names import inside, installed_path, shown
from ._record import read_installed
from .errors import SafelinkError


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    dist_info: str
    """Absolute path of the ``.dist-info`` directory."""


def canonicalize_name(name: str) -> str:
    """PEP 503 normalisation (as ``packaging.utils``, without importing it on the hot path)."""
    dashed = name.replace("_", "-").replace(".", "-")  # no re (start-up cost)
    while "--" in dashed:  # each run of separators becomes one "-"
        dashed = dashed.replace("--", "-")
    return dashed.lower()


def find_installed(target: Target, name: str) -> list[Installed]:
    """Every installed ``.dist-info`` in the target's site dirs for project *name*."""
    want = canonicalize_name(name)
    out = []
    for site in target.site_dirs:
        try:
            names = os.listdir(site)
        except FileNotFoundError:
            continue
        for entry in names:
            if not entry.endswith(".dist-info"):
                continue
            dist, _, version = entry[: -len(".dist-info")].rpartition("-")
            if dist and canonicalize_name(dist) == want:
                out.append(Installed(dist, version, os.path.join(site, entry)))
    return out


def record_paths(target: Target, inst: Installed) -> list[str]:
    """Absolute paths the distribution's RECORD lists, all checked to be inside the target."""
    site = os.path.dirname(inst.dist_info)
    root = os.path.realpath(target.root)
    paths: list[str] = []
    try:
        rows = read_installed(
            os.path.join(inst.dist_info, "RECORD"),
            f"cannot uninstall {shown(inst.name)} safely; remove it by hand",
        )
    except FileNotFoundError:
        raise SafelinkError(
            f"{shown(inst.dist_info)} has no RECORD; cannot uninstall {shown(inst.name)} safely",
            "remove it by hand",
        ) from None
    for row in rows:
        if not row.path:
            continue
        path = installed_path(site, root, row.path)
        if path is None:
            raise _escape(inst, row.path)
        paths.append(path)
    record = os.path.join(inst.dist_info, "RECORD")
    if not inside(root, record):  # a dist-info that is a symlink to elsewhere
        raise _escape(inst, os.path.relpath(record, site))
    paths.append(record)
    return paths


def _escape(inst: Installed, rel: str) -> SafelinkError:
    return SafelinkError(
        f"RECORD of installed {shown(inst.name)} {shown(inst.version)} lists {rel!r}, "
        "outside the environment; refusing to uninstall it",
        f"inspect {shown(inst.dist_info)}/RECORD",
    )


def remove_distribution(target: Target, inst: Installed, remove: Callable[[str], None]) -> int:
    """Remove every RECORD-listed file (and its bytecode) with *remove*; prune empty dirs."""
    paths = record_paths(target, inst)  # validates all before touching anything
    root = os.path.realpath(target.root)
    dirs: set[str] = set()
    n = 0
    for path in paths:
        if os.path.lexists(path) and not (os.path.isdir(path) and not os.path.islink(path)):
            remove(path)
            n += 1
        parent = os.path.dirname(path)
        dirs.add(parent)
        if path.endswith(".py"):
            cache = os.path.join(parent, "__pycache__")
            if os.path.islink(cache) or not inside(root, os.path.join(cache, "x")):
                continue  # a symlinked __pycache__ is never swept (nor pruned)
            stem = os.path.basename(path)[:-3] + "."
            try:
                for name in os.listdir(cache):
                    if name.startswith(stem) and name.endswith(".pyc"):
                        remove(os.path.join(cache, name))
            except OSError:
                pass
            dirs.add(cache)
    # The headers root (a venv's include/site/pythonX.Y) is made by the first install
    # that has headers, so it goes with the last one; the directory above it stays.
    headers_parent = os.path.dirname(target.headers)
    if target.kind == "venv":
        headers_parent = os.path.dirname(headers_parent)
    keep = {
        os.path.realpath(p)
        for p in (
            target.root,
            target.purelib,
            target.platlib,
            target.scripts,
            headers_parent,
            target.data,
        )
    }
    for d in sorted(dirs, key=lambda p: -p.count(os.sep)):
        while os.path.realpath(d) not in keep and inside(os.path.realpath(target.root), d):
            try:
                os.rmdir(d)
            except OSError:
                break
            d = os.path.dirname(d)
    return n


def uninstall(
    names: list[str],
    target: Target | str | os.PathLike[str] | None = None,
    *,
    python: str | None = None,
    prefix: str | None = None,
    flat_target: str | None = None,
    lock_timeout: float | None = None,
    missing_ok: bool = False,
) -> list[Installed]:
    """Remove the named distributions from *target* by their RECORD files.

    All-or-nothing: files are moved aside first and deleted only when every
    distribution was removed. The cache is never touched.
    """
    from ._environment import resolve_target
    from ._hooks import crash_point
    from ._lock import env_lock
    from ._transaction import Transaction, recover
    from ._translate import translated
    from .errors import NotInstalled

    tgt = resolve_target(target, python=python, prefix=prefix, flat=flat_target)
    if not os.path.isdir(tgt.root):
        for name in names:
            if not missing_ok:
                raise NotInstalled(f"{name} is not installed in {tgt.root}")
        return []

    def remove(path: str) -> None:
        txn.displace(path)
        crash_point("uninstall-mid")

    with translated("uninstall", tgt.root), env_lock(tgt.root, lock_timeout):
        # Finish or undo an install that died here first: what is installed
        # is only known once that is done.
        recovered = recover(tgt)
        if recovered:
            from ._log import warn

            warn(recovered)
        found: list[Installed] = []
        for name in names:
            insts = find_installed(tgt, name)
            if not insts and not missing_ok:
                raise NotInstalled(f"{name} is not installed in {tgt.root}")
            found.extend(insts)
        if not found:
            return []
        txn = Transaction(
            tgt, [], op="uninstall", what=[f"{i.name} {i.version}" for i in found]
        )
        try:
            txn.begin()
            for inst in found:
                remove_distribution(tgt, inst, remove)
            crash_point("uninstall-before-commit")
        except BaseException:
            try:
                txn.rollback()
            except OSError:
                pass  # the journal stays: the next run on the environment retries
            raise
        txn.commit()
    return found
