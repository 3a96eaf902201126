"""An ``installer`` destination that links files from the safelink cache.

Tools built on PyPA installer (https://installer.pypa.io/) drive an install as
``installer.install(source, destination, additional_metadata)``: the source
streams every member of the wheel and the destination writes it. That
stream is the slow part (decompress, hash, write: about 100 µs per file).
:class:`LinkingDestination` is a drop-in for installer's
``SchemeDictionaryDestination`` that knows which wheel is being installed,
admits it to the safelink cache once, and then answers each ``write_file``
for a file the cache holds by linking the cached file (with the same link
modes, fallback and guard as :func:`safelink.install`) instead of reading
the stream. Everything the cache does not hold verbatim — ``#!python``
scripts, entry-point launchers, ``additional_metadata``, ``RECORD`` — is
written the way installer writes it, so the installed tree is the same.

Switching is a one-line change::

    with WheelFile.open(path) as source:
        installer.install(
            source,
            LinkingDestination(path, scheme_dict=scheme_dict, interpreter=python,
                               script_kind="posix"),
            {"INSTALLER": b"mytool"},
        )

or, installing into a venv that safelink describes itself::

    install_with_installer(LinkingDestination(path, ".venv"), {"INSTALLER": b"mytool"})

What it does **not** add: the environment lock, the journal and the rollback
of :func:`safelink.install`. Like installer's own destination it writes in
place; use :func:`safelink.install` when you want those.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry
from installer.utils import Scheme, copyfileobj_with_hashing

from ._atomic import replacing
from ._cache import Cache
from ._environment import Target, resolve_target
from ._guard import Guard
from ._link import Job, Linker
from ._log import warn
from ._plan import LinkRow
from ._policy import Fallback, decide, fallback_warning
from .errors import TargetError
from .strategies import DirPair, close_dir, open_dir

if TYPE_CHECKING:
    from installer.scripts import LauncherKind


__all__ = ["LinkingDestination", "install_with_installer"]


class LinkingDestination(SchemeDictionaryDestination):
    """A ``WheelDestination`` for *wheel* that links the files the safelink cache holds.

    Where the files go is either a safelink *target* (a venv directory, an
    interpreter path, a :class:`safelink.Target`, or ``None`` for the running
    environment) or, exactly as for ``SchemeDictionaryDestination``, a
    *scheme_dict* with *interpreter* and *script_kind*. *link_mode*,
    *allow_fallback* and *guard* mean what they mean for
    :func:`safelink.install`.

    The wheel is admitted to *cache* when the destination is created, so a
    broken or hostile wheel raises :class:`safelink.InvalidWheel` (or a
    subclass) before anything is written, and the link mode is chosen (and
    checked, for an explicit mode) at the same time.

    *source* given to ``installer.install`` must be opened from the same
    *wheel* file: a file is linked only when installer asks for a path that
    the cached wheel has, with the same executable bit, the same member name
    and a RECORD hash in *hash_algorithm*; anything else is written from the
    stream. :func:`install_with_installer` opens the right source for you.
    """

    def __init__(
        self,
        wheel: str | os.PathLike[str],
        target: Target | str | os.PathLike[str] | None = None,
        *,
        cache: Cache | str | os.PathLike[str] | None = None,
        link_mode: str = "auto",
        allow_fallback: bool | None = None,
        guard: Guard | str = Guard.CHECK,
        scheme_dict: Mapping[str, str] | None = None,
        interpreter: str | None = None,
        script_kind: LauncherKind | None = None,
        hash_algorithm: str = "sha256",
        bytecode_optimization_levels: Collection[int] = (),
        destdir: str | None = None,
        overwrite_existing: bool = False,
        max_unpacked: int | None = None,
    ) -> None:
        self.wheel = os.path.abspath(os.fspath(wheel))
        """The wheel this destination installs; open the installer source from it."""
        self.cache = cache if isinstance(cache, Cache) else Cache(cache)
        # Admission first: it validates the wheel, and nothing below may touch
        # the target for a wheel that turns out to be bad.
        self.entry = self.cache.admit(self.wheel, max_unpacked=max_unpacked)
        plan = self.entry.plan

        if scheme_dict is None:
            tgt = resolve_target(target, cache_root=self.cache.root)
            scheme_dict = {
                "purelib": tgt.purelib,
                "platlib": tgt.platlib,
                "scripts": tgt.scripts,
                "headers": tgt.scheme_root("headers", plan.name),
                "data": tgt.data,
            }
            interpreter = interpreter or tgt.python
            env_root: str | None = tgt.root
        elif target is not None:
            raise TargetError("give LinkingDestination either a target or a scheme_dict, not both")
        else:
            env_root = None
        if interpreter is None:
            raise TargetError("LinkingDestination(scheme_dict=...) needs interpreter=")
        if script_kind is None:
            from installer.utils import get_launcher_kind

            script_kind = get_launcher_kind()
        super().__init__(
            scheme_dict=dict(scheme_dict),
            interpreter=interpreter,
            script_kind=script_kind,
            hash_algorithm=hash_algorithm,
            bytecode_optimization_levels=bytecode_optimization_levels,
            destdir=destdir,
        )
        # installer >= 0.8 has this field; 0.7 does not, and our write_to_fs
        # (which both versions route through) is what honours it.
        self.overwrite_existing = overwrite_existing

        # Scheme roots with destdir applied, so the per-file path is one join
        # (installer's own per-file path check costs ~75 µs in pathlib; linked
        # paths come from the validated plan and need no second check).
        self._roots = {s: self._abs(Scheme(s), "") for s in self.scheme_dict}
        site = self._roots[plan.root_scheme]
        os.makedirs(site, exist_ok=True)  # the probe runs real trial links in it
        self._env_root = env_root if env_root is not None and destdir is None else site
        guard = Guard(guard)
        # The same decision as safelink.install(), a cache the probe cannot use included.
        decision = decide(
            self.cache.root,
            self.cache.base,
            site,
            link_mode,
            guard=guard,
            owner_root=site,
            allow_fallback=allow_fallback,
        )
        self.link_mode = decision.mode
        """The mode chosen (``auto`` resolves to ``clone``, ``hardlink`` or ``copy``)."""
        self._decision_warnings = list(decision.warnings)
        for w in decision.warnings:
            warn(w)
        self._linker = Linker(
            decision.chain,
            allow_fallback=decision.allow_fallback,
            guard=guard is not Guard.OFF,
            displace=self._displace,
            threads=1,  # installer hands us one file at a time
        )
        # (scheme, destination path) -> the cached file installer may ask for.
        self._rows: dict[tuple[str, str], LinkRow] = {
            (scheme, row[1]): row for scheme, rows in plan.links.items() for row in rows
        }
        self._written = 0
        self._made: set[str] = set()

    # -- what happened -----------------------------------------------------
    @property
    def files_by_mode(self) -> dict[str, int]:
        """Files placed per link mode so far, plus ``written``: files installer wrote itself.

        ``written`` counts what the cache cannot hold verbatim: ``#!python``
        scripts, entry-point launchers, ``additional_metadata`` and RECORD.
        """
        out = dict(self._linker.stats.counts)
        if self._written:
            out["written"] = self._written
        return out

    @property
    def fallbacks(self) -> list[Fallback]:
        """Each switch to a slower mode (at most one per mode, not one per file)."""
        return list(self._linker.stats.fallbacks)

    @property
    def warnings(self) -> list[str]:
        """What the user should know (cross-filesystem copies, fallbacks); also logged."""
        fallbacks = [fallback_warning(fb, self.cache.base) for fb in self._linker.stats.fallbacks]
        return self._decision_warnings + fallbacks

    @property
    def healed(self) -> list[str]:
        """Cached files found written through a hardlink and restored before use."""
        return list(self._linker.stats.healed)

    # -- the WheelDestination protocol ---------------------------------------
    def write_file(
        self,
        scheme: Scheme,
        path: str | os.PathLike[str],
        stream: BinaryIO,
        is_executable: bool,
    ) -> RecordEntry:
        """Link *path* from the cache when the cache holds it verbatim; else write *stream*.

        The RECORD entry of a linked file is the one the wheel's RECORD gave
        (checked when the wheel was admitted), so nothing is read or hashed.
        """
        rel = os.fspath(path)
        row = self._rows.get((scheme, rel))
        if (
            row is None
            or row[4] != is_executable
            or getattr(stream, "name", row[0]) != row[0]
            or not row[3].startswith(self.hash_algorithm + "=")
        ):
            return super().write_file(scheme, path, stream, is_executable)
        src, _, size, digest, executable = row
        parent, name = os.path.split(os.path.join(self._roots[scheme], rel))
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        files = self.entry.files
        src_fd = open_dir(files)
        try:
            dst_fd = open_dir(parent)
            try:
                pair = DirPair(files, src_fd, parent, dst_fd)
                self._linker.run([Job(pair, [(src, name, size, digest, executable)], self._heal)])
            finally:
                close_dir(dst_fd)
        finally:
            close_dir(src_fd)
        return RecordEntry(rel, Hash.parse(digest), size)

    def write_to_fs(
        self,
        scheme: Scheme,
        path: str,
        stream: BinaryIO,
        is_executable: bool,
    ) -> RecordEntry:
        """Write *stream* to a temporary name and rename it into place.

        installer opens the destination with ``"wb"``, which would write
        *through* an existing file; if that file were a hardlink into the
        cache (an earlier install with ``overwrite_existing``), the cache
        would be edited. A fresh inode never shares anything.
        """
        target = self._abs(scheme, path)
        if not self.overwrite_existing and os.path.lexists(target):
            raise FileExistsError(f"File already exists: {target}")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.safelink-{os.getpid()}-{threading.get_ident()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with replacing(target, tmp), os.fdopen(fd, "wb") as f:
            digest, size = copyfileobj_with_hashing(stream, f, self.hash_algorithm)
            if is_executable and hasattr(os, "fchmod"):  # installer's rule: x where r
                mode = os.fstat(f.fileno()).st_mode & 0o777
                os.fchmod(f.fileno(), mode | (mode & 0o444) >> 2)
        self._written += 1
        return RecordEntry(path, Hash(self.hash_algorithm, digest), size)

    def finalize_installation(
        self,
        scheme: Scheme,
        record_file_path: str,
        records: Iterable[tuple[Scheme, RecordEntry]],
    ) -> None:
        """Write RECORD (and bytecode) as installer does, then remember the environment.

        The environment is registered with the cache entry so that
        ``safelink verify`` and ``safelink repair`` look at it.
        """
        dist_info = self.entry.plan.dist_info
        if record_file_path != f"{dist_info}/RECORD":
            raise ValueError(
                f"installer's source is not {os.path.basename(self.wheel)} ({record_file_path} "
                f"instead of {dist_info}/RECORD): files linked from the cache may not match it; "
                "open the source from destination.wheel (see install_with_installer)"
            )
        super().finalize_installation(scheme, record_file_path, records)
        for w in self.warnings[len(self._decision_warnings) :]:
            warn(w)
        self.cache.register_env(self.entry.sha256, self._env_root)

    # -- helpers -------------------------------------------------------------
    def _abs(self, scheme: Scheme, path: str) -> str:
        """Where *path* of *scheme* goes, with destdir applied (installer's own rule)."""
        return os.path.normpath(os.fspath(self._path_with_destdir(scheme, path)))

    def _displace(self, pair: DirPair, dst: str) -> None:
        """Something is already at *dst*: replace it only if asked to, never write through it."""
        path = os.path.join(pair.dst_root, dst)
        if not self.overwrite_existing:
            raise FileExistsError(f"File already exists: {path}")
        os.unlink(path)

    def _heal(self, src: str) -> None:
        self.cache.restore_file(self.entry, src, self.wheel)


def install_with_installer(
    destination: LinkingDestination,
    additional_metadata: Mapping[str, bytes] | None = None,
) -> None:
    """Run ``installer.install`` for *destination*'s wheel, opening the matching source.

    *additional_metadata* defaults to ``{"INSTALLER": b"safelink\\n"}``.
    """
    from installer import install
    from installer.sources import WheelFile

    meta = dict(additional_metadata) if additional_metadata is not None else None
    with WheelFile.open(Path(destination.wheel)) as source:
        install(source, destination, meta if meta is not None else {"INSTALLER": b"safelink\n"})
