"""``kill -9`` at random moments, not only at named points.

Each round starts a real ``safelink`` process, kills it after a random delay (half
of the rounds count from the start, half from the moment its journal appears, so
many kills land inside the transaction), then lets the next run recover. After
every round the environment must be exactly as before or exactly the completed
result, and what the recovering run said must match: "rolled back ..." for the
first, "completed ..." (or nothing: the dead run had finished) for the second,
nothing at all when nothing had begun.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import safelink
from conftest import site_packages, tree
from safelink import _log
from test_crash import demo_wheel, no_transaction_left

Tree = dict[str, tuple[str, int, bytes | str]]


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("SAFELINK_STATE_DIR", str(d))
    return d


@pytest.fixture
def said() -> Iterator[list[str]]:
    """Warnings of in-process safelink calls."""
    lines: list[str] = []
    previous = _log.sink
    _log.sink = lines.append
    yield lines
    _log.sink = previous


def journal_seen(venv: Path) -> bool:
    """Is a journal (not just a journal being written) in the environment's root?"""
    return any(n.startswith(".safelink-journal") and ".json." not in n for n in os.listdir(venv))


def run_and_kill(argv: list[str], venv: Path, delay: float, after_journal: bool) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "safelink", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if after_journal:
        deadline = time.monotonic() + 30
        while proc.poll() is None and not journal_seen(venv) and time.monotonic() < deadline:
            time.sleep(0.0005)
    time.sleep(delay)
    proc.kill()
    proc.wait()


def timed(argv: list[str], venv: Path) -> tuple[float, float]:
    """(seconds until the journal appears, seconds it exists) for one uninterrupted run."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "safelink", *argv])
    appeared = gone = None
    while proc.poll() is None:
        now = time.monotonic()
        seen = journal_seen(venv)
        if seen and appeared is None:
            appeared = now
        if not seen and appeared is not None and gone is None:
            gone = now
        time.sleep(0.0005)
    assert proc.returncode == 0
    end = time.monotonic()
    appeared = appeared or end
    return appeared - t0, max((gone or end) - appeared, 0.01)


def rounds(
    venv: Path,
    argv: list[str],
    before: Tree,
    after: Tree,
    reset: Callable[[], None],
    said: list[str],
    what: str,
    n: int,
    seed: int,
) -> Counter[str]:
    start, window = timed(argv, venv)
    assert tree(venv) == after
    reset()
    assert tree(venv) == before
    rng = random.Random(seed)
    seen: Counter[str] = Counter()
    for i in range(n):
        after_journal = i % 2 == 1
        if after_journal:
            delay = rng.uniform(0, window * 1.2)
        else:
            delay = rng.uniform(start * 0.5, start + window)
        run_and_kill(argv, venv, delay, after_journal)
        pending = journal_seen(venv)  # the dead run left a transaction to finish or undo
        said.clear()
        safelink.uninstall([], venv)  # any safelink run on the environment recovers first
        now = tree(venv)
        assert no_transaction_left(venv)
        assert now in (before, after), f"round {i}: neither before nor after ({delay:.3f} s)"
        assert len(said) == int(pending), (pending, said)
        message = said[0] if said else ""
        if now == before:
            assert message in ("", f"rolled back an interrupted {what} in {venv}"), message
            seen["rolled back" if message else "untouched"] += 1
        else:
            assert message in ("", f"completed an interrupted {what} in {venv}"), message
            seen["completed" if message else "finished"] += 1
            reset()
            assert tree(venv) == before
    assert seen["rolled back"] + seen["completed"] > 0, seen
    return seen


def test_random_kills_while_replacing(tmp_path: Path, new_venv: Path, said: list[str]) -> None:
    cache = tmp_path / "cache"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    v1 = demo_wheel(tmp_path / "a", "1.0", modules=60)
    v2 = demo_wheel(tmp_path / "b", "2.0", modules=150)
    safelink.install([v2], new_venv, cache=cache)
    after = tree(new_venv)
    safelink.install([v1], new_venv, cache=cache)
    before = tree(new_venv)

    def reset() -> None:
        safelink.install([v1], new_venv, cache=cache)

    argv = ["install", "--cache-dir", str(cache), "--python", str(new_venv), "--threads", "1"]
    rounds(new_venv, [*argv, str(v2)], before, after, reset, said, "install of demo 2.0", 20, 12)


def test_random_kills_while_uninstalling(tmp_path: Path, new_venv: Path, said: list[str]) -> None:
    cache = tmp_path / "cache"
    bare = tree(new_venv)
    v1 = demo_wheel(tmp_path, "1.0", modules=150)

    def reset() -> None:
        safelink.install([v1], new_venv, cache=cache)

    reset()
    installed = tree(new_venv)
    argv = ["uninstall", "--python", str(new_venv), "demo"]
    rounds(new_venv, argv, installed, bare, reset, said, "uninstall of demo 1.0", 14, 13)
    assert (site_packages(new_venv) / "demo-1.0.dist-info").is_dir()
