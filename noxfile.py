"""Sessions: ``nox`` runs lint, typecheck, the tests on every CPython 3.10-3.13 found,
and a quick benchmark smoke run. ``nox -s bench`` runs the full benchmark matrix."""

from __future__ import annotations

import glob
import os
import shutil

import nox

# pyenv keeps each CPython under ~/.pyenv/versions; put their bin dirs on PATH so
# nox finds python3.10 ... python3.13 without a global pyenv setting.
_pyenv = os.path.join(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv")), "versions")
for _bin in sorted(glob.glob(os.path.join(_pyenv, "3.1[0-3]*", "bin")), reverse=True):
    os.environ["PATH"] = _bin + os.pathsep + os.environ["PATH"]

PYTHONS = [v for v in ("3.10", "3.11", "3.12", "3.13") if shutil.which(f"python{v}")]

nox.options.sessions = ["lint", "typecheck", "tests", "tests_no_posix", "bench_quick", "docs"]
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("mypy", "-e", ".")
    session.run("mypy")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    # Two workers (pytest-xdist) on the 2-core CI machine: the suite is CPU-bound and every
    # test makes its own directories and loop mounts, so it runs in about half the time.
    workers = [] if any(a.startswith("-n") for a in session.posargs) else ["-n", "auto"]
    session.run("pytest", *workers, *session.posargs, env={"PYTHONDONTWRITEBYTECODE": "1"})


NO_POSIX_TESTS = [
    "tests/test_concurrency.py",
    "tests/test_translate.py",
    "tests/test_platforms.py",
    "tests/test_embedding.py",
    "tests/test_link_modes.py",
]
"""Locks, workers, linking and error paths: what changes where there is no fork or fcntl."""


@nox.session
def tests_no_posix(session: nox.Session) -> None:
    """The Windows code paths, here: os.fork, fcntl and SIGKILL taken away (tests/nonposix/),
    so links and admission use threads and environments are locked through a lock file.
    Clone needs FICLONE (an fcntl ioctl), so the clone rows are left to the real runners."""
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "-k",
        "not clone and not probe_leaves_nothing_behind",
        *NO_POSIX_TESTS,
        *session.posargs,
        env={"PYTHONDONTWRITEBYTECODE": "1", "SAFELINK_TEST_NO_POSIX": "1"},
    )


@nox.session
def bench_quick(session: nox.Session) -> None:
    """A smoke run of the benchmark suite, so it cannot rot (no timing thresholds)."""
    session.install("-e", ".", "uv")
    session.run("python", "benchmarks/run.py", "--quick", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The full filesystem matrix; writes benchmarks/results/ (needs root for loop mounts)."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation into site/; any mkdocs or mkdocstrings warning fails it."""
    session.install("-e", ".[docs]")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs,
        env={"NO_MKDOCS_2_WARNING": "1"},
    )
