"""Full disks, on real tiny filesystems (an 8 MiB ext4 image, a size-limited tmpfs).

Whether the cache or the environment runs out of space: one clean line
("no space left on device ..."), exit 1, no cache entry or temp dir kept, and
the environment exactly as it was (an older version being replaced stays).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import safelink
from conftest import make_venv, run_cli, tree
from fs_fixtures import SmallFsFactory
from test_crash import assert_one_line_error, check_record, demo_wheel, record_rows, small_wheel
from wheelmaker import make_wheel

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """demo 2.0 with 10 MiB of incompressible data: more than the tiny filesystems hold."""
    d = tmp_path_factory.mktemp("big")
    files = {f"demo/blob{i}.bin": os.urandom(2 * MIB) for i in range(5)}
    files["demo/__init__.py"] = b"VERSION = '2.0'\n"
    return make_wheel(d, "demo", "2.0", files)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_cache_on_full_disk(tmp_path: Path, small_fs: SmallFsFactory, big: Path) -> None:
    mnt = small_fs("ext4", 8)
    cache = mnt / "cache"
    venv = make_venv(tmp_path / "venv")
    before = tree(venv)
    # Admit something first so the cache's own directories exist: what is measured
    # below is only what the failed admission could leave behind.
    safelink.Cache(cache).admit(small_wheel(tmp_path))
    free = free_bytes(mnt)

    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(venv), str(big))
    line = assert_one_line_error(proc, "no space left on device while unpacking")
    assert big.name in line and "nothing was kept" in line
    assert [e.plan.name for e in safelink.Cache(cache).entries()] == ["other"]
    assert os.listdir(cache / "v1" / "tmp") == []
    assert free_bytes(mnt) >= free - 512 * 1024  # the partial unpack (~6 MiB) was deleted
    assert tree(venv) == before

    # The cache is usable again at once.
    whl = demo_wheel(tmp_path)
    run_cli("install", "--cache-dir", str(cache), "--python", str(venv), str(whl), check=True)
    check_record(venv, "demo-1.0.dist-info")


@pytest.mark.parametrize(("kind", "size"), [("ext4", 8), ("tmpfs", 6)])
def test_target_on_full_disk(
    tmp_path: Path, small_fs: SmallFsFactory, big: Path, kind: str, size: int
) -> None:
    target = small_fs(kind, size) / "site"
    cache = tmp_path / "cache"  # another filesystem: every file is copied
    run_cli("install", "--cache-dir", str(cache), "--target", str(target),
            str(small_wheel(tmp_path)), check=True)  # fmt: skip
    before = tree(target)

    proc = run_cli("install", "--cache-dir", str(cache), "--target", str(target), str(big))
    line = assert_one_line_error(proc, "no space left on device while installing into")
    assert str(target) in line and "left as it was" in line
    assert tree(target) == before
    check_record(target, "other-1.0.dist-info")


def test_replace_that_does_not_fit_keeps_old_version(
    tmp_path: Path, small_fs: SmallFsFactory, big: Path
) -> None:
    venv = make_venv(small_fs("tmpfs", 6) / "venv")
    cache = tmp_path / "cache"
    safelink.install([demo_wheel(tmp_path, "1.0")], venv, cache=cache)
    before = tree(venv)

    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(venv), str(big))
    assert_one_line_error(proc, "no space left on device")
    assert tree(venv) == before
    check_record(venv, "demo-1.0.dist-info")


def test_running_out_at_every_stage(tmp_path: Path, small_fs: SmallFsFactory) -> None:
    """Leave less and less room: each install either completes or changes nothing.

    One page more room each time, so the disk fills at every stage in turn:
    writing the journal, the link loop, the scripts, metadata and RECORD.
    """
    mnt = small_fs("tmpfs", 4)
    venv = make_venv(mnt / "venv")
    cache = tmp_path / "cache"
    safelink.install([demo_wheel(tmp_path, "1.0", modules=5)], venv, cache=cache)
    v2 = demo_wheel(tmp_path, "2.0", modules=40)
    safelink.Cache(cache).admit(v2)
    before = tree(venv)
    filler = mnt / "filler"
    outcomes = []
    for room_kib in range(0, 1024, 4):  # one page more each time
        with open(filler, "wb") as f:
            f.truncate(0)
        room = max(free_bytes(mnt) - room_kib * 1024, 0)
        with open(filler, "wb") as f:
            # tmpfs allocates on write: really fill it (a sparse file takes no room).
            chunk = b"\0" * MIB
            while room > 0:
                room -= f.write(chunk[: min(room, MIB)])
        try:
            safelink.install([v2], venv, cache=cache)
        except safelink.SafelinkError as exc:
            assert "no space left on device" in str(exc), exc
            assert tree(venv) == before, room_kib
            check_record(venv, "demo-1.0.dist-info")
            outcomes.append("failed")
        else:
            filler.unlink()
            assert set(record_rows(venv)) == {"demo-2.0.dist-info"}
            check_record(venv, "demo-2.0.dist-info")
            outcomes.append("installed")
            break
    filler.unlink(missing_ok=True)
    # The sweep saw both outcomes: the disk really was too full at first.
    assert outcomes[0] == "failed" and outcomes[-1] == "installed", outcomes
    shutil.rmtree(venv)
