"""Guard levels: how hard safelink works to keep shared inodes from poisoning the cache.

* ``off``    - no check before linking (what other installers do).
* ``check``  - the default: one ``stat`` per cached file before it is handed on;
  a file whose size or mtime moved was written through a hardlink, so it is
  restored from the wheel first. Catches editors, patches, appends and
  truncations; a same-size write followed by ``os.utime`` back to the old mtime
  is only caught by ``safelink verify`` (which re-hashes).
* ``strict`` - ``check``, and hardlinks only where the cache and the target both
  belong to the current user, so nobody else's environment shares inodes with
  yours (elsewhere: clone, or copy).
"""

from __future__ import annotations

import enum
import os


class Guard(str, enum.Enum):
    OFF = "off"
    CHECK = "check"
    STRICT = "strict"


def hardlink_allowed(guard: Guard, cache_root: str, target_root: str) -> bool:
    if guard is not Guard.STRICT or not hasattr(os, "getuid"):
        return True
    uid = os.getuid()
    for path in (cache_root, target_root):
        try:
            if os.stat(path).st_uid != uid:
                return False
        except OSError:
            return False
    return True
