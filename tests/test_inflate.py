"""Admission inflates with zlib-ng when it is installed, else with zlib: the same
bytes either way, and a big member (streamed in pieces, not read whole) gets the same
checks as a small one: size, CRC-32 and a complete deflate stream."""

from __future__ import annotations

import hashlib
import random
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

import safelink
from conftest import make_venv, run_cli, tree
from safelink import _admit
from test_hostile_wheels import patch_central
from wheelmaker import make_wheel

BIG = "demo/big.bin"


def _big_payload() -> bytes:
    # 3 MB that deflate shrinks but not to nothing: several pieces in and out
    rng = random.Random(7)
    words = [bytes(rng.randrange(97, 123) for _ in range(rng.randrange(3, 9))) for _ in range(500)]
    return b" ".join(rng.choice(words) for _ in range(600_000))[: 3 << 20]


def _libs() -> list[Any]:
    libs: list[Any] = [zlib]
    try:
        from zlib_ng import zlib_ng

        libs.append(zlib_ng)
    except ImportError:
        pass
    return libs


@pytest.mark.parametrize("lib", _libs(), ids=lambda m: m.__name__)
def test_big_and_small_members_identical_with_either_zlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lib: Any
) -> None:
    monkeypatch.setattr(_admit, "_INFLATE", lib)
    big = _big_payload()
    files = {BIG: big, "demo/__init__.py": b"x = 1\n" * 50}
    whl = make_wheel(tmp_path, files=files)
    entry = safelink.Cache(tmp_path / "cache").admit(whl)
    for name, data in files.items():
        got = (Path(entry.path) / "files" / name).read_bytes()
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), name
    assert _admit.inflate_lib() is lib


def test_inflate_lib_prefers_zlib_ng_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_admit, "_INFLATE", None)
    lib = _admit.inflate_lib()
    assert lib.__name__ == _libs()[-1].__name__
    assert lib.crc32(b"abc") == zlib.crc32(b"abc")


def _refused(tmp_path: Path, whl: Path, expect: str) -> None:
    cache = tmp_path / "cache"
    venv = tmp_path / "venv"
    make_venv(venv)
    before = tree(venv)
    proc = run_cli("install", "--python", str(venv), "--cache-dir", str(cache), str(whl))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("safelink: error: "), proc.stderr
    assert expect in lines[0], lines[0]
    assert tree(venv) == before
    entries = cache / "v1" / "entries"
    assert not entries.exists() or list(entries.iterdir()) == []
    tmp = cache / "v1" / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


def test_big_member_with_a_wrong_crc_is_refused(tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, files={BIG: _big_payload()})
    with zipfile.ZipFile(whl) as zf:
        crc = zf.getinfo(BIG).CRC
    patch_central(whl, BIG, 16, "<I", crc ^ 1)
    _refused(tmp_path, whl, f"corrupt archive at {BIG}: Bad CRC-32")


def test_big_member_with_a_cut_deflate_stream_is_refused(tmp_path: Path) -> None:
    # the central directory claims fewer compressed bytes than the stream needs
    whl = make_wheel(tmp_path, files={BIG: _big_payload(), "demo/after.py": b"y = 2\n"})
    with zipfile.ZipFile(whl) as zf:
        size = zf.getinfo(BIG).compress_size
    patch_central(whl, BIG, 20, "<I", size - 4096)
    _refused(tmp_path, whl, f"corrupt archive at {BIG}: '{BIG}': truncated deflate stream")
