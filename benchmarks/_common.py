"""Shared pieces of the benchmark suite: places, timing, statistics, generated wheels.

Standard library only (plus safelink and the test helpers ``tests/loopfs.py`` and
``tests/corpus.py``, which ``run.py`` puts on ``sys.path``).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import datetime
import errno
import fcntl
import hashlib
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import loopfs

FICLONE = loopfs.FICLONE
_T0 = time.perf_counter()


def log(msg: str) -> None:
    """Progress line on stdout, with the time since the suite started."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", flush=True)


def one_line(text: str, limit: int = 200) -> str:
    s = " ".join(text.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def errno_text(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    return f"{name}: {exc.strerror}" if name else str(exc)


# ---------------------------------------------------------------------------- places


@dataclass
class Place:
    """A fresh work directory of ours on one filesystem."""

    label: str  # "ext4", "xfs", "btrfs", "tmpfs", or "dir:<path>"
    root: Path
    fstype: str

    def sub(self, name: str) -> Path:
        return self.root / name


@dataclass
class FsCase:
    """Where caches/sources live (*store*) and where environments go (*env*)."""

    name: str
    store: Place
    env: Place
    can_link: bool = True
    can_clone: bool = True
    link_error: str = ""
    clone_error: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def cross(self) -> bool:
        return self.store is not self.env

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "store": {"path": str(self.store.root), "fstype": self.store.fstype},
            "env": {"path": str(self.env.root), "fstype": self.env.fstype},
            "cross_filesystem": self.cross,
            "hardlink_works": self.can_link,
            "hardlink_error": self.link_error,
            "clone_works": self.can_clone,
            "clone_error": self.clone_error,
            "notes": self.notes,
        }


def probe_case(case: FsCase) -> None:
    """Find out whether link() and FICLONE work from the store to the env directory."""
    src = case.store.sub(".probe-src")
    src.write_bytes(b"x" * 8192)
    try:
        dst = case.env.sub(".probe-link")
        try:
            os.link(src, dst)
            dst.unlink()
        except OSError as exc:
            case.can_link, case.link_error = False, errno_text(exc)
        dst = case.env.sub(".probe-clone")
        sfd = os.open(src, os.O_RDONLY)
        try:
            dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                fcntl.ioctl(dfd, FICLONE, sfd)
            except OSError as exc:
                case.can_clone, case.clone_error = False, errno_text(exc)
            finally:
                os.close(dfd)
                dst.unlink()
        finally:
            os.close(sfd)
    finally:
        src.unlink()


# --------------------------------------------------------------------------- cleanup

_libc: Any = None


def syncfs(path: Path) -> None:
    """Flush one filesystem (not the whole machine), so writeback of deleted or
    written data does not land inside the next timed operation."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            _libc = False
    if not _libc:
        return
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(path, os.O_RDONLY)
        try:
            _libc.syncfs(fd)
        finally:
            os.close(fd)


def remove(path: Path, *sync: Path) -> None:
    """Delete a tree (read-only entries included), then flush the filesystems given."""
    loopfs.rmtree_force(path)
    for p in sync:
        syncfs(p)


# ---------------------------------------------------------------------------- timing


@dataclass
class Timed:
    seconds: float
    returncode: int
    stdout: str
    stderr: str


def run_timed(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Timed:
    """Run a command with output captured; wall-clock seconds of the whole process."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        check=False,
    )
    return Timed(time.perf_counter() - t0, proc.returncode, proc.stdout, proc.stderr)


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Median and min-max of the timed runs (the warm-up is never in *values*)."""
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0, "runs": []}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "runs": list(values),
    }


def rotated(items: Sequence[Any], run: int) -> list[Any]:
    """Interleave: every run starts at a different case, so drift hits all alike."""
    if not items:
        return []
    k = run % len(items)
    return [*items[k:], *items[:k]]


# ------------------------------------------------------------------------ tool facts


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for tool subprocesses: no active venv, no stray tool settings."""
    env = dict(os.environ)
    for key in list(env):
        if key in (
            "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONHOME", "SAFELINK_THREADS",
            "PYTHONDONTWRITEBYTECODE",
        ) or (
            key.startswith(("UV_", "PIP_", "SAFELINK_CACHE", "SAFELINK_TEST"))
        ):
            del env[key]
    env.update(
        {
            "UV_NO_CONFIG": "1",
            "UV_NO_PROGRESS": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "LC_ALL": "C",
        }
    )
    extra_path = os.environ.get("SAFELINK_BENCH_PYTHONPATH")
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, env.get("PYTHONPATH")) if p)
    if extra:
        env.update(extra)
    return env


def find_uv() -> str | None:
    here = Path(sys.executable).parent / "uv"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("uv")


def find_pip() -> list[str] | None:
    """A pip to run with ``--python VENV``: this interpreter's, else one on PATH."""
    import importlib.util

    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in (f"pip{sys.version_info[0]}.{sys.version_info[1]}", "pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


def version_of(argv: Sequence[str]) -> str | None:
    try:
        out = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=60, check=False, env=tool_env()
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text and out.returncode == 0 else None


def machine_facts(uv: str | None, pip: list[str] | None) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        sl_version = version("safelink")
    except PackageNotFoundError:
        import safelink

        sl_version = getattr(safelink, "__version__", "?")
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "os": platform.system(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "memory": mem,
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "safelink": sl_version,
        "uv": version_of([uv, "--version"]) if uv else None,
        "pip": version_of([*pip, "--version"]) if pip else None,
        "cp": version_of(["cp", "--version"]),
        "user_is_root": os.geteuid() == 0 if hasattr(os, "geteuid") else False,
    }


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# ------------------------------------------------------------------ generated wheels


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    entry_points: str | None = None,
) -> Path:
    """A valid pure wheel, stored uncompressed (generating it should cost nothing)."""
    mod = name.replace("-", "_")
    di = f"{mod}-{version}.dist-info"
    members: dict[str, bytes] = dict(files)
    members[f"{di}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    members[f"{di}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: safelink-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    if entry_points:
        members[f"{di}/entry_points.txt"] = entry_points.encode()
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in members.items())
    record += f"{di}/RECORD,,\n"
    path = directory / f"{mod}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for p, d in [*members.items(), (f"{di}/RECORD", record.encode())]:
            info = zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            zf.writestr(info, d)
    return path


def small_files(prefix: str, n: int, lo: int, hi: int, seed: int) -> dict[str, bytes]:
    """*n* files of *lo*..*hi* bytes, 100 to a directory (random, incompressible)."""
    rng = random.Random(seed)
    out: dict[str, bytes] = {}
    for i in range(n):
        size = rng.randint(lo, hi)
        out[f"{prefix}/d{i // 100:03d}/f{i:05d}.py"] = os.urandom(size)
    return out


def big_files(prefix: str, n: int, size: int) -> dict[str, bytes]:
    return {f"{prefix}/big{i}.bin": os.urandom(size) for i in range(n)}


def quick_corpus(directory: Path) -> tuple[list[Path], Path]:
    """Two small generated wheels (300 files) and one tiny one, for ``--quick``."""
    a = make_wheel(directory, "quickpkg-a", "1.0", small_files("quickpkg_a", 200, 200, 4000, 1))
    b_files = small_files("quickpkg_b", 100, 200, 4000, 2)
    b_files["quickpkg_b/__init__.py"] = b"def main():\n    return 0\n"
    b = make_wheel(
        directory,
        "quickpkg-b",
        "1.0",
        b_files,
        entry_points="[console_scripts]\nquickpkg-b = quickpkg_b:main\n",
    )
    tiny = make_wheel(directory, "quicktiny", "1.0", {"quicktiny.py": b"X = 1\n"})
    return [a, b], tiny


# ------------------------------------------------------------------ what a tool did


def observe_files(root: Path, sample: int = 8) -> str:
    """How the largest files under *root* were placed: hardlink, shared extents, or copy.

    Looks only at the *sample* largest regular files (small files may be inline
    extents on btrfs, which are never shared).
    """
    sizes: list[tuple[int, str]] = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if name in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json"):
                continue
            p = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                st = os.lstat(p)
                if st.st_mode & 0o170000 == 0o100000:
                    sizes.append((st.st_size, p))
    sizes.sort(reverse=True)
    counts: dict[str, int] = {}
    for _size, p in sizes[:sample]:
        st = os.stat(p)
        if st.st_nlink > 1:
            kind = "hardlink"
        else:
            try:
                kind = "reflink" if loopfs.shared_extents(p) else "copy"
            except OSError:
                kind = "copy"
        counts[kind] = counts.get(kind, 0) + 1
    if not counts:
        return "nothing"
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    return found[0] if found else venv


def first(items: Iterable[str]) -> str | None:
    return next(iter(items), None)


# ------------------------------------------------------------------ inflate (cold)


def zlib_ng_module() -> Any:
    """``zlib_ng.zlib_ng`` (a drop-in for zlib) if the optional package is installed."""
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return None
    return zlib_ng


def inflate_cost(wheels: Sequence[Path], rounds: int = 3) -> dict[str, Any]:
    """Seconds to inflate and CRC-check every deflated member of *wheels*, one thread,
    with the standard library's zlib and with zlib-ng (best of *rounds*): the part of
    a cold install that a faster inflate can change."""
    import zlib

    raws: list[tuple[bytes, int]] = []
    for w in wheels:
        with zipfile.ZipFile(w) as zf:
            fp = zf.fp
            assert fp is not None
            for info in zf.infolist():
                if info.compress_type != zipfile.ZIP_DEFLATED:
                    continue
                fp.seek(info.header_offset)
                head = fp.read(30)
                skip = int.from_bytes(head[26:28], "little") + int.from_bytes(head[28:30], "little")
                fp.seek(info.header_offset + 30 + skip)
                raws.append((fp.read(info.compress_size), info.file_size))
    out: dict[str, Any] = {
        "members": len(raws),
        "bytes_out": sum(n for _, n in raws),
        "zlib_version": zlib.ZLIB_RUNTIME_VERSION,
    }
    ng = zlib_ng_module()
    for name, mod in (("zlib", zlib), ("zlib_ng", ng)):
        if mod is None:
            out[name] = None
            continue
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            for raw, size in raws:
                mod.crc32(mod.decompressobj(-15).decompress(raw, size + 1))
            best = min(best, time.perf_counter() - t0)
        out[name] = best
    if ng is not None:
        out["zlib_ng_version"] = getattr(ng, "ZLIBNG_VERSION", "?")
    return out
