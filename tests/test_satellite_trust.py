"""A satellite cache is a cache in every respect: the same trust rule before it is made
and whenever it is used, the same checks of its entries, covered by every cache command,
``verify`` and ``repair``, recorded before it is filled, and what happened said in one
line. Real loop-mounted filesystems: the cache on one, the environments and satellites on
others (pinned with ``SAFELINK_SATELLITES`` where the place does not matter)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import leftover_temp_files, make_venv, run_cli, site_packages, tree
from fs_fixtures import FsTmpFactory, SmallFsFactory
from test_satellite import demo_wheel, install, sat_entries, sat_tmp, warnings_of

COPY_WARNING = (
    "the cache ({cache}) and the target ({target}) are on different filesystems, so every "
    "file is copied; put the cache on the target's filesystem (SAFELINK_CACHE_DIR=<dir there>) "
    "or a satellite cache there (SAFELINK_SATELLITES=<dir there>) to link instead"
)
FIX = "fix its permissions, or pin a directory of your own with SAFELINK_SATELLITES"
PRISTINE_M007 = b"X = 7\n" * 20


def filled_note(cache: Path, target: Path, sat: Path, n: int = 1) -> str:
    return (
        f"the cache ({cache}) is on another filesystem than {target}: copied {n} wheel(s) "
        f"once into the satellite cache {sat}; later installs onto this filesystem link from it"
    )


def setup(fs_tmp: FsTmpFactory) -> tuple[Path, Path, Path, Path]:
    """(wheel, cache on XFS, a directory on ext4 for environments, pinned satellite there)."""
    cache_side = fs_tmp("xfs")
    env_side = fs_tmp("ext4")
    return demo_wheel(cache_side), cache_side / "cache", env_side, env_side / "sat"


def entry_dir(cache: Path, sha: str) -> Path:
    return cache / "v1" / "entries" / sha


def poison_same_size(path: Path) -> None:
    """Rewrite a sealed file in place with other bytes of the same size, fingerprint back."""
    data = path.read_bytes()
    os.chmod(path, 0o644)
    path.write_bytes(b"Y" + data[1:])
    os.chmod(path, 0o444)
    os.utime(path, ns=(946_684_800 * 10**9, 946_684_800 * 10**9))


def one_warning_each(proc: subprocess.CompletedProcess[str], line: str) -> None:
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [f"safelink: warning: {line}"], proc.stderr


# -- F2: the trust check runs on a satellite; entries are checked before they are used -------


@pytest.mark.parametrize("loose", ["v1", "entry"])
def test_a_satellite_others_can_write_is_not_believed(fs_tmp: FsTmpFactory, loose: str) -> None:
    whl, cache, env_side, sat = setup(fs_tmp)
    env = {"SAFELINK_SATELLITES": str(sat)}
    v1 = make_venv(env_side / "v1")
    first = install(cache, v1, whl, env=env)
    assert first.returncode == 0, first.stderr
    (sha,) = sat_entries(sat)
    planted = entry_dir(sat, sha) / "files" / "satdemo"
    if loose == "v1":
        # v1 and v1/entries writable by all: anyone may swap an entry for a poisoned copy
        # (same size, the fixed mtime, mode 0444: the fingerprint holds).
        os.chmod(sat / "v1", 0o777)
        os.chmod(sat / "v1" / "entries", 0o777)
        fake = sat / "v1" / "entries" / "planted"
        shutil.copytree(entry_dir(sat, sha), fake, copy_function=shutil.copy2)
        poison_same_size(fake / "files" / "satdemo" / "m007.py")
        os.rename(entry_dir(sat, sha), sat / "v1" / "entries" / "old")
        os.rename(fake, entry_dir(sat, sha))
        why = f"{sat / 'v1'} is writable by other users (mode 0777)"
        line = f"not using the satellite cache {sat} (SAFELINK_SATELLITES): {why} ({FIX})"
    else:
        os.chmod(planted, 0o777)  # a directory of one entry that anyone may write
        poison_same_size(planted / "m007.py")
        line = (
            f"not using the satellite cache {sat}: cache entry {entry_dir(sat, sha)} cannot be "
            f"trusted: {planted} is writable by other users (mode 0777) (remove it with "
            "'safelink cache clean' and install again)"
        )
    sat_before = tree(sat)
    v2 = make_venv(env_side / "v2")
    proc = install(cache, v2, whl, env=env)
    assert proc.returncode == 0, proc.stderr
    target = site_packages(v2)
    assert (target / "satdemo" / "m007.py").read_bytes() == PRISTINE_M007  # not the planted one
    assert warnings_of(proc) == [line, COPY_WARNING.format(cache=cache, target=target)]
    assert json.loads(proc.stdout)["files_by_mode"] == {"copy": 44}
    assert tree(sat) == sat_before  # nothing read from it, nothing written to it
    if loose == "v1":
        # F1: every cache command still serves the main cache, with one warning
        skip = f"skipping the satellite cache {sat}: {why} ({FIX})"
        for cmd in (["cache", "list"], ["cache", "size"], ["cache", "dir"], ["verify", "--cache"],
                    ["repair"], ["cache", "prune"]):  # fmt: skip
            out = run_cli(*cmd, "--cache-dir", str(cache), env=env)
            one_warning_each(out, skip)
        assert tree(sat) == sat_before
        out = run_cli("cache", "clean", "--cache-dir", str(cache), env=env)
        one_warning_each(out, skip)
        assert out.stdout.splitlines() == [f"removed 1 entry from {cache}"]
        assert tree(sat) == sat_before


def test_entry_dirs_of_another_user_are_refused(tmp_path: Path) -> None:
    """Entry.tampered_dirs does what it says: someone else's directory is not trusted
    (the main cache's own entries too)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another user")
    import safelink

    whl = demo_wheel(tmp_path)
    cache = tmp_path / "cache"
    entry = safelink.Cache(cache).admit(whl)
    pkg = Path(entry.files) / "satdemo"
    os.chown(pkg, 1001, 1001)
    proc = run_cli("install", "--cache-dir", str(cache), "--target", str(tmp_path / "t"), str(whl))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"safelink: error: cache entry {entry.path} cannot be trusted: {pkg} is owned by uid "
        "1001, not by you or root (remove it with 'safelink cache clean' and install again)"
    ]
    assert not (tmp_path / "t").exists()


# -- F1: a satellite is made only where the cache trust rule allows ------------------------


@pytest.mark.parametrize("parent", ["world-writable", "someone else's"])
def test_no_satellite_is_made_where_the_cache_could_not_be(
    fs_tmp: FsTmpFactory, parent: str
) -> None:
    whl, cache, env_side, _sat = setup(fs_tmp)
    shared = env_side / "shared"
    shared.mkdir()
    if parent == "world-writable":
        shared.chmod(0o777)
        why = f"{shared} is writable by other users (mode 0777), so the cache in it can be replaced"
    else:
        if os.geteuid() != 0:
            pytest.skip("needs root to give a directory to another user")
        os.chown(shared, 1001, 1001)
        why = f"{shared} is owned by uid 1001, not by you or root"
    sat = shared / "deeper" / "sat"
    env = {"SAFELINK_SATELLITES": str(sat)}
    venv = make_venv(env_side / "venv")
    proc = install(cache, venv, whl, env=env)
    assert proc.returncode == 0, proc.stderr
    assert warnings_of(proc) == [
        f"not using the satellite cache {sat} (SAFELINK_SATELLITES): {why} ({FIX})",
        COPY_WARNING.format(cache=cache, target=site_packages(venv)),
    ]
    assert os.listdir(shared) == []  # nothing made there
    listed = run_cli("cache", "list", "--cache-dir", str(cache), env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""
    assert listed.stdout.startswith("satdemo 1.0  44 files")


# -- F3: repair heals every cache verify checks ---------------------------------------------


@pytest.mark.parametrize("edit", ["mode", "content"])
def test_repair_heals_a_satellite(fs_tmp: FsTmpFactory, edit: str) -> None:
    whl, cache, env_side, sat = setup(fs_tmp)
    env = {"SAFELINK_SATELLITES": str(sat)}
    venv = make_venv(env_side / "venv")
    assert install(cache, venv, whl, env=env).returncode == 0
    (sha,) = sat_entries(sat)
    cached = entry_dir(sat, sha) / "files" / "satdemo" / "m007.py"
    edited = site_packages(venv) / "satdemo" / "m007.py"
    assert edited.stat().st_ino == cached.stat().st_ino  # hardlinked from the satellite
    if edit == "mode":
        edited.chmod(0o644)
        reason = "mode 0644, expected 0444"
    else:
        edited.chmod(0o644)
        with open(edited, "ab") as f:
            f.write(b"POISON = 1\n")
        edited.chmod(0o444)
        reason = f"size {len(PRISTINE_M007) + 11}, expected {len(PRISTINE_M007)}"
    verified = run_cli("verify", "--cache", "--cache-dir", str(cache), "--json", env=env)
    assert verified.returncode == 1
    [found] = json.loads(verified.stdout)["cache"]
    assert (found["path"], found["reason"], found["shared_with"]) == (
        str(cached), reason, [str(venv)]
    )
    repaired = run_cli("repair", "--cache-dir", str(cache), env=env)
    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout.splitlines() == [f"restored {cached}"]
    assert cached.read_bytes() == PRISTINE_M007
    assert stat.S_IMODE(cached.stat().st_mode) == 0o444
    assert cached.stat().st_ino != edited.stat().st_ino  # a new inode: the edit stays there
    again = run_cli("verify", "--cache", "--cache-dir", str(cache), env=env)
    assert again.returncode == 0, again.stdout
    assert leftover_temp_files(venv, sat) == []


# -- F5: recorded before it is filled ------------------------------------------------------


def test_kill_9_during_the_first_fill_leaves_a_known_satellite(fs_tmp: FsTmpFactory) -> None:
    whl, cache, env_side, sat = setup(fs_tmp)
    env = {"SAFELINK_SATELLITES": str(sat)}
    venv = make_venv(env_side / "venv")
    proc = install(cache, venv, whl, env={**env, "SAFELINK_TEST_CRASH": "satellite-mid:5"})
    assert proc.returncode == -9
    (left,) = sat_tmp(sat)
    assert left.startswith(".safelink-fill-")
    listed = run_cli("cache", "dir", "--cache-dir", str(cache), env=env)
    assert listed.stdout.splitlines() == [str(cache), f"satellite: {sat}"]
    pruned = run_cli("cache", "prune", "--cache-dir", str(cache), env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.splitlines()[-1] == (
        f"pruned 0 unused entries and 1 stale temp file in the satellite {sat}"
    )
    assert sat_tmp(sat) == [] and sat_entries(sat) == []


def test_a_satellite_the_cache_cannot_record_is_not_made(fs_tmp: FsTmpFactory) -> None:
    whl, cache, env_side, sat = setup(fs_tmp)
    first = make_venv(env_side / "first")
    assert install(cache, first, whl, env={"SAFELINK_SATELLITES": "off"}).returncode == 0
    venv = make_venv(env_side / "venv")
    subprocess.run(["chattr", "+i", str(cache / "v1")], check=True)  # even root cannot add
    try:
        proc = install(cache, venv, whl, env={"SAFELINK_SATELLITES": str(sat)})
    finally:
        subprocess.run(["chattr", "-i", str(cache / "v1")], check=True)
    assert proc.returncode == 0, proc.stderr
    assert warnings_of(proc) == [
        f"not using the satellite cache {sat}: cannot record it in {cache} "
        "(Operation not permitted)",
        COPY_WARNING.format(cache=cache, target=site_packages(venv)),
    ]
    assert sat_entries(sat) == []


# -- F6: text mode says what happened ------------------------------------------------------


def test_the_first_fill_is_said_in_text_mode(fs_tmp: FsTmpFactory) -> None:
    whl, cache, env_side, sat = setup(fs_tmp)
    env = {"SAFELINK_SATELLITES": str(sat)}
    venv = make_venv(env_side / "venv")
    args = ["install", "--cache-dir", str(cache), "--python", str(venv), str(whl)]
    proc = run_cli(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    note = filled_note(cache, site_packages(venv), sat)
    assert proc.stderr.splitlines() == [f"safelink: warning: {note}"]
    again = run_cli(*args, env=env)  # reinstall: links, says nothing
    assert again.returncode == 0 and again.stderr == ""


def test_a_relative_pinned_satellite_is_refused(fs_tmp: FsTmpFactory) -> None:
    """F11: 'off:' is not 'off'; a relative path would be made in whatever the cwd is."""
    whl, cache, env_side, _sat = setup(fs_tmp)
    work = env_side / "cwd"
    work.mkdir()
    venv = make_venv(env_side / "venv")
    proc = run_cli("install", "--cache-dir", str(cache), "--python", str(venv), str(whl),
                   env={"SAFELINK_SATELLITES": "off:"}, cwd=work)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "safelink: warning: SAFELINK_SATELLITES names off, which is not an absolute path; "
        "give absolute directories (or 'off')",
        "safelink: warning: " + COPY_WARNING.format(cache=cache, target=site_packages(venv)),
    ]
    assert os.listdir(work) == []


# -- F7, F12: a fill copies what the plan names, and the plan as admission writes it --------


def test_a_fill_copies_the_plan_and_only_the_plan(fs_tmp: FsTmpFactory) -> None:
    whl, cache, env_side, sat = setup(fs_tmp)
    import safelink

    entry = safelink.Cache(cache).admit(whl)
    main_before = tree(Path(entry.path))
    # a heal's temp file, left by a kill -9 of a process long gone
    stray = Path(entry.files) / "satdemo" / "m001.py.safelink-heal-999999999-0123456789abcdef"
    stray.write_bytes(b"half a file")
    venv = make_venv(env_side / "venv")
    proc = install(cache, venv, whl, env={"SAFELINK_SATELLITES": str(sat)})
    assert proc.returncode == 0, proc.stderr
    assert warnings_of(proc) == [filled_note(cache, site_packages(venv), sat)]
    (sha,) = sat_entries(sat)
    assert tree(entry_dir(sat, sha)) == main_before  # plan.bin and plan.json included


# -- F8, F9: the satellite serves the filesystem files are really linked into --------------


def test_site_packages_on_another_filesystem(
    fs_tmp: FsTmpFactory, small_fs: SmallFsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAFELINK_SATELLITES")
    whl = demo_wheel(fs_tmp("xfs"))
    cache = whl.parent / "cache"
    env_fs, site_fs = small_fs("ext4", 32), small_fs("ext4", 32)
    procs, sites = [], []
    for name in ("v1", "v2"):  # site-packages really on another filesystem than the venv
        venv = make_venv(env_fs / name)
        site = site_packages(venv)
        shutil.move(site, site_fs / name)
        site.symlink_to(site_fs / name)
        sites.append(site)
        procs.append(install(cache, venv, whl))
    for p in procs:
        assert p.returncode == 0, p.stderr
    sat = site_fs / ".safelink-cache"
    assert warnings_of(procs[0]) == [filled_note(cache, sites[0], sat)]
    assert warnings_of(procs[1]) == []
    assert json.loads(procs[1].stdout)["files_by_mode"] == {"hardlink": 44}
    assert not (env_fs / ".safelink-cache").exists()


def test_an_environment_reached_through_a_symlink(
    fs_tmp: FsTmpFactory, small_fs: SmallFsFactory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv("SAFELINK_SATELLITES")
    whl = demo_wheel(fs_tmp("xfs"))
    cache = whl.parent / "cache"
    fs = small_fs("ext4", 32)
    (fs / "p").mkdir()
    make_venv(fs / "p" / ".venv")
    link = tmp_path / "venvlink"
    link.symlink_to(fs / "p" / ".venv")
    first = install(cache, link, whl)
    assert first.returncode == 0, first.stderr
    sat = fs / ".safelink-cache"
    assert sat_entries(sat) != []
    again = install(cache, link, whl)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["files_by_mode"] == {"hardlink": 44}


# -- the guard cannot heal a satellite file: the message names the cache -------------------


def test_a_satellite_file_that_cannot_be_healed_is_named_as_the_caches(
    fs_tmp: FsTmpFactory,
) -> None:
    whl, cache, env_side, sat = setup(fs_tmp)
    env = {"SAFELINK_SATELLITES": str(sat)}
    v1, v2 = make_venv(env_side / "v1"), make_venv(env_side / "v2")
    assert install(cache, v1, whl, env=env).returncode == 0
    edited = site_packages(v1) / "satdemo" / "m007.py"
    edited.chmod(0o644)
    (sha,) = sat_entries(sat)
    pkg = entry_dir(sat, sha) / "files" / "satdemo"
    before = tree(v2)
    subprocess.run(["chattr", "+i", str(pkg)], check=True)
    try:
        proc = run_cli("install", "--cache-dir", str(cache), "--python", str(v2), str(whl),
                       env=env)  # fmt: skip
    finally:
        subprocess.run(["chattr", "-i", str(pkg)], check=True)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "safelink: error: cannot restore the modified cached file satdemo/m007.py in the cache "
        f"at {sat}: Operation not permitted (fix the cache's permissions or run 'safelink cache "
        "clean satdemo'; nothing was changed)"
    ]
    assert tree(v2) == before


def test_entry_directories_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """An entry's directories are checked before use (not writable by others), so they
    are made 0755 whatever the umask, parents of a leaf directory included."""
    from wheelmaker import make_wheel

    whl = make_wheel(tmp_path, "deep", "1.0", {"deep/sub/leaf/m.py": b"X = 1\n"})
    cache = tmp_path / "cache"
    old = os.umask(0)
    try:
        for t in ("t1", "t2"):  # the second finds the entry and checks it
            proc = run_cli("install", "--cache-dir", str(cache), "--target", str(tmp_path / t),
                           str(whl))  # fmt: skip
            assert proc.returncode == 0, proc.stderr
    finally:
        os.umask(old)
    (sha,) = sat_entries(cache)
    files = entry_dir(cache, sha) / "files"
    for d in (files / "deep", files / "deep" / "sub", files / "deep" / "sub" / "leaf"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o755, d
