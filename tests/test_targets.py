"""Which environment a command uses when none is named, chosen as pip and uv choose it.

An active ``VIRTUAL_ENV``, else a ``.venv`` in the working directory or a
parent, else an error that says so; ``--system`` for an interpreter that is not
a venv; PEP 668's ``EXTERNALLY-MANAGED`` refused unless
``--break-system-packages``; ``--python X --prefix D`` in X's own scheme.
Never the environment safelink itself runs from.

Interpreters that are not venvs are simulated by a script that answers
safelink's one query the way a distribution's Python would (a ``lib64``
platform here), so the tests never touch the machine's real interpreters.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

import safelink
from conftest import REPO, make_venv, site_packages, tree
from wheelmaker import make_wheel

V = f"python{sys.version_info[0]}.{sys.version_info[1]}"
P = "/@safelink-prefix@"


def fake_system_python(root: Path, *, externally_managed: bool = False) -> Path:
    """A 'distribution' interpreter at *root*: platlib under lib64, as on Fedora or SUSE."""
    bindir = root / "bin"
    bindir.mkdir(parents=True)
    stdlib = root / "lib64" / V
    stdlib.mkdir(parents=True)
    if externally_managed:
        (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\nError=use apt\n")
    python = bindir / "python3"

    def scheme(base: str) -> dict[str, str]:
        return {
            "stdlib": f"{base}/lib64/{V}",
            "platstdlib": f"{base}/lib64/{V}",
            "purelib": f"{base}/lib/{V}/site-packages",
            "platlib": f"{base}/lib64/{V}/site-packages",
            "include": f"{base}/include/{V}",
            "platinclude": f"{base}/include/{V}",
            "scripts": f"{base}/bin",
            "data": base,
        }

    answer = {
        "format": 2,
        "prefix_paths": scheme(P),
        "version": list(sys.version_info[:2]),
        "implementation": sys.implementation.name,
        "executable": str(python),
        "prefix": str(root),
        "base_prefix": str(root),
        "paths": scheme(str(root)),
        "free_threaded": False,
    }
    python.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(answer)}\nEOF\n")
    python.chmod(0o755)
    return python


def wheels(d: Path) -> tuple[Path, Path]:
    pure = make_wheel(d, "puredemo", "1.0", {"puredemo/__init__.py": b"X = 1\n"})
    plat = make_wheel(d, "platdemo", "1.0", {"platdemo/__init__.py": b"Y = 1\n"}, purelib=False)
    return pure, plat


def safelink_from(
    tool: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run safelink from the venv *tool*, as a user who installed safelink there would."""
    full = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    full["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), *site.getsitepackages()])
    full.update(env or {})
    return subprocess.run(
        [str(tool / "bin" / "python"), "-m", "safelink", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def tool(tmp_path: Path, cache_dir: Path) -> Path:
    """The venv safelink runs from: it must never be installed into by accident."""
    return make_venv(tmp_path / "tool")


def test_no_venv_is_an_error_not_the_environment_safelink_runs_from(
    tmp_path: Path, tool: Path
) -> None:
    pure, _ = wheels(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    before = tree(tool)
    proc = safelink_from(tool, "install", str(pure), cwd=project)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.splitlines() == [
        f"safelink: error: no virtual environment found: VIRTUAL_ENV is not set and there is "
        f"no .venv in {project} or its parents (create one with 'python -m venv .venv', pass "
        "--python, --prefix or --target, or --system to install into the interpreter on PATH)"
    ]
    assert tree(tool) == before


def test_a_dot_venv_in_a_parent_directory_is_found_and_named(tmp_path: Path, tool: Path) -> None:
    pure, _ = wheels(tmp_path)
    project = tmp_path / "project"
    venv = make_venv(project / ".venv")
    (project / "src" / "pkg").mkdir(parents=True)
    before = tree(tool)
    proc = safelink_from(tool, "install", str(pure), cwd=project / "src" / "pkg")
    assert proc.returncode == 0, proc.stderr
    [line] = proc.stdout.splitlines()
    assert line.startswith(f"Installed 1 wheel into {venv}, 8 files in ")
    assert (site_packages(venv) / "puredemo" / "__init__.py").exists()
    assert tree(tool) == before


def test_an_active_virtual_env_wins_over_dot_venv(tmp_path: Path, tool: Path) -> None:
    pure, _ = wheels(tmp_path)
    project = tmp_path / "project"
    dot = make_venv(project / ".venv")
    active = make_venv(tmp_path / "active")
    proc = safelink_from(
        tool, "install", str(pure), cwd=project, env={"VIRTUAL_ENV": str(active)}
    )
    assert proc.returncode == 0, proc.stderr
    assert (site_packages(active) / "puredemo").is_dir()
    assert not (site_packages(dot) / "puredemo").exists()
    missing = tmp_path / "gone"
    proc = safelink_from(
        tool, "install", str(pure), cwd=project, env={"VIRTUAL_ENV": str(missing)}
    )
    assert (proc.returncode, proc.stderr.splitlines()) == (
        1,
        [
            f"safelink: error: VIRTUAL_ENV={missing} is not a virtual environment (no "
            "pyvenv.cfg) (activate an existing venv or unset VIRTUAL_ENV)"
        ],
    )


def test_system_installs_into_the_python_on_path(tmp_path: Path, tool: Path) -> None:
    pure, plat = wheels(tmp_path)
    root = tmp_path / "usr"
    fake_system_python(root)
    path = f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"
    proc = safelink_from(
        tool, "install", "--system", str(pure), str(plat), cwd=tmp_path, env={"PATH": path}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Installed 2 wheels into {root}, ")
    assert (root / "lib" / V / "site-packages" / "puredemo" / "__init__.py").exists()
    assert (root / "lib64" / V / "site-packages" / "platdemo" / "__init__.py").exists()


def test_an_externally_managed_interpreter_is_refused(tmp_path: Path, tool: Path) -> None:
    pure, _ = wheels(tmp_path)
    root = tmp_path / "usr"
    python = fake_system_python(root, externally_managed=True)
    before = tree(root)
    proc = safelink_from(tool, "install", "--python", str(python), str(pure), cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (1, "")
    marker = root / "lib64" / V / "EXTERNALLY-MANAGED"
    assert proc.stderr.splitlines() == [
        f"safelink: error: {python} is externally managed (PEP 668: {marker}) (use a virtual "
        "environment ('python -m venv .venv'), or --break-system-packages to install into it "
        "anyway)"
    ]
    assert tree(root) == before
    proc = safelink_from(
        tool, "install", "--python", str(python), "--break-system-packages", str(pure),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (root / "lib" / V / "site-packages" / "puredemo" / "__init__.py").exists()
    # --prefix does not install into the interpreter: PEP 668 does not apply, as with pip
    proc = safelink_from(
        tool, "install", "--python", str(python), "--prefix", str(tmp_path / "p"), str(pure),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr


def test_python_with_prefix_uses_that_interpreters_scheme(tmp_path: Path, tool: Path) -> None:
    """lib64 platforms: platlib under D/lib64, as that interpreter's sysconfig says."""
    pure, plat = wheels(tmp_path)
    python = fake_system_python(tmp_path / "usr")
    prefix = tmp_path / "prefix"
    proc = safelink_from(
        tool, "install", "--python", str(python), "--prefix", str(prefix), str(pure), str(plat),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Installed 2 wheels into {prefix}, ")
    assert (prefix / "lib" / V / "site-packages" / "puredemo" / "__init__.py").exists()
    assert (prefix / "lib64" / V / "site-packages" / "platdemo" / "__init__.py").exists()
    assert not (prefix / "lib" / V / "site-packages" / "platdemo").exists()


def test_api_default_target_follows_the_same_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    monkeypatch.chdir(nowhere)
    with pytest.raises(safelink.TargetError, match="no virtual environment found"):
        safelink.resolve_target()
    venv = make_venv(tmp_path / "nowhere" / ".venv")
    assert safelink.resolve_target().root == str(venv)
    active = make_venv(tmp_path / "active")
    monkeypatch.setenv("VIRTUAL_ENV", str(active))
    assert safelink.resolve_target().root == str(active)
