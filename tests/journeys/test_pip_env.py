"""Journeys on a venv that already has pip and setuptools (installed by pip).

What a new user does on day one: install a few real wheels next to pip, check the
environment, edit a file by accident, see it reported, repair it, uninstall, and look
after the cache.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import site_packages, tree

from .journey import Journey, lines

PIPS = ("pip", "setuptools", "pkg_resources", "_distutils_hack", "distutils-precedence.pth")


def _pips(env: Path) -> dict[str, tuple[str, int, bytes | str]]:
    """Everything pip put there (pip, setuptools and their dist-info, bin/pip*)."""
    sp = site_packages(env)
    out = {}
    for name in sorted(p.name for p in sp.iterdir()):
        if name.startswith(PIPS) and not name.endswith("__pycache__"):
            out.update({f"{name}/{k}": v for k, v in tree(sp / name).items()})
            out[name] = ("entry", 0, b"")
    out.update({f"bin/{k}": v for k, v in tree(env / "bin").items() if k.startswith("pip")})
    return out


def _pip_list(env: Path) -> dict[str, str]:
    import json

    out = subprocess.run(
        [str(env / "bin" / "python"), "-m", "pip", "list", "--format=json", "--isolated"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {d["name"].lower(): d["version"] for d in json.loads(out)}


def test_install_next_to_pip_then_uninstall(journey: Journey, wheels: dict[str, Path]) -> None:
    env = journey.env
    pips = _pips(env)
    out = journey.run(
        "install", "--python", env, wheels["six"], wheels["idna"], wheels["black"], wheels["numpy"]
    )
    assert lines(out.stdout)[-1].startswith("Installed 4 wheels"), out.stdout
    # pip sees what safelink installed, and the interpreter imports it.
    listed = _pip_list(env)
    assert {k: listed.get(k) for k in ("six", "idna", "black", "numpy")} == {
        "six": "1.17.0", "idna": "3.10", "black": "25.1.0", "numpy": "2.2.6"
    }  # fmt: skip
    subprocess.run(
        [str(env / "bin" / "python"), "-c", "import six, idna, numpy; numpy.zeros(3).sum()"],
        check=True,
    )
    assert (env / "bin" / "black").is_file()
    journey.run("verify", "--env", env)  # numpy's 1,000 files and its .libs included

    out = journey.run("uninstall", "--python", env, "black", "numpy")
    assert lines(out.stdout) == ["Uninstalled black 25.1.0", "Uninstalled numpy 2.2.6"]
    sp = site_packages(env)
    assert not (sp / "numpy").exists() and not (sp / "black").exists()
    assert not (env / "bin" / "black").exists() and not (env / "bin" / "f2py").exists()
    assert (sp / "six.py").is_file()
    assert "numpy" not in _pip_list(env)
    assert _pips(env) == pips  # pip's own files untouched throughout


def test_verify_edit_repair_on_a_pip_env(journey: Journey, wheels: dict[str, Path]) -> None:
    env = journey.env
    journey.run("install", "--python", env, wheels["six"], wheels["black"])
    journey.run("verify", "--env", env)  # clean right after install, pip's files included
    journey.run("verify")  # every environment the cache knows

    six = site_packages(env) / "six.py"
    original = six.read_bytes()
    with six.open("ab") as f:  # an accidental edit, in place (as most editors save)
        f.write(b"# oops\n")
    out = journey.run("verify", "--env", env, rc=1)
    assert str(six) in out.stdout + out.stderr

    journey.run("repair", "--env", env)
    assert six.read_bytes() == original
    journey.run("verify", "--env", env)
    journey.run("verify")

    journey.run("uninstall", "--python", env, "six", "black")
    journey.run("verify", "--env", env)


def test_verify_and_repair_refuse_a_path_that_is_no_environment(
    journey: Journey, tmp_path: Path
) -> None:
    typo = tmp_path / "typo"
    for command in ("verify", "repair"):
        out = journey.run(command, "--env", typo, rc=1)
        assert str(typo) in out.stderr
        assert not typo.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    journey.run("repair", "--env", empty, rc=1)
    assert tree(empty) == {}


def test_cache_list_size_prune_clean(
    journey: Journey, wheels: dict[str, Path], tmp_path: Path
) -> None:
    env = journey.env
    journey.run("install", "--python", env, wheels["six"], wheels["idna"], wheels["black"])
    other = tmp_path / "other"
    import shutil

    shutil.copytree(env, other, symlinks=True)
    journey.run("install", "--python", other, wheels["pyflakes"])

    listed = lines(journey.run("cache", "list").stdout)
    assert len(listed) == 4
    for name, version in (("six", "1.17.0"), ("idna", "3.10"), ("black", "25.1.0"),
                          ("pyflakes", "3.2.0")):  # fmt: skip
        assert any(ln.startswith(f"{name} {version} ") for ln in listed), listed
    [size] = lines(journey.run("cache", "size").stdout)
    assert size.startswith("4 entries, ")

    # prune: only what no environment uses
    journey.run("uninstall", "--python", env, "black")
    out = journey.run("cache", "prune")
    assert "removed black-25.1.0-py3-none-any.whl" in lines(out.stdout)
    listed = lines(journey.run("cache", "list").stdout)
    assert sorted(ln.split()[0] for ln in listed) == ["idna", "pyflakes", "six"]

    # clean NAME: that project only; installed copies keep working
    journey.run("cache", "clean", "idna")
    listed = lines(journey.run("cache", "list").stdout)
    assert sorted(ln.split()[0] for ln in listed) == ["pyflakes", "six"]
    subprocess.run([str(env / "bin" / "python"), "-c", "import idna, six"], check=True)

    # clean: everything, and again (nothing left to remove is not an error)
    journey.run("cache", "clean")
    assert lines(journey.run("cache", "list").stdout) == []
    assert lines(journey.run("cache", "size").stdout)[0].startswith("0 entries, ")
    journey.run("cache", "clean")
    journey.run("cache", "clean", "six")

    # the cache fills again from scratch
    journey.run("install", "--python", other, wheels["six"], wheels["black"])
    assert len(lines(journey.run("cache", "list").stdout)) == 2
    journey.run("verify")


def test_json_outputs_carry_a_schema(
    journey: Journey, wheels: dict[str, Path], tmp_path: Path
) -> None:
    env = journey.env
    journey.json("install", "--python", env, wheels["six"], wheels["black"])
    journey.json("verify", "--env", env)
    journey.json("repair", "--env", env)
    journey.json("uninstall", "--python", env, "black")
    for action in ("dir", "list", "size", "prune"):
        journey.json("cache", action)
    journey.json("cache", "clean", "six")
    journey.json("cache", "clean")
    # errors, too, are JSON (on stderr)
    journey.json("install", "--python", env, tmp_path / "missing-1.0-py3-none-any.whl", rc=1)
    journey.json("verify", "--env", tmp_path / "typo", rc=1)
