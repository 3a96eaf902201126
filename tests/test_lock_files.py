"""Lock files can be deleted (``cache clean``, a refused wheel) without two processes
ever holding "the" lock of one path."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from safelink._lock import discard, file_lock


def test_a_lock_file_deleted_under_a_waiter_is_never_held_twice(tmp_path: Path) -> None:
    path = str(tmp_path / "entry.lock")
    inside: list[tuple[str, float, float]] = []

    def hold(who: str, seconds: float) -> None:
        with file_lock(path):
            start = time.monotonic()
            time.sleep(seconds)
            inside.append((who, start, time.monotonic()))

    with file_lock(path):
        waiter = threading.Thread(target=hold, args=("waiter", 0.05))
        waiter.start()
        time.sleep(0.2)  # it waits on the file that is about to lose its name
        assert discard(path, held=True)
    hold("newcomer", 0.4)  # locks a new file at once
    waiter.join()
    (_, _, a1), (_, b0, _) = sorted(inside, key=lambda r: r[1])
    assert a1 <= b0, inside  # one after the other, never both at once
    assert discard(path)  # nobody holds it now
    assert not Path(path).exists()


def test_a_held_lock_file_is_not_discarded(tmp_path: Path) -> None:
    path = str(tmp_path / "entry.lock")
    with file_lock(path, shared=True):
        assert not discard(path)
    assert Path(path).exists()
