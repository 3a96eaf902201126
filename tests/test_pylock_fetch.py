"""Wheels a lock names by URL: downloaded from a server the test starts on 127.0.0.1.

Real pinned wheels (``tests/corpus.py``) are served whole and broken in each way a
download fails. What must hold: a download is kept only when its size and sha256 are
the lock's; every failure is one line (what, where, what to do), exit 1, with the
environment, the cache and a canary directory exactly as they were, and no temporary
file left behind. Retries cover what is transient (a 503, a connection closed early).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import corpus
from conftest import make_venv, run_cli, site_packages, tree
from index_server import IndexServer

NO_PROXY_ENV = {
    "HTTP_PROXY": "",
    "HTTPS_PROXY": "",
    "http_proxy": "",
    "https_proxy": "",
    "ALL_PROXY": "",
    "all_proxy": "",
    "SAFELINK_HTTP_RETRIES": "1",
    "SAFELINK_HTTP_TIMEOUT": "10",
}


@pytest.fixture(scope="module")
def real_wheels() -> dict[str, Path]:
    pins = [corpus.by_name(n) for n in ("six", "idna", "pyflakes")]
    try:
        paths = corpus.fetch(pins)
    except corpus.CorpusError as exc:  # pragma: no cover - no network and no cached copy
        pytest.skip(str(exc))
    return {p.name: path for p, path in zip(pins, paths, strict=True)}


@pytest.fixture
def box(tmp_path: Path, cache_dir: Path, real_wheels: dict[str, Path]) -> Iterator[dict[str, Any]]:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("keep")
    with IndexServer(real_wheels.values()) as server:
        yield {
            "server": server,
            "wheels": real_wheels,
            "proj": tmp_path,
            "venv": make_venv(tmp_path / "venv"),
            "cache": cache_dir,
            "canary": canary,
        }


def url_lock(box: dict[str, Any], *items: tuple[str, str], name: str = "pylock.toml") -> Path:
    """A lock naming each (project, URL) by its pinned version, size and sha256."""
    text = 'lock-version = "1.0"\ncreated-by = "tests"\n'
    for project, url in items:
        pin = corpus.by_name(project)
        text += (
            f'\n[[packages]]\nname = "{pin.name}"\nversion = "{pin.version}"\n'
            f'wheels = [{{ url = "{url}", size = {pin.size}, '
            f'hashes = {{ sha256 = "{pin.sha256}" }} }}]\n'
        )
    path = box["proj"] / name
    path.write_text(text)
    return path


def sync(box: dict[str, Any], lock: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return run_cli(
        "sync", str(lock), "--python", str(box["venv"]), *args, env={**NO_PROXY_ENV, **(env or {})}
    )


def snapshot(box: dict[str, Any]) -> tuple[Any, Any, Any]:
    return tree(box["venv"]), tree(box["cache"]), tree(box["canary"])


def test_download_once_then_offline_everywhere(box: dict[str, Any], tmp_path: Path) -> None:
    server: IndexServer = box["server"]
    names = ("six", "idna", "pyflakes")
    lock = url_lock(box, *((n, server.file_url(corpus.by_name(n).filename)) for n in names))
    proc = sync(box, lock)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:3] == [" + six==1.17.0", " + idna==3.10", " + pyflakes==3.2.0"]
    assert ", 3 downloaded in " in proc.stdout
    assert sorted(server.requests) == sorted(f"/files/{corpus.by_name(n).filename}" for n in names)
    for n in names:  # kept by sha256, exactly the pinned bytes
        pin = corpus.by_name(n)
        kept = box["cache"] / "v1" / "wheels" / pin.sha256 / pin.filename
        assert hashlib.sha256(kept.read_bytes()).hexdigest() == pin.sha256
    assert list((box["cache"] / "v1" / "tmp").iterdir()) == []
    # A second environment, offline: the cache has every wheel by its sha256.
    server.stop()
    other = make_venv(tmp_path / "other")
    proc = run_cli("sync", str(lock), "--python", str(other), "--offline", env=NO_PROXY_ENV)
    assert proc.returncode == 0, proc.stderr
    assert (site_packages(other) / "six.py").read_bytes() == (
        site_packages(box["venv"]) / "six.py"
    ).read_bytes()


def test_a_503_is_retried(box: dict[str, Any]) -> None:
    server: IndexServer = box["server"]
    six = corpus.by_name("six").filename
    proc = sync(box, url_lock(box, ("six", server.file_url(six, "flaky"))))
    assert proc.returncode == 0, proc.stderr
    assert server.requests == [f"/flaky/{six}", f"/flaky/{six}"]


def test_proxy_from_the_environment(box: dict[str, Any]) -> None:
    server: IndexServer = box["server"]
    six = corpus.by_name("six").filename
    url = f"http://pypi.invalid/files/{six}"
    proxy = {"HTTP_PROXY": server.url, "http_proxy": server.url}
    proc = sync(box, url_lock(box, ("six", url)), env=proxy)
    assert proc.returncode == 0, proc.stderr
    assert server.requests == [url]  # asked of the proxy, by absolute URL


def refuse(box: dict[str, Any], fault: str, message: str, *args: str) -> None:
    server: IndexServer = box["server"]
    seed = url_lock(box, ("idna", server.file_url(corpus.by_name("idna").filename)), name="s.toml")
    assert sync(box, seed).returncode == 0  # an environment and a cache with something in
    before = snapshot(box)
    six = corpus.by_name("six").filename
    lock = url_lock(box, ("idna", server.file_url(corpus.by_name("idna").filename)),
                    ("six", server.file_url(six, fault)))
    proc = sync(box, lock, *args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    url = server.file_url(six, fault)
    assert proc.stderr == "safelink: error: " + message.format(url=url, file=six) + "\n"
    assert proc.stdout == ""
    assert snapshot(box) == before  # environment, cache (no temp file either), canary


def test_hash_mismatch(box: dict[str, Any]) -> None:
    data = bytearray(box["wheels"]["six"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    got = hashlib.sha256(bytes(data)).hexdigest()
    want = corpus.by_name("six").sha256
    refuse(
        box,
        "corrupt",
        f"{{url}}: sha256 {got} does not match the lock's {want} for six==1.17.0 "
        "(the file on the index is not the one that was locked; nothing was installed)",
    )


def test_truncated_download(box: dict[str, Any]) -> None:
    refuse(
        box,
        "truncate",
        "downloading {file} from {url} failed: the connection closed after 5,525 of 11,050 bytes "
        "(tried 2 time(s); check the network or proxy settings; nothing was installed)",
    )


def test_server_gone_mid_download(box: dict[str, Any]) -> None:
    refuse(
        box,
        "gone",
        "downloading {file} from {url} failed: Connection refused "
        "(tried 2 time(s); check the network or proxy settings; nothing was installed)",
    )


def test_not_found(box: dict[str, Any]) -> None:
    refuse(
        box,
        "missing",
        "downloading {file} from {url} failed: HTTP 404 Not Found "
        "(the index no longer serves this file; lock again; nothing was installed)",
    )


def test_longer_than_the_lock_says(box: dict[str, Any]) -> None:
    refuse(
        box,
        "longer",
        "{url} sent more than the 11,050 bytes the lock says {file} has "
        "(the file on the index changed; lock again; nothing was installed)",
    )
