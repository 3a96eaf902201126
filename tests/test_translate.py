"""Error translation: operating-system errors and lock time-outs are one line, for every command.

The journey: another safelink process holds an environment's lock; every command that
reads or changes that environment gives up after the time-out with the same one line
and exit code 1, changes nothing, and works again once the lock is released. Then the
translation table itself (:mod:`safelink._translate`), and the command line's net for
anything that escapes a command.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import safelink
from conftest import make_venv, run_cli, tree
from safelink._lock import LockTimeout, env_lock
from safelink._translate import os_error, translate
from test_crash import assert_one_line_error, demo_wheel, small_wheel


@pytest.fixture
def held(tmp_path: Path, cache_dir: Path) -> Iterator[tuple[Path, Path]]:
    """An environment with ``demo`` installed, whose lock another process holds."""
    whl = demo_wheel(tmp_path)
    venv = make_venv(tmp_path / "venv")
    safelink.install([whl], venv)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from safelink._lock import env_lock\n"
            "with env_lock(sys.argv[1]):\n"
            "    print('locked', flush=True)\n"
            "    sys.stdin.read()\n",
            str(venv),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield venv, whl
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def test_every_command_says_busy_in_one_line(
    held: tuple[Path, Path], tmp_path: Path, cache_dir: Path
) -> None:
    venv, _whl = held
    other = small_wheel(tmp_path)
    fast = {"SAFELINK_LOCK_TIMEOUT": "0.2"}
    before = tree(venv)
    busy = f"environment {venv} is being modified by another safelink process"
    hint = "waited 0.2 s; try again when it has finished"
    commands = [
        ("install", "--python", str(venv), str(other)),
        ("install", "--python", str(venv), "--lock-timeout", "0.2", str(other)),
        ("uninstall", "--python", str(venv), "demo"),
        ("verify", "--env", str(venv)),
        ("repair", "--env", str(venv)),
        ("repair", "--env", str(venv), "--dry-run"),
    ]
    for argv in commands:
        proc = run_cli(*argv, env=fast)
        line = assert_one_line_error(proc, busy, hint)
        assert line == f"safelink: error: {busy} ({hint})", argv
        assert proc.stdout == "", argv
    assert tree(venv) == before
    # The cache commands do not need the environment: they are not held up by it.
    proc = run_cli("cache", "list", env=fast)
    assert proc.returncode == 0 and "demo 1.0" in proc.stdout, proc.stderr


def test_the_api_says_busy_too(held: tuple[Path, Path], tmp_path: Path) -> None:
    venv, _whl = held
    with pytest.raises(safelink.EnvironmentBusy) as info:
        safelink.uninstall(["demo"], venv, lock_timeout=0.1)
    assert str(info.value) == (
        f"environment {venv} is being modified by another safelink process "
        "(waited 0.1 s; try again when it has finished)"
    )
    with pytest.raises(safelink.EnvironmentBusy):
        safelink.install([small_wheel(tmp_path)], venv, lock_timeout=0.1)


def test_locking_a_path_that_is_not_an_environment_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    with pytest.raises(FileNotFoundError), env_lock(str(typo), 0.1):
        pass
    assert not typo.exists()


@pytest.mark.parametrize(
    ("command", "code", "filename", "expected"),
    [
        (
            "install",
            errno.ENOSPC,
            "/env/lib/x.py",
            "no space left on device while installing into /env "
            "(free some space; the environment was left as it was)",
        ),
        (
            "install",
            errno.EACCES,
            "/env/lib/x.py",
            f"cannot write to /env/lib/x.py: {os.strerror(errno.EACCES)} "
            "(fix its permissions or choose another target; nothing was changed)",
        ),
        (
            "install",
            errno.EIO,
            "/env/.safelink-journal.json",
            f"install into /env failed at /env: {os.strerror(errno.EIO)} "
            "(the environment was left as it was)",
        ),
        (
            "uninstall",
            errno.EROFS,
            "/env/lib/x.py",
            f"cannot uninstall from /env: {os.strerror(errno.EROFS)} at /env/lib/x.py "
            "(fix its permissions; nothing was removed)",
        ),
        (
            "repair",
            errno.EACCES,
            "/env/lib/x.py",
            f"cannot write to /env/lib/x.py: {os.strerror(errno.EACCES)} (fix its permissions)",
        ),
        ("verify", errno.ENOENT, "/env", "/env does not exist (check the path of the environment)"),
        ("verify", errno.EIO, "/env/x", f"verify failed at /env/x: {os.strerror(errno.EIO)}"),
        (
            "repair",
            errno.ENOSPC,
            None,
            "no space left on device while repairing /env (free some space)",
        ),
        (
            "sync",
            errno.ENOSPC,
            None,
            "no space left on device while syncing /env (free some space)",
        ),
    ],
)
def test_translation_table(command: str, code: int, filename: str | None, expected: str) -> None:
    err = os_error(OSError(code, os.strerror(code), filename), command, "/env")
    assert str(err) == expected
    assert err.errno == code
    assert isinstance(err, safelink.SafelinkError)


def test_lock_timeouts_and_other_errors() -> None:
    err = translate(LockTimeout("/c/v1/locks/abc.lock", 0.5), "cache")
    assert isinstance(err, safelink.EnvironmentBusy)
    assert str(err) == (
        "/c/v1/locks/abc.lock is being modified by another safelink process "
        "(waited 0.5 s; try again when it has finished)"
    )
    other = ValueError("not ours")
    assert translate(other, "install") is other
    # Without an environment (the command line's net): what and where, still one line.
    net = translate(OSError(errno.EIO, "Input/output error", "/somewhere"), "cache")
    assert str(net) == "cache failed at /somewhere: Input/output error"
