"""Test hooks: named crash points that the crash tests use to ``kill -9`` safelink.

``SAFELINK_TEST_CRASH=<point>`` or ``<point>:<n>`` makes the process SIGKILL itself the
n-th time (default: first) it passes ``crash_point("<point>")``. Unset (always, in real
use) a crash point costs one global test. The variable is read once, at import.

Points (see tests/test_crash.py):

* admission: ``admit-mid`` (after each member), ``admit-before-plan``, ``admit-before-rename``
* install: ``journal-written`` (temp journal not yet renamed), ``install-after-stash``,
  ``link-after`` (after each linked file), ``install-after-link``, ``fresh-written``
  (a script/metadata/RECORD temp file not yet renamed), ``before-record``, ``finalized``
  (after each wheel), ``before-commit``, ``commit-mid``
* uninstall: ``uninstall-mid`` (after each file moved aside), ``uninstall-before-commit``
* recovery: ``restore-mid`` (after each file moved back from the stash)
"""

from __future__ import annotations

import os

_SPEC = os.environ.get("SAFELINK_TEST_CRASH") or None
_NAME, _, _n = (_SPEC or "").partition(":")
_AT = int(_n) if _n.isascii() and _n.isdigit() else 1
_hits = 0


def crash_point(name: str) -> None:
    """Let the crash tests kill this process at a named point (never set in real use)."""
    global _hits
    if _SPEC is None or name != _NAME:
        return
    _hits += 1
    if _hits >= _AT:
        os.kill(os.getpid(), 9)


def crash_armed(name: str) -> bool:
    """Is the crash-test hook set for *name*? (Lets callers skip test-only wrappers.)"""
    return _SPEC is not None and name == _NAME
