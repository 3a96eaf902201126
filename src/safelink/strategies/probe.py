"""Capability probes: what each mode really does between a cache and a target.

Real trial operations in the two actual directories, not guesses from
filesystem names (overlayfs, bind mounts, NFS and FUSE all lie in names). The
answer is remembered per (cache filesystem, target filesystem) pair, in memory
and in the cache, so later processes skip the probe. Trial files carry the
prober's pid in their name (``_layout``'s probe kind); a probe first sweeps trial
files of dead processes, so even a probe killed mid-way leaves nothing behind for long.
"""

from __future__ import annotations

import errno
import os

from .. import _layout
from .._dataclass import dataclass
from .._jsontext import dumps, loads
from . import DirPair, close_dir, get, open_dir

PROBED_MODES = ("clone", "hardlink", "copy", "symlink")
_memory: dict[str, ProbeResult] = {}


@dataclass(frozen=True)
class ProbeResult:
    """Per mode: ``None`` if it worked, else the error it gave (``"EXDEV: ..."``)."""

    modes: dict[str, str | None]
    same_filesystem: bool

    def works(self, mode: str) -> bool:
        return mode in self.modes and self.modes[mode] is None

    def to_json(self) -> str:
        return dumps({"modes": self.modes, "same_filesystem": self.same_filesystem})

    @classmethod
    def from_json(cls, text: str) -> ProbeResult | None:
        """The result :meth:`to_json` wrote, or None for any other document (malformed,
        another shape, a mode that is not probed or missing): treated as no record."""
        try:
            d = loads(text)
        except ValueError:
            return None
        if not isinstance(d, dict) or set(d) != {"modes", "same_filesystem"}:
            return None
        modes, same = d["modes"], d["same_filesystem"]
        if not isinstance(modes, dict) or set(modes) != set(PROBED_MODES):
            return None
        if not all(v is None or isinstance(v, str) for v in modes.values()):
            return None
        if not isinstance(same, bool):
            return None
        return cls(dict(modes), same)


def describe_errno(exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return f"{code}: {exc.strerror or exc}"


def _fs_key(path: str) -> str:
    st = os.stat(path)
    try:
        fsid = os.statvfs(path).f_fsid
    except (OSError, AttributeError):
        fsid = 0
    return f"{st.st_dev:x}.{fsid:x}"


def pair_key(cache_dir: str, target_dir: str) -> str:
    return f"{_fs_key(cache_dir)}-{_fs_key(target_dir)}"


_PROBE_KIND = frozenset({_layout.PROBE})


def sweep(directory: str) -> None:
    """Remove trial files that a killed probe left in *directory*."""
    try:
        names = [n for n in os.listdir(directory) if _layout.temp_is_stale(n, _PROBE_KIND)]
    except OSError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def run_probe(scratch_dir: str, target_dir: str) -> ProbeResult:
    """Try every mode once from *scratch_dir* (inside the cache) into *target_dir*."""
    sweep(scratch_dir)
    sweep(target_dir)
    stamp = _layout.temp_name(_layout.PROBE)
    src = stamp + ".src"
    modes: dict[str, str | None] = {}
    sfd = open_dir(scratch_dir)
    dfd = open_dir(target_dir)
    pair = DirPair(scratch_dir, sfd, target_dir, dfd)
    try:
        fd = os.open(pair.src(src), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444, dir_fd=sfd)
        try:
            os.write(fd, b"safelink link-mode probe\n" * 200)
        finally:
            os.close(fd)
        for mode in PROBED_MODES:
            dst = f"{stamp}.{mode}"
            try:
                get(mode).link(pair, src, dst, False)
            except OSError as exc:
                modes[mode] = describe_errno(exc)
            else:
                modes[mode] = None
            finally:
                try:
                    os.unlink(pair.dst(dst), dir_fd=dfd)
                except OSError:
                    pass
        os.unlink(pair.src(src), dir_fd=sfd)
    finally:
        close_dir(sfd)
        close_dir(dfd)
    same = os.stat(scratch_dir).st_dev == os.stat(target_dir).st_dev
    return ProbeResult(modes, same)


def probe(cache_root: str, target_dir: str, *, refresh: bool = False) -> ProbeResult:
    """The remembered probe for this pair of filesystems, running it if needed."""
    scratch = _layout.tmp_dir(cache_root)
    os.makedirs(scratch, exist_ok=True)
    key = pair_key(scratch, target_dir)
    if not refresh and key in _memory:
        return _memory[key]
    store = _layout.probe_file(cache_root, key)
    if not refresh:
        try:
            with open(store, "rb") as f:
                found = ProbeResult.from_json(f.read().decode("utf-8"))
        except (OSError, ValueError):  # ValueError: not UTF-8
            found = None
        if found is not None:
            _memory[key] = found
            return found
    result = run_probe(scratch, target_dir)
    _memory[key] = result
    from .._atomic import remember

    remember(store, result.to_json().encode())
    return result


def forget(key: str | None = None) -> None:
    """Drop remembered probes from memory (all, or one pair)."""
    if key is None:
        _memory.clear()
    else:
        _memory.pop(key, None)
