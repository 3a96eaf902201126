"""The wheel boundary: names, zip headers, metadata claims and RECORD, tried as an attacker would.

Every refusal is checked as a user sees it (one ``safelink: error:`` line, exit 1, the
whole tree around venv, cache and wheels unchanged: see ``test_hostile_wheels.refuse``),
and no message carries a control character from the wheel.
"""

# ruff: noqa: F811  (the ``box`` fixture comes from test_hostile_wheels)
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import safelink
from conftest import run_cli, site_packages, tree
from safelink._names import MAX_DEPTH, check_member_name, name_problem, shown
from safelink._record import parse_record, render_record
from safelink.errors import IncompatibleWheel, UnsafeWheel
from test_hostile_wheels import Box, box, patch_central, patch_local, refuse  # noqa: F401
from wheelmaker import make_wheel, record_hash

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
"""What must never reach a terminal from a wheel (a message's own final newline aside)."""


def _clean_output(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    bad = _CONTROL.search(proc.stderr + proc.stdout)
    assert bad is None, f"control character {bad.group()!r} in {proc.stderr!r}"
    assert len(proc.stderr.splitlines()) <= 1, proc.stderr


# -- 12.4: control characters in member names; RECORD round-trips every accepted name -------

CONTROLS = ["\r", "\n", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\x01", "\t"]


@pytest.mark.parametrize("ch", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
def test_control_character_in_member_name_is_refused(box: Box, ch: str) -> None:
    name = f"demo/a{ch}b.py"
    whl = make_wheel(box.wheels, files={"demo/__init__.py": b"", name: b"x = 1\n"})
    line = refuse(box, whl, f"unsafe member {name!r}: contains ")
    assert _CONTROL.search(line) is None


def test_carriage_return_cannot_forge_a_record_row(box: Box) -> None:
    """A bare CR in a member name used to split the written RECORD row (csv before 3.13),
    so that uninstalling the attacker's distribution deleted the victim's files."""
    victim = make_wheel(box.wheels, "victim", "1.0", {"victim/core.py": b"KEEP = 1\n"})
    run_cli("install", "--python", str(box.venv), str(victim), check=True)
    forged = "evil/x\rvictim/core.py"
    whl = make_wheel(box.wheels, "evil", "1.0", {"evil/__init__.py": b"", forged: b""})
    before = tree(box.venv)
    proc = run_cli("install", "--python", str(box.venv), str(whl))
    assert proc.returncode == 1 and "contains the control character \\r" in proc.stderr
    _clean_output(proc)
    assert tree(box.venv) == before
    run_cli("uninstall", "--python", str(box.venv), "victim", check=True)
    assert not (site_packages(box.venv) / "victim").exists()


_NAME_CHARS = st.characters(blacklist_categories=("Cs",), max_codepoint=0x3000)
_PARTS = st.one_of(
    st.text(_NAME_CHARS, min_size=1, max_size=8),
    st.sampled_from(["\r", "\n", "\x1b[2J", "\x85", ",", '"', "a,b", '"x"', " ", "\u2028"]),
)
_NAMES = st.lists(_PARTS, min_size=1, max_size=5).map("/".join)


@settings(max_examples=400, deadline=None, database=None)
@given(_NAMES)
def test_accepted_names_round_trip_refused_names_give_one_line(name: str) -> None:
    try:
        check_member_name("demo-1.0-py3-none-any.whl", name)
    except UnsafeWheel as exc:
        text = str(exc)
        assert text.startswith("demo-1.0-py3-none-any.whl: unsafe member ")
        assert _CONTROL.search(text) is None and "\n" not in text
        return
    assert name_problem(name) is None
    rows = [(name, record_hash(name.encode("utf-8", "surrogatepass")), "7"), ("b.py", "", "")]
    assert [tuple(r) for r in parse_record(render_record(rows))] == rows
    # pip and installer read RECORD with the csv module: they must read the same rows.
    import csv
    import io

    reread = list(csv.reader(io.StringIO(render_record(rows), newline="")))
    assert [tuple(r) for r in reread] == rows


@pytest.mark.parametrize(
    ("name", "shown_as"),
    [
        ("plain.whl", "plain.whl"),
        ("caf\u00e9.whl", "caf\u00e9.whl"),
        ("a\nb", "a\\nb"),
        ("a\rb", "a\\rb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("x\u202ey", "x\\u202ey"),
        ("\x9bq", "\\x9bq"),
        ("bad\udc80byte", "bad\\udc80byte"),
    ],
)
def test_shown_escapes_what_a_terminal_would_act_on(name: str, shown_as: str) -> None:
    assert shown(name) == shown_as
    assert shown(shown(name)) == shown(name)


# -- 12.5: zip headers no wheel uses; trees too deep ------------------------------------------


@pytest.mark.parametrize(
    ("bit", "what"),
    [(5, "compressed patched data"), (6, "strong encryption"), (13, "an encrypted directory")],
)
def test_zip_flag_bits_are_one_clear_error(box: Box, bit: int, what: str) -> None:
    whl = make_wheel(box.wheels)
    for patch in (patch_central, patch_local):
        patch(whl, "demo.py", 8 if patch is patch_central else 6, "<H", 1 << bit)
    refuse(box, whl, f"member 'demo.py' uses {what} (zip flag bit {bit})")


def test_zip_version_needed_above_63_is_one_clear_error(box: Box) -> None:
    whl = make_wheel(box.wheels)
    patch_central(whl, "demo.py", 6, "<H", 64)
    patch_local(whl, "demo.py", 4, "<H", 64)
    refuse(box, whl, "zip file version 6.4")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1200])
def test_deep_trees_are_refused(box: Box, depth: int) -> None:
    name = "demo/" + "d/" * (depth - 2) + "x.py"
    assert name.count("/") + 1 == depth
    whl = make_wheel(box.wheels, files={"demo/__init__.py": b"", name: b""})
    refuse(box, whl, f"is nested {depth} levels deep, more than {MAX_DEPTH}")


def test_deepest_accepted_tree_installs_and_uninstalls(box: Box) -> None:
    name = "demo/" + "d/" * (MAX_DEPTH - 2) + "x.py"
    whl = make_wheel(box.wheels, files={"demo/__init__.py": b"", name: b"X = 1\n"})
    run_cli("install", "--python", str(box.venv), str(whl), check=True)
    assert (site_packages(box.venv) / name).read_bytes() == b"X = 1\n"
    run_cli("uninstall", "--python", str(box.venv), "demo", check=True)
    assert not (site_packages(box.venv) / "demo").exists()


# -- 12.6: no message carries a control character from a wheel --------------------------------


def _ep_wheel(d: Path, eps: str) -> Path:
    return make_wheel(d, files={"demo.py": b"def main(): pass\n"}, entry_points=eps)


_METADATA = "demo-1.0.dist-info/METADATA"
HOSTILE = {
    "member": lambda d: make_wheel(d, files={"demo/\x1b]0;pwned\x07.py": b""}),
    "filename-build-tag": lambda d: make_wheel(
        d, filename="demo-1.0-1\x1b[2K\rok-py3-none-any.whl"
    ),
    "filename-newline": lambda d: make_wheel(
        d, filename="demo-1.0-1\nsafelink: ok-py3-none-any.whl"
    ),
    "filename-platform-tag": lambda d: make_wheel(d, filename="demo-1.0-py3-none-\x1b[2Jx.whl"),
    "entry-point-name": lambda d: _ep_wheel(d, "[console_scripts]\nx\x1b[31m = demo:main\n"),
    "entry-point-value": lambda d: _ep_wheel(d, "[console_scripts]\nx = demo:\x1b[31mmain\n"),
    "entry-points-syntax": lambda d: _ep_wheel(d, "[console_scripts\x1b[2J\nx = demo:main\n"),
    "metadata-name": lambda d: make_wheel(
        d, files={"demo.py": b"", _METADATA: b"Name: demo\x1b[8m\nVersion: 1.0\n"}
    ),
    "metadata-version": lambda d: make_wheel(
        d, files={"demo.py": b"", _METADATA: b"Name: demo\nVersion: 1.0\x9b2J\n"}
    ),
    "requires-dist": lambda d: make_wheel(
        d,
        files={
            "demo.py": b"",
            "demo-1.0.dist-info/METADATA": b"Name: demo\nVersion: 1.0\nRequires-Dist: a\x1b[2J b\n",
        },
    ),
    "requires-python": lambda d: make_wheel(
        d,
        files={
            "demo.py": b"",
            "demo-1.0.dist-info/METADATA": b"Name: demo\nVersion: 1.0\nRequires-Python: >=9\x1b\n",
        },
    ),
    "record-path": lambda d: make_wheel(
        d, record_filter=lambda rows: [*rows, ("demo/\u2028x.py", record_hash(b""), "0")]
    ),
    "dist-info-dir": lambda d: make_wheel(d, dist_info="demo-1.0\x85.dist-info"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_no_message_carries_a_control_character(box: Box, kind: str) -> None:
    whl = HOSTILE[kind](box.wheels)
    before = tree(box.top)
    proc = run_cli("install", "--python", str(box.venv), str(whl))
    assert proc.returncode == 1, proc.stderr
    _clean_output(proc)
    assert proc.stderr.startswith("safelink: error: ")
    assert not (site_packages(box.venv) / "demo.py").exists()
    assert {k for k in tree(box.top) if "venv" in k} == {k for k in before if "venv" in k}


# -- 12.8: the wheel's own claims ------------------------------------------------------------


def _meta(text: str, **kw: object) -> dict[str, object]:
    return {"files": {"demo.py": b"x = 1\n", "demo-1.0.dist-info/METADATA": text.encode()}, **kw}


@pytest.mark.parametrize(
    ("metadata", "expect"),
    [
        ("Name: other\nVersion: 1.0\n", "METADATA says Name 'other', the file name says 'demo'"),
        ("Version: 1.0\n", "METADATA says Name '', the file name says 'demo'"),
        ("Name: demo\nVersion: 1.1\n", "METADATA says Version '1.1', the file name says '1.0'"),
        ("Name: demo\nVersion: one\n", "METADATA says Version 'one'"),
        ("Name: demo\n", "METADATA says Version ''"),
        (
            "Name: demo\nVersion: 1.0\nRequires-Dist: foo (>=1.0\n",
            "invalid metadata: Requires-Dist 'foo (>=1.0' does not parse",
        ),
        (
            "Name: demo\nVersion: 1.0\nRequires-Dist: ok\nRequires-Dist: bar;;\n",
            "invalid metadata: Requires-Dist 'bar;;' does not parse",
        ),
        (
            "Name: demo\nVersion: 1.0\nRequires-Python: >=3.8,<<4\n",
            "invalid metadata: Requires-Python '>=3.8,<<4' does not parse",
        ),
    ],
)
def test_metadata_must_match_and_parse(box: Box, metadata: str, expect: str) -> None:
    whl = make_wheel(box.wheels, **_meta(metadata))  # type: ignore[arg-type]
    refuse(box, whl, expect)


def test_metadata_missing(box: Box) -> None:
    whl = make_wheel(
        box.wheels,
        files={"demo.py": b""},
        record_filter=lambda rows: [r for r in rows if "METADATA" not in r[0]],
    )
    # make_wheel always writes METADATA: take it out of the archive too.
    import zipfile

    src = zipfile.ZipFile(whl)
    out = whl.with_suffix(".tmp")
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith("/METADATA"):
                dst.writestr(info, src.read(info))
    src.close()
    out.replace(whl)
    refuse(box, whl, "missing demo-1.0.dist-info/METADATA")


@pytest.mark.parametrize(
    ("project", "metadata_name", "metadata_version", "version"),
    [
        ("demo_pkg", "Demo.Pkg", "1.0", "1.0"),
        ("demo_pkg", "demo-pkg", "1.0.0", "1.0"),
        ("demo_pkg", "DEMO_PKG", "1.0.post0", "1.0.post0"),
    ],
)
def test_normalized_names_and_versions_match(
    box: Box, project: str, metadata_name: str, metadata_version: str, version: str
) -> None:
    meta = f"Metadata-Version: 2.1\nName: {metadata_name}\nVersion: {metadata_version}\n"
    whl = make_wheel(
        box.wheels, project, version,
        {f"{project}.py": b"", f"{project}-{version}.dist-info/METADATA": meta.encode()},
    )
    run_cli("install", "--python", str(box.venv), str(whl), check=True)


def _requires_python(box: Box, spec: str) -> Path:
    meta = f"Name: demo\nVersion: 1.0\nRequires-Python: {spec}\n"
    return make_wheel(box.wheels, **_meta(meta))  # type: ignore[arg-type]


def test_requires_python_is_checked_against_the_target(box: Box) -> None:
    import sys

    whl = _requires_python(box, ">=4")
    major, minor = sys.version_info[:2]
    expect = (
        f"safelink: error: demo-1.0-py3-none-any.whl requires Python >=4; the target is "
        f"Python {major}.{minor} (use --ignore-requires-python to install it anyway)"
    )
    before = tree(box.venv)
    for _ in ("cold cache", "warm cache"):  # the wheel itself is valid: it stays cached
        proc = run_cli("install", "--python", str(box.venv), str(whl))
        assert proc.returncode == 1 and proc.stderr.splitlines() == [expect], proc.stderr
        assert tree(box.venv) == before
    proc = run_cli("install", "--python", str(box.venv), "--ignore-requires-python", str(whl))
    assert proc.returncode == 0, proc.stderr
    assert (site_packages(box.venv) / "demo.py").exists()


def test_requires_python_through_the_api(box: Box) -> None:
    import sys

    major, minor = sys.version_info[:2]
    whl = _requires_python(box, f"<{major}.{minor},>=3")
    with pytest.raises(IncompatibleWheel, match="requires Python"):
        safelink.install([whl], box.venv, cache=box.cache)
    assert not (site_packages(box.venv) / "demo.py").exists()
    safelink.install([whl], box.venv, cache=box.cache, ignore_requires_python=True)
    assert (site_packages(box.venv) / "demo.py").exists()


@pytest.mark.parametrize("spec", [">=3", ">=3.0.1", "~=3.{minor}.0", "==3.{minor}.*", "!=2.7.*"])
def test_requires_python_that_admits_the_target_installs(box: Box, spec: str) -> None:
    import sys

    whl = _requires_python(box, spec.format(minor=sys.version_info[1]))
    run_cli("install", "--python", str(box.venv), str(whl), check=True)


def _wheel_version(box: Box, wv: str) -> Path:
    wheel_file = f"Wheel-Version: {wv}\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    return make_wheel(
        box.wheels, files={"demo.py": b"x = 1\n", "demo-1.0.dist-info/WHEEL": wheel_file.encode()}
    )


@pytest.mark.parametrize("wv", ["2.0", "10.1"])
def test_greater_wheel_version_major_aborts(box: Box, wv: str) -> None:
    refuse(box, _wheel_version(box, wv), f"Wheel-Version {wv} is not supported")


@pytest.mark.parametrize("wv", ["", "one", "1.x", "1.0beta", "-1.0", "\u0661.0"])
def test_unparseable_wheel_version_is_refused(box: Box, wv: str) -> None:
    refuse(box, _wheel_version(box, wv), "WHEEL has no valid Wheel-Version")


@pytest.mark.parametrize(
    ("wv", "warns"),
    [("0.1", False), ("1.0", False), ("1", False), ("1.0.0", False), ("1.9", True), ("1.10", True)],
)
def test_older_and_newer_minor_wheel_versions_install(box: Box, wv: str, warns: bool) -> None:
    whl = _wheel_version(box, wv)
    for _ in range(2):  # the warning is repeated on a warm cache, like pip's
        proc = run_cli("install", "--python", str(box.venv), str(whl))
        assert proc.returncode == 0, proc.stderr
        warning = (
            f"safelink: warning: demo-1.0-py3-none-any.whl has Wheel-Version {wv}, newer than "
            "this installer implements; installing it anyway"
        )
        assert proc.stderr.splitlines() == ([warning] if warns else [])
    assert (site_packages(box.venv) / "demo.py").read_bytes() == b"x = 1\n"


@pytest.mark.parametrize(("wv", "warns"), [("2.0", False), ("2.1", False), ("2.2", True)])
def test_the_supported_wheel_version_has_one_home(
    box: Box, wv: str, warns: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refusal (major) and warning (minor) follow the one constant in ``_wheel``."""
    from safelink import _wheel

    monkeypatch.setattr(_wheel, "SUPPORTED_WHEEL_VERSION", (2, 1))
    report = safelink.install([_wheel_version(box, wv)], box.venv)
    newer = [w for w in report.warnings if "Wheel-Version" in w]
    assert newer == (
        [f"demo-1.0-py3-none-any.whl has Wheel-Version {wv}, newer than this installer "
         "implements; installing it anyway"] if warns else []
    )


# -- 12.1: an installed RECORD is untrusted input ----------------------------------------------

BAD_RECORDS = {
    "invalid-utf8": b"demo/\xff\xfe.py,,\n",
    "over-field-limit": b"demo/" + b"x" * 200_000 + b".py,,\n",
    "arabic-indic-size": "demo/mod.py,sha256=abc,\u0661\u0662\n".encode(),
    "superscript-size": "demo/mod.py,sha256=abc,\u00b2\n".encode(),
    "nul-in-hash": b"demo/mod.py,sha256=\x00abc,6\n",
    "nul-in-size": b"demo/mod.py,sha256=abc,6\x00\n",
    "stray-quote": b'demo/mod.py,"sha256=abc,6\n',
    "two-fields": b"demo/mod.py,sha256=abc\n",
}
_WHY = {
    "invalid-utf8": "not UTF-8",
    "over-field-limit": "a field is longer than 131,072",
    "arabic-indic-size": "size '\u0661\u0662' of 'demo/mod.py' is not a number",
    "superscript-size": "size '\u00b2' of 'demo/mod.py' is not a number",
    "nul-in-hash": "hash 'sha256=\\x00abc' of 'demo/mod.py' is not algo=digest",
    "nul-in-size": "size '6\\x00' of 'demo/mod.py' is not a number",
    "stray-quote": "stray quote",
    "two-fields": "has 2 fields, expected path,hash,size",
}


def _poisoned_install(box: Box, kind: str) -> tuple[Path, Path]:
    whl = make_wheel(box.wheels, files={"demo/__init__.py": b"", "demo/mod.py": b"x = 1\n"})
    run_cli("install", "--python", str(box.venv), str(whl), check=True)
    record = site_packages(box.venv) / "demo-1.0.dist-info" / "RECORD"
    mode = record.stat().st_mode
    os.chmod(record, mode | 0o200)
    with record.open("ab") as f:
        f.write(BAD_RECORDS[kind])
    os.chmod(record, mode)
    return whl, record


@pytest.mark.parametrize("kind", sorted(BAD_RECORDS))
def test_malformed_installed_record_is_one_line_everywhere(box: Box, kind: str) -> None:
    whl, record = _poisoned_install(box, kind)
    expect = f"malformed RECORD {record}: "
    before = tree(box.top)
    for args in (
        ("uninstall", "--python", str(box.venv), "demo"),
        ("install", "--python", str(box.venv), str(whl)),  # install over it
    ):
        proc = run_cli(*args)
        _clean_output(proc)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith(f"safelink: error: {expect}"), proc.stderr
        assert _WHY[kind] in proc.stderr, proc.stderr
        assert tree(box.top) == before
    proc = run_cli("verify", "--env", str(box.venv))
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert _WHY[kind] in proc.stdout, proc.stdout
    assert tree(box.top) == before


# -- 13: entry points win over scripts of the same name; RECORD lists a path once --------------

SHADOWED = ["tool", "tool.EXE", "tool-Script.py", "tool.pya"]


def test_entry_point_launchers_win_over_data_scripts(box: Box) -> None:
    files = {"demo/__init__.py": b"def main(): pass\n"}
    for name in SHADOWED:
        files[f"demo-1.0.data/scripts/{name}"] = b"#!/bin/sh\necho shadowed\n"
    files["demo-1.0.data/scripts/other"] = b"#!/bin/sh\necho other\n"
    files["demo-1.0.data/scripts/toolbox"] = b"#!/bin/sh\necho toolbox\n"
    whl = make_wheel(
        box.wheels, files=files, entry_points="[console_scripts]\ntool = demo:main\n"
    )
    run_cli("install", "--python", str(box.venv), str(whl), check=True)
    bin_dir = box.venv / "bin"
    assert b"echo shadowed" not in (bin_dir / "tool").read_bytes()
    assert b"from demo import main" in (bin_dir / "tool").read_bytes()
    for name in SHADOWED[1:]:
        assert not (bin_dir / name).exists(), name
    assert (bin_dir / "other").read_bytes() == b"#!/bin/sh\necho other\n"
    assert (bin_dir / "toolbox").exists()
    record = site_packages(box.venv) / "demo-1.0.dist-info" / "RECORD"
    paths = [r.path for r in parse_record(record.read_text(encoding="utf-8"))]
    assert len(paths) == len(set(paths)), sorted(paths)
    scripts = sorted(p.rsplit("/", 1)[1] for p in paths if p.startswith("../"))
    assert scripts == ["other", "tool", "toolbox"]
    proc = run_cli("verify", "--env", str(box.venv))
    assert proc.returncode == 0, proc.stdout
    run_cli("uninstall", "--python", str(box.venv), "demo", check=True)
    assert not (bin_dir / "tool").exists() and not (bin_dir / "other").exists()


@pytest.mark.parametrize(
    ("files", "eps", "expect"),
    [
        (
            {"demo.py": b"a\n", "demo-1.0.data/purelib/demo.py": b"b\n"},
            None,
            "two files would be installed at 'demo.py' in purelib",
        ),
        (
            {"demo.py": b"", "demo-1.0.data/purelib/demo-1.0.dist-info/INSTALLER": b"pip\n"},
            None,
            "two files would be installed at 'demo-1.0.dist-info/INSTALLER' in purelib",
        ),
        (
            {"demo.py": b"def main(): pass\n"},
            "[console_scripts]\nrun = demo:main\n[gui_scripts]\nrun = demo:main\n",
            "two files would be installed at 'run' in scripts",
        ),
    ],
)
def test_two_files_for_one_path_are_refused(
    box: Box, files: dict[str, bytes], eps: str | None, expect: str
) -> None:
    refuse(box, make_wheel(box.wheels, files=files, entry_points=eps), expect)


def test_data_file_landing_on_a_package_file_is_refused_and_rolled_back(box: Box) -> None:
    site = site_packages(box.venv).relative_to(box.venv)
    files = {"demo.py": b"A = 1\n", f"demo-1.0.data/data/{site}/demo.py": b"B = 2\n"}
    whl = make_wheel(box.wheels, files=files)
    before = tree(box.venv)
    proc = run_cli("install", "--python", str(box.venv), str(whl))
    _clean_output(proc)
    assert proc.returncode == 1
    clash = site_packages(box.venv) / "demo.py"
    assert f"two files would be installed at {clash} (" in proc.stderr
    assert tree(box.venv) == before


def test_compiled_bytecode_takes_over_the_row_of_a_shipped_pyc(box: Box) -> None:
    """A wheel that ships ``__pycache__/mod.<tag>.pyc``, installed with ``--compile``: the
    compiled file replaces it on disk, and RECORD lists the path once, with its hash."""
    import sys

    pyc = f"demo/__pycache__/mod.{sys.implementation.cache_tag}.pyc"
    files = {"demo/__init__.py": b"", "demo/mod.py": b"X = 1\n", pyc: b"not bytecode"}
    whl = make_wheel(box.wheels, files=files)
    run_cli("install", "--python", str(box.venv), "--compile", str(whl), check=True)
    site = site_packages(box.venv)
    record = site / "demo-1.0.dist-info" / "RECORD"
    rows = parse_record(record.read_text(encoding="utf-8"))
    paths = [r.path for r in rows]
    assert len(paths) == len(set(paths)), sorted(paths)
    (row,) = [r for r in rows if r.path == pyc]
    assert row.hash == record_hash((site / pyc).read_bytes()) != record_hash(b"not bytecode")
    proc = run_cli("verify", "--env", str(box.venv))
    assert proc.returncode == 0, proc.stdout


def test_warm_install_checks_requires_python_without_importing_packaging(box: Box) -> None:
    """The answer for common interpreters is stored in the plan at admission."""
    import sys

    whl = _requires_python(box, ">=3.8,!=3.9.1")
    run_cli("install", "--python", str(box.venv), str(whl), check=True)
    code = (
        "import sys, safelink\n"
        "safelink.install([sys.argv[1]], sys.argv[2], cache=sys.argv[3])\n"
        "print(sorted(m for m in sys.modules if m.startswith('packaging.specifiers')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(whl), str(box.venv), str(box.cache)],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
