"""A PEP 751 ``pylock.toml``: read it, and choose one wheel per package for a target.

Selection is ``packaging.pylock``'s (the spec's algorithm), run against the
*target* interpreter's marker environment and wheel tags, not safelink's own.
What comes out is a list of :class:`LockedWheel`: the sha256 (safelink's cache
key), where to get the file (a local path or a URL) and the size the lock
promises. Anything the target would have to build (an sdist, a VCS checkout, a
directory) is refused here, all of them in one message, before anything changes.

The lock file is untrusted input: its paths must stay inside the lock's
directory, its URLs must be ``https``, ``http`` or ``file``, its wheel names must
be plain file names whose project and version match the package.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from . import _layout
from ._environment import Target
from ._names import shown
from ._record import size_of
from .errors import InvalidLock

if TYPE_CHECKING:
    from packaging.pylock import Pylock

    from ._cache import Cache


@dataclass(frozen=True)
class LockedWheel:
    """The wheel a lock selects for one package."""

    name: str
    """Canonical project name (PEP 503)."""
    version: str
    filename: str
    sha256: str
    size: int | None
    """The size the lock promises, checked on download."""
    path: str | None
    """A local file (the lock's ``path``, or a ``file://`` URL), absolute."""
    url: str | None
    """An ``https://`` (or ``http://``) URL, when there is no local file."""

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


def read_lock(lock: str | os.PathLike[str]) -> Pylock:
    """Parse and validate *lock*; every problem is one :class:`InvalidLock` line."""
    path = os.fspath(lock)
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found]
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise InvalidLock(f"cannot read lock file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidLock(f"{path}: not a valid TOML file ({shown(str(exc))})") from None
    return parse_lock(data, path)


def parse_lock(data: Mapping[str, Any], path: str) -> Pylock:
    import logging

    from packaging.pylock import Pylock, PylockValidationError
    from packaging.version import InvalidVersion, Version

    raw = data.get("lock-version")
    try:
        version = Version(str(raw)) if isinstance(raw, str) else None
    except InvalidVersion:
        version = None
    if version is not None and Version("1.0") < version < Version("2.dev0"):
        from ._log import warn

        warn(f"{path}: lock-version {shown(str(raw))} is newer than 1.0; reading it as 1.0")
    elif version is not None and not Version("1") <= version < Version("2.dev0"):
        raise InvalidLock(
            f"{path}: lock-version {raw!r} is not supported (this safelink reads 1.x)",
            "upgrade safelink or write the lock with a locker that emits lock-version 1.0",
        )
    quiet = logging.getLogger("packaging.pylock")
    before = quiet.level
    quiet.setLevel(logging.ERROR)  # its minor-version warning was given above, once
    try:
        return Pylock.from_dict(data)
    except PylockValidationError as exc:
        raise InvalidLock(f"{path}: not a valid pylock file: {shown(str(exc))}") from None
    finally:
        quiet.setLevel(before)


# -- the target's marker environment ---------------------------------------------

_MARKERS_QUERY = r"""
import json, os, platform, sys
def fmt(v):
    s = "%d.%d.%d" % (v.major, v.minor, v.micro)
    if v.releaselevel != "final":
        s += v.releaselevel[0] + str(v.serial)
    return s
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": fmt(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
"""


def marker_environment(target: Target) -> dict[str, str]:
    """PEP 508 marker values of *target*'s interpreter.

    The running interpreter answers for itself; a CPython venv is described from
    its ``pyvenv.cfg`` (full version) plus this machine's platform values, with no
    process started; any other interpreter is asked once (``-I -S``: no ``site``,
    so no ``.pth`` file of the target runs).
    """
    from packaging.markers import default_environment

    here = {str(k): str(v) for k, v in default_environment().items()}
    try:
        same = os.path.realpath(target.python) == os.path.realpath(sys.executable)
    except OSError:
        same = False
    if same:
        return here
    full = _venv_full_version(target) if target.implementation == "cpython" else None
    if full is not None and sys.implementation.name == "cpython":
        here.update(
            python_full_version=full,
            implementation_version=full,
            python_version=".".join(full.split(".")[:2]),
        )
        return here
    import json
    import subprocess

    try:
        out = subprocess.run(
            [target.python, "-I", "-S", "-c", _MARKERS_QUERY],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        env = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        from .errors import TargetError

        raise TargetError(f"{target.python}: cannot query this interpreter ({exc})") from None
    return {str(k): str(v) for k, v in dict(env).items()}


def _venv_full_version(target: Target) -> str | None:
    """``X.Y.Z`` from a venv's ``pyvenv.cfg`` when it agrees with the target's version."""
    if target.kind != "venv":
        return None
    try:
        with open(os.path.join(target.root, "pyvenv.cfg"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() in ("version_info", "version"):
            parts = value.strip().split(".")[:3]
            if (
                len(parts) == 3
                and all(size_of(p) is not None for p in parts)
                and (int(parts[0]), int(parts[1])) == tuple(target.version)
            ):
                return ".".join(parts)
    return None


# -- selection ----------------------------------------------------------------------

_MEMO_FORMAT = 1


class Remembered:
    """A selection and where it is remembered (see :func:`select_remembered`)."""

    def __init__(self, wheels: list[LockedWheel], path: str | None, known: bool) -> None:
        self.wheels = wheels
        self.path = path
        self.known = known

    def keep(self) -> None:
        """Remember it (best effort): call once the sync it served has succeeded, so a
        failed or refused sync leaves the cache as it was."""
        if self.path is not None and not self.known:
            from ._atomic import remember

            remember(self.path, json.dumps([asdict(w) for w in self.wheels]).encode())


def select_remembered(
    lock: str,
    target: Target,
    cache: Cache,
    *,
    extras: Collection[str] = (),
    groups: Collection[str] | None = None,
) -> Remembered:
    """:func:`select`, remembered in the cache per lock content, target and options.

    Selection depends only on the lock's bytes (and where it is: paths are relative
    to it), the extras and groups, and the target interpreter (its marker values and
    tags: its binary, its ``pyvenv.cfg``, this machine's kernel and C library) and
    the selecting code's version. With all of those the same, the answer is read
    back from one small file instead of importing ``packaging`` and evaluating
    markers and tags again: what a no-op sync costs.
    """
    try:
        with open(lock, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InvalidLock(f"cannot read lock file {lock}: {exc.strerror}") from None
    key = _memo_key(data, lock, target, extras, groups)
    path = _layout.selection_file(cache.root, key) if key else None
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                return Remembered([LockedWheel(**row) for row in json.load(f)], path, True)
        except (OSError, ValueError, TypeError):
            pass
    return Remembered(select(lock, target, extras=extras, groups=groups), path, False)


def _memo_key(
    data: bytes,
    lock: str,
    target: Target,
    extras: Collection[str],
    groups: Collection[str] | None,
) -> str | None:
    """Everything selection depends on, hashed; None when the target cannot be pinned down."""
    import hashlib

    from . import __version__

    try:
        python = os.path.realpath(target.python)
        st = os.stat(python)
    except OSError:
        return None
    cfg = b""
    if target.kind == "venv":
        try:
            with open(os.path.join(target.root, "pyvenv.cfg"), "rb") as f:
                cfg = f.read()
        except OSError:
            return None
    uname = os.uname() if hasattr(os, "uname") else ()
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        libc = ""
    parts = [
        str(_MEMO_FORMAT),
        __version__,
        _packaging_version(),
        lock,
        python,
        f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}",
        target.kind,
        json.dumps([target.version, target.implementation, target.free_threaded]),
        json.dumps(list(uname)),
        libc,
        sys.platform,
        json.dumps(sorted(extras)),
        json.dumps(None if groups is None else sorted(groups)),
    ]
    h = hashlib.sha256(data)
    h.update("\0".join(parts).encode("utf-8", "surrogateescape"))
    h.update(b"\0" + cfg)
    return h.hexdigest()


def _packaging_version() -> str:
    import packaging  # only its small __init__

    return str(packaging.__version__)



def select(
    lock: str | os.PathLike[str],
    target: Target,
    *,
    extras: Collection[str] = (),
    groups: Collection[str] | None = None,
) -> list[LockedWheel]:
    """The wheels *lock* selects for *target*, in lock order.

    Raises :class:`InvalidLock` for a lock that is malformed, does not cover the
    target (``requires-python``, ``environments``), selects a package twice, names
    unknown extras or groups, or selects anything that is not a wheel.
    """
    from packaging.pylock import (
        PackageArchive,
        PackageWheel,
        PylockSelectError,
    )
    from packaging.tags import Tag, parse_tag
    from packaging.utils import InvalidWheelFilename

    path = os.path.abspath(os.fspath(lock))
    pylock = read_lock(path)
    env = marker_environment(target)
    tags: list[Tag] = []
    for text in target.tag_list():
        tags.extend(parse_tag(text))
    out: list[LockedWheel] = []
    unbuildable: list[str] = []
    try:
        chosen = list(
            pylock.select(
                environment=env,  # type: ignore[arg-type]
                tags=tags,
                extras=extras,
                dependency_groups=groups,
            )
        )
    except PylockSelectError as exc:
        raise InvalidLock(
            f"{path}: {shown(str(exc))}",
            f"this lock does not cover {target.python} "
            f"(Python {env.get('python_full_version', '?')})"
            if "does not satisfy" in str(exc) or "No wheel" in str(exc)
            else None,
        ) from None
    except InvalidWheelFilename as exc:
        raise InvalidLock(f"{path}: {shown(str(exc))}") from None
    for package, source in chosen:
        if isinstance(source, PackageWheel):
            out.append(_wheel(path, package, source.filename, source.hashes, source))
        elif isinstance(source, PackageArchive) and _archive_name(source).endswith(".whl"):
            out.append(_wheel(path, package, _archive_name(source), source.hashes, source))
        else:
            kind = {
                "PackageSdist": "an sdist",
                "PackageVcs": "a VCS checkout",
                "PackageDirectory": "a local directory",
                "PackageArchive": "a source archive",
            }.get(type(source).__name__, "a non-wheel source")
            version = f" {package.version}" if package.version else ""
            unbuildable.append(f"{package.name}{version} ({kind})")
    if unbuildable:
        raise InvalidLock(
            f"{path}: no wheel for {len(unbuildable)} package(s) this target needs: "
            + ", ".join(unbuildable),
            "build wheels for them (e.g. 'pip wheel --no-deps'), add them to the index "
            "and lock again; safelink installs wheels only",
        )
    return out


def _archive_name(source: Any) -> str:
    from urllib.parse import unquote, urlparse

    if source.path:
        return str(source.path).replace("\\", "/").rsplit("/", 1)[-1]
    return unquote(urlparse(str(source.url or "")).path.rsplit("/", 1)[-1])


def _wheel(
    lock: str, package: Any, filename: str, hashes: Mapping[str, str], source: Any
) -> LockedWheel:
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

    where = f"{shown(lock)}: package {shown(str(package.name))}"
    if not filename or filename != os.path.basename(filename) or "\\" in filename:
        raise InvalidLock(f"{where}: wheel name {filename!r} is not a plain file name")
    if any(ord(c) < 32 or ord(c) == 127 for c in filename):
        raise InvalidLock(f"{where}: wheel name {filename!r} has control characters")
    try:
        wname, wversion, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        raise InvalidLock(f"{where}: {filename!r} is not a wheel file name") from None
    if canonicalize_name(wname) != package.name or (
        package.version is not None and wversion != package.version
    ):
        raise InvalidLock(
            f"{where} {shown(str(package.version or ''))}: its wheel {filename!r} is for "
            f"{wname} {wversion}".replace("  ", " ")
        )
    sha = str(hashes.get("sha256", "")).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise InvalidLock(
            f"{where}: wheel {filename} has no sha256 hash",
            "lock with a tool that records sha256 hashes (pip lock, uv)",
        )
    local, url = _location(lock, where, source.path, source.url)
    return LockedWheel(
        name=str(package.name),
        version=str(package.version or wversion),
        filename=filename,
        sha256=sha,
        size=source.size,
        path=local,
        url=url,
    )


def _location(
    lock: str, where: str, path: str | None, url: str | None
) -> tuple[str | None, str | None]:
    """(local file, remote URL) of a wheel; paths must stay inside the lock's directory."""
    local: str | None = None
    if path:
        base = os.path.dirname(lock)
        rel = path.replace("\\", "/") if os.sep == "/" else path
        full = os.path.normpath(os.path.join(base, rel))
        if os.path.isabs(rel) or os.path.commonpath([base, full]) != base:
            raise InvalidLock(
                f"{where}: path {path!r} is outside the lock file's directory {base}",
                "keep wheels beside (or below) the lock file, or give a file:// URL",
            )
        local = full
    if url:
        from urllib.parse import urlparse

        parsed = urlparse(url)
        if parsed.scheme == "file":
            if parsed.netloc not in ("", "localhost"):
                raise InvalidLock(f"{where}: {url!r} is not a local file URL")
            if local is None:
                from urllib.request import url2pathname

                local = os.path.abspath(url2pathname(parsed.path))
            return local, None
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise InvalidLock(
                f"{where}: cannot download {url!r} (only https, http and file URLs)",
            )
        return local, url
    if local is None:
        raise InvalidLock(f"{where}: its wheel has neither a path nor a URL")
    return local, None
