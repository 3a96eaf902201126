"""Read-only caches, unwritable targets, and another user's cache under fs.protected_hardlinks.

Real mounts and a real second user: a loop-mounted ext4 remounted read-only,
and safelink run as uid 65534 (nobody) in a subprocess. Root bypasses
permission bits, so only a different uid shows what users see.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import safelink
from conftest import make_venv, run_cli, site_packages, tree
from fs_fixtures import FsTmpFactory, SmallFsFactory
from test_crash import assert_one_line_error, check_record, demo_wheel, small_wheel

NOBODY = 65534

Runner = Callable[..., subprocess.CompletedProcess[str]]


def remount(mountpoint: Path, mode: str) -> None:
    subprocess.run(
        ["mount", "-o", f"remount,{mode}", str(mountpoint)],
        check=True,
        capture_output=True,
        env={**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"},
    )


@pytest.fixture
def read_only(small_fs: SmallFsFactory) -> Iterator[tuple[Path, Callable[[], None]]]:
    """A fresh small ext4 and a function that remounts it read-only (rw again afterwards)."""
    mnt = small_fs("ext4", 16)
    state = {"ro": False}

    def make_ro() -> None:
        subprocess.run(["sync"], check=True)
        remount(mnt, "ro")
        state["ro"] = True

    yield mnt, make_ro
    if state["ro"]:
        remount(mnt, "rw")


# -- a read-only cache ---------------------------------------------------------------------


def test_read_only_cache_installs_and_is_never_written(
    tmp_path: Path, read_only: tuple[Path, Callable[[], None]]
) -> None:
    mnt, make_ro = read_only
    cache = mnt / "cache"
    whl = demo_wheel(tmp_path)
    ro_venv = make_venv(mnt / "venv")
    safelink.install([whl], ro_venv, cache=cache)  # same filesystem: hardlinks
    make_ro()
    cache_before, ro_venv_before = tree(cache), tree(ro_venv)

    # Into a venv elsewhere (a filesystem pair never probed): the probe cannot
    # write in the cache, so it copies; the cached files are only read.
    target = make_venv(tmp_path / "venv")
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(target), str(whl))
    assert proc.returncode == 0, proc.stderr
    assert "(copy " in proc.stdout and "Read-only file system" in proc.stderr
    check_record(target, "demo-1.0.dist-info")
    entry = next(safelink.Cache(cache).entries())
    installed = site_packages(target) / "demo" / "cli.py"
    assert installed.stat().st_ino != (Path(entry.files) / "demo" / "cli.py").stat().st_ino
    assert os.access(installed, os.W_OK)

    copy_venv = make_venv(tmp_path / "copy")
    args = ["install", "--cache-dir", str(cache), "--python", str(copy_venv)]
    run_cli(*args, "--link-mode", "copy", str(whl), check=True)
    check_record(copy_venv, "demo-1.0.dist-info")

    # A wheel the cache does not have cannot be admitted: one line, nothing changed.
    before = tree(target)
    other = small_wheel(tmp_path)
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(target), str(other))
    assert_one_line_error(proc, f"cannot write to the cache at {cache}", "Read-only file system")
    assert tree(target) == before

    # An environment on the read-only filesystem: install and uninstall refuse cleanly.
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(ro_venv), str(whl))
    assert_one_line_error(proc, "cannot write to", "Read-only file system")
    proc = run_cli("uninstall", "--python", str(ro_venv), "demo")
    assert_one_line_error(proc, f"cannot uninstall from {ro_venv}", "Read-only file system")
    assert tree(ro_venv) == ro_venv_before

    assert run_cli("cache", "list", "--cache-dir", str(cache), check=True).stdout.startswith(
        "demo 1.0"
    )
    assert tree(cache) == cache_before


# -- another user ------------------------------------------------------------------------------


def _interpreters() -> list[str]:
    v = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = [sys.executable, getattr(sys, "_base_executable", ""), f"/usr/bin/python{v}"]
    found += [shutil.which(f"python{v}") or "", "/usr/bin/python3", "/usr/local/bin/python3"]
    return list(dict.fromkeys(p for p in found if p and os.path.exists(p)))


@pytest.fixture(scope="module")
def as_nobody() -> Iterator[Runner]:
    """Run ``python -m safelink`` as uid 65534 with a copy of safelink that uid can read.

    The test interpreter may live where nobody can reach it (e.g. root's home):
    then any Python >= 3.10 that uid can run will do, with safelink and its
    pure-Python dependencies copied to a world-readable directory.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to run a process as another user")
    import installer
    import packaging
    import platformdirs

    lib = Path(tempfile.mkdtemp(prefix="safelink-nobody-"))
    try:
        os.chmod(lib, 0o755)
        for mod in (safelink, installer, packaging, platformdirs):
            src = Path(mod.__file__ or "").parent
            shutil.copytree(src, lib / src.name, ignore=shutil.ignore_patterns("__pycache__"))
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/nonexistent",
            "PYTHONPATH": str(lib),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
        }
        check = "import sys; assert sys.version_info >= (3, 10); import safelink.cli"
        python = None
        for candidate in _interpreters():
            try:
                ok = subprocess.run(
                    [candidate, "-c", check],
                    env=env,
                    cwd="/",
                    user=NOBODY,
                    group=NOBODY,
                    extra_groups=[],
                    capture_output=True,
                    timeout=60,
                )
            except OSError:
                continue
            if ok.returncode == 0:
                python = candidate
                break
        if python is None:
            pytest.skip("no Python >= 3.10 that uid 65534 can run")

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [python, "-m", "safelink", *args],
                env=env,
                cwd="/",
                user=NOBODY,
                group=NOBODY,
                extra_groups=[],
                capture_output=True,
                text=True,
                timeout=120,
            )

        yield run
    finally:
        shutil.rmtree(lib, ignore_errors=True)


def owned_dir(path: Path, uid: int = NOBODY) -> Path:
    path.mkdir(mode=0o755)
    os.chown(path, uid, uid)
    return path


def test_unwritable_target_as_another_user(as_nobody: Runner, fs_tmp: FsTmpFactory) -> None:
    base = fs_tmp("ext4")
    whl = demo_wheel(base)
    cache = owned_dir(base / "nobody-cache")  # nobody's own cache: only the target is refused

    # A directory nobody may not write (root's, 0555): one line, nothing changed.
    sealed = base / "sealed"
    sealed.mkdir()
    (sealed / "keep.txt").write_text("mine\n")
    sealed.chmod(0o555)
    before = tree(sealed)
    proc = as_nobody("install", "--cache-dir", str(cache), "--target", str(sealed), str(whl))
    assert_one_line_error(proc, f"cannot write to {sealed}", "Permission denied")
    assert tree(sealed) == before

    # root's environment: nobody can neither replace nor uninstall what is in it.
    site = base / "site"
    run_cli("install", "--cache-dir", str(base / "root-cache"), "--target", str(site), str(whl),
            check=True)  # fmt: skip
    before = tree(site)
    proc = as_nobody("install", "--cache-dir", str(cache), "--target", str(site), str(whl))
    assert_one_line_error(proc, "cannot write to", "Permission denied")
    proc = as_nobody("uninstall", "--target", str(site), "demo")
    assert_one_line_error(proc, f"cannot uninstall from {site}", "Permission denied")
    assert tree(site) == before
    check_record(site, "demo-1.0.dist-info")


def test_shared_cache_under_protected_hardlinks(as_nobody: Runner, fs_tmp: FsTmpFactory) -> None:
    """root's cache, readable by all; nobody installs from it on the same filesystem.

    With ``fs.protected_hardlinks=1`` the kernel refuses to hardlink files one
    does not own (EPERM): an explicit hardlink install is one clean line, and
    auto falls back to copies, says so, and installs.
    """
    try:
        protected = Path("/proc/sys/fs/protected_hardlinks").read_text().strip() == "1"
    except OSError:
        protected = False
    if not protected:
        pytest.skip("fs.protected_hardlinks is not 1 here")
    base = fs_tmp("ext4")
    cache = base / "cache"
    whl = demo_wheel(base)
    entry = safelink.Cache(cache).admit(whl)
    cache_before = tree(cache)
    target = owned_dir(base / "target")
    before = tree(target)
    common = ["--cache-dir", str(cache), "--target", str(target)]

    proc = as_nobody("install", *common, "--link-mode", "hardlink", str(whl))
    line = assert_one_line_error(proc, "link mode 'hardlink' failed", "EPERM")
    assert "fs.protected_hardlinks=1" in line and "--link-mode copy" in line
    assert tree(target) == before

    proc = as_nobody("install", *common, str(whl))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "hardlink failed (EPERM" in proc.stderr and "fell back to copy" in proc.stderr
    assert "protected_hardlinks" in proc.stderr
    check_record(target, "demo-1.0.dist-info")
    installed = (target / "demo" / "cli.py").stat()
    assert installed.st_uid == NOBODY and installed.st_nlink == 1
    assert installed.st_ino != (Path(entry.files) / "demo" / "cli.py").stat().st_ino
    assert tree(cache) == cache_before  # nobody wrote nothing into root's cache
