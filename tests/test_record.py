"""The RECORD format and exact plan lookups: one parser, one renderer, rows found by path.

Unit tests for ``_record`` (encode, parse, render) and ``Plan`` lookups, plus the
journeys that went wrong when rows were matched by suffix: ``repair --env`` must
restore ``x/pkg/__init__.py`` from its own row, not from ``pkg/__init__.py``'s.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import make_venv, run_cli, site_packages
from safelink import Cache
from safelink._record import (
    FIELD_LIMIT,
    MalformedRecord,
    RecordRow,
    encode_digest,
    hash_of,
    parse_record,
    render_record,
    size_of,
)
from wheelmaker import make_wheel, record_hash


def test_hash_of_matches_the_wheel_spec() -> None:
    assert hash_of(b"x = 1\n") == record_hash(b"x = 1\n")
    assert encode_digest(hashlib.sha256(b"").digest()) == (
        "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
    )


@pytest.mark.parametrize(
    "path",
    ["a.py", "a,b.py", 'q"uote.py', '"lead', "trail,", " sp ace ", "caf\u00e9/\u202e.py", ""],
)
def test_render_then_parse_round_trips(path: str) -> None:
    rows = [(path, "sha256=abc", "12"), ("z.py", "", "")]
    text = render_record(rows)
    assert parse_record(text) == [RecordRow(*r) for r in rows]


def test_render_quotes_like_csv() -> None:
    import csv
    import io

    rows = [("a,b", 'h"x', "1"), ("plain", "sha256=x", "2"), ("c\rd", "", ""), ("e\nf", "", "")]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerows(rows)
    # csv reads back what we render, on every Python version.
    assert [tuple(r) for r in csv.reader(io.StringIO(render_record(rows), newline=""))] == rows
    written = buf.getvalue()
    if '"c\rd"' not in written:  # csv quotes a bare CR itself only from Python 3.13 on
        written = written.replace("c\rd", '"c\rd"')
    assert parse_record(written) == [RecordRow(*r) for r in rows]


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_line_ends_and_blank_lines(eol: str) -> None:
    text = eol.join(["a.py,sha256=x,1", "", "b.py,,"]) + eol
    assert parse_record(text) == [RecordRow("a.py", "sha256=x", "1"), RecordRow("b.py", "", "")]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a.py,sha256=x\n", "row at line 1 has 2 fields"),
        ("ok,,\na,b,c,d\n", "row at line 2 has 4 fields"),
        ('"a.py,sha256=x,1\n', "line 1: stray quote"),
        ('"a"b,,\n', "line 1: stray quote"),
        ("a" * (FIELD_LIMIT + 1) + ",,\n", "longer than"),
        ('"' + "a" * (FIELD_LIMIT + 1) + '",,\n', "longer than"),
    ],
)
def test_malformed_text_is_refused(text: str, why: str) -> None:
    with pytest.raises(MalformedRecord, match=why):
        parse_record(text)


@pytest.mark.parametrize(
    ("field", "size"), [("12", 12), ("0", 0), ("", None), ("\u0661\u0662", None), ("\u00b2", None),
                        ("-1", None), (" 1", None), ("1e3", None)]
)
def test_size_is_ascii_digits_only(field: str, size: int | None) -> None:
    assert size_of(field) == size


# -- exact lookups through the plan --------------------------------------------------------------

NESTED = {
    "pkg/__init__.py": b"OUTER = 1\n",
    "x/pkg/__init__.py": b"INNER = 2\n",
    "y/x/pkg/__init__.py": b"DEEPEST = 3\n",
    "demo-1.0.data/data/share/demo/pkg/__init__.py": b"DATA = 4\n",
}


def test_plan_lookups_are_exact_for_paths_sharing_a_suffix(tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, "demo", "1.0", NESTED)
    plan = Cache(tmp_path / "cache").admit(whl).plan
    for member, data in NESTED.items():
        src, _dst, size, digest, _x = plan.member_row(member)
        assert (src, size, digest) == (member, len(data), record_hash(data))
    assert plan.linked_at("purelib", "x/pkg/__init__.py") == plan.member_row("x/pkg/__init__.py")
    assert plan.linked_at("data", "share/demo/pkg/__init__.py") == plan.member_row(
        "demo-1.0.data/data/share/demo/pkg/__init__.py"
    )
    assert plan.linked_at("purelib", "pkg/__init__") is None
    assert plan.linked_at("purelib", "z/x/pkg/__init__.py") is None
    assert plan.linked_at("data", "pkg/__init__.py") is None
    with pytest.raises(KeyError):
        plan.member_row("__init__.py")


@pytest.mark.parametrize(
    "edited", ["x/pkg/__init__.py", "y/x/pkg/__init__.py", "pkg/__init__.py", "<data>"]
)
def test_repair_env_restores_nested_files_from_their_own_rows(tmp_path: Path, edited: str) -> None:
    """``repair --env`` used to match ``x/pkg/__init__.py`` to ``pkg/__init__.py`` by suffix
    and write the outer file's bytes into the inner one."""
    whl = make_wheel(tmp_path, "demo", "1.0", NESTED)
    cache = tmp_path / "cache"
    env = make_venv(tmp_path / "env")
    run_cli(
        "install", "--cache-dir", str(cache), "--link-mode", "copy", "--python", str(env),
        str(whl), check=True,
    )
    site = site_packages(env)
    where = {m: site / m for m in NESTED if ".data/" not in m}
    where["<data>"] = env / "share" / "demo" / "pkg" / "__init__.py"
    content = {m: NESTED[m] for m in where if m != "<data>"}
    content["<data>"] = NESTED["demo-1.0.data/data/share/demo/pkg/__init__.py"]
    assert {m: p.read_bytes() for m, p in where.items()} == content
    where[edited].write_bytes(b"EDITED = True\n")
    proc = run_cli("repair", "--cache-dir", str(cache), "--env", str(env))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"restored {where[edited]}"]
    assert {m: p.read_bytes() for m, p in where.items()} == content
    proc = run_cli("verify", "--cache-dir", str(cache), "--env", str(env))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_metadata_and_bytecode_do_not_import_each_other() -> None:
    """``_metadata`` needs only the bytecode row type, which lives with the RECORD format
    (it used to import it from ``_bytecode``, even if only for type checking)."""
    import ast

    import safelink

    src = Path(safelink.__file__).parent
    for module, other in (("_metadata", "_bytecode"), ("_bytecode", "_metadata")):
        tree = ast.parse((src / f"{module}.py").read_text(encoding="utf-8"))
        imported = {
            n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
        }
        assert other not in imported, f"{module} imports {other}"


@pytest.mark.parametrize("content", ["[]", "null", '{"format": 1}', '{"format": 1, "links": 5}'])
def test_malformed_plan_is_cache_corrupt_not_a_traceback(tmp_path: Path, content: str) -> None:
    import marshal
    import os

    whl = make_wheel(tmp_path, "demo", "1.0")
    cache = tmp_path / "cache"
    env = make_venv(tmp_path / "env")
    run_cli("install", "--cache-dir", str(cache), "--python", str(env), str(whl), check=True)
    (entry,) = (cache / "v1" / "entries").iterdir()
    for name, data in (
        ("plan.json", content.encode()),
        ("plan.bin", marshal.dumps(("safelink-plan-1", __import__("json").loads(content)))),
    ):
        path = entry / name
        os.chmod(path, 0o644)
        path.write_bytes(data)
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(env), str(whl))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"safelink: error: cache entry {entry} is unreadable: "), line
