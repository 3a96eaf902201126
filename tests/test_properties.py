"""Property-based tests (hypothesis) for the untrusted-wheel path checks.

1. ``check_member_name`` either refuses a name or returns a relative path that,
   joined to any root, stays inside it on POSIX *and* Windows and is spelled
   exactly as in the archive (nothing is silently rewritten).
2. Installing a wheel made of random safe names puts each file exactly where
   its scheme says and creates nothing else, inside or outside the target.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import safelink
from conftest import tree
from safelink._environment import flat_target
from safelink._names import check_member_name
from safelink.errors import UnsafeWheel
from wheelmaker import make_wheel

# -- 1. member names ---------------------------------------------------------------------------

_TRICKY = [
    "..",
    ".",
    "",
    "/",
    "\\",
    "\x00",
    "C:",
    "c:",
    "C:\\",
    "\\\\server\\share",
    "~",
    " ",
    "...",
    ".. ",
    "..\u2215",
    "\u2025",
    "\uff0e\uff0e",
    "e\u0301",
    "\u00e9",
    "\u202e",
    "a",
    "b.py",
    "%2e%2e",
    "\ud800",
]
segments = st.one_of(st.sampled_from(_TRICKY), st.text(max_size=6))
names = st.one_of(
    st.lists(segments, max_size=8).map("/".join),
    st.lists(segments, max_size=8).map("\\".join),
    st.lists(segments, max_size=6).map("".join),
    st.text(max_size=40),
)

ROOT = "/srv/root/site-packages"


@settings(max_examples=200, deadline=None, database=None)
@given(names)
def test_check_member_name_is_safe_or_refuses(name: str) -> None:
    try:
        check_member_name("x-1.0-py3-none-any.whl", name)
    except UnsafeWheel as exc:
        assert "x-1.0-py3-none-any.whl: unsafe member" in str(exc)
        assert "\n" not in str(exc)  # the CLI prints it as one line
        return
    # Not rewritten: what is checked is what will be written.
    s = name[:-1] if name.endswith("/") else name
    rel = PurePosixPath(s)
    assert str(rel) == s
    assert not rel.is_absolute() and ".." not in rel.parts and "." not in s.split("/")
    assert "\x00" not in s and "\\" not in s
    joined = posixpath.normpath(posixpath.join(ROOT, s))
    assert joined.startswith(ROOT + "/")
    assert ".." not in PurePosixPath(joined).parts
    # And on Windows, where "\\" and drive letters also mean something.
    win = PureWindowsPath(s)
    assert not win.drive and not win.root and ".." not in win.parts


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.sampled_from(["..", ".", ""]), min_size=1, max_size=4), st.text(max_size=8))
def test_dot_components_always_refused(dots: list[str], tail: str) -> None:
    name = "/".join(["pkg", *dots, tail or "x"])
    try:
        check_member_name("x-1.0-py3-none-any.whl", name)
    except UnsafeWheel:
        return
    raise AssertionError(f"accepted {name!r}")


# -- 2. installing random safe names -----------------------------------------------------------

_SAFE_CHARS = st.characters(
    whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="_-.+~ ", max_codepoint=0x2FF
)
part = (
    st.text(_SAFE_CHARS, min_size=1, max_size=10)
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(lambda s: s not in (".", "..") and not s.endswith((".dist-info", ".data")))
)
rel_paths = st.lists(part, min_size=1, max_size=3).map("/".join)
SCHEMES = ("purelib", "platlib", "scripts", "headers", "data")
members = st.lists(
    st.tuples(st.sampled_from((None, *SCHEMES)), rel_paths, st.binary(max_size=64)),
    min_size=1,
    max_size=12,
)


def _fold(path: str) -> str:
    return unicodedata.normalize("NFC", path).casefold()


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(members)
def test_random_safe_wheel_lands_only_in_scheme_dirs(
    items: list[tuple[str | None, str, bytes]],
) -> None:
    files: dict[str, bytes] = {}
    placed: list[tuple[str, str, bytes]] = []  # (scheme, rel, data)
    for scheme, rel, data in items:
        if scheme == "scripts":
            rel = rel.replace("/", "_")  # scripts are flat
        name = f"demo-1.0.data/{scheme}/{rel}" if scheme else rel
        files[name] = data
        placed.append((scheme or "purelib", rel, data))
    # Keep wheels that are valid: no two members (or destinations, which a flat target
    # shares between purelib, platlib and data) equal or nested after case-folding.
    folded = [_fold(n) for n in files]
    assume(len(set(folded)) == len(folded) == len(placed))
    assume(not any(b.startswith(a + "/") for a in folded for b in folded))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        target = base / "target"
        tgt = flat_target(str(target))
        dests = {os.path.join(tgt.scheme_root(sc, "demo"), rel): d for sc, rel, d in placed}
        fd = [_fold(d) for d in dests]
        assume(len(dests) == len(placed) and len(set(fd)) == len(fd))
        assume(not any(b.startswith(a + "/") for a in fd for b in fd))
        assume(
            not any(_fold(d).startswith(_fold(str(target / "demo-1.0.dist-info"))) for d in dests)
        )

        wheels = base / "wheels"
        wheels.mkdir()
        whl = make_wheel(wheels, "demo", "1.0", files)
        cache = base / "cache"
        before = {p.name for p in base.iterdir()}
        safelink.install([whl], flat_target=str(target), cache=cache, link_mode="copy")

        assert {p.name for p in base.iterdir()} == before | {"cache", "target"}
        listing = tree(target)
        got_files = {
            str(target / rel)
            for rel, (kind, _m, _d) in listing.items()
            if kind != "dir" and "/__pycache__/" not in rel
        }
        di = str(target / "demo-1.0.dist-info")
        meta = {p for p in got_files if p.startswith(di + "/")}
        assert got_files - meta == set(dests), "files outside the plan"
        for dest, data in dests.items():
            got = Path(dest).read_bytes()
            if dest.startswith(tgt.scripts + "/") and data.startswith(b"#!python"):
                # A "#!python" script gets the target interpreter's shebang (PEP 427).
                first, _, rest = got.partition(b"\n")
                assert first.startswith(b"#!") and b"python" in first
                assert rest == data.partition(b"\n")[2]
            else:
                assert got == data
            assert os.path.realpath(dest).startswith(os.path.realpath(target) + "/")
        assert {os.path.relpath(m, di) for m in meta} == {
            "METADATA",
            "WHEEL",
            "RECORD",
            "INSTALLER",
            "REQUESTED",
            "direct_url.json",
            "safelink.json",
        }
        # Every directory created is a parent of something installed (nothing stray).
        parents = {str(target)}
        for p in got_files:
            d = os.path.dirname(p)
            while d.startswith(str(target)) and d not in parents:
                parents.add(d)
                d = os.path.dirname(d)
        dirs = {str(target / rel) for rel, (kind, _m, _d) in listing.items() if kind == "dir"}
        assert dirs <= parents


def _reference_name_problem(name: str) -> str | None:
    """The component-by-component rule, as written before the fast path: the fast
    path must give the same answer, message included, for every name."""
    import re

    from safelink._names import MAX_DEPTH, MAX_NAME_BYTES

    if "\x00" in name:
        return "contains a NUL byte"
    bad = re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", name)
    if bad:
        return f"contains the control character {repr(bad.group())[1:-1]}"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if re.match(r"^.:", name, re.DOTALL):
        return "starts with a drive prefix"
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    if len(parts) > MAX_DEPTH:
        return f"is nested {len(parts)} levels deep, more than {MAX_DEPTH}"
    for part in parts:
        if part in ("", ".", ".."):
            return "has an empty, '.' or '..' path component"
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            return f"has a path component longer than {MAX_NAME_BYTES} bytes"
    return None


_component = st.one_of(
    st.sampled_from(["", ".", "..", "a", "é", "x" * 255, "x" * 256, "é" * 128, "\u20ac" * 86]),
    st.text(max_size=6),
)


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(_component, min_size=1, max_size=5), st.booleans())
def test_name_problem_fast_path_agrees_with_the_component_rule(
    parts: list[str], trailing_slash: bool
) -> None:
    from safelink._names import name_problem

    name = "/".join(parts) + ("/" if trailing_slash else "")
    assert name_problem(name) == _reference_name_problem(name)


def test_name_problem_depth_and_length_edges() -> None:
    from safelink._names import MAX_DEPTH, name_problem

    for name in ("a/" * (MAX_DEPTH - 1) + "a", "a/" * MAX_DEPTH + "a", "a/" * MAX_DEPTH,
                 "x" * 255, "x" * 256, "é" * 127 + "x", "é" * 128, "", "/", "a//"):
        assert name_problem(name) == _reference_name_problem(name), name


@settings(max_examples=600, deadline=None, database=None)
@given(
    st.lists(
        st.one_of(_component, st.text(alphabet="ab./:\\ \x00\n\x85é-_", max_size=5)),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_all_plain_never_passes_a_name_the_rule_refuses(
    parts: list[str], trailing_slash: bool
) -> None:
    """The whole-list test admission runs first is only ever a shortcut: a name it
    passes is one the per-name rule passes."""
    from safelink._names import all_plain, name_problem

    name = "/".join(parts) + ("/" if trailing_slash else "")
    if all_plain([name]):
        assert name_problem(name) is None
        assert _reference_name_problem(name) is None


def test_all_plain_edges() -> None:
    from safelink._names import MAX_DEPTH, all_plain

    assert all_plain(["a/b.py", "a/", ".libs/x", "x" * 255, "a/..b/.c", "a b/c+d~"])
    for bad in ("..", "a/../b", "a/./b", "a//b", "/a", "a\\b", "c:x", "x" * 256, "é",
                "a\nb", "a/.", "a/..", "a/" * MAX_DEPTH + "a", ""):
        assert not all_plain(["ok", bad]), bad
    assert all_plain(["a/" * (MAX_DEPTH - 1) + "a"])


# -- the archive's member list: the whole-list passes against the member loop ---------------

_MEMBER_NAME = st.lists(
    st.sampled_from(["a", "A", "b", "a.py", "A.py", "b"] * 20
                    + ["..", ".", "", "é", "e\u0301", "c:", "x\\y"]),
    min_size=1,
    max_size=3,
).map("/".join)


def _mostly(usual: object, *rare: object) -> st.SearchStrategy[object]:
    return st.sampled_from([usual] * (25 * len(rare)) + list(rare))


@st.composite
def _infolists(draw: st.DrawFn) -> list:  # type: ignore[type-arg]
    """Member lists of a few names from a small alphabet (so duplicates, case collisions
    and files over directories are common), now and then with an unusual name, type,
    flag, version or compression."""
    import zipfile

    out = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(_MEMBER_NAME) + str(draw(_mostly("", "/")))
        info = zipfile.ZipInfo(name)
        info.orig_filename = name + str(draw(_mostly("", "\x00x")))
        info.create_system = int(draw(_mostly(3, 0)))  # type: ignore[call-overload]
        mode = draw(_mostly(0o100644, 0, 0o100755, 0o40755, 0o120777, 0o10644, 0o170000))
        info.external_attr = int(mode) << 16  # type: ignore[call-overload]
        info.flag_bits = int(draw(_mostly(0, 0x800, 0x8, 0x1, 0x20, 0x40, 0x2000)))  # type: ignore[call-overload]
        info.extract_version = int(draw(_mostly(20, 45, 63, 64)))  # type: ignore[call-overload]
        info.compress_type = int(draw(_mostly(8, 0, 12, 14)))  # type: ignore[call-overload]
        info.file_size = draw(st.integers(0, 10))
        out.append(info)
    return out


@settings(max_examples=1500, deadline=None, database=None)
@given(_infolists())
def test_member_checks_fast_path_agrees_with_the_member_loop(infolist: list) -> None:  # type: ignore[type-arg]
    """Where the whole-list passes answer, the member-by-member loop gives the same
    answer; where the loop refuses the archive, the passes do not answer (and the
    loop, run next, gives the one exact message)."""
    from hypothesis import event

    from safelink._wheel import _read_members, _read_plain

    fast = _read_plain(infolist)
    try:
        slow = _read_members("w.whl", infolist)
    except (UnsafeWheel, safelink.InvalidWheel):
        event("refused")
        assert fast is None
        return
    event("fast path" if fast is not None else "accepted by the loop only")
    if fast is not None:
        assert fast == slow
        assert list(fast[0]) == list(slow[0])  # the same order: members are unpacked in it
