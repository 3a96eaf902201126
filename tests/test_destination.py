"""``safelink.destination``: PyPA installer driven as usual, files linked from the cache.

The promise to a tool that swaps ``SchemeDictionaryDestination`` for
``LinkingDestination``: the same tree (paths, bytes, executable bits, RECORD),
with the cached files linked instead of unzipped, and the guard and fallback
of ``safelink.install``.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import installer
import pytest
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

import safelink
from conftest import make_venv, run_cli, site_packages
from safelink.destination import LinkingDestination, install_with_installer
from wheelmaker import make_wheel

EP = "[console_scripts]\ndemo-hello = demo.cli:main\n[gui_scripts]\ndemo-gui = demo.cli:main\n"
PY = "/opt/python/bin/python3"


def full_wheel(d: Path, version: str = "1.0") -> Path:
    """Every scheme, a ``#!python`` script, a plain script and entry points."""
    return make_wheel(
        d,
        "demo",
        version,
        {
            "demo/__init__.py": f"VERSION = {version!r}\n".encode(),
            "demo/cli.py": b"def main():\n    print('hello from demo')\n    return 0\n",
            "demo/sub/data.bin": bytes(range(256)) * 64,
            "demo/run.sh": b"#!/bin/sh\necho run\n",
            f"demo-{version}.data/scripts/demo-tool": b"#!python\nimport demo\nprint(demo)\n",
            f"demo-{version}.data/scripts/demo-sh": b"#!/bin/sh\necho shell\n",
            f"demo-{version}.data/data/share/demo/readme.txt": b"shared data\n",
            f"demo-{version}.data/headers/demo.h": b"#define DEMO 1\n",
        },
        entry_points=EP,
        modes={
            "demo/run.sh": stat.S_IFREG | 0o755,
            f"demo-{version}.data/scripts/demo-sh": stat.S_IFREG | 0o755,
        },
    )


def schemes(root: Path) -> dict[str, str]:
    return {s: str(root / s) for s in ("purelib", "platlib", "scripts", "headers", "data")}


def installed(root: Path) -> dict[str, tuple[bytes, bool]]:
    """Relative path -> (bytes, executable) for every file under *root*."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for n in files:
            p = Path(dirpath) / n
            out[str(p.relative_to(root))] = (p.read_bytes(), os.access(p, os.X_OK))
    return out


def run_installer(whl: Path, dest: installer.destinations.WheelDestination) -> None:
    with WheelFile.open(whl) as source:
        installer.install(source, dest, {"INSTALLER": b"mytool"})


def cached_file(cache: Path, member: str) -> Path:
    (entry,) = (cache / "v1" / "entries").iterdir()
    return entry / "files" / member


@pytest.mark.parametrize("mode", ["hardlink", "copy", "auto", "symlink"])
def test_same_tree_as_installer_with_files_from_the_cache(tmp_path: Path, mode: str) -> None:
    whl = full_wheel(tmp_path)
    run_installer(whl, SchemeDictionaryDestination(schemes(tmp_path / "plain"), PY, "posix"))
    dest = LinkingDestination(
        whl,
        cache=tmp_path / "cache",
        link_mode=mode,
        scheme_dict=schemes(tmp_path / "linked"),
        interpreter=PY,
        script_kind="posix",
    )
    run_installer(whl, dest)

    assert installed(tmp_path / "linked") == installed(tmp_path / "plain")
    # Linked: 4 modules, 2 data/headers, 1 script, 3 dist-info files.
    # Written: the #!python script, 2 launchers, INSTALLER and RECORD.
    assert dest.files_by_mode == {dest.link_mode: 10, "written": 5}
    if mode == "auto":  # the same filesystem: never a copy
        assert dest.link_mode in ("clone", "hardlink")
    else:
        assert dest.link_mode == mode
    assert dest.fallbacks == [] and dest.healed == []

    module = tmp_path / "linked" / "purelib" / "demo" / "sub" / "data.bin"
    cached = cached_file(tmp_path / "cache", "demo/sub/data.bin")
    same_inode = os.stat(module).st_ino == os.stat(cached).st_ino
    assert same_inode == (dest.link_mode in ("hardlink", "symlink"))
    if mode == "symlink":
        assert os.readlink(module) == str(cached)
    launcher = tmp_path / "linked" / "scripts" / "demo-tool"
    assert launcher.read_bytes().startswith(f"#!{PY}\n".encode())


@pytest.mark.network
def test_corpus_wheel_same_tree_and_hardlinked(tmp_path: Path) -> None:
    import corpus

    (whl,) = corpus.fetch([corpus.by_name("six")])
    run_installer(whl, SchemeDictionaryDestination(schemes(tmp_path / "plain"), PY, "posix"))
    dest = LinkingDestination(
        whl, cache=tmp_path / "c", link_mode="hardlink",
        scheme_dict=schemes(tmp_path / "linked"), interpreter=PY, script_kind="posix",
    )
    run_installer(whl, dest)
    assert installed(tmp_path / "linked") == installed(tmp_path / "plain")
    six = tmp_path / "linked" / "purelib" / "six.py"
    assert six.stat().st_nlink == 2
    assert six.stat().st_ino == cached_file(tmp_path / "c", "six.py").stat().st_ino
    # Read-only: a write through the link fails for a normal user (root bypasses modes).
    assert six.stat().st_mode & 0o222 == 0


def test_destdir_is_honoured_like_installer(tmp_path: Path) -> None:
    whl = full_wheel(tmp_path)
    root = tmp_path / "usr"
    plain = SchemeDictionaryDestination(
        schemes(root), PY, "posix", destdir=str(tmp_path / "stage-a")
    )
    run_installer(whl, plain)
    dest = LinkingDestination(
        whl, cache=tmp_path / "c", scheme_dict=schemes(root), interpreter=PY,
        script_kind="posix", destdir=str(tmp_path / "stage-b"),
    )
    run_installer(whl, dest)
    assert not root.exists()
    assert installed(tmp_path / "stage-b") == installed(tmp_path / "stage-a")
    assert dest.files_by_mode == {dest.link_mode: 10, "written": 5}
    assert dest.link_mode in ("clone", "hardlink")


def test_venv_target_runs_and_verifies(tmp_path: Path, new_venv: Path) -> None:
    whl = full_wheel(tmp_path)
    dest = LinkingDestination(whl, new_venv, cache=tmp_path / "cache")
    install_with_installer(dest)
    sp = site_packages(new_venv)
    assert (sp / "demo-1.0.dist-info" / "INSTALLER").read_bytes() == b"safelink\n"
    v = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert (new_venv / "include" / "site" / v / "demo" / "demo.h").exists()
    out = subprocess.run([str(new_venv / "bin" / "demo-hello")], capture_output=True, text=True)
    assert out.stdout == "hello from demo\n"
    # The environment was registered with the cache: verify finds it and it is clean.
    proc = run_cli("verify", "--cache-dir", str(tmp_path / "cache"), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(new_venv) in proc.stdout


def test_edit_through_a_link_is_healed_before_the_next_install(tmp_path: Path) -> None:
    whl = full_wheel(tmp_path)
    cache = tmp_path / "cache"

    def dest(name: str) -> LinkingDestination:
        return LinkingDestination(
            whl, cache=cache, link_mode="hardlink", scheme_dict=schemes(tmp_path / name),
            interpreter=PY, script_kind="posix",
        )

    run_installer(whl, dest("a"))
    edited = tmp_path / "a" / "purelib" / "demo" / "cli.py"
    os.chmod(edited, 0o644)
    with open(edited, "ab") as f:  # an in-place edit: reaches the shared inode
        f.write(b"print('debug')\n")
    second = dest("b")
    run_installer(whl, second)
    assert len(second.healed) == 1 and second.healed[0].endswith("demo/cli.py")
    fresh = tmp_path / "b" / "purelib" / "demo" / "cli.py"
    assert b"debug" not in fresh.read_bytes()
    assert b"debug" in edited.read_bytes()  # the environment that edited keeps its edit
    assert fresh.stat().st_ino != edited.stat().st_ino


def test_existing_files_refused_or_replaced_never_written_through(tmp_path: Path) -> None:
    whl = full_wheel(tmp_path)
    cache = tmp_path / "cache"

    def dest(**kw: bool) -> LinkingDestination:
        return LinkingDestination(
            whl, cache=cache, link_mode="hardlink", scheme_dict=schemes(tmp_path / "env"),
            interpreter=PY, script_kind="posix", **kw,
        )

    run_installer(whl, dest())
    with pytest.raises(FileExistsError, match="File already exists"):
        run_installer(whl, dest())

    # An existing INSTALLER that is a hardlink to some other file: replacing it
    # must leave that file alone (installer's own "wb" would write through it).
    installer_file = tmp_path / "env" / "purelib" / "demo-1.0.dist-info" / "INSTALLER"
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not yours\n")
    installer_file.unlink()
    os.link(outside, installer_file)
    run_installer(whl, dest(overwrite_existing=True))
    assert outside.read_bytes() == b"not yours\n"
    assert installer_file.read_bytes() == b"mytool"
    pristine = b"def main():\n    print('hello from demo')\n    return 0\n"
    assert cached_file(cache, "demo/cli.py").read_bytes() == pristine


def test_invalid_wheel_fails_before_anything_is_written(tmp_path: Path) -> None:
    whl = make_wheel(
        tmp_path, "bad", "1.0", {"bad.py": b"x = 1\n"},
        record_filter=lambda rows: [(p, "sha256=AAAA", s) for p, h, s in rows],
    )
    with pytest.raises(safelink.InvalidWheel):
        LinkingDestination(whl, scheme_dict=schemes(tmp_path / "env"), interpreter=PY,
                           cache=tmp_path / "cache")
    assert not (tmp_path / "env").exists()


def test_target_and_scheme_dict_are_exclusive(tmp_path: Path, new_venv: Path) -> None:
    whl = full_wheel(tmp_path)
    with pytest.raises(safelink.TargetError):
        LinkingDestination(whl, new_venv, scheme_dict=schemes(tmp_path), interpreter=PY,
                           cache=tmp_path / "cache")
    with pytest.raises(safelink.TargetError):
        LinkingDestination(whl, scheme_dict=schemes(tmp_path), cache=tmp_path / "cache")


@pytest.mark.loopfs
def test_cross_device_copies_with_one_warning(cross_device_pair: tuple[Path, Path]) -> None:
    cache_side, env_side = cross_device_pair
    whl = full_wheel(cache_side)
    env = make_venv(env_side / "venv")
    with pytest.raises(safelink.LinkFailed, match="EXDEV"):
        LinkingDestination(whl, env, cache=cache_side / "cache", link_mode="hardlink")
    dest = LinkingDestination(whl, env, cache=cache_side / "cache")
    install_with_installer(dest)
    assert dest.files_by_mode == {"copy": 10, "written": 5}
    assert len(dest.warnings) == 1 and "different filesystems" in dest.warnings[0]


def test_source_of_another_wheel_is_refused(tmp_path: Path) -> None:
    """The destination trusts the cache only for the wheel it was made for."""
    v1, v2 = full_wheel(tmp_path, "1.0"), full_wheel(tmp_path, "2.0")
    dest = LinkingDestination(
        v1, cache=tmp_path / "cache", scheme_dict=schemes(tmp_path / "env"), interpreter=PY,
        script_kind="posix",
    )
    with pytest.raises(ValueError, match=r"demo-2\.0\.dist-info/RECORD"):
        run_installer(v2, dest)
    assert not (tmp_path / "env" / "purelib" / "demo-2.0.dist-info" / "RECORD").exists()
