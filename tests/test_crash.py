"""kill -9 at every stage of admission, install, replace and uninstall.

The process is killed for real (``SAFELINK_TEST_CRASH=<point>[:<n>]`` makes it
SIGKILL itself the n-th time it passes that point). What must hold afterwards:

* the cache never offers a partial entry, and the next run admits the wheel
  cleanly; ``safelink cache prune`` removes what the dead process left;
* the next safelink run on the environment rolls the dead install back (or
  completes its commit): no file that no RECORD lists, an older version that
  was being replaced is back byte for byte, and installing again works.

This module also holds the helpers the other robustness tests share.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

import safelink
from conftest import ENV_LOCK_FILE, make_venv, run_cli, site_packages, tree
from safelink._layout import ADMIT, parse_temp, temp_name
from wheelmaker import make_wheel

KILLED = -getattr(signal, "SIGKILL", 9)  # no SIGKILL on Windows: the suite must import there
EP = "[console_scripts]\ndemo-hello = demo.cli:main\n"

# -- shared helpers -----------------------------------------------------------------------


def demo_wheel(d: Path, version: str = "1.0", modules: int = 20, name: str = "demo") -> Path:
    """A wheel with every part (modules, data, headers, both kinds of scripts, an entry point)."""
    mod = name.replace("-", "_")
    files = {
        f"{mod}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{mod}/cli.py": b"def main():\n    print('hello')\n    return 0\n",
        f"{mod}-{version}.data/scripts/{mod}-tool": b"#!python\nprint('tool')\n",
        f"{mod}-{version}.data/scripts/{mod}-sh": b"#!/bin/sh\necho sh\n",
        f"{mod}-{version}.data/data/share/{mod}/readme.txt": f"readme {version}\n".encode(),
        f"{mod}-{version}.data/headers/{mod}.h": b"#define DEMO 1\n",
    }
    for i in range(modules):
        files[f"{mod}/sub/m{i:03d}.py"] = f"X = {i}  # {version}\n".encode() * 8
    return make_wheel(d, name, version, files, entry_points=EP if mod == "demo" else None)


def small_wheel(d: Path, name: str = "other", version: str = "1.0") -> Path:
    mod = name.replace("-", "_")
    return make_wheel(d, name, version, {f"{mod}/__init__.py": b"OTHER = 1\n"})


def files_of(root: Path) -> set[str]:
    """Every non-directory under *root* (symlinks to directories count as files)."""
    out: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            out.add(os.path.relpath(os.path.join(dirpath, n), root))
    out.discard(ENV_LOCK_FILE)  # an environment's lock file where there is no flock (Windows)
    return out


def record_rows(venv: Path) -> dict[str, list[list[str]]]:
    """RECORD rows of every installed distribution, by dist-info name."""
    out: dict[str, list[list[str]]] = {}
    sp = site_packages(venv) if (venv / "pyvenv.cfg").exists() else venv
    for di in sorted(sp.glob("*.dist-info")):
        record = di / "RECORD"
        if record.exists():
            with open(record, newline="", encoding="utf-8") as f:
                out[di.name] = [r for r in csv.reader(f) if r]
    return out


def listed(venv: Path) -> set[str]:
    """Every path some RECORD lists, relative to *venv*."""
    sp = site_packages(venv) if (venv / "pyvenv.cfg").exists() else venv
    out: set[str] = set()
    for rows in record_rows(venv).values():
        for row in rows:
            out.add(os.path.relpath(os.path.normpath(sp / row[0]), venv))
    return out


def unlisted(venv: Path, baseline: set[str]) -> set[str]:
    """Files in *venv* that are neither the bare environment's own nor listed by a RECORD."""
    return files_of(venv) - baseline - listed(venv)


def check_record(venv: Path, dist_info: str) -> int:
    """Every RECORD row of *dist_info* exists with the recorded hash and size."""
    sp = site_packages(venv) if (venv / "pyvenv.cfg").exists() else venv
    rows = record_rows(venv)[dist_info]
    for path, digest, size in rows:
        p = sp / path
        assert p.is_file(), f"{dist_info} lists missing {path}"
        if digest:
            algo, _, want = digest.partition("=")
            got = base64.urlsafe_b64encode(hashlib.new(algo, p.read_bytes()).digest())
            assert got.rstrip(b"=").decode() == want, f"{path} does not match RECORD"
            assert p.stat().st_size == int(size), path
    return len(rows)


def without(snapshot: dict[str, object], venv: Path, dist_info: str) -> dict[str, object]:
    """*snapshot* minus what *dist_info*'s RECORD lists (and directories left empty by that)."""
    sp = site_packages(venv) if (venv / "pyvenv.cfg").exists() else venv
    drop = {
        os.path.relpath(os.path.normpath(sp / r[0]), venv) for r in record_rows(venv)[dist_info]
    }
    kept = {k: v for k, v in snapshot.items() if k not in drop}
    for d in sorted({os.path.dirname(p) for p in drop}, key=len, reverse=True):
        if d and not any(k.startswith(d + os.sep) for k in kept):
            kept.pop(d, None)
    return kept


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 1, exactly one stderr line ``safelink: error: ...`` containing *needles*."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("safelink: error: "), proc.stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


def no_transaction_left(env_root: Path) -> bool:
    names = os.listdir(env_root)
    return not any(n.startswith((".safelink-journal", ".safelink-stash")) for n in names)


def crash(*args: str, point: str) -> subprocess.CompletedProcess[str]:
    """Run ``safelink`` with the crash hook armed; it must really have died there."""
    proc = run_cli(*args, env={"SAFELINK_TEST_CRASH": point})
    assert proc.returncode == KILLED, (point, proc.returncode, proc.stdout, proc.stderr)
    return proc


def crash_install(venv: Path, cache: Path, *wheels: Path, point: str) -> None:
    """An install into *venv* killed at *point* (one link thread: "link-after:N" is exact)."""
    args = ["--cache-dir", str(cache), "--python", str(venv), "--threads", "1"]
    crash("install", *args, *map(str, wheels), point=point)


def install(venv: Path, cache: Path, *wheels: Path) -> str:
    """A normal install, in-process (quicker than the CLI); returns its warnings."""
    report = safelink.install(wheels, venv, cache=cache)
    return "\n".join(report.warnings)


# -- admission ----------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["admit-mid:3", "admit-before-plan", "admit-before-rename"])
def test_crash_during_admission(tmp_path: Path, new_venv: Path, point: str) -> None:
    whl = demo_wheel(tmp_path)
    cache_dir = tmp_path / "cache"
    cache = safelink.Cache(cache_dir)
    before = tree(new_venv)
    crash_install(new_venv, cache_dir, whl, point=point)

    # The dead admission left a temp dir, and nothing that passes for an entry.
    sha = cache.wheel_sha256(str(whl))
    temps = os.listdir(cache_dir / "v1" / "tmp")
    assert len(temps) == 1 and (parse_temp(temps[0]) or ("",))[0] == ADMIT
    assert cache.get(sha) is None
    assert list(cache.entries()) == []
    assert run_cli("cache", "list", "--cache-dir", str(cache_dir), check=True).stdout == ""
    assert tree(new_venv) == before  # the environment was never touched

    install(new_venv, cache_dir, whl)
    (entry,) = cache.entries()
    assert entry.sha256 == sha
    assert os.listdir(cache_dir / "v1" / "entries") == [sha]
    check_record(new_venv, "demo-1.0.dist-info")
    assert unlisted(new_venv, set(before)) == set()

    proc = run_cli("cache", "prune", "--cache-dir", str(cache_dir), check=True)
    assert "1 stale temp file\n" in proc.stdout
    assert os.listdir(cache_dir / "v1" / "tmp") == []
    assert cache.get(sha) == entry  # in use by the venv: kept


def test_prune_spares_admissions_still_running(tmp_path: Path) -> None:
    """Only temp dirs whose process is gone are stale; a live admission's dir is kept."""
    cache = tmp_path / "cache"
    safelink.Cache(cache).admit(small_wheel(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    tmp = cache / "v1" / "tmp"
    live, dead = tmp / temp_name(ADMIT), tmp / temp_name(ADMIT, pid=gone.pid)
    for d in (live, dead):
        (d / "files").mkdir(parents=True)
        (d / "files" / "x.py").write_bytes(b"")
        (d / "files" / "x.py").chmod(0o444)
    proc = run_cli("cache", "prune", "--cache-dir", str(cache), check=True)
    assert "1 stale temp file\n" in proc.stdout
    assert live.exists() and not dead.exists()


# -- a fresh install ----------------------------------------------------------------------

INSTALL_POINTS = [
    "journal-written:1",  # the first journal is written but not yet in place
    "journal-written:2",  # the "linking" journal, likewise
    "install-after-stash",
    "link-after:1",
    "link-after:7",
    "install-after-link",
    "fresh-written:1",  # the first script written, not yet renamed into place
    "fresh-written:4",
    "before-record",
    "finalized:1",  # the first of two wheels is complete, the second is not
    "before-commit",
]


@pytest.mark.parametrize("point", INSTALL_POINTS)
def test_crash_during_install_rolls_back(tmp_path: Path, new_venv: Path, point: str) -> None:
    cache = tmp_path / "cache"
    whl, extra = demo_wheel(tmp_path), small_wheel(tmp_path, "extra")
    baseline, bare = files_of(new_venv), tree(new_venv)
    crash_install(new_venv, cache, whl, extra, point=point)
    debris = unlisted(new_venv, baseline)
    assert debris, "a dead install leaves a journal at least"

    # Any next run on the environment rolls the dead install back first.
    err = install(new_venv, cache, small_wheel(tmp_path, "other"))
    # (Killed before the first journal was in place: nothing to roll back, only its temp file.)
    assert ("rolled back an interrupted install" in err) == (point != "journal-written:1")
    assert unlisted(new_venv, baseline) == set()
    assert set(record_rows(new_venv)) == {"other-1.0.dist-info"}
    # Not a file or directory of the dead install is left (headers root included).
    assert without(tree(new_venv), new_venv, "other-1.0.dist-info") == bare

    install(new_venv, cache, whl, extra)
    assert check_record(new_venv, "demo-1.0.dist-info") > 20
    check_record(new_venv, "extra-1.0.dist-info")
    assert unlisted(new_venv, baseline) == set()
    assert no_transaction_left(new_venv)


def test_crash_during_commit_completes(tmp_path: Path, new_venv: Path) -> None:
    """Killed while deleting the stash of a complete install: the install stands."""
    cache = tmp_path / "cache"
    install(new_venv, cache, demo_wheel(tmp_path, "1.0"))
    baseline = files_of(new_venv)
    v2 = demo_wheel(tmp_path, "2.0")
    crash_install(new_venv, cache, v2, point="commit-mid")
    install(new_venv, cache, small_wheel(tmp_path))
    assert set(record_rows(new_venv)) == {"demo-2.0.dist-info", "other-1.0.dist-info"}
    check_record(new_venv, "demo-2.0.dist-info")
    assert unlisted(new_venv, baseline) == set()
    assert no_transaction_left(new_venv)


def test_crash_in_flat_target_rolls_back(tmp_path: Path) -> None:
    """``--target``: purelib, platlib and data share one root; all of it is rolled back."""
    cache, target = tmp_path / "cache", tmp_path / "flat"
    safelink.install([small_wheel(tmp_path, "first")], flat_target=str(target), cache=cache)
    before = tree(target)
    args = ["--cache-dir", str(cache), "--target", str(target), "--threads", "1"]
    crash("install", *args, str(demo_wheel(tmp_path)), point="link-after:12")
    safelink.install([small_wheel(tmp_path)], flat_target=str(target), cache=cache)
    assert without(tree(target), target, "other-1.0.dist-info") == before
    check_record(target, "first-1.0.dist-info")


# -- replacing an installed version -------------------------------------------------------


@pytest.mark.parametrize(
    "point",
    ["install-after-stash", "link-after:5", "fresh-written:2", "before-record", "before-commit"],
)
def test_crash_while_replacing_restores_old_version(
    tmp_path: Path, new_venv: Path, point: str
) -> None:
    cache = tmp_path / "cache"
    install(new_venv, cache, demo_wheel(tmp_path, "1.0", modules=12))
    v1 = tree(new_venv)
    v2 = demo_wheel(tmp_path, "2.0", modules=30)
    crash_install(new_venv, cache, v2, point=point)
    assert tree(new_venv) != v1

    install(new_venv, cache, small_wheel(tmp_path))
    # v1 is back exactly: same files, bytes and modes; nothing of v2 is left.
    assert without(tree(new_venv), new_venv, "other-1.0.dist-info") == v1
    check_record(new_venv, "demo-1.0.dist-info")
    python = str(new_venv / "bin" / "python")
    code = "import demo; print(demo.VERSION)"
    proc = subprocess.run([python, "-B", "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == "1.0\n"

    install(new_venv, cache, v2)
    check_record(new_venv, "demo-2.0.dist-info")
    assert set(record_rows(new_venv)) == {"demo-2.0.dist-info", "other-1.0.dist-info"}


def test_crash_during_recovery_then_recovery(tmp_path: Path, new_venv: Path) -> None:
    """Killed while rolling back a killed install: the next run still restores the old version."""
    cache = tmp_path / "cache"
    install(new_venv, cache, demo_wheel(tmp_path, "1.0", modules=12))
    v1 = tree(new_venv)
    crash_install(new_venv, cache, demo_wheel(tmp_path, "2.0", modules=30), point="link-after:20")
    other = small_wheel(tmp_path)
    crash_install(new_venv, cache, other, point="restore-mid:5")
    install(new_venv, cache, other)
    assert without(tree(new_venv), new_venv, "other-1.0.dist-info") == v1


def test_crash_never_deletes_a_file_it_did_not_create(tmp_path: Path, new_venv: Path) -> None:
    """A file already at a planned destination (another distribution's) survives a crash."""
    cache = tmp_path / "cache"
    owner = make_wheel(tmp_path, "owner", "1.0", {"shared/zz_util.py": b"OWNED = True\n"})
    install(new_venv, cache, owner)
    before = tree(new_venv)
    intruder = make_wheel(
        tmp_path,
        "intruder",
        "1.0",
        {f"shared/m{i}.py": b"" for i in range(5)} | {"shared/zz_util.py": b"OWNED = False\n"},
    )
    crash_install(new_venv, cache, intruder, point="link-after:1")
    install(new_venv, cache, small_wheel(tmp_path))
    assert without(tree(new_venv), new_venv, "other-1.0.dist-info") == before
    assert (site_packages(new_venv) / "shared" / "zz_util.py").read_bytes() == b"OWNED = True\n"


# -- uninstall ----------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["uninstall-mid:1", "uninstall-mid:9", "uninstall-before-commit"])
def test_crash_during_uninstall(tmp_path: Path, new_venv: Path, point: str) -> None:
    cache = tmp_path / "cache"
    bare = tree(new_venv)
    install(new_venv, cache, demo_wheel(tmp_path))
    installed = tree(new_venv)
    crash("uninstall", "--python", str(new_venv), "demo", point=point)
    assert tree(new_venv) != installed

    install(new_venv, cache, small_wheel(tmp_path))
    assert without(tree(new_venv), new_venv, "other-1.0.dist-info") == installed
    check_record(new_venv, "demo-1.0.dist-info")

    safelink.uninstall(["demo", "other"], new_venv)
    assert tree(new_venv) == bare


def test_uninstall_recovers_before_looking(tmp_path: Path, new_venv: Path) -> None:
    """An uninstall right after a crashed install sees the rolled-back state, not the debris."""
    cache = tmp_path / "cache"
    bare = tree(new_venv)
    install(new_venv, cache, demo_wheel(tmp_path, "1.0"))
    installed = tree(new_venv)
    crash_install(new_venv, cache, demo_wheel(tmp_path, "2.0"), point="link-after:3")
    # demo-2.0.dist-info exists as a directory now; uninstall must not trip over it.
    proc = run_cli("uninstall", "--python", str(new_venv), "demo", check=True)
    assert proc.stdout.strip() == "Uninstalled demo 1.0"
    assert tree(new_venv) == bare
    del installed


def test_hook_is_inert_for_other_points(tmp_path: Path) -> None:
    """An armed hook for a point never reached changes nothing (and installs normally)."""
    venv = make_venv(tmp_path / "v")
    args = ["--cache-dir", str(tmp_path / "c"), "--python", str(venv)]
    proc = run_cli(
        "install", *args, str(demo_wheel(tmp_path)), env={"SAFELINK_TEST_CRASH": "no-such-point"}
    )
    assert proc.returncode == 0, proc.stderr
    check_record(venv, "demo-1.0.dist-info")


def test_repair_first_rolls_back_an_interrupted_install(tmp_path: Path, new_venv: Path) -> None:
    """Half an install is not damage: ``repair --env`` finishes or rolls back a dead
    transaction first (as install and uninstall do), then repairs what is left."""
    cache = tmp_path / "cache"
    install(new_venv, cache, demo_wheel(tmp_path, "1.0"))
    before = tree(new_venv)
    crash_install(new_venv, cache, demo_wheel(tmp_path, "2.0"), point="install-after-link")
    crashed = tree(new_venv)
    args = ["repair", "--cache-dir", str(cache), "--env", str(new_venv)]
    proc = run_cli(*args, "--dry-run")
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0, f"would first finish or roll back an interrupted safelink run in {new_venv}\n", ""
    )
    assert tree(new_venv) == crashed
    proc = run_cli(*args)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0, f"rolled back an interrupted install of demo 2.0 in {new_venv}\n", ""
    )
    assert tree(new_venv) == before
    assert no_transaction_left(new_venv)
    assert run_cli(*args).stdout == "nothing to repair\n"
