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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import safelink
from conftest import make_venv, site_packages, tree
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

    venv = make_venv(tmp_path / "venv")
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
