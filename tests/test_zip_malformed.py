"""Every malformed zip is one clear error at admission, never a traceback.

Covers what ``zipfile`` raises outside its usual exceptions (``NotImplementedError``,
``UnicodeDecodeError`` on its ``open`` path for members over 1 MiB) and what it does
not check on every Python version (overlapping members over 1 MiB), and trees too
deep to unpack or remove by recursion.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import pytest

import safelink
from conftest import run_cli
from test_hostile_wheels import Box, _central, make_venv, patch_central, patch_local, refuse
from wheelmaker import make_wheel


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Box:
    root = tmp_path / "d1" / "d2"
    wheels = root / "wheels"
    wheels.mkdir(parents=True)
    cache = root / "cache"
    monkeypatch.setenv("SAFELINK_CACHE_DIR", str(cache))
    return Box(tmp_path, root, make_venv(root / "venv"), cache, wheels)

BIG = 2 << 20  # over the 1 MiB members the fast reader handles: zipfile.open's path


def big_wheel(box: Box) -> Path:
    # incompressible, so the compressed data is big too
    return make_wheel(
        box.wheels,
        files={"demo/__init__.py": b"", "demo/big.bin": os.urandom(BIG), "demo/zz.py": b"z\n"},
    )


@pytest.mark.parametrize("bit", [5, 6])
@pytest.mark.parametrize("member", ["demo/zz.py", "demo/big.bin", "demo-1.0.dist-info/RECORD"])
def test_flag_bits_5_and_6(box: Box, bit: int, member: str) -> None:
    whl = big_wheel(box)
    data = whl.read_bytes()
    c = _central(data, member)
    (flags,) = struct.unpack_from("<H", data, c.offset + 8)
    patch_central(whl, member, 8, "<H", flags | (1 << bit))
    patch_local(whl, member, 6, "<H", flags | (1 << bit))
    what = "compressed patched data" if bit == 5 else "strong encryption"
    refuse(box, whl, f"{member!r} uses {what} (flag bit {bit})")


@pytest.mark.parametrize("version", [64, 255])
def test_version_needed_above_63(box: Box, version: int) -> None:
    whl = big_wheel(box)
    patch_central(whl, "demo/zz.py", 6, "<H", version)
    refuse(box, whl, "needs zip version")


def test_invalid_utf8_local_name_of_a_big_member(box: Box) -> None:
    whl = big_wheel(box)
    data = bytearray(whl.read_bytes())
    c = _central(bytes(data), "demo/big.bin")
    (flags,) = struct.unpack_from("<H", data, c.local + 6)
    struct.pack_into("<H", data, c.local + 6, flags | 0x800)
    data[c.local + 30 + 5 : c.local + 30 + 7] = b"\xff\xfe"  # "demo/\xff\xfeg.bin"
    whl.write_bytes(bytes(data))
    refuse(box, whl, "corrupt archive at demo/big.bin")


def test_overlapping_big_members(box: Box) -> None:
    """A big member whose data runs into the next member's header (the "quoted overlap")."""
    whl = big_wheel(box)
    with zipfile.ZipFile(whl) as zf:
        size = zf.getinfo("demo/big.bin").compress_size
    patch_central(whl, "demo/big.bin", 20, "<I", size + 64)
    refuse(box, whl, "overlapped entries")


def test_tree_too_deep_is_refused(box: Box) -> None:
    deep = "/".join(["d"] * 1200) + "/x.py"
    whl = make_wheel(box.wheels, files={"demo/__init__.py": b"", f"demo/{deep}": b"x = 1\n"})
    refuse(box, whl, "is nested 1202 levels deep")


def test_cache_clean_removes_a_deep_tree(tmp_path: Path) -> None:
    """An entry as deep as a recursive rmtree cannot handle (left by an older version)."""
    cache = safelink.Cache(tmp_path / "cache")
    entry = cache.admit(make_wheel(tmp_path, "demo", "1.0"))
    p = Path(entry.files)
    for _ in range(1500):
        p = p / "d"
        os.mkdir(p)  # one by one: os.makedirs itself recurses
    (p / "x").write_bytes(b"x")
    os.chmod(p, 0o555)
    proc = run_cli("cache", "clean", "--cache-dir", str(tmp_path / "cache"))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert not os.path.exists(entry.path)
    assert os.listdir(tmp_path / "cache" / "v1" / "tmp") == []
