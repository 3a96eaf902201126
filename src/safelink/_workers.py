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
import threading
from collections.abc import Callable, Sequence
from typing import Any

from . import errors


def can_fork() -> bool:
    return (
        hasattr(os, "fork")
        and threading.active_count() == 1
        and not os.environ.get("SAFELINK_TEST_CRASH")
    )


def _encode_error(exc: BaseException) -> tuple[Any, ...]:
    if isinstance(exc, errors.SafelinkError):
        return ("SafelinkError", type(exc).__name__, exc.message, exc.hint)
    if isinstance(exc, OSError):
        return ("OSError", exc.errno, exc.strerror, exc.filename)
    return ("error", f"{type(exc).__name__}: {exc}")


def _raise(payload: tuple[Any, ...]) -> None:
    kind = payload[0]
    if kind == "SafelinkError":
        cls = getattr(errors, payload[1], errors.SafelinkError)
        raise cls(payload[2], payload[3])
    if kind == "OSError":
        raise OSError(payload[1], payload[2], payload[3])
    raise RuntimeError(f"worker failed: {payload[1]}")


def split_run(items: Sequence[Any], fn: Callable[[Any], Any]) -> list[Any]:
    """``[fn(x) for x in items]``, the second half computed in a forked child.

    Results must be marshal-able. The first failure in item order is raised, after
    both halves have finished (nothing keeps running behind the caller's back).
    """
    half = len(items) // 2
    mine, theirs = items[:half], items[half:]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child; checked through its results
        code = 0
        out: list[Any] = []
        try:
            os.close(r)
            for x in theirs:
                out.append(("ok", fn(x)))
        except BaseException as exc:
            out.append(("err", _encode_error(exc)))
            code = 1
        try:
            data = memoryview(marshal.dumps(out))
            while data:
                data = data[os.write(w, data) :]
        finally:
            os._exit(code)
    os.close(w)
    results: list[tuple[str, Any]] = []
    try:
        for x in mine:
            results.append(("ok", fn(x)))
    except BaseException as exc:
        results.append(("err", exc))
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    if results and results[-1][0] == "err":
        raise results[-1][1]
    try:
        theirs_out = marshal.loads(b"".join(chunks))
    except (EOFError, ValueError, TypeError):
        raise OSError(errno.EIO, "the second worker process died", "") from None
    values = [v for _k, v in results]
    for kind, value in theirs_out:
        if kind == "err":
            _raise(value)
        values.append(value)
    return values
