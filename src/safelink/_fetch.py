"""Getting the wheels a lock selects into the cache: only the ones the cache lacks.

The cache is keyed by the wheel's sha256, which the lock carries, so a warm
cache needs neither the network nor the wheel file. Otherwise, per wheel:

* a local file (the lock's ``path`` or a ``file://`` URL) is hashed (the stat
  index remembers it) and must match the lock before it is admitted;
* a URL is streamed into a temporary file (``O_EXCL``) inside the cache, hashed
  and counted while it streams, refused as soon as it is longer than the lock
  says, and renamed to ``wheels/<sha256>/<file name>`` only when size and hash
  match; only then is it admitted. The kept wheel is what the guard re-extracts
  a modified cached file from.

Downloads run in parallel threads, with a time-out per read, retries with
back-off for what can be transient (connection errors, time-outs, 5xx, a
truncated body), none for what cannot (404, a hash mismatch). Proxies come from
the usual variables (``HTTPS_PROXY``, ``NO_PROXY``, ...; urllib reads them), CA
certificates from ``SSL_CERT_FILE``/``SSL_CERT_DIR`` (OpenSSL reads them) or
``PIP_CERT``/``REQUESTS_CA_BUNDLE``.

Why the standard library's urllib and not urllib3 or httpx: one GET per wheel,
streamed, is all this needs; urllib honours the proxy and CA variables, adds no
dependency and no import time to the warm path (it is imported only when
something must be downloaded). What it lacks is connection reuse, which costs
one TLS handshake per wheel: small next to the wheel itself, and hidden by the
parallel downloads.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from . import _layout
from ._cache import Cache, Entry
from ._fsops import unlink_quiet, write_all
from ._names import shown
from ._record import size_of
from .errors import DownloadFailed, InvalidLock, SafelinkError

if TYPE_CHECKING:
    import ssl

    from ._pylock import LockedWheel

_CHUNK = 1 << 18
_PERMANENT_HTTP = frozenset({400, 401, 403, 404, 405, 410, 451})

Progress = Callable[[str, int, int], None]
"""(wheel file name, done, total) after each wheel is ready."""


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, ""))
    except ValueError:
        return default


def ensure(
    cache: Cache,
    wheels: Sequence[LockedWheel],
    *,
    offline: bool = False,
    progress: Progress | None = None,
    max_unpacked: int | None = None,
) -> tuple[list[Entry], list[str]]:
    """The cache entry of every wheel, in order, and the names of those downloaded.

    Nothing is admitted unless its hash is the lock's; the first failure (in
    lock order) is raised after every download has stopped.
    """
    entries: list[Entry | None] = [cache.get(w.sha256) for w in wheels]
    missing = [i for i, e in enumerate(entries) if e is None]
    remote = [i for i in missing if not _local_file(wheels[i])]
    if remote and offline:
        names = ", ".join(wheels[i].filename for i in remote)
        raise DownloadFailed(
            f"--offline: {len(remote)} wheel(s) are neither in the cache nor on disk: {names}",
            "run once without --offline to download them",
        )
    downloaded: list[str] = []
    if remote:
        _download_all(cache, [wheels[i] for i in remote], progress)
        downloaded = [wheels[i].filename for i in remote]
    for i in missing:
        w = wheels[i]
        local = _local_file(w) or _layout.kept_wheel(cache.root, w.sha256, w.filename)
        entries[i] = _admit_local(cache, w, local, max_unpacked)
    out: list[Entry] = []
    for w, e in zip(wheels, entries, strict=True):
        assert e is not None
        _check_entry(w, e)
        out.append(e)
    return out, downloaded


def _local_file(w: LockedWheel) -> str | None:
    if w.path is not None and (os.path.isfile(w.path) or w.url is None):
        return w.path
    return None


def _admit_local(cache: Cache, w: LockedWheel, path: str, max_unpacked: int | None) -> Entry:
    if not os.path.isfile(path):
        raise InvalidLock(
            f"wheel {w.filename} for {w.spec} not found at {shown(path)}",
            "fetch the wheels the lock names, or lock again",
        )
    got = cache.indexed_sha256(path) or _sha256_file(path)  # nothing kept before it matches
    if got != w.sha256:
        raise InvalidLock(
            f"{shown(path)}: sha256 {got} does not match the lock's {w.sha256} for {w.spec}",
            "the file changed since it was locked; lock again or restore it",
        )
    entry = cache.admit(path, max_unpacked=max_unpacked)
    if entry.sha256 != w.sha256:  # replaced between the hash and the admission
        raise InvalidLock(f"{shown(path)} changed while it was read; nothing was installed")
    return entry


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _check_entry(w: LockedWheel, entry: Entry) -> None:
    """The wheel with the locked hash must be the locked project and version."""
    from packaging.utils import canonicalize_name

    plan = entry.plan
    if canonicalize_name(plan.name) != w.name or plan.version != w.version:
        from packaging.version import InvalidVersion, Version

        try:
            same = canonicalize_name(plan.name) == w.name and Version(plan.version) == Version(
                w.version
            )
        except InvalidVersion:
            same = False
        if not same:
            raise InvalidLock(
                f"the wheel with sha256 {w.sha256} is {plan.name} {plan.version}, "
                f"but the lock names it for {w.spec}",
                "the lock is wrong; lock again",
            )


# -- downloads ---------------------------------------------------------------------


def _download_all(cache: Cache, wheels: list[LockedWheel], progress: Progress | None) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ctx = _ssl_context()
    jobs = int(_env_number("SAFELINK_DOWNLOADS", 4)) or 1
    done = 0
    with ThreadPoolExecutor(min(jobs, len(wheels)), thread_name_prefix="safelink-get") as pool:
        futures = [pool.submit(_download, cache, w, ctx) for w in wheels]
        errors: list[BaseException] = []
        for w, fut in zip(wheels, futures, strict=True):
            try:
                fut.result()
            except BaseException as exc:
                errors.append(exc)
                for other in futures:
                    other.cancel()
                continue
            done += 1
            if progress:
                progress(w.filename, done, len(wheels))
        if errors:
            raise errors[0]


def _ssl_context() -> ssl.SSLContext:
    import ssl

    cafile = os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE") or None
    if cafile and not os.path.exists(cafile):
        cafile = None
    # create_default_context() loads OpenSSL's defaults, which honour SSL_CERT_FILE/DIR.
    return ssl.create_default_context(cafile=cafile)


def _download(cache: Cache, w: LockedWheel, ctx: ssl.SSLContext) -> str:
    assert w.url is not None
    final = _layout.kept_wheel(cache.root, w.sha256, w.filename)
    if os.path.isfile(final):
        return final  # an earlier download, verified before it was renamed here
    try:
        tmp_dir = cache.ensure_dir(_layout.TMP)
    except OSError as exc:
        raise SafelinkError(
            f"cannot write to the cache at {cache.base}: {exc.strerror}",
            "set SAFELINK_CACHE_DIR or --cache-dir to a writable directory",
        ) from None
    retries = int(_env_number("SAFELINK_HTTP_RETRIES", 3))
    timeout = _env_number("SAFELINK_HTTP_TIMEOUT", 30.0)
    delay = 0.5
    attempt = 0
    while True:
        tmp = _layout.temp_path(tmp_dir, _layout.DOWNLOAD)
        try:
            _get_once(w, tmp, ctx, timeout)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)
            return final
        except _Transient as exc:
            unlink_quiet(tmp)
            if attempt >= retries:
                raise DownloadFailed(
                    f"downloading {w.filename} from {shown(w.url)} failed: {exc}",
                    f"tried {attempt + 1} time(s); check the network or proxy settings; "
                    "nothing was installed",
                ) from None
            attempt += 1
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
        except BaseException:
            unlink_quiet(tmp)
            raise


def _why(exc: object) -> str:
    """An OSError's words without its errno number; anything else as it says itself."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, TimeoutError) or type(exc).__name__ == "timeout":
        return "timed out"
    return str(exc) or type(exc).__name__


class _Transient(Exception):
    """A failure worth retrying."""


def _get_once(w: LockedWheel, tmp: str, ctx: ssl.SSLContext, timeout: float) -> None:
    import http.client
    import urllib.error
    import urllib.request

    from . import __version__

    assert w.url is not None
    request = urllib.request.Request(w.url, headers={"User-Agent": f"safelink/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout, context=ctx)
    except urllib.error.HTTPError as exc:
        if exc.code in _PERMANENT_HTTP:
            raise DownloadFailed(
                f"downloading {w.filename} from {shown(w.url)} failed: "
                f"HTTP {exc.code} {shown(str(exc.reason))}",
                "the index no longer serves this file; lock again; nothing was installed",
            ) from None
        raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _Transient(_why(exc.reason)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Transient(_why(exc)) from None
    h = hashlib.sha256()
    size = 0
    limit = w.size
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with response:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Transient(f"{_why(exc)} after {size:,} bytes") from None
                if not chunk:
                    break
                size += len(chunk)
                if limit is not None and size > limit:
                    raise DownloadFailed(
                        f"{shown(w.url or '')} sent more than the {limit:,} bytes the lock says "
                        f"{w.filename} has",
                        "the file on the index changed; lock again; nothing was installed",
                    )
                h.update(chunk)
                write_all(fd, chunk)
    finally:
        os.close(fd)
    announced = response.headers.get("Content-Length", "")
    expected = limit if limit is not None else size_of(announced)
    if expected is not None and size < expected:
        raise _Transient(f"the connection closed after {size:,} of {expected:,} bytes")
    got = h.hexdigest()
    if got != w.sha256:
        raise DownloadFailed(
            f"{shown(w.url or '')}: sha256 {got} does not match the lock's {w.sha256} for {w.spec}",
            "the file on the index is not the one that was locked; nothing was installed",
        )
