"""What differs on macOS and Windows, simulated here where it can be.

* macOS ``sendfile`` only writes to sockets (``ENOTSOCK``) and there is no
  ``copy_file_range``: copy mode must still copy, with read/write (or the
  platform's own call), trying the failing call only once per process.
* The test suite must import without POSIX-only names (Windows has no
  ``signal.SIGKILL``, ``fcntl``, ``os.fork``, ``os.getuid``): collecting it in a
  process where they are gone finds every test module.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import safelink
from conftest import REPO, make_venv, site_packages, tree
from safelink.strategies import copy as copy_mod
from wheelmaker import make_wheel

BLOB = bytes(range(256)) * (3 * 4096 + 7)  # 3 MiB and a bit: several read/write rounds


def failing(code: int, calls: list[str], name: str) -> Callable[..., Any]:
    def fail(*_args: object) -> int:
        calls.append(name)
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize("cfr", ["absent", "fails"])
def test_copy_mode_where_sendfile_cannot_write_to_files(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, cfr: str
) -> None:
    files = {f"mac/m{i}.py": f"X = {i}\n".encode() * 50 for i in range(6)}
    files["mac/blob.bin"] = BLOB
    files["mac/empty.txt"] = b""
    whl = make_wheel(tmp_path, "mac", "1.0", files)
    safelink.Cache(cache_dir).admit(whl)  # admission copies nothing: unaffected

    venv = make_venv(tmp_path / "venv")  # first: making a venv copies with shutil (sendfile)
    calls: list[str] = []
    monkeypatch.setattr(os, "sendfile", failing(errno.ENOTSOCK, calls, "sendfile"), raising=False)
    monkeypatch.setattr(copy_mod, "_HAS_SENDFILE", True)
    if cfr == "absent":
        monkeypatch.delattr(os, "copy_file_range", raising=False)
        monkeypatch.setattr(copy_mod, "_HAS_CFR", False)
    else:
        fail = failing(errno.EXDEV, calls, "copy_file_range")
        monkeypatch.setattr(os, "copy_file_range", fail, raising=False)
        monkeypatch.setattr(copy_mod, "_HAS_CFR", True)

    report = safelink.install([whl], venv, link_mode="copy", threads=1)
    copied = report.files_by_mode["copy"]
    assert set(report.files_by_mode) == {"copy"} and copied >= len(files)
    assert not report.warnings
    site = site_packages(venv)
    for name, data in files.items():
        assert (site / name).read_bytes() == data, name
    # sendfile is tried once, then never again in this process; copy_file_range (a
    # different answer per pair of files) is tried for each file.
    assert calls.count("sendfile") == 1
    expected_cfr = copied if cfr == "fails" else 0
    assert calls.count("copy_file_range") == expected_cfr
    leftovers = [k for k in tree(venv) if ".safelink" in k or k.endswith(".tmp")]
    assert leftovers == []


def test_copy_fd_falls_back_to_read_write_after_enotsock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper the EMLINK relink and ``repair`` use too."""
    calls: list[str] = []
    monkeypatch.setattr(os, "sendfile", failing(errno.ENOTSOCK, calls, "sendfile"), raising=False)
    monkeypatch.setattr(copy_mod, "_HAS_SENDFILE", True)
    monkeypatch.setattr(copy_mod, "_HAS_CFR", False)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(BLOB)
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        copy_mod.copy_fd(sfd, dfd)
    finally:
        os.close(sfd)
        os.close(dfd)
    assert dst.read_bytes() == BLOB and calls == ["sendfile"]
    assert copy_mod._HAS_SENDFILE is False


def test_other_sendfile_errors_are_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only "this call cannot do it here" falls back; a real failure (no space) stands."""
    monkeypatch.setattr(os, "sendfile", failing(errno.ENOSPC, [], "sendfile"), raising=False)
    monkeypatch.setattr(copy_mod, "_HAS_SENDFILE", True)
    monkeypatch.setattr(copy_mod, "_HAS_CFR", False)
    src = tmp_path / "src"
    src.write_bytes(b"x" * 100)
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with pytest.raises(OSError) as info:
            copy_mod.copy_fd(sfd, dfd)
    finally:
        os.close(sfd)
        os.close(dfd)
    assert info.value.errno == errno.ENOSPC


# -- Windows-like Python: no fork, no fcntl, no SIGKILL -----------------------------------------

NONPOSIX = REPO / "tests" / "nonposix"
POSIX_ONLY_MODULES = {"fcntl", "pwd", "grp", "termios", "tty", "pty", "resource", "posix"}
POSIX_ONLY_ATTRS = {
    ("signal", "SIGKILL"),
    ("os", "fork"),
    ("os", "getuid"),
    ("os", "geteuid"),
    ("os", "getgid"),
    ("os", "uname"),
}


def windows_like(*argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SAFELINK_TEST_NO_POSIX="1", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NONPOSIX), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def test_windows_like_python_links_with_threads_and_locks_a_file(
    tmp_path: Path, cache_dir: Path
) -> None:
    files = {f"win/d{i % 7}/m{i:04d}.py": f"X = {i}\n".encode() for i in range(600)}
    whl = make_wheel(tmp_path, "win", "1.0", files)
    venv = make_venv(tmp_path / "venv")
    script = (
        "import os, sys, safelink\n"
        "from safelink import _lock, _workers\n"
        "import signal\n"
        "assert not hasattr(os, 'fork') and not hasattr(signal, 'SIGKILL')\n"
        "assert _lock.DIRECTORY_LOCKS is False and not _workers.can_fork()\n"
        "r = safelink.install([sys.argv[1]], sys.argv[2], threads=2, link_mode='hardlink')\n"
        "print(sorted(r.files_by_mode.items()))\n"
    )
    proc = windows_like("-c", script, str(whl), str(venv))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[('hardlink', 602)]\n"  # 600 files, METADATA, WHEEL
    assert (venv / ".safelink.lock").is_file()  # the environment's lock: a file, not the dir
    for name, data in files.items():
        assert (site_packages(venv) / name).read_bytes() == data


def test_the_suite_collects_where_posix_only_names_are_missing() -> None:
    """Every test module imports without ``fcntl``, ``os.fork`` or ``SIGKILL`` (as on
    Windows): a module that needs them skips, saying why, instead of failing to import."""
    proc = windows_like("-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    collected = {line.split("::")[0] for line in proc.stdout.splitlines() if "::" in line}
    every = {str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py")}
    assert {"tests/test_platforms.py", "tests/test_concurrency.py"} <= collected <= every
    assert len(every - collected) <= 2, every - collected  # loop-fs internals need fcntl


def test_no_posix_only_names_at_module_level_in_tests() -> None:
    """The names the simulation cannot take away (pytest itself needs ``os.getuid``):
    no test module uses a POSIX-only module or attribute outside a function."""
    import ast

    offenders = []
    for path in sorted((REPO / "tests").glob("*.py")):
        tree_ = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree_.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if isinstance(node, ast.Try):
                continue  # guarded: try: import fcntl / except ImportError
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import):
                    bad = [a.name for a in sub.names if a.name in POSIX_ONLY_MODULES]
                elif isinstance(sub, ast.ImportFrom):
                    bad = [sub.module] if sub.module in POSIX_ONLY_MODULES else []
                elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
                    bad = (
                        [f"{sub.value.id}.{sub.attr}"]
                        if (sub.value.id, sub.attr) in POSIX_ONLY_ATTRS
                        else []
                    )
                else:
                    bad = []
                offenders += [f"{path.name}:{sub.lineno}: {b}" for b in bad]
    assert offenders == []
