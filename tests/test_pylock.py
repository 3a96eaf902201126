"""``safelink sync pylock.toml`` and ``safelink install -r pylock.toml``: journeys and bad locks.

Locks here are written by hand (the spec's shapes, wheels made by the tests); locks
written by real lockers (pip, uv) are in ``test_pylock_lockers.py``. Every journey
asserts what a user sees: the exact ``+``/``-``/``~`` lines, the environment's full
listing, the cache's, and for every refusal: one line, exit 1, nothing changed.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import safelink
from conftest import make_venv, run_cli, site_packages, tree
from wheelmaker import make_wheel

PY310 = Path.home() / ".pyenv/versions/3.10.13/bin/python3.10"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wheel_entry(whl: Path, lock_dir: Path, **extra: str) -> str:
    rel = os.path.relpath(whl, lock_dir)
    fields = [f'path = "{rel}"', f'hashes = {{ sha256 = "{sha256(whl)}" }}']
    fields += [f"{k} = {v}" for k, v in extra.items()]
    return "{ " + ", ".join(fields) + " }"


def package(name: str, version: str, wheels: list[Path], lock_dir: Path, **fields: str) -> str:
    lines = ["[[packages]]", f'name = "{name}"', f'version = "{version}"']
    lines += [f"{k} = {v}" for k, v in fields.items()]
    if wheels:
        lines.append("wheels = [" + ", ".join(wheel_entry(w, lock_dir) for w in wheels) + "]")
    return "\n".join(lines) + "\n"


def write_lock(lock_dir: Path, *packages: str, header: str = "") -> Path:
    text = 'lock-version = "1.0"\ncreated-by = "tests"\n' + header + "\n" + "\n".join(packages)
    path = lock_dir / "pylock.toml"
    path.write_text(text)
    return path


@pytest.fixture
def box(tmp_path: Path, cache_dir: Path) -> Iterator[dict[str, Path]]:
    wheels = tmp_path / "proj" / "wheels"
    wheels.mkdir(parents=True)
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("keep")
    yield {
        "proj": tmp_path / "proj",
        "wheels": wheels,
        "venv": make_venv(tmp_path / "venv"),
        "cache": cache_dir,
        "canary": canary,
    }


def lock_of(box: dict[str, Path], *specs: tuple[str, str]) -> Path:
    pkgs = []
    for name, version in specs:
        whl = make_wheel(box["wheels"], name, version)
        pkgs.append(package(name, version, [whl], box["proj"]))
    return write_lock(box["proj"], *pkgs)


def sync_cli(lock: Path, venv: Path, *args: str, command: str = "sync") -> Any:
    if command == "sync":
        return run_cli("sync", str(lock), "--python", str(venv), *args)
    return run_cli("install", "-r", str(lock), "--python", str(venv), *args)


def snapshot(box: dict[str, Path]) -> tuple[Any, Any, Any]:
    return tree(box["venv"]), tree(box["cache"]), tree(box["canary"])


# -- journeys -----------------------------------------------------------------------------


def test_sync_add_noop_replace_remove(box: dict[str, Path]) -> None:
    venv = box["venv"]
    lock = lock_of(box, ("alpha", "1.0"), ("beta", "1.0"))
    before = snapshot(box)
    proc = sync_cli(lock, venv, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [" + alpha==1.0", " + beta==1.0"]
    assert "would change 2 distribution(s) (2 added, 0 replaced, 0 removed)" in proc.stdout
    assert snapshot(box) == before  # a dry run touches nothing, not even the cache

    proc = sync_cli(lock, venv)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [" + alpha==1.0", " + beta==1.0"]
    sp = site_packages(venv)
    assert (sp / "alpha.py").read_text() == "VALUE = '1.0'\n"
    assert (sp / "alpha-1.0.dist-info" / "safelink.json").is_file()
    assert not (sp / "alpha-1.0.dist-info" / "direct_url.json").exists()  # as pip and uv

    # No-op: nothing is rewritten, not even RECORD.
    env_before = tree(venv)
    inodes = {p: p.stat().st_ino for p in sp.rglob("*")}
    proc = sync_cli(lock, venv)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("nothing to do: 2 distribution(s) already match the lock")
    assert tree(venv) == env_before
    assert {p: p.stat().st_ino for p in sp.rglob("*")} == inodes

    # Replace one, remove one, add one, in one run.
    lock = lock_of(box, ("alpha", "2.0"), ("gamma", "1.0"))
    proc = sync_cli(lock, venv)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:3] == [" ~ alpha 1.0 -> 2.0", " + gamma==1.0", " - beta==1.0"]
    names = sorted(p.name for p in sp.iterdir() if p.name != "__pycache__")
    assert names == ["alpha-2.0.dist-info", "alpha.py", "gamma-1.0.dist-info", "gamma.py"]
    assert [p.name for p in venv.iterdir() if p.name.startswith(".safelink")] == []


def test_same_version_from_another_wheel_is_replaced(box: dict[str, Path]) -> None:
    venv = box["venv"]
    lock = lock_of(box, ("alpha", "1.0"))
    assert sync_cli(lock, venv).returncode == 0
    rebuilt = make_wheel(box["wheels"], "alpha", "1.0", {"alpha.py": b"VALUE = 'rebuilt'\n"})
    write_lock(box["proj"], package("alpha", "1.0", [rebuilt], box["proj"]))
    proc = sync_cli(lock, venv)
    assert proc.stdout.splitlines()[0] == " ~ alpha 1.0 -> 1.0", proc.stderr
    assert (site_packages(venv) / "alpha.py").read_text() == "VALUE = 'rebuilt'\n"


def test_reinstall_forces_and_install_r_keeps_others(box: dict[str, Path]) -> None:
    venv = box["venv"]
    other = make_wheel(box["wheels"], "other", "1.0")
    run_cli("install", str(other), "--python", str(venv), check=True)
    lock = lock_of(box, ("alpha", "1.0"))
    proc = sync_cli(lock, venv, command="install")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == " + alpha==1.0"
    assert "0 removed" in proc.stdout
    sp = site_packages(venv)
    assert (sp / "other.py").exists()
    record = (sp / "alpha-1.0.dist-info" / "RECORD").stat().st_ino
    proc = sync_cli(lock, venv, "--reinstall", command="install")
    assert proc.stdout.splitlines()[0] == " ~ alpha 1.0 -> 1.0", proc.stderr
    assert (sp / "alpha-1.0.dist-info" / "RECORD").stat().st_ino != record
    # A wheel installed by file is recognised too: sync to a lock naming that very wheel.
    write_lock(
        box["proj"],
        package("alpha", "1.0", [box["wheels"] / "alpha-1.0-py3-none-any.whl"], box["proj"]),
        package("other", "1.0", [other], box["proj"]),
    )
    proc = sync_cli(box["proj"] / "pylock.toml", venv)
    assert proc.stdout.startswith("nothing to do: 2 distribution(s)"), proc.stdout + proc.stderr


def test_noop_sync_reads_no_record_and_no_plan(
    box: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = box["venv"]
    specs = [(f"pkg{i:02d}", "1.0") for i in range(25)]
    lock = lock_of(box, *specs)
    safelink.sync(lock, venv)
    opened: list[str] = []
    real_open = builtins.open

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(os.fspath(file) if not isinstance(file, int) else "<fd>")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    report = safelink.sync(lock, venv)
    assert report.changes == [] and len(report.unchanged) == 25
    assert not [p for p in opened if p.endswith(("RECORD", "plan.json", ".whl"))]
    markers = [p for p in opened if p.endswith("safelink.json")]
    assert len(markers) == 25


def test_sync_is_one_transaction_kill_rolls_back_removal_too(box: dict[str, Path]) -> None:
    venv = box["venv"]
    lock = lock_of(box, ("alpha", "1.0"), ("beta", "1.0"))
    assert sync_cli(lock, venv).returncode == 0
    before = tree(venv)
    lock = lock_of(box, ("alpha", "2.0"))  # replaces alpha, removes beta
    proc = run_cli(
        "sync", str(lock), "--python", str(venv), env={"SAFELINK_TEST_CRASH": "before-commit"}
    )
    assert proc.returncode == -signal.SIGKILL
    # A dry run says the dead sync will be rolled back, and changes nothing.
    proc = sync_cli(lock, venv, "--dry-run")
    assert proc.stderr == (
        f"safelink: warning: an interrupted install in {venv} will be rolled back first; "
        "this plan is from the environment as it is now\n"
    )
    # The next run rolls the dead sync back (alpha 1.0 and beta are back as they were)
    # before it compares: a half-installed alpha 2.0 is not taken for "already right".
    proc = run_cli("uninstall", "nothing-here", "--python", str(venv))
    assert tree(venv) == before
    crash = {"SAFELINK_TEST_CRASH": "before-commit"}
    proc = run_cli("sync", str(lock), "--python", str(venv), env=crash)
    assert proc.returncode == -signal.SIGKILL
    proc = sync_cli(lock, venv)
    assert proc.stderr == (
        f"safelink: warning: rolled back an interrupted install of alpha 2.0 in {venv}\n"
    )
    assert proc.stdout.splitlines()[:2] == [" ~ alpha 1.0 -> 2.0", " - beta==1.0"]
    assert sorted(p.name for p in site_packages(venv).iterdir()) == [
        "alpha-2.0.dist-info",
        "alpha.py",
    ]


def test_distribution_without_record_is_reported_not_removed(box: dict[str, Path]) -> None:
    venv = box["venv"]
    sp = site_packages(venv)
    odd = sp / "odd-1.0.dist-info"
    odd.mkdir(parents=True)
    (odd / "METADATA").write_text("Metadata-Version: 2.1\nName: odd\nVersion: 1.0\n")
    lock = lock_of(box, ("alpha", "1.0"))
    proc = sync_cli(lock, venv)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == (
        f"safelink: warning: not removing odd: {odd} has no RECORD "
        "(installed by a tool that keeps none); remove it by hand\n"
    )
    assert (odd / "METADATA").exists()
    assert proc.stdout.splitlines()[0] == " + alpha==1.0"


def test_api_sync_and_install_lock(box: dict[str, Path]) -> None:
    venv = box["venv"]
    lock = lock_of(box, ("alpha", "1.0"))
    report = safelink.install_lock(lock, venv)
    assert isinstance(report, safelink.SyncReport)
    assert report.lines() == [" + alpha==1.0"]
    assert report.install is not None and report.install.wheels[0].name == "alpha"
    events: list[str] = []
    report = safelink.sync(lock, venv, reinstall=True, progress=lambda e: events.append(e.stage))
    assert report.lines() == [" ~ alpha 1.0 -> 1.0"]
    assert "link" in events
    d = report.to_dict()
    assert d["lines"] == [" ~ alpha 1.0 -> 1.0"] and d["install"]["wheels"][0]["name"] == "alpha"


# -- selection against the target interpreter --------------------------------------------


needs_310 = pytest.mark.skipif(
    not PY310.exists() or sys.version_info[:2] == (3, 10),
    reason="needs CPython 3.10 under ~/.pyenv as a target other than the interpreter running",
)


@needs_310
def test_markers_and_tags_are_the_targets(box: dict[str, Path], tmp_path: Path) -> None:
    """One lock, two interpreters: markers and wheel tags pick per target, not per safelink."""
    venv310 = tmp_path / "venv310"
    subprocess.run([str(PY310), "-m", "venv", "--without-pip", str(venv310)], check=True)
    d = box["wheels"]
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    fast310 = make_wheel(d, "fast", "1.0", {"fast.py": b"WHO = 310\n"}, tag=f"cp310-cp310-{plat}")
    ours = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    fast_ours = make_wheel(
        d, "fast", "1.0", {"fast.py": b"WHO = 'ours'\n"}, tag=f"{ours}-{ours}-{plat}"
    )
    fast_any = make_wheel(d, "fast", "1.0", {"fast.py": b"WHO = 'any'\n"}, tag="py3-none-any")
    backport = make_wheel(d, "backport", "1.0")
    lock = write_lock(
        box["proj"],
        package("fast", "1.0", [fast_any, fast310, fast_ours], box["proj"]),
        package("backport", "1.0", [backport], box["proj"], marker="'python_version < \"3.11\"'"),
    )
    proc = sync_cli(lock, venv310)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [" + fast==1.0", " + backport==1.0"]
    sp310 = venv310 / "lib" / "python3.10" / "site-packages"
    assert (sp310 / "fast.py").read_text() == "WHO = 310\n"
    proc = sync_cli(lock, box["venv"])
    assert proc.stdout.splitlines()[:1] == [" + fast==1.0"], proc.stderr
    if sys.version_info >= (3, 11):
        assert not (site_packages(box["venv"]) / "backport.py").exists()
        assert (site_packages(box["venv"]) / "fast.py").read_text() == "WHO = 'ours'\n"


def test_extras_and_groups(box: dict[str, Path]) -> None:
    d, proj = box["wheels"], box["proj"]
    pkgs = [
        package("base", "1.0", [make_wheel(d, "base", "1.0")], proj),
        package("fancy", "1.0", [make_wheel(d, "fancy", "1.0")], proj,
                marker="\"'fancy' in extras\""),
        package("tester", "1.0", [make_wheel(d, "tester", "1.0")], proj,
                marker="\"'test' in dependency_groups\""),
        package("docer", "1.0", [make_wheel(d, "docer", "1.0")], proj,
                marker="\"'docs' in dependency_groups\""),
    ]
    header = 'extras = ["fancy"]\ndependency-groups = ["test", "docs"]\ndefault-groups = ["test"]\n'
    lock = write_lock(proj, *pkgs, header=header)
    venv = box["venv"]
    proc = sync_cli(lock, venv, "--dry-run")
    assert proc.stdout.splitlines()[:2] == [" + base==1.0", " + tester==1.0"], proc.stderr
    proc = sync_cli(lock, venv, "--dry-run", "--extras", "fancy", "--group", "docs")
    assert proc.stdout.splitlines()[:3] == [" + base==1.0", " + fancy==1.0", " + docer==1.0"]
    proc = sync_cli(lock, venv, "--dry-run", "--extras", "nope")
    assert proc.returncode == 1
    assert proc.stderr == f"safelink: error: {lock}: Undeclared extras: nope\n"


# -- bad locks: one line, exit 1, nothing changed -----------------------------------------


def refuse(box: dict[str, Path], lock: Path, message: str, *args: str) -> None:
    venv = box["venv"]
    assert sync_cli(lock_of_seed(box), venv).returncode == 0  # something installed already
    before = snapshot(box)
    proc = sync_cli(lock, venv, *args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr == f"safelink: error: {message}\n"
    assert proc.stdout == ""
    assert snapshot(box) == before


def test_sync_and_install_print_one_change_line_format(box: dict[str, Path]) -> None:
    """``sync`` and ``install`` name each change with one formatter (as uv does):
    `` + name==version``, `` ~ name old -> new``, `` - name==version``."""
    import re

    from test_progress import run_in_pty

    venv = box["venv"]
    proc = sync_cli(lock_of(box, ("alpha", "1.0"), ("beta", "1.0")), venv)
    assert proc.stdout.splitlines()[:-1] == [" + alpha==1.0", " + beta==1.0"], proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("changed 2 distribution(s) (2 added, ")
    proc = sync_cli(lock_of(box, ("alpha", "2.0")), venv)
    assert proc.stdout.splitlines()[:-1] == [" ~ alpha 1.0 -> 2.0", " - beta==1.0"]

    other = make_venv(box["proj"] / "other")  # install prints its lines on a terminal
    for version, line in (("1.0", " + alpha==1.0"), ("2.0", " ~ alpha 1.0 -> 2.0")):
        whl = box["wheels"] / f"alpha-{version}-py3-none-any.whl"
        code, chunks = run_in_pty(["install", "--python", str(other), str(whl)], {})
        screen = b"".join(c for _, c in chunks).decode()
        final = re.split(r"\r\x1b\[2K", screen)[-1].replace("\r\n", "\n").splitlines()
        assert code == 0 and final[0].startswith("Installed 1 wheel into "), screen
        assert final[1:] == [line]


def lock_of_seed(box: dict[str, Path]) -> Path:
    seed_dir = box["proj"] / "seed"
    seed_dir.mkdir(exist_ok=True)
    whl = make_wheel(seed_dir, "seed", "1.0")
    return write_lock(seed_dir, package("seed", "1.0", [whl], seed_dir))


def test_refuses_unknown_lock_version(box: dict[str, Path]) -> None:
    lock = lock_of(box, ("alpha", "1.0"))
    lock.write_text(lock.read_text().replace('lock-version = "1.0"', 'lock-version = "2.0"'))
    refuse(
        box,
        lock,
        f"{lock}: lock-version '2.0' is not supported (this safelink reads 1.x) "
        "(upgrade safelink or write the lock with a locker that emits lock-version 1.0)",
    )


def test_refuses_package_selected_twice(box: dict[str, Path]) -> None:
    d, proj = box["wheels"], box["proj"]
    one = make_wheel(d, "alpha", "1.0")
    two = make_wheel(d, "alpha", "2.0")
    lock = write_lock(
        proj, package("alpha", "1.0", [one], proj), package("alpha", "2.0", [two], proj)
    )
    refuse(
        box,
        lock,
        f"{lock}: Multiple packages with the name 'alpha' are selected at packages[1] "
        "and packages[0]",
    )


def test_refuses_path_outside_the_lock_directory(box: dict[str, Path]) -> None:
    outside = make_wheel(box["canary"], "alpha", "1.0")
    lock = write_lock(box["proj"], package("alpha", "1.0", [outside], box["proj"]))
    shown = os.path.relpath(outside, box["proj"])
    refuse(
        box,
        lock,
        f"{lock}: package alpha: path {shown!r} is outside the lock file's directory "
        f"{box['proj']} (keep wheels beside (or below) the lock file, or give a file:// URL)",
    )


def test_refuses_sdists_vcs_and_directories_all_at_once(box: dict[str, Path]) -> None:
    proj = box["proj"]
    alpha = make_wheel(box["wheels"], "alpha", "1.0")
    lock = write_lock(
        proj,
        package("alpha", "1.0", [alpha], proj),
        package("src-only", "1.0", [], proj,
                sdist='{ name = "src_only-1.0.tar.gz", path = "src_only-1.0.tar.gz", '
                      'hashes = { sha256 = "' + "0" * 64 + '" } }'),
        package("from-git", "2.0", [], proj,
                vcs='{ type = "git", url = "https://example.invalid/x.git", '
                    'commit-id = "' + "a" * 40 + '" }'),
        package("local", "0.1", [], proj, directory='{ path = "local" }'),
    )
    message = (
        f"{lock}: no wheel for 3 package(s) this target needs: src-only 1.0 (an sdist), "
        "from-git 2.0 (a VCS checkout), local 0.1 (a local directory) (build wheels for them "
        "(e.g. 'pip wheel --no-deps'), add them to the index and lock again; "
        "safelink installs wheels only)"
    )
    refuse(box, lock, message)
    refuse(box, lock, message, "--dry-run")


def test_refuses_requires_python_and_environments(box: dict[str, Path]) -> None:
    lock = lock_of(box, ("alpha", "1.0"))
    text = lock.read_text()
    top = 'created-by = "tests"'
    lock.write_text(text.replace(top, top + '\nrequires-python = ">=4"'))
    v = ".".join(map(str, sys.version_info[:3]))
    refuse(
        box,
        lock,
        f"{lock}: python_full_version '{v}' in provided environment does not satisfy the "
        f"Python version requirement '>=4' (this lock does not cover "
        f"{box['venv'] / 'bin' / 'python'} (Python {v}))",
    )
    lock.write_text(text.replace(top, top + "\nenvironments = [\"sys_platform == 'nope'\"]"))
    refuse(
        box,
        lock,
        f"{lock}: Provided environment does not satisfy any of the environments specified "
        f"in the lock file (this lock does not cover {box['venv'] / 'bin' / 'python'} "
        f"(Python {v}))",
    )


def test_refuses_local_wheel_with_wrong_hash(box: dict[str, Path]) -> None:
    lock = lock_of(box, ("alpha", "1.0"))
    whl = box["wheels"] / "alpha-1.0-py3-none-any.whl"
    want = sha256(whl)
    make_wheel(box["wheels"], "alpha", "1.0", {"alpha.py": b"EVIL = 1\n"})
    got = sha256(whl)
    refuse(
        box,
        lock,
        f"{whl}: sha256 {got} does not match the lock's {want} for alpha==1.0 "
        "(the file changed since it was locked; lock again or restore it)",
    )


def test_refuses_wheel_whose_content_is_another_project(box: dict[str, Path]) -> None:
    proj = box["proj"]
    six_like = make_wheel(box["wheels"], "other", "1.0")
    renamed = box["wheels"] / "alpha-1.0-py3-none-any.whl"
    shutil.copy(six_like, renamed)
    lock = write_lock(proj, package("alpha", "1.0", [renamed], proj))
    proc = sync_cli(lock, box["venv"])
    assert proc.returncode == 1
    assert proc.stderr.startswith("safelink: error: ")
    assert proc.stderr.count("\n") == 1
    assert not (site_packages(box["venv"]) / "other.py").exists()


def test_offline_refuses_the_network(box: dict[str, Path]) -> None:
    proj = box["proj"]
    lock = write_lock(
        proj,
        "[[packages]]\nname = \"alpha\"\nversion = \"1.0\"\nwheels = [{ url = "
        "\"https://example.invalid/alpha-1.0-py3-none-any.whl\", hashes = { sha256 = \""
        + "1" * 64 + "\" } }]\n",
    )
    refuse(
        box,
        lock,
        "--offline: 1 wheel(s) are neither in the cache nor on disk: "
        "alpha-1.0-py3-none-any.whl (run once without --offline to download them)",
        "--offline",
    )


def test_warm_cache_needs_no_wheel_file(box: dict[str, Path], tmp_path: Path) -> None:
    lock = lock_of(box, ("alpha", "1.0"))
    assert sync_cli(lock, box["venv"]).returncode == 0
    shutil.rmtree(box["wheels"])  # the lock's files are gone; the cache has them by sha256
    other = make_venv(tmp_path / "other")
    proc = sync_cli(lock, other, "--offline")
    assert proc.returncode == 0, proc.stderr
    assert (site_packages(other) / "alpha.py").exists()


def test_noop_sync_imports_neither_packaging_nor_the_installer(box: dict[str, Path]) -> None:
    """What a no-op costs: the remembered selection, one listing, one small read per
    distribution; no marker evaluation, no tag computation, no install machinery."""
    venv = box["venv"]
    lock = lock_of(box, ("alpha", "1.0"), ("beta", "1.0"))
    assert sync_cli(lock, venv).returncode == 0
    probe = (
        "import sys\n"
        "from safelink.cli import main\n"
        f"rc = main(['sync', {str(lock)!r}, '--python', {str(venv)!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('packaging.', 'safelink._install',"
        " 'safelink._link', 'safelink._fetch')))\n"
        "print(rc, heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 []"
    assert proc.stdout.startswith("nothing to do: 2 distribution(s) already match the lock")
    # Another lock (other bytes) is selected afresh, of course.
    lock = lock_of(box, ("alpha", "2.0"), ("beta", "1.0"))
    proc = sync_cli(lock, venv)
    assert proc.stdout.splitlines()[0] == " ~ alpha 1.0 -> 2.0", proc.stderr
