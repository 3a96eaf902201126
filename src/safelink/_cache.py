"""The unpacked-wheel cache: admit once, verify, fingerprint, share.

Layout under the cache root (``v1/`` so a future format can live beside it)::

    entries/<sha256>/files/...    the wheel's members, read-only, fixed mtime
    entries/<sha256>/plan.json    the install plan; written last, so its presence
                                  means the entry is whole
    index/<key>                   wheel path+size+mtime+inode -> sha256 (no re-hash)
    locks/<sha256>.lock           per-entry admission lock
    envs/<sha256>                 environments the entry was installed into
    probes/<pair>.json            remembered link-mode probes per filesystem pair
    tmp/                          admissions in progress (removed by ``prune``)

An entry appears by one ``rename`` of a complete temp dir, under its lock, so a
crash at any point leaves at most a temp dir that nothing trusts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, BinaryIO

from ._atomic import write_atomic
from ._fsops import rmtree, write_all
from ._hooks import crash_point
from ._lock import file_lock
from ._plan import Plan
from ._plan import load as load_plan
from ._plan import save as save_plan
from ._record import encode_digest

if TYPE_CHECKING:
    from zipfile import ZipFile, ZipInfo

    from ._wheel import Member, WheelInfo

from .errors import CacheCorrupt, InvalidWheel, SafelinkError

FINGERPRINT_MTIME_NS = 946_684_800 * 10**9
"""Every cached file's mtime (2000-01-01). A write through a hardlink moves it."""

_CHUNK = 1 << 20
def default_cache_dir() -> str:
    env = os.environ.get("SAFELINK_CACHE_DIR")
    if env:
        return env
    from platformdirs import user_cache_dir

    return user_cache_dir("safelink", appauthor=False)



@dataclass(frozen=True)
class Entry:
    """One admitted wheel: an immutable directory of files plus its plan."""

    path: str
    sha256: str

    @property
    def files(self) -> str:
        return os.path.join(self.path, "files")

    @cached_property
    def plan(self) -> Plan:
        try:
            return load_plan(self.path)
        except (OSError, ValueError, KeyError) as exc:
            raise CacheCorrupt(
                f"cache entry {self.path} is unreadable: {exc}",
                "remove it with 'safelink cache clean'",
            ) from None


class Cache:
    """A cache directory shared by every process and environment of a user."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        base = os.fspath(root) if root is not None else default_cache_dir()
        self.base = os.path.abspath(base)
        self.root = os.path.join(self.base, "v1")

    def __repr__(self) -> str:
        return f"Cache({self.base!r})"

    # -- paths -------------------------------------------------------------
    def _dir(self, name: str) -> str:
        path = os.path.join(self.root, name)
        os.makedirs(path, exist_ok=True)
        return path

    def entry_path(self, sha256: str) -> str:
        return os.path.join(self.root, "entries", sha256)

    # -- lookup ------------------------------------------------------------
    def get(self, sha256: str) -> Entry | None:
        path = self.entry_path(sha256)
        if os.path.exists(os.path.join(path, "plan.json")):
            return Entry(path, sha256)
        return None

    def entries(self) -> Iterator[Entry]:
        try:
            names = sorted(os.listdir(os.path.join(self.root, "entries")))
        except FileNotFoundError:
            return
        for name in names:
            entry = self.get(name)
            if entry is not None:
                yield entry

    # -- admission ---------------------------------------------------------
    def _index_key(self, wheel: str, st: os.stat_result | None = None) -> str:
        st = st or os.stat(wheel)
        key_src = (
            f"{os.path.realpath(wheel)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_dev}"
        )
        return hashlib.sha256(key_src.encode("utf-8", "surrogateescape")).hexdigest()

    def indexed_sha256(self, wheel: str, st: os.stat_result | None = None) -> str | None:
        """The wheel's hash if the stat index knows this exact file (no hashing)."""
        try:
            with open(
                os.path.join(self.root, "index", self._index_key(wheel, st)), encoding="ascii"
            ) as f:
                value = f.read().strip()
        except OSError:
            return None
        return value if len(value) == 64 else None

    def wheel_sha256(self, wheel: str) -> str:
        """Hash of the wheel file, via the stat index when the file is unchanged."""
        with open(wheel, "rb") as f:
            return self._sha256_of_open(wheel, f)

    def _sha256_of_open(self, wheel: str, f: BinaryIO) -> str:
        st = os.fstat(f.fileno())
        known = self.indexed_sha256(wheel, st)
        if known is not None:
            return known
        key = self._index_key(wheel, st)
        h = hashlib.sha256()
        while chunk := f.read(_CHUNK):
            h.update(chunk)
        digest = h.hexdigest()
        try:
            write_atomic(os.path.join(self._dir("index"), key), digest.encode())
        except OSError:
            pass  # a read-only cache still works, it just re-hashes
        return digest

    def admit(self, wheel: str | os.PathLike[str], *, max_unpacked: int | None = None) -> Entry:
        """Return the cache entry for *wheel*, unpacking and verifying it first if needed."""
        return self.admit_status(wheel, max_unpacked=max_unpacked)[0]

    def admit_status(
        self, wheel: str | os.PathLike[str], *, max_unpacked: int | None = None
    ) -> tuple[Entry, bool]:
        """Like :meth:`admit`; also say whether *this* call unpacked the wheel.

        When several processes admit one wheel at once, exactly one of them
        unpacks it; the others wait for its lock and get its entry.
        """
        wheel = os.path.abspath(os.fspath(wheel))
        filename = os.path.basename(wheel)
        if not os.path.exists(wheel):
            raise SafelinkError(f"{wheel}: no such file")
        if not os.path.isfile(wheel) or not filename.endswith(".whl"):
            raise InvalidWheel(f"{wheel}: not a wheel file (expected a .whl file)")
        with contextlib.ExitStack() as held:
            # One open file for hashing and unpacking: a wheel replaced on disk meanwhile
            # cannot be stored under the hash of the one that was there before.
            f = held.enter_context(open(wheel, "rb"))
            st = os.fstat(f.fileno())
            sha = self._sha256_of_open(wheel, f)
            entry = self.get(sha)
            if entry is not None:
                return entry, False
            try:
                held.enter_context(file_lock(os.path.join(self._dir("locks"), f"{sha}.lock")))
            except OSError as exc:
                raise self._unwritable(exc, filename) from None
            entry = self.get(sha)
            if entry is not None:
                return entry, False
            f.seek(0)
            return self._admit_locked(wheel, filename, sha, max_unpacked, f, st), True

    def _unwritable(self, exc: OSError, filename: str) -> SafelinkError:
        if exc.errno == errno.ENOSPC:
            return SafelinkError(
                f"no space left on device while unpacking {filename} into the cache at {self.base}",
                "free space or point SAFELINK_CACHE_DIR elsewhere; nothing was kept",
            )
        return SafelinkError(
            f"cannot write to the cache at {self.base}: {exc.strerror}",
            "set SAFELINK_CACHE_DIR or --cache-dir to a writable directory",
        )

    def _admit_locked(
        self,
        wheel: str,
        filename: str,
        sha: str,
        max_unpacked: int | None,
        f: BinaryIO,
        st: os.stat_result,
    ) -> Entry:
        try:
            tmp = os.path.join(self._dir("tmp"), f"{sha[:16]}-{os.getpid()}-{time.monotonic_ns()}")
            os.mkdir(tmp)
        except OSError as exc:
            raise self._unwritable(exc, filename) from None
        try:
            import zipfile

            try:
                zf = zipfile.ZipFile(f)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                # ValueError: e.g. a name flagged UTF-8 that is not (UnicodeDecodeError)
                raise InvalidWheel(f"{wheel}: not a valid zip archive ({exc})") from None
            with zf:
                from ._wheel import read_wheel

                info = read_wheel(zf, filename, max_unpacked)
                shebang = _extract(zf, info, os.path.join(tmp, "files"), wheel)
            now = os.fstat(f.fileno())
            if (now.st_size, now.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                raise SafelinkError(
                    f"{wheel} changed while it was being unpacked; nothing was kept",
                    "install it again once whatever writes it has finished",
                )
            from ._plan import make_plan

            plan = make_plan(info, sha, shebang, wheel)
            crash_point("admit-before-plan")
            save_plan(plan, tmp)
            crash_point("admit-before-rename")
            dest = self.entry_path(sha)
            self._dir("entries")
            try:
                os.rename(tmp, dest)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                # A stale, incomplete directory (no plan.json) from an old crash: replace it.
                if self.get(sha) is None:
                    rmtree(dest)
                    os.rename(tmp, dest)
        except OSError as exc:
            rmtree(tmp)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
                raise self._unwritable(exc, filename) from None
            raise
        except BaseException:
            rmtree(tmp)
            raise
        return Entry(dest, sha)

    # -- guard support -----------------------------------------------------
    def restore_file(self, entry: Entry, member: str, wheel: str | None = None) -> None:
        """Replace one cached file with a pristine copy from the wheel (new inode).

        Environments still linked to the old inode keep whatever they wrote;
        the cache itself, and everything installed from it from now on, is clean.
        """
        plan = entry.plan
        source = wheel or plan.source
        row = _find_row(plan, member)
        algo, _, want = row[3].partition("=")
        try:
            import zipfile

            zf = zipfile.ZipFile(source)
        except (OSError, zipfile.BadZipFile) as exc:
            raise CacheCorrupt(
                f"cached file {member} of {plan.filename} was modified and the wheel "
                f"to restore it from is unavailable ({exc})",
                f"run 'safelink cache clean {plan.name}' and install again",
            ) from None
        with zf:
            dst = os.path.join(entry.files, member)
            tmp = f"{dst}.heal-{os.getpid()}-{time.monotonic_ns()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                h = hashlib.new(algo)
                with zf.open(member) as src:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        write_all(fd, chunk)
                if encode_digest(h.digest()) != want:
                    raise CacheCorrupt(
                        f"{source}: {member} does not match its RECORD hash; cannot heal the cache",
                        f"run 'safelink cache clean {plan.name}'",
                    )
                _seal(fd, tmp, 0o555 if row[4] else 0o444)
            except BaseException:
                os.close(fd)
                os.unlink(tmp)
                raise
            os.close(fd)
            os.replace(tmp, dst)

    # -- environment registry ---------------------------------------------
    def register_env(self, sha256: str, env_root: str) -> None:
        path = os.path.join(self.root, "envs", sha256)
        line = env_root + "\n"
        try:
            with open(path, encoding="utf-8") as f:
                if line in f.readlines():
                    return
        except FileNotFoundError:
            try:
                self._dir("envs")
            except OSError:
                return  # a read-only (or someone else's) cache: the registry is advisory
        except OSError:
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8", "surrogateescape"))
            finally:
                os.close(fd)
        except OSError:
            pass  # a read-only cache: the registry is advisory

    def envs_of(self, sha256: str) -> list[str]:
        try:
            with open(os.path.join(self.root, "envs", sha256), encoding="utf-8") as f:
                return [line.rstrip("\n") for line in f if line.strip()]
        except OSError:
            return []

    # -- maintenance ----------------------------------------------------------
    def remove_entry(self, entry: Entry) -> None:
        """Evict an entry: rename it away atomically, then delete it."""
        with file_lock(os.path.join(self._dir("locks"), f"{entry.sha256}.lock")):
            trash = os.path.join(
                self._dir("tmp"), f"evict-{entry.sha256[:16]}-{os.getpid()}-{time.monotonic_ns()}"
            )
            os.rename(entry.path, trash)
        rmtree(trash)
        rmtree(os.path.join(self.root, "pyc", entry.sha256))  # its compiled bytecode
        try:
            os.unlink(os.path.join(self.root, "envs", entry.sha256))
        except OSError:
            pass

    def stale_temp_dirs(self) -> list[str]:
        """Temp dirs of admissions whose process is gone (safe to delete)."""
        out: list[str] = []
        try:
            names = os.listdir(os.path.join(self.root, "tmp"))
        except FileNotFoundError:
            return out
        for name in names:
            pid = _temp_owner(name)
            if pid is not None and pid != os.getpid() and _pid_alive(pid):
                continue
            out.append(os.path.join(self.root, "tmp", name))
        return out


def _temp_owner(name: str) -> int | None:
    """The pid in a temp name: ``<sha16>-<pid>-<ns>`` (admission), ``evict-<sha16>-<pid>-<ns>``,
    ``.safelink-probe-<pid>-...`` (probe trial files)."""
    parts = name.split("-")
    idx = 2 if name.startswith(("evict-", ".safelink-probe-")) else 1
    if len(parts) > idx and parts[idx].isdigit():
        return int(parts[idx])
    return None


def _find_row(plan: Plan, member: str) -> tuple[str, str, int, str, bool]:
    for rows in plan.links.values():
        for row in rows:
            if row[0] == member:
                return row
    for src, _dst, digest in plan.shebang_scripts:
        if src == member:
            return (src, src, 0, digest, True)
    raise KeyError(member)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_FD_CALLS = hasattr(os, "fchmod") and os.utime in os.supports_fd


def _seal(fd: int, path: str, mode: int) -> None:
    """Make a cached file read-only with the fingerprint mtime (by fd where the OS can)."""
    if _FD_CALLS:
        os.fchmod(fd, mode)
        os.utime(fd, ns=(FINGERPRINT_MTIME_NS, FINGERPRINT_MTIME_NS))
    else:  # pragma: no cover - Windows
        os.utime(path, ns=(FINGERPRINT_MTIME_NS, FINGERPRINT_MTIME_NS))
        os.chmod(path, mode)


def _extract(zf: ZipFile, info: WheelInfo, dest: str, wheel: str) -> set[str]:
    """Stream every member into *dest*, hashing as it writes; return ``#!python`` scripts.

    Nothing outside *dest* is touched. Files end read-only with the fixed
    fingerprint mtime. Big wheels are unpacked by a few threads sharing the one
    open archive: inflating, hashing and writing all release the GIL.
    """
    os.mkdir(dest)
    for d in sorted({os.path.dirname(m.name) for m in info.members} - {""}):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
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

    def read(self, name: str) -> bytes:
        import zlib
        from zipfile import BadZipFile

        info = self.infos[name]
        start = info.header_offset
        head = os.pread(self.fd, 30, start)
        if len(head) != 30 or head[:4] != b"PK\x03\x04":
            raise BadZipFile(f"bad local file header for {name!r}")
        flags = int.from_bytes(head[6:8], "little")
        n = int.from_bytes(head[26:28], "little")
        extra = int.from_bytes(head[28:30], "little")
        raw_name = os.pread(self.fd, n, start + 30)
        local = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        if local != info.orig_filename:
            raise BadZipFile(f"file name in directory {info.orig_filename!r} and header differ")
        begin = start + 30 + n + extra
        if begin + info.compress_size > self.ends.get(start, begin + info.compress_size):
            raise BadZipFile("overlapped entries (a zip bomb?)")
        raw = os.pread(self.fd, info.compress_size, begin)
        if len(raw) != info.compress_size:
            raise BadZipFile("truncated member data")
        if info.compress_type == 0:
            data = raw
        elif info.compress_type == 8:
            inflate = zlib.decompressobj(-15)
            data = inflate.decompress(raw, info.file_size + 1)
        else:
            raise BadZipFile(f"unsupported compression method {info.compress_type}")
        if len(data) != info.file_size:
            raise BadZipFile(f"{name!r} inflates to {len(data)} bytes, not {info.file_size}")
        if zlib.crc32(data) != info.CRC:
            raise BadZipFile(f"Bad CRC-32 for file {name!r}")
        return data


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

    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    create = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for m in members:
        h = hashlib.new(m.hash_name)
        fd = os.open(os.path.join(dest, m.name), create, 0o600)
        try:
            if reader is not None and m.size <= _CHUNK:  # most members: one of each
                data = reader.read(m.name)
                size = len(data)
                h.update(data)
                write_all(fd, data)
                head = data[:8]
            else:
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
                raise InvalidWheel(f"{wheel}: {m.name} is {size} bytes, RECORD says {m.size}")
            if encode_digest(h.digest()) != m.hash_hex:
                raise InvalidWheel(f"{wheel}: {m.name} does not match its RECORD hash")
            _seal(fd, os.path.join(dest, m.name), 0o555 if m.executable else 0o444)
        except (BadZipFile, EOFError, LargeZipFile, zlib.error) as exc:
            raise InvalidWheel(f"{wheel}: corrupt archive at {m.name}: {exc}") from None
        finally:
            os.close(fd)
        crash_point("admit-mid")
