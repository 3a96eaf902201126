"""The guard: an edit through a hardlink never reaches a new environment.

The scenario users report, end to end on real ext4 and tmpfs (where auto
hardlinks): install into A, edit an installed module in place, install into B.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import safelink
from conftest import make_venv, run_cli, site_packages
from safelink.strategies.probe import forget
from wheelmaker import make_wheel

PRISTINE = b"def greet():\n    return 'hello'\n" * 20


def edit_rplus(p: Path) -> None:
    with open(p, "r+b") as f:  # the way editors that keep the inode write
        f.write(b"# PATCHED")


def edit_append(p: Path) -> None:
    with open(p, "ab") as f:
        f.write(b"\nprint('debug')\n")


def edit_truncate(p: Path) -> None:
    with open(p, "r+b") as f:
        f.truncate(10)


EDITS: dict[str, Callable[[Path], None]] = {
    "r+": edit_rplus,
    "append": edit_append,
    "truncate": edit_truncate,
}


@pytest.fixture(autouse=True)
def _fresh_probes() -> None:
    forget()


def scenario(base: Path) -> tuple[Path, Path, Path, Path]:
    whl = make_wheel(
        base, "guarded", "1.0", {"guarded/__init__.py": PRISTINE, "guarded/other.py": b"X = 1\n"}
    )
    cache = base / "cache"
    a = make_venv(base / "A")
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(a), str(whl))
    assert proc.returncode == 0 and "hardlink" in proc.stdout, proc.stderr
    return whl, cache, a, site_packages(a) / "guarded" / "__init__.py"


@pytest.mark.parametrize("kind", ["ext4", "tmpfs"])
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edit_through_hardlink_is_healed(
    fs_tmp: Callable[[str], Path], kind: str, edit: str
) -> None:
    base = fs_tmp(kind)
    whl, cache, _a, a_file = scenario(base)
    entry = next(safelink.Cache(cache).entries())
    cached = Path(entry.files) / "guarded" / "__init__.py"
    assert a_file.stat().st_ino == cached.stat().st_ino
    EDITS[edit](a_file)
    edited = a_file.read_bytes()
    assert cached.read_bytes() == edited  # the shared inode: this is the bug users hit

    b = make_venv(base / "B")
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(b), str(whl))
    assert proc.returncode == 0, proc.stderr
    b_file = site_packages(b) / "guarded" / "__init__.py"
    assert b_file.read_bytes() == PRISTINE  # B is pristine
    assert a_file.read_bytes() == edited  # A keeps its edit
    assert cached.read_bytes() == PRISTINE  # the cache is pristine again
    assert cached.stat().st_ino != a_file.stat().st_ino == a_file.stat().st_ino
    assert cached.stat().st_mode & 0o222 == 0
    warnings = [ln for ln in proc.stderr.splitlines() if ln]
    assert len(warnings) == 1 and "modified through a hardlink" in warnings[0]
    assert "healed 1 modified cache file" in proc.stdout


def test_fast_check_limit_and_deep_verify(fs_tmp: Callable[[str], Path]) -> None:
    """Same-size write + mtime put back: the one-stat check cannot see it; verify can."""
    base = fs_tmp("ext4")
    whl, cache, a, a_file = scenario(base)
    st = a_file.stat()
    with open(a_file, "r+b") as f:
        f.write(b"#SNEAKY#")
    os.utime(a_file, ns=(st.st_atime_ns, st.st_mtime_ns))
    b = make_venv(base / "B")
    run_cli("install", "--cache-dir", str(cache), "--python", str(b), str(whl), check=True)
    b_file = site_packages(b) / "guarded" / "__init__.py"
    assert b_file.read_bytes().startswith(b"#SNEAKY#")  # documented limit of the fast check

    proc = run_cli("verify", "--cache-dir", str(cache), "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    [poisoned] = report["cache"]
    assert poisoned["member"] == "guarded/__init__.py"
    assert sorted(poisoned["shared_with"]) == sorted([str(a), str(b)])
    modified = {e: [f["path"] for f in fs] for e, fs in report["envs"].items()}
    assert modified == {str(a): [str(a_file)], str(b): [str(b_file)]}

    proc = run_cli("repair", "--cache-dir", str(cache), "--env", str(b))
    assert proc.returncode == 0, proc.stderr
    assert b_file.read_bytes() == PRISTINE and a_file.read_bytes().startswith(b"#SNEAKY#")
    assert b_file.stat().st_ino != a_file.stat().st_ino
    proc = run_cli("verify", "--cache-dir", str(cache), "--env", str(b))
    assert proc.returncode == 0 and f"{b}: clean" in proc.stdout


def test_verify_names_edited_env_and_clean_env_then_repair(fs_tmp: Callable[[str], Path]) -> None:
    base = fs_tmp("tmpfs")
    whl, cache, a, a_file = scenario(base)
    edit_append(a_file)
    b = make_venv(base / "B")
    run_cli("install", "--cache-dir", str(cache), "--python", str(b), str(whl), check=True)
    proc = run_cli("verify", "--cache-dir", str(cache))
    assert proc.returncode == 1
    assert f"{a}: modified {a_file}" in proc.stdout and f"{b}: clean" in proc.stdout
    assert "poisoned" not in proc.stdout  # the install already healed the cache

    dry = run_cli("repair", "--cache-dir", str(cache), "--env", str(a), "--dry-run")
    assert f"would restore {a_file}" in dry.stdout
    assert a_file.read_bytes() != PRISTINE
    run_cli("repair", "--cache-dir", str(cache), "--env", str(a), check=True)
    assert a_file.read_bytes() == PRISTINE
    proc = run_cli("verify", "--cache-dir", str(cache))
    assert proc.returncode == 0


def test_guard_off_hands_on_the_edit(fs_tmp: Callable[[str], Path]) -> None:
    """What other installers do: shows the check is what protects B."""
    base = fs_tmp("ext4")
    whl, cache, _a, a_file = scenario(base)
    edit_append(a_file)
    b = make_venv(base / "B")
    run_cli(
        "install",
        "--cache-dir",
        str(cache),
        "--python",
        str(b),
        "--guard",
        "off",
        str(whl),
        check=True,
    )
    assert (site_packages(b) / "guarded" / "__init__.py").read_bytes() != PRISTINE


def test_guard_strict_refuses_foreign_hardlinks(fs_tmp: Callable[[str], Path]) -> None:
    base = fs_tmp("ext4")
    whl = make_wheel(base, "guarded", "1.0", {"guarded/__init__.py": PRISTINE})
    cache = base / "cache"
    safelink.Cache(cache).admit(whl)
    v = make_venv(base / "V")
    # Someone else's environment (a cache owned by someone else is refused outright:
    # tests/test_cache_trust.py), so hardlinks would share inodes across users.
    os.chown(v, 65534, 65534)
    report = safelink.install([whl], v, cache=cache, guard="strict")
    assert report.link_mode == "copy" and report.files_by_mode == {"copy": 3}
    with pytest.raises(safelink.LinkFailed, match="--guard strict refuses hardlinks"):
        safelink.install([whl], v, cache=cache, guard="strict", link_mode="hardlink")
    report = safelink.install([whl], v, cache=cache, guard="check")
    assert report.link_mode == "hardlink"


def test_cache_prune_and_clean(tmp_path: Path, cache_dir: Path) -> None:
    whl = make_wheel(tmp_path, "guarded", "1.0", {"guarded/__init__.py": PRISTINE})
    other = make_wheel(tmp_path, "unused", "1.0")
    v = make_venv(tmp_path / "v")
    safelink.install([whl], v, link_mode="hardlink")
    safelink.Cache(cache_dir).admit(other)
    stale = cache_dir / "v1" / "tmp" / "deadbeef-999999-1"
    stale.mkdir(parents=True)
    proc = run_cli("cache", "list")
    assert "guarded 1.0" in proc.stdout and "unused 1.0" in proc.stdout
    proc = run_cli("cache", "prune")
    assert proc.returncode == 0 and "removed unused-1.0-py3-none-any.whl" in proc.stdout
    assert not stale.exists()
    assert [e.plan.name for e in safelink.Cache(cache_dir).entries()] == ["guarded"]
    assert (site_packages(v) / "guarded" / "__init__.py").read_bytes() == PRISTINE
    proc = run_cli("cache", "size")
    assert proc.stdout.startswith("1 entry, 3 files")
    run_cli("cache", "clean", "guarded", check=True)
    assert list(safelink.Cache(cache_dir).entries()) == []
    assert (site_packages(v) / "guarded" / "__init__.py").read_bytes() == PRISTINE
    assert run_cli("cache", "dir").stdout.strip() == str(cache_dir)
