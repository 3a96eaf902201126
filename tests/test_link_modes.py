"""Every link mode on real filesystems: ext4, XFS (reflink=1), btrfs, tmpfs, and across two.

Cache and environment are both placed on a loop-mounted filesystem of the kind
under test, so these tests see exactly what the kernel does there.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import loopfs
import safelink
from conftest import make_venv, run_cli, site_packages, tree
from safelink._layout import PROBE, temp_name
from safelink.strategies import DirPair, register
from safelink.strategies.probe import forget
from wheelmaker import make_wheel

BIG = os.urandom(1 << 20)  # 1 MiB: large enough that btrfs does not inline it


def big_wheel(d: Path) -> Path:
    return make_wheel(
        d,
        "bigdemo",
        "1.0",
        {
            "bigdemo/__init__.py": b"X = 1\n",
            "bigdemo/blob.bin": BIG,
            "bigdemo/tool.sh": b"#!/bin/sh\necho hi\n",
            "bigdemo-1.0.data/scripts/bigdemo-run": b"#!/bin/sh\necho run\n",
        },
        modes={"bigdemo/tool.sh": stat.S_IFREG | 0o755},
    )


@pytest.fixture(autouse=True)
def _fresh_probes() -> None:
    forget()  # loop devices are re-created per session: never trust an old in-memory probe


def setup_on(fs_tmp: object, kind: str) -> tuple[Path, Path, Path]:
    base: Path = fs_tmp(kind)  # type: ignore[operator]
    whl = big_wheel(base)
    return whl, base / "cache", make_venv(base / "venv")


def cached(cache: Path, rel: str) -> Path:
    entry = next(safelink.Cache(cache).entries())
    return Path(entry.files) / rel


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("btrfs", "clone"),
        ("xfs", "clone"),
        ("ext4", "hardlink"),
        ("tmpfs", "hardlink"),
    ],
)
def test_auto_picks_safest_fast_mode(fs_tmp: object, kind: str, expected: str) -> None:
    whl, cache, venv = setup_on(fs_tmp, kind)
    report = safelink.install([whl], venv, cache=cache)
    assert report.link_mode == expected
    assert report.files_by_mode == {expected: 6}
    assert not report.fallbacks and not report.warnings
    proc = run_cli("probe", "--cache-dir", str(cache), str(site_packages(venv)))
    assert f"auto picks: {expected}" in proc.stdout


@pytest.mark.parametrize("kind", ["btrfs", "xfs"])
def test_clone_shares_extents_but_not_writes(fs_tmp: object, kind: str) -> None:
    whl, cache, venv = setup_on(fs_tmp, kind)
    safelink.install([whl], venv, cache=cache, link_mode="clone")
    installed = site_packages(venv) / "bigdemo" / "blob.bin"
    src = cached(cache, "bigdemo/blob.bin")
    assert installed.stat().st_ino != src.stat().st_ino
    assert loopfs.shared_extents(installed) and loopfs.shared_extents(src)
    assert os.access(site_packages(venv) / "bigdemo" / "tool.sh", os.X_OK)
    assert os.access(venv / "bin" / "bigdemo-run", os.X_OK)
    assert installed.stat().st_mode & 0o200  # a normal, writable private file
    with open(installed, "r+b") as f:  # edit in place, as editors that keep inodes do
        f.write(b"EDITED")
    assert src.read_bytes() == BIG
    assert installed.read_bytes()[:6] == b"EDITED"


@pytest.mark.parametrize("kind", ["ext4", "xfs", "btrfs", "tmpfs"])
def test_hardlink_same_inode_copy_independent(fs_tmp: object, kind: str) -> None:
    whl, cache, venv = setup_on(fs_tmp, kind)
    safelink.install([whl], venv, cache=cache, link_mode="hardlink")
    src = cached(cache, "bigdemo/blob.bin")
    assert (site_packages(venv) / "bigdemo" / "blob.bin").stat().st_ino == src.stat().st_ino
    other = make_venv(venv.parent / "venv-copy")
    report = safelink.install([whl], other, cache=cache, link_mode="copy")
    assert report.files_by_mode == {"copy": 6}
    copied = site_packages(other) / "bigdemo" / "blob.bin"
    assert copied.stat().st_ino != src.stat().st_ino and copied.read_bytes() == BIG
    with open(copied, "r+b") as f:
        f.write(b"EDITED")
    assert src.read_bytes() == BIG
    assert os.access(site_packages(other) / "bigdemo" / "tool.sh", os.X_OK)


@pytest.mark.parametrize("kind", ["ext4", "tmpfs"])
def test_explicit_clone_where_impossible_is_one_line_error(fs_tmp: object, kind: str) -> None:
    whl, cache, venv = setup_on(fs_tmp, kind)
    before = tree(venv)
    proc = run_cli(
        "install",
        "--cache-dir",
        str(cache),
        "--python",
        str(venv),
        "--link-mode",
        "clone",
        str(whl),
    )
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "link mode 'clone' cannot work" in proc.stderr
    assert "Operation not supported" in proc.stderr and "--link-mode hardlink" in proc.stderr
    assert tree(venv) == before
    proc = run_cli(
        "install",
        "--cache-dir",
        str(cache),
        "--python",
        str(venv),
        "--link-mode",
        "clone",
        "--allow-fallback",
        "--json",
        str(whl),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["files_by_mode"] == {"hardlink": 6}
    assert "clone cannot work here" in proc.stderr


def test_cross_device_auto_copies_and_warns(cross_device_pair: tuple[Path, Path]) -> None:
    cache_side, env_side = cross_device_pair
    whl = big_wheel(cache_side)
    venv = make_venv(env_side / "venv")
    proc = run_cli(  # no satellite cache on the target's filesystem (test_satellite.py)
        "install", "--cache-dir", str(cache_side / "cache"), "--python", str(venv), str(whl),
        env={"SAFELINK_SATELLITES": "off"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "(copy 6, written 5)" in proc.stdout
    warning = [line for line in proc.stderr.splitlines() if "warning" in line.lower()]
    assert len(warning) == 1 and "different filesystems" in warning[0]
    assert "SAFELINK_CACHE_DIR" in warning[0]


def test_cross_device_explicit_hardlink(cross_device_pair: tuple[Path, Path]) -> None:
    cache_side, env_side = cross_device_pair
    whl = big_wheel(cache_side)
    venv = make_venv(env_side / "venv2")
    before = tree(venv)
    args = ["install", "--cache-dir", str(cache_side / "cache"), "--python", str(venv)]
    proc = run_cli(*args, "--link-mode", "hardlink", str(whl))
    assert proc.returncode == 1 and "EXDEV" in proc.stderr and "--link-mode copy" in proc.stderr
    assert tree(venv) == before
    proc = run_cli(*args, "--link-mode", "hardlink", "--allow-fallback", str(whl))
    assert proc.returncode == 0 and "(copy 6, written 5)" in proc.stdout


def test_emlink_gives_cache_file_a_fresh_inode(fs_tmp: object) -> None:
    """ext4 allows 65,000 links per inode; the 65,001st link fails with EMLINK for real."""
    whl, cache, venv = setup_on(fs_tmp, "ext4")
    safelink.install([whl], venv, cache=cache, link_mode="hardlink")
    src = cached(cache, "bigdemo/__init__.py")
    pile = venv.parent / "pile"
    pile.mkdir()
    n = src.stat().st_nlink
    for i in range(65000 - n):
        os.link(src, pile / str(i))
    assert src.stat().st_nlink == 65000
    with pytest.raises(OSError) as exc:
        os.link(src, pile / "one-more")
    assert exc.value.errno == errno.EMLINK
    old_ino = src.stat().st_ino
    other = make_venv(venv.parent / "venv2")
    report = safelink.install([whl], other, cache=cache, link_mode="hardlink")
    assert report.relinked == 1 and report.files_by_mode == {"hardlink": 6}
    new_src = cached(cache, "bigdemo/__init__.py")
    assert new_src.stat().st_ino != old_ino and new_src.read_bytes() == b"X = 1\n"
    assert (site_packages(other) / "bigdemo" / "__init__.py").stat().st_ino == new_src.stat().st_ino
    assert new_src.stat().st_mode & 0o222 == 0  # still read-only, still fingerprinted


class Flaky:
    """A plugin-style strategy that stops working after two files (EOPNOTSUPP)."""

    name = "flaky"
    shares_inode = False
    isolated = True

    def __init__(self) -> None:
        self.calls = 0

    def link(self, pair: DirPair, src: str, dst: str, executable: bool) -> None:
        self.calls += 1
        if self.calls > 2:
            # leave nothing behind, as the protocol requires
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP), dst)
        os.link(src, dst, src_dir_fd=pair.src_fd, dst_dir_fd=pair.dst_fd)


def test_structural_failure_mid_install_falls_back_for_the_rest(
    tmp_path: Path, cache_dir: Path
) -> None:
    register(Flaky(), replace=True)
    whl = big_wheel(tmp_path)
    venv = make_venv(tmp_path / "v")
    report = safelink.install([whl], venv, link_mode="flaky", allow_fallback=True, threads=1)
    assert report.files_by_mode == {"flaky": 2, "copy": 4}
    assert len(report.fallbacks) == 1 and report.fallbacks[0].error.startswith(
        ("EOPNOTSUPP", "ENOTSUP")
    )
    assert (site_packages(venv) / "bigdemo" / "blob.bin").read_bytes() == BIG


def test_structural_failure_without_fallback_rolls_back(tmp_path: Path, cache_dir: Path) -> None:
    register(Flaky(), replace=True)
    whl = big_wheel(tmp_path)
    venv = make_venv(tmp_path / "v")
    before = tree(venv)
    with pytest.raises(safelink.LinkFailed, match="link mode 'flaky' failed"):
        safelink.install([whl], venv, link_mode="flaky", threads=1)
    assert tree(venv) == before


def test_symlink_mode_points_into_cache_and_warns(tmp_path: Path, cache_dir: Path) -> None:
    whl = big_wheel(tmp_path)
    venv = make_venv(tmp_path / "v")
    proc = run_cli("install", "--python", str(venv), "--link-mode", "symlink", str(whl))
    assert proc.returncode == 0 and "cleaning the cache breaks" in proc.stderr
    link = site_packages(venv) / "bigdemo" / "blob.bin"
    assert link.is_symlink() and os.path.isabs(os.readlink(link))
    assert os.readlink(link).startswith(str(cache_dir))


def test_plugin_strategy_from_entry_point(tmp_path: Path, cache_dir: Path) -> None:
    plugin = tmp_path / "plugin"
    (plugin / "myplug-1.0.dist-info").mkdir(parents=True)
    (plugin / "myplug-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: myplug\nVersion: 1.0\n"
    )
    (plugin / "myplug-1.0.dist-info" / "entry_points.txt").write_text(
        "[safelink.strategies]\nreversed-copy = myplug:Strategy\n"
    )
    (plugin / "myplug.py").write_text(
        "import os\n"
        "from safelink.strategies.copy import CopyStrategy\n"
        "class Strategy(CopyStrategy):\n"
        "    name = 'reversed-copy'\n"
    )
    whl = big_wheel(tmp_path)
    venv = make_venv(tmp_path / "v")
    env = {"PYTHONPATH": str(plugin)}
    proc = run_cli(
        "install", "--python", str(venv), "--link-mode", "reversed-copy", str(whl), env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "(reversed-copy 6, written 5)" in proc.stdout
    proc = run_cli("install", "--python", str(venv), "--link-mode", "nope", str(whl), env=env)
    assert proc.returncode == 1 and "unknown link mode 'nope'" in proc.stderr
    assert "reversed-copy" in proc.stderr


def test_probe_leaves_nothing_behind(fs_tmp: object) -> None:
    base: Path = fs_tmp("btrfs")  # type: ignore[operator]
    target = base / "t"
    target.mkdir()
    proc = run_cli("probe", "--cache-dir", str(base / "cache"), "--json", str(target))
    data = json.loads(proc.stdout)
    assert data["auto"] == "clone" and data["modes"]["clone"] is None
    assert list(target.iterdir()) == []
    assert list((base / "cache" / "v1" / "tmp").iterdir()) == []
    # a killed probe's trial file (dead pid) is swept by the next probe
    (target / (temp_name(PROBE, pid=999999) + ".clone")).write_bytes(b"x")
    run_cli("probe", "--cache-dir", str(base / "cache"), str(target))
    assert list(target.iterdir()) == []


def many_files_wheel(d: Path, n: int = 6000) -> Path:
    files = {f"many/d{i % 40:02d}/m{i:05d}.py": f"X = {i}\n".encode() for i in range(n)}
    files["many/__init__.py"] = b""
    return make_wheel(d, "many", "1.0", files)


def test_two_link_workers_place_every_file(tmp_path: Path, cache_dir: Path) -> None:
    """Big installs link with a forked second worker (threads where there is no fork,
    or where this process has other threads); the result must be identical. The forked
    install runs in a fresh interpreter: a test runner's own threads (pytest-xdist)
    rightly stop this process from forking."""
    whl = many_files_wheel(tmp_path)
    one, two = make_venv(tmp_path / "one"), make_venv(tmp_path / "two")
    r1 = safelink.install([whl], one, threads=1)
    script = (
        "import json, os, sys\n"
        "import safelink\n"
        "forks = []\n"
        "real = getattr(os, 'fork', None)\n"
        "if real is not None:\n"
        "    def counting():\n"
        "        forks.append(1)\n"
        "        return real()\n"
        "    os.fork = counting\n"
        "r = safelink.install([sys.argv[1]], sys.argv[2], threads=2)\n"
        "print(json.dumps({'forks': len(forks), 'modes': r.files_by_mode}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(whl), str(two)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["forks"] == (1 if hasattr(os, "fork") else 0)
    assert r1.files_by_mode == out["modes"] == {"hardlink": 6003}
    listing = {
        str(p.relative_to(site_packages(one))) for p in site_packages(one).rglob("*")
    }
    assert listing == {
        str(p.relative_to(site_packages(two))) for p in site_packages(two).rglob("*")
    }
    record = (site_packages(two) / "many-1.0.dist-info" / "RECORD").read_text()
    assert record.count("\n") == 6003 + 5  # + INSTALLER, REQUESTED, direct_url, safelink, RECORD


def test_no_fork_while_a_thread_python_does_not_know_runs() -> None:
    """A thread started below ``threading`` (``_thread``, or a C library) is a thread
    all the same: forking beside it can deadlock the child, so no worker is forked."""
    import _thread

    from safelink._workers import can_fork, os_threads

    if os_threads() is None:
        pytest.skip("no /proc/self/task here")
    release = _thread.allocate_lock()
    release.acquire()
    started, done = _thread.allocate_lock(), _thread.allocate_lock()
    started.acquire()
    done.acquire()

    def body() -> None:
        started.release()
        release.acquire()
        done.release()

    before = os_threads()
    _thread.start_new_thread(body, ())
    started.acquire()
    try:
        assert os_threads() == (before or 0) + 1
        assert can_fork() is False
    finally:
        release.release()
        done.acquire()


def test_two_workers_fall_back_once(cross_device_pair: tuple[Path, Path]) -> None:
    cache_side, env_side = cross_device_pair
    whl = many_files_wheel(cache_side)
    venv = make_venv(env_side / "many-venv")
    proc = run_cli("install", "--cache-dir", str(cache_side / "cache"), "--python", str(venv),
                   "--threads", "2", "--json", str(whl), env={"SAFELINK_SATELLITES": "off"})
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["files_by_mode"] == {"copy": 6003}
    assert len([ln for ln in proc.stderr.splitlines() if "warning" in ln.lower()]) == 1


def test_worker_failure_rolls_back_everything(tmp_path: Path, cache_dir: Path) -> None:
    """A structural failure in the forked worker (fallback not allowed) undoes both halves."""
    register(Flaky(), replace=True)
    whl = many_files_wheel(tmp_path)
    venv = make_venv(tmp_path / "v")
    before = tree(venv)
    with pytest.raises(safelink.LinkFailed, match="link mode 'flaky' failed"):
        safelink.install([whl], venv, link_mode="flaky", threads=2)
    assert tree(venv) == before


def test_worker_heals_its_half(tmp_path: Path, cache_dir: Path) -> None:
    whl = many_files_wheel(tmp_path)
    a, b = make_venv(tmp_path / "a"), make_venv(tmp_path / "b")
    safelink.install([whl], a, link_mode="hardlink")
    last = site_packages(a) / "many" / "d39" / "m05999.py"  # sorts last: the worker's half
    with open(last, "ab") as f:
        f.write(b"# edited in A\n")
    report = safelink.install([whl], b, link_mode="hardlink", threads=2)
    assert [Path(p).name for p in report.healed] == ["m05999.py"]
    assert (site_packages(b) / "many" / "d39" / "m05999.py").read_bytes() == b"X = 5999\n"
    assert last.read_bytes().endswith(b"# edited in A\n")


@pytest.mark.parametrize("mode", ["hardlink", "copy", "symlink"])
def test_platforms_without_dir_fd_calls(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Windows has no ``*at`` calls: the same install must work from joined paths."""
    import safelink.strategies

    monkeypatch.setattr(safelink.strategies, "DIR_FD", False)
    whl = big_wheel(tmp_path)
    a, b = make_venv(tmp_path / "a"), make_venv(tmp_path / "b")
    safelink.install([whl], a, link_mode="hardlink")
    with open(site_packages(a) / "bigdemo" / "__init__.py", "ab") as f:
        f.write(b"# edit through the link\n")  # the guard must heal from a joined path too
    report = safelink.install([whl], b, link_mode=mode)
    assert report.files_by_mode == {mode: 6}
    assert (site_packages(b) / "bigdemo" / "blob.bin").read_bytes() == BIG
    assert (site_packages(b) / "bigdemo" / "__init__.py").read_bytes() == b"X = 1\n"
    assert len(report.healed) == 1
