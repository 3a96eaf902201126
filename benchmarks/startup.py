#!/usr/bin/env python3
"""Start-up cost of ``python -m safelink install``: what it imports, and how long that takes.

    python benchmarks/startup.py [--runs 7] [--wheel W] [--json OUT]

Installs one tiny wheel (``six`` from the pinned corpus, or ``--wheel``) into a fresh
venv with ``-X importtime``, *runs* times (the cache warm, the venv at the same path),
and prints, per top-level import, the smallest cumulative microseconds seen over the
runs (the least disturbed by other load), the modules imported, and the whole run's
wall time and CPU time (user+sys, which other load on the machine disturbs less).
Compare two checkouts by running it from each one's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
WATCH = (
    "dataclasses", "inspect", "typing", "hashlib", "json", "re", "threading", "argparse", "tempfile"
)


def parse(stderr: str) -> tuple[dict[str, int], list[str]]:
    """Cumulative µs of each top-level import (indent 1) and every module imported."""
    top: dict[str, int] = {}
    names: list[str] = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        names.append(m.group(4))
        if len(m.group(3)) == 1:
            top[m.group(4)] = top.get(m.group(4), 0) + int(m.group(2))
    return top, names


def _instructions(argv: list[str], env: dict[str, str]) -> int:
    """Instructions executed by *argv* (valgrind's cachegrind, no cache simulation)."""
    proc = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         *argv],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    m = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if not m:
        raise SystemExit(f"startup.py: no instruction count from valgrind: {proc.stderr[-200:]}")
    return int(m.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/startup.py", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--wheel", type=Path, default=None, help="default: six from the corpus")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    p.add_argument("--top", type=int, default=25, help="rows in the table")
    p.add_argument(
        "--instructions",
        action="store_true",
        help="also count the instructions of one run with valgrind (independent of load)",
    )
    args = p.parse_args(argv)
    wheel = args.wheel
    if wheel is None:
        import corpus

        wheel = corpus.fetch([corpus.by_name("six")])[0]
    # as installed: with bytecode (an editable checkout under PYTHONDONTWRITEBYTECODE
    # would compile every module on every run)
    import compileall

    import safelink

    compileall.compile_dir(os.path.dirname(safelink.__file__), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="safelink-startup-"))
    best: dict[str, int] = {}
    instructions: int | None = None
    walls: list[float] = []
    cpus: list[float] = []  # user+sys CPU seconds: less disturbed by other load than wall
    modules: list[str] = []
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    try:
        venv, cache = work / "venv", work / "cache"
        argv_ = [sys.executable, "-X", "importtime", "-m", "safelink", "install", "--python",
                 str(venv), "--cache-dir", str(cache), "--quiet", str(wheel)]  # fmt: skip
        for i in range(args.runs + 1):  # the first run fills the cache: not counted
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run(argv_, capture_output=True, text=True, env=env, check=False)
            wall = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            if proc.returncode != 0:
                print(proc.stderr.splitlines()[-1:], file=sys.stderr)
                return 1
            if i == 0:
                if args.instructions:
                    shutil.rmtree(venv, ignore_errors=True)
                    subprocess.run(
                        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True
                    )
                    instructions = _instructions(argv_[:1] + argv_[3:], env)
                continue
            walls.append(wall)
            cpus.append(cpu)
            top, modules = parse(proc.stderr)
            for k, v in top.items():
                best[k] = min(best.get(k, v), v)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bare: list[float] = []  # the interpreter alone, for scale
    for _ in range(args.runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        bare.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    total = sum(best.values())
    print(f"python -X importtime -m safelink install (one tiny wheel), best of {args.runs} runs")
    print(f"imports: {total / 1000:.1f} ms in all, {len(modules)} modules; "
          f"whole run: min {min(walls) * 1000:.1f} ms, median "
          f"{sorted(walls)[len(walls) // 2] * 1000:.1f} ms; CPU (user+sys) min "
          f"{min(cpus) * 1000:.1f} ms, median "
          f"{sorted(cpus)[len(cpus) // 2] * 1000:.1f} ms")  # fmt: skip
    print(f"for scale: python -c pass, CPU (user+sys) min {min(bare) * 1000:.1f} ms")
    if instructions is not None:
        base = _instructions([sys.executable, "-c", "pass"], env)
        print(
            f"instructions (valgrind): {instructions / 1e6:.1f} M for the install, "
            f"{base / 1e6:.1f} M for python -c pass"
        )
    print("watched: " + ", ".join(f"{w} {'yes' if w in modules else 'no'}" for w in WATCH))
    print(f"{'top-level import':32s} {'cumulative ms':>14s}")
    for name, us in sorted(best.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{name:32s} {us / 1000:14.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"imports_us": best, "modules": modules, "wall_s": walls, "cpu_s": cpus}, indent=1
            ) + "\n"
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
