from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

if os.environ.get("SAFELINK_TEST_NO_POSIX") == "1":
    # Simulated Windows (no os.fork, fcntl, SIGKILL): this process, and through
    # PYTHONPATH every safelink process the tests start. See tests/nonposix/.
    import importlib.util

    _np = os.path.join(os.path.dirname(__file__), "nonposix")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_np, os.environ.get("PYTHONPATH")]))
    _spec = importlib.util.spec_from_file_location("safelink_nonposix", f"{_np}/sitecustomize.py")
    assert _spec is not None and _spec.loader is not None
    _mod = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)

pytest_plugins = ["fs_fixtures"]

REPO = Path(__file__).resolve().parent.parent
ENV_LOCK_FILE = ".safelink.lock"
"""safelink._lock.ENV_LOCK_FILE (not imported here: conftest runs before any safelink import)."""


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache for each test (also exported for subprocesses)."""
    d = tmp_path / "cache"
    monkeypatch.setenv("SAFELINK_CACHE_DIR", str(d))
    return d


def make_venv(path: Path) -> Path:
    """A bare venv (no pip): fast, and exactly what safelink installs into."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    return path


@pytest.fixture
def new_venv(tmp_path: Path) -> Iterator[Path]:
    yield make_venv(tmp_path / "venv")


def site_packages(venv_dir: Path) -> Path:
    v = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return venv_dir / "lib" / v / "site-packages"


def run_cli(
    *args: str, env: dict[str, str] | None = None, check: bool = False, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m safelink`` as a user would; return the completed process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "safelink", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"safelink {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def tree(root: Path) -> dict[str, tuple[str, int, bytes | str]]:
    """Full listing of *root*: relative path -> (kind, mode, content or link target).

    An environment's lock file (where directories cannot be locked: Windows) is not
    listed: like uv's ``.lock``, it stays once an install has run there.
    """
    out: dict[str, tuple[str, int, bytes | str]] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if rel == ENV_LOCK_FILE:
                continue
            st = p.lstat()
            if p.is_symlink():
                out[rel] = ("link", st.st_mode, os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode, b"")
            else:
                out[rel] = ("file", st.st_mode, p.read_bytes())
    return out
