"""safelink: install wheels from an unpacked-wheel cache by linking, safely.

The public API. Everything in modules whose names start with ``_`` is private.
"""

from __future__ import annotations

from ._cache import Cache, Entry
from ._environment import Target, resolve_target
from ._guard import Guard
from ._install import Progress, install
from ._link import Fallback
from ._report import InstalledWheel, InstallReport
from ._uninstall import Installed, uninstall
from .errors import (
    CacheCorrupt,
    EnvironmentBusy,
    IncompatibleWheel,
    InvalidWheel,
    LinkFailed,
    NotInstalled,
    SafelinkError,
    TargetError,
    UnsafeWheel,
    WheelTooLarge,
)
from .strategies import Strategy, register

__version__ = "0.1.0"

LINK_MODES = ("auto", "clone", "hardlink", "copy", "symlink")
"""Built-in link modes; plugins add more (see :mod:`safelink.strategies`)."""

__all__ = [
    "LINK_MODES",
    "Cache",
    "CacheCorrupt",
    "Entry",
    "EnvironmentBusy",
    "Fallback",
    "Guard",
    "IncompatibleWheel",
    "InstallReport",
    "Installed",
    "InstalledWheel",
    "InvalidWheel",
    "LinkFailed",
    "NotInstalled",
    "Progress",
    "SafelinkError",
    "Strategy",
    "Target",
    "TargetError",
    "UnsafeWheel",
    "WheelTooLarge",
    "install",
    "register",
    "resolve_target",
    "uninstall",
]
