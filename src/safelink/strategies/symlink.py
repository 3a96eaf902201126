"""Symlink: absolute links into the cache. Explicit only: cleaning the cache breaks them."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # DirPair is only an annotation here (no import cycle)
if TYPE_CHECKING:
    from . import DirPair

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import ClassVar


class SymlinkStrategy:
    name: ClassVar[str] = "symlink"
    shares_inode: ClassVar[bool] = False
    isolated: ClassVar[bool] = False

    def link(self, pair: DirPair, src: str, dst: str, executable: bool) -> None:
        os.symlink(pair.src_root + os.sep + src, pair.dst(dst), dir_fd=pair.dst_fd)
