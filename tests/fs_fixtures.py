"""pytest plugin: real loop-mounted filesystems (ext4, XFS, btrfs, tmpfs).

Loaded from ``tests/conftest.py`` with ``pytest_plugins = ["fs_fixtures"]``.

Fixtures:

* ``loop_filesystems`` (session): the :class:`loopfs.LoopFilesystems`, mounted once.
* ``fs_tmp`` (function): factory, ``fs_tmp("btrfs")`` -> fresh empty directory on
  that filesystem, deleted after the test (read-only entries included).
* ``fs_dir`` (function): a fresh directory on the kind given by indirect
  parametrisation: ``@pytest.mark.parametrize("fs_dir", ["xfs"], indirect=True)``.
* ``cross_device_pair`` (function): ``(dir_on_ext4, dir_on_tmpfs)``.
* ``small_fs`` (function): factory, ``small_fs("ext4", 8)`` -> mount point of an
  extra tiny filesystem for ENOSPC tests, unmounted after the test.

When loop mounts are impossible (see :func:`loopfs.can_mount`) tests using these
fixtures are skipped, unless ``SAFELINK_REQUIRE_LOOPFS=1`` is set (as in CI):
then they fail, so CI can never silently skip them.  Every test using them gets
the ``loopfs`` marker, so ``-m "not loopfs"`` deselects them.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

import loopfs

REQUIRE_ENV = "SAFELINK_REQUIRE_LOOPFS"


class FsTmpFactory(Protocol):
    def __call__(self, kind: str, *, mode: int = 0o755) -> Path: ...


class SmallFsFactory(Protocol):
    def __call__(self, kind: str = "ext4", size_mib: int = 8) -> Path: ...


def loopfs_required() -> bool:
    """True when the environment demands real loop filesystems (CI)."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "loopfs: needs real loop-mounted filesystems (root)")
    # An install across filesystems keeps a satellite cache at the target filesystem's
    # root (as root: the loop mounts' roots, or "/"), outside every test's directories.
    # Off unless a test turns it on (tests/test_satellite.py does, on mounts of its own).
    os.environ.setdefault("SAFELINK_SATELLITES", "off")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "loop_filesystems" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.loopfs)


@pytest.fixture(scope="session")
def loop_filesystems() -> Iterator[loopfs.LoopFilesystems]:
    reason = loopfs.can_mount()
    if reason is not None:
        if loopfs_required():
            pytest.fail(f"{REQUIRE_ENV} is set but {reason}", pytrace=False)
        pytest.skip(reason)
    with loopfs.LoopFilesystems() as lfs:
        yield lfs


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:48] or "test"


@pytest.fixture
def fs_tmp(
    loop_filesystems: loopfs.LoopFilesystems, request: pytest.FixtureRequest
) -> Iterator[FsTmpFactory]:
    created: list[Path] = []
    prefix = _slug(request.node.name) + "-"

    def make(kind: str, *, mode: int = 0o755) -> Path:
        directory = Path(tempfile.mkdtemp(prefix=prefix, dir=loop_filesystems.path(kind)))
        os.chmod(directory, mode)
        created.append(directory)
        return directory

    yield make
    for directory in reversed(created):
        loopfs.rmtree_force(directory)


@pytest.fixture
def fs_dir(request: pytest.FixtureRequest, fs_tmp: FsTmpFactory) -> Path:
    kind = getattr(request, "param", None)
    if not isinstance(kind, str):
        pytest.fail(
            "fs_dir needs indirect parametrisation, e.g. "
            '@pytest.mark.parametrize("fs_dir", ["btrfs", "ext4"], indirect=True)',
            pytrace=False,
        )
    return fs_tmp(kind)


@pytest.fixture
def cross_device_pair(fs_tmp: FsTmpFactory) -> tuple[Path, Path]:
    return fs_tmp("ext4"), fs_tmp("tmpfs")


@pytest.fixture
def small_fs(loop_filesystems: loopfs.LoopFilesystems) -> Iterator[SmallFsFactory]:
    made: list[Path] = []

    def make(kind: str = "ext4", size_mib: int = 8) -> Path:
        mountpoint = loop_filesystems.small(kind, size_mib)
        made.append(mountpoint)
        return mountpoint

    yield make
    for mountpoint in reversed(made):
        loop_filesystems.release(mountpoint)
