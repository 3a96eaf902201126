"""safelink: install wheels from an unpacked-wheel cache by linking, safely.

The public API. Everything in modules whose names start with ``_`` is private.
Names are imported lazily (PEP 562) so that ``python -m safelink`` and
``import safelink`` pay only for what they use: start-up time is part of
every install.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

LINK_MODES = ("auto", "clone", "hardlink", "copy", "symlink")
"""Built-in link modes; plugins add more (see :mod:`safelink.strategies`)."""

_EXPORTS = {
    "Cache": "._cache",
    "Entry": "._cache",
    "Target": "._environment",
    "resolve_target": "._environment",
    "Guard": "._guard",
    "Progress": "._progress",
    "ProgressCallback": "._progress",
    "install": "._install",
    "Fallback": "._policy",
    "InstalledWheel": "._report",
    "InstallReport": "._report",
    "Installed": "._uninstall",
    "Change": "._sync",
    "SyncReport": "._sync",
    "install_lock": "._sync",
    "sync": "._sync",
    "uninstall": "._uninstall",
    "CacheCorrupt": ".errors",
    "DownloadFailed": ".errors",
    "InvalidLock": ".errors",
    "EnvironmentBusy": ".errors",
    "IncompatibleWheel": ".errors",
    "InvalidWheel": ".errors",
    "LinkFailed": ".errors",
    "NotInstalled": ".errors",
    "SafelinkError": ".errors",
    "TargetError": ".errors",
    "UnsafeWheel": ".errors",
    "WheelTooLarge": ".errors",
    "Strategy": ".strategies",
    "register": ".strategies",
}

__all__ = [
    "LINK_MODES",
    "Cache",
    "CacheCorrupt",
    "Change",
    "DownloadFailed",
    "Entry",
    "EnvironmentBusy",
    "Fallback",
    "Guard",
    "IncompatibleWheel",
    "InstallReport",
    "Installed",
    "InstalledWheel",
    "InvalidLock",
    "InvalidWheel",
    "LinkFailed",
    "NotInstalled",
    "Progress",
    "ProgressCallback",
    "SafelinkError",
    "Strategy",
    "SyncReport",
    "Target",
    "TargetError",
    "UnsafeWheel",
    "WheelTooLarge",
    "install",
    "install_lock",
    "register",
    "resolve_target",
    "sync",
    "uninstall",
]

if TYPE_CHECKING:
    from ._cache import Cache, Entry
    from ._environment import Target, resolve_target
    from ._guard import Guard
    from ._install import install
    from ._policy import Fallback
    from ._progress import Progress, ProgressCallback
    from ._report import InstalledWheel, InstallReport
    from ._sync import Change, SyncReport, install_lock, sync
    from ._uninstall import Installed, uninstall
    from .errors import (
        CacheCorrupt,
        DownloadFailed,
        EnvironmentBusy,
        IncompatibleWheel,
        InvalidLock,
        InvalidWheel,
        LinkFailed,
        NotInstalled,
        SafelinkError,
        TargetError,
        UnsafeWheel,
        WheelTooLarge,
    )
    from .strategies import Strategy, register


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'safelink' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
