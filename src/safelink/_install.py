"""``install()``: admit → plan → link, as one transaction per environment.

Order of work, and why:

1. Admit every wheel into the cache (validates everything; the target is not
   touched until all wheels are known good).
2. Check tags against the *target* interpreter.
3. Under the environment's lock: roll back any install that died here,
   choose the link mode (probe, remembered per filesystem pair), journal,
   move replaced distributions aside, create directories, run the link loop,
   write the fresh files (scripts, metadata), then RECORD last, commit.

Any failure after step 3 began rolls the environment back to how it was.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import strategies
from ._cache import Cache, Entry
from ._environment import Target, resolve_target
from ._guard import Guard, hardlink_allowed
from ._link import Job, Linker
from ._lock import LockTimeout, env_lock_path, file_lock
from ._plan import Plan
from ._report import InstalledWheel, InstallReport
from ._transaction import Transaction, recover
from ._uninstall import find_installed, remove_distribution
from .errors import (
    EnvironmentBusy,
    IncompatibleWheel,
    SafelinkError,
    TargetError,
)
from .strategies import DirPair
from .strategies.auto import decide

log = logging.getLogger("safelink")

DEFAULT_LOCK_TIMEOUT = 120.0


@dataclass(frozen=True)
class Progress:
    """An event for progress displays: *stage* is ``admit``, ``link`` or ``finalize``."""

    stage: str
    wheel: str
    done: int
    total: int


ProgressCallback = Callable[[Progress], None]


def _default_threads(nfiles: int) -> int:
    env = os.environ.get("SAFELINK_THREADS")
    if env and env.isdigit():
        return max(1, int(env))
    if nfiles < 1000:
        return 1
    return min(4, os.cpu_count() or 1)


def install(
    wheels: Iterable[str | os.PathLike[str]],
    target: Target | str | os.PathLike[str] | None = None,
    *,
    python: str | None = None,
    prefix: str | None = None,
    flat_target: str | None = None,
    cache: Cache | str | os.PathLike[str] | None = None,
    link_mode: str = "auto",
    allow_fallback: bool | None = None,
    guard: Guard | str = Guard.CHECK,
    compile_bytecode: bool = False,
    force: bool = False,
    requested: bool = True,
    lock_timeout: float | None = None,
    threads: int | None = None,
    max_unpacked: int | None = None,
    progress: ProgressCallback | None = None,
) -> InstallReport:
    """Install *wheels* into *target* by linking them from the cache.

    *target* is a :class:`Target`, a venv directory or interpreter path, or
    ``None`` for the running interpreter's environment (an active
    ``VIRTUAL_ENV`` wins); ``python``/``prefix``/``flat_target`` mirror the
    CLI's ``--python``/``--prefix``/``--target``. *link_mode* is ``auto`` or
    a registered strategy name. An explicit mode that cannot work between the
    cache and the target raises :class:`~safelink.errors.LinkFailed` unless
    *allow_fallback*; ``auto`` always falls back.

    Raises a :class:`~safelink.errors.SafelinkError` subclass on any failure,
    after leaving the environment exactly as it was.
    """
    t0 = time.perf_counter()
    guard = Guard(guard)
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    paths = [os.path.abspath(os.fspath(w)) for w in wheels]
    if not paths:
        raise SafelinkError("no wheels given")
    tgt = resolve_target(
        target, python=python, prefix=prefix, flat=flat_target, cache_root=cache.root
    )
    report = InstallReport(target=tgt.root)

    if not force:
        _check_tags(paths, tgt)
    entries: list[tuple[str, Entry, bool]] = []
    for i, path in enumerate(paths):
        if progress:
            progress(Progress("admit", os.path.basename(path), i, len(paths)))
        had = _cached(cache, path)
        entry = cache.admit(path, max_unpacked=max_unpacked)
        entries.append((path, entry, not had))
    report.timings["admit"] = time.perf_counter() - t0

    seen: dict[str, str] = {}
    for _path, entry, _ in entries:
        plan = entry.plan
        if plan.name in seen:
            raise SafelinkError(
                f"two wheels for {plan.name}: {seen[plan.name]} and {plan.filename}",
                "pass one wheel per distribution",
            )
        seen[plan.name] = plan.filename

    _prepare_root(tgt)
    timeout = (
        lock_timeout
        if lock_timeout is not None
        else float(os.environ.get("SAFELINK_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT))
    )
    try:
        with file_lock(env_lock_path(tgt.root), timeout=timeout):
            if recover(tgt):
                report.warnings.append(f"rolled back an interrupted install in {tgt.root}")
            _install_locked(
                tgt,
                cache,
                entries,
                report,
                link_mode=link_mode,
                allow_fallback=allow_fallback,
                guard=guard,
                compile_bytecode=compile_bytecode,
                requested=requested,
                threads=threads,
                progress=progress,
            )
    except LockTimeout:
        raise EnvironmentBusy(
            f"environment {tgt.root} is being modified by another safelink process",
            f"waited {timeout:.0f} s; try again when it has finished",
        ) from None
    report.timings["total"] = time.perf_counter() - t0
    for w in report.warnings:
        log.warning(w)
    return report


def _check_tags(paths: list[str], tgt: Target) -> None:
    """Refuse wheels the target interpreter cannot use, before admitting anything."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    supported: set[str] | None = None
    for path in paths:
        try:
            tags = {str(t) for t in parse_wheel_filename(os.path.basename(path))[3]}
        except (InvalidWheelFilename, ValueError):
            continue  # admission reports bad names with the full message
        supported = supported if supported is not None else tgt.supported_tags()
        if supported.isdisjoint(tags):
            raise IncompatibleWheel(
                f"{os.path.basename(path)} is not compatible with the target interpreter "
                f"{tgt.python} (Python {tgt.version[0]}.{tgt.version[1]})",
                "use --force to install it anyway",
            )


def _cached(cache: Cache, path: str) -> bool:
    try:
        return cache.get(cache.wheel_sha256(path)) is not None
    except OSError:
        return False


def _prepare_root(tgt: Target) -> None:
    try:
        os.makedirs(tgt.root, exist_ok=True)
        for d in {tgt.purelib, tgt.platlib}:
            os.makedirs(d, exist_ok=True)
        probe_file = os.path.join(tgt.purelib, f".safelink-write-test-{os.getpid()}")
        os.close(os.open(probe_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe_file)
    except OSError as exc:
        raise TargetError(
            f"cannot write to {exc.filename or tgt.purelib}: {exc.strerror}",
            "choose a writable target (--python, --prefix, --target) or fix its permissions",
        ) from None


def _install_locked(
    tgt: Target,
    cache: Cache,
    entries: list[tuple[str, Entry, bool]],
    report: InstallReport,
    *,
    link_mode: str,
    allow_fallback: bool | None,
    guard: Guard,
    compile_bytecode: bool,
    requested: bool,
    threads: int | None,
    progress: ProgressCallback | None,
) -> None:
    t1 = time.perf_counter()
    strategies.get(link_mode) if link_mode != "auto" else None  # unknown names fail here
    decision = decide(cache.root, cache.base, tgt.purelib, link_mode,
                      hardlink_allowed=hardlink_allowed(guard, cache.base, tgt.root),
                      allow_fallback=allow_fallback)
    chain, fallback = decision.chain, decision.allow_fallback
    report.link_mode = decision.mode
    report.warnings.extend(decision.warnings)

    plans = [e.plan for _, e, _ in entries]
    txn = Transaction(tgt, [_journal_plan(tgt, p) for p in plans])
    txn.begin()
    try:
        replaced: dict[str, str] = {}
        for plan in plans:
            for inst in find_installed(tgt, plan.name):
                remove_distribution(tgt, inst, txn.displace)
                replaced[plan.name] = inst.version
        txn.linking()
        fds: list[int] = []
        jobs: list[Job] = []
        try:
            for path, entry, _ in entries:
                jobs.extend(_jobs_for(tgt, cache, entry, path, fds))
            nfiles = sum(len(j.rows) for j in jobs)
            linker = Linker(
                chain,
                allow_fallback=fallback,
                guard=guard is not Guard.OFF,
                displace=lambda pair, dst: txn.displace(os.path.join(pair.dst_root, dst)),
                threads=threads if threads is not None else _default_threads(nfiles),
            )
            if progress:
                progress(Progress("link", "", 0, nfiles))
            stats = linker.run(jobs)
        finally:
            for fd in fds:
                os.close(fd)
        report.timings["link"] = time.perf_counter() - t1
        report.files_by_mode = stats.counts
        report.fallbacks = stats.fallbacks
        report.healed = stats.healed
        report.relinked = stats.relinked
        for fb in stats.fallbacks:
            report.warnings.append(_fallback_warning(fb, cache))
        t2 = time.perf_counter()
        for (path, entry, admitted), plan in zip(entries, plans, strict=True):
            if progress:
                progress(Progress("finalize", plan.filename, 0, 1))
            report.fresh_files += _finalize(tgt, entry, plan, path, requested, compile_bytecode)
            report.wheels.append(
                InstalledWheel(
                    plan.name,
                    plan.version,
                    plan.filename,
                    plan.sha256,
                    plan.nfiles,
                    admitted,
                    replaced.get(plan.name),
                )
            )
            cache.register_env(plan.sha256, tgt.root)
        report.timings["finalize"] = time.perf_counter() - t2
    except BaseException as exc:
        txn.rollback()
        if isinstance(exc, OSError):
            raise _os_error(exc, tgt) from None
        raise
    txn.commit()


def _journal_plan(tgt: Target, plan: Plan) -> dict[str, object]:
    dests = {tgt.scheme_root(s, plan.name): rels for s, rels in plan.destinations().items()}
    dirs = {tgt.scheme_root(s, plan.name): rels for s, rels in plan.dirs.items()}
    return {"name": plan.name, "dests": dests, "dirs": dirs}


def _jobs_for(tgt: Target, cache: Cache, entry: Entry, wheel: str, fds: list[int]) -> list[Job]:
    plan = entry.plan
    src_fd = os.open(entry.files, os.O_RDONLY)
    fds.append(src_fd)

    def heal(src: str) -> None:
        cache.restore_file(entry, src, wheel)

    jobs = []
    for scheme, rows in plan.links.items():
        root = tgt.scheme_root(scheme, plan.name)
        os.makedirs(root, exist_ok=True)
        dst_fd = os.open(root, os.O_RDONLY)
        fds.append(dst_fd)
        for d in plan.dirs.get(scheme, ()):
            try:
                os.mkdir(d, dir_fd=dst_fd)
            except FileExistsError:
                pass
        jobs.append(Job(DirPair(entry.files, src_fd, root, dst_fd), rows, heal))
    for scheme, dirs in plan.dirs.items():
        if scheme not in plan.links:
            root = tgt.scheme_root(scheme, plan.name)
            for d in dirs:
                os.makedirs(os.path.join(root, d), exist_ok=True)
    return jobs


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_fresh(path: str, data: bytes, mode: int) -> None:
    """Write a new file beside *path* and rename it into place (never through a link)."""
    tmp = f"{path}.safelink-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _finalize(
    tgt: Target, entry: Entry, plan: Plan, wheel: str, requested: bool, compile_bytecode: bool
) -> int:
    """Write scripts, metadata and RECORD; return how many files were written."""
    site = tgt.scheme_root(plan.root_scheme, plan.name)
    prefixes: dict[str, str] = {}

    def prefix(scheme: str) -> str:
        if scheme not in prefixes:
            rel = os.path.relpath(tgt.scheme_root(scheme, plan.name), site)
            prefixes[scheme] = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        return prefixes[scheme]

    rows: list[tuple[str, str, str]] = []
    for scheme, links in plan.links.items():
        p = prefix(scheme)
        rows.extend((p + dst, digest, str(size)) for _src, dst, size, digest, _x in links)

    written = 0
    exec_mode = 0o777 & ~_umask()
    scripts_root = tgt.scripts
    if plan.entry_points or plan.shebang_scripts:
        os.makedirs(scripts_root, exist_ok=True)
    py = tgt.python
    for _src, dst, _digest in plan.shebang_scripts:
        with open(os.path.join(entry.files, _src), "rb") as f:
            f.readline()
            data = f"#!{py}\n".encode() + f.read()
        path = os.path.join(scripts_root, dst)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write_fresh(path, data, exec_mode)
        rows.append((prefix("scripts") + dst, _record_hash(data), str(len(data))))
        written += 1
    if plan.entry_points:
        from installer.scripts import Script

        kind: Any = "posix"
        if sys.platform == "win32":  # pragma: no cover
            from installer.utils import get_launcher_kind

            kind = get_launcher_kind()
        for ep_name, module, attr, section in plan.entry_points:
            name, data = Script(ep_name, module, attr, section).generate(py, kind)  # type: ignore[arg-type]
            _write_fresh(os.path.join(scripts_root, name), data, exec_mode)
            rows.append((prefix("scripts") + name, _record_hash(data), str(len(data))))
            written += 1

    dist_info = os.path.join(site, plan.dist_info)
    meta: dict[str, bytes] = {"INSTALLER": b"safelink\n"}
    if requested:
        meta["REQUESTED"] = b""
    url = Path(wheel).as_uri()
    meta["direct_url.json"] = json.dumps(
        {
            "url": url,
            "archive_info": {"hash": f"sha256={plan.sha256}", "hashes": {"sha256": plan.sha256}},
        },
        sort_keys=True,
    ).encode()
    for name, data in meta.items():
        _write_fresh(os.path.join(dist_info, name), data, 0o666 & ~_umask())
        rows.append((f"{plan.dist_info}/{name}", _record_hash(data), str(len(data))))
        written += 1

    if compile_bytecode:
        pyc = _compile(
            tgt,
            [
                os.path.join(tgt.scheme_root(s, plan.name), r[1])
                for s in ("purelib", "platlib")
                for r in plan.links.get(s, ())
                if r[1].endswith(".py")
            ],
        )
        for path in pyc:
            with open(path, "rb") as f:
                data = f.read()
            rel = os.path.relpath(path, site).replace(os.sep, "/")
            rows.append((rel, _record_hash(data), str(len(data))))
        written += len(pyc)

    rows.append((f"{plan.dist_info}/RECORD", "", ""))
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(rows)
    _write_fresh(os.path.join(dist_info, "RECORD"), buf.getvalue().encode(), 0o666 & ~_umask())
    return written + 1


_COMPILE = r"""
import sys, py_compile, importlib.util
out = []
for line in sys.stdin.read().splitlines():
    try:
        out.append(py_compile.compile(line, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP))
    except Exception:
        pass
print("\n".join(p for p in out if p))
"""


def _compile(tgt: Target, files: Sequence[str]) -> list[str]:
    """Byte-compile *files* with the target interpreter, like ``pip install`` does."""
    if not files:
        return []
    proc = subprocess.run(
        [tgt.python, "-I", "-c", _COMPILE],
        input="\n".join(files),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SafelinkError(
            f"byte-compiling with {tgt.python} failed: {proc.stderr.strip()[-300:]}"
        )
    return [line for line in proc.stdout.splitlines() if line]


def _fallback_warning(fb: object, cache: Cache) -> str:
    from ._link import Fallback

    assert isinstance(fb, Fallback)
    hint = ""
    if fb.error.startswith("EXDEV"):
        hint = (
            f"; the cache ({cache.base}) is on another filesystem: put it on the same one, "
            "e.g. SAFELINK_CACHE_DIR=<dir on the target's filesystem>"
        )
    elif fb.error.startswith(("EOPNOTSUPP", "ENOTSUP", "ENOTTY", "EINVAL")):
        hint = "; this filesystem cannot do it"
    elif fb.error.startswith("EPERM"):
        hint = "; the kernel refused (fs.protected_hardlinks or permissions)"
    return f"{fb.from_mode} failed ({fb.error}) at {fb.path}; fell back to {fb.to_mode}{hint}"


def _os_error(exc: OSError, tgt: Target) -> SafelinkError:
    where = exc.filename or tgt.root
    if exc.errno == errno.ENOSPC:
        return SafelinkError(
            f"no space left on device while installing into {tgt.root}",
            "free some space; the environment was left as it was",
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return TargetError(
            f"cannot write to {where}: {exc.strerror}",
            "fix its permissions or choose another target; nothing was changed",
        )
    return SafelinkError(
        f"install into {tgt.root} failed at {where}: {exc.strerror}",
        "the environment was left as it was",
    )
