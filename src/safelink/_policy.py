"""The link policy: which mode, what after a failure, and what to tell the user.

Everything that decides between link modes lives here, as data and small pure
functions, so it can be read (and tested as tables) in one place:

* the **ladder**: after which mode comes which (:data:`LADDER`, :func:`ladder`);
* the **decision** for a (cache, target) pair: ``auto`` picks from the probe,
  an explicit mode is checked against it, and a cache the probe cannot write
  (read-only, full, another user's, a file where its scratch directory should
  be) still gives an answer (:func:`decide`). :func:`safelink.install` and the
  installer destination both call it;
* the **errno classification** of a failed link: switch mode, give the cached
  file a fresh inode, move an existing file aside, refuse, or let the error
  through (:func:`classify`, :func:`step`);
* the **texts**: the warnings and hints each of those produce
  (:func:`fallback_warning`, :func:`link_failed`, the decision's warnings).

Errors keep their errno as a number (:attr:`Fallback.errno`,
``LinkFailed.errno``); no message is ever parsed to decide anything.
The link loop (:mod:`safelink._link`) only carries out what this module says.
"""

from __future__ import annotations

import enum
import errno
import os
from collections.abc import Sequence

from . import strategies
from ._dataclass import dataclass, field
from ._guard import Guard, hardlink_allowed
from .errors import LinkFailed
from .strategies.probe import ProbeResult, describe_errno, probe

# -- the ladder ---------------------------------------------------------------------------------

LADDER: dict[str, tuple[str, ...]] = {
    "clone": ("clone", "hardlink", "copy"),
    "hardlink": ("hardlink", "copy"),
    "copy": ("copy",),
    "symlink": ("symlink", "copy"),
}
"""The modes tried in order, per starting mode. A plugin's mode falls back to copy."""


def ladder(mode: str, *, hardlink_allowed: bool = True) -> tuple[str, ...]:
    """The modes to try in order, starting with *mode* (hardlink left out when not allowed)."""
    chain = LADDER.get(mode, (mode, "copy"))
    if not hardlink_allowed:
        chain = tuple(m for m in chain if m != "hardlink")
    return chain


def choose(result: ProbeResult, *, hardlink_allowed: bool = True) -> str:
    """``auto``: clone where it works, else a guarded hardlink, else copy."""
    if result.works("clone"):
        return "clone"
    if hardlink_allowed and result.works("hardlink"):
        return "hardlink"
    return "copy"


# -- errno classification -----------------------------------------------------------------------


class Action(enum.Enum):
    """What the link loop does after a mode failed for one file."""

    SWITCH = "switch"
    """The mode cannot work here: move on to the next mode of the ladder, for every file."""
    FRESH_INODE = "fresh inode"
    """The cached file has too many links (EMLINK): give it a new inode, then link that."""
    DISPLACE = "displace"
    """Something already sits at the destination: move it aside (never write through it)."""
    REFUSE = "refuse"
    """The mode cannot work and there is no next one (or fallback is not allowed): LinkFailed."""
    RAISE = "raise"
    """Not a link-mode problem (no space, no permission on the target, I/O): the error stands."""


STRUCTURAL = frozenset(
    {
        errno.EXDEV,
        errno.EOPNOTSUPP,
        errno.ENOTSUP,
        errno.ENOTTY,
        errno.EPERM,
        errno.EINVAL,
        errno.ENOSYS,
        errno.EMLINK,
    }
)
"""Errors that say "this mode can't work here", not "this file is bad"."""


def classify(code: int | None, *, shares_inode: bool) -> Action:
    """The action for errno *code* from a mode (``shares_inode``: a hardlink-like mode)."""
    if code == errno.EEXIST:
        return Action.DISPLACE
    if code == errno.EMLINK and shares_inode:
        return Action.FRESH_INODE
    if code in STRUCTURAL:
        return Action.SWITCH
    return Action.RAISE


def step(
    chain: Sequence[str],
    level: int,
    code: int | None,
    *,
    shares_inode: bool,
    allow_fallback: bool,
) -> tuple[Action, int]:
    """After ``chain[level]`` failed with errno *code*: the action, and the level to retry at.

    ``SWITCH`` moves one rung down the ladder; at the last rung, or when
    fallback is not allowed, a switch becomes ``REFUSE``.
    """
    action = classify(code, shares_inode=shares_inode)
    if action is Action.SWITCH:
        if not allow_fallback or level + 1 >= len(chain):
            return Action.REFUSE, level
        return Action.SWITCH, level + 1
    return action, level


# -- the decision for a (cache, target) pair ----------------------------------------------------


@dataclass
class Decision:
    mode: str
    chain: tuple[str, ...]
    allow_fallback: bool
    warnings: list[str] = field(default_factory=list)


def decide(
    cache_root: str,
    cache_base: str,
    target_dir: str,
    link_mode: str,
    *,
    guard: Guard,
    owner_root: str,
    allow_fallback: bool | None,
) -> Decision:
    """Resolve *link_mode* for files going from the cache into *target_dir*.

    Probes once per filesystem pair (see :mod:`safelink.strategies.probe`).
    *owner_root* is what ``--guard strict`` checks the owner of (the
    environment). An unknown mode, an explicit mode that cannot work without
    fallback, and hardlinks refused by ``--guard strict`` raise
    :class:`~safelink.errors.LinkFailed` (or ``SafelinkError``) before
    anything is written.

    When the probe cannot run (it writes a trial file into the cache, which
    may be read-only, full or not ours), ``auto`` still has an answer: on one
    filesystem it tries clone, then hardlink, then copy on the first file
    (the link loop falls back and reports each switch); across filesystems it
    copies. An explicit mode is then used as asked, with its ladder.
    """
    if link_mode != "auto":
        strategies.get(link_mode)  # an unknown name fails here, with the list of modes
    allowed = hardlink_allowed(guard, cache_base, owner_root)
    fallback = allow_fallback if allow_fallback is not None else link_mode == "auto"
    if link_mode == "hardlink" and not allowed:
        raise LinkFailed(
            "--guard strict refuses hardlinks here: the cache or the target is not owned by you",
            "use --link-mode copy or a --guard other than strict",
        )
    probes = link_mode == "auto" or (link_mode in LADDER and link_mode != "copy")
    result: ProbeResult | None = None
    why = ""
    if probes:
        try:
            result = probe(cache_root, target_dir)
        except OSError as exc:
            why = describe_errno(exc)
    if link_mode == "auto":
        if result is None:
            return _unprobed_auto(cache_root, cache_base, target_dir, allowed, why)
        mode = choose(result, hardlink_allowed=allowed)
        d = Decision(mode, ladder(mode, hardlink_allowed=allowed), fallback)
        if mode == "copy" and not result.same_filesystem:
            d.warnings.append(
                f"the cache ({cache_base}) and the target ({target_dir}) are on different "
                "filesystems, so every file is copied; put the cache on the target's filesystem "
                "(SAFELINK_CACHE_DIR=<dir there>) or a satellite cache there "
                "(SAFELINK_SATELLITES=<dir there>) to link instead"
            )
        return d
    chain = ladder(link_mode, hardlink_allowed=allowed)
    d = Decision(link_mode, chain, fallback)
    error = result.modes.get(link_mode) if result is not None else None
    if result is not None and error is not None:
        works = next((m for m in chain[1:] if result.works(m)), "copy")
        if not fallback:
            raise LinkFailed(
                f"link mode {link_mode!r} cannot work from the cache ({cache_base}) "
                f"to {target_dir}: {error}",
                f"use --link-mode {works}, or --allow-fallback",
            )
        d.mode = works
        d.chain = chain[chain.index(works) :]
        d.warnings.append(f"{link_mode} cannot work here ({error}); using {works}")
    if d.mode == "symlink":
        d.warnings.append(
            f"files are symlinks into the cache at {cache_base}: cleaning the cache breaks "
            "this environment"
        )
    return d


def _unprobed_auto(
    cache_root: str, cache_base: str, target_dir: str, allowed: bool, why: str
) -> Decision:
    try:
        same = os.stat(cache_root).st_dev == os.stat(target_dir).st_dev
    except OSError:
        same = False
    mode = "clone" if same else "copy"
    d = Decision(mode, ladder(mode, hardlink_allowed=allowed), True)
    d.warnings.append(
        f"cannot probe link modes in the cache at {cache_base} ({why}); "
        + ("trying each mode on the first file" if same else "copying every file")
    )
    return d


# -- what happened, and what to tell the user ---------------------------------------------------


@dataclass
class Fallback:
    """One switch from a failing mode to the next one."""

    from_mode: str
    to_mode: str
    error: str
    """The failure as people read it (``"EXDEV: Invalid cross-device link"``)."""
    path: str
    errno: int | None = None
    """The failure as code reads it."""


def fallback(failed: str, to_mode: str, exc: OSError, path: str) -> Fallback:
    return Fallback(failed, to_mode, describe_errno(exc), path, exc.errno)


_CANNOT = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS})


def fallback_warning(fb: Fallback, cache_base: str) -> str:
    """The one warning line for a switch, with what the user can do about it."""
    hint = ""
    if fb.errno == errno.EXDEV:
        hint = (
            f"; the cache ({cache_base}) is on another filesystem: put it on the same one, "
            "e.g. SAFELINK_CACHE_DIR=<dir on the target's filesystem>"
        )
    elif fb.errno in _CANNOT:
        hint = "; this filesystem cannot do it"
    elif fb.errno == errno.EPERM:
        hint = "; the kernel refused (fs.protected_hardlinks or permissions)"
    return f"{fb.from_mode} failed ({fb.error}) at {fb.path}; fell back to {fb.to_mode}{hint}"


def link_failed(failed: str, exc: OSError, path: str) -> LinkFailed:
    """The error for a mode that cannot work when there is no next mode to try."""
    message = f"link mode {failed!r} failed for {path}: {describe_errno(exc)}"
    if failed == "hardlink" and exc.errno == errno.EPERM:
        why = (
            "fs.protected_hardlinks=1 forbids hardlinking files you do not own"
            if _protected_hardlinks()
            else "the cached files are not yours to hardlink"
        )
        return LinkFailed(
            message, f"{why}; use --link-mode copy or --allow-fallback", errno=exc.errno
        )
    hint = "use --link-mode copy or --allow-fallback" if failed != "copy" else None
    return LinkFailed(message, hint, errno=exc.errno)


def _protected_hardlinks() -> bool:
    try:
        with open("/proc/sys/fs/protected_hardlinks", encoding="ascii") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


__all__ = [
    "LADDER",
    "STRUCTURAL",
    "Action",
    "Decision",
    "Fallback",
    "choose",
    "classify",
    "decide",
    "fallback",
    "fallback_warning",
    "ladder",
    "link_failed",
    "step",
]
