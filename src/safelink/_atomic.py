"""Files that appear whole or not at all: write a temporary name, then rename it into place.

Every small file safelink keeps (the wheel-hash index, remembered probes, tags,
interpreter descriptions, launcher bodies) and every file it writes fresh into an
environment goes through here, so a crash or a full disk never leaves a half-written
file under the real name, and a failed write never leaves its temporary behind.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator


@contextlib.contextmanager
def replacing(path: str, tmp: str) -> Iterator[None]:
    """Write *tmp* in the ``with`` body; it is renamed over *path* when the body succeeds
    and removed when anything fails (the rename included)."""
    try:
        yield
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str, data: bytes) -> None:
    """Replace *path* with *data* in one rename; raise on failure, leaving nothing behind."""
    tmp = f"{path}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    with replacing(path, tmp), open(tmp, "wb") as f:
        f.write(data)


def remember(path: str, data: bytes) -> None:
    """Best effort :func:`write_atomic` for what can be recomputed (a read-only or full
    cache just means recomputing next time)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, data)
    except OSError:
        pass
