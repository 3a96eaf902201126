"""The install plan: everything about a wheel's layout, worked out once.

A plan is computed when a wheel enters the cache and stored next to its files
(``plan.json``). It is independent of any target: destinations are relative to
a *scheme* (purelib, platlib, scripts, headers, data), so installing into any
environment only joins them with that environment's scheme roots. The hot link
loop reads plain lists from here and does no parsing, hashing or path logic.
"""

from __future__ import annotations

import marshal
import os
from functools import cached_property

from ._dataclass import dataclass, field
from ._marker import MARKER
from ._record import first_duplicate, render_record

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ._environment import Target
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
    requires_python: str = ""
    """METADATA's Requires-Python (checked against the target before anything changes)."""
    python_admits: list[str] | None = None
    """The ``X.Y`` of :data:`PYTHONS` that *requires_python* admits, worked out at
    admission so that a warm install does not import ``packaging``."""
    wheel_version: str = "1.0"
    """WHEEL's Wheel-Version."""
    newer_wheel_version: bool = False
    """Is it a newer minor version than safelink implements (a warning at each install)?
    Decided at admission by ``_wheel``, the one owner of that rule."""

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
            "requires_python": self.requires_python,
            "python_admits": self.python_admits,
            "wheel_version": self.wheel_version,
            "newer_wheel_version": self.newer_wheel_version,
        }

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> Plan:
        """The plan stored as *d*; ``ValueError`` for anything that is not one."""
        if not isinstance(d, dict):
            raise ValueError(f"a plan is an object, not {type(d).__name__}")
        if d.get("format") != PLAN_FORMAT:
            raise ValueError(f"unknown plan format {d.get('format')!r}")
        try:
            return cls._from_dict(d)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed plan ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _from_dict(cls, d: dict[str, Any]) -> Plan:
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
            requires_python=d.get("requires_python", ""),
            python_admits=d.get("python_admits"),
            wheel_version=d.get("wheel_version", "1.0"),
            newer_wheel_version=bool(d.get("newer_wheel_version", False)),
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
    import json  # admission only (start-up cost)

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
    import json

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
    launchers = {e.name for e in info.entry_points}
    for m in info.members:
        if m.name in skip:
            continue
        if m.name.startswith(data_prefix):
            _, scheme, dest = m.name.split("/", 2)
        else:
            scheme, dest = root, m.name
        if scheme == "scripts" and shadowed(dest, launchers):
            continue
        digest = f"{m.hash_name}={m.hash_hex}"
        if scheme == "scripts" and m.name in shebang:
            scripts.append((m.name, dest, digest))
            continue
        links.setdefault(scheme, []).append((m.name, dest, m.size, digest, m.executable))
        parent = dest.rpartition("/")[0]
        known = dirs.setdefault(scheme, set())
        while parent and parent not in known:
            known.add(parent)
            parent = parent.rpartition("/")[0]
    dirs.setdefault(root, set()).add(info.dist_info)
    for rows in links.values():
        rows.sort(key=lambda r: r[1])
    nfiles = sum(len(r) for r in links.values())
    paths = [f"{s}/{r[1]}" for s, rows in links.items() for r in rows]
    paths += [f"scripts/{dest}" for _src, dest, _d in scripts]
    paths += [f"scripts/{e.name}" for e in info.entry_points]
    paths += [f"{root}/{info.dist_info}/{n}" for n in sorted(FRESH_DIST_INFO)]
    twice = first_duplicate(paths)
    if twice is not None:
        from ._names import shown
        from .errors import InvalidWheel

        scheme, _, dest = twice.partition("/")
        raise InvalidWheel(
            f"{shown(info.filename)}: two files would be installed at {dest!r} in {scheme}",
            "a RECORD can list a path only once; the wheel is inconsistent",
        )
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
        requires_python=info.requires_python,
        python_admits=admitted_pythons(info.requires_python),
        wheel_version=info.wheel_version,
        newer_wheel_version=info.newer_wheel_version,
    )


def check_layout(plan: Plan, root_of: Callable[[str], str]) -> None:
    """Refuse *plan* if two of its files would land on one path of this target.

    Within a scheme the plan's paths are unique (checked at admission). Across
    schemes it depends on the target: purelib and platlib are often one directory,
    and a venv's data root holds every other scheme, so ``.data/data/lib/python3.12/
    site-packages/pkg/x.py`` is ``pkg/x.py``. Only schemes whose roots nest are
    compared, from the smaller side: nothing is done for a wheel without such files.
    """
    schemes = sorted({*(s for s, rows in plan.links.items() if rows), plan.root_scheme})
    if plan.shebang_scripts or plan.entry_points:
        schemes = sorted({*schemes, "scripts"})
    roots = {s: os.path.normpath(root_of(s)) for s in schemes}
    dests: dict[str, list[str]] = {}
    for i, inner in enumerate(schemes):
        for outer in schemes[i + 1 :]:
            rel = os.path.relpath(roots[inner], roots[outer])
            if rel.startswith(".."):
                inner, outer = outer, inner
                rel = os.path.relpath(roots[inner], roots[outer])
                if rel.startswith(".."):
                    continue  # neither holds the other
            prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            dests = dests or plan.destinations()
            small, big = dests.get(inner, []), dests.get(outer, [])
            if len(small) <= len(big):
                bigset = set(big)
                clash = next((prefix + d for d in small if prefix + d in bigset), None)
            else:
                smallset = set(small)
                cut = len(prefix)
                clash = next(
                    (d for d in big if d.startswith(prefix) and d[cut:] in smallset), None
                )
            if clash is not None:
                from ._names import shown
                from .errors import InvalidWheel

                raise InvalidWheel(
                    f"{shown(plan.filename)}: two files would be installed at "
                    f"{shown(os.path.join(roots[outer], clash))}",
                    "a RECORD can list a path only once; nothing was changed",
                )


_WRAPPER_SUFFIXES = (".exe", "-script.py", ".pya")


def shadowed(script: str, entry_points: set[str]) -> bool:
    """Is the ``.data/scripts`` file *script* one that an entry point's launcher replaces?

    Like pip and uv: ``NAME``, ``NAME.exe``, ``NAME-script.py`` and ``NAME.pya`` (the
    wrappers setuptools ships) are not installed when ``NAME`` is an entry point.
    """
    if not entry_points:
        return False
    name = os.path.basename(script)
    lower = name.lower()
    for suffix in _WRAPPER_SUFFIXES:
        if lower.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name in entry_points


PYTHONS = frozenset([(2, 7), *((3, minor) for minor in range(40))])
"""The interpreters whose answer to Requires-Python a plan stores."""


def _admitting(requires_python: str, pythons: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Those of *pythons* (major, minor) with some release ``major.minor.z`` that
    satisfies *requires_python* (none if it does not parse).

    The releases a specifier admits change only at the versions it names, so besides
    ``.0`` and a large micro only the micros it names, and their neighbours, are asked.
    """
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return []
    named: dict[tuple[int, int], set[int]] = {}
    for one in spec:
        try:
            release = Version(one.version.rstrip(".*")).release
        except InvalidVersion:
            continue
        if len(release) >= 3:
            named.setdefault((release[0], release[1]), set()).update(
                m for m in (release[2] - 1, release[2], release[2] + 1) if m >= 0
            )
    return [
        (major, minor)
        for major, minor in pythons
        if any(
            spec.contains(Version(f"{major}.{minor}.{m}"), prereleases=True)
            for m in {0, 9999, *named.get((major, minor), ())}
        )
    ]


def python_admitted(requires_python: str, major: int, minor: int) -> bool:
    """Does some release ``major.minor.z`` satisfy *requires_python*?"""
    return bool(_admitting(requires_python, [(major, minor)]))


def admitted_pythons(requires_python: str) -> list[str] | None:
    """``X.Y`` of every interpreter in :data:`PYTHONS` that *requires_python* admits."""
    if not requires_python:
        return None
    return [f"{a}.{b}" for a, b in _admitting(requires_python, sorted(PYTHONS))]


def check_target(plan: Plan, tgt: Target, ignore_requires_python: bool = False) -> str | None:
    """Everything about *plan* that depends on the target, checked before anything changes.

    Refuses a wheel whose Requires-Python excludes the target interpreter (like pip,
    unless *ignore_requires_python*) and one whose files of two schemes land on one
    path in this target (:func:`check_layout`); returns a warning for a newer
    Wheel-Version minor. Targets are known by major.minor version only, so a
    specifier that names micro versions refuses only when no ``X.Y.z`` can satisfy it.
    """
    check_layout(plan, lambda scheme: tgt.scheme_root(scheme, plan.name))
    if plan.requires_python and not ignore_requires_python:
        major, minor = tgt.version
        if plan.python_admits is not None and (major, minor) in PYTHONS:
            admitted = f"{major}.{minor}" in plan.python_admits
        else:
            admitted = python_admitted(plan.requires_python, major, minor)
        if not admitted:
            from ._names import shown
            from .errors import IncompatibleWheel

            raise IncompatibleWheel(
                f"{shown(plan.filename)} requires Python {shown(plan.requires_python)}; "
                f"the target is Python {major}.{minor}",
                "use --ignore-requires-python to install it anyway",
            )
    if plan.newer_wheel_version:
        from ._names import shown

        return (
            f"{shown(plan.filename)} has Wheel-Version {shown(plan.wheel_version)}, newer than "
            "this installer implements; installing it anyway"
        )
    return None
