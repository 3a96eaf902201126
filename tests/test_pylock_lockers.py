"""Locks written by real lockers, synced by safelink, compared with ``uv pip sync``.

A PEP 503 index of real pinned files (``index_server.py``) runs on 127.0.0.1; the
lockers run against it for real:

* ``uv pip compile --universal --format pylock.toml``: one lock for every Python, with
  several wheels per package (MarkupSafe for cp310, cp311, cp313), its sdist, and a
  marker (``tomli`` only below 3.11). Synced into a 3.10 and a 3.13 environment, each
  gets its own wheel; into a 3.12 environment, the lock selects the sdist, which is
  refused before anything changes.
* ``uv export --format pylock.toml`` of a project, with and without an extra and a
  dependency group.
* ``pip lock`` (pip >= 25.1) for the running interpreter.

Each environment safelink makes must equal what ``uv pip sync`` makes from the same lock:
the same paths, bytes and executable bits; only what an installer writes about itself
(INSTALLER, RECORD, REQUESTED, ``direct_url.json``, ``safelink.json``, ``uv_cache.json``)
and entry-point launchers' templates may differ.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import corpus
from conftest import make_venv, run_cli, tree
from index_server import IndexServer

PYENV = Path.home() / ".pyenv" / "versions"
UV = shutil.which("uv")
_PINS = "https://files.pythonhosted.org/packages"
_MS = "MarkupSafe-3.0.2-{}-{}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
EXTRA_FILES = (  # real files beside tests/corpus.py's: several wheels per project, an sdist
    corpus.PinnedWheel(
        "markupsafe", "3.0.2", _MS.format("cp310", "cp310"),
        "bbcb445fa71794da8f178f0f6d66789a28d7319071af7a496d4d507ed566270d",
        f"{_PINS}/22/35/137da042dfb4720b638d2937c38a9c2df83fe32d20e8c8f3185dbfef05f7/"
        + _MS.format("cp310", "cp310"),
        "compiled for CPython 3.10 only", size=20866,
    ),
    corpus.PinnedWheel(
        "markupsafe", "3.0.2", _MS.format("cp311", "cp311"),
        "a123e330ef0853c6e822384873bef7507557d8e4a082961e1defa947aa59ba84",
        f"{_PINS}/f1/a4/aefb044a2cd8d7334c8a47d3fb2c9f328ac48cb349468cc31c20b539305f/"
        + _MS.format("cp311", "cp311"),
        "compiled for CPython 3.11 only", size=23120,
    ),
    corpus.PinnedWheel(
        "markupsafe", "3.0.2", _MS.format("cp313", "cp313"),
        "15ab75ef81add55874e7ab7055e9c397312385bd9ced94920f2802310c930396",
        f"{_PINS}/0c/91/96cf928db8236f1bfab6ce15ad070dfdd02ed88261c2afafd4b43575e9e9/"
        + _MS.format("cp313", "cp313"),
        "compiled for CPython 3.13 only", size=23085,
    ),
    corpus.PinnedWheel(
        "markupsafe", "3.0.2", "markupsafe-3.0.2.tar.gz",
        "ee55d3edf80167e48ea11a923c7386f4669df67d7994554387f84e7d8b0a2bf0",
        f"{_PINS}/b2/97/5d42485e71dfc078108a86d6de8fa46db44a1a9295e89c5d6d4a06e23a62/"
        "markupsafe-3.0.2.tar.gz",
        "the sdist (uv lists it beside the wheels)", size=20537,
    ),
    corpus.PinnedWheel(
        "tomli", "2.2.1", "tomli-2.2.1-py3-none-any.whl",
        "cb55c73c5f4408779d0cf3eef9f762b9c9f147a77de7b258bef0a5628adc85cc",
        f"{_PINS}/6e/c2/61d3e0f47e2b74ef40a68b9e6ad5984f6241a942f7cd3bbfbdbd03861ea9/"
        "tomli-2.2.1-py3-none-any.whl",
        "a backport: only below Python 3.11", size=14257,
    ),
)
REQUIREMENTS = "six\nmarkupsafe\ntomli; python_version < '3.11'\npyflakes\n"
SELF_WRITTEN = {"INSTALLER", "RECORD", "REQUESTED", "direct_url.json", "safelink.json",
                "uv_cache.json"}
pytestmark = [
    pytest.mark.skipif(UV is None, reason="needs uv (pip install uv)"),
    # The interpreters these tests target are chosen explicitly (3.10, 3.12, 3.13 and the
    # running one), so one session of the Python matrix runs them all.
    pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="runs under CPython 3.11 only"),
]


def python(version: str) -> Path | None:
    found = sorted(PYENV.glob(f"{version}.*/bin/python{version}"))
    return found[-1] if found else None


@pytest.fixture(scope="module")
def index() -> Iterator[IndexServer]:
    pins = [corpus.by_name(n) for n in ("six", "idna", "pyflakes")] + list(EXTRA_FILES)
    try:
        paths = corpus.fetch(pins)
    except corpus.CorpusError as exc:  # pragma: no cover - no network and no cached copy
        pytest.skip(str(exc))
    with IndexServer(paths) as server:
        yield server


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.pop("VIRTUAL_ENV", None)
    return env


def uv(*args: str, cwd: Path | None = None, cache: Path) -> None:
    assert UV is not None
    proc = subprocess.run(
        [UV, *args, "--no-progress", "--cache-dir", str(cache)],
        capture_output=True, text=True, cwd=cwd, env=clean_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def uv_lock(index: IndexServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("uvlock")
    (d / "requirements.in").write_text(REQUIREMENTS)
    uv("pip", "compile", "requirements.in", "--universal", "--format", "pylock.toml",
       "--python-version", "3.10", "--index-url", f"{index.url}/simple", "-o", "pylock.toml",
       cwd=d, cache=d / "uv-cache")
    return d / "pylock.toml"


def venv_for(version: str | None, path: Path) -> Path:
    if version is None:
        return make_venv(path)
    exe = python(version)
    if exe is None:
        pytest.skip(f"needs CPython {version} under ~/.pyenv")
    subprocess.run([str(exe), "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def site_dir(venv: Path) -> Path:
    (lib,) = (venv / "lib").glob("python3.*")
    return lib / "site-packages"


def installed_view(venv: Path) -> dict[str, Any]:
    """site-packages and bin as a user sees them: paths, bytes, executable bits (not what
    each installer writes about itself; launchers by name and exec bit only)."""
    out: dict[str, Any] = {}
    site = site_dir(venv)
    for rel, (kind, mode, data) in tree(site).items():
        parts = rel.split("/")
        if "__pycache__" in parts:
            continue
        if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] in SELF_WRITTEN:
            continue
        out[f"site/{rel}"] = (kind, mode & 0o111, data)
    for p in sorted((venv / "bin").iterdir()):
        if not p.name.startswith(("python", "activate", "Activate")):
            out[f"bin/{p.name}"] = ("file", p.stat().st_mode & 0o111)
    return out


def sync_both(lock: Path, version: str | None, tmp: Path, *extra: str) -> tuple[Path, Path]:
    """The same lock synced by safelink and by ``uv pip sync``; both views must be equal."""
    ours = venv_for(version, tmp / f"sl-{version}")
    theirs = venv_for(version, tmp / f"uv-{version}")
    proc = run_cli("sync", str(lock), "--python", str(ours), *extra, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    uv("pip", "sync", str(lock), "--python", str(theirs / "bin" / "python"), cache=tmp / "uvc")
    assert installed_view(ours) == installed_view(theirs)
    return ours, theirs


def wheel_tag(venv: Path, dist: str) -> str:
    (di,) = [
        p
        for p in site_dir(venv).iterdir()
        if p.name.lower().startswith(f"{dist}-") and p.name.endswith(".dist-info")
    ]
    return next(
        line.split(": ", 1)[1]
        for line in (di / "WHEEL").read_text().splitlines()
        if line.startswith("Tag: ")
    )


@pytest.mark.parametrize("version", ["3.10", "3.13"])
def test_uv_universal_lock_picks_each_pythons_wheel(
    uv_lock: Path, version: str, tmp_path: Path
) -> None:
    ours, _ = sync_both(uv_lock, version, tmp_path)
    cp = "cp" + version.replace(".", "")
    assert wheel_tag(ours, "markupsafe").startswith(f"{cp}-{cp}-manylinux")
    has_tomli = any(site_dir(ours).glob("tomli-2.2.1.dist-info"))
    assert has_tomli == (version == "3.10")
    assert (ours / "bin" / "pyflakes").is_file()
    # And a no-op afterwards.
    proc = run_cli("sync", str(uv_lock), "--python", str(ours), env=clean_env())
    n = 4 if version == "3.10" else 3
    assert proc.stdout.startswith(f"nothing to do: {n} distribution(s) already match"), proc.stdout


def test_uv_lock_selecting_an_sdist_is_refused(uv_lock: Path, tmp_path: Path) -> None:
    venv = venv_for("3.12", tmp_path / "v312")
    cache = tmp_path / "cache"
    before = tree(venv), tree(cache)
    proc = run_cli(
        "sync", str(uv_lock), "--python", str(venv), "--cache-dir", str(cache), env=clean_env()
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        f"safelink: error: {uv_lock}: no wheel for 1 package(s) this target needs: "
        "markupsafe 3.0.2 (an sdist) (build wheels for them (e.g. 'pip wheel --no-deps'), add "
        "them to the index and lock again; safelink installs wheels only)\n"
    )
    assert (tree(venv), tree(cache)) == before


def test_uv_export_with_and_without_an_extra_and_a_group(
    index: IndexServer, tmp_path: Path
) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pyproject.toml").write_text(
        '[project]\nname = "demo-app"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
        "dependencies = [\"six\", \"markupsafe\", \"tomli; python_version < '3.11'\"]\n"
        '[project.optional-dependencies]\nnet = ["idna"]\n'
        '[dependency-groups]\nlint = ["pyflakes"]\n'
    )
    cache = tmp_path / "uvc"
    uv("lock", "--default-index", f"{index.url}/simple", cwd=proj, cache=cache)
    full, lean = proj / "pylock.full.toml", proj / "pylock.toml"
    uv("export", "--format", "pylock.toml", "--no-emit-project", "--extra", "net", "--group",
       "lint", "-o", full.name, cwd=proj, cache=cache)
    uv("export", "--format", "pylock.toml", "--no-emit-project", "--no-default-groups",
       "-o", lean.name, cwd=proj, cache=cache)
    ours, _ = sync_both(full, None, tmp_path)
    assert (site_dir(ours) / "idna").is_dir() and (site_dir(ours) / "pyflakes").is_dir()
    proc = run_cli("sync", str(lean), "--python", str(ours), env=clean_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [" - idna==3.10", " - pyflakes==3.2.0"]
    assert not (site_dir(ours) / "idna").exists()
    assert not (ours / "bin" / "pyflakes").exists()


def test_pip_lock_for_this_interpreter(index: IndexServer, tmp_path: Path) -> None:
    import pip

    if tuple(int(x) for x in pip.__version__.split(".")[:2]) < (25, 1):
        pytest.skip("pip lock needs pip >= 25.1")
    (tmp_path / "requirements.in").write_text(REQUIREMENTS)
    lock = tmp_path / "pylock.toml"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--isolated", "lock", "-q", "--index-url",
         f"{index.url}/simple", "-r", "requirements.in", "-o", str(lock)],
        capture_output=True, text=True, cwd=tmp_path, env=clean_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert 'created-by = "pip"' in lock.read_text()
    ours, _ = sync_both(lock, None, tmp_path)
    cp = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    if sys.version_info[:2] in ((3, 10), (3, 11), (3, 13)):
        assert wheel_tag(ours, "markupsafe").startswith(f"{cp}-{cp}-")
