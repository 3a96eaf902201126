"""The RECORD format (PEP 376 / the wheel spec): digests, rows, parsing and rendering.

One home for the format, so that admission, metadata writing, verify and uninstall
encode and check hashes, read rows and quote paths the same way.

Reading is strict and the same on every Python version: RECORD is untrusted input
(the wheel's own, and an installed one that any installer or wheel may have
written). The parser here is a small, exact CSV reader (the excel dialect that
``csv.writer`` produces) rather than the ``csv`` module, whose handling of NUL
bytes, bare carriage returns and field sizes changed between 3.10 and 3.13.
Rendering quotes exactly the fields that need it, so every name admission accepts
reads back as itself, here and in ``csv`` readers (pip's, installer's).
"""

from __future__ import annotations

import sys
from binascii import b2a_base64
from collections import namedtuple
from collections.abc import Iterable

from .errors import SafelinkError

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from hashlib import _Hash
    from typing import NamedTuple

FIELD_LIMIT = 131072
"""Longest field accepted (the ``csv`` module's default limit)."""

MAX_RECORD_BYTES = 256 * 1024**2
"""Largest installed RECORD read (a 100,000-file distribution's is ~15 MB)."""

PycRow = tuple[str, str, int, str]
"""A bytecode file's row, positional because it is stored (the ``pyc`` manifest):
(scheme, path under the scheme root, size, RECORD hash)."""


if TYPE_CHECKING:

    class RecordRow(NamedTuple):
        """One row as written: path, hash (``algo=digest`` or empty), size (decimal or
        empty)."""

        path: str
        hash: str
        size: str

    class InstalledRow(NamedTuple):
        """One row of an installed RECORD, checked: *size* is None when the row has none."""

        path: str
        hash: str
        size: int | None

else:  # the same tuples without importing typing at run time
    RecordRow = namedtuple("RecordRow", "path hash size")
    InstalledRow = namedtuple("InstalledRow", "path hash size")


class MalformedRecord(ValueError):
    """RECORD text that is not three CSV fields per row; the message says where and why."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")
_SHA256 = None


def sha256(data: bytes = b"") -> _Hash:
    """A sha256 hash object. The interpreter's built-in implementation when it has
    one: importing ``hashlib`` loads OpenSSL, which costs more start-up time than an
    install that hashes a few small files spends hashing."""
    global _SHA256
    if _SHA256 is None:
        try:  # named _sha2 from 3.12 (a failed import costs a search of sys.path)
            if sys.version_info >= (3, 12):
                from _sha2 import sha256 as impl  # type: ignore[import-not-found]
            else:
                from _sha256 import sha256 as impl  # type: ignore[import-not-found,no-redef]
        except ImportError:  # pragma: no cover - a build without them
            from hashlib import sha256 as impl  # type: ignore[assignment]
        _SHA256 = impl
    return _SHA256(data)  # type: ignore[no-any-return]


def bulk_sha256() -> _Hash:
    """A sha256 hash object for megabytes (a whole wheel file): hashlib's, on OpenSSL,
    which uses the CPU's SHA instructions where there are some (about six times the
    built-in implementation's speed here: 570 against 92 MB/s). Its import (a few ms)
    is paid only when a wheel file must be hashed, which a warm install does not do."""
    import hashlib

    return hashlib.sha256()


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) on :func:`sha256`: the ``hmac`` module loads OpenSSL."""
    if len(key) > 64:
        key = sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = sha256(key.translate(_IPAD) + msg).digest()
    return sha256(key.translate(_OPAD) + inner).digest()


def encode_digest(raw: bytes) -> str:
    """RECORD's digest text: urlsafe base64 without padding."""
    return b2a_base64(raw, newline=False).rstrip(b"=").translate(_URLSAFE).decode("ascii")


def hash_of(data: bytes) -> str:
    """The ``sha256=...`` RECORD hash of *data*."""
    return "sha256=" + encode_digest(sha256(data).digest())


def file_digest(path: str, algo: str) -> str:
    """The encoded *algo* digest of the file at *path* (``ValueError``: unknown algo)."""
    import hashlib  # verify and repair only

    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return encode_digest(h.digest())


def size_of(field: str) -> int | None:
    """A size field as a number, or None unless it is plain ASCII digits.

    ``int()`` accepts Arabic-Indic digits, ``'²'.isdigit()`` is true: neither is a size.
    """
    if field.isascii() and field.isdigit():
        return int(field)
    return None


# compiled where used (re caches them): an install from a warm cache parses no RECORD
_HASH = r"[A-Za-z0-9_]+=[A-Za-z0-9_-]+"
_QUOTED = r'"([^"]*(?:""[^"]*)*)"'
_BARE = r'[^,"\r\n]*'
_LINE_END = r"\r\n|\r|\n"


def parse_record(text: str) -> list[RecordRow]:
    """Rows of RECORD *text*; blank lines are skipped.

    A row ends at ``\\n``, ``\\r\\n`` or ``\\r`` outside quotes; a field is bare (no
    ``,``, ``"``, CR or LF) or quoted with ``""`` for a quote. Anything else, a row
    without exactly three fields or a field over :data:`FIELD_LIMIT` characters
    raises :class:`MalformedRecord`.
    """
    import re  # parsing a RECORD: admission, uninstall, verify (start-up cost)

    if '"' not in text:  # nearly every RECORD: no quoting, so rows are lines split at commas
        return _parse_plain(text)
    rows: list[RecordRow] = []
    quoted, bare = re.compile(_QUOTED).match, re.compile(_BARE).match
    pos, end, line = 0, len(text), 1
    while pos < end:
        fields: list[str] = []
        first = line
        while True:
            m = quoted(text, pos)
            if m is not None:
                value = m.group(1).replace('""', '"')
                line += value.count("\n") + value.count("\r") - value.count("\r\n")
            else:
                m = bare(text, pos)
                assert m is not None  # matches the empty string
                value = m.group()
            if len(value) > FIELD_LIMIT:
                raise MalformedRecord(f"line {first}: a field is longer than {FIELD_LIMIT:,}")
            fields.append(value)
            pos = m.end()
            if pos >= end:
                break
            c = text[pos]
            if c == ",":
                pos += 1
                continue
            if c == "\n" or c == "\r":
                pos += 2 if text.startswith("\r\n", pos) else 1
                line += 1
                break
            raise MalformedRecord(f"line {line}: stray quote")
        if fields == [""]:
            continue
        if len(fields) != 3:
            raise MalformedRecord(
                f"row at line {first} has {len(fields)} fields, expected path,hash,size"
            )
        rows.append(RecordRow(*fields))
    return rows


def _parse_plain(text: str) -> list[RecordRow]:
    import re  # parsing a RECORD: admission, uninstall, verify (start-up cost)

    rows: list[RecordRow] = []
    for n, line in enumerate(re.split(_LINE_END, text), 1):
        if not line:
            continue
        fields = line.split(",")
        if len(fields) != 3:
            raise MalformedRecord(
                f"row at line {n} has {len(fields)} fields, expected path,hash,size"
            )
        if len(line) > FIELD_LIMIT and max(map(len, fields)) > FIELD_LIMIT:
            raise MalformedRecord(f"line {n}: a field is longer than {FIELD_LIMIT:,}")
        rows.append(RecordRow(*fields))
    return rows


def _field(value: str) -> str:
    if "," in value or '"' in value or "\r" in value or "\n" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def render_record(rows: Iterable[tuple[str, str, int | str]]) -> str:
    """RECORD text for *rows* of (path, hash, size): ``\\n`` line ends, a field quoted
    only when it holds a comma, quote, CR or LF (as ``csv.writer`` does)."""
    rows = list(rows)
    text = "".join([f"{p}{h}" for p, h, _s in rows])
    if "," not in text and '"' not in text and "\r" not in text and "\n" not in text:
        return "".join([f"{p},{h},{s}\n" for p, h, s in rows])  # nothing to quote
    return "".join(f"{_field(p)},{_field(h)},{s}\n" for p, h, s in rows)


def first_duplicate(paths: Iterable[str]) -> str | None:
    """The first path that occurs twice, or None: a RECORD never lists a file twice
    (uninstall and verify would act on it twice, or on the wrong content)."""
    paths = list(paths)
    if len(set(paths)) == len(paths):
        return None
    seen: set[str] = set()
    for p in paths:
        if p in seen:
            return p
        seen.add(p)
    return None


def read_installed(record: str, hint: str) -> list[InstalledRow]:
    """The rows of the installed RECORD file *record*, checked: UTF-8, well-formed,
    every hash ``algo=digest`` or empty, every size ASCII digits or empty.

    Raises :class:`FileNotFoundError` when it is missing and :class:`SafelinkError`
    (one line naming the file and the reason, then *hint*) when it is malformed.
    """
    import re  # parsing a RECORD: admission, uninstall, verify (start-up cost)

    from ._names import shown

    with open(record, "rb") as f:
        data = f.read(MAX_RECORD_BYTES + 1)
    try:
        if len(data) > MAX_RECORD_BYTES:
            raise MalformedRecord(f"larger than {MAX_RECORD_BYTES:,} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedRecord(f"not UTF-8 (byte {exc.start})") from None
        out: list[InstalledRow] = []
        hash_ok = re.compile(_HASH).fullmatch
        for row in parse_record(text):
            size = size_of(row.size)
            if row.size and size is None:
                raise MalformedRecord(f"size {row.size!r} of {row.path!r} is not a number")
            if row.hash and not hash_ok(row.hash):
                raise MalformedRecord(f"hash {row.hash!r} of {row.path!r} is not algo=digest")
            out.append(InstalledRow(row.path, row.hash, size))
        return out
    except MalformedRecord as exc:
        raise SafelinkError(f"malformed RECORD {shown(record)}: {exc}", hint) from None
