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

import json
import os
import time
from collections.abc import Callable

from ._cache import FINGERPRINT_MTIME_NS, Cache, Entry, _rmtree
from ._environment import Target
from ._lock import file_lock
from .errors import SafelinkError

PycRow = tuple[str, str, int, str]
"""(scheme, path under the scheme root, size, RECORD hash)."""

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


def cached_pycs(
    cache: Cache, entry: Entry, target: Target, record_hash: Callable[[bytes], str]
) -> tuple[str, list[PycRow]] | None:
    """The entry's bytecode for *target*'s Python (compiled now if this is the first time).

    Returns the directory holding ``<scheme>/<path>`` pyc files and their rows, or
    None when the cache cannot hold them (another interpreter family, read-only cache).
    """
    tag = cache_tag(target)
    if tag is None:
        return None
    root = os.path.join(cache.root, "pyc", entry.sha256, tag)
    manifest = os.path.join(root, "manifest.json")
    try:
        with open(manifest, encoding="utf-8") as f:
            return root, [tuple(r) for r in json.load(f)]  # type: ignore[misc]
    except (OSError, ValueError):
        pass
    try:
        os.makedirs(os.path.dirname(root), exist_ok=True)
        lock = os.path.join(cache.root, "locks", f"pyc-{entry.sha256}-{tag}.lock")
        os.makedirs(os.path.dirname(lock), exist_ok=True)
    except OSError:
        return None
    with file_lock(lock):
        if os.path.exists(manifest):
            return cached_pycs(cache, entry, target, record_hash)
        tmp = os.path.join(
            cache.root, "tmp", f"pyc-{entry.sha256[:16]}-{os.getpid()}-{time.monotonic_ns()}"
        )
        try:
            rows = _compile_into(tmp, entry, target, record_hash)
            with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as f:
                json.dump(rows, f)
            os.rename(tmp, root)
        except BaseException:
            _rmtree(tmp)
            raise
    return root, rows


def _compile_into(
    tmp: str, entry: Entry, target: Target, record_hash: Callable[[bytes], str]
) -> list[PycRow]:
    import subprocess

    os.makedirs(tmp)
    job = {"dest": tmp, "files": sources(entry)}
    proc = subprocess.run(
        [target.python, "-I", "-c", _SCRIPT],
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
        os.chmod(path, 0o444)
        os.utime(path, ns=(FINGERPRINT_MTIME_NS, FINGERPRINT_MTIME_NS))
        rows.append((scheme, rel, len(data), record_hash(data)))
    return rows
