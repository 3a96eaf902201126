"""The cache layout: every sub-directory, every file name, every temporary name.

This module is the only place that spells a path inside the cache and the only
place that can tell whose a temporary name is. Under the cache root
(``<cache>/v1``, so a future format can live beside it)::

    entries/<sha256>/files/...    the wheel's members, read-only, fixed mtime
    entries/<sha256>/plan.json    the install plan (written last: its presence
                                  means the entry is whole)
    index/<key>                   wheel path+size+mtime+inode -> sha256 (no re-hash)
    locks/<sha256>.lock           per-entry lock (admission, use, eviction)
    locks/pyc-<sha256>-<tag>.lock per-entry, per-Python bytecode lock
    envs/<sha256>                 environments the entry was installed into
    pyc/<sha256>/<tag>/...        the entry's bytecode for one Python version
    probes/<pair>.json            remembered link-mode probes per filesystem pair
    interpreters/<key>.json       remembered interpreter descriptions
    tags/<key>.txt                remembered tag lists per kind of interpreter
    launchers/<key>               remembered entry-point launcher bodies
    wheels/<sha256>/<file name>   wheels downloaded for a lock file (kept to heal from;
                                  removed with their entry)
    selections/<key>.json         remembered lock-file selections per lock and target
    tmp/                          work in progress (admissions, evictions, compiles,
                                  probe trial files, satellite fills)
    satellites                    satellite caches on other filesystems (``_satellite``)

Temporary names
---------------
Every temporary name safelink makes in or for the cache has the form
``.safelink-<kind>-<pid>-<16 hex random>`` (optionally ``.<label>`` after it), alone
(in ``tmp/``) or as a suffix of the name it will replace (heal, relink and write
temps next to the file they replace). The random part makes it unpredictable, so nothing a
wheel ships can be in its way; callers create it with ``O_EXCL`` (files) or
``mkdir`` (directories), which never follow or reuse what is there.
:func:`parse_temp` turns a name back into (kind, pid); :func:`temp_is_stale` is
the one owner check ``cache prune`` and the probes use.
"""

from __future__ import annotations

import os
import sys

VERSION_DIR = "v1"

ENTRIES = "entries"
INDEX = "index"
LOCKS = "locks"
ENVS = "envs"
PYC = "pyc"
PROBES = "probes"
INTERPRETERS = "interpreters"
TAGS = "tags"
LAUNCHERS = "launchers"
WHEELS = "wheels"
SELECTIONS = "selections"
TMP = "tmp"

SUBDIRS = (
    ENTRIES, INDEX, LOCKS, ENVS, PYC, PROBES, INTERPRETERS, TAGS, LAUNCHERS, WHEELS, SELECTIONS,
    TMP,
)
"""Every sub-directory of the cache root (``cache size`` and ``cache clean`` cover all)."""

REMEMBERED = (INDEX, PROBES, INTERPRETERS, TAGS, LAUNCHERS, SELECTIONS)
"""Sub-directories of things that are recomputed when missing."""

ENTRY_FILES = "files"
ENTRY_PLAN = "plan.json"

# -- temporary-name kinds ---------------------------------------------------------------
ADMIT = "admit"
"""An admission in progress: a directory in ``tmp/`` that becomes an entry."""
EVICT = "evict"
"""An entry being deleted: renamed into ``tmp/`` first, so it vanishes at once."""
PYC_BUILD = "pyc"
"""``--compile`` building an entry's bytecode: a directory in ``tmp/``."""
PROBE = "probe"
"""Link-mode trial files, in ``tmp/`` and in the target directory."""
HEAL = "heal"
"""A pristine copy of a cached file, next to it, about to replace it."""
RELINK = "relink"
"""A fresh inode for a cached file at its link-count limit, next to it."""
DOWNLOAD = "download"
"""A wheel being downloaded for a lock file, in ``tmp/``, until its hash matched."""
FILL = "fill"
"""A satellite cache's entry being copied from the main cache: a directory in ``tmp/``."""
WRITE = "write"
"""A small file of the cache being replaced (an index record, anything remembered),
next to it: written whole, then renamed over it."""

KINDS = frozenset({ADMIT, EVICT, PYC_BUILD, PROBE, HEAL, RELINK, DOWNLOAD, FILL, WRITE})

_MARK = ".safelink-"


def version_root(base: str) -> str:
    """The cache root (``<base>/v1``) of a cache directory."""
    return os.path.join(base, VERSION_DIR)


def subdir(root: str, name: str) -> str:
    return os.path.join(root, name)


def entry_dir(root: str, sha256: str) -> str:
    return os.path.join(root, ENTRIES, sha256)


def entry_files(entry_path: str) -> str:
    return os.path.join(entry_path, ENTRY_FILES)


def entry_plan(entry_path: str) -> str:
    return os.path.join(entry_path, ENTRY_PLAN)


def index_file(root: str, key: str) -> str:
    return os.path.join(root, INDEX, key)


def entry_lock(root: str, sha256: str) -> str:
    return os.path.join(root, LOCKS, f"{sha256}.lock")


def pyc_lock(root: str, sha256: str, tag: str) -> str:
    return os.path.join(root, LOCKS, f"pyc-{sha256}-{tag}.lock")


def locked_entry(name: str) -> str | None:
    """The entry (sha256) whose lock file in ``locks/`` is called *name*, or None for a
    name this module does not give a lock file."""
    if not name.endswith(".lock"):
        return None
    stem = name[: -len(".lock")]
    if stem.startswith("pyc-"):
        stem = stem[len("pyc-") :].partition("-")[0]
    return stem if len(stem) == 64 and not stem.strip("0123456789abcdef") else None


def envs_file(root: str, sha256: str) -> str:
    return os.path.join(root, ENVS, sha256)


def pyc_dir(root: str, sha256: str, tag: str | None = None) -> str:
    path = os.path.join(root, PYC, sha256)
    return path if tag is None else os.path.join(path, tag)


def pyc_manifest(root: str, sha256: str, tag: str) -> str:
    return os.path.join(root, PYC, sha256, tag, "manifest.json")


def probe_file(root: str, key: str) -> str:
    return os.path.join(root, PROBES, key + ".json")


def interpreter_file(root: str, key: str) -> str:
    return os.path.join(root, INTERPRETERS, key + ".json")


def tags_file(root: str, key: str) -> str:
    return os.path.join(root, TAGS, key + ".txt")


def launcher_file(root: str, key: str) -> str:
    return os.path.join(root, LAUNCHERS, key)


def kept_wheel(root: str, sha256: str, filename: str | None = None) -> str:
    """A downloaded wheel (its directory when *filename* is None)."""
    path = os.path.join(root, WHEELS, sha256)
    return path if filename is None else os.path.join(path, filename)


def selection_file(root: str, key: str) -> str:
    return os.path.join(root, SELECTIONS, key + ".json")


def tmp_dir(root: str) -> str:
    return os.path.join(root, TMP)


def satellites_file(root: str) -> str:
    """The list of a main cache's satellite caches (one directory a line)."""
    return os.path.join(root, "satellites")


# -- temporary names -------------------------------------------------------------------
def temp_name(kind: str, label: str = "", *, pid: int | None = None) -> str:
    """A fresh, unpredictable temporary name of *kind* (create it ``O_EXCL``/``mkdir``).

    *label* (letters, digits, ``_``) tells apart the files of one operation
    (a probe's source and its per-mode trials); *pid* is for tests only.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown temporary-name kind {kind!r}")
    name = f"{_MARK}{kind}-{os.getpid() if pid is None else pid}-{os.urandom(8).hex()}"
    return f"{name}.{label}" if label else name


def temp_path(directory: str, kind: str, label: str = "") -> str:
    """A fresh temporary path of *kind* in *directory*."""
    return os.path.join(directory, temp_name(kind, label))


def temp_beside(path: str, kind: str) -> str:
    """A fresh temporary path next to *path* (its name is a suffix of *path*'s)."""
    return path + temp_name(kind)


def parse_temp(name: str) -> tuple[str, int] | None:
    """(kind, pid) of a temporary name made by :func:`temp_name` (alone or as a suffix),
    or None for any other name."""
    at = name.rfind(_MARK)
    if at < 0:
        return None
    parts = name[at + len(_MARK) :].split("-")
    if len(parts) != 3:
        return None
    kind, pid, rest = parts
    token = rest.split(".", 1)[0]
    if kind not in KINDS or not (pid.isascii() and pid.isdigit()) or pid[0] == "0":
        return None
    if len(token) != 16:
        return None
    if token.strip("0123456789abcdef"):
        return None
    return kind, int(pid)


def pid_alive(pid: int) -> bool:
    """Is process *pid* running (or not ours to signal, which counts as running)?

    On Windows ``os.kill`` would terminate the process, so every owner counts as
    running there: temporary names are then removed only by ``cache clean``.
    """
    if sys.platform == "win32":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # pragma: no cover - e.g. an out-of-range pid
        return False
    return True


def temp_is_stale(name: str, kinds: frozenset[str] = KINDS) -> bool:
    """May *name* be deleted? Yes if it is one of *kinds* whose process is gone.

    A name of another kind, or one this module did not make, is not stale here: the
    caller decides about foreign names (``cache prune`` removes unknown names in
    ``tmp/``, which only safelink writes; the probe leaves a target's files alone).
    The current process's own names are never stale.
    """
    parsed = parse_temp(name)
    if parsed is None:
        return False
    kind, pid = parsed
    if kind not in kinds or pid == os.getpid():
        return False
    return not pid_alive(pid)
