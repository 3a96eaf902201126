"""The lean start-up path: what ``python -m safelink install`` imports (not how long it
takes: times are for the benchmark suite), and the light ``@dataclass`` it uses."""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_venv
from safelink._dataclass import FrozenInstanceError, asdict, dataclass, field
from safelink.errors import SafelinkError
from wheelmaker import make_wheel

HEAVY = (
    "dataclasses", "inspect", "typing", "hashlib", "base64", "ast", "hmac", "secrets",
    "_hashlib", "tempfile", "shutil", "random", "threading", "sysconfig", "encodings.ascii",
    "argparse", "gettext", "locale", "_sha2" if sys.version_info < (3, 12) else "_sha256",
    "re", "json", "safelink._bytecode", "safelink._workers",
)  # fmt: skip
"""Modules an install from a warm cache must not import (each costs start-up time)."""


def _imported(argv: list[str], env: dict[str, str]) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \| +(\S+)$", proc.stderr, re.M))


def test_install_of_a_cached_wheel_imports_nothing_heavy(tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, "tiny", "1.0")
    env = {**os.environ, "SAFELINK_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("SAFELINK_TEST_CRASH", None)
    first = make_venv(tmp_path / "v1")
    cold = _imported(["-m", "safelink", "install", "-q", "--python", str(first), str(whl)], env)
    assert "zipfile" in cold  # the first install admits the wheel: the check can see imports
    venv = make_venv(tmp_path / "v2")
    warm = _imported(["-m", "safelink", "install", "-q", "--python", str(venv), str(whl)], env)
    assert "safelink._install" in warm
    assert sorted(warm.intersection(HEAVY)) == []
    assert "zipfile" not in warm  # nothing is unzipped from a warm cache


@dataclass
class Row:
    name: str
    size: int = 0
    tags: list[str] = field(default_factory=list)
    note: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class Key:
    a: str
    b: tuple[int, ...] = ()


@dataclass
class Outer:
    rows: list[Row]
    by_name: dict[str, Key]


def test_light_dataclass_init_repr_eq() -> None:
    r = Row("x", tags=["a"])
    assert (r.name, r.size, r.tags, r.note) == ("x", 0, ["a"], "")
    assert Row("x").tags is not Row("x").tags  # a fresh default per instance
    assert repr(r) == "Row(name='x', size=0, tags=['a'])"
    assert r == Row("x", 0, ["a"], note="other")  # note is not compared
    assert r != Row("y")
    assert Row.__hash__ is None  # mutable: unhashable, as with dataclasses
    with pytest.raises(TypeError, match="missing required argument: 'name'"):
        Row()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'name'"):
        Row("x", name="y")  # type: ignore[misc]
    with pytest.raises(TypeError, match="unexpected keyword"):
        Row("x", colour=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 4 positional arguments but 5"):
        Row("x", 1, [], "", 5)  # type: ignore[call-arg]


def test_light_dataclass_frozen_and_asdict() -> None:
    k = Key("a", (1,))
    with pytest.raises(FrozenInstanceError):
        k.a = "b"  # type: ignore[misc]
    assert isinstance(FrozenInstanceError(), AttributeError)
    assert hash(k) == hash(Key("a", (1,))) and {k: 1}[Key("a", (1,))] == 1
    o = Outer([Row("x", 2)], {"k": k})
    assert asdict(o) == {
        "rows": [{"name": "x", "size": 2, "tags": [], "note": ""}],
        "by_name": {"k": {"a": "a", "b": (1,)}},
    }


@pytest.mark.parametrize("key_len", [0, 1, 32, 63, 64, 65, 200])
def test_hmac_on_the_builtin_sha256_matches_the_hmac_module(key_len: int) -> None:
    import hashlib
    import hmac

    from safelink._record import hmac_sha256, sha256

    key = bytes(range(key_len % 256)) * (key_len // 256 + 1)
    key = key[:key_len]
    for msg in (b"", b"x", bytes(range(256)) * 5):
        assert hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()
    assert sha256(b"abc").hexdigest() == hashlib.sha256(b"abc").hexdigest()


def test_user_key_without_the_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """user_key() is user_keys()[0] though it skips the temp dir when the preferred key exists."""
    import tempfile

    from safelink import _atomic

    monkeypatch.delenv("SAFELINK_STATE_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    blocked = tmp_path / "state"
    blocked.write_text("a file: the preferred directory cannot be made")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocked))

    def fresh() -> None:
        monkeypatch.setattr(_atomic, "_KEY", {})
        monkeypatch.setattr(_atomic, "_KEYS", {})

    fresh()
    fallback = _atomic.user_key()  # made in the temp dir: the state dir cannot be written
    assert (tmp_path / "tmp" / f"safelink-{os.geteuid()}" / "journal.key").read_bytes() == fallback
    assert _atomic.user_keys() == [fallback]
    blocked.unlink()
    fresh()
    assert _atomic.user_key() == fallback  # still the only key
    (blocked / "safelink").mkdir(parents=True)
    (blocked / "safelink" / "journal.key").write_bytes(b"p" * 32)
    (blocked / "safelink" / "journal.key").chmod(0o600)
    fresh()
    assert _atomic.user_key() == b"p" * 32  # the preferred key signs once it exists
    assert _atomic.user_keys() == [b"p" * 32, fallback]  # both still authenticate
    (blocked / "safelink" / "journal.key").chmod(0o644)
    fresh()
    with pytest.raises(SafelinkError, match=r"journal\.key"):
        _atomic.user_key()  # a key file others can read is refused, not skipped


def test_one_command_parser_is_the_whole_parser_for_that_command() -> None:
    """main() builds only the named command's parser: it must accept, refuse and
    explain exactly what the whole parser does for a command line starting with it."""
    import argparse
    import contextlib
    import io

    from safelink import cli

    whole = cli.build_parser()
    subs = next(a for a in whole._actions if isinstance(a, argparse._SubParsersAction))
    assert tuple(subs.choices) == cli.COMMANDS  # the list main() checks the first word against
    lines = {
        "install": ["install", "-q", "--python", "v", "--guard", "strict", "a.whl", "b.whl"],
        "sync": ["sync", "pylock.toml", "--extra", "x,y", "--dry-run"],
        "uninstall": ["uninstall", "six", "--strict"],
        "probe": ["probe", "/tmp"],
        "verify": ["verify", "--env", "e1", "--env", "e2"],
        "repair": ["repair", "--dry-run"],
        "cache": ["cache", "clean", "six"],
    }
    assert set(lines) == set(cli.COMMANDS)

    def outcome(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                return vars(parser.parse_args(argv)), out.getvalue()
            except SystemExit as exc:
                return exc.code, out.getvalue()

    for name, argv in lines.items():
        alone = cli.build_parser(name)
        for variant in (argv, [name, "-h"], [name, "--no-such-option"], [*argv, "--guard"]):
            assert outcome(alone, variant) == outcome(cli.build_parser(), variant)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_no_fork_while_another_thread_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the kernel's thread count is unknown (no /proc), can_fork() asks threading,
    without importing it: before it is imported, no thread it would count exists."""
    import threading

    from safelink import _workers

    monkeypatch.delenv("SAFELINK_TEST_CRASH", raising=False)
    monkeypatch.setattr(_workers, "os_threads", lambda: None)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert not _workers.can_fork()
        monkeypatch.delitem(sys.modules, "threading")
        assert _workers.can_fork()
        assert "threading" not in sys.modules
    finally:
        stop.set()
        t.join()


def _install_parser() -> argparse.ArgumentParser:
    from safelink import cli

    whole = cli.build_parser("install")
    subs = next(a for a in whole._actions if isinstance(a, argparse._SubParsersAction))
    return subs.choices["install"]


@functools.cache
def _whole_install_parser() -> argparse.ArgumentParser:
    from safelink import cli

    return cli.build_parser("install")


def _argparse_reading(argv: list[str]) -> dict[str, object] | None:
    """What argparse makes of *argv*, or None when it refuses it (or prints help)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return vars(_whole_install_parser().parse_args(argv))
        except SystemExit:
            return None


def test_plain_install_lines_table_is_the_install_parser() -> None:
    """_argv's table has every option of the install parser, read the same way."""
    from safelink import _argv

    kinds = {
        argparse._StoreTrueAction: _argv.FLAG,
        argparse._CountAction: _argv.COUNT,
        argparse._AppendAction: _argv.APPEND,
        argparse._StoreAction: _argv.VALUE,
    }
    parser = _install_parser()
    seen: dict[str, tuple[str, str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:
            assert (action.dest, action.nargs) == ("wheels", "*")
            continue
        for s in action.option_strings:
            seen[s] = (action.dest, kinds[type(action)])
        assert (action.type is not None) == (action.dest in _argv._TYPES)  # same values below
        assert tuple(action.choices or ()) == _argv._CHOICES.get(action.dest, ())
    assert seen == _argv.INSTALL_OPTIONS
    groups = [{a.dest for a in g._group_actions} for g in parser._mutually_exclusive_groups]
    assert groups == [set(_argv._EXCLUSIVE)]
    assert _argparse_reading(["install"]) == _argv.install_defaults()


PLAIN = [
    ["install", "a.whl"],
    ["install", "-q", "--python", "venv", "--cache-dir", "c", "a.whl", "b.whl"],
    ["install", "a.whl", "--python=v", "--link-mode", "hardlink", "-v", "-v", "--json"],
    ["install", "--extra", "x", "--extras=y,z", "--group", "g", "-r", "pylock.toml"],
    ["install", "--threads", "4", "--lock-timeout", "2.5", "--max-unpacked-size", "1GiB", ""],
    ["install", "--guard", "strict", "--system", "--system", "--force", "--no-deps", "x"],
    ["install"],
]
NOT_PLAIN = [
    ["install", "-h"],
    ["install", "--pyth", "v", "a.whl"],  # an abbreviation
    ["install", "a.whl", "-q", "b.whl"],  # a second run of wheels: argparse refuses it
    ["install", "-qv", "a.whl"],
    ["install", "--", "a.whl"],
    ["install", "--python", "-x", "a.whl"],
    ["install", "--guard", "loose"],
    ["install", "--threads", "many"],
    ["install", "--prefix", "p", "--target", "t"],
    ["install", "--quiet=yes"],
    ["install", "--python="],
    ["sync", "pylock.toml"],
]


@pytest.mark.parametrize("argv", PLAIN + NOT_PLAIN)
def test_plain_install_lines_read_as_argparse_reads_them(argv: list[str]) -> None:
    from safelink._argv import install_args

    fast = install_args(argv)
    assert (fast is not None) == (argv in PLAIN)  # the plain lines do skip argparse
    if fast is not None:
        assert repr(vars(fast)) == repr(_argparse_reading(argv))  # repr: nan == nan


_WORDS = [
    *__import__("safelink._argv", fromlist=["INSTALL_OPTIONS"]).INSTALL_OPTIONS,
    "-h", "--help", "--", "-", "-qv", "-vv", "--pyth", "--python=", "--python=v", "--guard=off",
    "--quiet=1", "-r=x", "a.whl", "b.whl", "", "check", "strict", "3", "-1", "1k", "nan", "x=y",
    "-x", "a b",
]  # fmt: skip


@given(st.lists(st.sampled_from(_WORDS), max_size=8))
@settings(max_examples=600, deadline=None)
def test_any_install_line_is_read_as_argparse_reads_it_or_left_to_argparse(
    words: list[str],
) -> None:
    from safelink._argv import install_args

    argv = ["install", *words]
    fast = install_args(argv)
    if fast is not None:
        assert repr(vars(fast)) == repr(_argparse_reading(argv))  # repr: nan == nan


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(_JSON, st.booleans())
@settings(max_examples=300, deadline=None)
def test_jsontext_writes_and_reads_what_json_does(obj: object, sort_keys: bool) -> None:
    import json

    from safelink import _jsontext

    text = _jsontext.dumps(obj, sort_keys=sort_keys)
    assert text == json.dumps(obj, sort_keys=sort_keys)
    expected = repr(json.loads(text))  # repr: nan == nan
    assert repr(_jsontext.loads(text)) == expected
    assert repr(_jsontext.loads(f" \n{text}\t\r ")) == expected


@pytest.mark.parametrize(
    "text", ["", " ", "{", '{"a": 1} x', "[1,]", '"\x01"', "\ufeff{}", "nul", "{} {}", "01"]
)
def test_jsontext_refuses_what_json_refuses(text: str) -> None:
    import json

    from safelink import _jsontext

    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        _jsontext.loads(text)


def test_jsontext_refuses_what_json_cannot_write() -> None:
    import json

    from safelink import _jsontext

    for bad in ({"a": {1, 2}}, [object()], {(1, 2): 3}):
        with pytest.raises(TypeError) as ours:
            _jsontext.dumps(bad)
        with pytest.raises(TypeError) as theirs:
            json.dumps(bad)
        assert str(ours.value) == str(theirs.value)
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        _jsontext.dumps(loop)
