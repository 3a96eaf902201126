"""Satellite caches on real loop-mounted filesystems: the cache on one filesystem, the
environments on another. The first install copies each wheel once into a satellite
cache on the environments' filesystem; every later install links from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import loopfs
from conftest import REPO, make_venv, run_cli, site_packages, tree
from wheelmaker import make_wheel

BLOB = bytes(range(256)) * 2048  # 512 KiB: big enough for real extents


def demo_wheel(d: Path, name: str = "satdemo", n: int = 40) -> Path:
    files = {f"{name}/m{i:03d}.py": f"X = {i}\n".encode() * 20 for i in range(n)}
    files[f"{name}/__init__.py"] = b"X = 1\n"
    files[f"{name}/blob.bin"] = BLOB
    return make_wheel(d, name, "1.0", files)


def install(cache: Path, venv: Path, whl: Path, *extra: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return run_cli("install", "--cache-dir", str(cache), "--python", str(venv), "--json",
                   *extra, str(whl), env=env)  # fmt: skip


def mount_root(path: Path) -> Path:
    dev = path.stat().st_dev
    while path.parent != path and path.parent.stat().st_dev == dev:
        path = path.parent
    return path


def warnings_of(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The warnings an install reported (in its --json document), each one line."""
    warned: list[str] = json.loads(proc.stdout)["warnings"]
    assert all("\n" not in w for w in warned)
    return warned


def sat_entries(sat: Path) -> list[str]:
    d = sat / "v1" / "entries"
    return sorted(os.listdir(d)) if d.exists() else []


def sat_tmp(sat: Path) -> list[str]:
    d = sat / "v1" / "tmp"
    return sorted(os.listdir(d)) if d.exists() else []


@pytest.fixture
def ext4_root(small_fs: object) -> Path:
    """A fresh ext4 filesystem of this test alone: its mount root is where the
    default satellite goes (``<mount>/.safelink-cache``)."""
    return small_fs("ext4", 64)  # type: ignore[operator,no-any-return]


@pytest.fixture
def no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFELINK_SATELLITES", raising=False)


# -- default place, hardlinks: the satellite shares inodes with the environments --------


def test_first_install_fills_the_satellite_later_ones_link(
    fs_tmp: object, ext4_root: Path, no_env_override: None
) -> None:
    cache_side = fs_tmp("xfs")  # type: ignore[operator]
    whl = demo_wheel(cache_side)
    cache = cache_side / "cache"
    sat = ext4_root / ".safelink-cache"
    venvs = [make_venv(ext4_root / f"venv{i}") for i in (1, 2, 3)]

    first = install(cache, venvs[0], whl)
    assert first.returncode == 0, first.stderr
    warned = warnings_of(first)
    assert len(warned) == 1, (first.stderr, first.stdout)
    assert f"the satellite cache {sat}" in warned[0]
    assert "later installs onto this filesystem link from it" in warned[0]
    report = json.loads(first.stdout)
    assert report["link_mode"] == "hardlink"
    (sha,) = sat_entries(sat)
    assert report["wheels"][0]["sha256"] == sha
    assert sat_tmp(sat) == []

    for venv in venvs[1:]:
        proc = install(cache, venv, whl)
        assert proc.returncode == 0, proc.stderr
        assert warnings_of(proc) == []
        rep = json.loads(proc.stdout)
        assert rep["files_by_mode"] == {"hardlink": 44}
    cached = sat / "v1" / "entries" / sha / "files" / "satdemo" / "blob.bin"
    st = os.stat(cached)
    assert st.st_nlink == 4  # the satellite and three environments share one inode
    for venv in venvs:
        assert os.stat(site_packages(venv) / "satdemo" / "blob.bin").st_ino == st.st_ino
    # the main cache's file is another inode on another filesystem, untouched
    main = cache / "v1" / "entries" / sha / "files" / "satdemo" / "blob.bin"
    assert os.stat(main).st_nlink == 1
    assert os.stat(main).st_dev != st.st_dev
    # the main cache knows its satellite
    out = run_cli("cache", "dir", "--cache-dir", str(cache))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [str(cache), f"satellite: {sat}"]


# -- pinned place, clones: own inodes, shared extents ------------------------------------


def test_pinned_satellite_on_xfs_clones(fs_tmp: object) -> None:
    cache_side = fs_tmp("ext4")  # type: ignore[operator]
    env_side = fs_tmp("xfs")  # type: ignore[operator]
    pinned = fs_tmp("xfs") / "sat"  # type: ignore[operator]
    whl = demo_wheel(cache_side)
    cache = cache_side / "cache"
    env = {"SAFELINK_SATELLITES": str(pinned)}
    venvs = [make_venv(env_side / f"venv{i}") for i in (1, 2, 3)]
    procs = [install(cache, v, whl, env=env) for v in venvs]
    for p in procs:
        assert p.returncode == 0, p.stderr
    assert len(warnings_of(procs[0])) == 1 and str(pinned) in warnings_of(procs[0])[0]
    assert warnings_of(procs[1]) == warnings_of(procs[2]) == []
    for p in procs[1:]:
        assert json.loads(p.stdout)["files_by_mode"] == {"clone": 44}
    (sha,) = sat_entries(pinned)
    cached = pinned / "v1" / "entries" / sha / "files" / "satdemo" / "blob.bin"
    assert os.stat(cached).st_nlink == 1
    for venv in venvs[1:]:
        dst = site_packages(venv) / "satdemo" / "blob.bin"
        assert os.stat(dst).st_ino != os.stat(cached).st_ino  # own inode: a clone
        assert loopfs.shared_extents(dst)
        assert dst.read_bytes() == BLOB
    assert not (mount_root(env_side) / ".safelink-cache").exists()


# -- the guard: an edit through a satellite hardlink is healed ------------------------------


def test_guard_heals_an_edit_made_through_a_satellite_hardlink(
    fs_tmp: object, ext4_root: Path, no_env_override: None
) -> None:
    cache_side = fs_tmp("xfs")  # type: ignore[operator]
    whl = demo_wheel(cache_side)
    cache = cache_side / "cache"
    v1, v2 = make_venv(ext4_root / "v1"), make_venv(ext4_root / "v2")
    assert install(cache, v1, whl).returncode == 0
    edited = site_packages(v1) / "satdemo" / "m007.py"
    os.chmod(edited, 0o644)
    with open(edited, "ab") as f:
        f.write(b"POISON = 1\n")
    proc = install(cache, v2, whl)
    assert proc.returncode == 0, proc.stderr
    (sha,) = sat_entries(ext4_root / ".safelink-cache")
    sat_file = ext4_root / ".safelink-cache" / "v1" / "entries" / sha / "files" / "satdemo"
    assert json.loads(proc.stdout)["healed"] == [str(sat_file / "m007.py")]
    clean = site_packages(v2) / "satdemo" / "m007.py"
    assert clean.read_bytes() == b"X = 7\n" * 20
    assert b"POISON" in edited.read_bytes()  # the environment that edited keeps its edit
    assert (sat_file / "m007.py").read_bytes() == b"X = 7\n" * 20
    assert os.stat(sat_file / "m007.py").st_ino != os.stat(edited).st_ino  # a new inode
    main = cache / "v1" / "entries" / sha / "files" / "satdemo" / "m007.py"
    assert main.read_bytes() == b"X = 7\n" * 20


# -- kill -9 while filling leaves nothing a later run trusts -------------------------------


def test_kill_9_while_filling_a_satellite_entry(
    fs_tmp: object, ext4_root: Path, no_env_override: None
) -> None:
    cache_side = fs_tmp("xfs")  # type: ignore[operator]
    whl = demo_wheel(cache_side)
    cache = cache_side / "cache"
    sat = ext4_root / ".safelink-cache"
    venv = make_venv(ext4_root / "venv")
    before = tree(venv)
    proc = install(cache, venv, whl, env={"SAFELINK_TEST_CRASH": "satellite-mid:20"})
    assert proc.returncode == -9, proc.stderr
    assert tree(venv) == before  # filling happens before the environment is touched
    assert sat_entries(sat) == []
    (left,) = sat_tmp(sat)
    assert left.startswith(".safelink-fill-")
    proc = install(cache, venv, whl)
    assert proc.returncode == 0, proc.stderr
    (sha,) = sat_entries(sat)
    entry = sat / "v1" / "entries" / sha / "files" / "satdemo"
    assert (entry / "blob.bin").read_bytes() == BLOB
    assert len(list(entry.iterdir())) == 42
    pruned = run_cli("cache", "prune", "--cache-dir", str(cache))
    assert pruned.returncode == 0, pruned.stderr
    assert sat_tmp(sat) == []
    assert sat_entries(sat) == [sha]  # in use by the environment: kept


# -- two processes fill the same entry: one entry, no leftovers ---------------------------


def test_two_processes_filling_one_satellite_entry(
    fs_tmp: object, ext4_root: Path, no_env_override: None
) -> None:
    cache_side = fs_tmp("xfs")  # type: ignore[operator]
    whl = demo_wheel(cache_side, n=600)
    cache = cache_side / "cache"
    assert run_cli("cache", "dir", "--cache-dir", str(cache)).returncode == 0
    import safelink

    safelink.Cache(cache).admit(whl)  # both processes find it admitted: they race to fill
    venvs = [make_venv(ext4_root / f"venv{i}") for i in (1, 2)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    argv = [sys.executable, "-m", "safelink", "install", "--cache-dir", str(cache), "--json"]
    procs = [
        subprocess.Popen(
            [*argv, "--python", str(v), str(whl)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for v in venvs
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert json.loads(out)["files_by_mode"] == {"hardlink": 604}
    sat = ext4_root / ".safelink-cache"
    assert len(sat_entries(sat)) == 1
    assert sat_tmp(sat) == []
    filled = [w for o, _e in outs for w in json.loads(o)["warnings"] if "satellite" in w]
    assert len(filled) == 1  # exactly one of them filled it (and said so)


# -- no safe place on the target's filesystem: copy, one warning ---------------------------


@pytest.fixture
def immutable_root(ext4_root: Path) -> Iterator[Path]:
    venv = make_venv(ext4_root / "venv")
    subprocess.run(["chattr", "+i", str(ext4_root)], check=True)
    try:
        yield venv
    finally:
        subprocess.run(["chattr", "-i", str(ext4_root)], check=True)


def test_read_only_filesystem_root_copies_with_one_warning(
    fs_tmp: object, ext4_root: Path, immutable_root: Path, no_env_override: None
) -> None:
    cache_side = fs_tmp("xfs")  # type: ignore[operator]
    whl = demo_wheel(cache_side)
    before = sorted(os.listdir(ext4_root))
    proc = install(cache_side / "cache", immutable_root, whl)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["files_by_mode"] == {"copy": 44}
    warned = warnings_of(proc)
    assert len(warned) == 1, proc.stderr
    assert "different filesystems" in warned[0] and "SAFELINK_SATELLITES" in warned[0]
    assert sorted(os.listdir(ext4_root)) == before  # no .safelink-cache appeared


def test_satellites_off_copies_every_time(fs_tmp: object, ext4_root: Path) -> None:
    cache_side = fs_tmp("xfs")  # type: ignore[operator]
    whl = demo_wheel(cache_side)
    env = {"SAFELINK_SATELLITES": "off"}
    for i in (1, 2):
        proc = install(cache_side / "cache", make_venv(ext4_root / f"v{i}"), whl, env=env)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["files_by_mode"] == {"copy": 44}
        assert len(warnings_of(proc)) == 1
    assert not (ext4_root / ".safelink-cache").exists()


def test_cache_commands_cover_satellites(
    fs_tmp: object, ext4_root: Path, no_env_override: None
) -> None:
    cache_side = fs_tmp("xfs")  # type: ignore[operator]
    whl = demo_wheel(cache_side)
    cache = cache_side / "cache"
    venv = make_venv(ext4_root / "venv")
    assert install(cache, venv, whl).returncode == 0
    sat = ext4_root / ".safelink-cache"
    listed = run_cli("cache", "list", "--cache-dir", str(cache), "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert [e["name"] for e in data["entries"]] == ["satdemo"]
    assert [s["dir"] for s in data["satellites"]] == [str(sat)]
    assert [e["name"] for e in data["satellites"][0]["entries"]] == ["satdemo"]
    sized = json.loads(run_cli("cache", "size", "--cache-dir", str(cache), "--json").stdout)
    assert sized["satellites"][0]["entries"] == 1
    verified = run_cli("verify", "--cache", "--cache-dir", str(cache))
    assert verified.returncode == 0, verified.stderr
    cleaned = run_cli("cache", "clean", "--cache-dir", str(cache))
    assert cleaned.returncode == 0, cleaned.stderr
    assert sat_entries(sat) == []
    assert sat_entries(cache) == []
