"""The per-user key that authenticates crash journals: the fallback directory in the
shared temp dir is anyone's to create first, so what is found there can never stop a
user, and a key of someone else's is named as such."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import make_venv, run_cli, tree
from safelink import _atomic
from safelink.errors import SafelinkError
from wheelmaker import make_wheel

OTHER = 1002


@pytest.fixture
def fresh_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_atomic, "_KEY", {})
    monkeypatch.setattr(_atomic, "_KEYS", {})


def needs_root() -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another user")


def planted(tmp: Path, how: str) -> Path:
    """What another user leaves at /tmp/safelink-<our uid> before we ever run."""
    fallback = tmp / f"safelink-{os.geteuid()}"
    if how == "symlink":
        theirs = tmp / "theirs"
        theirs.mkdir()
        (theirs / "journal.key").write_bytes(b"a" * 32)
        os.chown(theirs / "journal.key", OTHER, OTHER)
        os.chown(theirs, OTHER, OTHER)
        fallback.symlink_to(theirs)
    else:
        fallback.mkdir()
        (fallback / "journal.key").write_bytes(b"a" * 32)
        (fallback / "journal.key").chmod(0o644)
        os.chown(fallback / "journal.key", OTHER, OTHER)
        os.chown(fallback, OTHER, OTHER)
    return fallback


@pytest.mark.parametrize("how", ["directory", "symlink"])
def test_another_users_fallback_dir_blocks_nothing(tmp_path: Path, how: str) -> None:
    needs_root()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    fallback = planted(tmp, how)
    state = tmp_path / "state"
    whl = make_wheel(tmp_path, "demo", "1.0")
    venv = make_venv(tmp_path / "venv")
    before = tree(tmp)
    env = {"SAFELINK_STATE_DIR": None, "XDG_STATE_HOME": str(state), "TMPDIR": str(tmp)}
    proc = run_cli("install", "--cache-dir", str(tmp_path / "cache"), "--python", str(venv),
                   str(whl), env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    why = "is not a directory" if how == "symlink" else f"is owned by uid {OTHER}"
    assert proc.stderr.splitlines() == [
        f"safelink: warning: ignoring {fallback}: it {why}, so it may be another user's; "
        "set SAFELINK_STATE_DIR to a private directory of yours"
    ]
    key = state / "safelink" / "journal.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    assert tree(tmp) == before  # nothing read from it or written to it
    again = run_cli("install", "--cache-dir", str(tmp_path / "cache"), "--python", str(venv),
                    str(whl), env=env)  # fmt: skip
    assert again.returncode == 0 and again.stderr == ""  # the preferred key serves


def test_a_bad_old_fallback_key_stops_nobody_whose_key_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_keys: None
) -> None:
    tmp = tmp_path / "tmp"
    fallback = tmp / f"safelink-{os.geteuid()}"
    fallback.mkdir(parents=True, mode=0o700)
    (fallback / "journal.key").write_bytes(b"x" * 5)  # not a key
    (fallback / "journal.key").chmod(0o600)
    state = tmp_path / "state" / "safelink"
    state.mkdir(parents=True, mode=0o700)
    (state / "journal.key").write_bytes(b"p" * 32)
    (state / "journal.key").chmod(0o600)
    monkeypatch.delenv("SAFELINK_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    assert _atomic.user_keys() == [b"p" * 32]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another uid can reach (pytest's tmp_path is root's, 0700)."""
    d = Path(tempfile.mkdtemp(prefix="safelink-statekey-", dir="/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_a_key_of_another_user_is_named_so(
    shared_dir: Path, monkeypatch: pytest.MonkeyPatch, fresh_keys: None
) -> None:
    needs_root()
    state = shared_dir / "state"
    state.mkdir(mode=0o700)
    (state / "journal.key").write_bytes(b"r" * 32)
    (state / "journal.key").chmod(0o600)  # root's, private: nobody may read it
    os.chown(state, OTHER, OTHER)
    monkeypatch.setenv("SAFELINK_STATE_DIR", str(state))
    os.seteuid(OTHER)
    try:
        with pytest.raises(SafelinkError) as caught:
            _atomic.user_keys()
    finally:
        os.seteuid(0)
    assert str(caught.value) == (
        f"cannot use safelink's key file {state / 'journal.key'}: not readable by you (owned "
        "by uid 0) (set SAFELINK_STATE_DIR to a private directory of yours)"
    )
    assert sorted(os.listdir(state)) == ["journal.key"]  # no temp file left
