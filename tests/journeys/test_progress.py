"""What a user sees: progress on a terminal (a pseudo-terminal here), quiet when piped.

On a terminal, something is visible within 0.2 s of start and while a cold wheel is
unpacked; at the end one ``+ name==version`` line per distribution on stdout (like uv);
``-q`` hides everything; piped, nothing but the summary.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from conftest import assert_clean_output, make_venv, run_cli

from .journey import Journey, lines

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_on_terminal(args: list[str], env: dict[str, str]) -> tuple[float | None, str, int]:
    """Run ``python -m safelink ARGS`` with stdout and stderr on a pseudo-terminal.

    Returns (seconds until the first visible byte, everything shown, exit code).
    """
    main, secondary = pty.openpty()
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "safelink", *args],
        stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary,
        env={**os.environ, **env}, close_fds=True,
    )  # fmt: skip
    os.close(secondary)
    first: float | None = None
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 30)
        if not ready:
            proc.kill()
            raise AssertionError("no output for 30 s")
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not data:
            break
        if first is None and data.strip():
            first = time.monotonic() - start
        chunks.append(data)
    os.close(main)
    return first, b"".join(chunks).decode("utf-8", "replace"), proc.wait(timeout=60)


def _screen_lines(shown: str) -> list[str]:
    """The lines left on the screen: carriage returns overwrite, escapes are dropped."""
    out = []
    for line in _ANSI.sub("", shown).split("\n"):
        out.append(line.split("\r")[-1].strip() if line.rstrip("\r") else "")
    return [ln for ln in out if ln]


def test_piped_output_is_the_summary_only(tmp_path: Path, wheels: dict[str, Path]) -> None:
    env = make_venv(tmp_path / "venv")
    j = Journey(env=env, cache=tmp_path / "cache", canary=tmp_path / "canary")
    out = j.run("install", "--python", env, wheels["six"], wheels["idna"])
    assert out.stderr == ""
    [summary] = lines(out.stdout)
    assert summary.startswith("Installed 2 wheels, "), out.stdout
    out = j.run("install", "-q", "--python", env, wheels["pyflakes"])
    assert out.stdout == out.stderr == ""
    out = run_cli("uninstall", "--python", str(env), "six", "idna", "pyflakes")
    assert_clean_output(out)
