"""A test matrix the way nox and tox build one: N fresh environments, same wheels.

For each way of installing, this creates N bare virtual environments and
times only the install into each (creating the venv is the same for all):

* ``safelink.install``     one call per environment, one shared cache
* ``LinkingDestination``   PyPA installer driven as usual, safelink's destination
* ``installer``            PyPA installer with its own SchemeDictionaryDestination
* ``uv``                   ``uv pip install --offline --no-deps`` (a subprocess per
                           environment, its own warm cache), if uv is on PATH
* ``pip``                  ``pip install --no-deps --no-index --no-compile``

The wheels are unpacked into the caches once, before the matrix (that time is
printed on its own): a test matrix runs again and again, and only its first
run ever pays for unpacking. The methods take turns environment by
environment, so a busy moment on the machine does not hit one method only.

Usage::

    python examples/test_matrix.py [--envs N] [--no-uv] [--no-pip] [--cache-dir DIR] WHEEL...

It prints a table (seconds per environment, and the total) and one line per
other method, e.g. ``safelink.install vs pip: 0.598 -> 0.008 s per environment,
0.590 s saved (72.7x)``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable, Sequence
from pathlib import Path

import installer
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
from installer.utils import get_launcher_kind

import safelink
from safelink.destination import LinkingDestination

Installer = Callable[[Path], None]


def make_env(path: Path) -> Path:
    """A bare venv, as nox/tox create one before installing into it."""
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(path)
    return path


def scheme_dict(env: Path) -> dict[str, str]:
    """The venv's install scheme, as a tool that drives installer would compute it."""
    t = safelink.resolve_target(env)
    return {
        "purelib": t.purelib,
        "platlib": t.platlib,
        "scripts": t.scripts,
        "headers": t.headers,
        "data": t.data,
    }


def find_uv() -> str | None:
    """uv next to this interpreter (a venv with uv installed), else on PATH."""
    here = Path(sys.executable).parent / "uv"
    return str(here) if here.is_file() and os.access(here, os.X_OK) else shutil.which("uv")


def uv_install(uv: str, uv_cache: Path, wheels: Sequence[Path], env: Path) -> None:
    python = str(safelink.resolve_target(env).python)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--offline", "--no-deps", "--python", python,
         *map(str, wheels)],
        check=True,
        env={**os.environ, "UV_CACHE_DIR": str(uv_cache), "UV_NO_CONFIG": "1"},
    )


def methods(
    wheels: Sequence[Path],
    cache: safelink.Cache,
    pip: bool,
    uv: tuple[str, Path] | None,
) -> dict[str, Installer]:
    def with_safelink(env: Path) -> None:
        safelink.install(wheels, env, cache=cache)

    def with_linking_destination(env: Path) -> None:
        for whl in wheels:
            dest = LinkingDestination(whl, env, cache=cache)
            with WheelFile.open(whl) as source:
                installer.install(source, dest, {"INSTALLER": b"test-matrix\n"})

    def with_installer(env: Path) -> None:
        python = str(safelink.resolve_target(env).python)
        for whl in wheels:
            dest = SchemeDictionaryDestination(scheme_dict(env), python, get_launcher_kind())
            with WheelFile.open(whl) as source:
                installer.install(source, dest, {"INSTALLER": b"test-matrix\n"})

    def with_pip(env: Path) -> None:
        python = str(safelink.resolve_target(env).python)
        subprocess.run(
            [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
             "--no-index", "--no-compile", "--disable-pip-version-check", *map(str, wheels)],
            check=True,
        )

    out: dict[str, Installer] = {
        "safelink.install": with_safelink,
        "LinkingDestination": with_linking_destination,
        "installer": with_installer,
    }
    if uv is not None:
        uv_exe, uv_cache = uv
        out["uv"] = lambda env: uv_install(uv_exe, uv_cache, wheels, env)
    if pip:
        out["pip"] = with_pip
    return out


def run(
    wheels: Sequence[Path],
    n: int,
    workdir: Path,
    pip: bool,
    cache_dir: Path | None,
    uv_exe: str | None = None,
) -> str:
    cache = safelink.Cache(cache_dir or workdir / "cache")
    t0 = time.perf_counter()
    for whl in wheels:  # once per wheel, ever: later runs of the matrix find it cached
        cache.admit(whl)
    unpack = time.perf_counter() - t0
    uv: tuple[str, Path] | None = None
    uv_unpack = 0.0
    if uv_exe is not None:  # uv's cache is filled the same way: one install, untimed
        uv = (uv_exe, workdir / "uv-cache")
        t0 = time.perf_counter()
        uv_install(uv_exe, uv[1], wheels, make_env(workdir / "uv-warm-up"))
        uv_unpack = time.perf_counter() - t0
    how = methods(wheels, cache, pip, uv)
    times: dict[str, list[float]] = {name: [] for name in how}
    for i in range(n):  # round-robin, so a busy moment on the machine hits every method
        for name, install in how.items():
            env = make_env(workdir / f"{name.replace('.', '-')}-{i + 1}")
            t0 = time.perf_counter()
            install(env)
            times[name].append(time.perf_counter() - t0)
    probe = safelink.install(wheels, make_env(workdir / "mode-check"), cache=cache)

    names = ", ".join("-".join(w.name.split("-")[:2]) for w in wheels)
    lines = [
        f"test matrix: {n} environments x {len(wheels)} wheels ({names}), "
        f"{probe.files:,} files per environment",
        f"link mode: {probe.link_mode} (cache {cache.base})",
        f"unpacking the wheels into the cache, once: {unpack:.3f} s"
        + (f" (uv: {uv_unpack:.3f} s)" if uv is not None else ""),
        "seconds per environment:",
        f"{'method':<20}" + "".join(f"{f'env {i + 1}':>9}" for i in range(n)) + f"{'total':>9}",
    ]
    for name, row in times.items():
        lines.append(f"{name:<20}" + "".join(f"{t:9.3f}" for t in row) + f"{sum(row):9.3f}")
    ours = sum(times["safelink.install"]) / n
    for name, row in times.items():
        if name == "safelink.install":
            continue
        theirs = sum(row) / n
        saved = theirs - ours
        lines.append(
            f"safelink.install vs {name}: {theirs:.3f} -> {ours:.3f} s per environment, "
            f"{abs(saved):.3f} s {'saved' if saved >= 0 else 'lost'} ({theirs / ours:.1f}x)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("wheels", nargs="+", type=Path, metavar="WHEEL")
    parser.add_argument("--envs", "-n", type=int, default=5, help="environments (default 5)")
    parser.add_argument("--no-pip", action="store_true", help="leave pip out of the comparison")
    parser.add_argument("--no-uv", action="store_true", help="leave uv out of the comparison")
    parser.add_argument("--cache-dir", type=Path, help="cache to use (default: a fresh one)")
    parser.add_argument("--workdir", type=Path, help="where to create the environments")
    args = parser.parse_args(argv)
    if args.envs < 1:
        parser.error("--envs must be at least 1")
    wheels = [w.resolve() for w in args.wheels]
    uv = None if args.no_uv else find_uv()
    if uv is None and not args.no_uv:
        print("test_matrix: uv is not on PATH: leaving it out", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="test-matrix-", dir=args.workdir))
    try:
        print(run(wheels, args.envs, workdir, not args.no_pip, args.cache_dir, uv))
    except safelink.SafelinkError as exc:
        print(f"test_matrix: error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
