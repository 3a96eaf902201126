from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
import venv
from collections.abc import Iterator, Mapping
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
    *args: str,
    env: Mapping[str, str | None] | None = None,
    check: bool = False,
    timeout: float = 300,
    cwd: str | os.PathLike[str] | None = None,
    python: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m safelink`` as a user would; return the completed process.

    *env* adds to (a value of ``None`` removes from) this process's environment;
    *python* runs safelink with another interpreter (default: this one).
    """
    full_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    proc = subprocess.run(
        [os.fspath(python or sys.executable), "-m", "safelink", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"safelink {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def tree(root: Path, content: bool = True) -> dict[str, tuple[str, int, bytes | str]]:
    """Full listing of *root*: relative path -> (kind, mode, content or link target).

    ``content=False``: a file's size (as text) instead of its content.
    An environment's lock file (where directories cannot be locked: Windows) is not
    listed: like uv's ``.lock``, it stays once an install has run there.
    ``content=False``: a file's size (as text) instead of its content.
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
                out[rel] = ("file", st.st_mode, p.read_bytes() if content else str(st.st_size))
    return out


#: Names safelink gives its temporary files and directories inside an environment.
TEMP_PATTERNS = ("*.safelink-*", ".safelink-*")


def leftover_temp_files(env: Path, cache: Path | None = None) -> list[str]:
    """Temp files left behind: safelink temp names in *env* and in the cache (heal and
    relink temps sit next to cached files), anything in the cache's ``tmp/``.

    After any command has finished (whatever its outcome) this must be empty.
    """
    found: list[str] = []
    for root in (env, cache):
        if root is None or not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            if root == cache and os.path.basename(dirpath) == "tmp":
                found += [os.path.join(dirpath, n) for n in dirnames + filenames]
                dirnames[:] = []
                continue
            for n in dirnames + filenames:
                if any(fnmatch.fnmatch(n, pat) for pat in TEMP_PATTERNS):
                    found.append(os.path.join(dirpath, n))
    return sorted(found)


def cache_entries(cache: Path) -> list[str]:
    """The sha256 of every entry directory in *cache* (whole or not)."""
    entries = cache / "v1" / "entries"
    return sorted(os.listdir(entries)) if entries.is_dir() else []


#: Cache files that record attempts, not content: an admission's lock file and the
#: wheel path -> sha256 memo. A refused wheel may leave these; nothing else.
CACHE_BOOKKEEPING = ("v1/locks/", "v1/index/")


def cache_tree(cache: Path, content: bool = True) -> dict[str, tuple[str, int, bytes | str]]:
    """:func:`tree` of a cache without its bookkeeping files (see CACHE_BOOKKEEPING).

    ``content=False`` lists each file's size instead of its bytes (cache files are
    sealed: size, mode and name tell a change).
    """
    listing = tree(cache, content=content)
    return {k: v for k, v in listing.items() if not k.startswith(CACHE_BOOKKEEPING)}


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def assert_clean_output(proc: subprocess.CompletedProcess[str]) -> None:
    """No traceback and no raw control character (escape, CR, ...) in a command's output."""
    for stream in (proc.stdout, proc.stderr):
        assert "Traceback" not in stream, stream
        assert not _CONTROL.search(stream), repr(stream)


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one ``safelink: error: ...`` line of a failed command (asserts there is one)."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("safelink: error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]
