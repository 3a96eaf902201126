"""Which environment ``safelink install`` picks, like pip and uv.

An active ``VIRTUAL_ENV``; else a ``.venv`` in the working directory or a parent (as
uv does); else an error that says so. A non-virtual interpreter needs ``--system``; one
marked ``EXTERNALLY-MANAGED`` (PEP 668) needs ``--break-system-packages``. Never the
environment safelink itself runs from, silently.

safelink runs here from interpreters of its own (a venv or a fake system prefix that can
import it), so that a wrong pick lands in a directory the test owns and checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import error_line, make_venv, site_packages, tree

from .conftest import PY, can_run_safelink, fake_system_python
from .journey import Journey, lines


def _has_six(env: Path) -> bool:
    return (site_packages(env) / "six.py").is_file()


def test_active_virtual_env(user: Journey, runner: Path, wheels: dict[str, Path]) -> None:
    target = make_venv(user.env / "active")
    runner_env = runner.parent.parent
    before = tree(runner_env)
    active = {"VIRTUAL_ENV": str(target)}
    user.run("install", wheels["six"], python=runner, env=active, cwd=user.env)
    assert _has_six(target)
    assert tree(runner_env) == before


def _installed(prefix: Path) -> dict[str, tuple[str, int, bytes | str]]:
    """The listing of a fake system prefix, but for the bytecode its stdlib imports leave."""
    stdlib_pycache = f"lib/{PY}/__pycache__"
    return {k: v for k, v in tree(prefix).items() if not k.startswith(stdlib_pycache)}


def test_dot_venv_in_the_working_directory_or_a_parent(
    user: Journey, runner: Path, wheels: dict[str, Path]
) -> None:
    project = user.env / "project"
    dot = make_venv(project / ".venv")
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    runner_env = runner.parent.parent
    before = tree(runner_env)
    user.run("install", wheels["six"], python=runner, cwd=project)
    assert _has_six(dot)
    user.run("uninstall", "six", python=runner, cwd=deep)
    assert not _has_six(dot)
    user.run("install", wheels["six"], python=runner, cwd=deep)
    assert _has_six(dot)
    assert tree(runner_env) == before
    # an active VIRTUAL_ENV wins over the .venv
    other = make_venv(user.env / "other")
    user.run("install", wheels["idna"], python=runner, cwd=deep, env={"VIRTUAL_ENV": str(other)})
    assert (site_packages(other) / "idna").is_dir()
    assert not (site_packages(dot) / "idna").exists()


def test_no_venv_is_an_error_not_the_env_safelink_runs_from(
    user: Journey, runner: Path, wheels: dict[str, Path]
) -> None:
    runner_env = runner.parent.parent
    before = tree(runner_env)
    out = user.run("install", wheels["six"], python=runner, cwd=user.env, rc=1)
    line = error_line(out)
    assert "virtual environment" in line or "venv" in line, line
    assert "--system" in line, line
    assert out.stdout == ""
    assert tree(runner_env) == before
    user.run("uninstall", "six", python=runner, cwd=user.env, rc=1)


def test_system_interpreter_needs_system(
    user: Journey, tmp_path: Path, wheels: dict[str, Path]
) -> None:
    prefix = tmp_path / "usr"
    python = fake_system_python(prefix)
    site = prefix / "lib" / PY / "site-packages"
    can_run_safelink(site)
    before = _installed(prefix)
    path = {"PATH": f"{prefix / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    out = user.run("install", wheels["six"], python=python, cwd=user.env, env=path, rc=1)
    assert "--system" in error_line(out)
    assert _installed(prefix) == before
    out = user.run("install", "--system", wheels["six"], python=python, cwd=user.env, env=path)
    assert (site / "six.py").is_file()
    assert str(prefix) in lines(out.stdout)[-1]  # the summary names the environment
    subprocess.run([str(python), "-c", "import six"], check=True, cwd=user.env)
    user.run("uninstall", "--system", "six", python=python, cwd=user.env, env=path)
    assert _installed(prefix) == before


def test_externally_managed_interpreter_is_refused_unless_asked(
    user: Journey, tmp_path: Path, wheels: dict[str, Path]
) -> None:
    prefix = tmp_path / "usr"
    python = fake_system_python(prefix, externally_managed=True)
    site = prefix / "lib" / PY / "site-packages"
    before = _installed(prefix)
    # The fake is real enough for pip: it refuses too (PEP 668).
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--isolated",
         "--no-index", "--find-links", str(wheels["six"].parent), "six"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert pip.returncode != 0 and "externally-managed-environment" in pip.stderr, pip.stderr

    for extra in ([], ["--system"]):
        out = user.run("install", "--python", python, *extra, wheels["six"], cwd=user.env, rc=1)
        line = error_line(out)
        assert "externally managed" in line.lower() or "EXTERNALLY-MANAGED" in line, line
        assert "--break-system-packages" in line, line
        assert _installed(prefix) == before
    user.run("install", "--python", python, "--break-system-packages", wheels["six"], cwd=user.env)
    assert (site / "six.py").is_file()
    subprocess.run([str(python), "-c", "import six"], check=True, cwd=user.env)
    user.run("uninstall", "--python", python, "six", cwd=user.env, rc=1)
    user.run("uninstall", "--python", python, "--break-system-packages", "six", cwd=user.env)
    assert _installed(prefix) == before


def test_summary_names_the_environment(user: Journey, wheels: dict[str, Path]) -> None:
    env = make_venv(user.env / "named")
    out = user.run("install", "--python", env, wheels["six"])
    assert str(env) in lines(out.stdout)[-1], out.stdout
