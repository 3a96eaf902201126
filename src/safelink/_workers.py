"""One extra worker process for CPU-bound batches (admitting several cold wheels).

Unpacking many small members is Python-bound (the GIL); a second process uses
the second core for real. Only from a single-threaded process (forking with
other threads alive can deadlock the child), never under the crash-test hook,
and only on POSIX. The child sends back plain values through a pipe; its errors
come back as the same exception classes with the same one-line messages.
"""

from __future__ import annotations

import errno
import marshal
import os
import sys
from collections.abc import Callable, Sequence

from . import errors

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import Any


def os_threads() -> int | None:
    """How many threads this process has, as the kernel counts them (Linux), or None.

    ``threading.active_count()`` sees only threads started through ``threading``: a
    thread started by ``_thread`` (execnet, used by pytest-xdist, does that) or by a C
    library (BLAS, gRPC) is invisible to it, and forking while one of them holds a
    lock can deadlock the child. Python 3.12 warns about the same thing from the same
    count."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def can_fork() -> bool:
    """May this process fork a worker? Only when it is the process's only thread."""
    if not hasattr(os, "fork") or os.environ.get("SAFELINK_TEST_CRASH"):
        return False
    n = os_threads()
    if n is not None:
        return n == 1
    # no /proc (macOS): the threads Python knows; none when threading is not loaded yet
    # (importing it costs start-up time)
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def _encode_error(exc: BaseException) -> tuple[Any, ...]:
    if isinstance(exc, errors.SafelinkError):
        return ("SafelinkError", type(exc).__name__, exc.message, exc.hint, exc.errno)
    if isinstance(exc, OSError):
        return ("OSError", exc.errno, exc.strerror, exc.filename)
    return ("error", f"{type(exc).__name__}: {exc}")


def _raise(payload: tuple[Any, ...]) -> None:
    kind = payload[0]
    if kind == "SafelinkError":
        cls = getattr(errors, payload[1], errors.SafelinkError)
        raise cls(payload[2], payload[3], errno=payload[4])
    if kind == "OSError":
        raise OSError(payload[1], payload[2], payload[3])
    raise RuntimeError(f"worker failed: {payload[1]}")


def run_forked(child: Callable[[], Any], parent: Callable[[], Any]) -> tuple[Any, Any]:
    """Run *child* in a forked copy of this process while *parent* runs here.

    Returns ``(parent's result, child's result)``; the child's must be marshal-able.
    Both finish before anything is raised: the parent's failure first, else the
    child's, re-raised here as the same exception class with the same message.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child; checked through its results
        code = 0
        try:
            os.close(r)
            payload: tuple[Any, ...] = ("ok", child())
        except BaseException as exc:
            payload, code = ("err", _encode_error(exc)), 1
        try:
            data = memoryview(marshal.dumps(payload))
            while data:
                data = data[os.write(w, data) :]
        finally:
            os._exit(code)
    os.close(w)
    failure: BaseException | None = None
    mine: Any = None
    try:
        mine = parent()
    except BaseException as exc:
        failure = exc
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    if failure is not None:
        raise failure
    try:
        kind, value = marshal.loads(b"".join(chunks))
    except (EOFError, ValueError, TypeError):
        raise OSError(errno.EIO, "the second worker process died", "") from None
    if kind == "err":
        _raise(value)
    return mine, value


def split_run(items: Sequence[Any], fn: Callable[[Any], Any]) -> list[Any]:
    """``[fn(x) for x in items]``, the second half computed in a forked child."""
    half = len(items) // 2
    mine, theirs = run_forked(
        lambda: [fn(x) for x in items[half:]], lambda: [fn(x) for x in items[:half]]
    )
    return [*mine, *theirs]
