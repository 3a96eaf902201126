"""The install plan: everything about a wheel's layout, worked out once.

A plan is computed when a wheel enters the cache and stored next to its files
(``plan.json``). It is independent of any target: destinations are relative to
a *scheme* (purelib, platlib, scripts, headers, data), so installing into any
environment only joins them with that environment's scheme roots. The hot link
loop reads plain lists from here and does no parsing, hashing or path logic.
"""

from __future__ import annotations

import json
import marshal
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ._marker import MARKER
from ._record import render_record

if TYPE_CHECKING:
    from ._wheel import WheelInfo

PLAN_FORMAT = 1

FRESH_DIST_INFO = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", MARKER})
"""dist-info files the installer writes itself rather than linking from the wheel."""

ScriptSpec = tuple[str, str, str, str]
"""An entry-point script: (name, module, attribute, section ``console``/``gui``)."""

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
    entry_points: list[ScriptSpec]
    source: str = ""
    """Where the wheel was when admitted (used to heal without a wheel at hand)."""
    nfiles: int = field(default=0)
    record: dict[str, str] = field(default_factory=dict)
    """Per scheme, the RECORD lines of its linked files, rendered (CSV-quoted) at admission;
    paths are relative to the scheme root, so installing only prefixes other schemes' lines."""

    def to_data(self) -> dict[str, Any]:
        return {
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
            "entry_points": self.entry_points,
            "source": self.source,
            "nfiles": self.nfiles,
            "record": self.record,
        }

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> Plan:
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
            entry_points=[tuple(e) for e in d["entry_points"]],  # type: ignore[misc]
            source=d.get("source", ""),
            nfiles=d["nfiles"],
            record=d.get("record") or render_links(d["links"]),
        )

    @cached_property
    def _by_member(self) -> dict[str, LinkRow]:
        out = {r[0]: r for rows in self.links.values() for r in rows}
        for src, _dst, digest in self.shebang_scripts:
            out[src] = (src, src, 0, digest, True)
        return out

    @cached_property
    def _by_destination(self) -> dict[tuple[str, str], LinkRow]:
        return {(scheme, r[1]): r for scheme, rows in self.links.items() for r in rows}

    def member_row(self, member: str) -> LinkRow:
        """The row of archive member *member*, by exact name (``KeyError`` if none).
        A ``#!python`` script (written fresh, never linked) has size 0 and itself as
        destination: only its source and hash are meaningful."""
        return self._by_member[member]

    def linked_at(self, scheme: str, destination: str) -> LinkRow | None:
        """The linked file installed at *destination* under *scheme*'s root, by exact path."""
        return self._by_destination.get((scheme, destination))

    def destinations(self) -> dict[str, list[str]]:
        """Every file this plan puts in each scheme (for rollback and conflicts)."""
        out: dict[str, list[str]] = {s: [r[1] for r in rows] for s, rows in self.links.items()}
        out.setdefault("scripts", []).extend(d for _s, d, _h in self.shebang_scripts)
        out["scripts"].extend(e[0] for e in self.entry_points)
        out.setdefault(self.root_scheme, []).extend(
            f"{self.dist_info}/{n}" for n in sorted(FRESH_DIST_INFO)
        )
        return out


def render_links(links: dict[str, list[LinkRow]]) -> dict[str, str]:
    """RECORD lines (``path,hash,size``) of the linked files, per scheme."""
    return {s: render_record((r[1], r[3], r[2]) for r in rows) for s, rows in links.items()}


_MARSHAL_MAGIC = f"safelink-plan-{PLAN_FORMAT}"


def save(plan: Plan, directory: str) -> None:
    """Write the plan twice: ``plan.json`` (portable, for people and other Pythons) and
    ``plan.bin`` (marshal: several times faster to load on the hot path)."""
    data = plan.to_data()
    with open(os.path.join(directory, "plan.bin"), "wb") as f:
        f.write(marshal.dumps((_MARSHAL_MAGIC, data), 4))
    with open(os.path.join(directory, "plan.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(data, separators=(",", ":")))


def load(directory: str) -> Plan:
    try:
        with open(os.path.join(directory, "plan.bin"), "rb") as f:
            magic, data = marshal.loads(f.read())
        if magic == _MARSHAL_MAGIC:
            return Plan.from_data(data)
    except (OSError, ValueError, EOFError, TypeError, KeyError):
        pass
    with open(os.path.join(directory, "plan.json"), encoding="utf-8") as f:
        return Plan.from_data(json.loads(f.read()))


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
        entry_points=[(e.name, e.module, e.attr, e.section) for e in info.entry_points],
        source=source,
        nfiles=nfiles,
        record=render_links(links),
    )
