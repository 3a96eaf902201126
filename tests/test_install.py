"""Core behaviour on the machine's own filesystem: what lands where, and the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import safelink
from conftest import run_cli, site_packages, tree
from wheelmaker import make_wheel

SCRIPTS_EP = (
    "[console_scripts]\ndemo-hello = demo.cli:main\n[gui_scripts]\ndemo-gui = demo.cli:main\n"
)


def full_wheel(d: Path, version: str = "1.0") -> Path:
    return make_wheel(
        d,
        "demo",
        version,
        {
            "demo/__init__.py": f"VERSION = {version!r}\n".encode(),
            "demo/cli.py": b"def main():\n    print('hello from demo')\n    return 0\n",
            "demo/data.txt": b"payload\n",
            f"demo-{version}.data/scripts/demo-tool": (
                b"#!python\nimport demo\nprint('tool', demo.VERSION)\n"
            ),
            f"demo-{version}.data/scripts/demo-sh": b"#!/bin/sh\necho shell\n",
            f"demo-{version}.data/data/share/demo/readme.txt": b"shared data\n",
            f"demo-{version}.data/headers/demo.h": b"#define DEMO 1\n",
        },
        entry_points=SCRIPTS_EP,
    )


def test_install_places_every_part(tmp_path: Path, cache_dir: Path, new_venv: Path) -> None:
    whl = full_wheel(tmp_path)
    report = safelink.install([whl], new_venv)
    sp = site_packages(new_venv)
    assert (sp / "demo" / "__init__.py").read_text() == "VERSION = '1.0'\n"
    assert (new_venv / "share" / "demo" / "readme.txt").read_text() == "shared data\n"
    v = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert (new_venv / "include" / "site" / v / "demo" / "demo.h").exists()
    tool = new_venv / "bin" / "demo-tool"
    assert tool.read_bytes().startswith(f"#!{new_venv}/bin/python\n".encode())
    assert os.access(tool, os.X_OK) and os.access(new_venv / "bin" / "demo-sh", os.X_OK)
    out = subprocess.run([str(new_venv / "bin" / "demo-hello")], capture_output=True, text=True)
    assert out.stdout == "hello from demo\n"
    out = subprocess.run([str(tool)], capture_output=True, text=True)
    assert out.stdout == "tool 1.0\n"
    di = sp / "demo-1.0.dist-info"
    assert (di / "INSTALLER").read_text() == "safelink\n"
    assert (di / "REQUESTED").exists()
    direct = json.loads((di / "direct_url.json").read_text())
    assert direct["url"] == whl.as_uri() and direct["archive_info"]["hashes"]["sha256"]
    record = (di / "RECORD").read_text().splitlines()
    paths = {r.split(",")[0] for r in record}
    assert "demo/__init__.py" in paths and "../../../bin/demo-hello" in paths
    assert "../../../share/demo/readme.txt" in paths and "demo-1.0.dist-info/RECORD" in paths
    # every RECORD path exists, and every installed file is in RECORD
    for p in paths:
        assert (sp / p).resolve().exists(), p
    assert report.files == len(paths) and len(report.wheels) == 1


def test_summary_line_counts_modes(tmp_path: Path, cache_dir: Path, new_venv: Path) -> None:
    whl = full_wheel(tmp_path)
    proc = run_cli(
        "install", "--python", str(new_venv), "--link-mode", "copy", str(whl), check=True
    )
    line = proc.stdout.strip()
    assert line.startswith(f"Installed 1 wheel into {new_venv}, 17 files in ")
    assert "(copy 9, written 8)" in line
    proc = run_cli("install", "--python", str(new_venv), "--json", str(whl), check=True)
    data = json.loads(proc.stdout)
    assert data["files"] == 17 and data["wheels"][0]["replaced"] == "1.0"


def test_hardlink_shares_inode_copy_does_not(tmp_path: Path, cache_dir: Path) -> None:
    from conftest import make_venv

    whl = full_wheel(tmp_path)
    a, b = make_venv(tmp_path / "a"), make_venv(tmp_path / "b")
    safelink.install([whl], a, link_mode="hardlink")
    safelink.install([whl], b, link_mode="copy")
    entry = next(safelink.Cache(cache_dir).entries())
    cached = Path(entry.files) / "demo" / "data.txt"
    assert (site_packages(a) / "demo" / "data.txt").stat().st_ino == cached.stat().st_ino
    assert (site_packages(b) / "demo" / "data.txt").stat().st_ino != cached.stat().st_ino
    assert (site_packages(b) / "demo" / "data.txt").read_bytes() == cached.read_bytes()
    assert not os.access(cached, os.W_OK) or os.getuid() == 0
    assert cached.stat().st_mode & 0o222 == 0


def test_replace_removes_old_version_files(tmp_path: Path, cache_dir: Path, new_venv: Path) -> None:
    old = make_wheel(tmp_path, "demo", "1.0", {"demo/__init__.py": b"", "demo/old.py": b"x=1\n"})
    new = make_wheel(tmp_path, "demo", "2.0", {"demo/__init__.py": b"", "demo/new.py": b"x=2\n"})
    safelink.install([old], new_venv)
    report = safelink.install([new], new_venv)
    sp = site_packages(new_venv)
    assert not (sp / "demo" / "old.py").exists() and (sp / "demo" / "new.py").exists()
    assert not (sp / "demo-1.0.dist-info").exists()
    assert report.wheels[0].replaced == "1.0"
    assert (
        not list(new_venv.glob(".safelink-stash*"))
        and not (new_venv / ".safelink-journal.json").exists()
    )


def test_uninstall_removes_by_record_and_keeps_cache(
    tmp_path: Path, cache_dir: Path, new_venv: Path
) -> None:
    before = tree(site_packages(new_venv))
    whl = full_wheel(tmp_path)
    safelink.install([whl], new_venv)
    cache_before = tree(cache_dir / "v1" / "entries")
    proc = run_cli("uninstall", "--python", str(new_venv), "demo", check=True)
    assert proc.stdout.strip() == "Uninstalled demo 1.0"
    assert tree(site_packages(new_venv)) == before
    assert not (new_venv / "bin" / "demo-hello").exists()
    assert not (new_venv / "share" / "demo").exists()
    assert tree(cache_dir / "v1" / "entries") == cache_before
    proc = run_cli("uninstall", "--python", str(new_venv), "demo")
    assert proc.returncode == 0 and "skipping 'demo': not installed" in proc.stderr
    proc = run_cli("uninstall", "--python", str(new_venv), "--strict", "demo")
    assert proc.returncode == 1 and "demo is not installed" in proc.stderr


def test_flat_target_and_prefix(tmp_path: Path, cache_dir: Path) -> None:
    whl = full_wheel(tmp_path)
    flat = tmp_path / "flat"
    run_cli("install", "--target", str(flat), str(whl), check=True)
    assert (flat / "demo" / "__init__.py").exists() and (flat / "bin" / "demo-hello").exists()
    out = subprocess.run(
        [sys.executable, "-c", "import demo; print(demo.VERSION)"],
        env={**os.environ, "PYTHONPATH": str(flat)},
        capture_output=True,
        text=True,
    )
    assert out.stdout == "1.0\n"
    prefix = tmp_path / "prefix"
    run_cli("install", "--prefix", str(prefix), str(whl), check=True)
    v = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert (prefix / "lib" / v / "site-packages" / "demo" / "cli.py").exists()
    assert (prefix / "bin" / "demo-hello").exists()


def test_multiple_wheels_one_call(tmp_path: Path, cache_dir: Path, new_venv: Path) -> None:
    a = make_wheel(tmp_path, "alpha", "1.0")
    b = make_wheel(tmp_path, "beta", "2.0", purelib=False, tag="py3-none-any")
    report = safelink.install([a, b], new_venv)
    assert [w.name for w in report.wheels] == ["alpha", "beta"]
    out = subprocess.run(
        [str(new_venv / "bin" / "python"), "-c", "import alpha, beta; print(beta.VALUE)"],
        capture_output=True,
        text=True,
    )
    assert out.stdout == "2.0\n"


def test_compile_writes_pyc_listed_in_record(
    tmp_path: Path, cache_dir: Path, new_venv: Path
) -> None:
    whl = full_wheel(tmp_path)
    run_cli("install", "--python", str(new_venv), "--compile", str(whl), check=True)
    sp = site_packages(new_venv)
    pycs = list((sp / "demo" / "__pycache__").glob("cli.*.pyc"))
    assert pycs
    record = (sp / "demo-1.0.dist-info" / "RECORD").read_text()
    assert f"demo/__pycache__/{pycs[0].name}" in record
    run_cli("uninstall", "--python", str(new_venv), "demo", check=True)
    assert not (sp / "demo").exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.whl", "no such file"),
        (lambda d: (d / "notes.txt").write_text("x") and d / "notes.txt", "not a wheel file"),
        (
            lambda d: (
                (d / "demo-1.0-py3-none-any.whl").write_bytes(b"not a zip")
                and d / "demo-1.0-py3-none-any.whl"
            ),
            "not a valid zip archive",
        ),
        (
            lambda d: make_wheel(d, "demo", "1.0", tag="cp27-cp27m-win32"),
            "is not compatible with the target",
        ),
    ],
)
def test_bad_inputs_one_line_error_nothing_changed(
    tmp_path: Path, cache_dir: Path, new_venv: Path, make: object, message: str
) -> None:
    whl = make(tmp_path)  # type: ignore[operator]
    before_env, before_cache = tree(new_venv), tree(cache_dir)
    proc = run_cli("install", "--python", str(new_venv), str(whl))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("safelink: error: ")
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert tree(new_venv) == before_env
    assert not (cache_dir / "v1" / "entries").exists() or not any(
        (cache_dir / "v1" / "entries").iterdir()
    )
    del before_cache


def test_force_installs_incompatible_wheel(tmp_path: Path, cache_dir: Path, new_venv: Path) -> None:
    whl = make_wheel(tmp_path, "demo", "1.0", tag="cp27-cp27m-win32")
    run_cli("install", "--python", str(new_venv), "--force", str(whl), check=True)
    assert (site_packages(new_venv) / "demo.py").exists()


def test_unwritable_target_is_one_line(tmp_path: Path, cache_dir: Path) -> None:
    whl = make_wheel(tmp_path)
    proc = run_cli("install", "--target", "/proc/safelink-nope", str(whl))
    assert proc.returncode == 1 and "cannot write to" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_second_install_reuses_cache_entry(tmp_path: Path, cache_dir: Path) -> None:
    from conftest import make_venv

    whl = full_wheel(tmp_path)
    r1 = safelink.install([whl], make_venv(tmp_path / "a"))
    r2 = safelink.install([whl], make_venv(tmp_path / "b"))
    assert r1.wheels[0].admitted and not r2.wheels[0].admitted
    assert len(list(safelink.Cache(cache_dir).entries())) == 1


def test_compile_once_per_python_then_link_bytecode(tmp_path: Path, cache_dir: Path) -> None:
    """--compile compiles into the cache once; later installs link the .pyc files."""
    from conftest import make_venv

    whl = full_wheel(tmp_path)
    a, b = make_venv(tmp_path / "a"), make_venv(tmp_path / "b")
    safelink.install([whl], a, compile_bytecode=True, link_mode="hardlink")
    tag = f"cpython-{sys.version_info[0]}{sys.version_info[1]}"
    cached = list((cache_dir / "v1" / "pyc").rglob(f"cli.{tag}.pyc"))
    assert len(cached) == 1
    report = safelink.install([whl], b, compile_bytecode=True, link_mode="hardlink")
    installed = site_packages(b) / "demo" / "__pycache__" / f"cli.{tag}.pyc"
    assert installed.stat().st_ino == cached[0].stat().st_ino
    assert report.files_by_mode["hardlink"] == 9 + 2  # two modules' bytecode linked too
    record = (site_packages(b) / "demo-1.0.dist-info" / "RECORD").read_text()
    assert f"demo/__pycache__/cli.{tag}.pyc,sha256=" in record


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_linked_bytecode_is_used_not_rewritten(tmp_path: Path, cache_dir: Path, mode: str) -> None:
    """The .pyc files are valid for the installed sources: importing does not recompile."""
    from conftest import make_venv

    whl = full_wheel(tmp_path)
    venv = make_venv(tmp_path / "v")
    safelink.install([whl], venv, compile_bytecode=True, link_mode=mode)
    tag = f"cpython-{sys.version_info[0]}{sys.version_info[1]}"
    pyc = site_packages(venv) / "demo" / "__pycache__" / f"cli.{tag}.pyc"
    before = pyc.stat()
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import demo.cli, sys; print(demo.cli.__file__)"],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                             if k != "PYTHONDONTWRITEBYTECODE"},
    )
    assert out.stdout.strip() == str(site_packages(venv) / "demo" / "cli.py")
    after = pyc.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_launchers_come_from_the_cache_after_the_first(tmp_path: Path, cache_dir: Path) -> None:
    """Launchers are generated by installer once; a new venv reuses the body without
    importing installer, and gets exactly what installer would have written."""
    from installer.scripts import Script

    from conftest import make_venv

    whl = full_wheel(tmp_path)

    def install_into(venv: Path) -> str:
        code = (
            "import sys, safelink\n"
            f"safelink.install([{str(whl)!r}], {str(venv)!r})\n"
            "print('installer' in sys.modules)\n"
        )
        env = {**os.environ, "SAFELINK_CACHE_DIR": str(cache_dir)}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert install_into(make_venv(tmp_path / "first")) == "True"  # generated by installer once
    second = make_venv(tmp_path / "second")
    assert install_into(second) == "False"
    python = str(second / "bin" / "python")
    _name, expected = Script("demo-hello", "demo.cli", "main", "console").generate(python, "posix")
    assert (second / "bin" / "demo-hello").read_bytes() == expected
    run = subprocess.run([str(second / "bin" / "demo-hello")], capture_output=True, text=True)
    assert run.stdout == "hello from demo\n"


def test_wheel_replaced_during_admission_is_stored_under_what_was_read(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hash and unpack read one open file: a wheel swapped on disk meanwhile cannot
    end up stored under the other one's hash."""
    import hashlib

    import safelink._admit as cache_mod

    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = make_wheel(tmp_path / "old", "demo", "1.0")
    new = make_wheel(tmp_path / "new", "demo", "1.0", {"demo.py": b"EVIL = 1\n"})
    target = tmp_path / "demo-1.0-py3-none-any.whl"
    target.write_bytes(old.read_bytes())
    old_sha = hashlib.sha256(old.read_bytes()).hexdigest()
    real_extract = cache_mod._extract

    def swapping_extract(*args: object) -> set[str]:
        os.replace(new, target)  # someone replaces the file mid-admission
        return real_extract(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(cache_mod, "_extract", swapping_extract)
    entry = safelink.Cache(cache_dir).admit(target)
    assert entry.sha256 == old_sha
    assert (Path(entry.files) / "demo.py").read_bytes() == b"VALUE = '1.0'\n"


def test_wheel_rewritten_in_place_during_admission_is_refused(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safelink._admit as cache_mod

    whl = make_wheel(tmp_path, "demo", "1.0")
    real_extract = cache_mod._extract

    def appending_extract(*args: object) -> set[str]:
        result = real_extract(*args)  # type: ignore[arg-type]
        with open(whl, "ab") as f:
            f.write(b"\0" * 10)
        return result

    monkeypatch.setattr(cache_mod, "_extract", appending_extract)
    with pytest.raises(safelink.SafelinkError, match="changed while it was being unpacked"):
        safelink.Cache(cache_dir).admit(whl)
    assert list(safelink.Cache(cache_dir).entries()) == []
    assert not any((cache_dir / "v1" / "tmp").iterdir())


def test_cache_clean_removes_compiled_bytecode_too(tmp_path: Path, cache_dir: Path,
                                                   new_venv: Path) -> None:
    whl = full_wheel(tmp_path)
    safelink.install([whl], new_venv, compile_bytecode=True)
    assert any((cache_dir / "v1" / "pyc").iterdir())
    size = run_cli("cache", "size", "--json", check=True)
    # the wheel's 10 unpacked members, two .pyc files and their manifest
    assert json.loads(size.stdout)["files"] == 10 + 2 + 1
    run_cli("cache", "clean", "demo", check=True)
    assert not any((cache_dir / "v1" / "pyc").iterdir())
    assert (site_packages(new_venv) / "demo" / "cli.py").exists()  # environments keep theirs
