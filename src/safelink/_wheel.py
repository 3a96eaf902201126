"""Reading and validating untrusted wheels.

Everything here runs *before* a single byte is written: a wheel is refused
whole if any member name is unsafe, if RECORD and the archive disagree, if a
hash algorithm is weak, or if its metadata does not match its filename. Hashes
and sizes are checked while the members are streamed into the cache (see
:mod:`safelink._cache`), so the data is read only once.
"""

from __future__ import annotations

import re
import stat
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from email.parser import HeaderParser
from itertools import pairwise
from operator import attrgetter

from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

from ._names import (
    REFUSED,
    all_plain,
    check_entry_point_name,
    check_member_name,
    has_control,
    shown,
)
from ._record import MalformedRecord, parse_record, size_of
from .errors import InvalidWheel, UnsafeWheel, WheelTooLarge

SCHEMES = ("purelib", "platlib", "scripts", "headers", "data")
"""The install schemes a wheel's ``.data`` directory may name (PEP 427)."""

ALLOWED_HASHES = frozenset(
    {"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b"}
)
"""RECORD hash algorithms we accept: sha256 or stronger, as PEP 376 and pip require."""

DEFAULT_MAX_UNPACKED = 8 * 1024**3
"""Zip-bomb cap on the declared unpacked size of one wheel (override: ``max_unpacked``)."""

_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
"""Compression methods we decompress. Every real wheel uses these two; refusing the
others (bzip2, lzma, ...) keeps their decoders and error paths out of reach."""

_FLAGS = ((5, "compressed patched data"), (6, "strong encryption"), (13, "an encrypted directory"))
"""General-purpose flag bits no wheel uses; ``zipfile`` cannot read such members."""
_MAX_EXTRACT_VERSION = 63
"""The newest zip format ``zipfile`` reads (6.3)."""
_WHEEL_VERSION = re.compile(r"([0-9]+)(?:\.([0-9]+))?(?:\.[0-9]+)*")

SUPPORTED_WHEEL_VERSION = (1, 0)
"""The wheel format this installer implements: a greater major version is refused at
admission, a greater minor version installs with a warning (the wheel spec's rule)."""


def newer_wheel_version(filename: str, wv: str) -> bool:
    """Check WHEEL's Wheel-Version *wv*, the one place that compares it with
    :data:`SUPPORTED_WHEEL_VERSION`: refuse one that is not a version or has a greater
    major version; True for a greater minor version (the install warns, see
    ``_plan.check_target``, which reads the answer from the plan)."""
    wv_match = _WHEEL_VERSION.fullmatch(wv)
    if wv_match is None:
        raise InvalidWheel(f"{filename}: WHEEL has no valid Wheel-Version (found {wv!r})")
    major, minor = int(wv_match.group(1)), int(wv_match.group(2) or 0)
    if major > SUPPORTED_WHEEL_VERSION[0]:
        raise InvalidWheel(
            f"{filename}: Wheel-Version {wv} is not supported (safelink installs "
            f"{SUPPORTED_WHEEL_VERSION[0]}.x and older)",
            f"use a newer safelink or a wheel built for Wheel-Version {SUPPORTED_WHEEL_VERSION[0]}",
        )
    return (major, minor) > SUPPORTED_WHEEL_VERSION
"""``major.minor``; like pip, ``1`` and ``1.0.0`` are read as 1.0."""

_FILE_KINDS = {
    stat.S_IFLNK: "a symlink",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}

_ENTRY_VALUE = re.compile(
    r"^(?P<module>[\w.]+)\s*(:\s*(?P<attrs>[\w.]+)\s*)?(?P<extras>\[.*\])?\s*$"
)


@dataclass(frozen=True)
class Member:
    """One regular file of the wheel, validated against RECORD."""

    name: str
    """Archive name, a safe relative POSIX path."""
    hash_name: str
    hash_hex: str
    size: int
    executable: bool


@dataclass(frozen=True)
class EntryPoint:
    name: str
    module: str
    attr: str
    section: str  # "console" or "gui"


@dataclass(frozen=True)
class WheelInfo:
    """What validation learned about a wheel; everything the plan needs."""

    filename: str
    name: NormalizedName
    version: Version
    tags: frozenset[Tag]
    dist_info: str
    data_dir: str
    root_is_purelib: bool
    members: tuple[Member, ...]
    entry_points: tuple[EntryPoint, ...]
    requires_python: str = ""
    """METADATA's Requires-Python, checked against the target at install time."""
    wheel_version: str = "1.0"
    newer_wheel_version: bool = False
    """Is *wheel_version* a newer minor version than this installer implements?"""

    @property
    def record_path(self) -> str:
        return f"{self.dist_info}/RECORD"


def _unsafe(filename: str, member: str, why: str) -> UnsafeWheel:
    return UnsafeWheel(f"{shown(filename)}: unsafe member {member!r}: {why}", REFUSED)


def _special_kind(info: zipfile.ZipInfo) -> str | None:
    """What a member's Unix mode says it is, when that is not a file or directory."""
    mode = info.external_attr >> 16
    if info.create_system != 3 or mode == 0:  # not Unix, or no mode: a plain file
        return None
    kind = stat.S_IFMT(mode)
    if kind in (0, stat.S_IFREG, stat.S_IFDIR):
        return None
    return _FILE_KINDS.get(kind, f"an unknown file type (mode {mode:#o})")


def _norm(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def read_wheel(zf: zipfile.ZipFile, filename: str, max_unpacked: int | None) -> WheelInfo:
    """Validate the archive's structure and metadata; return a :class:`WheelInfo`."""
    raw_filename = filename
    filename = shown(filename)  # every message below names the file escaped
    if has_control(raw_filename):
        raise InvalidWheel(
            f"{filename}: the file name contains control characters", "rename the file"
        )
    try:
        name, version, _build, tags = parse_wheel_filename(raw_filename)
    except (InvalidWheelFilename, ValueError) as exc:
        raise InvalidWheel(f"{filename}: not a valid wheel filename: {shown(str(exc))}") from None

    infolist = zf.infolist()
    fast = _read_plain(infolist)
    if fast is not None:
        infos, total = fast
    else:
        infos, total = _read_members(filename, infolist)
    cap = DEFAULT_MAX_UNPACKED if max_unpacked is None else max_unpacked
    if total > cap:
        raise WheelTooLarge(
            f"{filename}: unpacks to {total:,} bytes, more than the cap of {cap:,}",
            "raise it with --max-unpacked-size if the wheel is trusted",
        )

    top = {n.split("/", 1)[0] for n in infos}
    dist_infos = sorted(t for t in top if t.endswith(".dist-info"))
    if len(dist_infos) != 1:
        raise InvalidWheel(
            f"{filename}: expected one .dist-info directory, found {len(dist_infos)}"
        )
    dist_info = dist_infos[0]
    di_name, _, di_version = dist_info[: -len(".dist-info")].rpartition("-")
    try:
        di_ok = canonicalize_name(di_name) == name and Version(di_version) == version
    except ValueError:
        di_ok = False
    if not di_ok:
        raise InvalidWheel(
            f"{filename}: .dist-info directory {dist_info!r} does not match the filename"
        )
    data_dir = dist_info[: -len(".dist-info")] + ".data"

    wheel_meta = _read_text(zf, infos, filename, f"{dist_info}/WHEEL")
    headers = HeaderParser().parsestr(wheel_meta)
    wv = (headers.get("Wheel-Version") or "").strip()
    newer = newer_wheel_version(filename, wv)
    requires_python = _check_metadata(zf, infos, filename, dist_info, name, version)
    purelib = headers.get("Root-Is-Purelib", "").strip().lower() == "true"

    record_path = f"{dist_info}/RECORD"
    record = _read_text(zf, infos, filename, record_path)
    try:
        parsed = parse_record(record)
    except MalformedRecord as exc:
        raise InvalidWheel(f"{filename}: malformed RECORD {exc}") from None
    rows: dict[str, tuple[str, str, int]] = {}
    plain = all_plain([row[0] for row in parsed])  # then no path below can be unsafe
    for path, digest, size_field in parsed:
        if path in rows:
            raise InvalidWheel(f"{filename}: RECORD lists {path!r} twice")
        if not plain:
            check_member_name(filename, path, "RECORD path")
        if path == record_path or path.startswith(f"{dist_info}/RECORD."):
            continue
        algo, sep, hexdigest = digest.partition("=")
        size = size_of(size_field)
        if not sep or not hexdigest or size is None:
            raise InvalidWheel(f"{filename}: RECORD row for {path!r} lacks a hash or size")
        if algo not in ALLOWED_HASHES:
            raise InvalidWheel(
                f"{filename}: RECORD uses weak or unknown hash {algo!r} for {path!r}"
            )
        rows[path] = (algo, hexdigest, size)

    members: list[Member] = []
    for raw, info in infos.items():
        if raw == record_path or raw.startswith(f"{dist_info}/RECORD."):
            continue
        rec = rows.pop(raw, None)
        if rec is None:
            raise InvalidWheel(f"{filename}: member {raw!r} is not listed in RECORD")
        if rec[2] != info.file_size:
            raise InvalidWheel(
                f"{filename}: size of {raw!r} is {info.file_size}, RECORD says {rec[2]}"
            )
        if raw.startswith(data_dir + "/"):
            parts = raw.split("/", 2)
            if len(parts) < 3 or parts[1] not in SCHEMES:
                raise InvalidWheel(f"{filename}: {raw!r} is in an unknown .data scheme")
        mode = info.external_attr >> 16
        executable = bool(mode & 0o111) or raw.startswith(f"{data_dir}/scripts/")
        members.append(Member(raw, rec[0], rec[1], rec[2], executable))
    if rows:
        missing = sorted(rows)[0]
        raise InvalidWheel(f"{filename}: RECORD lists {missing!r}, which is not in the archive")

    eps: tuple[EntryPoint, ...] = ()
    ep_path = f"{dist_info}/entry_points.txt"
    if ep_path in infos:
        eps = parse_entry_points(filename, _read_text(zf, infos, filename, ep_path))
    return WheelInfo(
        filename=raw_filename,
        name=name,
        version=version,
        tags=frozenset(tags),
        dist_info=dist_info,
        data_dir=data_dir,
        root_is_purelib=purelib,
        members=tuple(members),
        entry_points=eps,
        requires_python=requires_python,
        wheel_version=wv,
        newer_wheel_version=newer,
    )



def _read_plain(
    infolist: list[zipfile.ZipInfo],
) -> tuple[dict[str, zipfile.ZipInfo], int] | None:
    """:func:`_read_members` for the common archive, in whole-list passes at C speed:
    plain ASCII names (see ``_names.all_plain``), regular files, no unusual flags,
    version or compression, no duplicates, collisions or file-over-directory. None
    when anything is unusual: the caller then runs :func:`_read_members`, which finds
    the same problem (or none) and says exactly what it is."""
    names = list(map(_ORIG_NAME, infolist))
    if list(map(_NAME, infolist)) != names or not all_plain(names):
        return None
    if any(map(_UNUSUAL, {_SHAPE(i) for i in infolist})):
        return None
    files = [i for i in infolist if not i.filename.endswith("/")]
    raws = list(map(_NAME, files))
    infos = dict(zip(raws, files, strict=True))
    keys = "\n".join(raws).lower().split("\n") if raws else []  # ASCII: _norm is lower()
    if len(infos) != len(raws) or len(set(keys)) != len(raws):
        return None  # a duplicate or a case collision
    # A file that is some other member's parent: with "/" sorted before every other
    # character, a key's descendants come right after it.
    order = sorted(k.replace("/", "\x00") for k in keys)
    if any(b.startswith(a + "\x00") for a, b in pairwise(order)):
        return None
    return infos, sum(map(_SIZE, files))


def _shape(info: zipfile.ZipInfo) -> tuple[int, int, int, int, int]:
    return (
        info.create_system,
        stat.S_IFMT(info.external_attr >> 16),
        info.flag_bits & _BAD_FLAGS,
        info.extract_version,
        info.compress_type,
    )


def _unusual(shape: tuple[int, int, int, int, int]) -> bool:
    system, kind, flags, version, compression = shape
    return (
        (system == 3 and kind not in (0, stat.S_IFREG, stat.S_IFDIR))
        or flags != 0
        or version > _MAX_EXTRACT_VERSION
        or compression not in _COMPRESSION
    )


_ORIG_NAME = attrgetter("orig_filename")
_NAME = attrgetter("filename")
_SIZE = attrgetter("file_size")
_SHAPE = _shape
_UNUSUAL = _unusual
_BAD_FLAGS = 0x1 | sum(1 << bit for bit, _ in _FLAGS)


def _read_members(
    filename: str, infolist: list[zipfile.ZipInfo]
) -> tuple[dict[str, zipfile.ZipInfo], int]:
    """Check every member (name, type, flags, version, compression, duplicates, case
    collisions, files over directories); the first problem in archive order is raised."""
    infos: dict[str, zipfile.ZipInfo] = {}
    seen_norm: dict[str, str] = {}
    total = 0
    for info in infolist:
        raw = info.filename
        # zipfile cuts names at a NUL byte; the name as stored is what counts.
        check_member_name(filename, raw)
        if info.orig_filename != raw:
            check_member_name(filename, info.orig_filename)
        kind = _special_kind(info)
        if kind is not None:
            raise _unsafe(filename, raw, f"is {kind}, not a regular file")
        if info.flag_bits & 0x1:
            raise InvalidWheel(f"{filename}: member {raw!r} is encrypted")
        for bit, what in _FLAGS:
            if info.flag_bits & (1 << bit):
                raise InvalidWheel(
                    f"{filename}: member {raw!r} uses {what} (zip flag bit {bit})",
                    "wheels never do; rebuild it with a standard zip tool",
                )
        if info.extract_version > _MAX_EXTRACT_VERSION:
            raise InvalidWheel(
                f"{filename}: member {raw!r} needs zip version "
                f"{info.extract_version / 10:.1f} to extract, newer than any wheel uses",
                "rebuild it with a standard zip tool",
            )
        if info.compress_type not in _COMPRESSION:
            raise InvalidWheel(
                f"{filename}: member {raw!r} uses unsupported compression method "
                f"{info.compress_type}",
                "wheels must use deflate or no compression",
            )
        if info.is_dir():
            continue
        if raw in infos:
            raise InvalidWheel(f"{filename}: duplicate member {raw!r}")
        key = _norm(raw)
        if key in seen_norm:
            raise _unsafe(
                filename,
                raw,
                f"collides with {seen_norm[key]!r} on case-insensitive or normalising filesystems",
            )
        seen_norm[key] = raw
        infos[raw] = info
        total += info.file_size
    # A file that is also another member's parent directory cannot be unpacked
    # (and would make two members fight over one path on case-insensitive systems).
    for key, raw in seen_norm.items():
        parent = key.rpartition("/")[0]
        while parent:
            if parent in seen_norm:
                raise InvalidWheel(
                    f"{filename}: member {seen_norm[parent]!r} is a file, but {raw!r} "
                    "needs it to be a directory"
                )
            parent = parent.rpartition("/")[0]
    return infos, total

def _check_metadata(
    zf: zipfile.ZipFile,
    infos: dict[str, zipfile.ZipInfo],
    filename: str,
    dist_info: str,
    name: NormalizedName,
    version: Version,
) -> str:
    """Check METADATA against the file name (as pip and uv do); return Requires-Python.

    Name and Version must match the file name after normalisation; Requires-Python
    and every Requires-Dist must parse (an installer that cannot read them cannot
    honour them). Nothing else in METADATA matters to an installer.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion

    meta = HeaderParser().parsestr(_read_text(zf, infos, filename, f"{dist_info}/METADATA"))
    meta_name = (meta.get("Name") or "").strip()
    if canonicalize_name(meta_name) != name:
        raise InvalidWheel(
            f"{filename}: METADATA says Name {meta_name!r}, the file name says {name!r}"
        )
    meta_version = (meta.get("Version") or "").strip()
    try:
        same = Version(meta_version) == version
    except InvalidVersion:
        same = False
    if not same:
        raise InvalidWheel(
            f"{filename}: METADATA says Version {meta_version!r}, the file name says "
            f"{str(version)!r}"
        )
    requires_python = (meta.get("Requires-Python") or "").strip()
    try:
        SpecifierSet(requires_python)
    except InvalidSpecifier:
        raise InvalidWheel(
            f"{filename}: invalid metadata: Requires-Python {requires_python!r} does not parse"
        ) from None
    for req in meta.get_all("Requires-Dist") or ():
        try:
            Requirement(str(req))
        except InvalidRequirement as exc:
            why = shown(str(exc).splitlines()[0] if str(exc) else "")
            raise InvalidWheel(
                f"{filename}: invalid metadata: Requires-Dist {str(req)!r} does not parse "
                f"({why})"
            ) from None
    return requires_python


def _read_text(
    zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], filename: str, path: str
) -> str:
    if path not in infos:
        raise InvalidWheel(f"{filename}: missing {path}")
    if infos[path].file_size > 64 * 1024**2:
        raise InvalidWheel(f"{filename}: {path} is implausibly large")
    try:
        return zf.read(path).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidWheel(f"{filename}: {path} is not UTF-8") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        why = shown(str(exc))
        raise InvalidWheel(f"{filename}: corrupt archive reading {path}: {why}") from None


def parse_entry_points(filename: str, text: str) -> tuple[EntryPoint, ...]:
    """Parse console/gui scripts; refuse names that are not plain file names."""
    from configparser import ConfigParser, Error

    parser = ConfigParser(delimiters=("=",), interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    try:
        parser.read_string(text)
    except Error as exc:
        first = shown(str(exc).splitlines()[0])
        raise InvalidWheel(f"{filename}: bad entry_points.txt: {first}") from None
    out: list[EntryPoint] = []
    for section, kind in (("console_scripts", "console"), ("gui_scripts", "gui")):
        if not parser.has_section(section):
            continue
        for ep_name, value in parser.items(section):
            check_entry_point_name(filename, ep_name)
            match = _ENTRY_VALUE.match(value)
            if not match or not match.group("attrs"):
                raise InvalidWheel(f"{filename}: bad entry point {ep_name} = {value!r}")
            out.append(EntryPoint(ep_name, match.group("module"), match.group("attrs"), kind))
    return tuple(out)
