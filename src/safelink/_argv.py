"""``safelink install ...`` read without argparse, when it is spelled plainly.

Importing argparse (with gettext, locale and re) and building a parser costs more
start-up time than a warm install of a small wheel spends installing. Most command
lines are plain: exact long option names, ``--name value`` or ``--name=value``, the
wheel files in one run. :func:`install_args` reads those and gives the namespace
argparse would give; for anything else (help, an abbreviation, a value that looks
like an option, combined short flags, ``--``, a second run of wheel files, anything
argparse would refuse) it returns None and the CLI asks argparse, so help, errors
and every corner of argparse's grammar stay argparse's. ``tests/test_startup.py``
checks the table below against the install parser and both readings against each
other.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable


def parse_size(text: str) -> int:
    """``--max-unpacked-size``: bytes, with an optional k/m/g/t (KiB...) suffix, ``B``
    and ``iB`` allowed. Raises ValueError for anything else, a number that is not a
    byte count included (negative, ``inf``, ``nan``, ``1e400``: not a size)."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    t = text.strip().lower().rstrip("b").rstrip("i")
    mult = units.get(t[-1:], 1)
    num = t[:-1] if t[-1:] in units else t
    size = float(num) * mult
    if not 0 <= size < 2**63:  # also false for nan
        raise ValueError(f"not a size: {text!r}")
    return int(size)


def default_link_mode() -> str:
    """``--link-mode``'s default: ``$SAFELINK_LINK_MODE``, else auto."""
    return os.environ.get("SAFELINK_LINK_MODE", "auto")


FLAG, COUNT, VALUE, APPEND = "flag", "count", "value", "append"

INSTALL_OPTIONS: dict[str, tuple[str, str]] = {
    "--python": ("python", VALUE),
    "--prefix": ("prefix", VALUE),
    "--target": ("target", VALUE),
    "--system": ("system", FLAG),
    "--break-system-packages": ("break_system_packages", FLAG),
    "--lock-timeout": ("lock_timeout", VALUE),
    "--cache-dir": ("cache_dir", VALUE),
    "-q": ("quiet", FLAG),
    "--quiet": ("quiet", FLAG),
    "-v": ("verbose", COUNT),
    "--verbose": ("verbose", COUNT),
    "--json": ("json", FLAG),
    "-r": ("requirement", VALUE),
    "--requirement": ("requirement", VALUE),
    "--extras": ("extras", APPEND),
    "--extra": ("extras", APPEND),
    "--group": ("group", APPEND),
    "--dry-run": ("dry_run", FLAG),
    "--reinstall": ("reinstall", FLAG),
    "--offline": ("offline", FLAG),
    "--link-mode": ("link_mode", VALUE),
    "--allow-fallback": ("allow_fallback", FLAG),
    "--guard": ("guard", VALUE),
    "--compile": ("compile", FLAG),
    "--force": ("force", FLAG),
    "--ignore-requires-python": ("ignore_requires_python", FLAG),
    "--threads": ("threads", VALUE),
    "--no-deps": ("no_deps", FLAG),
    "--max-unpacked-size": ("max_unpacked_size", VALUE),
}
"""Every option string of ``install``: where its value goes and how it is read."""

_TYPES: dict[str, Callable[[str], object]] = {
    "lock_timeout": float,
    "threads": int,
    "max_unpacked_size": parse_size,
}
_CHOICES = {"guard": ("off", "check", "strict")}
_EXCLUSIVE = ("prefix", "target", "system")


def install_defaults() -> dict[str, object]:
    """What ``safelink install`` with no options means."""
    return {
        "command": "install",
        "wheels": [],
        "python": None,
        "prefix": None,
        "target": None,
        "system": False,
        "break_system_packages": False,
        "lock_timeout": None,
        "cache_dir": None,
        "quiet": False,
        "verbose": 0,
        "json": False,
        "requirement": None,
        "extras": [],
        "group": None,
        "dry_run": False,
        "reinstall": False,
        "offline": False,
        "link_mode": default_link_mode(),
        "allow_fallback": False,
        "guard": "check",
        "compile": False,
        "force": False,
        "ignore_requires_python": False,
        "threads": None,
        "no_deps": False,
        "max_unpacked_size": None,
    }


def install_args(argv: list[str]) -> argparse.Namespace | None:
    """The namespace argparse gives for ``argv`` (``["install", ...]``), or None when
    the line is not plain (then argparse must read it)."""
    if not argv or argv[0] != "install":
        return None
    ns = install_defaults()
    wheels: list[str] | None = None  # the one run of wheel files
    in_run = False
    exclusive: set[str] = set()
    i, n = 1, len(argv)
    while i < n:
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            if wheels is not None and not in_run:
                return None  # a second run: argparse's own rules decide
            if wheels is None:
                wheels = []
            wheels.append(arg)
            in_run = True
            continue
        in_run = False
        value: str | None = None
        if arg.startswith("--") and "=" in arg:
            arg, value = arg.split("=", 1)
            if not value:
                return None
        spec = INSTALL_OPTIONS.get(arg)
        if spec is None:
            return None  # help, an abbreviation, an unknown option, "--", "-qv"...
        dest, kind = spec
        if kind in (FLAG, COUNT):
            if value is not None:
                return None
            ns[dest] = True if kind == FLAG else int(ns[dest]) + 1  # type: ignore[call-overload]
        else:
            if value is None:
                if i >= n or argv[i].startswith("-"):
                    return None
                value = argv[i]
                i += 1
            if dest in _CHOICES and value not in _CHOICES[dest]:
                return None
            converted: object = value
            if dest in _TYPES:
                try:
                    converted = _TYPES[dest](value)
                except Exception:
                    return None  # argparse says what is wrong
            if kind == APPEND:
                ns[dest] = [*(ns[dest] or []), converted]  # type: ignore[misc]
            else:
                ns[dest] = converted
        if dest in _EXCLUSIVE:
            exclusive.add(dest)
            if len(exclusive) > 1:
                return None
    if wheels is not None:
        ns["wheels"] = wheels
    # the attributes argparse's Namespace would have (argparse is not imported)
    return SimpleNamespace(**ns)  # type: ignore[return-value]
