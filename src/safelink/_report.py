"""What an install did, for people (one line) and for tools (JSON)."""

from __future__ import annotations

from ._dataclass import asdict, dataclass, field
from ._policy import Fallback

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import Any


@dataclass
class InstalledWheel:
    name: str
    version: str
    filename: str
    sha256: str
    files: int
    admitted: bool
    """True if this install unpacked the wheel into the cache (a cold cache)."""
    replaced: str | None = None
    """Version of the distribution this install replaced, if any."""


@dataclass
class InstallReport:
    """The outcome of :func:`safelink.install`."""

    target: str
    wheels: list[InstalledWheel] = field(default_factory=list)
    files_by_mode: dict[str, int] = field(default_factory=dict)
    fallbacks: list[Fallback] = field(default_factory=list)
    healed: list[str] = field(default_factory=list)
    """Cached files found modified (written through a hardlink) and restored first."""
    relinked: int = 0
    fresh_files: int = 0
    """Files written new for this target (scripts, RECORD, metadata, bytecode)."""
    link_mode: str = ""
    """The mode chosen for this install (``auto`` resolves to one of the others)."""
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def files(self) -> int:
        return sum(self.files_by_mode.values()) + self.fresh_files

    @property
    def seconds(self) -> float:
        return self.timings.get("total", 0.0)

    def summary(self) -> str:
        n = len(self.wheels)
        modes = dict(self.files_by_mode)
        if self.fresh_files:
            modes["written"] = self.fresh_files
        parts = ", ".join(f"{k} {v:,}" for k, v in sorted(modes.items(), key=lambda kv: -kv[1]))
        line = (
            f"Installed {n} wheel{'s' if n != 1 else ''} into {self.target}, {self.files:,} files "
            f"in {self.seconds:.2f} s ({parts})"
        )
        if self.healed:
            line += f"; healed {len(self.healed)} modified cache file(s)"
        return line

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = asdict(self)
        d["files"] = self.files
        d["summary"] = self.summary()
        return d


def change_line(name: str, old: str | None, new: str | None) -> str:
    """The line ``install`` and ``sync`` print per distribution, like uv's: `` + name==new``
    (added), `` - name==old`` (removed) or `` ~ name old -> new`` (replaced). Names and
    versions can come from an environment's ``.dist-info`` names: they are escaped."""
    from ._names import shown

    if old is None:
        return f" + {shown(name)}=={shown(new or '')}"
    if new is None:
        return f" - {shown(name)}=={shown(old)}"
    return f" ~ {shown(name)} {shown(old)} -> {shown(new)}"
