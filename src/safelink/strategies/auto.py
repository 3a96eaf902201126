"""The ``auto`` policy: the safest fast mode for a (cache, target) pair.

Order: clone where it works (isolated and fast); otherwise a guarded hardlink
where both sides are on one filesystem (and, with ``--guard strict``, only
where no other user's environment can share the inodes); otherwise copy.
"""

from __future__ import annotations

from .probe import ProbeResult

FALLBACK_CHAIN = {
    "clone": ("clone", "hardlink", "copy"),
    "hardlink": ("hardlink", "copy"),
    "copy": ("copy",),
    "symlink": ("symlink", "copy"),
}


def choose(result: ProbeResult, *, hardlink_allowed: bool = True) -> str:
    if result.works("clone"):
        return "clone"
    if hardlink_allowed and result.works("hardlink"):
        return "hardlink"
    return "copy"


def chain_for(mode: str, *, hardlink_allowed: bool = True) -> tuple[str, ...]:
    """The modes to try in order, starting with *mode*."""
    chain = FALLBACK_CHAIN.get(mode, (mode, "copy"))
    if not hardlink_allowed:
        chain = tuple(m for m in chain if m != "hardlink")
    return chain
