"""Untrusted names and paths: one rule for each, used by admission, uninstall and verify.

A wheel's member names, the paths in a RECORD (the wheel's own, or an installed
one that any installer or wheel may have written), entry-point names and the
wheel's file name are all chosen by whoever made the input. This module decides
which of them are acceptable, whether a path stays inside an environment, and
how a name is shown in a message so that it cannot forge lines on a terminal.
"""

from __future__ import annotations

import os

from .errors import UnsafeWheel

MAX_NAME_BYTES = 255
"""Longest path component (UTF-8 bytes) any common filesystem accepts."""

MAX_DEPTH = 256
"""Most path components a member name may have. Real wheels stay far below it
(the deepest in a corpus of popular wheels has 13); trees thousands of levels deep
only exist to exhaust recursion limits and path buffers."""

_CONTROL = r"[\x00-\x1f\x7f-\x9f\u2028\u2029]"
"""Characters no member name may contain: C0 controls (newline, carriage return,
escape, ...), DEL, C1 controls (U+0085 is a line break, U+009B a terminal escape)
and the two Unicode line separators. A bare carriage return splits a RECORD row in
Python's csv module before 3.13; the rest rewrite a terminal's lines."""
_DRIVE = r"(?s)^.:"
"""A drive prefix: Windows parses any one character before ':' as a drive (``0:x``)."""
_SCRIPT_NAME = r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$"
# (patterns are compiled on first use, by re's own cache: an install from a warm cache
# checks no names, and compiling them all costs start-up time)

REFUSED = "refusing the whole wheel; nothing was written"


def shown(name: str) -> str:
    """*name* as it may appear in a message: printable characters as they are, anything
    else (newline, carriage return, escape, bidi controls, undecodable bytes) as a
    Python escape. A name from a wheel can then never start a new line, move the
    cursor or recolour the terminal."""
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def has_control(name: str) -> bool:
    """Does *name* contain a character no name from a wheel may hold (see _CONTROL)?"""
    import re  # admission only (start-up cost)

    return re.search(_CONTROL, name) is not None


def name_problem(name: str) -> str | None:
    """Why *name* is not a safe relative POSIX path for a wheel member, or None.

    Refuses what could land outside the target on any OS (absolute paths, drive
    letters, backslashes, ``..``), components no filesystem can store (empty,
    ``.``, NUL, longer than 255 bytes), control characters and trees deeper than
    :data:`MAX_DEPTH`. A trailing ``/`` (a directory member) is allowed.
    """
    import re  # admission only (start-up cost)

    if "\x00" in name:
        return "contains a NUL byte"
    bad = re.search(_CONTROL, name)
    if bad:
        return f"contains the control character {repr(bad.group())[1:-1]}"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if re.match(_DRIVE, name):
        return "starts with a drive prefix"
    body = name[:-1] if name.endswith("/") else name
    depth = body.count("/") + 1
    if depth > MAX_DEPTH:
        return f"is nested {depth} levels deep, more than {MAX_DEPTH}"
    # Admission checks every member and RECORD path (tens of thousands per cold install):
    # substring searches at C speed settle the common case, a short ASCII name with
    # plain components; only a suspect name walks its components one by one.
    fenced = f"/{body}/"
    if (
        "//" not in fenced
        and "/./" not in fenced
        and "/../" not in fenced
        and len(body) <= MAX_NAME_BYTES
        and body.isascii()
    ):
        return None
    for part in body.split("/"):
        if part in ("", ".", ".."):
            return "has an empty, '.' or '..' path component"
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            return f"has a path component longer than {MAX_NAME_BYTES} bytes"
    return None


_COMPONENT = rf"(?!\.\.?(?:/|\Z))[ -.0-9;-\[\]-~]{{1,{MAX_NAME_BYTES}}}"
_PLAIN = rf"(?:{_COMPONENT}/)*{_COMPONENT}/?"
"""A plain name: printable ASCII components (no ``/``, ``\\``, ``:``) of 1-255
characters, none ``.`` or ``..``, an optional trailing ``/``: always safe."""


def all_plain(names: list[str]) -> bool:
    """True only if every name passes :func:`name_problem` (a sufficient test, run at C
    speed over the whole list: plain components, fewer than :data:`MAX_DEPTH` slashes).
    False says nothing; the caller then checks name by name for the exact message."""
    import re  # admission only (start-up cost)
    from operator import methodcaller

    if not all(map(re.compile(_PLAIN).fullmatch, names)):
        return False
    return max(map(methodcaller("count", "/"), names), default=0) < MAX_DEPTH


def check_member_name(filename: str, name: str, what: str = "member") -> None:
    """Raise :class:`UnsafeWheel` unless *name* is a safe member name (see
    :func:`name_problem`). *what* names the source (``member`` or ``RECORD path``)."""
    why = name_problem(name)
    if why is not None:
        raise UnsafeWheel(f"{shown(filename)}: unsafe {what} {name!r}: {why}", REFUSED)


def check_entry_point_name(filename: str, name: str) -> None:
    """Raise :class:`UnsafeWheel` unless *name* can be a script's file name as it is."""
    import re  # admission only (start-up cost)

    if not re.match(_SCRIPT_NAME, name) or name in (".", ".."):
        raise UnsafeWheel(
            f"{shown(filename)}: entry point name {name!r} is not a plain file name", REFUSED
        )


def inside(root: str, path: str) -> bool:
    """Is *path*'s parent directory, with symlinks resolved, *root* or below it?

    *root* must already be a real path. The last component is not resolved: a
    symlink inside the environment is removed as a link, never followed.
    """
    parent = os.path.realpath(os.path.dirname(path))
    try:
        return os.path.commonpath([root, parent]) == root
    except ValueError:  # different drives, or a mix of absolute and relative
        return False


def installed_path(site: str, root: str, rel: str) -> str | None:
    """The absolute path of an installed RECORD's path *rel* (relative to *site*, the
    directory that holds the ``.dist-info``), or None when it is not a file inside the
    environment *root* (a real path): absolute, NUL, the root itself, or anything
    whose directory resolves outside it (``..``, a symlinked directory)."""
    if not rel or "\x00" in rel or os.path.isabs(rel):
        return None
    path = os.path.normpath(os.path.join(site, rel))
    if not inside(root, path) or os.path.realpath(path) == root:
        return None
    return path
