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

    out = journey.run("uninstall", "--python", env, "black", "numpy")
    assert lines(out.stdout) == ["Uninstalled black 25.1.0", "Uninstalled numpy 2.2.6"]
    sp = site_packages(env)
    assert not (sp / "numpy").exists() and not (sp / "black").exists()
    assert not (env / "bin" / "black").exists() and not (env / "bin" / "f2py").exists()
    assert (sp / "six.py").is_file()
    assert "numpy" not in _pip_list(env)
    assert _pips(env) == pips  # pip's own files untouched throughout

