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

import os
import time
from collections.abc import Iterable

from ._atomic import create_temp
from ._cache import Cache, Entry
from ._environment import Target, resolve_target
from ._guard import Guard
from ._hooks import crash_armed, crash_point
from ._link import Job, Linker
from ._lock import env_lock
from ._log import warn
from ._metadata import finalize
from ._names import shown
from ._plan import check_target
from ._policy import decide, fallback_warning
from ._progress import Progress, ProgressCallback, Reporter
from ._record import size_of
from ._report import InstalledWheel, InstallReport
from ._transaction import Transaction, plan_paths, recover
from ._translate import translated, unwritable_target
from ._uninstall import find_installed, remove_distribution
from .errors import IncompatibleWheel, SafelinkError
from .strategies import DirPair, close_dir, open_dir

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import ClassVar

    from .strategies import Strategy


def _default_threads(nfiles: int) -> int:
    """Link workers: two (a forked process) for big installs on a multi-core machine.

    Measured: below a few thousand files the fork costs more than it saves, and
    threads never pay (see :mod:`safelink._link`).
    """
    env = os.environ.get("SAFELINK_THREADS")
    threads = size_of(env or "")
    if threads is not None:
        return max(1, threads)
    if nfiles < 4000:
        return 1
    return min(2, os.cpu_count() or 1)


def install(
    wheels: Iterable[str | os.PathLike[str] | Entry],
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
    ignore_requires_python: bool = False,
    remove: Iterable[str] = (),
) -> InstallReport:
    """Install *wheels* into an environment by linking them from the cache.

    Args:
        wheels: Paths of wheel files. safelink installs exactly these: it does
            not resolve or download dependencies. Two wheels of one project are
            an error. Cache entries (:meth:`Cache.get` by sha256) may stand in
            for files: they install with no wheel file at hand and get no
            ``direct_url.json`` (what a lock file selects).
        target: Where to install: a :class:`Target`, a venv directory, or an
            interpreter path. ``None`` means what the command line does with no
            target option: the active ``VIRTUAL_ENV``, else a ``.venv`` in the
            working directory or one of its parents, else
            :class:`~safelink.errors.TargetError`. It is never the environment
            the calling process happens to run in unless that is the one chosen
            so; pass ``sys.executable`` to mean it. Use :func:`resolve_target` for
            ``--system`` and ``--break-system-packages``; an interpreter marked
            ``EXTERNALLY-MANAGED`` (PEP 668) is refused otherwise.
        python: Like ``--python``: a venv directory or an interpreter; with
            *prefix* or *flat_target*, the interpreter whose scheme and version
            they use.
        prefix: Like ``--prefix``: that interpreter's install scheme rooted at
            this directory.
        flat_target: Like ``--target``: everything flat in this directory.
        cache: A :class:`Cache`, a cache directory, or ``None`` for
            ``$SAFELINK_CACHE_DIR`` or the user cache directory.
        link_mode: ``auto`` (probe once per pair of filesystems and pick), or
            a registered strategy name (``clone``, ``hardlink``, ``copy``,
            ``symlink``, a plugin's).
        allow_fallback: Let an explicit *link_mode* fall back per file when it
            cannot work; ``None`` means yes for ``auto`` and no otherwise (an
            explicit mode that cannot work raises
            :class:`~safelink.errors.LinkFailed`).
        guard: ``off``, ``check`` (one ``stat`` per cached file before it is
            linked; a file modified through a hardlink is restored first) or
            ``strict`` (``check``, and hardlinks only when the cache and the
            target belong to the caller).
        compile_bytecode: Byte-compile the modules, like ``pip install``
            (once per cache entry and Python version, then linked).
        force: Install even if the wheel's tags do not match the target
            interpreter.
        requested: Write ``REQUESTED`` (the user asked for this distribution,
            as opposed to a dependency).
        lock_timeout: Seconds to wait for another safelink process using the
            environment (default ``$SAFELINK_LOCK_TIMEOUT`` or 120); then
            :class:`~safelink.errors.EnvironmentBusy`.
        threads: Link workers; default one below 4,000 files, else two on a
            multi-core machine (``$SAFELINK_THREADS``).
        max_unpacked: Refuse a wheel that unpacks to more bytes than this
            (default 8 GiB): :class:`~safelink.errors.WheelTooLarge`.
        progress: A :data:`ProgressCallback`, called with :class:`Progress`
            events: ``admit`` (wheels), ``link`` (files, done/total as they are
            placed) and ``finalize`` (wheels).
        ignore_requires_python: Install even if a wheel's Requires-Python excludes
            the target interpreter (pip's ``--ignore-requires-python``); otherwise
            that raises :class:`~safelink.errors.IncompatibleWheel` before anything
            changes.
        remove: Names of distributions to uninstall in the same transaction
            (what ``sync`` removes); each must have a RECORD.

    Returns:
        An :class:`InstallReport`.

    Raises:
        SafelinkError: A subclass, on any failure, after leaving the
            environment exactly as it was.
    """
    t0 = time.perf_counter()
    guard = Guard(guard)
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    cache.prepare()  # trusted (or refused) before anything remembered in it is read
    items = list(wheels)
    given = [w for w in items if isinstance(w, Entry)]
    paths = [os.path.abspath(os.fspath(w)) for w in items if not isinstance(w, Entry)]
    if not paths and not given:
        raise SafelinkError("no wheels given")
    tgt = resolve_target(
        target, python=python, prefix=prefix, flat=flat_target, cache_root=cache.root
    )
    report = InstallReport(target=tgt.root)

    if not force:
        _check_tags(paths, tgt, cache)
    entries: list[tuple[str | None, Entry, bool]] = []
    entries += _admit_all(cache, paths, max_unpacked, progress) if paths else []
    entries += [(None, e, False) for e in given]
    if link_mode == "auto":  # across filesystems: link from a satellite cache on the target's
        from ._satellite import route

        cache, entries, notes = route(cache, tgt.purelib, tgt.root, entries)
        for note in notes:
            warn(note)  # said now: warnings from before the lock are not repeated below
            report.warnings.append(note)
    report.timings["admit"] = time.perf_counter() - t0

    seen: dict[str, str] = {}
    for _path, entry, _ in entries:
        plan = entry.plan
        if plan.name in seen:
            raise SafelinkError(
                f"two wheels for {shown(plan.name)}: {shown(seen[plan.name])} and "
                f"{shown(plan.filename)}",
                "pass one wheel per distribution",
            )
        seen[plan.name] = plan.filename
        newer = check_target(plan, tgt, ignore_requires_python)
        if newer:
            warn(newer)  # said now: warnings from before the lock are not repeated below
            report.warnings.append(newer)

    _prepare_root(tgt)
    with (
        translated("install", tgt.root),
        env_lock(tgt.root, lock_timeout),
        cache.in_use(entries, max_unpacked) as entries,  # not evicted while in use
    ):
        recovered = recover(tgt)
        if recovered:
            warn(recovered)  # now: the install below may fail, this must be said
            report.warnings.append(recovered)
        said = len(report.warnings)
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
            remove=list(remove),
        )
    report.timings["total"] = time.perf_counter() - t0
    for w in report.warnings[said:]:
        warn(w)
    return report


def _admit_all(
    cache: Cache, paths: list[str], max_unpacked: int | None, progress: ProgressCallback | None
) -> list[tuple[str, Entry, bool]]:
    """Admit every wheel; a cold cache unpacks two wheels at a time (I/O and inflating
    release the GIL). The first failure, in argument order, is the one raised.
    Progress events come from the calling thread, one per wheel as it is ready."""

    live = Reporter(progress if getattr(progress, "from_workers", False) else None, "admit",
                    len(paths))

    def admit(path: str) -> tuple[str, Entry, bool]:
        entry, admitted = cache.admit_status(path, max_unpacked=max_unpacked)
        return path, entry, admitted

    def admit_live(path: str) -> bool:
        live.add(0, os.path.basename(path))  # a display names the wheel being unpacked
        did = admit(path)[2]
        live.add(1)
        return did

    def report(i: int, path: str) -> None:
        if progress:
            progress(Progress("admit", os.path.basename(path), i, len(paths)))

    cold = [p for p in paths if not _cached(cache, p)]
    if len(paths) < 2 or (os.cpu_count() or 1) < 2 or not cold:
        out = []
        for i, path in enumerate(paths):
            report(i, path)
            out.append(admit(path))
        return out
    from ._workers import can_fork, split_run

    if len(cold) >= 2 and can_fork():
        # Two processes unpack the cold wheels (biggest first, alternating), then
        # every entry is simply found in the cache.
        by_size = sorted(cold, key=lambda p: -os.path.getsize(p))
        order = by_size[0::2] + by_size[1::2]
        unpacked = set()
        try:
            live.add(len(paths) - len(cold))
            done = split_run(order, admit_live)
        except Exception:
            done = []  # admit again below, in argument order: the first bad wheel speaks
        for path, did in zip(order, done, strict=False):
            if did:
                unpacked.add(path)
        out = []
        for i, path in enumerate(paths):
            report(i, path)
            p, entry, _ = admit(path)
            out.append((p, entry, path in unpacked))
        return out
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2, thread_name_prefix="safelink-admit") as pool:
        futures = [pool.submit(admit, p) for p in paths]
        out = []
        for i, (path, future) in enumerate(zip(paths, futures, strict=True)):
            report(i, path)
            out.append(future.result())
        return out


def _cached(cache: Cache, path: str) -> bool:
    """Is this exact wheel file already admitted? Asks the stat index only: a wheel
    that must be hashed first counts as cold (its worker hashes it)."""
    try:
        sha = cache.indexed_sha256(path)
    except OSError:
        return False
    return sha is not None and cache.get(sha) is not None


def _check_tags(paths: list[str], tgt: Target, cache: Cache) -> None:
    """Refuse wheels the target interpreter cannot use, before admitting anything."""
    from ._tags import filename_tags, supported

    accepted: set[str] | None = None
    for path in paths:
        tags = filename_tags(os.path.basename(path))
        if tags is None:
            continue  # admission reports bad names with the full message
        accepted = accepted if accepted is not None else supported(tgt, cache.root)
        if accepted.isdisjoint(tags):
            raise IncompatibleWheel(
                f"{shown(os.path.basename(path))} is not compatible with the target interpreter "
                f"{tgt.python} (Python {tgt.version[0]}.{tgt.version[1]})",
                "use --force to install it anyway",
            )


def _prepare_root(tgt: Target) -> None:
    probe = os.path.join(tgt.purelib, ".safelink-write-test")
    try:
        os.makedirs(tgt.root, exist_ok=True)
        for d in {tgt.purelib, tgt.platlib}:
            os.makedirs(d, exist_ok=True)
        fd, name = create_temp(probe)  # an unpredictable name: nothing planted can be hit
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        planted = str(exc.filename or "").startswith(probe)
        where = exc.filename if exc.filename and not planted else tgt.purelib
        raise unwritable_target(exc, where) from None


def _install_locked(
    tgt: Target,
    cache: Cache,
    entries: list[tuple[str | None, Entry, bool]],
    report: InstallReport,
    *,
    link_mode: str,
    allow_fallback: bool | None,
    guard: Guard,
    compile_bytecode: bool,
    requested: bool,
    threads: int | None,
    progress: ProgressCallback | None,
    remove: list[str],
) -> None:
    t1 = time.perf_counter()
    decision = decide(
        cache.root,
        cache.base,
        tgt.purelib,
        link_mode,
        guard=guard,
        owner_root=tgt.root,
        allow_fallback=allow_fallback,
    )
    chain, fallback = decision.chain, decision.allow_fallback
    report.link_mode = decision.mode
    report.warnings.extend(decision.warnings)

    plans = [e.plan for _, e, _ in entries]
    journal = [_journal_plan(tgt, cache, path, e) for path, e, _ in entries]
    txn = Transaction(tgt, [j[0] for j in journal], refs=[j[1] for j in journal])
    txn.begin()  # an OSError here changed nothing yet
    try:
        replaced: dict[str, str] = {}
        for plan in plans:
            for inst in find_installed(tgt, plan.name):
                remove_distribution(tgt, inst, txn.displace)
                replaced[plan.name] = inst.version
        for name in remove:  # sync: what the lock does not select, in this transaction
            for inst in find_installed(tgt, name):
                remove_distribution(tgt, inst, txn.displace)
        _displace_existing(txn)
        crash_point("install-after-stash")
        txn.linking()
        fds: list[int | None] = []
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
            if crash_armed("link-after"):
                _arm_link_crash(linker)
            linking = Reporter(progress, "link", nfiles)
            linking.start()
            linker.progress = linking.add if progress else None
            stats = linker.run(jobs)
            linking.finish()
        finally:
            for fd in fds:
                close_dir(fd)
        crash_point("install-after-link")
        report.timings["link"] = time.perf_counter() - t1
        report.files_by_mode = stats.counts
        report.fallbacks = stats.fallbacks
        report.healed = stats.healed
        report.relinked = stats.relinked
        for fb in stats.fallbacks:
            report.warnings.append(fallback_warning(fb, cache.base))
        t2 = time.perf_counter()
        if compile_bytecode:
            from ._bytecode import compile_missing, link_bytecode  # --compile only (start-up)

            compile_missing(cache, tgt, [e for _p, e, _a in entries])
        for i, ((path, entry, admitted), plan) in enumerate(zip(entries, plans, strict=True)):
            if progress:
                progress(Progress("finalize", plan.filename, i, len(plans)))
            pycs = (
                link_bytecode(tgt, cache, entry, linker.chain_names, report, txn)
                if compile_bytecode
                else []
            )
            report.fresh_files += finalize(tgt, entry, plan, path, requested, pycs, cache.root)
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
            crash_point("finalized")
        report.timings["finalize"] = time.perf_counter() - t2
        crash_point("before-commit")
    except BaseException:
        try:
            txn.rollback()
        except OSError as again:
            # The journal stays: the next safelink run on this environment retries.
            warn(f"rolling back {tgt.root} failed ({again}); the next run will retry")
        raise
    try:
        txn.commit()
    except OSError as exc:
        # Every file is in place; only the old files' stash could not be deleted.
        report.warnings.append(f"could not remove {txn.stash}: {exc.strerror}")


def _displace_existing(txn: Transaction) -> None:
    """Move aside whatever already sits where this install will put a file.

    Then a rollback can remove every planned destination without ever
    deleting a file that was there before (another distribution's file, a
    user's file): those are in the stash and come back. One ``listdir`` per
    scheme root, and per existing directory the wheel shares with what is
    installed (a namespace package): a fresh environment costs a few syscalls.
    """
    for plan in txn.plans:
        dests: dict[str, list[str]] = plan["dests"]  # type: ignore[assignment]
        dirs: dict[str, list[str]] = plan["dirs"]  # type: ignore[assignment]
        for root, rels in dests.items():
            try:
                names = set(os.listdir(root))
            except OSError:
                continue  # not there yet: nothing below it either
            for name in names.intersection(rels):  # files straight in the root
                txn.displace(os.path.join(root, name))
            shared = {d for d in dirs.get(root, ()) if "/" not in d and d in names}
            if not shared:
                continue
            groups: dict[str, list[str]] = {}
            for rel in rels:
                parent, sep, name = rel.rpartition("/")
                if sep and rel.partition("/")[0] in shared:
                    groups.setdefault(parent, []).append(name)
            for parent, group in groups.items():
                directory = os.path.join(root, parent)
                try:
                    present = set(os.listdir(directory))
                except OSError:
                    continue
                for name in present.intersection(group):
                    txn.displace(os.path.join(directory, name))


def _arm_link_crash(linker: Linker) -> None:
    """Test hook ``SAFELINK_TEST_CRASH=link-after:N``: die after N files were linked."""

    def wrap(inner: Strategy) -> Strategy:
        class Crashing:
            name: ClassVar[str] = inner.name
            shares_inode: ClassVar[bool] = inner.shares_inode
            isolated: ClassVar[bool] = inner.isolated

            def link(self, pair: DirPair, src: str, dst: str, executable: bool) -> None:
                inner.link(pair, src, dst, executable)
                crash_point("link-after")

        return Crashing()

    linker.chain = [wrap(s) for s in linker.chain]


def _journal_plan(
    tgt: Target, cache: Cache, wheel: str | None, entry: Entry
) -> tuple[dict[str, object], dict[str, object]]:
    """The paths a rollback removes (kept in memory) and the journal's reference to them.

    ``made`` lists the scheme roots (``bin``, a headers directory) that do not
    exist yet: this install creates them, so a rollback removes them again.
    """
    plan = entry.plan
    schemes = {*plan.links, *plan.dirs, "scripts", plan.root_scheme}
    roots = {s: tgt.scheme_root(s, plan.name) for s in schemes}
    root = os.path.abspath(tgt.root)
    made: set[str] = set()
    for d in set(roots.values()):
        d = os.path.abspath(d)
        while d != root and d.startswith(root + os.sep) and not os.path.isdir(d):
            made.add(d)
            d = os.path.dirname(d)
    made_list = sorted(made, key=lambda p: (p.count(os.sep), p))
    ref: dict[str, object] = {
        "name": plan.name,
        "sha256": entry.sha256,
        "cache": cache.base,
        "wheel": wheel or plan.source,
        "roots": roots,
        "made": made_list,
    }
    return plan_paths(plan, roots, made_list), ref


def _jobs_for(
    tgt: Target, cache: Cache, entry: Entry, wheel: str | None, fds: list[int | None]
) -> list[Job]:
    plan = entry.plan
    src_fd = open_dir(entry.files)
    fds.append(src_fd)

    def heal(src: str) -> None:
        cache.restore_file(entry, src, wheel)

    jobs = []
    for scheme, rows in plan.links.items():
        root = tgt.scheme_root(scheme, plan.name)
        os.makedirs(root, exist_ok=True)
        dst_fd = open_dir(root)
        fds.append(dst_fd)
        pair = DirPair(entry.files, src_fd, root, dst_fd)
        jobs.append(Job(pair, rows, heal, plan.dirs.get(scheme, ())))
    for scheme, dirs in plan.dirs.items():
        if scheme not in plan.links:
            root = tgt.scheme_root(scheme, plan.name)
            for d in dirs:
                os.makedirs(os.path.join(root, d), exist_ok=True)
    return jobs
