"""``safelink verify`` on environments that pip and uv made: clean, with exit 0."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import site_packages, tree

from .conftest import pip_install, uv
from .journey import Journey


def test_verify_is_clean_on_an_env_made_by_pip(
    journey: Journey, wheels: dict[str, Path]
) -> None:
    env = journey.env
    pip_install(env / "bin" / "python", wheels, "six", "black")
    before = tree(env)
    journey.run("verify", "--env", env)
    journey.run("repair", "--env", env)  # nothing to repair: nothing changes
    assert tree(env) == before


def test_verify_is_clean_on_an_env_made_by_uv(
    tmp_path: Path, uv_exe: Path, wheels: dict[str, Path]
) -> None:
    env = tmp_path / "uv-env"
    uv(uv_exe, "venv", "--quiet", "--python", sys.executable, env,
       cache=tmp_path / "uv-cache")  # fmt: skip
    uv(uv_exe, "pip", "install", "--python", env / "bin" / "python", "--no-index",
       "--find-links", wheels["six"].parent, "--no-deps", "pip==24.3.1", "setuptools==75.8.0",
       "six==1.17.0", "black==25.1.0", cache=tmp_path / "uv-cache")  # fmt: skip
    assert (site_packages(env) / "setuptools").is_dir()
    j = Journey(env=env, cache=tmp_path / "cache", canary=tmp_path / "canary")
    before = tree(env)
    j.run("verify", "--env", env)
    j.run("repair", "--env", env)
    assert tree(env) == before
    # and after safelink adds to it
    j.run("install", "--python", env, wheels["idna"])
    j.run("verify", "--env", env)
