"""A user's session with safelink: commands run one after another, checked after each.

After every command, whatever its outcome: exit code as expected, no traceback and no
raw control character in its output, no temp files left in the environment or the
cache, and a canary directory outside both unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import assert_clean_output, leftover_temp_files, run_cli, tree


@dataclass
class Journey:
    env: Path
    """The environment the journey works on (checked for leftover temp files)."""
    cache: Path
    canary: Path
    environ: dict[str, str | None] = field(default_factory=dict)
    """Added to (``None``: removed from) the environment of every command."""
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.canary.mkdir(parents=True, exist_ok=True)
        (self.canary / "notes.txt").write_text("the user's own file\n")
        (self.canary / "sub").mkdir(exist_ok=True)
        (self.canary / "sub" / "data.bin").write_bytes(os.urandom(64))
        self._canary = tree(self.canary)
        self.environ.setdefault("SAFELINK_CACHE_DIR", str(self.cache))

    def run(
        self,
        *args: str | os.PathLike[str],
        rc: int = 0,
        env: dict[str, str | None] | None = None,
        cwd: Path | None = None,
        python: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = [os.fspath(a) for a in args]
        proc = run_cli(*argv, env={**self.environ, **(env or {})}, cwd=cwd, python=python)
        shown = f"$ safelink {' '.join(argv)}\n{proc.stdout}{proc.stderr}[exit {proc.returncode}]"
        self.log.append(shown)
        assert proc.returncode == rc, f"expected exit {rc}:\n{shown}"
        assert_clean_output(proc)
        assert leftover_temp_files(self.env, self.cache) == [], shown
        assert tree(self.canary) == self._canary, shown
        return proc

    def json(self, *args: str | os.PathLike[str], rc: int = 0, **kw: Any) -> Any:
        """Run with ``--json``: stdout (or stderr, for an error) is one JSON document
        carrying a ``schema`` version."""
        proc = self.run(*args, "--json", rc=rc, **kw)
        text = proc.stdout if rc == 0 else proc.stderr
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise AssertionError(f"not JSON: {text!r}\n{self.log[-1]}") from exc
        assert isinstance(doc, dict) and "schema" in doc, f"no schema: {text!r}"
        return doc


def lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]
