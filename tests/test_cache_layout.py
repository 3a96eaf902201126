"""The cache layout and the cache commands: every temporary name kind, every sub-directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import safelink
from conftest import make_venv, run_cli, site_packages, tree
from safelink import _bytecode, _layout
from wheelmaker import make_wheel


@pytest.mark.parametrize("kind", sorted(_layout.KINDS))
def test_every_temp_name_kind_round_trips(kind: str, tmp_path: Path) -> None:
    name = _layout.temp_name(kind)
    assert _layout.parse_temp(name) == (kind, os.getpid())
    assert _layout.parse_temp(_layout.temp_name(kind, "src")) == (kind, os.getpid())
    assert _layout.parse_temp(_layout.temp_name(kind, pid=4242)) == (kind, 4242)
    beside = _layout.temp_beside(str(tmp_path / "pkg" / "mod.py"), kind)
    assert os.path.basename(beside).startswith("mod.py.safelink-")
    assert _layout.parse_temp(os.path.basename(beside)) == (kind, os.getpid())
    # unpredictable: two names never repeat, even in one process at once
    assert len({_layout.temp_name(kind) for _ in range(100)}) == 100
    # this process's own names are never stale; a dead process's are
    assert not _layout.temp_is_stale(name)
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert _layout.temp_is_stale(_layout.temp_name(kind, pid=gone.pid))
    assert not _layout.temp_is_stale(_layout.temp_name(kind, pid=gone.pid), frozenset())


@pytest.mark.parametrize(
    "name",
    [
        "pkg/mod.py",
        "x.safelink-heal-12-1234",  # short token
        "x.safelink-heal-12-123456789abcdefg",  # not hex
        "x.safelink-nosuch-12-0123456789abcdef",  # unknown kind
        "x.safelink-heal-x1-0123456789abcdef",
        "x.safelink-heal-012-0123456789abcdef",
        "deadbeef-999999-1",  # an old-style name
        ".safelink-probe-999999-1-clone",
    ],
)
def test_foreign_names_are_not_temp_names(name: str) -> None:
    assert _layout.parse_temp(name) is None
    assert not _layout.temp_is_stale(name)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        _layout.temp_name("nosuch")


def _busy_everywhere(tmp_path: Path, cache_dir: Path) -> tuple[Path, Path]:
    """A cache with something in every sub-directory (entries, their bytecode, ...)."""
    whl = make_wheel(tmp_path, "demo", "1.0", {"demo/__init__.py": b"X = 1\n"})
    venv = make_venv(tmp_path / "venv")
    run_cli("install", "--python", str(venv), "--compile", str(whl), check=True)
    other = make_wheel(tmp_path, "other", "1.0", entry_points="[console_scripts]\no = other:x\n")
    run_cli("install", "--python", str(venv), str(other), check=True)
    run_cli("probe", str(tmp_path), check=True)
    (cache_dir / "v1" / "tmp").mkdir(exist_ok=True)
    (cache_dir / "v1" / "tmp" / "junk").write_bytes(b"x")
    return venv, whl


def test_size_and_clean_cover_every_sub_directory(tmp_path: Path, cache_dir: Path) -> None:
    venv, _whl = _busy_everywhere(tmp_path, cache_dir)
    present = set(os.listdir(cache_dir / "v1"))
    assert present <= set(_layout.SUBDIRS)
    assert present >= {"entries", "index", "locks", "envs", "pyc", "probes", "tags", "tmp"}
    size = json.loads(run_cli("cache", "size", "--json", check=True).stdout)
    assert size["schema"] == 1 and size["entries"] == 2
    assert set(size["dirs"]) == present
    for sub in present:
        files = sum(len(f) for _d, _s, f in os.walk(cache_dir / "v1" / sub))
        assert size["dirs"][sub]["files"] == files, sub
    assert size["total_files"] == sum(d["files"] for d in size["dirs"].values())
    text = run_cli("cache", "size", check=True).stdout
    assert text.startswith("2 entries, ")

    env_before = tree(venv)
    proc = run_cli("cache", "clean", "--json", check=True)
    data = json.loads(proc.stdout)
    assert data["schema"] == 1
    assert sorted(data["removed"]) == ["demo-1.0-py3-none-any.whl", "other-1.0-py3-none-any.whl"]
    # what an empty cache holds: its sub-directories, empty (no lock files either)
    assert {p: kind for p, (kind, _mode, _size) in tree(cache_dir, content=False).items()} == {
        "v1": "dir", **{f"v1/{sub}": "dir" for sub in present - set(_layout.REMEMBERED)}
    }
    assert tree(venv) == env_before  # environments keep their files
    size = json.loads(run_cli("cache", "size", "--json", check=True).stdout)
    assert size["entries"] == 0 and size["files"] == 0


def test_clean_without_names_removes_every_entry(tmp_path: Path, cache_dir: Path) -> None:
    """It used to remove one entry and then fail, every time."""
    cache = safelink.Cache(cache_dir)
    for name in ("aaa", "bbb", "ccc"):
        cache.admit(make_wheel(tmp_path, name, "1.0"))
    proc = run_cli("cache", "clean")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"removed 3 entries from {cache_dir}\n"
    assert list(cache.entries()) == []
    assert run_cli("cache", "list", check=True).stdout == ""


def test_clean_names_empties_what_it_says(tmp_path: Path, cache_dir: Path) -> None:
    cache = safelink.Cache(cache_dir)
    for name in ("aaa", "Bb_b", "ccc"):
        cache.admit(make_wheel(tmp_path, name, "1.0"))
    proc = run_cli("cache", "clean", "BB.b", "aaa", check=True)
    assert proc.stdout == f"removed 2 entries from {cache_dir}\n"
    assert [e.plan.name for e in cache.entries()] == ["ccc"]


def test_cache_json_outputs_carry_a_schema(tmp_path: Path, cache_dir: Path) -> None:
    safelink.Cache(cache_dir).admit(make_wheel(tmp_path, "aaa", "1.0"))
    for action in ("dir", "list", "size", "prune", "clean"):
        data = json.loads(run_cli("cache", action, "--json", check=True).stdout)
        assert data["schema"] == 1, action
    assert json.loads(run_cli("cache", "dir", "--json", check=True).stdout) == {
        "schema": 1,
        "dir": str(cache_dir),
        "satellites": [],  # satellite caches on other filesystems (test_satellite.py)
    }


def test_prune_spares_a_live_compile(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--compile`` builds bytecode in a temp dir; a prune meanwhile must leave it alone."""
    whl = make_wheel(tmp_path, "demo", "1.0", {"demo/__init__.py": b"X = 1\n"})
    venv = make_venv(tmp_path / "venv")
    real = _bytecode._compile_into
    pruned: list[str] = []

    def compile_then_prune(tmp: str, *args: object) -> object:
        assert os.path.isdir(tmp)
        proc = run_cli("cache", "prune", "--json", check=True)
        pruned.append(proc.stdout)
        return real(tmp, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_bytecode, "_compile_into", compile_then_prune)
    report = safelink.install([whl], venv, compile_bytecode=True)
    assert json.loads(pruned[0])["temp_dirs"] == 0
    assert [w.name for w in report.wheels] == ["demo"]
    pyc = site_packages(venv) / "demo" / "__pycache__"
    assert [p.suffix for p in pyc.iterdir()] == [".pyc"]
    assert os.listdir(cache_dir / "v1" / "tmp") == []


def test_owner_check_never_signals_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.kill(pid, 0)`` terminates the process on Windows: the check must not call it."""
    calls: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: calls.append(pid))
    monkeypatch.setattr(_layout.sys, "platform", "win32")
    assert _layout.pid_alive(4242)
    assert not _layout.temp_is_stale(_layout.temp_name(_layout.ADMIT, pid=4242))
    assert calls == []


_KILLED_WRITER = """
import os, sys
import safelink
from safelink import _guard
from safelink.strategies import probe

os.replace = lambda *a, **k: os.kill(os.getpid(), 9)  # killed just before its rename
cache = safelink.Cache(sys.argv[1])
writer, arg = sys.argv[2:]
if writer == "index":
    cache.wheel_sha256(arg)
elif writer == "probe":
    probe.probe(cache.root, arg, refresh=True)
else:
    (entry,) = cache.entries()
    _guard.heal(entry.plan, entry.files, "demo/__init__.py", arg)
"""


def test_prune_removes_the_temps_of_killed_writers_and_spares_live_ones(
    tmp_path: Path, cache_dir: Path
) -> None:
    """A process killed while it replaces a file of the cache (an index record, a
    remembered probe, a healed cached file) leaves its temporary name next to that file:
    ``cache prune`` removes it, and leaves alone one that a live process is writing."""
    whl = make_wheel(tmp_path, "demo", "1.0", {"demo/__init__.py": b"X = 1\n"})
    venv = make_venv(tmp_path / "venv")
    run_cli("install", "--python", str(venv), str(whl), check=True)
    before = tree(cache_dir, content=False)
    other_path = tmp_path / "copy" / whl.name  # not indexed yet: its hash gets recorded
    other_path.parent.mkdir()
    other_path.write_bytes(whl.read_bytes())
    for writer, arg in (("index", other_path), ("probe", tmp_path), ("heal", whl)):
        proc = subprocess.run(
            [sys.executable, "-c", _KILLED_WRITER, str(cache_dir), writer, str(arg)],
            capture_output=True,
        )
        assert proc.returncode == -9, proc.stderr
    left = set(tree(cache_dir, content=False)) - set(before)
    kinds = {(_layout.parse_temp(os.path.basename(p)) or ("not _layout's",))[0] for p in left}
    assert kinds == {_layout.WRITE, _layout.HEAL}, left
    assert len(left) == 3 and {p.split("/")[1] for p in left} == {"index", "probes", "entries"}
    # one being written right now, by a live process: not stale
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        index = cache_dir / "v1" / "index"
        live = index / (next(iter(os.listdir(index))) + _layout.temp_name(_layout.WRITE,
                                                                           pid=sleeper.pid))
        live.write_bytes(b"")
        mine = Path(_layout.temp_beside(str(cache_dir / "v1" / "probes" / "x.json"),
                                        _layout.WRITE))
        mine.write_bytes(b"")  # this test's own process is alive too
        proc = run_cli("cache", "prune", "--json", check=True)
        assert json.loads(proc.stdout)["temp_dirs"] == 3
        after = tree(cache_dir, content=False)
    finally:
        sleeper.kill()
        sleeper.wait()
    rel = {str(p.relative_to(cache_dir)) for p in (live, mine)}
    assert set(after) - rel == set(before)
    assert {k: v for k, v in after.items() if k not in rel} == before
    assert (site_packages(venv) / "demo" / "__init__.py").read_bytes() == b"X = 1\n"


def test_a_refused_wheel_leaves_the_cache_as_it_was(tmp_path: Path, cache_dir: Path) -> None:
    """Neither a wheel refused while it is admitted nor one refused against the entry it
    matches leaves anything in the cache (an index record, a lock file)."""
    whl = make_wheel(tmp_path, "demo", "1.0", {"demo/__init__.py": b"X = 1\n"})
    venv = make_venv(tmp_path / "venv")
    run_cli("install", "--python", str(venv), str(whl), check=True)
    (tmp_path / "evil").mkdir()
    evil = make_wheel(tmp_path / "evil", "evil", "1.0", {"evil/../../x.py": b"boom\n"})
    renamed = tmp_path / "renamed" / "demo-2.0-py3-none-any.whl"  # the same bytes as *whl*
    renamed.parent.mkdir()
    renamed.write_bytes(whl.read_bytes())
    before, env_before = tree(cache_dir), tree(venv)
    for bad in (evil, renamed):
        proc = run_cli("install", "--python", str(venv), str(bad))
        assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert tree(cache_dir) == before, bad.name
    assert tree(venv) == env_before
