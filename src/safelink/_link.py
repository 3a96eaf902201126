"""The hot loop: put every planned file in place, with the guard and per-file fallback.

Per file: one ``lstat`` of the cached file when the guard is on (size, mtime and
mode must match the fingerprint), then one strategy call. Everything else (paths,
directories, hashes, modes) was worked out when the wheel was admitted. Big
installs are split between this process and one forked worker (two cores).
"""

from __future__ import annotations

import os
from _thread import allocate_lock  # threading.Lock, without importing threading
from collections.abc import Callable, Sequence

from . import _layout, strategies
from . import _policy as policy
from ._dataclass import dataclass, field
from ._guard import FINGERPRINT_MTIME_NS, MODES_CHECKED, SEALED_FILE_MODES
from ._plan import LinkRow
from ._policy import Action, Fallback
from .strategies import DirPair

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import Any

    from .strategies import Strategy


CHUNK = 512


def _make_dirs(job: Job) -> None:
    pair = job.pair
    fd = pair.dst_fd
    for d in job.dirs:
        try:
            os.mkdir(d if fd is not None else os.path.join(pair.dst_root, d), dir_fd=fd)
        except FileExistsError:
            pass


@dataclass
class Job:
    pair: DirPair
    rows: Sequence[LinkRow]
    heal: Callable[[str], None]
    """Restore one cached file (by its source name) from the wheel."""
    dirs: Sequence[str] = ()
    """Directories under ``pair.dst_root`` the rows need, parents first. Each worker
    makes them before its first chunk of the job (so both cores share the mkdirs)."""


@dataclass
class LinkStats:
    counts: dict[str, int] = field(default_factory=dict)
    fallbacks: list[Fallback] = field(default_factory=list)
    healed: list[str] = field(default_factory=list)
    relinked: int = 0
    """Cached files given a fresh inode because they hit the link-count limit."""


def _can_fork() -> bool:
    from ._workers import can_fork  # not for an install of one chunk (start-up cost)

    return can_fork()


class Linker:
    """Runs jobs with one chain of strategies shared by every thread.

    When a mode fails for a structural reason the whole install moves on to
    the next mode in the chain (if fallback is allowed), so one failure costs
    one warning, not one per file.
    """

    def __init__(
        self,
        chain: Sequence[str],
        *,
        allow_fallback: bool,
        guard: bool,
        displace: Callable[[DirPair, str], None],
        threads: int = 1,
    ) -> None:
        self.chain = [strategies.get(m) for m in chain]
        self.level = 0
        self.allow_fallback = allow_fallback
        self.guard = guard
        self.displace = displace
        self.threads = threads
        self.stats = LinkStats()
        self._lock = allocate_lock()
        self.progress: Callable[[int], None] | None = None
        """Told how many more files are in place after each chunk (in either process)."""

    @property
    def chain_names(self) -> list[str]:
        return [s.name for s in self.chain]

    @property
    def current(self) -> Strategy:
        return self.chain[self.level]

    def run(self, jobs: Sequence[Job]) -> LinkStats:
        tasks: list[tuple[Job, int, int]] = []
        for job in jobs:
            for i in range(0, len(job.rows), CHUNK):
                tasks.append((job, i, min(i + CHUNK, len(job.rows))))
        if self.threads <= 1 or len(tasks) <= 1:
            self._run_tasks(tasks)
        elif _can_fork():
            self._run_forked(tasks)
        else:
            from concurrent.futures import ThreadPoolExecutor

            for job in {id(t[0]): t[0] for t in tasks}.values():
                _make_dirs(job)
            with ThreadPoolExecutor(self.threads, thread_name_prefix="safelink-link") as pool:
                for task, counts in zip(
                    tasks, pool.map(lambda t: self._run_chunk(*t), tasks), strict=True
                ):
                    self._merge(counts)
                    if self.progress is not None:
                        self.progress(task[2] - task[1])
        return self.stats

    def _run_tasks(self, tasks: Sequence[tuple[Job, int, int]]) -> None:
        made: set[int] = set()
        for task in tasks:
            job = task[0]
            if job.dirs and id(job) not in made:
                made.add(id(job))
                _make_dirs(job)
            self._merge(self._run_chunk(*task))
            if self.progress is not None:
                self.progress(task[2] - task[1])

    def _run_forked(self, tasks: list[tuple[Job, int, int]]) -> None:
        """Link the second half of the files in a forked copy of this process.

        Threads do not pay here: each file costs a microsecond of Python (with the
        GIL held) around a few microseconds of syscalls, and the hand-offs of the
        GIL cost more than they save. Two processes use two cores for real. The
        child inherits the environment lock (flock follows the open file), so even
        if this process is killed no other safelink run touches the environment
        until the child is done; its results come back through a pipe.
        """

        total = sum(stop - start for _job, start, stop in tasks)
        half, split = 0, len(tasks)
        for i, (_job, start, stop) in enumerate(tasks):
            half += stop - start
            if half * 2 >= total:
                split = i + 1
                break
        mine, theirs = tasks[:split], tasks[split:]
        if not theirs:
            self._run_tasks(mine)
            return
        from ._workers import run_forked

        def child() -> tuple[Any, ...]:
            self.stats = LinkStats()
            self._run_tasks(theirs)
            st = self.stats
            fbs = [(f.from_mode, f.to_mode, f.error, f.path, f.errno) for f in st.fallbacks]
            return (st.counts, fbs, st.healed, st.relinked)

        _, payload = run_forked(child, lambda: self._run_tasks(mine))
        counts, fallbacks, healed, relinked = payload
        self._merge(counts)
        seen = {(f.from_mode, f.to_mode) for f in self.stats.fallbacks}
        for fb in fallbacks:
            if (fb[0], fb[1]) not in seen:
                self.stats.fallbacks.append(Fallback(*fb))
        self.stats.healed.extend(healed)
        self.stats.relinked += relinked

    def _merge(self, counts: dict[str, int]) -> None:
        for k, v in counts.items():
            self.stats.counts[k] = self.stats.counts.get(k, 0) + v

    def _run_chunk(self, job: Job, start: int, stop: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        pair, rows = job.pair, job.rows
        sfd = pair.src_fd
        guard = self.guard
        stat = os.stat
        mtime = FINGERPRINT_MTIME_NS
        rmode, xmode = SEALED_FILE_MODES
        modes = MODES_CHECKED
        level = self.level
        strategy = self.chain[level]
        link = strategy.link
        n = 0
        for i in range(start, stop):
            src, dst, size, _digest, executable = rows[i]
            if guard:
                # lstat: a symlink is never a cached file; mode bits are fingerprinted too
                st = (
                    stat(src, dir_fd=sfd, follow_symlinks=False)
                    if sfd is not None
                    else stat(pair.src(src), follow_symlinks=False)
                )
                if (
                    st.st_size != size
                    or st.st_mtime_ns != mtime
                    or (st.st_mode != (xmode if executable else rmode) and modes)
                ):
                    self._heal(job, src)
            if level != self.level:  # another thread fell back
                counts[strategy.name] = counts.get(strategy.name, 0) + n
                n = 0
                level = self.level
                strategy = self.chain[level]
                link = strategy.link
            try:
                link(pair, src, dst, executable)
                n += 1
            except OSError as exc:
                counts[strategy.name] = counts.get(strategy.name, 0) + n
                n = 0
                used = self._slow_path(exc, job, src, dst, executable)
                counts[used] = counts.get(used, 0) + 1
                level = self.level
                strategy = self.chain[level]
                link = strategy.link
        counts[strategy.name] = counts.get(strategy.name, 0) + n
        return {k: v for k, v in counts.items() if v}

    def _heal(self, job: Job, src: str) -> None:
        with self._lock:
            job.heal(src)
            self.stats.healed.append(os.path.join(job.pair.src_root, src))

    def _slow_path(self, exc: OSError, job: Job, src: str, dst: str, executable: bool) -> str:
        """Handle one failed link as the policy says; return the mode that placed the file."""
        pair = job.pair
        for _attempt in range(len(self.chain) + 3):
            strategy = self.current
            action = policy.classify(exc.errno, shares_inode=strategy.shares_inode)
            if action is Action.DISPLACE:
                # Something is already there: move it aside (rollback can restore it),
                # never write through it.
                self.displace(pair, dst)
            elif action is Action.FRESH_INODE:
                self._fresh_inode(pair, src)
                with self._lock:
                    self.stats.relinked += 1
            elif action is Action.SWITCH:
                self._fall_back(strategy, exc, os.path.join(pair.dst_root, dst))
            else:
                raise exc
            try:
                self.current.link(pair, src, dst, executable)
                return self.current.name
            except OSError as again:
                exc = again
        raise exc

    def _fall_back(self, failed: Strategy, exc: OSError, path: str) -> None:
        with self._lock:
            if self.current is not failed:
                return  # another thread already moved on
            action, level = policy.step(
                self.chain_names,
                self.level,
                exc.errno,
                shares_inode=failed.shares_inode,
                allow_fallback=self.allow_fallback,
            )
            if action is not Action.SWITCH:
                raise policy.link_failed(failed.name, exc, path) from None
            self.level = level
            self.stats.fallbacks.append(policy.fallback(failed.name, self.current.name, exc, path))

    def _fresh_inode(self, pair: DirPair, src: str) -> None:
        """EMLINK: give the cached file a new inode (same bytes, mode, mtime) and link that."""
        from .strategies.copy import copy_fd

        tmp = _layout.temp_beside(src, _layout.RELINK)
        sfd = os.open(pair.src(src), os.O_RDONLY, dir_fd=pair.src_fd)
        try:
            st = os.fstat(sfd)
            dfd = os.open(
                pair.src(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=pair.src_fd
            )
            try:
                copy_fd(sfd, dfd)
                os.fchmod(dfd, st.st_mode & 0o7777)
                os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)
        os.replace(pair.src(tmp), pair.src(src), src_dir_fd=pair.src_fd, dst_dir_fd=pair.src_fd)
