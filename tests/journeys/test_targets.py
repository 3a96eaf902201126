"""Which environment ``safelink install`` picks, like pip and uv.

An active ``VIRTUAL_ENV``; else a ``.venv`` in the working directory or a parent (as
uv does); else an error that says so. A non-virtual interpreter needs ``--system``; one
marked ``EXTERNALLY-MANAGED`` (PEP 668) needs ``--break-system-packages``. Never the
environment safelink itself runs from, silently.

safelink runs here from interpreters of its own (a venv or a fake system prefix that can
import it), so that a wrong pick lands in a directory the test owns and checks.
"""

from __future__ import annotations

from pathlib import Path

from conftest import make_venv, site_packages, tree

from .journey import Journey


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

