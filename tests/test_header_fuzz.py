"""A header fuzzer over real wheels: flip 1-3 bytes of local and central zip headers.

The only allowed outcomes of installing a damaged wheel are:

* installed identically: the target's full listing equals a clean install's (a
  flipped time stamp, say, changes nothing; mode bits may differ only when the
  flip hit the central header's "version made by" or "external attributes",
  which is where a member's mode comes from);
* one clear :class:`safelink.SafelinkError` (a single line, no control characters),
  with the target unchanged and the cache's full listing unchanged (but for its
  bookkeeping: a lock file and the path -> hash memo of the refused file).

Anything else (another exception, a half-installed target, a torn cache entry) is a
bug; the failure message names each case by wheel, seed and flipped bytes, which is
enough to rebuild it with :func:`damage`. Every case uses a fresh cache and target.

``SAFELINK_FUZZ_CASES=N`` multiplies nothing but the number of cases (default:
a few seconds' worth per wheel).
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import safelink

sys.path.insert(0, os.path.dirname(__file__))
import corpus
from conftest import TEMP_PATTERNS, cache_entries, cache_tree, leftover_temp_files, tree

pytestmark = pytest.mark.network

_LOCAL_FIELDS = (
    (0, 4, "signature"),
    (4, 6, "version needed"),
    (6, 8, "flags"),
    (8, 10, "method"),
    (10, 12, "time"),
    (12, 14, "date"),
    (14, 18, "crc"),
    (18, 22, "compressed size"),
    (22, 26, "size"),
    (26, 28, "name length"),
    (28, 30, "extra length"),
)
_CENTRAL_FIELDS = (
    (0, 4, "signature"),
    (4, 6, "version made by"),
    (6, 8, "version needed"),
    (8, 10, "flags"),
    (10, 12, "method"),
    (12, 14, "time"),
    (14, 16, "date"),
    (16, 20, "crc"),
    (20, 24, "compressed size"),
    (24, 28, "size"),
    (28, 30, "name length"),
    (30, 32, "extra length"),
    (32, 34, "comment length"),
    (34, 36, "disk"),
    (36, 38, "internal attributes"),
    (38, 42, "external attributes"),
    (42, 46, "local header offset"),
)
#: Header fields not flipped (none: every header field is fuzzed; ``--all-fields`` of the
#: command line is kept for cases recorded while some were excluded).
NOT_YET: frozenset[tuple[str, str]] = frozenset()

#: Central fields a member's installed mode comes from.
_MODE_FIELDS = frozenset({"version made by", "external attributes"})


@dataclass(frozen=True)
class Header:
    kind: str  # "local" or "central"
    member: str
    start: int
    length: int  # fixed part + name + extra (+ comment)

    def field(self, offset: int) -> str:
        rel = offset - self.start
        for lo, hi, name in _LOCAL_FIELDS if self.kind == "local" else _CENTRAL_FIELDS:
            if lo <= rel < hi:
                return name
        return "name/extra/comment"


def headers(data: bytes) -> list[Header]:
    """Every local and central header of the zip *data* (a well-formed wheel)."""
    eocd = data.rfind(b"PK\x05\x06")
    assert eocd >= 0
    count, _size, cd_offset = struct.unpack_from("<HII", data, eocd + 10)
    out: list[Header] = []
    pos = cd_offset
    for _ in range(count):
        assert data[pos : pos + 4] == b"PK\x01\x02"
        n, m, k = struct.unpack_from("<HHH", data, pos + 28)
        (local,) = struct.unpack_from("<I", data, pos + 42)
        name = data[pos + 46 : pos + 46 + n].decode("utf-8", "replace")
        out.append(Header("central", name, pos, 46 + n + m + k))
        ln, lm = struct.unpack_from("<HH", data, local + 26)
        out.append(Header("local", name, local, 30 + ln + lm))
        pos += 46 + n + m + k
    return out


@dataclass(frozen=True)
class Case:
    wheel: str
    seed: int
    #: (offset, old byte, new byte, header kind, field, member name)
    flips: tuple[tuple[int, int, int, str, str, str], ...]

    def __str__(self) -> str:
        where = ", ".join(
            f"@{o} {a:#04x}->{b:#04x} ({k} {f} of {m})" for o, a, b, k, f, m in self.flips
        )
        return f"{self.wheel} seed={self.seed}: {where}"

    @property
    def mode_may_change(self) -> bool:
        return any(k == "central" and f in _MODE_FIELDS for _o, _a, _b, k, f, _m in self.flips)


def damage(wheel: str, data: bytes, hdrs: list[Header], seed: int) -> tuple[Case, bytes]:
    """Flip 1-3 bytes of randomly chosen headers of *data*, reproducibly from *seed*."""
    rng = random.Random(seed)
    out = bytearray(data)
    flips = []
    for _ in range(rng.randint(1, 3)):
        h = rng.choice(hdrs)
        offset = h.start + rng.randrange(h.length)
        while (h.kind, h.field(offset)) in NOT_YET:
            offset = h.start + rng.randrange(h.length)
        old = out[offset]
        out[offset] ^= rng.randrange(1, 256)
        flips.append((offset, old, out[offset], h.kind, h.field(offset), h.member))
    return Case(wheel, seed, tuple(flips)), bytes(out)


def _one_line(text: str) -> bool:
    return text != "" and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


Listing = dict[str, tuple[str, int, bytes | str]]


def _outcome(
    case: Case, whl: Path, work: Path, template: Path, clean: Listing
) -> tuple[str, str | None]:
    """Install one damaged wheel: ``("installed" | "refused" | "bug", what went wrong)``.

    The cache is a copy of *template* (a cache holding the clean wheel's entry), so
    "unchanged" is checked against its full listing.
    """
    target, cache = work / "target", work / "cache"
    target.mkdir()
    shutil.copytree(template, cache, symlinks=True)
    cache_before = cache_tree(cache, content=False)
    try:
        safelink.install([whl], flat_target=str(target), cache=str(cache))
    except safelink.SafelinkError as exc:
        problems = []
        if not _one_line(str(exc)):
            problems.append(f"message not one clean line: {str(exc)!r}")
        if tree(target):
            problems.append(f"target changed: {sorted(tree(target))[:5]}")
        cache_after = cache_tree(cache, content=False)
        if cache_after != cache_before:
            changed = sorted(
                k
                for k in cache_after.keys() | cache_before.keys()
                if cache_after.get(k) != cache_before.get(k)
            )
            problems.append(f"cache changed: {changed[:5]}")
        return "refused", "; ".join(problems) or None
    except Exception as exc:
        return "bug", f"{type(exc).__name__}: {exc}"
    got = _without_archive_hash(tree(target))
    clean = _without_archive_hash(clean)
    odd = sorted(k for k, (kind, mode, _) in got.items() if kind == "file" and mode & 0o7022)
    if odd:  # setuid/setgid/sticky or group/other-writable: never from a wheel
        return "installed", f"unsafe modes: {[(k, oct(got[k][1])) for k in odd[:5]]}"
    if case.mode_may_change:
        got = {k: (kind, 0, data) for k, (kind, _mode, data) in got.items()}
        clean = {k: (kind, 0, data) for k, (kind, _mode, data) in clean.items()}
    if got != clean:
        differ = sorted(k for k in got.keys() | clean.keys() if got.get(k) != clean.get(k))
        return "installed", f"not identically: {differ[:5]}"
    entries = cache_entries(cache)
    if len(entries) != len(cache_entries(template)) + 1 or leftover_temp_files(target, cache):
        return "installed", f"the cache holds {entries} and temp files"
    return "installed", None


def _without_archive_hash(listing: Listing) -> Listing:
    """*listing* without the files that name the wheel file's own sha256.

    A damaged wheel is another file: its archive hash differs by design, and
    ``direct_url.json`` and ``safelink.json`` record it (their RECORD rows too).
    """
    named = (".dist-info/direct_url.json", ".dist-info/safelink.json")
    out = {}
    for rel, (kind, mode, data) in listing.items():
        if rel.endswith(named):
            continue
        if rel.endswith(".dist-info/RECORD") and isinstance(data, bytes):
            data = b"".join(
                line
                for line in data.splitlines(keepends=True)
                if not any(f"{n},".encode() in line for n in named)
            )
        out[rel] = (kind, mode, data)
    return out


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A scratch directory in memory where there is one (thousands of small installs)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="safelink-fuzz-", dir=shm))
    try:
        yield path
    finally:
        _rmtree(path)


#: (wheel, cases): six is tiny; docutils has 214 members incl. ``.data/scripts``.
WHEELS = [("six", 1200), ("docutils", 60)]


@pytest.mark.parametrize(("name", "cases"), WHEELS, ids=[w for w, _ in WHEELS])
def test_damaged_headers_install_identically_or_fail_cleanly(
    name: str, cases: int, fast_tmp: Path
) -> None:
    cases = int(os.environ.get("SAFELINK_FUZZ_CASES", cases))
    pinned = corpus.by_name(name)
    [src] = corpus.fetch([pinned])
    data = src.read_bytes()
    hdrs = headers(data)
    assert len(hdrs) == 2 * pinned.n_files

    # One path for every wheel (direct_url.json names it); a fresh cache for each case,
    # copied from one that holds the clean wheel (and the interpreter's tags, probes, ...).
    whl = fast_tmp / "wheel" / pinned.filename
    whl.parent.mkdir()
    whl.write_bytes(data)
    template = fast_tmp / "template"
    (fast_tmp / "clean").mkdir()
    safelink.install([whl], flat_target=str(fast_tmp / "clean"), cache=str(template))
    clean = tree(fast_tmp / "clean")
    assert len(clean) > pinned.n_files // 2

    canary = fast_tmp / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("do not touch\n")
    canary_before = tree(canary)

    failures: list[str] = []
    outcomes = {"installed": 0, "refused": 0, "bug": 0}
    for i in range(cases):
        case, damaged = damage(pinned.filename, data, hdrs, seed=1000 * len(name) + i)
        work = fast_tmp / f"case{i}"
        work.mkdir()
        whl.write_bytes(damaged)
        kind, problem = _outcome(case, whl, work, template, clean)
        outcomes[kind] += 1
        if problem:
            failures.append(f"{case}: {kind}, {problem}")
        _rmtree(work)
    assert tree(canary) == canary_before
    assert not failures, f"{len(failures)} of {cases} cases {outcomes}:\n" + "\n".join(
        failures[:40]
    )
    # Both outcomes happen: the fuzzer reaches both the accepting and the refusing paths.
    assert outcomes["installed"] and outcomes["refused"], outcomes


def _rmtree(path: Path) -> None:
    """Remove a case's directory (cache files are read-only, so make dirs writable first)."""
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
    shutil.rmtree(path)


def test_temp_patterns_cover_safelink_names() -> None:
    import fnmatch

    for name in ("RECORD.safelink-1234-abcd", ".safelink-journal.json"):
        assert any(fnmatch.fnmatch(name, p) for p in TEMP_PATTERNS)


def _reproduce(argv: list[str]) -> None:
    """``python tests/test_header_fuzz.py WHEEL SEED [--all-fields]``: one case, in detail."""
    global NOT_YET
    if "--all-fields" in argv:
        NOT_YET = frozenset()
    name, seed = argv[0], int(argv[1])
    pinned = corpus.by_name(name)
    [src] = corpus.fetch([pinned])
    data = src.read_bytes()
    case, damaged = damage(pinned.filename, data, headers(data), seed)
    work = Path(tempfile.mkdtemp(prefix="safelink-fuzz-case-"))
    (work / pinned.filename).write_bytes(damaged)
    (work / "target").mkdir()
    print(case)
    print(f"wheel: {work / pinned.filename}")
    whl = work / pinned.filename
    safelink.install([whl], flat_target=str(work / "target"), cache=str(work / "c"))
    print("installed")


if __name__ == "__main__":
    _reproduce(sys.argv[1:])
