"""Tests of the pinned wheel corpus (tests/corpus.py).

The offline tests check the pins themselves and fetch()'s caching, verification and
atomicity against ``file://`` URLs.  The ``network`` tests download the small tier into
the real cache and check that every wheel has the shape its pin claims; the benchmark
tier's wheels are checked too when they are already in the cache
(``python tests/corpus.py fetch --bench``).
"""

from __future__ import annotations

import configparser
import contextlib
import csv
import email.parser
import hashlib
import io
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag
from packaging.utils import canonicalize_name, parse_wheel_filename

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus

MiB = 1 << 20
PYTHONS = [(3, 10), (3, 11), (3, 12), (3, 13)]
REQUIRED_TEST_SHAPES = {
    "tiny",
    "console_scripts",
    "data_scripts_shebang",
    "data_data",
    "data_headers",
    "platlib",
    "extension",
    "abi3",
    "many_files",
}


def _ids(w: corpus.PinnedWheel) -> str:
    return w.name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- the pins


def test_tiers() -> None:
    test, bench = corpus.TEST_WHEELS, corpus.BENCH_WHEELS
    assert len({w.name for w in bench}) == len(bench)
    assert len({w.filename for w in bench}) == len(bench)
    assert bench[: len(test)] == test, "BENCH_WHEELS must start with TEST_WHEELS"
    assert sum(w.size for w in test) < 15_000_000
    assert 20 <= len(bench) <= 25
    assert sum(w.n_files for w in bench) >= 20_000
    claimed = {s for w in test for s in w.shapes}
    assert claimed >= REQUIRED_TEST_SHAPES, REQUIRED_TEST_SHAPES - claimed
    for w in bench:
        assert set(w.shapes) <= corpus.SHAPES, w.name


def _supported_tags(minor: int) -> set[Tag]:
    platforms = [f"manylinux_2_{g}_x86_64" for g in range(28, 4, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    platforms.append("linux_x86_64")
    tags = set(cpython_tags((3, minor), abis=[f"cp3{minor}"], platforms=platforms))
    tags |= set(compatible_tags((3, minor), interpreter=f"cp3{minor}", platforms=platforms))
    return tags


@pytest.mark.parametrize("wheel", corpus.BENCH_WHEELS, ids=_ids)
def test_pin_is_well_formed(wheel: corpus.PinnedWheel) -> None:
    name, version, _build, tags = parse_wheel_filename(wheel.filename)
    assert wheel.name == canonicalize_name(name) == corpus.normalize_name(name)
    assert str(version) == wheel.version
    assert re.fullmatch(r"[0-9a-f]{64}", wheel.sha256)
    assert re.fullmatch(
        r"https://files\.pythonhosted\.org/packages/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{60}/"
        + re.escape(wheel.filename),
        wheel.url,
    )
    assert wheel.size > 0 and wheel.n_files > 0 and wheel.why
    assert wheel.tags == tuple(wheel.filename[:-4].split("-")[-3:])
    assert tags == parse_tag("-".join(wheel.tags))
    for _, minor in PYTHONS:
        assert tags & _supported_tags(minor), f"not installable on CPython 3.{minor}"
    # Pure, or compiled against the stable ABI only: one file serves 3.10-3.13.
    for tag in tags:
        assert tag.abi in ("none", "abi3"), tag
        assert tag.platform == "any" or tag.platform.endswith("_x86_64"), tag


def test_by_name() -> None:
    assert corpus.by_name("Jupyterlab_Pygments").filename.startswith("jupyterlab_pygments-")
    assert corpus.by_name("six") is corpus.TEST_WHEELS[0]
    assert corpus.by_name("polars") in corpus.BENCH_WHEELS
    with pytest.raises(KeyError, match="no pinned wheel"):
        corpus.by_name("no-such-project")


def test_wheel_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SAFELINK_TEST_WHEELS", raising=False)
    default = Path(__file__).resolve().parent.parent / ".wheels"
    assert corpus.wheel_cache_dir() == default
    monkeypatch.setenv("SAFELINK_TEST_WHEELS", "")
    assert corpus.wheel_cache_dir() == default
    monkeypatch.setenv("SAFELINK_TEST_WHEELS", str(tmp_path))
    assert corpus.wheel_cache_dir() == tmp_path
    assert corpus.TEST_WHEELS[0].local_path() == tmp_path / corpus.TEST_WHEELS[0].filename


# --------------------------------------------------------------------------- fetch()


@pytest.fixture
def fake(tmp_path: Path) -> corpus.PinnedWheel:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("fake/__init__.py", "x = 1\n")
        z.writestr("fake-1.0.dist-info/RECORD", "fake/__init__.py,,\n")
    data = buf.getvalue()
    src = tmp_path / "src" / "fake-1.0-py3-none-any.whl"
    src.parent.mkdir()
    src.write_bytes(data)
    return corpus.PinnedWheel(
        "fake", "1.0", src.name, hashlib.sha256(data).hexdigest(), src.as_uri(), "test",
        size=len(data), n_files=2,
    )  # fmt: skip


def _leftovers(dest: Path, wheel: corpus.PinnedWheel) -> list[str]:
    expected = {wheel.filename, wheel.filename + ".sha256-ok"}
    return sorted(p.name for p in dest.iterdir() if p.name not in expected)


def test_fetch_downloads_once(fake: corpus.PinnedWheel, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "nested"
    src = Path(fake.url.removeprefix("file://"))
    assert corpus.fetch([fake], dest, via="urllib") == [dest / fake.filename]
    assert (dest / fake.filename).read_bytes() == src.read_bytes()
    assert (dest / (fake.filename + ".sha256-ok")).is_file()
    assert _leftovers(dest, fake) == []
    src.unlink()  # from now on only the cache can satisfy fetch()
    assert corpus.fetch([fake], dest, via="urllib") == [dest / fake.filename]
    assert corpus.fetch([fake], dest, via="urllib", rehash=True) == [dest / fake.filename]
    (dest / (fake.filename + ".sha256-ok")).unlink()
    assert corpus.fetch([fake], dest, via="urllib") == [dest / fake.filename]
    assert (dest / (fake.filename + ".sha256-ok")).is_file()


def test_fetch_replaces_corrupt_file(fake: corpus.PinnedWheel, tmp_path: Path) -> None:
    dest = tmp_path / "cache"
    [path] = corpus.fetch([fake], dest, via="urllib")
    good = path.read_bytes()
    path.write_bytes(bytes(len(good)))  # same size, wrong content, new mtime
    assert corpus.fetch([fake], dest, via="urllib") == [path]
    assert path.read_bytes() == good
    path.write_bytes(good[:10])  # truncated
    corpus.fetch([fake], dest, via="urllib")
    assert path.read_bytes() == good
    assert _leftovers(dest, fake) == []


def test_fetch_hash_mismatch(fake: corpus.PinnedWheel, tmp_path: Path) -> None:
    dest = tmp_path / "cache"
    bad = replace(fake, sha256="0" * 64)
    with pytest.raises(corpus.CorpusError, match="sha256 mismatch") as info:
        corpus.fetch([bad], dest, via="urllib")
    assert "\n" not in str(info.value) and bad.filename in str(info.value)
    assert list(dest.iterdir()) == []  # nothing half-written or unverified is left


def test_fetch_download_failure(fake: corpus.PinnedWheel, tmp_path: Path) -> None:
    dest = tmp_path / "cache"
    gone = replace(fake, url=(tmp_path / "nowhere.whl").as_uri())
    with pytest.raises(corpus.CorpusError, match="download failed") as info:
        corpus.fetch([gone], dest, via="urllib")
    assert "\n" not in str(info.value)
    assert list(dest.iterdir()) == []


# --------------------------------------------------------------------------- shapes


@dataclass
class Inspected:
    """A wheel opened for shape checks."""

    zf: zipfile.ZipFile
    size: int
    dist_info: str  # e.g. "docutils-0.19.dist-info"

    @property
    def infos(self) -> list[zipfile.ZipInfo]:
        return self.zf.infolist()

    @property
    def data_dir(self) -> str:
        return self.dist_info.removesuffix(".dist-info") + ".data"

    def files(self, prefix: str = "") -> list[zipfile.ZipInfo]:
        return [i for i in self.infos if not i.is_dir() and i.filename.startswith(prefix)]

    def head(self, info: zipfile.ZipInfo, n: int = 8) -> bytes:
        with self.zf.open(info) as f:
            return f.read(n)

    def wheel_metadata(self) -> email.message.Message:
        text = self.zf.read(f"{self.dist_info}/WHEEL").decode()
        return email.parser.Parser().parsestr(text)

    def entry_points(self) -> configparser.ConfigParser:
        parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        name = f"{self.dist_info}/entry_points.txt"
        if name in self.zf.namelist():
            parser.read_string(self.zf.read(name).decode())
        return parser


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Inspected]:
    with zipfile.ZipFile(path) as zf:
        tops = {n.split("/")[0] for n in zf.namelist() if n.split("/")[0].endswith(".dist-info")}
        assert len(tops) == 1, f"{path.name}: top-level .dist-info dirs {sorted(tops)}"
        yield Inspected(zf, path.stat().st_size, tops.pop())


def _scripts(w: Inspected, magic: bytes) -> None:
    hits = [i for i in w.files(f"{w.data_dir}/scripts/") if w.head(i).startswith(magic)]
    assert hits, f"no {w.data_dir}/scripts/ member starting with {magic!r}"


def _section(w: Inspected, section: str) -> None:
    ep = w.entry_points()
    assert ep.has_section(section) and ep.options(section), f"no [{section}] entry"


def _check_tiny(w: Inspected) -> None:
    assert len(w.infos) <= 20 and w.size <= 100_000, (len(w.infos), w.size)


def _check_data(scheme: str) -> Callable[[Inspected], None]:
    def check(w: Inspected) -> None:
        assert w.files(f"{w.data_dir}/{scheme}/"), f"nothing under {w.data_dir}/{scheme}/"

    return check


def _check_platlib(w: Inspected) -> None:
    assert w.wheel_metadata()["Root-Is-Purelib"].strip().lower() == "false"


def _check_extension(w: Inspected) -> None:
    sos = [i for i in w.files() if i.filename.endswith(".so")]
    assert any(w.head(i, 4) == b"\x7fELF" for i in sos), "no ELF .so member"


def _check_abi3(w: Inspected) -> None:
    tags = w.wheel_metadata().get_all("Tag") or []
    assert tags and all("-abi3-" in t for t in tags), tags
    assert any(i.filename.endswith(".abi3.so") for i in w.files()), "no *.abi3.so member"


def _check_exec_bits(w: Inspected) -> None:
    scripts = f"{w.data_dir}/scripts/"
    assert any(
        (i.external_attr >> 16) & 0o111 and not i.filename.startswith(scripts) for i in w.files()
    ), "no executable member outside .data/scripts"


def _check_nested_dist_info(w: Inspected) -> None:
    nested = {
        n.rsplit("/", 2)[0]
        for n in w.zf.namelist()
        if n.endswith(".dist-info/RECORD") and not n.startswith(w.dist_info + "/")
    }
    assert nested, "no nested .dist-info/RECORD"


CHECKS: dict[str, Callable[[Inspected], None]] = {
    "tiny": _check_tiny,
    "console_scripts": lambda w: _section(w, "console_scripts"),
    "gui_scripts": lambda w: _section(w, "gui_scripts"),
    "data_scripts_shebang": lambda w: _scripts(w, b"#!python"),
    "data_scripts_binary": lambda w: _scripts(w, b"\x7fELF"),
    "data_data": _check_data("data"),
    "data_headers": _check_data("headers"),
    "platlib": _check_platlib,
    "extension": _check_extension,
    "abi3": _check_abi3,
    "many_files": lambda w: _at_least(len(w.infos), 1000),
    "dir_entries": lambda w: _at_least(sum(i.is_dir() for i in w.infos), 1),
    "exec_bits": _check_exec_bits,
    "big_file": lambda w: _at_least(max(i.file_size for i in w.infos), 50 * MiB),
    "large": lambda w: _at_least(w.size, 10 * MiB),
    "nested_dist_info": _check_nested_dist_info,
}


def _at_least(value: int, minimum: int) -> None:
    assert value >= minimum, f"{value} < {minimum}"


def test_every_shape_has_a_check() -> None:
    assert set(CHECKS) == corpus.SHAPES


def _check_pin(wheel: corpus.PinnedWheel, path: Path, *, crc: bool) -> None:
    """Everything a pin promises about *path*, checked from the file itself."""
    assert path.name == wheel.filename
    assert path.stat().st_size == wheel.size
    assert _sha256(path) == wheel.sha256
    with _open(path) as w:
        name, version = w.dist_info.removesuffix(".dist-info").rsplit("-", 1)
        assert canonicalize_name(name) == wheel.name and version == wheel.version
        assert len(w.infos) == wheel.n_files
        record = w.zf.read(f"{w.dist_info}/RECORD").decode()
        listed = {row[0] for row in csv.reader(io.StringIO(record)) if row}
        unlisted = {i.filename for i in w.files()} - listed
        assert not unlisted, f"members missing from RECORD: {sorted(unlisted)[:5]}"
        metadata = email.parser.Parser().parsestr(
            w.zf.read(f"{w.dist_info}/METADATA").decode("utf-8")
        )
        requires = SpecifierSet(metadata.get("Requires-Python") or "")
        for major, minor in PYTHONS:
            assert requires.contains(f"{major}.{minor}.0"), f"Requires-Python: {requires}"
        if crc:
            assert w.zf.testzip() is None
        for shape in wheel.shapes:
            try:
                CHECKS[shape](w)
            except AssertionError as exc:
                raise AssertionError(f"{wheel.filename} is not {shape!r}: {exc}") from exc


@pytest.fixture(scope="module")
def test_tier_paths() -> dict[str, Path]:
    paths = corpus.fetch(corpus.TEST_WHEELS)
    return {w.name: p for w, p in zip(corpus.TEST_WHEELS, paths, strict=True)}


@pytest.mark.network
@pytest.mark.parametrize("wheel", corpus.TEST_WHEELS, ids=_ids)
def test_test_wheel_matches_pin(
    wheel: corpus.PinnedWheel, test_tier_paths: dict[str, Path]
) -> None:
    path = test_tier_paths[wheel.name]
    assert path == wheel.local_path()
    _check_pin(wheel, path, crc=True)


@pytest.mark.network
def test_shape_checks_discriminate(test_tier_paths: dict[str, Path]) -> None:
    """The checks are not vacuous: the tiny six wheel fails every other one."""
    with _open(test_tier_paths["six"]) as w:
        CHECKS["tiny"](w)
        for shape, check in CHECKS.items():
            if shape != "tiny":
                with pytest.raises(AssertionError):
                    check(w)


@pytest.mark.network
def test_brief_shapes(test_tier_paths: dict[str, Path]) -> None:
    """The specific shapes the test tier exists for, spelled out."""

    def zf(name: str) -> zipfile.ZipFile:
        return stack.enter_context(zipfile.ZipFile(test_tier_paths[name]))

    with contextlib.ExitStack() as stack:
        docutils = zf("docutils")
        scripts = [n for n in docutils.namelist() if n.startswith("docutils-0.19.data/scripts/")]
        assert len(scripts) == 12
        assert all(docutils.read(n).startswith(b"#!python") for n in scripts)
        entry_points = zf("pyflakes").read("pyflakes-3.2.0.dist-info/entry_points.txt")
        assert b"[console_scripts]" in entry_points
        headers = "pybind11_global-2.13.6.data/headers/pybind11/pybind11.h"
        assert headers in zf("pybind11-global").namelist()
        data = "jupyterlab_pygments-0.3.0.data/data/share/jupyter/labextensions/"
        assert any(n.startswith(data) for n in zf("jupyterlab-pygments").namelist())
        bcrypt = zf("bcrypt")
        assert b"Root-Is-Purelib: false" in bcrypt.read("bcrypt-4.2.1.dist-info/WHEEL")
        assert bcrypt.read("bcrypt/_bcrypt.abi3.so")[:4] == b"\x7fELF"
        assert len(zf("jedi").namelist()) >= 1000
        assert b"[gui_scripts]" in zf("thonny").read("thonny-4.1.6.dist-info/entry_points.txt")


@pytest.mark.network
def test_fetch_via_pip(tmp_path: Path) -> None:
    """The fallback path: pip download of the exact tags, then the same verification."""
    six = corpus.by_name("six")
    [path] = corpus.fetch([six], tmp_path, via="pip")
    assert _sha256(path) == six.sha256
    assert _leftovers(tmp_path, six) == []


@pytest.mark.network
@pytest.mark.parametrize("wheel", corpus.BENCH_WHEELS[len(corpus.TEST_WHEELS) :], ids=_ids)
def test_bench_wheel_matches_pin(wheel: corpus.PinnedWheel) -> None:
    if not wheel.local_path().is_file():
        pytest.skip("not in the cache: python tests/corpus.py fetch --bench")
    [path] = corpus.fetch([wheel])
    _check_pin(wheel, path, crc=False)


# --------------------------------------------------------------------------- journey wheels


def _journey_id(w: corpus.PinnedWheel) -> str:
    return f"{w.name}-{w.tags[0]}"


@pytest.mark.parametrize("wheel", corpus.JOURNEY_WHEELS, ids=_journey_id)
def test_journey_pin_is_well_formed(wheel: corpus.PinnedWheel) -> None:
    name, version, _build, tags = parse_wheel_filename(wheel.filename)
    assert wheel.name == canonicalize_name(name) and str(version) == wheel.version
    assert re.fullmatch(r"[0-9a-f]{64}", wheel.sha256) and wheel.url.endswith(wheel.filename)
    assert wheel.size > 0 and wheel.n_files > 0 and set(wheel.shapes) <= corpus.SHAPES
    minors = [m for _, m in PYTHONS if tags & _supported_tags(m)]
    assert minors, "installable on no CPython of the matrix"
    assert corpus.for_this_python(wheel.name, (3, minors[0])).sha256 in {
        w.sha256 for w in corpus.JOURNEY_WHEELS if w.name == wheel.name
    }


def test_for_this_python() -> None:
    for _, minor in PYTHONS:
        numpy = corpus.for_this_python("numpy", (3, minor))
        assert numpy.tags[0] == f"cp3{minor}"
    assert corpus.for_this_python("Setuptools") is corpus.by_name("setuptools")
    with pytest.raises(KeyError, match="no pinned wheel"):
        corpus.for_this_python("numpy", (3, 9))


@pytest.mark.network
@pytest.mark.parametrize("name", ["black", "numpy", "uv"])
def test_journey_wheel_matches_pin(name: str) -> None:
    wheel = corpus.for_this_python(name)
    [path] = corpus.fetch([wheel])
    _check_pin(wheel, path, crc=False)


@pytest.mark.parametrize("minor", [m for _, m in PYTHONS])
def test_awscli_pins_are_well_formed_for_each_python(minor: int) -> None:
    wheels = corpus.awscli_wheels((3, minor))
    assert len({w.name for w in wheels}) == len(wheels) == 12
    for wheel in wheels:
        name, version, _build, tags = parse_wheel_filename(wheel.filename)
        assert wheel.name == canonicalize_name(name) and str(version) == wheel.version
        assert re.fullmatch(r"[0-9a-f]{64}", wheel.sha256)
        assert wheel.url.endswith("/" + wheel.filename)
        assert wheel.size > 0 and wheel.n_files > 0 and wheel.why
        assert tags & _supported_tags(minor), f"{wheel.filename}: not for CPython 3.{minor}"
    with pytest.raises(KeyError):
        corpus.awscli_wheels((3, 9))
