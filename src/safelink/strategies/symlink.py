"""Symlink: absolute links into the cache. Explicit only: cleaning the cache breaks them."""

from __future__ import annotations

import os
from typing import ClassVar

TYPE_CHECKING = False  # DirPair is only an annotation here (no import cycle)
if TYPE_CHECKING:
    from . import DirPair


class SymlinkStrategy:
    name: ClassVar[str] = "symlink"
    shares_inode: ClassVar[bool] = False
    isolated: ClassVar[bool] = False

    def link(self, pair: DirPair, src: str, dst: str, executable: bool) -> None:
        os.symlink(pair.src_root + os.sep + src, pair.dst(dst), dir_fd=pair.dst_fd)
