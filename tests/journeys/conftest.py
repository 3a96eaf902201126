"""Fixtures of the journey tests: real environments made from real wheels, once per session.

* ``pip_base``: a venv that has pip and setuptools, installed by pip itself from the
  pinned wheels (as ``python -m venv`` + ``ensurepip`` would leave it); each test gets
  a copy (``pip_env``).
* ``uv_exe``: the ``uv`` executable from its pinned wheel (a second real installer).
* :func:`fake_system_python`: a non-virtual interpreter in a prefix of its own (the
  stdlib linked in, an empty ``site-packages``), optionally marked
  ``EXTERNALLY-MANAGED`` (PEP 668) like a distribution's ``/usr/bin/python3``.
* :func:`runner_venv`: a venv that can run safelink (``python -m safelink``) without
  safelink installed in it: the environment "safelink itself runs from".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import corpus
from conftest import make_venv

from .journey import Journey

WHEELS = ("six", "idna", "pyflakes", "black", "numpy", "pip", "setuptools", "uv")
PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"


@pytest.fixture(scope="session")
def wheels() -> dict[str, Path]:
    """The pinned real wheels this session uses, by project name (downloaded once)."""
    pinned = [corpus.for_this_python(n) for n in WHEELS]
    return {w.name: p for w, p in zip(pinned, corpus.fetch(pinned), strict=True)}


def isolated_pip_env() -> dict[str, str]:
    """pip and uv with no user configuration, index or find-links of their own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", UV_NO_CONFIG="1")
    env.update(UV_PYTHON_DOWNLOADS="never", UV_OFFLINE="1")
    return env


def pip_install(python: Path, wheels: dict[str, Path], *names: str) -> None:
    """``pip install --no-index --find-links`` the pinned wheels of *names* into *python*'s env."""
    pip = wheels["pip"]
    specs = [f"{n}=={corpus.for_this_python(n).version}" for n in names]
    subprocess.run(
        [str(python), f"{pip}/pip", "install", "--isolated", "--no-index", "--no-deps",
         "--find-links", str(pip.parent), "--quiet", *specs],
        check=True, env=isolated_pip_env(), capture_output=True, text=True,
    )  # fmt: skip


@pytest.fixture(scope="session")
def pip_base(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Path:
    base = make_venv(tmp_path_factory.mktemp("pip-base") / "venv")
    pip_install(base / "bin" / "python", wheels, "pip", "setuptools")
    return base


@pytest.fixture
def pip_env(tmp_path: Path, pip_base: Path) -> Path:
    """A fresh copy of ``pip_base`` (a venv with pip and setuptools installed by pip)."""
    env = tmp_path / "env"
    shutil.copytree(pip_base, env, symlinks=True)
    return env


@pytest.fixture(scope="session")
def uv_exe(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Path:
    whl = wheels["uv"]
    out = tmp_path_factory.mktemp("uv") / "uv"
    with zipfile.ZipFile(whl) as zf:
        [member] = [n for n in zf.namelist() if n.endswith(".data/scripts/uv")]
        out.write_bytes(zf.read(member))
    out.chmod(0o755)
    return out


def uv(uv_exe: Path, *args: str | os.PathLike[str], cache: Path) -> None:
    env = isolated_pip_env()
    env["UV_CACHE_DIR"] = str(cache)
    subprocess.run(
        [str(uv_exe), *map(os.fspath, args)], check=True, env=env, capture_output=True, text=True
    )


def _import_paths() -> list[str]:
    """Where this process imports safelink and its dependencies from."""
    import installer
    import packaging
    import platformdirs

    import safelink

    mods = (safelink, packaging, installer, platformdirs)
    return sorted({str(Path(m.__file__ or "").resolve().parent.parent) for m in mods})


def can_run_safelink(site_packages: Path) -> None:
    """Let the interpreter of *site_packages* import safelink (a ``.pth`` file)."""
    (site_packages / "_safelink_under_test.pth").write_text("\n".join(_import_paths()) + "\n")


def fake_system_python(root: Path, externally_managed: bool = False) -> Path:
    """A non-virtual CPython with *root* as its prefix: ``root/bin/pythonX.Y``.

    The real interpreter binary is copied (its shared library is found by absolute
    run-path) and every stdlib entry is linked into ``root/lib/pythonX.Y``, so that
    Python finds its landmark there and *root* is ``sys.prefix``; ``site-packages``
    is a real, empty directory. With *externally_managed*, the stdlib directory has an
    ``EXTERNALLY-MANAGED`` file (PEP 668), as on Debian or Fedora.
    """
    stdlib = Path(sysconfig.get_path("stdlib"))
    lib = root / "lib" / PY
    lib.mkdir(parents=True)
    for child in stdlib.iterdir():
        if child.name not in ("site-packages", "EXTERNALLY-MANAGED", "__pycache__"):
            (lib / child.name).symlink_to(child)
    (lib / "site-packages").mkdir()
    (root / "bin").mkdir()
    exe = root / "bin" / PY
    shutil.copy2(os.path.realpath(sys.executable), exe)
    (root / "bin" / "python3").symlink_to(PY)
    (root / "bin" / "python").symlink_to(PY)
    if externally_managed:
        (lib / "EXTERNALLY-MANAGED").write_text(
            "[externally-managed]\nError=To install Python packages system-wide, use apt.\n"
        )
    probe = subprocess.run(
        [str(exe), "-c", "import sys, sysconfig; print(sys.prefix, sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.split() == [str(root), str(lib / "site-packages")], probe.stdout
    return exe


def runner_venv(path: Path) -> Path:
    """A venv that runs safelink from this checkout: returns its interpreter."""
    venv = make_venv(path)
    can_run_safelink(venv / "lib" / PY / "site-packages")
    return venv / "bin" / "python"


@pytest.fixture
def journey(tmp_path: Path, pip_env: Path) -> Iterator[Journey]:
    j = Journey(env=pip_env, cache=tmp_path / "cache", canary=tmp_path / "canary")
    j.environ["VIRTUAL_ENV"] = None
    yield j


#: Environment variables that would pick a target by themselves.
NO_VENV: dict[str, str | None] = {"VIRTUAL_ENV": None, "CONDA_PREFIX": None, "PYTHONPATH": None}


@pytest.fixture
def runner(tmp_path: Path) -> Path:
    """The interpreter of a venv safelink runs from (not activated)."""
    return runner_venv(tmp_path / "runner")


@pytest.fixture
def user(tmp_path: Path) -> Journey:
    # Leftover temp files are checked in the whole work area (every candidate target).
    work = tmp_path / "work"
    work.mkdir()
    return Journey(env=work, cache=tmp_path / "cache", canary=tmp_path / "canary", environ={
        **NO_VENV})  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every journey uses pinned real wheels: downloaded once (``network``), then cached."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.network)
