"""The install plan: everything about a wheel's layout, worked out once.

A plan is computed when a wheel enters the cache and stored next to its files
(``plan.json``). It is independent of any target: destinations are relative to
a *scheme* (purelib, platlib, scripts, headers, data), so installing into any
environment only joins them with that environment's scheme roots. The hot link
loop reads plain lists from here and does no parsing, hashing or path logic.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ._wheel import EntryPoint, WheelInfo

PLAN_FORMAT = 1

FRESH_DIST_INFO = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
"""dist-info files the installer writes itself rather than linking from the wheel."""

LinkRow = tuple[str, str, int, str, bool]
"""(source path under the entry's ``files/``, destination under the scheme root,
size, RECORD hash string, executable)."""


@dataclass
class Plan:
    sha256: str
    filename: str
    name: str
    version: str
    dist_info: str
    root_scheme: str
    tags: list[str]
    links: dict[str, list[LinkRow]]
    dirs: dict[str, list[str]]
    shebang_scripts: list[tuple[str, str, str]]
    """(source, destination under ``scripts``, RECORD hash of the cached original)."""
    entry_points: list[EntryPoint]
    source: str = ""
    """Where the wheel was when admitted (used to heal without a wheel at hand)."""
    nfiles: int = field(default=0)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "format": PLAN_FORMAT,
            "sha256": self.sha256,
            "filename": self.filename,
            "name": self.name,
            "version": self.version,
            "dist_info": self.dist_info,
            "root_scheme": self.root_scheme,
            "tags": self.tags,
            "links": self.links,
            "dirs": self.dirs,
            "shebang_scripts": self.shebang_scripts,
            "entry_points": [[e.name, e.module, e.attr, e.section] for e in self.entry_points],
            "source": self.source,
            "nfiles": self.nfiles,
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        d = json.loads(text)
        if d.get("format") != PLAN_FORMAT:
            raise ValueError(f"unknown plan format {d.get('format')!r}")
        return cls(
            sha256=d["sha256"],
            filename=d["filename"],
            name=d["name"],
            version=d["version"],
            dist_info=d["dist_info"],
            root_scheme=d["root_scheme"],
            tags=d["tags"],
            links={k: [tuple(r) for r in v] for k, v in d["links"].items()},  # type: ignore[misc]
            dirs=d["dirs"],
            shebang_scripts=[tuple(r) for r in d["shebang_scripts"]],  # type: ignore[misc]
            entry_points=[EntryPoint(*e) for e in d["entry_points"]],
            source=d.get("source", ""),
            nfiles=d["nfiles"],
        )

    def destinations(self) -> dict[str, list[str]]:
        """Every file this plan puts in each scheme (for rollback and conflicts)."""
        out: dict[str, list[str]] = {s: [r[1] for r in rows] for s, rows in self.links.items()}
        out.setdefault("scripts", []).extend(d for _s, d, _h in self.shebang_scripts)
        out["scripts"].extend(e.name for e in self.entry_points)
        out.setdefault(self.root_scheme, []).extend(
            f"{self.dist_info}/{n}" for n in sorted(FRESH_DIST_INFO)
        )
        return out


def make_plan(info: WheelInfo, sha256: str, shebang: set[str], source: str) -> Plan:
    """Build the plan for a validated wheel.

    *shebang* names the ``.data/scripts`` members whose first bytes are
    ``#!python``: those are rewritten for the target interpreter at install
    time, so they are written fresh instead of linked.
    """
    root = "purelib" if info.root_is_purelib else "platlib"
    data_prefix = info.data_dir + "/"
    links: dict[str, list[LinkRow]] = {}
    dirs: dict[str, set[str]] = {}
    scripts: list[tuple[str, str, str]] = []
    skip = {f"{info.dist_info}/{n}" for n in FRESH_DIST_INFO}
    for m in info.members:
        if m.name in skip:
            continue
        if m.name.startswith(data_prefix):
            _, scheme, dest = m.name.split("/", 2)
        else:
            scheme, dest = root, m.name
        digest = f"{m.hash_name}={m.hash_hex}"
        if scheme == "scripts" and m.name in shebang:
            scripts.append((m.name, dest, digest))
            continue
        links.setdefault(scheme, []).append((m.name, dest, m.size, digest, m.executable))
        parent = os.path.dirname(dest)
        while parent and parent not in dirs.setdefault(scheme, set()):
            dirs[scheme].add(parent)
            parent = os.path.dirname(parent)
    dirs.setdefault(root, set()).add(info.dist_info)
    for rows in links.values():
        rows.sort(key=lambda r: r[1])
    nfiles = sum(len(r) for r in links.values())
    return Plan(
        sha256=sha256,
        filename=info.filename,
        name=str(info.name),
        version=str(info.version),
        dist_info=info.dist_info,
        root_scheme=root,
        tags=sorted(str(t) for t in info.tags),
        links=links,
        dirs={k: sorted(v, key=lambda p: (p.count("/"), p)) for k, v in dirs.items()},
        shebang_scripts=scripts,
        entry_points=list(info.entry_points),
        source=source,
        nfiles=nfiles,
    )
