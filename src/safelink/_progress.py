"""Progress events: what an install is doing, for displays (the CLI's, or an embedder's).

Stages, in order:

- ``download`` (``sync`` and ``install -r`` only): wheels a lock file names that
  were fetched; ``done``/``total`` count wheels, one event as each is verified.
- ``admit``: wheels made ready in the cache (unpacked once, or found there);
  ``done``/``total`` count wheels. One event per wheel, in argument order,
  before it (``done`` = wheels before it); a callback with ``from_workers``
  also gets one as each wheel is ready, from whichever process unpacked it.
- ``link``: files placed in the environment; ``done``/``total`` count files,
  from ``0`` and then after every chunk of files.
- ``finalize``: per-environment files written (RECORD, scripts, metadata);
  one event per wheel before it (``wheel`` is its file name).

Work split between this process and a forked worker is counted in a small
shared-memory counter, so ``done`` includes the worker's part. Callbacks run
in the calling process; one that sets ``from_workers = True`` (it only
displays, like the CLI's) is also called in the forked worker, which keeps a
terminal display moving while that worker does the slow part.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ._dataclass import dataclass

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import Literal

    Stage = Literal["download", "admit", "link", "finalize"]


@dataclass(frozen=True)
class Progress:
    """One progress event (see :data:`ProgressCallback`)."""

    stage: Stage
    """``download`` (wheels from a lock's URLs), ``admit`` (wheels into the cache), ``link``
    (files), ``finalize`` (metadata)."""
    wheel: str
    """The wheel file name the event is about, or ``""`` for the whole stage."""
    done: int
    total: int


ProgressCallback = Callable[[Progress], None]
"""Called with a :class:`Progress` as an install moves on; must return quickly."""


class SharedCount:
    """A counter two forked processes add to (one 8-byte slot each, no locking)."""

    def __init__(self) -> None:
        import mmap

        self._mem = mmap.mmap(-1, 16)
        self._owner = os.getpid()

    @property
    def in_worker(self) -> bool:
        return os.getpid() != self._owner

    def add(self, n: int) -> int:
        """Add *n* to this process's slot; return the total of both."""
        slot = 8 if self.in_worker else 0
        mine = int.from_bytes(self._mem[slot : slot + 8], "little") + n
        self._mem[slot : slot + 8] = mine.to_bytes(8, "little")
        return self.value

    @property
    def value(self) -> int:
        return int.from_bytes(self._mem[0:8], "little") + int.from_bytes(self._mem[8:16], "little")


class Reporter:
    """Sends one stage's events to a callback, counting work done in either process."""

    def __init__(self, callback: ProgressCallback | None, stage: Stage, total: int) -> None:
        self.callback = callback
        self.stage: Stage = stage
        self.total = total
        self.count = SharedCount() if callback is not None else None
        self.workers = bool(getattr(callback, "from_workers", False))

    def start(self) -> None:
        if self.callback is not None:
            self.callback(Progress(self.stage, "", 0, self.total))

    def add(self, n: int, wheel: str = "") -> None:
        if self.callback is None or self.count is None:
            return
        done = self.count.add(n)
        if self.workers or not self.count.in_worker:
            self.callback(Progress(self.stage, wheel, min(done, self.total), self.total))

    def finish(self) -> None:
        """The stage is complete: a last event with ``done == total`` (the worker's
        last chunks may have ended after this process's)."""
        if self.callback is not None:
            self.callback(Progress(self.stage, "", self.total, self.total))
