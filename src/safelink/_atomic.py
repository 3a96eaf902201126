"""Temporary files, and the names safelink gives what it leaves in an environment.

Two rules live here, because every other module gets them wrong one call site at a time:

**Every temporary file is created with ``O_EXCL | O_NOFOLLOW`` under a name nobody can
predict.** An environment holds whatever a wheel shipped (``.data/data`` reaches its
root) and whatever pip, uv or the user put there. A temporary name such as
``RECORD.safelink-<pid>`` can be shipped by a wheel ahead of time, as a hardlink into
the cache or as a symlink; opening it without ``O_EXCL`` writes *through* it. So a
temporary name carries a random token: :data:`TOKEN` (one per process) for the files
an install writes fresh into an environment, because a rollback after a crash must
find them again (the journal records the token), and a new token per call everywhere
else. ``O_EXCL`` makes a collision an error, never a write through someone's file.
Files appear whole: written under the temporary name, then renamed over the real one;
on any failure the temporary is removed.

**What safelink leaves at an environment's root (its journal, its stash, the
journal's temporary) is recognised by an authenticated name, not by a prefix.** Any
file there may have come from a wheel, so "a file called ``.safelink-journal.json``"
proves nothing: believing one let a wheel make a later run unlink absolute paths.
Each such name is ``.safelink-<kind>-<nonce>-<tag>`` where *tag* is an HMAC of kind
and nonce under a per-user secret key (:func:`user_keys`: 32 random bytes in a 0600
file of the user's state directory, created with ``O_EXCL``, never in an environment
or the cache). The journal's content is authenticated the same way. A wheel is fixed
content made before the key existed, so it cannot produce a valid name or journal;
anything else with a ``.safelink-`` name is just a file, never read, moved or removed
(see :mod:`safelink._transaction` for what a believed journal may still name).

Why not the alternatives: a journal kept outside the environment (in the cache, or
keyed by the environment's ``(dev, ino)``) is lost when the environment is used with
another cache or by another process environment, and device numbers change across
reboots, so a power loss could not be recovered. Names with a random part alone prove
nothing: a wheel ships its own random part. Owner and mode checks prove nothing
either: installed files belong to the same user. The tag binds nothing to a device
number for the same reason; the journal names only paths relative to the
environment's root, so even a journal copied along with a whole environment acts
only inside the copy.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator

from ._fsops import write_all
from ._hooks import crash_point
from ._record import hmac_sha256
from .errors import SafelinkError

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from typing import TypeGuard

TOKEN = os.urandom(8).hex()  # what secrets.token_hex does, without importing it
"""This process's token for temporary files of a transaction (the journal records it)."""

FRESH_MARK = ".safelink-"
"""Fresh files are written to ``<dest>.safelink-<token>`` and renamed over ``<dest>``."""

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
_FLAGS |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def fresh_name(path: str, token: str = TOKEN) -> str:
    """The temporary name of *path* while a transaction with *token* writes it."""
    return f"{path}{FRESH_MARK}{token}"


def open_new(path: str, mode: int = 0o600) -> int:
    """Open a file that must not exist yet, for writing (``O_EXCL``, ``O_NOFOLLOW``)."""
    return os.open(path, _FLAGS, mode)


def create_temp(path: str, mode: int = 0o600, *, token: str | None = None) -> tuple[int, str]:
    """Create a new file beside *path* (``O_EXCL``, never through a link); return (fd, name).

    The name is ``<path>.safelink-<token>``, *token* random unless given (the
    transaction's :data:`TOKEN`, so a rollback can find the file).
    """
    name = fresh_name(path, token or os.urandom(8).hex())
    return open_new(name, mode), name


@contextlib.contextmanager
def replacing(path: str, tmp: str) -> Iterator[None]:
    """Write *tmp* in the ``with`` body; it is renamed over *path* when the body succeeds
    and removed when anything fails (the rename included)."""
    try:
        yield
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_new(path: str, data: bytes, mode: int = 0o644, *, token: str | None = None) -> None:
    """Replace *path* with a new file holding *data*, in one rename; nothing left on failure."""
    fd, tmp = create_temp(path, mode, token=token)
    _write_replacing(path, tmp, fd, data, token)


def _write_replacing(path: str, tmp: str, fd: int, data: bytes, token: str | None) -> None:
    with replacing(path, tmp):
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        if token == TOKEN:
            crash_point("fresh-written")


def write_fresh(path: str, data: bytes, mode: int) -> None:
    """A file of this install written fresh into an environment (RECORD, scripts, metadata):
    its temporary name uses :data:`TOKEN`, which the journal records."""
    write_new(path, data, mode, token=TOKEN)


def write_atomic(path: str, data: bytes) -> None:
    """Replace *path*, a file of the cache, with *data* in one rename; raise on failure,
    leaving nothing behind.

    The temporary name comes from ``_layout`` (kind ``write``, with this process's id),
    like every temporary name in the cache, so that ``cache prune`` can tell one a
    killed process left from one being written right now.
    """
    from . import _layout

    tmp = _layout.temp_beside(path, _layout.WRITE)
    _write_replacing(path, tmp, open_new(tmp, 0o644), data, None)


def remember(path: str, data: bytes) -> None:
    """Best effort :func:`write_atomic` for what the cache can recompute (a read-only or full
    cache just means recomputing next time)."""
    try:
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)  # not group-writable
        write_atomic(path, data)
    except OSError:
        pass


# -- what safelink leaves at an environment's root ------------------------------------------

MARK = ".safelink-"
KINDS = ("journal", "stash", "tmp")
"""``journal``: the transaction's journal; ``stash``: files moved aside until commit;
``tmp``: a journal being written."""

_HEX_DIGITS = "0123456789abcdef"
_TAG_HEX = 24  # 96 bits: each guess at a tag costs the attacker a victim's install


def state_dirs() -> list[str]:
    """Where this user's key may be: ``$SAFELINK_STATE_DIR`` alone if set; else the
    platform's per-user state directory, then (when that cannot be written, e.g.
    ``HOME=/nonexistent``) a private ``safelink-<uid>`` directory in the temp dir."""
    first = _preferred_state_dir()
    if os.environ.get("SAFELINK_STATE_DIR") or sys.platform == "win32":
        return [first]
    import tempfile  # not on an ordinary install's way (see user_key): it imports shutil, random

    return [first, os.path.join(tempfile.gettempdir(), f"safelink-{os.geteuid()}")]


def _preferred_state_dir() -> str:
    explicit = os.environ.get("SAFELINK_STATE_DIR")
    if explicit:
        return os.path.abspath(explicit)
    if sys.platform == "win32":  # pragma: no cover
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~")
        return os.path.join(base, "safelink", "state")
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "safelink")


_KEYS: dict[tuple[str, ...], list[bytes]] = {}


def user_keys() -> list[bytes]:
    """Every key of this user that exists, the one to sign with first (made on first use).

    A journal or name is believed if any of them authenticates it, so a key made in
    the fallback directory keeps working when the preferred one appears later. The
    preferred directory is the user's own: a bad key there is an error. The fallback
    is in the shared temp dir, where anyone may make a name first: it is read only if
    it is a directory private to this user (else it is ignored, with one warning when
    it would have been used: no preferred key), and a bad key in it is an error only
    when there is no preferred key.
    """
    dirs = tuple(state_dirs())
    if dirs in _KEYS:
        return _KEYS[dirs]
    paths = [os.path.join(d, "journal.key") for d in dirs]
    try:
        first = _read_key(paths[0])
    except OSError as exc:
        raise _key_error(exc.filename or paths[0], exc) from None
    keys = [] if first is None else [first]
    for d, path in zip(dirs[1:], paths[1:], strict=True):
        why = _private_dir_problem(d)
        if why is None:
            try:
                key = _read_key(path)
            except OSError as exc:
                if first is None:
                    raise _key_error(exc.filename or path, exc) from None
                key = None  # the preferred key serves: a bad old one stops nobody
            if key is not None:
                keys.append(key)
        elif first is None and why != _MISSING:
            from ._log import warn

            warn(f"ignoring {d}: it {why}, so it may be another user's; {_KEEP_HINT}")
    if not keys:
        failure: OSError | None = None
        for d, path in zip(dirs, paths, strict=True):
            try:
                keys = [_make_key(d, path, private_dir=d != dirs[0])]
                break
            except OSError as exc:
                failure = failure or exc
        else:
            assert failure is not None
            raise _key_error(paths[0], failure) from None
    _KEYS[dirs] = keys
    return keys


_MISSING = "is missing"
_KEEP_HINT = "set SAFELINK_STATE_DIR to a private directory of yours"


def _private_dir_problem(d: str) -> str | None:
    """Why *d* is not a directory private to this user (``lstat``: a symlink is not),
    or None. Windows: not checked (ACLs)."""
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        return _MISSING
    except OSError as exc:
        return f"is unreadable ({exc.strerror})"
    if sys.platform == "win32":  # pragma: no cover
        return None
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}"
    if st.st_mode & 0o077:
        return f"is open to other users (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def user_key() -> bytes:
    """This user's key to sign journals and names with: ``user_keys()[0]``.

    When the preferred directory holds a key, that key comes first whatever else
    exists, so the other places are not looked at (nor the temp dir worked out).
    """
    first = os.path.join(_preferred_state_dir(), "journal.key")
    if first in _KEY:
        return _KEY[first]
    try:
        key = _read_key(first)
    except OSError:
        key = None  # user_keys() names the problem
    if key is None:
        key = user_keys()[0]
    _KEY[first] = key
    return key


_KEY: dict[str, bytes] = {}


def _key_error(path: str, exc: OSError) -> SafelinkError:
    return SafelinkError(f"cannot use safelink's key file {path}: {exc.strerror}", _KEEP_HINT)


def _make_key(d: str, path: str, *, private_dir: bool) -> bytes:
    os.makedirs(d, mode=0o700, exist_ok=True)
    if private_dir:  # in a shared temp dir: it must be ours and closed to others
        why = _private_dir_problem(d)
        if why is not None:
            raise OSError(1, f"{d} {why}: not a private directory of yours", d)
    fd, tmp = create_temp(path, 0o600)
    try:
        try:
            write_all(fd, os.urandom(32))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(tmp, path, follow_symlinks=False)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    key = _read_key(path)
    if key is None:
        try:
            owner = os.lstat(path).st_uid
        except FileNotFoundError:
            raise OSError(2, "vanished while being created", path) from None
        raise OSError(13, f"not readable by you (owned by uid {owner})", path)
    return key


def _read_key(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None  # not there, or not reachable: another place may hold it
    try:
        st = os.fstat(fd)
        data = os.read(fd, 64)
    finally:
        os.close(fd)
    private = sys.platform == "win32" or (
        st.st_mode & 0o077 == 0 and st.st_uid == os.geteuid()
    )
    if not stat.S_ISREG(st.st_mode) or not private or len(data) != 32:
        raise OSError(1, "not a private 32-byte file of yours (mode 0600)", path)
    return data


def sign(key: bytes, *parts: str | bytes) -> str:
    """HMAC-SHA256 of *parts* (length-prefixed, so no two sequences collide)."""
    msg = []
    for part in parts:
        raw = part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part
        msg += [len(raw).to_bytes(8, "big"), raw]
    return hmac_sha256(key, b"".join(msg)).hex()


def make_name(kind: str, key: bytes) -> str:
    """A new authenticated name of *kind* for the root of an environment."""
    nonce = os.urandom(8).hex()
    return f"{MARK}{kind}-{nonce}-{sign(key, 'name', kind, nonce)[:_TAG_HEX]}"


def kind_of(name: str, keys: list[bytes]) -> str | None:
    """The kind of an authenticated name made by :func:`make_name` with one of *keys*,
    else None (an ordinary file that merely looks like safelink's)."""
    parts = _shape(name)
    if parts is None:
        return None
    kind, nonce, tag = parts
    for key in keys:
        if verifies(sign(key, "name", kind, nonce)[:_TAG_HEX], tag):
            return kind
    return None


def looks_like(name: str) -> str | None:
    """The kind a name *claims* (exactly the shape :func:`make_name` gives,
    ``.safelink-<kind>-<16 hex>-<24 hex>``), authenticated or not."""
    parts = _shape(name)
    return None if parts is None else parts[0]


def _shape(name: str) -> tuple[str, str, str] | None:
    """Kind, nonce and tag of a name shaped exactly like :func:`make_name`'s, else None:
    any other name (another kind, other lengths, anything but lowercase ASCII hex) is
    just a file, never compared with a tag, read, moved or removed."""
    if not name.startswith(MARK):
        return None
    kind, _, rest = name[len(MARK) :].partition("-")
    nonce, _, tag = rest.partition("-")
    if kind not in KINDS or not is_hex(nonce, 16) or not is_hex(tag, _TAG_HEX):
        return None
    return kind, nonce, tag


def is_hex(text: object, length: int) -> TypeGuard[str]:
    """Is *text* a str of exactly *length* lowercase ASCII hex digits (what :func:`sign`
    and ``bytes.hex`` write)?"""
    return isinstance(text, str) and len(text) == length and not text.strip(_HEX_DIGITS)


def verifies(expected: str, given: object) -> bool:
    """Does the untrusted *given* equal the tag or MAC *expected* (from :func:`sign`)?

    The one comparison for "does this token verify": in constant time, and anything
    that is not lowercase hex of the same length (another type, non-ASCII text) is
    simply False, never an error."""
    if not is_hex(given, len(expected)):
        return False
    from hmac import compare_digest  # only for names and journals that look like ours

    return compare_digest(expected, given)

