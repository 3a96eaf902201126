"""The cache as a trust boundary: what safelink believes of what it finds in the cache.

Cached files are checked with ``lstat`` semantics and their mode bits are part of the
fingerprint; plans and entries that are malformed, escape, or hold symlinks are refused
with one line; a wheel file is checked against the entry its content maps to.
"""

from __future__ import annotations

import json
import marshal
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

import safelink
from conftest import make_venv, run_cli, site_packages, tree
from safelink.strategies.probe import forget
from wheelmaker import make_wheel

PRISTINE = b"def greet():\n    return 'hello'\n" * 20


@pytest.fixture(autouse=True)
def _fresh_probes() -> None:
    forget()


def one_line_error(proc: object, *parts: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in proc.stderr  # type: ignore[attr-defined]
    lines = proc.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    assert lines[0].startswith("safelink: error: ")
    for p in parts:
        assert p in lines[0], lines[0]
    return str(lines[0])


def hardlinked(base: Path) -> tuple[Path, Path, Path, Path, Path]:
    """A wheel installed by hardlink into A: (wheel, cache, A, A's file, cached file)."""
    whl = make_wheel(
        base,
        "guarded",
        "1.0",
        {"guarded/__init__.py": PRISTINE, "guarded/tool.sh": b"#!/bin/sh\necho hi\n"},
        modes={"guarded/tool.sh": stat.S_IFREG | 0o755},
    )
    cache = base / "cache"
    a = make_venv(base / "A")
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(a), str(whl))
    assert proc.returncode == 0 and "hardlink" in proc.stdout, proc.stderr
    entry = next(safelink.Cache(cache).entries())
    a_file = site_packages(a) / "guarded" / "__init__.py"
    cached = Path(entry.files) / "guarded" / "__init__.py"
    assert a_file.stat().st_ino == cached.stat().st_ino
    return whl, cache, a, a_file, cached


@pytest.mark.parametrize("mode", [0o777, 0o000])
def test_chmod_through_a_hardlink_is_detected_and_healed(
    fs_tmp: Callable[[str], Path], mode: int
) -> None:
    base = fs_tmp("ext4")
    whl, cache, _a, a_file, cached = hardlinked(base)
    a_file.chmod(mode)
    assert stat.S_IMODE(cached.stat().st_mode) == mode  # the shared inode

    proc = run_cli("verify", "--cache-dir", str(cache), "--cache", "--json")
    assert proc.returncode == 1
    [found] = json.loads(proc.stdout)["cache"]
    assert found["member"] == "guarded/__init__.py"
    assert found["reason"] == f"mode {mode:04o}, expected 0444"

    b = make_venv(base / "B")
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(b), str(whl))
    assert proc.returncode == 0, proc.stderr
    assert "healed 1 modified cache file" in proc.stdout
    b_file = site_packages(b) / "guarded" / "__init__.py"
    assert stat.S_IMODE(cached.stat().st_mode) == 0o444  # healing restores the mode
    assert stat.S_IMODE(b_file.stat().st_mode) == 0o444
    assert b_file.read_bytes() == PRISTINE
    assert stat.S_IMODE(a_file.stat().st_mode) == mode  # A keeps what it did
    tool = Path(cached.parent / "tool.sh")
    assert stat.S_IMODE(tool.stat().st_mode) == 0o555  # the executable bit is the plan's
    assert run_cli("verify", "--cache-dir", str(cache), "--cache").returncode == 0


def test_repair_restores_the_mode(fs_tmp: Callable[[str], Path]) -> None:
    base = fs_tmp("tmpfs")
    _whl, cache, _a, a_file, cached = hardlinked(base)
    a_file.chmod(0o666)
    run_cli("repair", "--cache-dir", str(cache), check=True)
    assert stat.S_IMODE(cached.stat().st_mode) == 0o444
    assert run_cli("verify", "--cache-dir", str(cache), "--cache").returncode == 0


def test_cached_file_swapped_for_a_symlink_is_never_followed(
    fs_tmp: Callable[[str], Path],
) -> None:
    base = fs_tmp("ext4")
    whl, cache, _a, _a_file, cached = hardlinked(base)
    outside = base / "outside.py"
    outside.write_bytes(b"EVIL = 1\n")
    # Same size, sealed mode and mtime as the cached file: only lstat tells them apart.
    outside.write_bytes(b"#" * len(PRISTINE))
    os.chmod(outside, 0o444)
    st = cached.stat()
    os.utime(outside, ns=(st.st_atime_ns, st.st_mtime_ns))
    cached.unlink()
    cached.symlink_to(outside)
    canary = tree(base / "outside.py")

    b = make_venv(base / "B")
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(b), str(whl))
    assert proc.returncode == 0, proc.stderr
    b_file = site_packages(b) / "guarded" / "__init__.py"
    assert b_file.read_bytes() == PRISTINE and not b_file.is_symlink()
    assert not cached.is_symlink() and cached.read_bytes() == PRISTINE
    assert outside.read_bytes() == b"#" * len(PRISTINE) and tree(outside) == canary


def test_cached_directory_swapped_for_a_symlink_is_refused(tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, "guarded", "1.0", {"guarded/__init__.py": PRISTINE})
    cache = tmp_path / "cache"
    entry = safelink.Cache(cache).admit(whl)
    pkg = Path(entry.files) / "guarded"
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(pkg, elsewhere)
    os.chmod(pkg, 0o755)
    shutil.rmtree(pkg)
    pkg.symlink_to(elsewhere, target_is_directory=True)
    venv = make_venv(tmp_path / "venv")
    before = tree(venv)
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(venv), str(whl))
    one_line_error(proc, f"cache entry {entry.path} cannot be trusted: {pkg} is a symlink",
                   "safelink cache clean")  # fmt: skip
    assert tree(venv) == before


@pytest.mark.parametrize(
    "damage",
    ["[]", '{"format": 1}', "wrong-types", "escape-dst", "escape-src", "escape-script", "other"],
)
def test_malformed_or_escaping_plan_is_cache_corrupt(tmp_path: Path, damage: str) -> None:
    whl = make_wheel(
        tmp_path, "demo", "1.0", entry_points="[console_scripts]\ndemo = demo:main\n"
    )
    cache = tmp_path / "cache"
    entry = safelink.Cache(cache).admit(whl)
    plan_json = Path(entry.path) / "plan.json"
    data = json.loads(plan_json.read_text())
    if damage in ("[]", '{"format": 1}'):
        text = damage
    else:
        if damage == "wrong-types":
            data["links"]["purelib"][0][2] = "12"
        elif damage == "escape-dst":
            data["links"]["purelib"][0][1] = "../../../../outside.py"
        elif damage == "escape-src":
            data["links"]["purelib"][0][0] = "/etc/passwd"
        elif damage == "escape-script":
            data["entry_points"][0][0] = "../../evil"
        else:
            data["sha256"] = "0" * 64
        text = json.dumps(data)
    for name in ("plan.json", "plan.bin"):
        os.chmod(Path(entry.path) / name, 0o644)
    plan_json.write_text(text)
    (Path(entry.path) / "plan.bin").write_bytes(marshal.dumps(("other", None)))
    venv = make_venv(tmp_path / "venv")
    before, canary = tree(venv), tree(tmp_path / "canary")
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(venv), str(whl))
    one_line_error(proc, f"cache entry {entry.path} ", "safelink cache clean")
    assert tree(venv) == before and tree(tmp_path / "canary") == canary
    assert not (tmp_path / "outside.py").exists()
    # verify and the cache commands say so in one line too, and clean removes it
    proc = run_cli("verify", "--cache-dir", str(cache), "--cache")
    one_line_error(proc, f"cache entry {entry.path} ")
    assert run_cli("cache", "list", "--cache-dir", str(cache), check=True).stdout.startswith("?")
    run_cli("cache", "clean", "--cache-dir", str(cache), check=True)
    run_cli("install", "--cache-dir", str(cache), "--python", str(venv), str(whl), check=True)


def test_renamed_wheel_gets_the_same_answer_cold_or_warm(tmp_path: Path) -> None:
    """A six wheel renamed ``idna-9.9-…`` was refused cold and installed as six warm."""
    (tmp_path / "orig").mkdir()
    six = make_wheel(tmp_path / "orig", "six", "1.16.0")
    renamed = tmp_path / "idna-9.9-py3-none-any.whl"
    shutil.copy(six, renamed)
    venv = make_venv(tmp_path / "venv")
    before = tree(venv)
    cold = run_cli("install", "--cache-dir", str(tmp_path / "c1"), "--python", str(venv),
                   str(renamed))  # fmt: skip
    line = one_line_error(cold, "idna-9.9-py3-none-any.whl")
    cache = tmp_path / "c2"
    run_cli("install", "--cache-dir", str(cache), "--python", str(venv), str(six), check=True)
    run_cli("uninstall", "--python", str(venv), "six", check=True)
    assert tree(venv) == before
    warm = run_cli("install", "--cache-dir", str(cache), "--python", str(venv), str(renamed))
    assert one_line_error(warm) == line
    assert tree(venv) == before
    # the same content under its own name (or an equivalent spelling) still installs
    same = tmp_path / "SIX-1.16.0-py3-none-any.whl"
    shutil.copy(six, same)
    run_cli("install", "--cache-dir", str(cache), "--python", str(venv), str(same), check=True)


# -- who may write the cache ------------------------------------------------------------


@pytest.mark.parametrize("where", ["base", "v1", "entries", "index"])
@pytest.mark.parametrize("mode", [0o777, 0o775])
def test_cache_writable_by_others_is_refused(tmp_path: Path, where: str, mode: int) -> None:
    whl = make_wheel(tmp_path, "demo", "1.0")
    cache = tmp_path / "cache"
    run_cli("install", "--cache-dir", str(cache), "--target", str(tmp_path / "t0"), str(whl),
            check=True)  # fmt: skip
    loose = {"base": cache, "v1": cache / "v1"}.get(where, cache / "v1" / where)
    loose.chmod(mode)
    if mode & 0o002 == 0:  # group-writable: refused unless the group is the user's own
        if os.geteuid() != 0:
            pytest.skip("needs root to give a directory to another group")
        os.chown(loose, -1, 65534)
    venv = make_venv(tmp_path / "venv")
    before, cache_before = tree(venv), tree(cache)
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(venv), str(whl))
    one_line_error(
        proc,
        f"refusing the cache at {cache}: {loose} is writable by other users (mode {mode:04o})",
        f"run 'chmod go-w {loose}'",
    )
    assert tree(venv) == before and tree(cache) == cache_before
    for cmd in (["cache", "list"], ["cache", "clean"], ["verify", "--cache"]):
        one_line_error(run_cli(*cmd, "--cache-dir", str(cache)), "refusing the cache")
    assert tree(cache) == cache_before
    loose.chmod(0o755)  # the fix the message names
    os.chown(loose, -1, os.getegid())
    run_cli("install", "--cache-dir", str(cache), "--python", str(venv), str(whl), check=True)


def test_cache_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another user")
    whl = make_wheel(tmp_path, "demo", "1.0")
    cache = tmp_path / "cache"
    safelink.Cache(cache).admit(whl)
    os.chown(cache / "v1" / "entries", 65534, 65534)
    proc = run_cli("install", "--cache-dir", str(cache), "--target", str(tmp_path / "t"), str(whl))
    one_line_error(
        proc,
        f"{cache / 'v1' / 'entries'} is owned by uid 65534, not by you or root",
        "use a cache directory of your own",
    )
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(("mode", "ok"), [(0o777, False), (0o1777, True), (0o775, True)])
def test_directories_above_the_cache(tmp_path: Path, mode: int, ok: bool) -> None:
    """Above the cache, others may not be able to replace it: a world-writable directory
    without the sticky bit (unlike /tmp) could rename it away and put another in place."""
    above = tmp_path / "above"
    above.mkdir()
    above.chmod(mode)
    whl = make_wheel(tmp_path, "demo", "1.0")
    proc = run_cli("install", "--cache-dir", str(above / "cache"), "--target",
                   str(tmp_path / "t"), str(whl))  # fmt: skip
    if ok:
        assert proc.returncode == 0, proc.stderr
    else:
        one_line_error(proc, f"{above} is writable by other users (mode 0777)")
        assert not (above / "cache").exists()


def test_new_cache_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        whl = make_wheel(tmp_path, "demo", "1.0")
        cache = tmp_path / "cache"
        run_cli("install", "--cache-dir", str(cache), "--target", str(tmp_path / "t"), str(whl),
                check=True)  # fmt: skip
        run_cli("install", "--cache-dir", str(cache), "--target", str(tmp_path / "t2"), str(whl),
                check=True)  # fmt: skip
    finally:
        os.umask(old)
    for d in [cache, cache / "v1", *(p for p in (cache / "v1").iterdir() if p.is_dir())]:
        assert stat.S_IMODE(d.stat().st_mode) & 0o022 == 0, d


@pytest.mark.parametrize(
    ("paths", "bad"),
    [
        (["a/b", "c.dist-info/METADATA", ".hidden/x", "a/.b", "a/..b", "a/b."], False),
        (["a/../b"], True), (["../a"], True), (["a/.."], True), ([".."], True), (["."], True),
        (["./a"], True), (["a/./b"], True), (["a/."], True), (["/abs"], True), (["a/"], True),
        (["a//b"], True), ([""], True), (["a\\b"], True), (["C:/x"], True), (["c:x"], True),
        (["ok", "../x"], True), (["ok", ""], True), (["x/..", "ok"], True), (["a\0b"], True),
    ],
)  # fmt: skip
def test_plan_path_rule(paths: list[str], bad: bool) -> None:
    from safelink._cache import _bad_paths

    assert _bad_paths(paths) is bad


BAD_PROBE_RECORDS = [
    "[1]",
    '"x"',
    "NaN",
    '{"modes": 5, "same_filesystem": true}',
    '{"modes": {"bogus": null}}',
    '{"modes": {"bogus": null}, "same_filesystem": true}',
    "[" * 100000,  # RecursionError in json
]


def test_a_probe_record_not_as_written_is_probed_again(tmp_path: Path) -> None:
    """A probe record in the cache that is not exactly what safelink writes (another
    JSON shape, unknown or missing modes) counts as no record: the next auto install
    probes again, links as the probe says, and rewrites the record."""
    whl, cache, a, _, _ = hardlinked(tmp_path)
    [store] = (cache / "v1" / "probes").iterdir()
    good = json.loads(store.read_text())
    for bad in BAD_PROBE_RECORDS:
        store.write_text(bad)
        proc = run_cli(
            "install", "--reinstall", "--cache-dir", str(cache), "--python", str(a), str(whl)
        )
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (bad[:50], proc.stderr)
        assert "hardlink" in proc.stdout, (bad[:50], proc.stdout)
        assert json.loads(store.read_text()) == good, bad[:50]


def test_deeply_nested_json_in_an_environment_is_no_record(tmp_path: Path) -> None:
    """``safelink.json`` (read by sync) and ``direct_url.json`` (read by repair) are
    the environment's, so anything may be in them: too deep to read is no record."""
    from safelink import _marker, _verify

    dist_info = tmp_path / "demo-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "safelink.json").write_text("[" * 100000)
    (dist_info / "direct_url.json").write_text('{"a":' * 100000)
    assert _marker.installed_sha256(str(dist_info)) is None
    assert _verify._entry_for(safelink.Cache(tmp_path / "cache"), str(dist_info)) is None
