"""Link strategies: one small protocol, a registry, and the built-in modes.

A strategy puts one cached file at one destination. It gets directory file
descriptors (opened once per scheme) and names relative to them, so the hot
loop does no path building. A strategy raises ``OSError`` when it cannot do
the job; the caller decides whether to fall back (see :mod:`safelink._link`).

Third parties register a strategy through the ``safelink.strategies`` entry
point group; the entry point names a class (or instance) implementing
:class:`Strategy`, selectable with ``--link-mode NAME``.
"""

from __future__ import annotations

import os

from .._dataclass import dataclass

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from ._protocol import Strategy

DIR_FD = {os.open, os.link, os.stat, os.mkdir, os.unlink, os.symlink} <= os.supports_dir_fd
"""POSIX: the hot loop works on names relative to directory descriptors. Windows has
no ``*at`` calls: there the descriptors are ``None`` and strategies join paths."""


@dataclass(frozen=True)
class DirPair:
    """A cache directory and a target directory, each opened once (``None``: no dir_fd)."""

    src_root: str
    src_fd: int | None
    dst_root: str
    dst_fd: int | None

    def src(self, name: str) -> str:
        """*name* as the ``os`` calls need it with ``dir_fd=self.src_fd``."""
        return name if self.src_fd is not None else os.path.join(self.src_root, name)

    def dst(self, name: str) -> str:
        return name if self.dst_fd is not None else os.path.join(self.dst_root, name)


def open_dir(path: str) -> int | None:
    """A descriptor for *path* to use as ``dir_fd`` (``None`` where the OS has none)."""
    return os.open(path, os.O_RDONLY) if DIR_FD else None


def close_dir(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


_REGISTRY: dict[str, Strategy] = {}
_PLUGINS_LOADED = False


def register(strategy: Strategy, *, replace: bool = False) -> None:
    """Make *strategy* selectable by its name."""
    if strategy.name in _REGISTRY and not replace:
        raise ValueError(f"a link strategy named {strategy.name!r} is already registered")
    _REGISTRY[strategy.name] = strategy


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="safelink.strategies"):
        if ep.name in _REGISTRY:
            continue
        obj = ep.load()
        strategy = obj() if isinstance(obj, type) else obj
        from ._protocol import Strategy

        if not isinstance(strategy, Strategy):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a safelink Strategy")
        _REGISTRY[ep.name] = strategy


def get(name: str) -> Strategy:
    """The strategy registered as *name* (built-ins first, then plugins)."""
    _ensure_builtins()
    if name not in _REGISTRY:
        _load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        from ..errors import SafelinkError

        raise SafelinkError(
            f"unknown link mode {name!r}",
            f"choose one of: auto, {', '.join(names())}",
        ) from None


def names() -> list[str]:
    _ensure_builtins()
    _load_plugins()
    return list(_REGISTRY)


def __getattr__(name: str) -> object:
    # the protocol lives in its own module: only plugin checks and type checkers need
    # it, and it needs typing, which an install does not otherwise import
    if name == "Strategy":
        from ._protocol import Strategy

        return Strategy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _ensure_builtins() -> None:
    if "copy" in _REGISTRY:
        return
    from .clone import CloneStrategy
    from .copy import CopyStrategy
    from .hardlink import HardlinkStrategy
    from .symlink import SymlinkStrategy

    for s in (CloneStrategy(), HardlinkStrategy(), CopyStrategy(), SymlinkStrategy()):
        _REGISTRY.setdefault(s.name, s)


__all__ = ["DIR_FD", "DirPair", "Strategy", "close_dir", "get", "names", "open_dir", "register"]
