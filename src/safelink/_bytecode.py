"""``--compile``: byte-compile once per (cache entry, Python version), then link the ``.pyc``.

``pip install`` compiles every module of every install, which is most of its
time for big wheels. A ``.pyc`` depends only on the source bytes, the source's
mtime and size (timestamp mode) and the interpreter's version, and cached
sources have one fixed mtime. So the first ``--compile`` install of an entry
for, say, CPython 3.12 compiles its modules into the cache, and every later one
links the results like any other file. (The import system rewrites
``co_filename`` to where the source really is, so tracebacks name the
environment's file, not the cache's.)

Installed sources keep the cached mtime when hardlinked or symlinked; clones and
copies get it set explicitly, or Python would find the ``.pyc`` stale.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from . import _layout
from ._cache import Cache, Entry
from ._environment import Target
from ._fsops import rmtree
from ._guard import FINGERPRINT_MTIME_NS, seal_path
from ._link import Job, Linker
from ._lock import file_lock
from ._record import PycRow, hash_of
from .errors import SafelinkError
from .strategies import DirPair, close_dir, open_dir

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from ._report import InstallReport
    from ._transaction import Transaction


_SCRIPT = r"""
import importlib.util, json, os, py_compile, sys
jobs = json.load(sys.stdin)
out = []
for src, rel, scheme in jobs["files"]:
    cfile = importlib.util.cache_from_source(rel)
    try:
        py_compile.compile(src, cfile=os.path.join(jobs["dest"], scheme, cfile), dfile=rel,
                           doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    except Exception:
        continue  # like pip: modules that do not compile stay source-only
    out.append([scheme, cfile.replace(os.sep, "/")])
json.dump(out, sys.stdout)
"""


def cache_tag(target: Target) -> str | None:
    if target.implementation != "cpython":
        return None
    return f"cpython-{target.version[0]}{target.version[1]}"


def sources(entry: Entry) -> list[tuple[str, str, str]]:
    """(cached source path, destination under the scheme root, scheme) of every module."""
    plan = entry.plan
    return [
        (os.path.join(entry.files, row[0]), row[1], scheme)
        for scheme in ("purelib", "platlib")
        for row in plan.links.get(scheme, ())
        if row[1].endswith(".py")
    ]


def cached_pycs(cache: Cache, entry: Entry, target: Target) -> tuple[str, list[PycRow]] | None:
    """The entry's bytecode for *target*'s Python (compiled now if this is the first time).

    Returns the directory holding ``<scheme>/<path>`` pyc files and their rows, or
    None when the cache cannot hold them (another interpreter family, read-only cache).
    """
    import json  # with --compile only (start-up cost)

    tag = cache_tag(target)
    if tag is None:
        return None
    root = _layout.pyc_dir(cache.root, entry.sha256, tag)
    manifest = _layout.pyc_manifest(cache.root, entry.sha256, tag)
    try:
        with open(manifest, encoding="utf-8") as f:
            return root, [tuple(r) for r in json.load(f)]  # type: ignore[misc]
    except (OSError, ValueError):
        pass
    try:
        os.makedirs(os.path.dirname(root), exist_ok=True)
        lock = _layout.pyc_lock(cache.root, entry.sha256, tag)
        os.makedirs(os.path.dirname(lock), exist_ok=True)
    except OSError:
        return None
    with file_lock(lock):
        if os.path.exists(manifest):
            return cached_pycs(cache, entry, target)
        try:
            tmp = _layout.temp_path(cache.ensure_dir(_layout.TMP), _layout.PYC_BUILD)
            os.mkdir(tmp)
        except OSError:
            return None
        try:
            rows = _compile_into(tmp, entry, target)
            with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as f:
                json.dump(rows, f)
            os.rename(tmp, root)
        except BaseException:
            rmtree(tmp)
            raise
    return root, rows


def _compile_into(tmp: str, entry: Entry, target: Target) -> list[PycRow]:
    import json
    import subprocess

    job = {"dest": tmp, "files": sources(entry)}
    proc = subprocess.run(
        [target.python, "-I", "-S", "-c", _SCRIPT],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise SafelinkError(f"byte-compiling with {target.python} failed: {tail[0]}")
    rows: list[PycRow] = []
    for scheme, rel in json.loads(proc.stdout):
        path = os.path.join(tmp, scheme, rel)
        with open(path, "rb") as f:
            data = f.read()
        seal_path(path, 0o444)
        rows.append((scheme, rel, len(data), hash_of(data)))
    return rows


def compile_missing(cache: Cache, tgt: Target, entries: list[Entry]) -> None:
    """Compile the entries whose bytecode the cache lacks, two interpreters at a time
    (each compile is a subprocess: two cores, no GIL in the way)."""
    from ._bytecode import cache_tag, cached_pycs

    tag = cache_tag(tgt)
    if tag is None:
        return
    missing = [
        e
        for e in entries
        if not os.path.exists(_layout.pyc_manifest(cache.root, e.sha256, tag))
    ]
    if len(missing) < 2:
        return  # one compile at most: _link_bytecode does it in line
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(2, os.cpu_count() or 1)) as pool:
        for _ in pool.map(lambda e: cached_pycs(cache, e, tgt), missing):
            pass


def link_bytecode(
    tgt: Target,
    cache: Cache,
    entry: Entry,
    chain: Sequence[str],
    report: InstallReport,
    txn: Transaction,
) -> list[PycRow]:
    """Put the entry's bytecode into the target: from the cache when it can hold it."""
    from ._bytecode import cached_pycs, sources

    plan = entry.plan
    got = cached_pycs(cache, entry, tgt)
    if got is None:
        return _compile_in_place(tgt, entry)
    pyc_root, rows = got
    if report.link_mode not in ("hardlink", "symlink"):
        # Clones and copies are new inodes with a new mtime: give them the cached one,
        # which the .pyc files record, or Python would find them stale.
        for _src, dst, scheme in sources(entry):
            os.utime(
                os.path.join(tgt.scheme_root(scheme, plan.name), dst),
                ns=(FINGERPRINT_MTIME_NS, FINGERPRINT_MTIME_NS),
            )
    jobs: list[Job] = []
    fds: list[int | None] = []
    try:
        for scheme in sorted({r[0] for r in rows}):
            root = tgt.scheme_root(scheme, plan.name)
            mine = [(rel, rel, size, digest, False) for s, rel, size, digest in rows if s == scheme]
            for d in sorted({os.path.dirname(r[0]) for r in mine}):
                os.makedirs(os.path.join(root, d), exist_ok=True)
            src_fd = open_dir(os.path.join(pyc_root, scheme))
            fds.append(src_fd)
            dst_fd = open_dir(root)
            fds.append(dst_fd)
            jobs.append(
                Job(
                    DirPair(os.path.join(pyc_root, scheme), src_fd, root, dst_fd),
                    mine,
                    lambda _src: None,
                )
            )
        linker = Linker(
            chain,
            allow_fallback=True,
            guard=False,
            threads=1,
            displace=lambda pair, dst: txn.displace(os.path.join(pair.dst_root, dst)),
        )
        stats = linker.run(jobs)
    finally:
        for fd in fds:
            close_dir(fd)
    for mode, n in stats.counts.items():
        report.files_by_mode[mode] = report.files_by_mode.get(mode, 0) + n
    return rows


_COMPILE = r"""
import sys, py_compile
out = []
for line in sys.stdin.read().splitlines():
    try:
        out.append(py_compile.compile(line, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP))
    except Exception:
        pass
print("\n".join(p for p in out if p))
"""


def _compile_in_place(tgt: Target, entry: Entry) -> list[PycRow]:
    """Byte-compile the installed modules with the target interpreter, like ``pip`` does
    (for interpreters whose bytecode the cache does not keep)."""
    import subprocess

    from ._bytecode import sources

    plan = entry.plan
    files = [
        (os.path.join(tgt.scheme_root(s, plan.name), dst), s) for _src, dst, s in sources(entry)
    ]
    if not files:
        return []
    proc = subprocess.run(
        [tgt.python, "-I", "-S", "-c", _COMPILE],
        input="\n".join(f for f, _s in files),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SafelinkError(
            f"byte-compiling with {tgt.python} failed: {proc.stderr.strip()[-300:]}"
        )
    rows: list[PycRow] = []
    for path in (line for line in proc.stdout.splitlines() if line):
        scheme = next(
            (s for f, s in files if os.path.dirname(os.path.dirname(path)) == os.path.dirname(f)),
            "purelib",
        )
        rel = os.path.relpath(path, tgt.scheme_root(scheme, plan.name)).replace(os.sep, "/")
        with open(path, "rb") as f:
            data = f.read()
        rows.append((scheme, rel, len(data), hash_of(data)))
    return rows
