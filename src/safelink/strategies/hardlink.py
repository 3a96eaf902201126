"""Hardlink: one ``link()`` per file; fastest, but the installed file *is* the cached one.

Only safe with the guard (see :mod:`safelink._guard`): cached files are
read-only with a fixed mtime, and are checked before being handed on.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # DirPair is only an annotation here (no import cycle)
if TYPE_CHECKING:
    from . import DirPair

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import ClassVar


class HardlinkStrategy:
    name: ClassVar[str] = "hardlink"
    shares_inode: ClassVar[bool] = True
    isolated: ClassVar[bool] = False

    def link(self, pair: DirPair, src: str, dst: str, executable: bool) -> None:
        if pair.src_fd is None:  # no dir_fd calls (Windows)
            os.link(pair.src(src), pair.dst(dst))
            return
        os.link(src, dst, src_dir_fd=pair.src_fd, dst_dir_fd=pair.dst_fd, follow_symlinks=False)
