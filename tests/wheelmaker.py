"""Build wheels in tests, including broken and hostile ones.

``make_wheel(dir, "demo", "1.0", files={...})`` writes a valid wheel whose
RECORD matches; keyword arguments let a test break any part of it on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import stat
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    directory: Path,
    name: str = "demo",
    version: str = "1.0",
    files: Mapping[str, bytes] | None = None,
    *,
    tag: str = "py3-none-any",
    purelib: bool = True,
    entry_points: str | None = None,
    filename: str | None = None,
    dist_info: str | None = None,
    record: str | None = None,
    record_filter: Callable[[list[tuple[str, str, str]]], list[tuple[str, str, str]]] | None = None,
    extra_members: Mapping[str, bytes] | None = None,
    modes: Mapping[str, int] | None = None,
    raw_infos: list[tuple[zipfile.ZipInfo, bytes]] | None = None,
) -> Path:
    """Write a wheel and return its path.

    *files* maps archive names to contents (default: one module ``<name>.py``).
    *extra_members* are added to the zip but not to RECORD. *record_filter*
    edits RECORD rows; *record* replaces RECORD text entirely. *modes* sets
    Unix mode bits (e.g. ``stat.S_IFLNK | 0o777`` for a symlink member).
    *raw_infos* adds members with hand-made ZipInfo objects.
    """
    mod = name.replace("-", "_")
    if files is None:
        files = {f"{mod}.py": f"VALUE = {version!r}\n".encode()}
    di = dist_info or f"{mod}-{version}.dist-info"
    members: dict[str, bytes] = dict(files)
    members.setdefault(
        f"{di}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    members.setdefault(
        f"{di}/WHEEL",
        (
            "Wheel-Version: 1.0\nGenerator: wheelmaker\n"
            f"Root-Is-Purelib: {str(purelib).lower()}\nTag: {tag}\n"
        ).encode(),
    )
    if entry_points is not None:
        members[f"{di}/entry_points.txt"] = entry_points.encode()
    rows = [(p, record_hash(d), str(len(d))) for p, d in members.items()]
    if record_filter is not None:
        rows = record_filter(rows)
    record_name = f"{di}/RECORD"
    if record is None:
        record = "".join(f"{p},{h},{s}\n" for p, h, s in rows) + f"{record_name},,\n"
    fname = filename or f"{mod}-{version}-{tag}.whl"
    path = Path(directory) / fname
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, d in members.items():
            info = zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = (modes or {}).get(p, stat.S_IFREG | 0o644)
            info.external_attr = mode << 16
            info.create_system = 3
            zf.writestr(info, d)
        for p, d in (extra_members or {}).items():
            zf.writestr(p, d)
        for info, d in raw_infos or []:
            zf.writestr(info, d)
        zf.writestr(record_name, record)
    return path
