"""Many installs at once: separate processes (started together) and threads.

What must hold: one cache entry per wheel however many processes admit it,
exactly one of them unpacking it; no temp dirs left; every environment
complete with valid RECORDs; installs into one environment serialised by its
lock, and a short ``--lock-timeout`` failing with one clean line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

import safelink
from conftest import make_venv, site_packages
from test_crash import (
    assert_one_line_error,
    check_record,
    demo_wheel,
    files_of,
    no_transaction_left,
    record_rows,
    small_wheel,
    unlisted,
)
from wheelmaker import make_wheel

N = 8
BUSY = "is being modified by another safelink process"


@pytest.fixture(scope="module")
def bulk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel big enough (1,000 files) that installs into one venv overlap."""
    d = tmp_path_factory.mktemp("bulk")
    files = {f"bulk/p{i // 100:02d}/m{i:04d}.py": f"X = {i}\n".encode() for i in range(1000)}
    return make_wheel(d, "bulk", "1.0", files)


def run_together(
    argvs: Sequence[Sequence[str]], timeout: float = 120
) -> list[subprocess.CompletedProcess[str]]:
    """Start every ``safelink`` command at once, then wait for all of them."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "safelink", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def assert_env_complete(venv: Path, baseline: set[str], dists: dict[str, int]) -> None:
    """Exactly *dists* installed (dist-info -> minimum RECORD rows), all intact, nothing else."""
    assert set(record_rows(venv)) == set(dists)
    for dist_info, rows in dists.items():
        assert check_record(venv, dist_info) >= rows
    assert unlisted(venv, baseline) == set()
    assert no_transaction_left(venv)


def test_processes_share_one_fresh_cache(tmp_path: Path, bulk: Path) -> None:
    wheels = [demo_wheel(tmp_path, modules=150), bulk, small_wheel(tmp_path)]
    cache = tmp_path / "cache"
    venvs = [make_venv(tmp_path / f"venv{i}") for i in range(N)]
    baseline = files_of(venvs[0])
    procs = run_together(
        [
            ["install", "--json", "--cache-dir", str(cache), "--python", str(v), *map(str, wheels)]
            for v in venvs
        ]
    )
    for p in procs:
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    reports = [json.loads(p.stdout) for p in procs]

    # One entry per wheel, unpacked by exactly one of the processes.
    shas = {safelink.Cache(cache).wheel_sha256(str(w)) for w in wheels}
    assert set(os.listdir(cache / "v1" / "entries")) == shas
    assert {e.sha256 for e in safelink.Cache(cache).entries()} == shas
    for i in range(len(wheels)):
        assert sum(r["wheels"][i]["admitted"] for r in reports) == 1
    assert os.listdir(cache / "v1" / "tmp") == []

    for v in venvs:
        assert_env_complete(
            v,
            baseline,
            {"demo-1.0.dist-info": 150, "bulk-1.0.dist-info": 1000, "other-1.0.dist-info": 1},
        )


def test_one_venv_short_timeout_fails_cleanly(tmp_path: Path, bulk: Path) -> None:
    cache = tmp_path / "cache"
    safelink.Cache(cache).admit(bulk)  # all eight go straight for the environment's lock
    venv = make_venv(tmp_path / "venv")
    baseline = files_of(venv)
    args = ["install", "--cache-dir", str(cache), "--python", str(venv), "--lock-timeout", "0.2"]
    procs = run_together([[*args, str(bulk)]] * N)
    ok = [p for p in procs if p.returncode == 0]
    assert ok, [p.stderr for p in procs]
    for p in procs:
        if p.returncode == 0:
            assert p.stdout.startswith(f"Installed 1 wheel into {venv}, 1,00"), p.stdout
        else:
            line = assert_one_line_error(p, BUSY, "waited 0.2 s")
            assert str(venv) in line
    assert_env_complete(venv, baseline, {"bulk-1.0.dist-info": 1000})


def test_one_venv_default_timeout_all_succeed_in_turn(tmp_path: Path, bulk: Path) -> None:
    cache = tmp_path / "cache"
    safelink.Cache(cache).admit(bulk)
    venv = make_venv(tmp_path / "venv")
    baseline = files_of(venv)
    args = ["install", "--json", "--cache-dir", str(cache), "--python", str(venv)]
    procs = run_together([[*args, str(bulk)]] * N)
    for p in procs:
        assert p.returncode == 0, p.stderr
    replaced = [json.loads(p.stdout)["wheels"][0]["replaced"] for p in procs]
    # Serialised: the first found nothing installed, each later one replaced a whole 1.0.
    assert sorted(replaced, key=str) == ["1.0"] * (N - 1) + [None]
    assert_env_complete(venv, baseline, {"bulk-1.0.dist-info": 1000})


def run_threads(n: int, work: object) -> list[object]:
    results: list[object] = [None] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)  # type: ignore[operator]
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_threads_install_into_separate_envs(tmp_path: Path) -> None:
    """The API is safe to call from threads; the umask is read, never changed."""
    wheels = [demo_wheel(tmp_path, modules=60), small_wheel(tmp_path)]
    cache = safelink.Cache(tmp_path / "cache")
    venvs = [make_venv(tmp_path / f"venv{i}") for i in range(6)]
    baseline = files_of(venvs[0])
    old = os.umask(0o027)
    try:
        reports = run_threads(len(venvs), lambda i: safelink.install(wheels, venvs[i], cache=cache))
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old)
    for r in reports:
        assert isinstance(r, safelink.InstallReport), r
    for i in range(len(wheels)):
        assert sum(r.wheels[i].admitted for r in reports) == 1  # type: ignore[attr-defined]
    for v in venvs:
        assert_env_complete(v, baseline, {"demo-1.0.dist-info": 60, "other-1.0.dist-info": 1})
        di = site_packages(v) / "demo-1.0.dist-info"
        assert (di / "RECORD").stat().st_mode & 0o777 == 0o640
        assert (v / "bin" / "demo-hello").stat().st_mode & 0o777 == 0o750


def test_threads_into_one_env_are_serialised(tmp_path: Path, bulk: Path) -> None:
    cache = safelink.Cache(tmp_path / "cache")
    venv = make_venv(tmp_path / "venv")
    baseline = files_of(venv)
    reports = run_threads(4, lambda i: safelink.install([bulk], venv, cache=cache))
    for r in reports:
        assert isinstance(r, safelink.InstallReport), r
    replaced = [r.wheels[0].replaced for r in reports]  # type: ignore[attr-defined]
    assert sorted(replaced, key=str) == ["1.0", "1.0", "1.0", None]
    assert_env_complete(venv, baseline, {"bulk-1.0.dist-info": 1000})


def test_cache_clean_and_prune_never_remove_an_entry_in_use(tmp_path: Path, bulk: Path) -> None:
    """Installs hold their entries; ``cache clean``/``prune`` racing them skip those entries
    (and say so) instead of pulling files out from under a running install."""
    cache = tmp_path / "cache"
    wheels = [bulk] + [small_wheel(tmp_path, f"w{i}") for i in range(4)]
    targets = [tmp_path / f"t{i}" for i in range(N)]
    stop = threading.Event()
    cleans: list[subprocess.CompletedProcess[str]] = []

    def clean_loop() -> None:
        i = 0
        while not stop.is_set():
            action = "prune" if i % 3 == 2 else "clean"
            cleans.append(
                subprocess.run(
                    [sys.executable, "-m", "safelink", "cache", action, "--cache-dir", str(cache)],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
            )
            i += 1

    cleaner = threading.Thread(target=clean_loop)
    cleaner.start()
    try:
        common = ["install", "--cache-dir", str(cache), "--link-mode", "copy"]
        results = run_together(
            [[*common, "--target", str(t), *map(str, wheels)] for t in targets]
        )
        for r in results:
            assert (r.returncode, r.stderr) == (0, ""), r.stderr
        for t in targets:
            assert check_record(t, "bulk-1.0.dist-info") >= 1000
    finally:
        stop.set()
        cleaner.join()
    assert cleans and all(c.returncode == 0 and not c.stderr for c in cleans)
    tmp = cache / "v1" / "tmp"
    assert not tmp.exists() or os.listdir(tmp) == []


def test_clean_skips_an_entry_in_use_and_says_so(tmp_path: Path) -> None:
    cache = safelink.Cache(tmp_path / "cache")
    whl, other = small_wheel(tmp_path, "held"), small_wheel(tmp_path, "free")
    held, free = cache.admit(whl), cache.admit(other)
    argv = ["--cache-dir", str(tmp_path / "cache")]
    with cache.in_use([(str(whl), held, False)]) as entries:
        assert entries == [(str(whl), held, False)]
        for action in ("clean", "prune"):
            proc = subprocess.run(
                [sys.executable, "-m", "safelink", "cache", action, *argv, "--json"],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            data = json.loads(proc.stdout)
            assert data["skipped"] == ["held-1.0-py3-none-any.whl"], data
        proc = subprocess.run(
            [sys.executable, "-m", "safelink", "cache", "clean", *argv],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert proc.stdout.endswith("skipped 1 entry in use by a running install\n")
        assert [e.sha256 for e in cache.entries()] == [held.sha256]
        assert os.path.isdir(held.files) and not os.path.exists(free.path)
    proc = subprocess.run(
        [sys.executable, "-m", "safelink", "cache", "clean", *argv],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout == f"removed 1 entry from {tmp_path / 'cache'}\n"
    assert list(cache.entries()) == []


def test_an_entry_evicted_before_it_is_held_is_admitted_again(tmp_path: Path) -> None:
    cache = safelink.Cache(tmp_path / "cache")
    whl = small_wheel(tmp_path, "gone")
    entry = cache.admit(whl)
    cache.remove_entry(entry)
    with cache.in_use([(str(whl), entry, False)]) as entries:
        [(_w, again, admitted)] = entries
        assert admitted and again.sha256 == entry.sha256 and os.path.isdir(again.files)
