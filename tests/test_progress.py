"""Progress a user sees on a terminal, output when piped, and the per-interpreter tag cache."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

import safelink
from conftest import make_venv, run_cli, site_packages
from wheelmaker import make_wheel


def some_wheels(d: Path, n: int = 6, files: int = 300) -> list[Path]:
    return [
        make_wheel(
            d, f"pkg{i}", "1.0", {f"pkg{i}/m{j}.py": f"N = {j}\n".encode() for j in range(files)}
        )
        for i in range(n)
    ]


def run_in_pty(args: list[str], env: dict[str, str]) -> tuple[int, list[tuple[float, bytes]]]:
    """Run safelink with stdout and stderr on a pseudo-terminal; (status, timed chunks)."""
    pty = pytest.importorskip("pty", reason="pseudo-terminals are POSIX-only")
    parent, child = pty.openpty()
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "safelink", *args],
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        env={**os.environ, **env},
    )
    os.close(child)
    chunks: list[tuple[float, bytes]] = []
    while True:
        ready, _, _ = select.select([parent], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(parent, 65536)
        except OSError:  # EIO: the child side closed
            break
        if not data:
            break
        chunks.append((time.monotonic() - start, data))
    os.close(parent)
    return proc.wait(timeout=60), chunks


def test_terminal_shows_progress_then_one_line_per_distribution(
    tmp_path: Path, cache_dir: Path
) -> None:
    wheels = some_wheels(tmp_path)
    venv = make_venv(tmp_path / "venv")
    code, chunks = run_in_pty(
        ["install", "--python", str(venv), *map(str, wheels)], {"SAFELINK_THREADS": "2"}
    )
    assert code == 0
    screen = b"".join(c for _, c in chunks).decode()
    frames = [f for f in re.split(r"\r\x1b\[2K", screen) if f]
    # the status line: first the wheels (made ready in the cache), then the files
    assert frames[0] == "Preparing packages... (0/6)"
    linking = [f for f in frames if f.startswith("Linking files...")]
    assert linking[0] == "Linking files... (0/1,812)"
    # each wheel is named while it is unpacked, by whichever of the two processes does it
    named = {
        m[1] for f in frames if (m := re.fullmatch(r"Preparing packages\.\.\. \(\d/6\) (\S+)", f))
    }
    assert named == {w.name for w in wheels}
    # then the status line is cleared, and the result is printed
    final = frames[-1].replace("\r\n", "\n").splitlines()
    assert final[0].startswith(f"Installed 6 wheels into {venv}, 1,842 files in ")
    assert final[1:] == [f" + pkg{i}==1.0" for i in range(6)]


def test_terminal_progress_for_a_replacement_and_quiet(tmp_path: Path, cache_dir: Path) -> None:
    one = make_wheel(tmp_path, "swap", "1.0", {"swap.py": b"V = 1\n"})
    two = make_wheel(tmp_path, "swap", "2.0", {"swap.py": b"V = 2\n"})
    venv = make_venv(tmp_path / "venv")
    run_cli("install", "--python", str(venv), str(one), check=True)
    code, chunks = run_in_pty(["install", "--python", str(venv), str(two)], {})
    screen = b"".join(c for _, c in chunks).decode().replace("\r\n", "\n")
    assert code == 0 and screen.endswith(" ~ swap 1.0 -> 2.0\n")
    code, chunks = run_in_pty(["install", "-q", "--python", str(venv), str(one)], {})
    assert (code, chunks) == (0, [])


def test_piped_output_is_only_the_summary(tmp_path: Path, cache_dir: Path) -> None:
    wheels = some_wheels(tmp_path, n=2, files=10)
    venv = make_venv(tmp_path / "venv")
    proc = run_cli("install", "--python", str(venv), *map(str, wheels))
    assert proc.returncode == 0 and proc.stderr == ""
    [line] = proc.stdout.splitlines()
    assert re.fullmatch(
        rf"Installed 2 wheels into {re.escape(str(venv))}, 34 files in \d+\.\d\d s "
        r"\(\w+ 24, written 10\)",
        line,
    )


def test_api_progress_counts_files_as_they_are_linked(tmp_path: Path, cache_dir: Path) -> None:
    """The link stage reports done/total as it goes, including the forked worker's part."""
    wheels = some_wheels(tmp_path, n=2, files=3000)
    venv = make_venv(tmp_path / "venv")
    events: list[safelink.Progress] = []
    progress: safelink.ProgressCallback = events.append
    safelink.install(wheels, venv, progress=progress, threads=2)
    link = [(e.done, e.total) for e in events if e.stage == "link"]
    assert link[0] == (0, 6004) and link[-1] == (6004, 6004)
    assert len(link) > 5 and link == sorted(link)
    assert (site_packages(venv) / "pkg1" / "m2999.py").exists()


# -- the remembered tag lists --------------------------------------------------------


def test_a_tag_list_remembered_on_another_host_is_not_used(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache shared by two machines: same Python, another C library."""
    from safelink import _tags

    venv = make_venv(tmp_path / "venv")
    target = safelink.resolve_target(venv)
    here = _tags.supported(target, str(cache_dir / "v1"))
    remembered = list((cache_dir / "v1").rglob("tags/*.txt"))
    assert len(remembered) == 1
    real_confstr = os.confstr

    def other_libc(name: str | int) -> str | None:
        return "glibc 2.5" if name == "CS_GNU_LIBC_VERSION" else real_confstr(name)

    monkeypatch.setattr(os, "confstr", other_libc)
    remembered[0].write_text("py3-none-forged_for_this_host\n")  # the other host's list
    there = _tags.supported(target, str(cache_dir / "v1"))
    assert there != {"py3-none-forged_for_this_host"}
    assert "py3-none-any" in there and "py3-none-any" in here
    assert len(list((cache_dir / "v1").rglob("tags/*.txt"))) == 2


def test_install_ignores_a_tag_list_another_host_left(tmp_path: Path, cache_dir: Path) -> None:
    """What another machine with the same Python version would have remembered, by name."""
    whl = make_wheel(tmp_path, "anyhost", "1.0", {"anyhost.py": b""})
    venv = make_venv(tmp_path / "venv")
    tags = cache_dir / "v1" / "tags"
    tags.mkdir(parents=True)
    machine = os.uname().machine
    v = f"{sys.version_info[0]}.{sys.version_info[1]}"
    (tags / f"{sys.implementation.name}-{v}-{sys.platform}-{machine}.txt").write_text(
        "cp27-none-forged\n"
    )
    proc = run_cli("install", "--python", str(venv), str(whl))
    assert proc.returncode == 0, proc.stderr
