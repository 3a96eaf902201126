"""Hostile and broken wheels are refused cleanly, and nothing is written.

Every refusal is checked the way a user sees it: ``python -m safelink install``
exits 1 with exactly one ``safelink: error:`` line naming the problem, no
traceback, and the whole directory tree the test runs in (target venv, cache,
the wheel itself, and the directories around them) is byte-for-byte unchanged
except for the cache's content-free bookkeeping (see :func:`_cache_bookkeeping`).

Everything lives four directories below ``tmp_path`` so that a ``../`` escape
from the venv or from the cache's temp dir would land inside the snapshot.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import subprocess
import unicodedata
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import make_venv, run_cli, site_packages, tree
from wheelmaker import make_wheel, record_hash

Rows = list[tuple[str, str, str]]
Tree = dict[str, tuple[str, int, bytes | str]]


@dataclass
class Box:
    top: Path
    """Everything below here is compared before and after."""
    root: Path
    """Parent of venv, cache and wheels (several levels below *top*)."""
    venv: Path
    cache: Path
    wheels: Path


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Box:
    root = tmp_path / "d1" / "d2" / "d3" / "d4"
    wheels = root / "wheels"
    wheels.mkdir(parents=True)
    cache = root / "cache"
    monkeypatch.setenv("SAFELINK_CACHE_DIR", str(cache))
    return Box(tmp_path, root, make_venv(root / "venv"), cache, wheels)


# -- what a refusal must look like ---------------------------------------------------------

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _cache_bookkeeping(rel: str, entry: tuple[str, int, bytes | str]) -> bool:
    """Cache paths a refused admission may add, none of which holds wheel content.

    ``v1/index/<key>`` maps the wheel file's stat to its sha256 and
    ``v1/locks/<sha>.lock`` is the (empty) per-wheel admission lock;
    ``v1/tags/<interpreter kind>.txt`` remembers the tags the target accepts; the
    directories ``v1``, ``v1/tmp``, ``v1/index``, ``v1/locks`` and ``v1/tags`` are
    created on first use. Everything else in the cache must be exactly as before.
    """
    kind, _mode, data = entry
    dirs = ("cache", "cache/v1", "cache/v1/tmp", "cache/v1/index", "cache/v1/locks",
            "cache/v1/tags")
    if rel in dirs:
        return kind == "dir"
    head, _, name = rel.rpartition("/")
    if head == "cache/v1/index":
        return (
            kind == "file"
            and isinstance(data, bytes)
            and bool(_HEX64.fullmatch(data.decode("latin-1")))
        )
    if head == "cache/v1/tags":
        return kind == "file" and isinstance(data, bytes) and b"py3-none-any" in data
    if head == "cache/v1/locks":
        return kind == "file" and data == b"" and bool(_HEX64.fullmatch(name.removesuffix(".lock")))
    return False


def _assert_unchanged(box: Box, before: Tree) -> None:
    after = tree(box.top)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    prefix = str(box.cache.relative_to(box.top)).removesuffix("cache")
    unexpected = [
        k
        for k in changed
        if k in before
        or not k.startswith(prefix + "cache")
        or not _cache_bookkeeping(k[len(prefix) :], after[k])
    ]
    assert unexpected == [], f"refused install changed files: {unexpected}"
    entries = box.cache / "v1" / "entries"
    assert not entries.exists() or os.listdir(entries) == []
    tmp = box.cache / "v1" / "tmp"
    assert not tmp.exists() or os.listdir(tmp) == [], "admission left a temp dir behind"


def _assert_one_error(proc: subprocess.CompletedProcess[str], expect: str) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("safelink: error: "), lines[0]
    assert expect in lines[0], lines[0]
    return lines[0]


def refuse(box: Box, wheel: Path, expect: str, *args: str) -> str:
    """Install *wheel*; assert a clean one-line refusal containing *expect*, nothing written."""
    before = tree(box.top)
    proc = run_cli("install", "--python", str(box.venv), *args, str(wheel))
    line = _assert_one_error(proc, expect)
    _assert_unchanged(box, before)
    return line


# -- byte-level surgery on written wheels ------------------------------------------------


@dataclass
class Central:
    """Offsets of one central-directory record."""

    offset: int
    name: bytes
    local: int


def _centrals(data: bytes) -> list[Central]:
    (end,) = [m.start() for m in re.finditer(b"PK\x05\x06", data)][-1:]
    count, _size, start = struct.unpack("<HII", data[end + 10 : end + 20])
    out = []
    pos = start
    for _ in range(count):
        assert data[pos : pos + 4] == b"PK\x01\x02"
        nlen, xlen, clen = struct.unpack("<HHH", data[pos + 28 : pos + 34])
        (local,) = struct.unpack("<I", data[pos + 42 : pos + 46])
        out.append(Central(pos, data[pos + 46 : pos + 46 + nlen], local))
        pos += 46 + nlen + xlen + clen
    return out


def _central(data: bytes, name: str | bytes) -> Central:
    raw = name.encode() if isinstance(name, str) else name
    (c,) = [c for c in _centrals(data) if c.name == raw]
    return c


def rename_member(wheel: Path, old: str, new: bytes, *, local: bool = True) -> None:
    """Give member *old* the raw name *new* (same length) in the central directory
    and, if *local*, in its local header: zipfile itself refuses to write some names."""
    data = bytearray(wheel.read_bytes())
    assert len(new) == len(old.encode())
    c = _central(bytes(data), old)
    data[c.offset + 46 : c.offset + 46 + len(new)] = new
    if local:
        data[c.local + 30 : c.local + 30 + len(new)] = new
    wheel.write_bytes(bytes(data))


def patch_central(wheel: Path, member: str, field: int, fmt: str, value: int) -> None:
    """Overwrite one field (byte offset in the central record) of *member*."""
    data = bytearray(wheel.read_bytes())
    c = _central(bytes(data), member)
    struct.pack_into(fmt, data, c.offset + field, value)
    wheel.write_bytes(bytes(data))


def patch_local(wheel: Path, member: str, field: int, fmt: str, value: int) -> None:
    data = bytearray(wheel.read_bytes())
    c = _central(bytes(data), member)
    struct.pack_into(fmt, data, c.local + field, value)
    wheel.write_bytes(bytes(data))


def flip_member_bytes(wheel: Path, member: str, *, at: float = 0.5, count: int = 24) -> None:
    """Corrupt the compressed data of *member* in place."""
    data = bytearray(wheel.read_bytes())
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo(member)
    nlen, xlen = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + nlen + xlen
    pos = start + int(info.compress_size * at)
    assert pos + count <= start + info.compress_size
    for i in range(pos, pos + count):
        data[i] ^= 0xA5
    wheel.write_bytes(bytes(data))


def text_payload(n: int) -> bytes:
    """Deterministic, compressible-but-not-trivially text (so deflate has real blocks)."""
    words = [f"w{(i * 7919) % 1009}" for i in range(n // 4)]
    return " ".join(words).encode()[:n]


def rows_edit(fn: Callable[[str, str, str], tuple[str, str, str] | None]) -> Callable[[Rows], Rows]:
    """A record_filter applying *fn* to each row (return None to drop it)."""

    def edit(rows: Rows) -> Rows:
        out = []
        for row in rows:
            new = fn(*row)
            if new is not None:
                out.append(new)
        return out

    return edit


def add_rows(*extra: tuple[str, bytes]) -> Callable[[Rows], Rows]:
    return lambda rows: [*rows, *((p, record_hash(d), str(len(d))) for p, d in extra)]


# -- member names -------------------------------------------------------------------------

BAD_NAMES = [
    ("../evil.py", "'..' path component"),
    ("../../../../../evil.py", "'..' path component"),
    ("demo/../../../../../../evil.py", "'..' path component"),
    ("./demo2.py", "'.' or '..' path component"),
    ("demo//x.py", "empty, '.' or '..' path component"),
    ("C:/evil.py", "starts with a drive prefix"),
    ("c:evil.py", "starts with a drive prefix"),
    ("0:evil.py", "starts with a drive prefix"),
    ("C:\\evil.py", "contains a backslash"),
    ("..\\evil.py", "contains a backslash"),
    ("demo\\..\\..\\evil.py", "contains a backslash"),
]


@pytest.mark.parametrize(("name", "why"), BAD_NAMES)
def test_unsafe_member_name(box: Box, name: str, why: str) -> None:
    # The hostile member is listed in RECORD with a correct hash: only its name is wrong.
    whl = make_wheel(box.wheels, files={"demo.py": b"x = 1\n", name: b"evil\n"})
    line = refuse(box, whl, why)
    assert f"demo-1.0-py3-none-any.whl: unsafe member {name!r}" in line


def test_absolute_member_into_the_snapshot(box: Box) -> None:
    # Absolute, and pointing where the snapshot would see it if it were written.
    target = str(box.root / "abs-evil.py")
    whl = make_wheel(box.wheels, files={"demo.py": b"x = 1\n", target: b"evil\n"})
    refuse(box, whl, f"unsafe member {target!r}: is an absolute path")
    assert not (box.root / "abs-evil.py").exists()


def test_absolute_member_etc(box: Box) -> None:
    evil = Path("/etc/safelink-hostile-test-x")
    whl = make_wheel(box.wheels, files={"demo.py": b"x = 1\n", str(evil): b"evil\n"})
    try:
        refuse(box, whl, "is an absolute path")
        assert not evil.exists()
    finally:
        if evil.exists():  # only if the refusal failed: do not leave it behind
            evil.unlink()


def test_nul_byte_in_member_name(box: Box) -> None:
    # zipfile cuts names at NUL when reading, so "demo/x.py\0../../evil" would pass as
    # "demo/x.py" (which RECORD lists, correctly hashed): the stored name must be judged.
    body = b"x = 1\n"
    placeholder = "demo/x.pyN../../../../evil"
    whl = make_wheel(
        box.wheels,
        files={"demo.py": b""},
        raw_infos=[(zipfile.ZipInfo(placeholder), body)],
        record_filter=add_rows(("demo/x.py", body)),
    )
    rename_member(whl, placeholder, placeholder.replace("N", "\0").encode())
    refuse(box, whl, "contains a NUL byte")


def test_nul_byte_in_name_read_back_is_truncated_by_zipfile(tmp_path: Path) -> None:
    # Guards the premise of the test above: if zipfile ever stops truncating, both the
    # name and orig_filename checks still apply.
    whl = make_wheel(tmp_path, files={"demo.py": b""}, raw_infos=[(zipfile.ZipInfo("aN"), b"")])
    rename_member(whl, "aN", b"a\0")
    with zipfile.ZipFile(whl) as zf:
        names = {(i.filename, i.orig_filename) for i in zf.infolist()}
    assert ("a", "a\0") in names


def test_overlong_path_component(box: Box) -> None:
    name = "demo/" + "a" * 300 + ".py"
    whl = make_wheel(box.wheels, files={"demo.py": b"", name: b"x\n"})
    refuse(box, whl, "longer than 255 bytes")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("demo/X.py", "demo/x.py"),
        ("Demo/x.py", "demo/x.py"),
        (
            unicodedata.normalize("NFC", "demo/caf\u00e9.py"),
            unicodedata.normalize("NFD", "demo/caf\u00e9.py"),
        ),
    ],
    ids=["case", "case-dir", "nfc-nfd"],
)
def test_names_colliding_after_folding(box: Box, first: str, second: str) -> None:
    assert first != second
    whl = make_wheel(box.wheels, files={first: b"a = 1\n", second: b"a = 2\n"})
    refuse(box, whl, f"unsafe member {second!r}: collides with {first!r}")


@pytest.mark.parametrize(
    ("files", "expect"),
    [
        ({"demo": b"x", "demo/x.py": b"y"}, "member 'demo' is a file, but 'demo/x.py' needs it"),
        ({"demo/x.py": b"y", "demo": b"x"}, "member 'demo' is a file, but 'demo/x.py' needs it"),
        ({"Demo": b"x", "demo/sub/x.py": b"y"}, "member 'Demo' is a file, but 'demo/sub/x.py'"),
    ],
    ids=["file-then-dir", "dir-then-file", "case-folded"],
)
def test_file_that_is_also_a_directory(box: Box, files: dict[str, bytes], expect: str) -> None:
    whl = make_wheel(box.wheels, files=files)
    refuse(box, whl, expect)


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (stat.S_IFLNK | 0o777, "a symlink"),
        (stat.S_IFCHR | 0o644, "a character device"),
        (stat.S_IFBLK | 0o644, "a block device"),
        (stat.S_IFIFO | 0o644, "a FIFO"),
        (stat.S_IFSOCK | 0o644, "a socket"),
    ],
    ids=["symlink", "chr", "blk", "fifo", "sock"],
)
def test_special_file_members(box: Box, mode: int, kind: str) -> None:
    # A symlink member's data is its target; an unpacker honouring the mode would point
    # demo/link at the venv's parent directory.
    whl = make_wheel(
        box.wheels,
        files={"demo/__init__.py": b"", "demo/link": str(box.root).encode()},
        modes={"demo/link": mode},
    )
    refuse(box, whl, f"unsafe member 'demo/link': is {kind}, not a regular file")


def test_symlink_directory_entry(box: Box) -> None:
    info = zipfile.ZipInfo("demo/sub/")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    whl = make_wheel(box.wheels, files={"demo/__init__.py": b""}, raw_infos=[(info, b"")])
    refuse(box, whl, "'demo/sub/': is a symlink")


def test_duplicate_member(box: Box) -> None:
    first = b"x = 1\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns "Duplicate name" but writes it
        whl = make_wheel(
            box.wheels,
            files={"demo.py": first},
            raw_infos=[(zipfile.ZipInfo("demo.py"), b"import os; os.system('evil')\n")],
        )
    with zipfile.ZipFile(whl) as zf:
        assert [i.filename for i in zf.infolist()].count("demo.py") == 2
    refuse(box, whl, "duplicate member 'demo.py'")


def test_central_directory_and_local_header_disagree(box: Box) -> None:
    # The central directory says demo/aa.py; the local header (what a streaming
    # unzipper uses) says ../../x.py.
    whl = make_wheel(box.wheels, files={"demo/aa.py": b"x = 1\n"})
    data = bytearray(whl.read_bytes())
    c = _central(bytes(data), "demo/aa.py")
    data[c.local + 30 : c.local + 30 + 10] = b"../../x.py"
    whl.write_bytes(bytes(data))
    refuse(box, whl, "corrupt archive at demo/aa.py")


def test_overlapping_member_data(box: Box) -> None:
    # The "quoted overlap" zip bomb: a central record claims more compressed bytes
    # than there are before the next member, so members share data.
    whl = make_wheel(box.wheels, files={"demo/aa.py": b"x = 1\n", "demo/bb.py": b"y = 2\n"})
    with zipfile.ZipFile(whl) as zf:
        size = zf.getinfo("demo/aa.py").compress_size
    patch_central(whl, "demo/aa.py", 20, "<I", size + 64)
    refuse(box, whl, "overlapped entries")


def test_invalid_utf8_name(box: Box) -> None:
    # Flag bit 11 promises UTF-8 names; these bytes are not UTF-8.
    whl = make_wheel(box.wheels, files={"demo.py": b"", "demo/ab.py": b""})
    rename_member(whl, "demo/ab.py", b"demo/\xff\xfe.py")
    data = bytearray(whl.read_bytes())
    c = _central(bytes(data), b"demo/\xff\xfe.py")
    (flags,) = struct.unpack_from("<H", data, c.offset + 8)
    struct.pack_into("<H", data, c.offset + 8, flags | 0x800)
    whl.write_bytes(bytes(data))
    refuse(box, whl, "not a valid zip archive")


# -- layout and metadata ------------------------------------------------------------------


def test_unknown_data_scheme(box: Box) -> None:
    whl = make_wheel(box.wheels, files={"demo.py": b"", "demo-1.0.data/evil/x": b"x\n"})
    refuse(box, whl, "'demo-1.0.data/evil/x' is in an unknown .data scheme")


def test_data_scheme_as_a_file(box: Box) -> None:
    whl = make_wheel(box.wheels, files={"demo.py": b"", "demo-1.0.data/purelib": b"x\n"})
    refuse(box, whl, "unknown .data scheme")


@pytest.mark.parametrize(
    "dist_info", ["other-1.0.dist-info", "demo-2.0.dist-info", "demo.dist-info", "demo-x.dist-info"]
)
def test_dist_info_not_matching_filename(box: Box, dist_info: str) -> None:
    whl = make_wheel(box.wheels, dist_info=dist_info)
    refuse(box, whl, f".dist-info directory {dist_info!r} does not match the filename")


def test_two_dist_info_dirs(box: Box) -> None:
    whl = make_wheel(
        box.wheels,
        files={"demo.py": b"", "other-1.0.dist-info/METADATA": b"Name: other\nVersion: 1.0\n"},
    )
    refuse(box, whl, "expected one .dist-info directory, found 2")


def test_missing_wheel_metadata(box: Box) -> None:
    whl = make_wheel(box.wheels)
    with zipfile.ZipFile(whl) as src:
        items = [(i, src.read(i)) for i in src.infolist() if not i.filename.endswith("/WHEEL")]
    with zipfile.ZipFile(whl, "w") as dst:
        for i, d in items:
            dst.writestr(i, d)
    refuse(box, whl, "missing demo-1.0.dist-info/WHEEL")


@pytest.mark.parametrize(
    ("filename", "expect"),
    [
        ("demo-1.0.0.0.0.x-py3-none-any.whl", "not a valid wheel filename"),
        ("demo-notaversion-py3-none-any.whl", "not a valid wheel filename"),
        ("demo-1.0.whl", "not a valid wheel filename"),
        ("demo-1.0-py3-none.whl", "not a valid wheel filename"),
    ],
)
def test_bad_wheel_filename(box: Box, filename: str, expect: str) -> None:
    whl = make_wheel(box.wheels, filename=filename)
    line = refuse(box, whl, expect)
    assert filename in line


def test_not_a_whl_file(box: Box) -> None:
    whl = make_wheel(box.wheels, filename="demo-1.0-py3-none-any.zip")
    refuse(box, whl, "not a wheel file")


# -- RECORD --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ("../../evil", "'..' path component"),
        ("../../../../../../../evil", "'..' path component"),
        ("/tmp/safelink-evil", "is an absolute path"),
        ("C:/evil", "starts with a drive prefix"),
        ("..\\evil", "contains a backslash"),
    ],
)
def test_record_row_pointing_outside(box: Box, extra: str, why: str) -> None:
    whl = make_wheel(box.wheels, record_filter=add_rows((extra, b"evil\n")))
    line = refuse(box, whl, f"unsafe RECORD path {extra!r}: ")
    assert why in line


def test_record_row_with_other_spelling(box: Box) -> None:
    # demo.py is a safe member, but RECORD calls it ./demo.py: not the same path.
    whl = make_wheel(
        box.wheels,
        record_filter=rows_edit(lambda p, h, s: ("./" + p if p == "demo.py" else p, h, s)),
    )
    refuse(box, whl, "unsafe RECORD path './demo.py'")


def test_record_row_with_other_spelling_double_slash(box: Box) -> None:
    whl = make_wheel(
        box.wheels,
        files={"demo/x.py": b""},
        record_filter=rows_edit(lambda p, h, s: ("demo//x.py" if p == "demo/x.py" else p, h, s)),
    )
    refuse(box, whl, "unsafe RECORD path 'demo//x.py'")


def test_record_hash_mismatch(box: Box) -> None:
    whl = make_wheel(
        box.wheels,
        files={"demo.py": b"x = 2\n"},
        record_filter=rows_edit(
            lambda p, h, s: (p, record_hash(b"x = 1\n") if p == "demo.py" else h, s)
        ),
    )
    refuse(box, whl, "demo.py does not match its RECORD hash")


def test_record_size_mismatch(box: Box) -> None:
    whl = make_wheel(
        box.wheels,
        files={"demo.py": b"x = 2\n"},
        record_filter=rows_edit(lambda p, h, s: (p, h, "5" if p == "demo.py" else s)),
    )
    refuse(box, whl, "size of 'demo.py' is 6, RECORD says 5")


@pytest.mark.parametrize("size", ["\u00b2", "\u0661", "-1", "1e3", " 6", ""])
def test_record_size_not_a_number(box: Box, size: str) -> None:
    # "²".isdigit() is True but int("²") fails: must be a clean refusal, not a traceback.
    whl = make_wheel(
        box.wheels,
        files={"demo.py": b"x = 2\n"},
        record_filter=rows_edit(lambda p, h, s: (p, h, size if p == "demo.py" else s)),
    )
    refuse(box, whl, "RECORD row for 'demo.py' lacks a hash or size")


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha224", "crc32"])
def test_record_weak_hash(box: Box, algo: str) -> None:
    import base64
    import hashlib

    def weak(data: bytes) -> str:
        h = (
            hashlib.new(algo, data).digest()
            if algo != "crc32"
            else zlib.crc32(data).to_bytes(4, "big")
        )
        return f"{algo}=" + base64.urlsafe_b64encode(h).rstrip(b"=").decode()

    whl = make_wheel(
        box.wheels,
        files={"demo.py": b"x = 2\n"},
        record_filter=rows_edit(lambda p, h, s: (p, weak(b"x = 2\n") if p == "demo.py" else h, s)),
    )
    refuse(box, whl, f"RECORD uses weak or unknown hash {algo!r} for 'demo.py'")


def test_member_missing_from_record(box: Box) -> None:
    whl = make_wheel(box.wheels, extra_members={"demo/sneaky.py": b"evil\n"})
    refuse(box, whl, "member 'demo/sneaky.py' is not listed in RECORD")


def test_record_row_for_missing_file(box: Box) -> None:
    whl = make_wheel(box.wheels, record_filter=add_rows(("demo/ghost.py", b"boo\n")))
    refuse(box, whl, "RECORD lists 'demo/ghost.py', which is not in the archive")


def test_record_row_twice(box: Box) -> None:
    whl = make_wheel(box.wheels, record_filter=lambda rows: [*rows, rows[0]])
    refuse(box, whl, "RECORD lists 'demo.py' twice")


def test_record_malformed_csv(box: Box) -> None:
    whl = make_wheel(box.wheels, record="demo.py,sha256=abc\n")
    refuse(box, whl, "malformed RECORD row")


# -- entry points ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../bin/x", "a/b", ".", "..", "-rf", "x\\y"])
def test_entry_point_name_not_a_file_name(box: Box, name: str) -> None:
    eps = f"[console_scripts]\n{name} = demo:main\n"
    whl = make_wheel(box.wheels, files={"demo.py": b"def main(): pass\n"}, entry_points=eps)
    refuse(box, whl, f"entry point name {name!r} is not a plain file name")


def test_gui_entry_point_name_traversal(box: Box) -> None:
    eps = "[gui_scripts]\n../../../evil = demo:main\n"
    whl = make_wheel(box.wheels, files={"demo.py": b"def main(): pass\n"}, entry_points=eps)
    refuse(box, whl, "entry point name '../../../evil'")


@pytest.mark.parametrize(
    ("eps", "expect"),
    [
        ("[console_scripts]\nx = \n", "bad entry point x = ''"),
        ("[console_scripts]\nx = not valid!\n", "bad entry point x = 'not valid!'"),
        ("[console_scripts]\nx = demo\n", "bad entry point x = 'demo'"),
        ("[console_scripts]\nx = demo:main; import os\n", "bad entry point x"),
        ("x = demo:main\n", "bad entry_points.txt"),
        ("[console_scripts]\nx\n", "bad entry_points.txt"),
    ],
    ids=["empty", "not-valid", "no-attr", "trailing-code", "no-section", "no-value"],
)
def test_entry_point_bad_syntax(box: Box, eps: str, expect: str) -> None:
    whl = make_wheel(box.wheels, files={"demo.py": b"def main(): pass\n"}, entry_points=eps)
    refuse(box, whl, expect)


# -- size caps and zip bombs -------------------------------------------------------------------


def test_size_cap_refuses_then_override_installs(box: Box) -> None:
    whl = make_wheel(box.wheels, files={"demo.py": b"x = 1\n" + b"#" * 2048 + b"\n"})
    refuse(
        box,
        whl,
        "more than the cap of 1,024 (raise it with --max-unpacked-size",
        "--max-unpacked-size",
        "1K",
    )
    proc = run_cli("install", "--python", str(box.venv), "--max-unpacked-size", "1M", str(whl))
    assert proc.returncode == 0, proc.stderr
    assert (site_packages(box.venv) / "demo.py").read_bytes().startswith(b"x = 1\n")


def test_highly_compressible_member_refused_under_cap(box: Box) -> None:
    zeros = bytes(50 * 1024**2)
    whl = make_wheel(box.wheels, files={"demo.py": b"", "demo/zeros.bin": zeros})
    assert whl.stat().st_size < 1024**2  # a real bomb: tiny on disk, 50 MB unpacked
    refuse(box, whl, "more than the cap of 10,485,760", "--max-unpacked-size", "10M")


def test_declared_size_beyond_cap_is_refused_before_reading(box: Box) -> None:
    # A member whose central-directory size claims ~4 GB is refused from the
    # declaration alone (the data is never decompressed).
    whl = make_wheel(box.wheels, files={"demo.py": b"", "demo/big.bin": b"small\n"})
    patch_central(whl, "demo/big.bin", 24, "<I", 0xFFFF_FF00)
    refuse(box, whl, "unpacks to 4,294,", "--max-unpacked-size", "1G")


def test_declared_size_smaller_than_data_cannot_expand(box: Box) -> None:
    # A member that decompresses to 50 MB but declares 100 bytes: zipfile stops at the
    # declared size and the CRC no longer matches; nothing beyond the declaration is written.
    zeros = bytes(50 * 1024**2)
    whl = make_wheel(
        box.wheels,
        files={"demo.py": b""},
        raw_infos=[(_deflated("demo/zeros.bin"), zeros)],
        record_filter=add_rows(("demo/zeros.bin", zeros[:100])),
    )
    patch_central(whl, "demo/zeros.bin", 24, "<I", 100)
    patch_local(whl, "demo/zeros.bin", 22, "<I", 100)
    refuse(box, whl, "corrupt archive at demo/zeros.bin", "--max-unpacked-size", "1M")


def _deflated(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


# -- damaged archives ---------------------------------------------------------------------------


def test_truncated_zip(box: Box) -> None:
    whl = make_wheel(box.wheels, files={"demo.py": text_payload(20_000)})
    data = whl.read_bytes()
    whl.write_bytes(data[: len(data) // 2])
    refuse(box, whl, "not a valid zip archive")


def test_empty_file(box: Box) -> None:
    whl = box.wheels / "demo-1.0-py3-none-any.whl"
    whl.write_bytes(b"")
    refuse(box, whl, "not a valid zip archive")


@pytest.mark.parametrize("at", [0.1, 0.5, 0.9])
def test_corrupted_member_data(box: Box, at: float) -> None:
    whl = make_wheel(box.wheels, files={"demo.py": b"", "demo/payload.txt": text_payload(40_000)})
    flip_member_bytes(whl, "demo/payload.txt", at=at)
    refuse(box, whl, "corrupt archive at demo/payload.txt")


def test_corrupted_record_data(box: Box) -> None:
    files = {f"demo/m{i:03}.py": text_payload(100 + i) for i in range(60)}
    whl = make_wheel(box.wheels, files=files)
    flip_member_bytes(whl, "demo-1.0.dist-info/RECORD", at=0.3, count=16)
    refuse(box, whl, "corrupt archive reading demo-1.0.dist-info/RECORD")


def test_stored_member_crc_mismatch(box: Box) -> None:
    info = zipfile.ZipInfo("demo/plain.txt")  # ZIP_STORED: bytes are there verbatim
    whl = make_wheel(
        box.wheels,
        files={"demo.py": b""},
        raw_infos=[(info, b"hello world\n")],
        record_filter=add_rows(("demo/plain.txt", b"hello world\n")),
    )
    data = whl.read_bytes()
    whl.write_bytes(data.replace(b"hello world\n", b"HELLO world\n", 1))
    refuse(box, whl, "corrupt archive at demo/plain.txt")


@pytest.mark.parametrize(
    ("method", "expect"),
    [
        (zipfile.ZIP_BZIP2, "unsupported compression method 12"),
        (zipfile.ZIP_LZMA, "unsupported compression method 14"),
    ],
)
def test_unsupported_compression(box: Box, method: int, expect: str) -> None:
    # Not because bzip2/lzma are unsafe in themselves: corrupt lzma data used to escape
    # as a traceback, and no real wheel uses them.
    data = text_payload(5000)
    info = zipfile.ZipInfo("demo/data.txt")
    info.compress_type = method
    whl = make_wheel(
        box.wheels,
        files={"demo.py": b""},
        raw_infos=[(info, data)],
        record_filter=add_rows(("demo/data.txt", data)),
    )
    flip_member_bytes(whl, "demo/data.txt")
    refuse(box, whl, f"member 'demo/data.txt' uses {expect}")


def test_unknown_compression_method(box: Box) -> None:
    whl = make_wheel(box.wheels, files={"demo.py": b"", "demo/x.py": b"x\n"})
    patch_central(whl, "demo/x.py", 10, "<H", 99)
    refuse(box, whl, "unsupported compression method 99")


def test_encrypted_member(box: Box) -> None:
    whl = make_wheel(box.wheels, files={"demo.py": b"", "demo/x.py": b"x\n"})
    patch_central(whl, "demo/x.py", 8, "<H", 0x1)
    refuse(box, whl, "member 'demo/x.py' is encrypted")


# -- uninstall of untrusted RECORDs --------------------------------------------------------------


def _installed(box: Box) -> Path:
    whl = make_wheel(
        box.wheels,
        files={"demo/__init__.py": b"", "demo/mod.py": b"x = 1\n"},
    )
    run_cli("install", "--python", str(box.venv), str(whl), check=True)
    record = site_packages(box.venv) / "demo-1.0.dist-info" / "RECORD"
    assert record.is_file()
    return record


def _append_row(record: Path, path: str) -> None:
    mode = record.stat().st_mode
    os.chmod(record, mode | 0o200)
    with record.open("a", encoding="utf-8") as f:
        f.write(f"{path},,\n")
    os.chmod(record, mode)


@pytest.mark.parametrize(
    "row",
    [
        "relative",
        "via-package",
        "absolute",
        "env-root",
        "deep",
        "nul",
    ],
)
def test_uninstall_refuses_record_outside(box: Box, row: str) -> None:
    record = _installed(box)
    outside = box.root / "outside-file"
    outside.write_text("keep me\n")
    # site-packages is venv/lib/pythonX.Y/site-packages: four levels below box.root.
    path = {
        "relative": "../../../../outside-file",
        "via-package": "demo/../../../../../outside-file",
        "absolute": str(outside),
        "env-root": "../../..",
        "deep": "../" * 20 + str(outside).lstrip("/"),
        "nul": "demo/mod.py\0../../../../../outside-file",
    }[row]
    assert row in ("env-root", "nul") or os.path.normpath(record.parent.parent / path) == str(
        outside
    )
    # The bad row comes *after* the legitimate ones: nothing may be removed first.
    _append_row(record, path)
    before = tree(box.top)
    proc = run_cli("uninstall", "--python", str(box.venv), "demo")
    _assert_one_error(proc, "outside the environment; refusing to uninstall it")
    assert tree(box.top) == before
    assert outside.read_text() == "keep me\n"
    assert (site_packages(box.venv) / "demo" / "mod.py").exists()


def test_uninstall_refuses_record_through_symlinked_dir(box: Box) -> None:
    record = _installed(box)
    outside = box.root / "outside-dir"
    outside.mkdir()
    (outside / "victim.txt").write_text("keep me\n")
    (site_packages(box.venv) / "demo" / "escape").symlink_to(outside)
    _append_row(record, "demo/escape/victim.txt")
    before = tree(box.top)
    proc = run_cli("uninstall", "--python", str(box.venv), "demo")
    _assert_one_error(proc, "'demo/escape/victim.txt', outside the environment")
    assert tree(box.top) == before
    assert (outside / "victim.txt").read_text() == "keep me\n"


def test_uninstall_of_a_clean_record_still_works(box: Box) -> None:
    # The control for the refusals above: the same install uninstalls fine untouched.
    _installed(box)
    outside = box.root / "outside-file"
    outside.write_text("keep me\n")
    proc = run_cli("uninstall", "--python", str(box.venv), "demo")
    assert proc.returncode == 0, proc.stderr
    assert not (site_packages(box.venv) / "demo").exists()
    assert not (site_packages(box.venv) / "demo-1.0.dist-info").exists()
    assert outside.read_text() == "keep me\n"


def test_valid_wheel_installs_in_this_box(box: Box) -> None:
    # The control for every refusal above: the same helpers and box accept a good wheel.
    whl = make_wheel(
        box.wheels,
        files={"demo/__init__.py": b"", "demo/caf\u00e9.py": b"", "demo/sub/x.py": b"x\n"},
        entry_points="[console_scripts]\ndemo-run = demo:main\n",
    )
    proc = run_cli("install", "--python", str(box.venv), str(whl))
    assert proc.returncode == 0, proc.stderr
    assert (site_packages(box.venv) / "demo" / "sub" / "x.py").read_bytes() == b"x\n"
    assert (box.venv / "bin" / "demo-run").exists()


# -- the checker itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "leftover",
    [
        "venv/lib/stray.py",
        "outside.py",
        "cache/v1/tmp/0123456789abcdef-1-2/",
        "cache/v1/entries/" + "a" * 64 + "/",
        "cache/v1/index/not-a-hash",
        "cache/v1/locks/" + "b" * 64 + ".lock:data",
    ],
)
def test_unchanged_check_notices_leftovers(box: Box, leftover: str) -> None:
    # The before/after comparison every refusal relies on must see each kind of leftover.
    before = tree(box.top)
    path, _, data = leftover.partition(":")
    p = box.root / path
    p.parent.mkdir(parents=True, exist_ok=True)
    if path.endswith("/"):
        p.mkdir()
    else:
        p.write_text(data)
    with pytest.raises(AssertionError):
        _assert_unchanged(box, before)


def test_unchanged_check_allows_only_bookkeeping(box: Box) -> None:
    before = tree(box.top)
    (box.cache / "v1" / "index").mkdir(parents=True)
    (box.cache / "v1" / "locks").mkdir()
    (box.cache / "v1" / "tmp").mkdir()
    (box.cache / "v1" / "index" / ("c" * 64)).write_text("d" * 64)
    (box.cache / "v1" / "locks" / ("e" * 64 + ".lock")).write_bytes(b"")
    _assert_unchanged(box, before)
    (box.venv / "pyvenv.cfg").write_text("changed\n")
    with pytest.raises(AssertionError):
        _assert_unchanged(box, before)
