"""The link-strategy protocol (see :mod:`safelink.strategies`).

Its own module because ``Protocol`` needs ``typing`` at run time, and an install
(which only calls strategies) does not otherwise import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from . import DirPair


@runtime_checkable
class Strategy(Protocol):
    """How to put one cached file into an environment.

    ``name`` selects it on the command line. ``shares_inode`` is true when the
    installed file *is* the cached file (a hardlink): writes through it would
    reach the cache, so the guard applies. ``isolated`` is true when nothing
    done to the installed file can reach the cache (clone, copy).
    """

    name: ClassVar[str]
    shares_inode: ClassVar[bool]
    isolated: ClassVar[bool]

    def link(self, pair: DirPair, src: str, dst: str, executable: bool) -> None:
        """Create *dst* (relative to ``pair.dst_fd``) from *src* (relative to ``pair.src_fd``).

        Must create *dst* exclusively (never write through an existing file),
        leave no partial *dst* on failure, and raise ``OSError`` with the errno
        of the underlying failure.
        """
        ...
