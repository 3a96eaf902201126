"""Files written fresh for each environment: scripts, dist-info metadata, RECORD.

Linked files come from the cache; these depend on the target (its interpreter,
its paths) or on this install (``direct_url.json``), so each is written to a
temporary name and renamed into place: never written through a link.
"""

from __future__ import annotations

import os
from _thread import allocate_lock  # threading.Lock, without importing threading

from ._atomic import write_fresh
from ._cache import Entry
from ._environment import Target
from ._hooks import crash_point
from ._jsontext import dumps
from ._marker import MARKER
from ._marker import render as render_marker
from ._plan import FRESH_DIST_INFO, Plan
from ._record import PycRow, first_duplicate, hash_of, render_record

_URI_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~/")


def _file_uri(path: str) -> str:
    """``file://`` URL of an absolute path, as ``pathlib.Path.as_uri`` makes it on POSIX
    (without importing pathlib and urllib on every install)."""
    if os.sep != "/":  # pragma: no cover - Windows drive letters and separators
        from pathlib import Path

        return Path(path).as_uri()
    return "file://" + "".join(chr(b) if b in _URI_SAFE else f"%{b:02X}" for b in os.fsencode(path))


_UMASK_LOCK = allocate_lock()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows.

    Setting and restoring it would race with other threads creating files.
    """
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _write_fresh(path: str, data: bytes, mode: int) -> None:
    """Write a new file beside *path* and rename it into place (never through a link;
    the temporary name is unpredictable and known to the journal)."""
    write_fresh(path, data, mode)


def _record_text(
    plan: Plan, site_parts: dict[str, str], rows: list[tuple[str, str, str]], pyc_paths: set[str]
) -> str:
    """The RECORD: the linked files' lines rendered at admission, then *rows*.

    A RECORD never lists one path twice (uninstall and verify would act on the wrong
    content). The plan's files cannot clash (checked at admission, and against the
    target's scheme roots before anything changed: ``_plan.check_layout``); what is
    left is bytecode: a ``.pyc`` compiled by ``--compile`` that replaced one the wheel
    ships takes over its row. Any other clash here is an error (the install is rolled
    back), never a silent second row.
    """
    fresh = {f"{plan.dist_info}/{n}" for n in FRESH_DIST_INFO}  # reserved by the plan
    twice = first_duplicate(r[0] for r in rows)
    replaced: dict[str, set[str]] = {}
    inside = [r[0] for r in rows if not r[0].startswith(("../", "/")) and r[0] not in fresh]
    for path in inside if twice is None else ():
        for scheme in site_parts:
            if plan.linked_at(scheme, path) is None:
                continue
            if path not in pyc_paths:
                twice = path
                break
            replaced.setdefault(scheme, set()).add(path)
    if twice is not None:
        from ._names import shown
        from .errors import InvalidWheel

        raise InvalidWheel(
            f"{shown(plan.filename)}: two files would be installed at {shown(twice)} "
            "(relative to site-packages)",
            "a RECORD can list a path only once; nothing was changed",
        )
    parts = [
        text
        if scheme not in replaced
        else render_record(
            (r[1], r[3], r[2]) for r in plan.links[scheme] if r[1] not in replaced[scheme]
        )
        for scheme, text in site_parts.items()
    ]
    return "".join(parts) + render_record(rows)


def finalize(
    tgt: Target,
    entry: Entry,
    plan: Plan,
    wheel: str | None,
    requested: bool,
    pycs: list[PycRow],
    cache_root: str | None = None,
) -> int:
    """Write scripts, metadata and RECORD; return how many files were written.

    *wheel* is the wheel file the user named (recorded in ``direct_url.json``);
    ``None`` for a wheel chosen from an index or a lock, which gets none, as with pip and uv.
    """
    site = tgt.scheme_root(plan.root_scheme, plan.name)
    prefixes: dict[str, str] = {}

    def prefix(scheme: str) -> str:
        if scheme not in prefixes:
            rel = os.path.relpath(tgt.scheme_root(scheme, plan.name), site)
            prefixes[scheme] = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        return prefixes[scheme]

    # Linked files' RECORD lines were rendered at admission; only schemes whose root
    # is not the site dir (scripts, data, headers: few files) need their paths prefixed.
    record_parts: dict[str, str] = {}
    rows: list[tuple[str, str, str]] = []
    for scheme, links in plan.links.items():
        p = prefix(scheme)
        if p:
            rows.extend((p + dst, digest, str(size)) for _src, dst, size, digest, _x in links)
        else:
            record_parts[scheme] = plan.record[scheme]

    written = 0
    umask = _umask()
    exec_mode = 0o777 & ~umask
    scripts_root = tgt.scripts
    if plan.entry_points or plan.shebang_scripts:
        os.makedirs(scripts_root, exist_ok=True)
    py = tgt.python
    for _src, dst, _digest in plan.shebang_scripts:
        with open(os.path.join(entry.files, _src), "rb") as f:
            f.readline()
            data = f"#!{py}\n".encode() + f.read()
        path = os.path.join(scripts_root, dst)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write_fresh(path, data, exec_mode)
        rows.append((prefix("scripts") + dst, hash_of(data), str(len(data))))
        written += 1
    if plan.entry_points:
        from ._launchers import launcher

        for spec in plan.entry_points:
            name, data = launcher(spec, py, cache_root)
            _write_fresh(os.path.join(scripts_root, name), data, exec_mode)
            rows.append((prefix("scripts") + name, hash_of(data), str(len(data))))
            written += 1

    dist_info = os.path.join(site, plan.dist_info)
    meta: dict[str, bytes] = {"INSTALLER": b"safelink\n"}
    if requested:
        meta["REQUESTED"] = b""
    if wheel is not None:
        meta["direct_url.json"] = dumps(
            {
                "url": _file_uri(wheel),
                "archive_info": {
                    "hash": f"sha256={plan.sha256}",
                    "hashes": {"sha256": plan.sha256},
                },
            },
            sort_keys=True,
        ).encode()
    meta[MARKER] = render_marker(plan.sha256, plan.filename)
    for name, data in meta.items():
        _write_fresh(os.path.join(dist_info, name), data, 0o666 & ~umask)
        rows.append((f"{plan.dist_info}/{name}", hash_of(data), str(len(data))))
        written += 1

    npyc = len(rows)
    for scheme, rel, size, digest in pycs:  # bytecode, linked from the cache or compiled
        rows.append((prefix(scheme) + rel, digest, str(size)))

    rows.append((f"{plan.dist_info}/RECORD", "", ""))
    text = _record_text(plan, record_parts, rows, {r[0] for r in rows[npyc:-1]})
    crash_point("before-record")
    _write_fresh(os.path.join(dist_info, "RECORD"), text.encode(), 0o666 & ~umask)
    return written + 1
