"""Admission: a wheel file becomes a cache entry, verified whole or not at all.

Under the entry's lock (taken by :meth:`safelink.Cache.admit_status`), the wheel
is validated (``_wheel.read_wheel``), every member is streamed into a temporary
directory in the cache, hashed as it is written and checked against RECORD, and
sealed (read-only, fixed mtime: see ``_guard``). The plan is written last and the
directory is renamed into place, so a crash at any point leaves at most a
temporary directory that nothing trusts (``cache prune`` removes it).
"""

from __future__ import annotations

import errno
import hashlib
import os
from operator import attrgetter
from typing import TYPE_CHECKING, Any, BinaryIO

from . import _layout
from ._fsops import rmtree, write_all
from ._guard import seal, sealed_mode
from ._hooks import crash_point
from ._names import shown
from ._plan import save as save_plan
from ._record import encode_digest
from .errors import InvalidWheel, SafelinkError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from zipfile import ZipFile, ZipInfo

    from ._cache import Cache
    from ._plan import Plan
    from ._wheel import Member, WheelInfo

_CHUNK = 1 << 20
_INFLATE: Any = None


def inflate_lib() -> Any:
    """The zlib to inflate with: ``zlib_ng.zlib_ng`` when the optional ``zlib-ng``
    package is installed (the same raw deflate streams and CRC-32, inflated about
    twice as fast), else the standard library's ``zlib``."""
    global _INFLATE
    if _INFLATE is None:
        try:
            from zlib_ng import zlib_ng

            _INFLATE = zlib_ng
        except ImportError:
            import zlib

            _INFLATE = zlib
    return _INFLATE

def admit_locked(
    cache: Cache,
    wheel: str,
    filename: str,
    sha: str,
    max_unpacked: int | None,
    f: BinaryIO,
    st: os.stat_result,
) -> tuple[str, Plan]:
    """Unpack the open wheel *f* (hash *sha*) into a new entry; the entry lock is held.
    Returns the entry's directory and its plan.

    The cyclic garbage collector is paused meanwhile: admission makes several objects
    per member (zip infos, members, plan rows), none of them in a cycle, and each
    collection would walk them all again."""
    import gc

    paused = gc.isenabled()
    gc.disable()
    try:
        return _admit_locked(cache, wheel, filename, sha, max_unpacked, f, st)
    finally:
        if paused:
            gc.enable()


def _admit_locked(
    cache: Cache,
    wheel: str,
    filename: str,
    sha: str,
    max_unpacked: int | None,
    f: BinaryIO,
    st: os.stat_result,
) -> tuple[str, Plan]:
    try:
        tmp = _layout.temp_path(cache.ensure_dir(_layout.TMP), _layout.ADMIT)
        os.mkdir(tmp, 0o755)  # the entry it becomes: only this user may write it
    except OSError as exc:
        raise cache.unwritable(exc, filename) from None
    try:
        import zipfile
        import zlib

        try:
            zf = zipfile.ZipFile(f)
        except NotImplementedError as exc:  # "zip file version 6.4": above what zipfile reads
            raise InvalidWheel(
                f"{shown(wheel)}: not a valid zip archive ({shown(str(exc))}: it needs zip "
                f"version {shown(str(exc).rpartition(' ')[2])}, more than 6.3)"
            ) from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            # ValueError: e.g. a name flagged UTF-8 that is not (UnicodeDecodeError)
            why = shown(str(exc))
            raise InvalidWheel(f"{shown(wheel)}: not a valid zip archive ({why})") from None
        with zf:
            from ._wheel import read_wheel

            try:
                info = read_wheel(zf, filename, max_unpacked)
            except (
                zipfile.BadZipFile,
                zipfile.LargeZipFile,
                EOFError,
                zlib.error,
                NotImplementedError,
                UnicodeDecodeError,
            ) as exc:
                raise InvalidWheel(f"{shown(wheel)}: corrupt archive ({shown(str(exc))})") from None
            shebang = _extract(zf, info, _layout.entry_files(tmp), wheel)
        now = os.fstat(f.fileno())
        if (now.st_size, now.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            raise SafelinkError(
                f"{shown(wheel)} changed while it was being unpacked; nothing was kept",
                "install it again once whatever writes it has finished",
            )
        from ._plan import make_plan

        plan = make_plan(info, sha, shebang, wheel)
        crash_point("admit-before-plan")
        save_plan(plan, tmp)
        crash_point("admit-before-rename")
        dest = cache.entry_path(sha)
        cache.ensure_dir(_layout.ENTRIES)
        try:
            os.rename(tmp, dest)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # A stale, incomplete directory (no plan.json) from an old crash: replace it.
            if cache.get(sha) is None:
                rmtree(dest)
                os.rename(tmp, dest)
    except OSError as exc:
        rmtree(tmp)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
            raise cache.unwritable(exc, filename) from None
        raise
    except BaseException:
        rmtree(tmp)
        raise
    return dest, plan


def _extract(zf: ZipFile, info: WheelInfo, dest: str, wheel: str) -> set[str]:
    """Stream every member into *dest*, hashing as it writes; return ``#!python`` scripts.

    Nothing outside *dest* is touched. Files end read-only with the fixed
    fingerprint mtime. Big wheels are unpacked by a few threads sharing the one
    open archive: inflating, hashing and writing all release the GIL.
    """
    os.mkdir(dest, 0o755)
    dirs: set[str] = set()
    for parent in {m.name.rpartition("/")[0] for m in info.members}:
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    for d in sorted(dirs):  # a parent sorts before its children: one mkdir each
        path = f"{dest}/{d}"
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:  # "A" after "a" where names are case-insensitive
            if not os.path.isdir(path):
                raise
    shebang: set[str] = set()
    scripts_prefix = f"{info.data_dir}/scripts/"
    reader = _RawReader.for_zip(zf)
    members = sorted(info.members, key=lambda m: -m.size)  # big ones first: balanced threads
    total = sum(m.size for m in members)
    threads = min(4, os.cpu_count() or 1)
    if os.environ.get("SAFELINK_THREADS") == "1":  # the same switch as the link loop's
        threads = 1
    if threads < 2 or (len(members) < 200 and total < (16 << 20)):
        _extract_some(zf, reader, members, dest, wheel, scripts_prefix, shebang)
        return shebang
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads, thread_name_prefix="safelink-admit") as pool:
        futures = [
            pool.submit(
                _extract_some,
                zf,
                reader,
                members[i::threads],
                dest,
                wheel,
                scripts_prefix,
                shebang,
            )
            for i in range(threads)
        ]
        for f in futures:
            f.result()  # re-raise the first failure; the caller removes the temp dir
    return shebang


class _RawReader:
    """Small members read straight from the archive: one ``pread`` of the local header,
    one of the data, one inflate. ``zipfile.open`` builds a buffered stream object per
    member, which costs more than inflating a typical 2 KB module.

    It checks what ``zipfile`` checks and what a hostile archive could abuse: the local
    header's signature and name match the central directory, the data does not run
    into the next member (overlapping entries: the "quoted overlap" zip bomb), only
    stored or deflated data, and the exact size and CRC-32.
    """

    def __init__(self, fd: int, infos: dict[str, ZipInfo], ends: dict[int, int]) -> None:
        self.fd = fd
        self.infos = infos
        self.ends = ends

    @classmethod
    def for_zip(cls, zf: ZipFile) -> _RawReader | None:
        fp = zf.fp
        if not hasattr(os, "pread") or fp is None or not hasattr(fp, "fileno"):
            return None
        offsets = sorted({i.header_offset for i in zf.infolist()})
        limit = getattr(zf, "start_dir", None)
        if not isinstance(limit, int):
            return None
        ends = dict(zip(offsets, [*offsets[1:], limit], strict=True))
        return cls(fp.fileno(), zf.NameToInfo, ends)

    def _data_start(self, name: str, ahead: int = 0) -> tuple[ZipInfo, int, bytes]:
        """Check the local header against the central directory and the data against
        the next member (no overlap); return the member's info, where its data begins
        and the bytes read past that point (up to *ahead* of them: one ``pread`` for
        the header, the name and a small member's data)."""
        from zipfile import BadZipFile

        info = self.infos[name]
        start = info.header_offset
        # The local name and extra field usually match the central directory's.
        guess = 30 + len(info.orig_filename) * 4 + len(info.extra) + 16
        buf = os.pread(self.fd, guess + ahead, start)
        if len(buf) < 30 or buf[:4] != b"PK\x03\x04":
            raise BadZipFile(f"bad local file header for {name!r}")
        flags = int.from_bytes(buf[6:8], "little")
        if flags & 0x60:
            raise BadZipFile(f"unsupported flags 0x{flags:04x} in the local header")
        n = int.from_bytes(buf[26:28], "little")
        extra = int.from_bytes(buf[28:30], "little")
        raw_name = buf[30 : 30 + n] if 30 + n <= len(buf) else os.pread(self.fd, n, start + 30)
        local = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        if local != info.orig_filename:
            raise BadZipFile(f"file name in directory {info.orig_filename!r} and header differ")
        begin = start + 30 + n + extra
        if begin + info.compress_size > self.ends.get(start, begin + info.compress_size):
            raise BadZipFile("overlapped entries (a zip bomb?)")
        if info.compress_type not in (0, 8):
            raise BadZipFile(f"unsupported compression method {info.compress_type}")
        return info, begin, buf[30 + n + extra :]

    def read(self, name: str) -> bytes:
        from zipfile import BadZipFile

        zlib = inflate_lib()
        info, begin, have = self._data_start(name, self.infos[name].compress_size)
        size = info.compress_size
        raw = have[:size] if len(have) >= size else os.pread(self.fd, size, begin)
        if len(raw) != size:
            raise BadZipFile("truncated member data")
        if info.compress_type == 0:
            data = raw
        else:
            inflate = zlib.decompressobj(-15)
            data = inflate.decompress(raw, info.file_size + 1)
        if len(data) != info.file_size:
            raise BadZipFile(f"{name!r} inflates to {len(data)} bytes, not {info.file_size}")
        if zlib.crc32(data) != info.CRC:
            raise BadZipFile(f"Bad CRC-32 for file {name!r}")
        return data

    def stream(self, name: str) -> Iterator[bytes]:
        """A big member in pieces of at most ``_CHUNK`` bytes, with the same checks as
        :meth:`read`; never more than one piece of output in memory."""
        from zipfile import BadZipFile

        zlib = inflate_lib()
        info, pos, _ = self._data_start(name)
        left, size, crc = info.compress_size, 0, 0
        inflate = zlib.decompressobj(-15) if info.compress_type == 8 else None
        while left:
            raw = os.pread(self.fd, min(_CHUNK, left), pos)
            if not raw:
                raise BadZipFile("truncated member data")
            pos += len(raw)
            left -= len(raw)
            while raw:
                if inflate is None:
                    data, raw = raw, b""
                else:
                    data = inflate.decompress(raw, _CHUNK)
                    raw = inflate.unconsumed_tail
                size += len(data)
                if size > info.file_size:
                    raise BadZipFile(f"{name!r} inflates to more than {info.file_size} bytes")
                crc = zlib.crc32(data, crc)
                yield data
        if inflate is not None and not inflate.eof:
            raise BadZipFile(f"{name!r}: truncated deflate stream")
        if size != info.file_size:
            raise BadZipFile(f"{name!r} inflates to {size} bytes, not {info.file_size}")
        if crc != info.CRC:
            raise BadZipFile(f"Bad CRC-32 for file {name!r}")


def _extract_some(
    zf: ZipFile,
    reader: _RawReader | None,
    members: list[Member],
    dest: str,
    wheel: str,
    scripts_prefix: str,
    shebang: set[str],
) -> None:
    import zlib
    from zipfile import BadZipFile, LargeZipFile

    corrupt = (BadZipFile, EOFError, LargeZipFile, zlib.error, inflate_lib().error)
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    create = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    # Files are created relative to their directory's fd (one path walk per directory,
    # not one per file): members in name order, so a directory's files come together.
    at_dir = os.open in os.supports_dir_fd
    if at_dir:
        members = sorted(members, key=_NAME)
    here, dfd = "", -1
    try:
        for m in members:
            h = hashlib.new(m.hash_name)
            path = f"{dest}/{m.name}"
            if at_dir:
                folder, _, base = m.name.rpartition("/")
                if dfd < 0 or folder != here:
                    if dfd >= 0:
                        os.close(dfd)
                        dfd = -1
                    dfd = os.open(f"{dest}/{folder}" if folder else dest, _DIR)
                    here = folder
                fd = os.open(base, create, 0o600, dir_fd=dfd)
            else:  # pragma: no cover - Windows
                fd = os.open(path, create, 0o600)
            try:
                if reader is not None and m.size <= _CHUNK:  # most members: one of each
                    data = reader.read(m.name)
                    size = len(data)
                    h.update(data)
                    write_all(fd, data)
                    head = data[:8]
                elif reader is not None:  # a big member: streamed, same checks
                    size = 0
                    head = b""
                    for piece in reader.stream(m.name):
                        if not size:
                            head = piece[:8]
                        h.update(piece)
                        size += len(piece)
                        write_all(fd, piece)
                else:  # no pread here: zipfile's own reader
                    with zf.open(m.name) as src:
                        if m.size <= _CHUNK:
                            data = src.read(m.size + 1)
                            size = len(data)
                            h.update(data)
                            write_all(fd, data)
                            head = data[:8]
                        else:
                            size = 0
                            head = b""
                            while n := src.readinto(buf):  # type: ignore[attr-defined]
                                chunk = view[:n]
                                if not size:
                                    head = bytes(chunk[:8])
                                h.update(chunk)
                                size += n
                                write_all(fd, chunk)  # type: ignore[arg-type]
                if head == b"#!python" and m.name.startswith(scripts_prefix):
                    shebang.add(m.name)
                if size != m.size:
                    raise InvalidWheel(
                        f"{shown(wheel)}: {shown(m.name)} is {size} bytes, RECORD says {m.size}"
                    )
                if encode_digest(h.digest()) != m.hash_hex:
                    raise InvalidWheel(
                        f"{shown(wheel)}: {shown(m.name)} does not match its RECORD hash"
                    )
                seal(fd, path, sealed_mode(m.executable))
            except (*corrupt, ValueError, NotImplementedError) as exc:
                # ValueError: a local name flagged UTF-8 that is not (zipfile.open's path)
                raise InvalidWheel(
                    f"{shown(wheel)}: corrupt archive at {shown(m.name)}: {shown(str(exc))}"
                ) from None
            finally:
                os.close(fd)
            crash_point("admit-mid")
    finally:
        if dfd >= 0:
            os.close(dfd)


_NAME = attrgetter("name")
_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
