"""Tests of the loop-mounted filesystem helper (tests/loopfs.py, tests/fs_fixtures.py).

Everything here runs against real ext4 / XFS / btrfs / tmpfs mounts.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import loopfs
from fs_fixtures import REQUIRE_ENV, FsTmpFactory, SmallFsFactory

fcntl = pytest.importorskip("fcntl")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

TESTS_DIR = Path(__file__).resolve().parent
PAYLOAD = bytes(range(256)) * 1024  # 256 KiB: far above btrfs' inline-extent limit
FICLONERANGE = 0x4020940D
EOPNOTSUPP = errno.EOPNOTSUPP  # what Linux 6.x returns for FICLONE on ext4 and tmpfs


# ----------------------------------------------------------------------------- helpers


def ficlone(src: Path, dst: Path) -> None:
    """FICLONE onto a freshly O_EXCL-created destination."""
    src_fd = os.open(src, os.O_RDONLY)
    try:
        dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.ioctl(dst_fd, loopfs.FICLONE, src_fd)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def write_synced(path: Path, data: bytes = PAYLOAD) -> Path:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return path


def cp(mode: str, src: Path, dst: Path) -> None:
    subprocess.run(["cp", f"--reflink={mode}", str(src), str(dst)], check=True)


def findmnt_fstype(path: Path) -> str:
    out = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE", "--target", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def loop_backing_files() -> str:
    return subprocess.run(
        ["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], check=True, capture_output=True, text=True
    ).stdout


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def assert_gone(base: Path) -> None:
    assert not base.exists()
    assert not any(mp.startswith(str(base)) for mp, _, _ in loopfs._mount_table())
    assert wait_until(lambda: str(base) not in loop_backing_files()), loop_backing_files()


@pytest.fixture
def loop_ok(loop_filesystems: loopfs.LoopFilesystems) -> None:
    """Gate for tests that build their own LoopFilesystems: skip/fail like the rest."""


# ------------------------------------------------------------------ the session mounts


@pytest.mark.parametrize("kind", loopfs.FS_KINDS)
def test_each_kind_is_mounted_with_right_type(
    loop_filesystems: loopfs.LoopFilesystems, kind: str
) -> None:
    mountpoint = loop_filesystems.path(kind)
    assert loop_filesystems.mounts[kind] == mountpoint
    assert loop_filesystems.base is not None
    assert mountpoint.parent == loop_filesystems.base
    assert mountpoint.parent.name.startswith(loopfs.WORKDIR_PREFIX)
    assert loopfs.is_mountpoint(mountpoint)
    assert loopfs.fs_type(mountpoint) == kind
    assert loopfs.fs_type(mountpoint / "not" / "yet" / "there") == kind
    assert findmnt_fstype(mountpoint) == kind  # independent oracle
    assert stat.S_IMODE(mountpoint.stat().st_mode) == 0o1777
    probe = mountpoint / f"probe-{os.getpid()}"
    probe.write_bytes(b"hello")
    try:
        assert probe.read_bytes() == b"hello"
    finally:
        probe.unlink()


def test_filesystems_are_distinct_devices(loop_filesystems: loopfs.LoopFilesystems) -> None:
    assert set(loop_filesystems.mounts) == set(loopfs.FS_KINDS)
    assert loop_filesystems.base is not None
    devices = {kind: os.stat(p).st_dev for kind, p in loop_filesystems.mounts.items()}
    assert len(set(devices.values())) == len(loopfs.FS_KINDS)
    assert os.stat(loop_filesystems.base).st_dev not in devices.values()


def test_path_of_unknown_kind_raises(loop_filesystems: loopfs.LoopFilesystems) -> None:
    with pytest.raises(KeyError, match="zfs"):
        loop_filesystems.path("zfs")


def test_fs_type_outside_loop_mounts(loop_filesystems: loopfs.LoopFilesystems) -> None:
    assert loop_filesystems.base is not None
    assert loopfs.fs_type(loop_filesystems.base) == findmnt_fstype(loop_filesystems.base)
    assert loopfs.fs_type("/proc/self") == "proc"


# ---------------------------------------------------------------------------- linking


@pytest.mark.parametrize("kind", loopfs.FS_KINDS)
def test_hardlink_within_filesystem(fs_tmp: FsTmpFactory, kind: str) -> None:
    directory = fs_tmp(kind)
    src = write_synced(directory / "src")
    os.link(src, directory / "dst")
    assert os.path.samefile(src, directory / "dst")
    assert src.stat().st_nlink == 2
    assert (directory / "dst").read_bytes() == PAYLOAD


@pytest.mark.parametrize(("src_kind", "dst_kind"), list(itertools.permutations(loopfs.FS_KINDS, 2)))
def test_hardlink_across_filesystems_is_exdev(
    fs_tmp: FsTmpFactory, src_kind: str, dst_kind: str
) -> None:
    src = write_synced(fs_tmp(src_kind) / "src", b"x")
    dst = fs_tmp(dst_kind) / "dst"
    with pytest.raises(OSError) as excinfo:
        os.link(src, dst)
    assert excinfo.value.errno == errno.EXDEV
    assert not dst.exists()


@pytest.mark.parametrize("kind", loopfs.REFLINK_KINDS)
def test_ficlone_works_on_reflink_filesystems(fs_tmp: FsTmpFactory, kind: str) -> None:
    directory = fs_tmp(kind)
    src = write_synced(directory / "src")
    dst = directory / "dst"
    assert not loopfs.shared_extents(src)
    ficlone(src, dst)
    assert dst.read_bytes() == PAYLOAD
    assert not os.path.samefile(src, dst)
    assert loopfs.shared_extents(dst)
    assert loopfs.shared_extents(src)
    with open(dst, "r+b") as f:  # copy-on-write: the source is untouched
        f.write(b"changed")
    assert src.read_bytes() == PAYLOAD


@pytest.mark.parametrize("kind", loopfs.NO_REFLINK_KINDS)
def test_ficlone_unsupported_on_ext4_and_tmpfs(fs_tmp: FsTmpFactory, kind: str) -> None:
    directory = fs_tmp(kind)
    src = write_synced(directory / "src")
    dst = directory / "dst"
    with pytest.raises(OSError) as excinfo:
        ficlone(src, dst)
    assert excinfo.value.errno == EOPNOTSUPP, os.strerror(excinfo.value.errno or 0)
    assert dst.stat().st_size == 0  # O_EXCL created it; nothing was cloned


def test_ficlone_across_filesystems_is_exdev(fs_tmp: FsTmpFactory) -> None:
    src = write_synced(fs_tmp("btrfs") / "src")
    with pytest.raises(OSError) as excinfo:
        ficlone(src, fs_tmp("xfs") / "dst")
    assert excinfo.value.errno == errno.EXDEV


# ----------------------------------------------------------------------- shared extents

IMPLEMENTATIONS = {
    "shared_extents": loopfs.shared_extents,
    "fiemap": loopfs._fiemap_shared,
    "filefrag": loopfs._filefrag_shared,
}


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("kind", loopfs.REFLINK_KINDS)
def test_shared_extents_after_cp_reflink(fs_tmp: FsTmpFactory, kind: str, impl: str) -> None:
    shared = IMPLEMENTATIONS[impl]
    directory = fs_tmp(kind)
    src = write_synced(directory / "src")
    plain = directory / "plain"
    cp("never", src, plain)
    assert not shared(src)
    assert not shared(plain)
    clone = directory / "clone"
    cp("always", src, clone)
    assert shared(clone)
    assert shared(src)
    assert not shared(plain)


@pytest.mark.parametrize("kind", loopfs.REFLINK_KINDS)
def test_shared_extents_finds_a_late_extent(fs_tmp: FsTmpFactory, kind: str) -> None:
    """More extents than one FIEMAP batch; only the very last one is shared."""
    directory = fs_tmp(kind)
    block, stride, count = 4096, 65536, 3 * 64 + 7
    chunk = os.urandom(block)
    target = directory / "many"
    with open(target, "wb") as f:
        for i in range(count):
            f.seek(i * stride)
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    donor = write_synced(directory / "donor", os.urandom(block))
    out = subprocess.run(
        ["filefrag", "-v", str(target)], check=True, capture_output=True, text=True
    ).stdout
    extents = [line for line in out.splitlines() if re.match(r"\s*\d+:", line)]
    assert len(extents) >= count  # really more than 3 FIEMAP batches
    assert not any("shared" in line for line in extents)
    assert not loopfs._fiemap_shared(target)

    # FICLONERANGE the donor block over the last data block of the target.
    src_fd = os.open(donor, os.O_RDONLY)
    dst_fd = os.open(target, os.O_RDWR)
    try:
        arg = struct.pack("=qQQQ", src_fd, 0, block, (count - 1) * stride)
        fcntl.ioctl(dst_fd, FICLONERANGE, arg)
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    assert loopfs._fiemap_shared(target)
    assert loopfs._filefrag_shared(target)
    assert loopfs.shared_extents(target)


@pytest.mark.parametrize("kind", loopfs.NO_REFLINK_KINDS)
def test_shared_extents_false_without_reflink(fs_tmp: FsTmpFactory, kind: str) -> None:
    directory = fs_tmp(kind)
    src = write_synced(directory / "src")
    cp("auto", src, directory / "copy")
    os.link(src, directory / "hardlink")
    for name in ("src", "copy", "hardlink"):
        assert not loopfs.shared_extents(directory / name)


def test_shared_extents_falls_back_to_filefrag(
    fs_tmp: FsTmpFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = fs_tmp("btrfs")
    src = write_synced(directory / "src")
    cp("always", src, directory / "clone")
    cp("never", src, directory / "plain")
    requests: list[int] = []

    def broken_ioctl(fd: int, request: int, *args: Any) -> Any:
        requests.append(request)
        raise OSError(errno.ENOTTY, "simulated FIEMAP failure")

    monkeypatch.setattr(fcntl, "ioctl", broken_ioctl)
    assert loopfs.shared_extents(directory / "clone")
    assert not loopfs.shared_extents(directory / "plain")
    assert requests == [loopfs.FS_IOC_FIEMAP] * 2


def test_shared_extents_missing_file(fs_tmp: FsTmpFactory) -> None:
    with pytest.raises(FileNotFoundError):
        loopfs.shared_extents(fs_tmp("btrfs") / "nope")


# ----------------------------------------------------------------- small filesystems


@pytest.mark.parametrize("kind", loopfs.SMALL_KINDS)
def test_small_filesystem_runs_out_of_space(small_fs: SmallFsFactory, kind: str) -> None:
    mountpoint = small_fs(kind, 8)
    assert loopfs.fs_type(mountpoint) == kind
    assert stat.S_IMODE(mountpoint.stat().st_mode) == 0o1777
    assert shutil.disk_usage(mountpoint).total <= 8 * 1024 * 1024
    with pytest.raises(OSError) as excinfo, open(mountpoint / "big", "wb") as f:
        for _ in range(16):
            f.write(b"\0" * (1024 * 1024))
            f.flush()
            os.fsync(f.fileno())
    assert excinfo.value.errno == errno.ENOSPC


def test_small_release_and_validation(loop_filesystems: loopfs.LoopFilesystems) -> None:
    mountpoint = loop_filesystems.small("ext4", 4)
    assert mountpoint in loop_filesystems.small_mounts
    assert loopfs.is_mountpoint(mountpoint)
    image = mountpoint.with_name(mountpoint.name + ".img")
    assert image.exists()
    loop_filesystems.release(mountpoint)
    assert not loopfs.is_mountpoint(mountpoint)
    assert not mountpoint.exists()
    assert not image.exists()
    assert mountpoint not in loop_filesystems.small_mounts
    with pytest.raises(KeyError):
        loop_filesystems.release(mountpoint)
    with pytest.raises(ValueError):
        loop_filesystems.small("btrfs", 256)
    with pytest.raises(ValueError):
        loop_filesystems.small("ext4", 1)


# ----------------------------------------------------------------- lifecycle/teardown


@pytest.mark.usefixtures("loop_ok")
def test_lifecycle_mounts_and_cleans_everything(tmp_path: Path) -> None:
    lfs = loopfs.LoopFilesystems(
        tmp_path, kinds=("ext4", "btrfs", "tmpfs"), size_mib={"ext4": 32, "btrfs": 128}
    )
    assert lfs.base is None
    with lfs:
        base = lfs.base
        assert base is not None
        assert base.parent == tmp_path
        small = lfs.small("tmpfs", 2)
        mounted = sorted(loopfs._mounts_under(base))
        assert mounted == sorted(str(p) for p in [*lfs.mounts.values(), small])
        images = sorted(base.glob("*.img"))
        assert [p.name for p in images] == ["btrfs.img", "ext4.img"]
        for image in images:
            assert loopfs._loops_for(image), image
            assert image.stat().st_blocks * 512 < image.stat().st_size  # sparse
        assert str(base) in loop_backing_files()
    assert_gone(base)
    assert lfs.mounts == {}
    assert list(tmp_path.iterdir()) == []
    lfs.close()  # idempotent
    lfs.close()


@pytest.mark.usefixtures("loop_ok")
def test_teardown_when_body_raises(tmp_path: Path) -> None:
    base: Path | None = None
    with (
        pytest.raises(ZeroDivisionError),
        loopfs.LoopFilesystems(tmp_path, kinds=("tmpfs", "ext4"), size_mib=32) as lfs,
    ):
        base = lfs.base
        _ = 1 / 0
    assert base is not None
    assert_gone(base)


@pytest.mark.usefixtures("loop_ok")
def test_teardown_when_setup_fails_midway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_mkfs_argv = loopfs._mkfs_argv

    def failing_mkfs_argv(kind: str, *, small: bool) -> list[str]:
        if kind == "btrfs":
            return ["mkfs.ext4", "-q", "-F", "-O", "no_such_feature"]
        return real_mkfs_argv(kind, small=small)

    monkeypatch.setattr(loopfs, "_mkfs_argv", failing_mkfs_argv)
    lfs = loopfs.LoopFilesystems(tmp_path, kinds=("tmpfs", "ext4", "btrfs"), size_mib=128)
    with pytest.raises(loopfs.LoopFsError, match="no_such_feature"):
        lfs.open()
    assert list(tmp_path.iterdir()) == []
    assert loopfs._mounts_under(tmp_path) == []
    assert lfs.base is None


@pytest.mark.usefixtures("loop_ok")
def test_busy_mount_falls_back_to_lazy_unmount(tmp_path: Path) -> None:
    lfs = loopfs.LoopFilesystems(tmp_path, kinds=("ext4",), size_mib=32).open()
    base = lfs.base
    assert base is not None
    busy = open(lfs.path("ext4") / "held-open", "wb")  # noqa: SIM115 - must outlive close()
    try:
        lfs.close()  # plain umount says EBUSY; must not raise nor leave a mount
        assert not base.exists()
        assert loopfs._mounts_under(tmp_path) == []
        busy.write(b"still writable through the detached mount")
    finally:
        busy.close()
    assert_gone(base)  # autoclear frees the loop device after the last close


@pytest.mark.usefixtures("loop_ok")
def test_rmtree_force_refuses_to_cross_mounts(tmp_path: Path) -> None:
    with loopfs.LoopFilesystems(tmp_path, kinds=("tmpfs",), size_mib=4) as lfs:
        assert lfs.base is not None
        keep = lfs.path("tmpfs") / "keep"
        keep.write_text("x")
        with pytest.raises(loopfs.LoopFsError):
            loopfs.rmtree_force(lfs.base)
        with pytest.raises(loopfs.LoopFsError):
            loopfs.rmtree_force(lfs.path("tmpfs"))
        assert keep.read_text() == "x"


@pytest.mark.usefixtures("loop_ok")
def test_cleanup_stale_removes_abandoned_workdirs(tmp_path: Path) -> None:
    lfs = loopfs.LoopFilesystems(tmp_path, kinds=("tmpfs", "ext4"), size_mib=32).open()
    base = lfs.base
    assert base is not None
    (tmp_path / "unrelated").mkdir()
    assert loopfs.cleanup_stale(tmp_path) == [str(base)]  # as if the owner had crashed
    assert_gone(base)
    assert (tmp_path / "unrelated").is_dir()
    lfs.close()  # the owner's own teardown copes with the already-cleaned state
    assert lfs.base is None


def test_rmtree_force_removes_read_only_trees(fs_tmp: FsTmpFactory) -> None:
    top = fs_tmp("xfs") / "tree"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_text("x")
    (top / "a" / "link").symlink_to("/etc")
    (top / "closed").mkdir()
    (top / "closed" / "g").write_text("y")
    os.chmod(top / "a" / "b" / "f", 0o444)
    os.chmod(top / "a" / "b", 0o555)
    os.chmod(top / "a", 0o555)
    os.chmod(top / "closed", 0o000)
    os.chmod(top, 0o555)
    loopfs.rmtree_force(top)
    assert not top.exists()
    assert Path("/etc").is_dir()
    loopfs.rmtree_force(top)  # missing: no-op


# ------------------------------------------------------------------------ fixtures


@pytest.mark.parametrize("fs_dir", loopfs.FS_KINDS, indirect=True)
def test_fs_dir_is_fresh_on_requested_kind(fs_dir: Path, request: pytest.FixtureRequest) -> None:
    assert loopfs.fs_type(fs_dir) == request.node.callspec.params["fs_dir"]
    assert list(fs_dir.iterdir()) == []
    assert request.node.get_closest_marker("loopfs") is not None


def test_fs_tmp_dirs_are_unique(fs_tmp: FsTmpFactory) -> None:
    first, second = fs_tmp("tmpfs"), fs_tmp("tmpfs", mode=0o777)
    assert first != second
    assert stat.S_IMODE(first.stat().st_mode) == 0o755
    assert stat.S_IMODE(second.stat().st_mode) == 0o777


def test_cross_device_pair(cross_device_pair: tuple[Path, Path]) -> None:
    ext4_dir, tmpfs_dir = cross_device_pair
    assert (loopfs.fs_type(ext4_dir), loopfs.fs_type(tmpfs_dir)) == ("ext4", "tmpfs")
    assert os.stat(ext4_dir).st_dev != os.stat(tmpfs_dir).st_dev


INNER_TEST = """
import json, os, pathlib
import loopfs

def test_inner(fs_tmp, cross_device_pair, small_fs, request):
    d = fs_tmp("btrfs")
    ro = d / "ro"
    ro.mkdir()
    (ro / "f").write_text("x")
    os.chmod(ro / "f", 0o444)
    os.chmod(ro, 0o555)
    tiny = small_fs("tmpfs", 1)
    a, b = cross_device_pair
    pathlib.Path(os.environ["RECORD"]).write_text(json.dumps({
        "dirs": [str(d), str(a), str(b)],
        "tiny": str(tiny),
        "base": str(tiny.parent),
        "marked": request.node.get_closest_marker("loopfs") is not None,
    }))
"""

BOOTSTRAP = """
import sys
import loopfs
if sys.argv[1] != "-":
    loopfs.can_mount = lambda: sys.argv[1]
import pytest
sys.exit(pytest.main(sys.argv[2:]))
"""


def run_inner_pytest(
    tmp_path: Path, reason: str | None, *, require: bool
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR), "RECORD": str(tmp_path / "record.json")}
    env.pop(REQUIRE_ENV, None)
    if require:
        env[REQUIRE_ENV] = "1"
    argv = ["-p", "fs_fixtures", "-p", "no:cacheprovider", "-rs", "-q", "test_inner.py"]
    return subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, reason or "-", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.usefixtures("loop_ok")
def test_plugin_end_to_end_cleans_up(tmp_path: Path) -> None:
    proc = run_inner_pytest(tmp_path, None, require=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["marked"]
    for directory in record["dirs"]:
        assert not os.path.exists(directory)
    assert_gone(Path(record["base"]))


def test_plugin_skips_when_unavailable(tmp_path: Path) -> None:
    proc = run_inner_pytest(tmp_path, "simulated: no loop devices", require=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout
    assert "simulated: no loop devices" in proc.stdout


def test_plugin_fails_when_required_but_unavailable(tmp_path: Path) -> None:
    proc = run_inner_pytest(tmp_path, "simulated: no loop devices", require=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "skipped" not in proc.stdout
    assert "1 error" in proc.stdout
    assert f"{REQUIRE_ENV} is set but simulated: no loop devices" in proc.stdout


# ---------------------------------------------------------------------------- CLI


def test_cli_check_matches_can_mount() -> None:
    proc = subprocess.run(
        [sys.executable, str(TESTS_DIR / "loopfs.py"), "check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    reason = loopfs.can_mount()
    if reason is None:
        assert (proc.returncode, proc.stdout) == (0, "ok\n")
    else:
        assert (proc.returncode, proc.stdout) == (1, reason + "\n")


def test_cli_check_reports_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    loopfs.can_mount.cache_clear()
    try:
        assert loopfs.main(["check"]) == 1
    finally:
        loopfs.can_mount.cache_clear()
    assert capsys.readouterr().out == "not root: loop-mounted filesystem tests need root\n"
