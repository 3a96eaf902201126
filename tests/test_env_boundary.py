"""The environment is not trusted: what a wheel, another installer or a user put there.

Every test here checks full listings of the environment, the cache and a canary
directory outside both, before and after. The journal tests run with a private
``SAFELINK_STATE_DIR`` so they can read the per-user key, as an attacker cannot.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import safelink
from conftest import run_cli, site_packages, tree
from safelink import _atomic
from test_crash import assert_one_line_error, no_transaction_left, small_wheel
from wheelmaker import make_wheel


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("SAFELINK_STATE_DIR", str(d))
    return d


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A directory outside environment and cache, full of files worth keeping."""
    d = tmp_path / "canary"
    (d / "sub").mkdir(parents=True)
    for name in ("precious.txt", "mod.cpython-311.pyc", "sub/deep.txt", "RECORD"):
        (d / name).write_bytes(b"keep me " + name.encode())
    return d


def args(venv: Path, cache: Path) -> list[str]:
    return ["--cache-dir", str(cache), "--python", str(venv)]


def snapshot(*dirs: Path) -> list[dict[str, tuple[str, int, bytes | str]]]:
    return [tree(d) for d in dirs]


# -- 12.1a: a journal only safelink can have written --------------------------------------


def forged_body(canary: Path, venv: Path) -> dict[str, object]:
    """What an attacker would like a rollback to do: remove canary files, restore a stash
    from outside, through absolute paths and ``..``."""
    rel_out = os.path.relpath(canary, venv)
    return {
        "format": 1,
        "op": "install",
        "what": ["evil 1.0"],
        "phase": "linking",
        "pid": 1,
        "stash": str(canary),
        "token": "0" * 16,
        "plans": [
            {
                "name": "evil",
                "dests": {
                    str(canary): ["precious.txt", "RECORD"],
                    ".": [f"{rel_out}/sub/deep.txt", "../../canary/precious.txt"],
                },
                "dirs": {str(canary): ["sub"]},
                "made": [str(canary / "sub")],
            }
        ],
    }


def test_journal_shipped_by_a_wheel_is_never_believed(
    tmp_path: Path, new_venv: Path, canary: Path
) -> None:
    """A wheel ships ``.safelink-journal.json`` (the old fixed name) through ``.data/data``:
    installed, then killed or not, it never makes a later run touch anything."""
    cache = tmp_path / "cache"
    body = json.dumps(forged_body(canary, new_venv)).encode()
    bad_types = json.dumps({"phase": 5, "plans": "x", "refs": [1], "stash": 7}).encode()
    evil = make_wheel(
        tmp_path,
        "evil",
        "1.0",
        {
            "evil.py": b"",
            "evil-1.0.data/data/.safelink-journal.json": body,
            "evil-1.0.data/data/.safelink-journal.json.1234": bad_types,
            "evil-1.0.data/data/.safelink-stash-1-2/x": b"not ours",
        },
    )
    proc = run_cli("install", *args(new_venv, cache), str(evil))
    assert proc.returncode == 0, proc.stderr
    before = snapshot(new_venv, canary)
    # Every later run: install, uninstall, a killed install's recovery.
    proc = run_cli("install", *args(new_venv, cache), str(small_wheel(tmp_path)))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "rolled back" not in proc.stderr
    proc = run_cli("uninstall", "--python", str(new_venv), "other")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert snapshot(new_venv, canary) == before
    # The wrong JSON types, at the name the old code read: no traceback either.
    os.replace(new_venv / ".safelink-journal.json.1234", new_venv / ".safelink-journal.json")
    proc = run_cli("install", *args(new_venv, cache), str(small_wheel(tmp_path)))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert tree(canary) == before[1]


def test_a_name_that_claims_to_be_a_journal_stops_the_run(
    tmp_path: Path, new_venv: Path, canary: Path
) -> None:
    """Shaped like safelink's own journal name but not authentic (a wheel installed by pip,
    or another user's interrupted install): one line, nothing changed."""
    cache = tmp_path / "cache"
    name = f".safelink-journal-{'a' * 16}-{'b' * 24}"
    (new_venv / name).write_text(json.dumps({"journal": "{}", "mac": "0"}))
    before = snapshot(new_venv, canary)
    for argv in (
        ["install", *args(new_venv, cache), str(small_wheel(tmp_path))],
        ["uninstall", "--python", str(new_venv), "other"],
    ):
        proc = run_cli(*argv)
        line = assert_one_line_error(proc, "looks like the journal", "not one safelink wrote")
        assert name in line
        assert snapshot(new_venv, canary) == before


NOT_OUR_SHAPE = [
    ".safelink-tmp-aaaaaaaaaaaaaaaa-" + "\u00e9" * 24,  # non-ASCII tag: hmac raised TypeError
    ".safelink-journal-aaaaaaaaaaaaaaaa-" + "\u00e9" * 24,
    ".safelink-stash-" + "\u00e9" * 16 + "-" + "b" * 24,
    ".safelink-journal-aaaaaaaaaaaaaaaa-" + "B" * 24,  # not what make_name writes
    ".safelink-tmp-aaaaaaaaaaaaaaaa-" + "g" * 24,
]


@pytest.mark.parametrize("name", NOT_OUR_SHAPE)
def test_a_name_not_shaped_like_ours_is_just_a_file(
    tmp_path: Path, new_venv: Path, name: str
) -> None:
    """A ``.safelink-`` name that is not exactly ``<kind>-<16 hex>-<24 hex>`` (touched by
    anyone, or shipped by a wheel through ``.data/data``) is an ordinary file: every
    command runs, and the file is never read, moved or removed."""
    cache = tmp_path / "cache"
    (new_venv / name).write_bytes(b"someone's file")
    shipped = name[:-1] + ("\u00ea" if name.endswith("\u00e9") else "c")  # by a wheel
    evil = make_wheel(
        tmp_path, "evil", "1.0", {"evil.py": b"", f"evil-1.0.data/data/{shipped}": b"shipped"}
    )
    for argv in (
        ["install", *args(new_venv, cache), str(evil)],
        ["install", *args(new_venv, cache), str(small_wheel(tmp_path))],
        ["uninstall", "--python", str(new_venv), "other"],
        ["uninstall", "--python", str(new_venv), "evil"],
    ):
        proc = run_cli(*argv)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (argv, proc.stderr)
        assert (new_venv / name).read_bytes() == b"someone's file"
        assert (new_venv / shipped).exists() == (argv[-1] != "evil"), argv
    assert [n for n in os.listdir(new_venv) if n.startswith(".safelink-")] == [name]


def test_wheel_file_with_a_reserved_name_at_the_root_is_refused(
    tmp_path: Path, new_venv: Path
) -> None:
    """safelink itself never installs a file that would look like its journal."""
    cache = tmp_path / "cache"
    name = f".safelink-journal-{'a' * 16}-{'b' * 24}"
    evil = make_wheel(
        tmp_path, "evil", "1.0", {"evil.py": b"", f"evil-1.0.data/data/{name}": b"{}"}
    )
    before = tree(new_venv)
    proc = run_cli("install", *args(new_venv, cache), str(evil))
    assert_one_line_error(proc, "reserved for safelink's journal", name)
    assert tree(new_venv) == before


def write_journal(venv: Path, body: object, *, stash: str | None = None) -> str:
    """An authentic journal (signed with the test user's key), as a crash would leave one."""
    key = _atomic.user_key()
    name = _atomic.make_name("journal", key)
    text = json.dumps(body)
    mac = _atomic.sign(key, "journal", name, text)
    (venv / name).write_text(json.dumps({"journal": text, "mac": mac}))
    return name


@pytest.mark.parametrize(
    "case",
    [
        "absolute", "dotdot", "stash-outside", "stash-unsigned", "types", "not-json",
        "bad-mac", "deep-outer", "deep-inner",
    ],
)
def test_authentic_journal_with_bad_content_is_one_line(
    tmp_path: Path, new_venv: Path, canary: Path, case: str
) -> None:
    """Even signed with the user's key, a journal names only paths inside the environment
    and a stash safelink made; anything else is 'damaged', one line, nothing touched."""
    cache = tmp_path / "cache"
    key = _atomic.user_key()
    body: dict[str, object] = forged_body(canary, new_venv)
    body["stash"] = _atomic.make_name("stash", key)
    body["token"] = "0" * 16
    plan = body["plans"][0]  # type: ignore[index]
    if case == "absolute":
        plan["dests"] = {str(canary): ["precious.txt"]}
    elif case == "dotdot":
        plan["dests"] = {".": ["../canary/precious.txt"]}
    elif case == "stash-outside":
        plan["dests"] = {}
        body["stash"] = str(canary)
    elif case == "stash-unsigned":
        plan["dests"] = {}
        body["stash"] = ".safelink-stash-1-2"
    elif case == "types":
        body["what"] = "evil"
    name = write_journal(new_venv, body)
    if case == "not-json":
        (new_venv / name).write_text("{")
    elif case == "deep-outer":  # json raised RecursionError
        (new_venv / name).write_text("[" * 100000)
    elif case == "deep-inner":
        text = "[" * 100000
        mac = _atomic.sign(key, "journal", name, text)
        (new_venv / name).write_text(json.dumps({"journal": text, "mac": mac}))
    elif case == "bad-mac":
        outer = json.loads((new_venv / name).read_text())
        outer["journal"] = outer["journal"].replace("evil", "evil2")
        (new_venv / name).write_text(json.dumps(outer))
    before = snapshot(new_venv, canary)
    proc = run_cli("install", *args(new_venv, cache), str(small_wheel(tmp_path)))
    line = assert_one_line_error(proc, "journal", "is damaged", "nothing was changed")
    assert name in line
    assert snapshot(new_venv, canary) == before


def test_journal_mac_is_checked_like_every_token(
    tmp_path: Path, new_venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal's MAC goes through the one check for tokens (``_atomic.verifies``:
    constant time, ``hmac.compare_digest``, never ``!=``); a MAC of any other shape
    (non-ASCII, upper case, not a string) is simply 'does not match', one line."""
    import hmac
    import types

    from safelink import _transaction

    compared: list[object] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append(b) or real(a, b))
    key = _atomic.user_key()
    body = {"format": 1, "op": "install", "what": [], "phase": "linking", "token": "0" * 16}
    target = types.SimpleNamespace(root=str(new_venv))
    for mac in ["0" * 64, "\u00e9" * 64, "A" * 64, 5, None]:
        name = write_journal(new_venv, {**body, "stash": _atomic.make_name("stash", key)})
        outer = json.loads((new_venv / name).read_text())
        (new_venv / name).write_text(json.dumps({**outer, "mac": mac}))
        with pytest.raises(safelink.SafelinkError, match="authentication does not match"):
            _transaction._load(target, name, key)  # type: ignore[arg-type]
        if mac == "\u00e9" * 64:
            proc = run_cli("uninstall", "--python", str(new_venv), "other")
            assert_one_line_error(proc, name, "authentication does not match")
        os.unlink(new_venv / name)
    assert "0" * 64 in compared


def test_authentic_journal_never_acts_through_a_symlinked_directory(
    tmp_path: Path, new_venv: Path, canary: Path
) -> None:
    """Relative paths that lead out through a symlink the user (or a wheel) made are
    skipped by the rollback; the stash is restored, the canary keeps every file."""
    cache = tmp_path / "cache"
    sp = site_packages(new_venv)
    (sp / "escape").symlink_to(canary, target_is_directory=True)
    (sp / "pkg" / "__pycache__").mkdir(parents=True)
    (sp / "pkg" / "__pycache__").rmdir()
    (sp / "pkg" / "__pycache__").symlink_to(canary, target_is_directory=True)
    key = _atomic.user_key()
    stash = _atomic.make_name("stash", key)
    (new_venv / stash / "kept").mkdir(parents=True)
    (new_venv / stash / "kept" / "file.txt").write_bytes(b"moved aside")
    rel_sp = os.path.relpath(sp, new_venv)
    body = {
        "format": 1,
        "op": "install",
        "what": ["demo 1.0"],
        "phase": "linking",
        "stash": stash,
        "token": "0" * 16,
        "plans": [
            {
                "name": "demo",
                "dests": {rel_sp: ["escape/precious.txt", "escape/sub/deep.txt", "pkg/mod.py"]},
                "dirs": {rel_sp: ["escape", "escape/sub"]},
                "made": [],
            }
        ],
    }
    write_journal(new_venv, body)
    canary_before = tree(canary)
    proc = run_cli("install", *args(new_venv, cache), str(small_wheel(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert "rolled back an interrupted install of demo 1.0" in proc.stderr
    assert tree(canary) == canary_before
    assert (new_venv / "kept" / "file.txt").read_bytes() == b"moved aside"
    assert no_transaction_left(new_venv)


@pytest.mark.parametrize("phase", ["stashing", "committed"])
def test_authentic_stash_that_is_a_symlink_is_never_followed(
    tmp_path: Path, new_venv: Path, canary: Path, phase: str
) -> None:
    """A stash name swapped for a symlink to elsewhere: nothing is moved out of it
    (restoring) nor deleted through it (committing, sweeping)."""
    cache = tmp_path / "cache"
    key = _atomic.user_key()
    stash = _atomic.make_name("stash", key)
    (new_venv / stash).symlink_to(canary, target_is_directory=True)
    body = {
        "format": 1,
        "op": "uninstall",
        "what": ["demo 1.0"],
        "phase": phase,
        "stash": stash,
        "token": "0" * 16,
    }
    write_journal(new_venv, body)
    before = tree(canary)
    proc = run_cli("install", *args(new_venv, cache), str(small_wheel(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    done = "completed" if phase == "committed" else "rolled back"
    assert f"{done} an interrupted uninstall of demo 1.0" in proc.stderr
    assert tree(canary) == before
    assert not (new_venv / "precious.txt").exists()


def test_restore_never_removes_a_directory_tree(tmp_path: Path, new_venv: Path) -> None:
    """A stashed file whose place is now a directory with files in it: the rollback
    stops with one line and keeps both (it never deletes a tree it did not make)."""
    cache = tmp_path / "cache"
    key = _atomic.user_key()
    stash = _atomic.make_name("stash", key)
    (new_venv / stash / "pkg").mkdir(parents=True)
    (new_venv / stash / "pkg" / "x").write_bytes(b"stashed")
    (new_venv / "pkg" / "x").mkdir(parents=True)
    (new_venv / "pkg" / "x" / "mine.txt").write_bytes(b"the user's")
    body = {
        "format": 1,
        "op": "uninstall",
        "what": ["demo 1.0"],
        "phase": "stashing",
        "stash": stash,
        "token": "0" * 16,
    }
    write_journal(new_venv, body)
    before = tree(new_venv)
    proc = run_cli("install", *args(new_venv, cache), str(small_wheel(tmp_path)))
    assert_one_line_error(proc, "cannot restore", "a directory is in its place")
    assert tree(new_venv) == before


def test_key_file_must_be_private(tmp_path: Path, new_venv: Path, state_dir: Path) -> None:
    cache = tmp_path / "cache"
    state_dir.mkdir()
    (state_dir / "journal.key").write_bytes(b"k" * 32)
    (state_dir / "journal.key").chmod(0o644)
    before = tree(new_venv)
    proc = run_cli("install", *args(new_venv, cache), str(small_wheel(tmp_path)))
    assert_one_line_error(proc, "journal.key", "SAFELINK_STATE_DIR")
    assert tree(new_venv) == before


# -- 12.1b: never delete through a symlinked directory ------------------------------------


def test_uninstall_never_sweeps_a_symlinked_pycache(
    tmp_path: Path, new_venv: Path, canary: Path
) -> None:
    cache = tmp_path / "cache"
    whl = make_wheel(tmp_path, "mod", "1.0", {"mod.py": b"X = 1\n", "pkg/m.py": b""})
    safelink.install([whl], new_venv, cache=cache)
    sp = site_packages(new_venv)
    (sp / "__pycache__").symlink_to(canary, target_is_directory=True)
    (sp / "pkg" / "__pycache__").symlink_to(canary / "sub", target_is_directory=True)
    (canary / "sub" / "m.cpython-311.pyc").write_bytes(b"keep")
    (canary / "mod.cpython-312.pyc").write_bytes(b"keep")
    before_cache, before_canary = tree(cache), tree(canary)
    proc = run_cli("uninstall", "--python", str(new_venv), "mod")
    assert proc.returncode == 0, proc.stderr
    assert tree(canary) == before_canary
    assert tree(cache) == before_cache
    assert not (sp / "mod.py").exists() and not (sp / "mod-1.0.dist-info").exists()


def test_install_over_never_sweeps_a_symlinked_pycache(
    tmp_path: Path, new_venv: Path, canary: Path
) -> None:
    cache = tmp_path / "cache"
    safelink.install(
        [make_wheel(tmp_path, "mod", "1.0", {"mod.py": b"X = 1\n"})], new_venv, cache=cache
    )
    sp = site_packages(new_venv)
    (sp / "__pycache__").symlink_to(canary, target_is_directory=True)
    (canary / "mod.cpython-312.pyc").write_bytes(b"keep")
    before_canary = tree(canary)
    (tmp_path / "v2").mkdir()
    v2 = make_wheel(tmp_path / "v2", "mod", "2.0", {"mod.py": b"X = 2\n"})
    proc = run_cli("install", *args(new_venv, cache), str(v2))
    assert proc.returncode == 0, proc.stderr
    assert tree(canary) == before_canary
    assert (sp / "mod.py").read_bytes() == b"X = 2\n"


def test_uninstall_refuses_a_symlinked_dist_info(
    tmp_path: Path, new_venv: Path, canary: Path
) -> None:
    """A ``*.dist-info`` that is a symlink to elsewhere: its RECORD is not deleted, nor
    anything it lists; one line."""
    sp = site_packages(new_venv)
    (sp / "ghost").mkdir()
    (sp / "ghost" / "__init__.py").write_bytes(b"")
    (canary / "METADATA").write_bytes(b"Metadata-Version: 2.1\nName: ghost\nVersion: 1.0\n")
    (canary / "RECORD").write_bytes(b"ghost/__init__.py,,\n")
    (sp / "ghost-1.0.dist-info").symlink_to(canary, target_is_directory=True)
    before = snapshot(new_venv, canary)
    proc = run_cli("uninstall", "--python", str(new_venv), "ghost")
    assert_one_line_error(proc, "outside the environment")
    assert snapshot(new_venv, canary) == before


def test_displace_refuses_a_path_through_a_symlinked_directory(
    tmp_path: Path, new_venv: Path, canary: Path
) -> None:
    """The one place that moves files aside checks where they really are."""
    from safelink._environment import venv_target
    from safelink._transaction import Transaction

    sp = site_packages(new_venv)
    (sp / "out").symlink_to(canary, target_is_directory=True)
    txn = Transaction(venv_target(str(new_venv)), [])
    txn.begin()
    before = tree(canary)
    with pytest.raises(safelink.SafelinkError, match="outside the environment"):
        txn.displace(str(sp / "out" / "precious.txt"))
    with pytest.raises(safelink.SafelinkError, match="outside the environment"):
        txn.displace(str(new_venv / ".." / "canary" / "precious.txt"))
    txn.rollback()
    assert tree(canary) == before
    assert no_transaction_left(new_venv)


@pytest.mark.parametrize(
    "record",
    [b"mod.py,,\n\xff\xfe,,\n", b"mod.py,,\n" + b"x" * 200_000 + b",,\n", b"mod.py\x00,,\n"],
    ids=["invalid-utf8", "over-csv-limit", "nul"],
)
def test_unreadable_installed_record_is_one_line(
    tmp_path: Path, new_venv: Path, canary: Path, record: bytes
) -> None:
    """An installed RECORD is untrusted input: uninstall and install-over say one line
    and change nothing."""
    cache = tmp_path / "cache"
    safelink.install([make_wheel(tmp_path, "mod", "1.0")], new_venv, cache=cache)
    di = site_packages(new_venv) / "mod-1.0.dist-info"
    (di / "RECORD").write_bytes(record)
    before = snapshot(new_venv, canary)
    proc = run_cli("uninstall", "--python", str(new_venv), "mod")
    assert_one_line_error(proc, "RECORD")
    (tmp_path / "v2").mkdir()
    v2 = make_wheel(tmp_path / "v2", "mod", "2.0")
    proc = run_cli("install", *args(new_venv, cache), str(v2))
    assert_one_line_error(proc, "RECORD")
    assert snapshot(new_venv, canary) == before
    assert no_transaction_left(new_venv)


# -- 12.2: no silent destruction inside the environment -----------------------------------


@pytest.mark.parametrize("member", ["shared", "evil-1.0.data/data/bin"])
def test_file_over_an_existing_directory_is_refused(
    tmp_path: Path, new_venv: Path, canary: Path, member: str
) -> None:
    """Another distribution's package dir, the venv's ``bin/``: refused like pip and uv do."""
    cache = tmp_path / "cache"
    owner = make_wheel(tmp_path, "owner", "1.0", {"shared/__init__.py": b"OWNED = 1\n"})
    safelink.install([owner], new_venv, cache=cache)
    evil = make_wheel(tmp_path, "evil", "1.0", {"evil.py": b"", member: b"gotcha"})
    before = snapshot(new_venv, canary)
    proc = run_cli("install", *args(new_venv, cache), str(evil))
    assert_one_line_error(proc, "would replace the directory", "refused")
    assert snapshot(new_venv, canary) == before
    assert no_transaction_left(new_venv)


def two_wheels_one_path(tmp_path: Path) -> tuple[Path, Path]:
    a = make_wheel(tmp_path, "aaa", "1.0", {"shared/x.py": b"A\n", "aaa.py": b""})
    b = make_wheel(tmp_path, "bbb", "1.0", {"shared/x.py": b"B\n", "bbb.py": b""})
    return a, b


def test_path_moved_aside_twice_is_restored_after_a_failure(
    tmp_path: Path, new_venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's file, then wheel A's at the same path, are moved aside; the install
    fails: the user's file is back, byte for byte, as the error says."""
    import errno

    from safelink import _install

    cache = tmp_path / "cache"
    sp = site_packages(new_venv)
    (sp / "shared").mkdir()
    (sp / "shared" / "x.py").write_bytes(b"the user's own file\n")
    before = tree(new_venv)

    def full(*_a: object, **_k: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_install, "finalize", full)
    with pytest.raises(safelink.SafelinkError, match="left as it was"):
        safelink.install(two_wheels_one_path(tmp_path), new_venv, cache=cache, threads=1)
    assert tree(new_venv) == before
    assert no_transaction_left(new_venv)


def test_path_moved_aside_twice_is_restored_after_a_kill(tmp_path: Path, new_venv: Path) -> None:
    cache = tmp_path / "cache"
    sp = site_packages(new_venv)
    (sp / "shared").mkdir()
    (sp / "shared" / "x.py").write_bytes(b"the user's own file\n")
    before = tree(new_venv)
    a, b = two_wheels_one_path(tmp_path)
    proc = run_cli(
        "install",
        *args(new_venv, cache),
        "--threads",
        "1",
        str(a),
        str(b),
        env={"SAFELINK_TEST_CRASH": "before-commit"},
    )
    assert proc.returncode == -9, proc.stderr
    report = safelink.uninstall([], new_venv, missing_ok=True)
    assert report == []
    assert tree(new_venv) == before


def test_path_shipped_by_two_wheels_installs_the_last(tmp_path: Path, new_venv: Path) -> None:
    """Without a failure the same situation installs (as pip does: the later one wins),
    and nothing of the stash is left."""
    cache = tmp_path / "cache"
    safelink.install(two_wheels_one_path(tmp_path), new_venv, cache=cache, threads=1)
    assert (site_packages(new_venv) / "shared" / "x.py").read_bytes() == b"B\n"
    assert no_transaction_left(new_venv)


# -- 12.3: temporary names a wheel cannot predict ------------------------------------------


def test_preplaced_temp_names_never_write_into_the_cache(tmp_path: Path, new_venv: Path) -> None:
    """A wheel ships every name the old code would have used for its temporary files
    (``<fresh file>.safelink-<pid>``, the journal's), hardlinked from the cache."""
    cache = tmp_path / "cache"
    pid = os.getpid()
    di = "demo-1.0.dist-info"
    planted = {
        f"{di}/{n}.safelink-{pid}": b"cache bytes " + n.encode()
        for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")
    }
    planted[f"demo-1.0.data/scripts/demo-tool.safelink-{pid}"] = b"cache bytes tool"
    planted[f"demo-1.0.data/data/.safelink-journal.json.{pid}"] = b"cache bytes journal"
    files = {
        "demo/__init__.py": b"",
        "demo-1.0.data/scripts/demo-tool": b"#!python\nprint('tool')\n",
        **planted,
    }
    whl = make_wheel(tmp_path, "demo", "1.0", files)
    safelink.Cache(cache).admit(whl)
    entries = cache / "v1" / "entries"
    before = tree(entries)
    safelink.install([whl], new_venv, cache=cache, link_mode="hardlink", threads=1)
    assert tree(entries) == before
    sp = site_packages(new_venv)
    assert (sp / di / f"INSTALLER.safelink-{pid}").read_bytes() == b"cache bytes INSTALLER"
    shipped = {os.path.basename(m) for m in planted}
    leftovers = [p for p in new_venv.rglob("*.safelink*") if p.name not in shipped]
    assert leftovers == []


def test_temp_names_are_unpredictable_and_exclusive(tmp_path: Path) -> None:
    target = tmp_path / "f"
    fd, name = _atomic.create_temp(str(target))
    os.close(fd)
    fd2, name2 = _atomic.create_temp(str(target))
    os.close(fd2)
    assert name != name2 and name.startswith(f"{target}.safelink-")
    # An existing name (a link a wheel placed) is an error, never written through.
    (tmp_path / "victim").write_bytes(b"v")
    os.symlink(tmp_path / "victim", _atomic.fresh_name(str(target)))
    with pytest.raises(FileExistsError):
        _atomic.write_fresh(str(target), b"x", 0o644)
    assert (tmp_path / "victim").read_bytes() == b"v"


# -- 12.9: --compile runs no code from the wheel -------------------------------------------


def test_compile_does_not_run_a_wheels_pth(tmp_path: Path, new_venv: Path) -> None:
    cache = tmp_path / "cache"
    flag = tmp_path / "pth-ran"
    pth = f"import os; open({str(flag)!r}, 'w').close()\n".encode()
    whl = make_wheel(tmp_path, "pthy", "1.0", {"pthy/__init__.py": b"X = 1\n", "pthy.pth": pth})
    proc = run_cli("install", "--compile", *args(new_venv, cache), str(whl))
    assert proc.returncode == 0, proc.stderr
    assert not flag.exists()
    assert list((site_packages(new_venv) / "pthy" / "__pycache__").glob("*.pyc"))
    # (The .pth does what .pth files do when the environment's Python starts.)
    subprocess.run([str(new_venv / "bin" / "python"), "-c", "pass"], check=True)
    assert flag.exists()
