"""The link-mode policy: which mode to use for a (cache, target) pair, and what next.

``auto`` order: clone where it works (isolated and fast); otherwise a guarded
hardlink where both sides are on one filesystem (and, with ``--guard strict``,
only where no other user's environment can share the inodes); otherwise copy.

An explicit mode is checked against the same probe before anything is
written: if it cannot work here, that is a one-line error naming the mode
that would, unless fallback is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import LinkFailed
from .probe import ProbeResult, probe

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
    hardlink_allowed: bool,
    allow_fallback: bool | None,
) -> Decision:
    """Resolve *link_mode* for this pair of directories (probing once per filesystem pair)."""
    fallback = allow_fallback if allow_fallback is not None else link_mode == "auto"
    if link_mode == "auto":
        result = probe(cache_root, target_dir)
        mode = choose(result, hardlink_allowed=hardlink_allowed)
        d = Decision(mode, chain_for(mode, hardlink_allowed=hardlink_allowed), fallback)
        if mode == "copy" and not result.same_filesystem:
            d.warnings.append(
                f"the cache ({cache_base}) and the target ({target_dir}) are on different "
                "filesystems, so every file is copied; put the cache on the target's filesystem "
                "(SAFELINK_CACHE_DIR=<dir there>) to link instead"
            )
        return d
    if link_mode == "hardlink" and not hardlink_allowed:
        raise LinkFailed(
            "--guard strict refuses hardlinks here: the cache or the target is not owned by you",
            "use --link-mode copy or a --guard other than strict",
        )
    chain = chain_for(link_mode, hardlink_allowed=hardlink_allowed)
    d = Decision(link_mode, chain, fallback)
    if link_mode in FALLBACK_CHAIN and link_mode != "copy":
        result = probe(cache_root, target_dir)
        error = result.modes.get(link_mode)
        if error is not None:
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
