"""Is this wheel for that interpreter? Answered without importing ``packaging`` on warm runs.

``packaging.tags`` computes the full list of tags an interpreter supports
(hundreds of manylinux variants); that costs a few milliseconds on every
start-up. The list depends only on the implementation, version, ABI flavour and
machine, so it is computed once and remembered in the cache; a wheel's own
tags come straight from its filename (PEP 427: ``py-abi-platform`` with
``.``-compressed sets).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from ._environment import Target


def filename_tags(filename: str) -> set[str] | None:
    """Expanded ``py-abi-plat`` tags of a wheel filename, or None if it is malformed."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6):
        return None
    pys, abis, plats = (p.lower().split(".") for p in parts[-3:])
    return {f"{py}-{abi}-{plat}" for py in pys for abi in abis for plat in plats}


def _libc() -> str:
    """The C library's identity: what ``manylinux``/``musllinux`` tags depend on."""
    if not sys.platform.startswith("linux"):
        return ""
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        glibc = None
    if glibc:
        return glibc
    import glob

    for loader in sorted(glob.glob("/lib/ld-musl-*.so.1")):  # musl: its loader is the libc
        try:
            st = os.stat(loader)
        except OSError:
            continue
        return f"musl {loader} {st.st_size} {st.st_mtime_ns}"
    return "unknown libc"


def _os_version() -> str:
    if sys.platform == "darwin":  # pragma: no cover - macOS tags name the OS version
        import platform

        return platform.mac_ver()[0]
    return ""


def _key(target: Target) -> str:
    """Everything the tag list depends on: the interpreter (path, size, mtime, version,
    ABI), the machine, the C library and OS version, and the ``packaging`` version.

    A cache shared between machines (an NFS home, a CI cache) then never hands
    one host's tag list to another host.
    """
    import packaging

    from ._record import sha256

    try:
        st = os.stat(target.python)
        interpreter = f"{os.path.realpath(target.python)}\0{st.st_size}\0{st.st_mtime_ns}"
    except OSError:
        interpreter = target.python
    machine = os.uname().machine if hasattr(os, "uname") else "unknown"
    ft = "t" if target.free_threaded else ""
    major, minor = target.version
    kind = f"{target.implementation}-{major}.{minor}{ft}-{sys.platform}-{machine}"
    parts = (kind, interpreter, _libc(), _os_version(), packaging.__version__)
    digest = sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()
    return f"{kind}-{digest[:32]}"


def supported(target: Target, cache_root: str | None) -> set[str]:
    """Tags *target* accepts, from the cache when this kind of interpreter was seen before."""
    from ._layout import tags_file

    path = tags_file(cache_root, _key(target)) if cache_root else None
    if path:
        try:
            with open(path, "rb") as f:  # bytes.decode: no codec module to import
                tags = set(f.read().decode("ascii").split())
            if tags:
                return tags
        except OSError:
            pass
    tags = target.supported_tags()
    if path:
        from ._atomic import remember

        remember(path, "\n".join(sorted(tags)).encode("ascii"))
    return tags
