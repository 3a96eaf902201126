"""safelink as a library inside another tool (nox, tox, a CI runner).

Only the public API is used here, the way an embedding tool would use it:
installs from threads and processes sharing one cache, the errors a tool
catches, progress events, the report's fields, and the worked example.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest

import safelink
from conftest import REPO, make_venv, site_packages
from safelink.strategies import DirPair
from wheelmaker import make_wheel

EXAMPLE = REPO / "examples" / "test_matrix.py"


def two_wheels(d: Path) -> list[Path]:
    return [
        make_wheel(d, "alpha", "1.0", {f"alpha/m{i}.py": f"N = {i}\n".encode() for i in range(8)}),
        make_wheel(d, "beta", "2.0", {"beta.py": b"def f():\n    return 'beta'\n"}),
    ]


def imports_ok(env: Path) -> bool:
    proc = subprocess.run(
        [str(env / "bin" / "python"), "-c", "import alpha.m7, beta; print(alpha.m7.N, beta.f())"],
        capture_output=True,
        text=True,
    )
    return proc.stdout == "7 beta\n"


# -- the public surface ------------------------------------------------------------


def test_public_names_resolve_and_none_is_private() -> None:
    assert len(set(safelink.__all__)) == len(safelink.__all__)
    for name in safelink.__all__:
        assert not name.startswith("_"), name
        assert getattr(safelink, name) is not None, name
    errors = [n for n in safelink.__all__ if isinstance(getattr(safelink, n), type)
              and issubclass(getattr(safelink, n), Exception)]
    for name in errors:
        assert issubclass(getattr(safelink, name), safelink.SafelinkError), name


# -- a link-mode plugin, registered from code -----------------------------------


class CountingCopy:
    """A copy strategy honouring the documented contract (see docs/plugins.md)."""

    name: ClassVar[str] = "test-counting-copy"
    shares_inode: ClassVar[bool] = False
    isolated: ClassVar[bool] = True
    placed: ClassVar[list[str]] = []

    def link(self, pair: DirPair, src: str, dst: str, executable: bool) -> None:
        sfd = os.open(src, os.O_RDONLY, dir_fd=pair.src_fd)
        try:
            dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                          0o777 if executable else 0o666, dir_fd=pair.dst_fd)
            try:
                while chunk := os.read(sfd, 1 << 16):
                    os.write(dfd, chunk)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)
        self.placed.append(dst)


class Unsupported:
    name: ClassVar[str] = "test-unsupported"
    shares_inode: ClassVar[bool] = False
    isolated: ClassVar[bool] = True

    def link(self, pair: DirPair, src: str, dst: str, executable: bool) -> None:
        raise OSError(errno.EOPNOTSUPP, "not on this filesystem", dst)


def test_registered_strategy_is_used_and_its_failures_fall_back(
    tmp_path: Path, cache_dir: Path
) -> None:
    wheels = two_wheels(tmp_path)
    safelink.register(CountingCopy(), replace=True)
    safelink.register(Unsupported(), replace=True)

    env = make_venv(tmp_path / "a")
    report = safelink.install(wheels, env, link_mode="test-counting-copy")
    assert report.files_by_mode == {"test-counting-copy": 13}
    assert len(CountingCopy.placed) == 13 and imports_ok(env)

    env = make_venv(tmp_path / "b")
    with pytest.raises(safelink.LinkFailed, match="test-unsupported"):
        safelink.install(wheels, env, link_mode="test-unsupported")
    assert not (site_packages(env) / "beta.py").exists()  # rolled back
    report = safelink.install(wheels, env, link_mode="test-unsupported", allow_fallback=True)
    assert report.files_by_mode == {"copy": 13}
    (fb,) = report.fallbacks
    assert (fb.from_mode, fb.to_mode) == ("test-unsupported", "copy")
    assert fb.error.split(":")[0] in ("EOPNOTSUPP", "ENOTSUP")  # one errno on Linux
    assert imports_ok(env)


# -- concurrency: one cache, many environments -----------------------------------


def test_threads_share_one_cache_object(tmp_path: Path) -> None:
    wheels = two_wheels(tmp_path)
    cache = safelink.Cache(tmp_path / "cache")
    envs = [make_venv(tmp_path / f"env{i}") for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda env: safelink.install(wheels, env, cache=cache), envs))
    for env, report in zip(envs, reports, strict=True):
        assert report.target == str(env)
        assert sum(report.files_by_mode.values()) == 9 + 2 * 2  # modules + METADATA/WHEEL
        assert imports_ok(env)
    # Every wheel was unpacked exactly once, whichever thread got there first.
    assert sum(w.admitted for r in reports for w in r.wheels) == 2
    assert len(list(cache.entries())) == 2
    assert os.listdir(tmp_path / "cache" / "v1" / "tmp") == []


def _install_in_child(args: tuple[list[str], str, str]) -> dict[str, object]:
    wheels, env, cache_dir = args
    report = safelink.install(wheels, env, cache=cache_dir)
    return {"files_by_mode": report.files_by_mode, "admitted": [w.admitted for w in report.wheels]}


def test_processes_share_one_cache_dir(tmp_path: Path) -> None:
    wheels = [str(w) for w in two_wheels(tmp_path)]
    envs = [str(make_venv(tmp_path / f"env{i}")) for i in range(3)]
    cache_dir = str(tmp_path / "cache")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.map(_install_in_child, [(wheels, env, cache_dir) for env in envs])
    assert all(sum(r["files_by_mode"].values()) == 13 for r in results)  # type: ignore[attr-defined]
    # Concurrent first installs race to admit; the per-entry lock lets one win per wheel.
    assert sum(a for r in results for a in r["admitted"]) == 2  # type: ignore[attr-defined]
    assert all(imports_ok(Path(env)) for env in envs)
    assert len(list(safelink.Cache(cache_dir).entries())) == 2


# -- errors a tool catches ----------------------------------------------------------


def test_invalid_wheel(tmp_path: Path, cache_dir: Path, new_venv: Path) -> None:
    bad = make_wheel(
        tmp_path, "bad", "1.0", {"bad.py": b"x = 1\n"},
        record_filter=lambda rows: [(p, "sha256=AAAA", s) for p, h, s in rows],
    )
    with pytest.raises(safelink.InvalidWheel) as exc:
        safelink.install([bad], new_venv)
    assert "RECORD" in str(exc.value)
    assert not (site_packages(new_venv) / "bad.py").exists()


def test_incompatible_wheel(tmp_path: Path, cache_dir: Path, new_venv: Path) -> None:
    whl = make_wheel(tmp_path, "old", "1.0", tag="cp27-cp27mu-manylinux1_x86_64")
    with pytest.raises(safelink.IncompatibleWheel, match="not compatible"):
        safelink.install([whl], new_venv)
    report = safelink.install([whl], new_venv, force=True)
    assert report.wheels[0].name == "old"


def test_environment_busy_while_another_process_holds_it(
    tmp_path: Path, cache_dir: Path, new_venv: Path
) -> None:
    (whl, _) = two_wheels(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys\n"
            "from safelink._lock import env_lock_path, file_lock\n"
            "with file_lock(env_lock_path(sys.argv[1])):\n"
            "    print('locked', flush=True)\n"
            "    sys.stdin.read()\n",
            str(new_venv),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(safelink.EnvironmentBusy, match="being modified"):
            safelink.install([whl], new_venv, lock_timeout=0.2)
        assert not (site_packages(new_venv) / "alpha").exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert safelink.install([whl], new_venv, lock_timeout=5).wheels[0].name == "alpha"


def test_target_error(tmp_path: Path, cache_dir: Path) -> None:
    (whl, _) = two_wheels(tmp_path)
    not_a_venv = tmp_path / "plain-dir"
    not_a_venv.mkdir()
    with pytest.raises(safelink.TargetError, match="not a virtual environment"):
        safelink.install([whl], not_a_venv)
    with pytest.raises(safelink.SafelinkError):  # every error shares one base class
        safelink.install([whl], not_a_venv)


# -- progress and the report ------------------------------------------------------


def test_progress_events_in_stage_order(tmp_path: Path, cache_dir: Path, new_venv: Path) -> None:
    wheels = two_wheels(tmp_path)
    events: list[safelink.Progress] = []
    safelink.install(wheels, new_venv, progress=events.append)
    stages = [e.stage for e in events]
    assert set(stages) == {"admit", "link", "finalize"}
    first = {s: stages.index(s) for s in ("admit", "link", "finalize")}
    last = {s: len(stages) - 1 - stages[::-1].index(s) for s in first}
    assert last["admit"] < first["link"] and last["link"] < first["finalize"]
    admits = [e for e in events if e.stage == "admit"]
    assert [e.wheel for e in admits] == [w.name for w in wheels]
    assert all(e.total == 2 and 0 <= e.done < e.total for e in admits)
    link = next(e for e in events if e.stage == "link")
    assert link.total == 13
    assert sorted(e.wheel for e in events if e.stage == "finalize") == sorted(
        w.name for w in wheels
    )


def test_report_fields(tmp_path: Path, cache_dir: Path) -> None:
    wheels = two_wheels(tmp_path)
    first = safelink.install(wheels, make_venv(tmp_path / "a"), link_mode="hardlink")
    assert first.files_by_mode == {"hardlink": 13}
    assert first.fallbacks == [] and first.healed == []
    assert set(first.timings) >= {"admit", "link", "finalize", "total"}
    assert all(v >= 0 for v in first.timings.values())
    assert first.timings["total"] >= first.timings["admit"]
    assert re.fullmatch(
        rf"Installed 2 wheels into {re.escape(str(tmp_path / 'a'))}, [\d,]+ files in \d+\.\d\d s "
        r"\(hardlink 13, written \d+\)",
        first.summary(),
    )
    assert [w.admitted for w in first.wheels] == [True, True]

    # Write through a hardlink in env a; the next install heals the cache first.
    edited = site_packages(tmp_path / "a") / "beta.py"
    os.chmod(edited, 0o644)
    with open(edited, "ab") as f:
        f.write(b"# local patch\n")
    second = safelink.install(wheels, make_venv(tmp_path / "b"), link_mode="hardlink")
    assert [w.admitted for w in second.wheels] == [False, False]
    assert len(second.healed) == 1 and second.healed[0].endswith("beta.py")
    assert "healed 1 modified cache file" in second.summary()
    assert b"local patch" not in (site_packages(tmp_path / "b") / "beta.py").read_bytes()

    data = json.loads(json.dumps(second.to_dict()))
    assert data["files_by_mode"] == {"hardlink": 13}
    assert data["summary"] == second.summary()
    assert data["target"] == str(tmp_path / "b")
    assert {w["name"] for w in data["wheels"]} == {"alpha", "beta"}


# -- the worked example -------------------------------------------------------------


def test_matrix_example_runs_and_reports(tmp_path: Path) -> None:
    wheels = two_wheels(tmp_path)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--envs", "3", "--workdir", str(tmp_path),
         *map(str, wheels)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == (  # 13 linked; RECORD, INSTALLER, REQUESTED, direct_url.json, safelink.json
        "test matrix: 3 environments x 2 wheels (alpha-1.0, beta-2.0), 23 files per environment"
    )
    assert re.fullmatch(r"link mode: (clone|hardlink|copy) \(cache .+\)", lines[1])
    # uv is compared when the example finds it (next to this interpreter or on PATH)
    uv = (Path(sys.executable).parent / "uv").is_file() or shutil.which("uv") is not None
    uv_unpack = r" \(uv: \d+\.\d{3} s\)" if uv else ""
    assert re.fullmatch(
        r"unpacking the wheels into the cache, once: \d+\.\d{3} s" + uv_unpack, lines[2]
    ), lines[2]
    assert lines[4].split() == ["method", "env", "1", "env", "2", "env", "3", "total"]
    methods = ["safelink.install", "LinkingDestination", "installer", *(["uv"] * uv), "pip"]
    num = r"\s+\d+\.\d{3}"
    for method, line in zip(methods, lines[5 : 5 + len(methods)], strict=True):
        assert re.fullmatch(re.escape(method) + num * 4, line), line
        row = [float(x) for x in line.split()[1:]]
        assert abs(sum(row[:3]) - row[3]) < 0.002
    for method, line in zip(methods[1:], lines[5 + len(methods) :], strict=True):
        assert re.fullmatch(
            rf"safelink\.install vs {method}: \d+\.\d{{3}} -> \d+\.\d{{3}} s per environment, "
            r"\d+\.\d{3} s (saved|lost) \(\d+\.\dx\)",
            line,
        ), line
    assert len(lines) == 4 + 2 * len(methods)
    assert list(tmp_path.glob("test-matrix-*")) == []  # it cleans up after itself
