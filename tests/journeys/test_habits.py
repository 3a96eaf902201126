"""CLI habits from pip and uv, and the same answer whatever the cache holds."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import error_line, make_venv, tree

from .journey import Journey, lines


def _user(tmp_path: Path) -> Journey:
    env = make_venv(tmp_path / "venv")
    return Journey(env=env, cache=tmp_path / "cache", canary=tmp_path / "canary",
                   environ={"VIRTUAL_ENV": None})  # fmt: skip


def test_uninstall_of_what_is_not_installed_warns(tmp_path: Path) -> None:
    user = _user(tmp_path)
    before = tree(user.env)
    out = user.run("uninstall", "--python", user.env, "six")
    assert out.stdout == "" and "six" in out.stderr and "warning" in out.stderr, out.stderr
    out = user.run("uninstall", "--python", user.env, "--strict", "six", rc=1)
    assert "six" in error_line(out)
    assert tree(user.env) == before


def test_install_says_what_to_do_with_a_name_or_url(tmp_path: Path) -> None:
    user = _user(tmp_path)
    before = tree(user.env)
    for arg in ("requests", "https://example.org/requests-2.0-py3-none-any.whl"):
        out = user.run("install", "--python", user.env, arg, rc=1)
        line = error_line(out)
        assert arg in line, line
    assert tree(user.env) == before


def test_no_deps_is_accepted(tmp_path: Path, wheels: dict[str, Path]) -> None:
    user = _user(tmp_path)
    out = user.run("install", "--no-deps", "--python", user.env, wheels["six"])
    assert lines(out.stdout)[-1].startswith("Installed 1 wheel")


def test_a_renamed_wheel_gets_the_same_answer_cold_and_warm(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    user = _user(tmp_path)
    fake = tmp_path / "dl" / "idna-9.9-py3-none-any.whl"
    fake.parent.mkdir()
    shutil.copyfile(wheels["six"], fake)
    before = tree(user.env)
    cold = user.run("install", "--python", user.env, fake, rc=1)
    assert tree(user.env) == before
    user.run("install", "--python", user.env, wheels["six"])  # now six is in the cache
    before = tree(user.env)
    warm = user.run("install", "--python", user.env, fake, rc=1)
    assert tree(user.env) == before
    assert error_line(cold) == error_line(warm)
