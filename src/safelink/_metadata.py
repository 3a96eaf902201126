"""Files written fresh for each environment: scripts, dist-info metadata, RECORD.

Linked files come from the cache; these depend on the target (its interpreter,
its paths) or on this install (``direct_url.json``), so each is written to a
temporary name and renamed into place: never written through a link.
"""

from __future__ import annotations

import json
import os
import threading

from ._atomic import write_fresh
from ._cache import Entry
from ._environment import Target
from ._hooks import crash_point
from ._marker import MARKER
from ._marker import render as render_marker
from ._plan import Plan
from ._record import PycRow, hash_of, render_record

_URI_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~/")


def _file_uri(path: str) -> str:
    """``file://`` URL of an absolute path, as ``pathlib.Path.as_uri`` makes it on POSIX
    (without importing pathlib and urllib on every install)."""
    if os.sep != "/":  # pragma: no cover - Windows drive letters and separators
        from pathlib import Path

        return Path(path).as_uri()
    return "file://" + "".join(chr(b) if b in _URI_SAFE else f"%{b:02X}" for b in os.fsencode(path))


_UMASK_LOCK = threading.Lock()


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
    record_parts: list[str] = []
    rows: list[tuple[str, str, str]] = []
    for scheme, links in plan.links.items():
        p = prefix(scheme)
        if p:
            rows.extend((p + dst, digest, str(size)) for _src, dst, size, digest, _x in links)
        else:
            record_parts.append(plan.record[scheme])

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
        meta["direct_url.json"] = json.dumps(
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

    for scheme, rel, size, digest in pycs:  # bytecode, linked from the cache or compiled
        rows.append((prefix(scheme) + rel, digest, str(size)))

    rows.append((f"{plan.dist_info}/RECORD", "", ""))
    text = "".join(record_parts) + render_record(rows)
    crash_point("before-record")
    _write_fresh(os.path.join(dist_info, "RECORD"), text.encode(), 0o666 & ~umask)
    return written + 1
