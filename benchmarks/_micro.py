"""Micro benchmark: the hot copy loop, one primitive at a time, per filesystem.

Source trees are the ``files/`` directories of two generated wheels admitted into a
safelink cache on the *store* filesystem (many small files; a few big ones), so every
primitive copies exactly the files safelink's own link loop places.  Each timed
operation places every file of one tree into a fresh directory on the *env*
filesystem; directories are made beforehand, outside the timing, except for the
``cp`` rows where making them is part of what ``cp`` does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    FICLONE,
    FsCase,
    errno_text,
    log,
    make_wheel,
    one_line,
    remove,
    rotated,
    summarize,
    tool_env,
)
from safelink._cache import Cache
from safelink._link import Job, Linker
from safelink.errors import SafelinkError
from safelink.strategies import DirPair

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL
_CHUNK = 1 << 30

PYFASTCOPY_SCRIPT = r"""
import json, shutil, sys, time
import pyfastcopy  # noqa: F401  (replaces shutil.copyfile; only in this process)
with open(sys.argv[1]) as f:
    pairs = json.load(f)
copy = shutil.copyfile
t0 = time.perf_counter()
for s, d in pairs:
    copy(s, d)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


class Unsupported(Exception):
    """The primitive cannot work here (reported as n/a with the reason)."""


@dataclass
class TreeSet:
    """One admitted wheel used as a source tree."""

    name: str  # "small" or "big"
    files: str  # the cache entry's files/ directory
    rows: list[Any]  # safelink LinkRows (src, dst, size, digest, executable)
    dirs: list[str]
    nbytes: int
    pairs_json: Path  # [(src, dst)] for the pyfastcopy subprocess
    dst: str

    @property
    def nfiles(self) -> int:
        return len(self.rows)

    def pairs(self) -> list[tuple[str, str]]:
        return [(os.path.join(self.files, r[0]), os.path.join(self.dst, r[1])) for r in self.rows]


# ---------------------------------------------------------------- the primitives


def _p_link(pairs: list[tuple[str, str]]) -> None:
    link = os.link
    for s, d in pairs:
        link(s, d)


def _p_ficlone(pairs: list[tuple[str, str]]) -> None:
    import fcntl

    ioctl, op, close = fcntl.ioctl, os.open, os.close
    for s, d in pairs:
        sfd = op(s, os.O_RDONLY)
        try:
            dfd = op(d, _CREATE, 0o644)
            try:
                ioctl(dfd, FICLONE, sfd)
            finally:
                close(dfd)
        finally:
            close(sfd)


def _p_copy_file_range(pairs: list[tuple[str, str]]) -> None:
    cfr, op, close = os.copy_file_range, os.open, os.close
    for s, d in pairs:
        sfd = op(s, os.O_RDONLY)
        try:
            dfd = op(d, _CREATE, 0o644)
            try:
                while cfr(sfd, dfd, _CHUNK):
                    pass
            finally:
                close(dfd)
        finally:
            close(sfd)


def _p_sendfile(pairs: list[tuple[str, str]]) -> None:
    sendfile, op, close = os.sendfile, os.open, os.close
    for s, d in pairs:
        sfd = op(s, os.O_RDONLY)
        try:
            dfd = op(d, _CREATE, 0o644)
            try:
                offset = 0
                while n := sendfile(dfd, sfd, offset, _CHUNK):
                    offset += n
            finally:
                close(dfd)
        finally:
            close(sfd)


def _p_copyfile(pairs: list[tuple[str, str]]) -> None:
    copy = shutil.copyfile
    for s, d in pairs:
        copy(s, d)


def _py(fn: Callable[[list[tuple[str, str]]], None]) -> Callable[[TreeSet], float]:
    def run(ts: TreeSet) -> float:
        pairs = ts.pairs()
        t0 = time.perf_counter()
        try:
            fn(pairs)
        except OSError as exc:
            raise Unsupported(errno_text(exc)) from None
        return time.perf_counter() - t0

    return run


def _pyfastcopy(ts: TreeSet) -> float:
    if importlib.util.find_spec("pyfastcopy") is None:
        raise Unsupported("pyfastcopy is not installed (pip install 'safelink[bench]')")
    proc = subprocess.run(
        [sys.executable, "-c", PYFASTCOPY_SCRIPT, str(ts.pairs_json)],
        capture_output=True,
        text=True,
        env=tool_env(),
        check=False,
    )
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise Unsupported(one_line(lines[-1] if lines else f"exit {proc.returncode}"))
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])


def _cp(*flags: str) -> Callable[[TreeSet], float]:
    def run(ts: TreeSet) -> float:
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["cp", *flags, ts.files, ts.dst], capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[0]
            raise Unsupported(one_line(first))
        return elapsed

    return run


def _no_displace(pair: DirPair, dst: str) -> None:
    raise FileExistsError(dst)


def _safelink(mode: str, guard: bool, threads: int) -> Callable[[TreeSet], float]:
    def run(ts: TreeSet) -> float:
        t0 = time.perf_counter()
        sfd = os.open(ts.files, os.O_RDONLY)
        dfd = os.open(ts.dst, os.O_RDONLY)
        try:
            job = Job(DirPair(ts.files, sfd, ts.dst, dfd), ts.rows, _no_heal)
            linker = Linker(
                [mode], allow_fallback=False, guard=guard, displace=_no_displace, threads=threads
            )
            linker.run([job])
        except SafelinkError as exc:
            raise Unsupported(one_line(str(exc))) from None
        except OSError as exc:
            raise Unsupported(errno_text(exc)) from None
        finally:
            os.close(sfd)
            os.close(dfd)
        return time.perf_counter() - t0

    return run


def _no_heal(src: str) -> None:
    raise RuntimeError(f"benchmark source file {src} was modified")


@dataclass(frozen=True)
class Primitive:
    name: str
    run: Callable[[TreeSet], float]
    makes_dirs: bool = False  # cp creates the tree itself
    needs: str = ""  # "link" or "clone": skipped where the fs case cannot do that


def primitives() -> list[Primitive]:
    prims = [
        Primitive("os.link", _py(_p_link), needs="link"),
        Primitive("FICLONE ioctl", _py(_p_ficlone), needs="clone"),
        Primitive("os.copy_file_range", _py(_p_copy_file_range)),
        Primitive("os.sendfile", _py(_p_sendfile)),
        Primitive("shutil.copyfile", _py(_p_copyfile)),
        Primitive("shutil.copyfile + pyfastcopy", _pyfastcopy),
        Primitive("cp -al", _cp("-al"), makes_dirs=True, needs="link"),
        Primitive(
            "cp -a --reflink=always",
            _cp("-a", "--reflink=always"),
            makes_dirs=True,
            needs="clone",
        ),
    ]
    for mode, needs in (("hardlink", "link"), ("clone", "clone"), ("copy", "")):
        prims += [
            Primitive(f"safelink {mode}", _safelink(mode, True, 1), needs=needs),
            Primitive(f"safelink {mode}, no guard", _safelink(mode, False, 1), needs=needs),
            # two workers: a forked second process from a single-threaded caller
            Primitive(f"safelink {mode}, 2 workers", _safelink(mode, True, 2), needs=needs),
        ]
    return prims


# ------------------------------------------------------------------------ driver


@dataclass
class MicroConfig:
    n_small: int = 5000
    small_lo: int = 1024
    small_hi: int = 8192
    n_big: int = 4
    big_size: int = 20 * 1024 * 1024
    runs: int = 5
    warmup: bool = True


def make_wheels(scratch: Path, cfg: MicroConfig) -> dict[str, Path]:
    from _common import big_files, small_files

    d = scratch / "micro-wheels"
    d.mkdir(exist_ok=True)
    small = small_files("benchsmall", cfg.n_small, cfg.small_lo, cfg.small_hi, seed=7)
    big = big_files("benchbig", cfg.n_big, cfg.big_size)
    return {
        "small": make_wheel(d, "benchsmall", "1.0", small),
        "big": make_wheel(d, "benchbig", "1.0", big),
    }


def _tree_sets(case: FsCase, wheels: dict[str, Path], scratch: Path) -> list[TreeSet]:
    cache = Cache(case.store.sub("micro-cache"))
    dst = str(case.env.sub("micro-dst"))
    sets = []
    for name, wheel in wheels.items():
        entry = cache.admit(wheel)
        plan = entry.plan
        if set(plan.links) != {"purelib"}:
            raise RuntimeError(f"generated wheel {wheel.name} is not purelib-only")
        # The payload only: leave out METADATA and WHEEL, so "files" means the generated ones.
        rows = [r for r in plan.links["purelib"] if not r[1].startswith(plan.dist_info + "/")]
        ts = TreeSet(
            name=name,
            files=entry.files,
            rows=rows,
            dirs=list(plan.dirs.get("purelib", ())),
            nbytes=sum(r[2] for r in rows),
            pairs_json=scratch / f"pairs-{case.name.replace('/', '_')}-{name}.json",
            dst=dst,
        )
        ts.pairs_json.write_text(json.dumps(ts.pairs()))
        sets.append(ts)
    return sets


def _prepare(ts: TreeSet, prim: Primitive) -> None:
    if prim.makes_dirs:
        return
    os.mkdir(ts.dst)
    for d in ts.dirs:
        os.makedirs(os.path.join(ts.dst, d), exist_ok=True)


def run_micro(case: FsCase, wheels: dict[str, Path], scratch: Path, cfg: MicroConfig) -> dict:
    """Time every primitive on both trees; return the per-case result dict."""
    sets = _tree_sets(case, wheels, scratch)
    prims = primitives()
    runs: dict[str, dict[str, list[float]]] = {p.name: {s.name: [] for s in sets} for p in prims}
    errors: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for p in prims:
        if p.needs == "link" and not case.can_link:
            skipped[p.name] = f"link() does not work here ({case.link_error})"
        elif p.needs == "clone" and not case.can_clone:
            skipped[p.name] = f"FICLONE does not work here ({case.clone_error})"
    prims_to_run = [p for p in prims if p.name not in skipped]
    dst = Path(sets[0].dst)
    total = cfg.runs + (1 if cfg.warmup else 0)
    for r in range(total):
        warm = cfg.warmup and r == 0
        label = "warm-up" if warm else f"run {r + (0 if cfg.warmup else 1)}/{cfg.runs}"
        log(f"micro {case.name}: {label} ({len(prims_to_run) - len(errors)} primitives)")
        for prim in rotated(prims_to_run, r):
            for ts in sets:
                if prim.name in errors:
                    break
                remove(dst)
                _prepare(ts, prim)
                try:
                    seconds = prim.run(ts)
                except Unsupported as exc:
                    errors[prim.name] = str(exc)
                    log(f"  {prim.name}: n/a on {case.name} ({exc})")
                    remove(dst)
                    break
                if not warm:
                    runs[prim.name][ts.name].append(seconds)
                remove(dst, case.env.root)
    remove(dst)
    out: dict[str, Any] = {
        "sets": {s.name: {"files": s.nfiles, "bytes": s.nbytes, "dirs": len(s.dirs)} for s in sets},
        "primitives": {},
    }
    for prim in prims:
        res: dict[str, Any] = {"error": errors.get(prim.name), "skipped": skipped.get(prim.name)}
        if prim.name not in errors and prim.name not in skipped:
            for ts in sets:
                secs = runs[prim.name][ts.name]
                res[ts.name] = {
                    "seconds": summarize(secs),
                    "us_per_file": summarize([s / ts.nfiles * 1e6 for s in secs]),
                    "mb_per_s": summarize([ts.nbytes / s / 1e6 for s in secs if s > 0]),
                }
        out["primitives"][prim.name] = res
    return out
