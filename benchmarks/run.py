#!/usr/bin/env python3
"""safelink benchmark suite: the hot link loop and whole installs, per filesystem,
side by side with uv, pip and cp.

    python benchmarks/run.py            # full matrix (as root: loop-mounted ext4/XFS/btrfs/tmpfs)
    python benchmarks/run.py --quick    # smoke test, well under a minute
    python benchmarks/run.py --fs /mnt/data --runs 7 --only macro

Writes ``benchmarks/results/latest.{md,json}`` and one PNG per filesystem case
(``--quick``: ``benchmarks/results/raw/quick/``, which git ignores).  See
``benchmarks/README.md`` for what each number means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))  # loopfs.py and corpus.py: shared with the tests
sys.path.insert(0, str(HERE))

try:
    import safelink  # noqa: F401
except ImportError:  # running from a checkout without installing it
    sys.path.insert(0, str(REPO / "src"))
    os.environ["SAFELINK_BENCH_PYTHONPATH"] = str(REPO / "src")

import corpus  # noqa: E402
import loopfs  # noqa: E402
from _common import (  # noqa: E402
    FsCase,
    Place,
    find_pip,
    find_uv,
    inflate_cost,
    loadavg,
    log,
    machine_facts,
    probe_case,
    quick_corpus,
    remove,
    zlib_ng_module,
)
from _macro import Corpus, MacroConfig, MacroRunner  # noqa: E402
from _micro import MicroConfig, make_wheels, run_micro  # noqa: E402
from _report import markdown, plots  # noqa: E402

RESULTS = HERE / "results"
LOOP_SIZE_MIB = {"ext4": 4096, "xfs": 4096, "btrfs": 4096, "tmpfs": 3072}
QUICK_TMPFS_MIB = 256
CROSS_PAIR = ("ext4", "xfs")  # cache on the first, environments on the second


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="Benchmark safelink against uv, pip and cp on several filesystems.",
    )
    p.add_argument("--quick", action="store_true", help="tiny smoke run (< 1 minute)")
    p.add_argument(
        "--fs",
        action="append",
        default=[],
        metavar="PATH",
        help="also benchmark in this directory (any filesystem; repeatable)",
    )
    p.add_argument("--runs", type=int, default=None, help="timed runs per case (default 5)")
    p.add_argument(
        "--micro-runs", type=int, default=None, help="timed runs of the hot loop (default --runs)"
    )
    p.add_argument("--pip-runs", type=int, default=1, help="timed pip runs per fs (default 1)")
    p.add_argument(
        "--cold-runs", type=int, default=1, help="timed cold-cache runs per fs (default 1)"
    )
    p.add_argument("--only", choices=["micro", "macro"], default=None)
    p.add_argument(
        "--kinds",
        default=None,
        metavar="K,K",
        help=f"loop filesystems to mount (default: all of {','.join(loopfs.FS_KINDS)})",
    )
    p.add_argument(
        "--corpus",
        choices=["bench", "awscli"],
        default="bench",
        help="the wheels of the whole-install rows: the 24-wheel corpus (default) or the "
        "AWS CLI with its dependencies",
    )
    p.add_argument(
        "--no-loop", action="store_true", help="do not mount loop filesystems even as root"
    )
    p.add_argument("--no-pip", action="store_true", help="skip pip")
    p.add_argument(
        "--no-warmup-round",
        action="store_true",
        help="only warm the caches, no whole warm-up round (faster on a busy machine)",
    )
    p.add_argument("--out", type=Path, default=None, help="results directory")
    args = p.parse_args(argv)
    for name in ("runs", "micro_runs", "pip_runs", "cold_runs"):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def _new_place(label: str, parent: Path, stack: contextlib.ExitStack) -> Place:
    root = Path(tempfile.mkdtemp(prefix=".safelink-bench-", dir=parent))
    stack.callback(remove, root)
    return Place(label, root, loopfs.fs_type(root))


def setup_places(
    args: argparse.Namespace, stack: contextlib.ExitStack, scratch: Path, notes: list[str]
) -> list[FsCase]:
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    reason = None if is_root else "not root"
    if reason is None and args.no_loop:
        reason = "--no-loop"
    if reason is None:
        reason = loopfs.can_mount()
    kinds: tuple[str, ...] = ("tmpfs",) if args.quick else loopfs.FS_KINDS
    if args.kinds and not args.quick:
        kinds = tuple(k for k in args.kinds.split(",") if k)
        unknown = sorted(set(kinds) - set(loopfs.FS_KINDS))
        if unknown:
            raise SystemExit(f"run.py: error: --kinds: unknown {', '.join(unknown)}")
    places: dict[str, Place] = {}
    if reason is None:
        sizes = {k: (QUICK_TMPFS_MIB if args.quick else LOOP_SIZE_MIB[k]) for k in kinds}
        log(f"mounting loop filesystems: {', '.join(kinds)}")
        lfs = stack.enter_context(loopfs.LoopFilesystems(kinds=kinds, size_mib=sizes))
        for k in kinds:
            places[k] = _new_place(k, lfs.path(k), stack)
    else:
        notes.append(f"no loop-mounted filesystems ({reason})")
        log(f"no loop-mounted filesystems: {reason}")
    if args.quick and reason is None:
        places["workdir"] = _new_place("workdir", Path.cwd(), stack)
    elif not places:
        places["tmpdir"] = Place("tmpdir", scratch / "tmpdir", loopfs.fs_type(scratch))
        places["tmpdir"].root.mkdir()
    for i, d in enumerate(args.fs):
        path = Path(d).expanduser().resolve()
        if not path.is_dir():
            raise SystemExit(f"run.py: error: --fs {d}: not a directory")
        p = _new_place(f"dir{i + 1}", path, stack)
        p.label = f"{p.fstype} at {path}"
        places[p.label] = p

    # --quick: the working directory only serves as the cross case's cache side (its
    # disk may be shared and slow to flush; the smoke run must stay quick)
    cases = [
        FsCase(label, p, p)
        for label, p in places.items()
        if not (args.quick and label == "workdir")
    ]
    # One cross-filesystem case: the cache on one filesystem, environments on another.
    a, b = CROSS_PAIR
    if a in places and b in places:
        pair = (places[a], places[b])
    elif "workdir" in places and "tmpfs" in places:
        pair = (places["workdir"], places["tmpfs"])
    else:
        distinct = list({os.stat(p.root).st_dev: p for p in places.values()}.values())
        pair = (distinct[0], distinct[1]) if len(distinct) > 1 else None
    if pair is not None:
        cases.append(FsCase(f"{pair[0].label}→{pair[1].label}", pair[0], pair[1]))
    for c in cases:
        probe_case(c)
    return cases


def macro_corpus(args: argparse.Namespace, scratch: Path) -> Corpus:
    if args.quick:
        d = scratch / "quick-wheels"
        d.mkdir()
        wheels, tiny = quick_corpus(d)
        return Corpus("generated (quick)", wheels, tiny, "quicktiny, 1 file", members=310)
    pinned, label = (
        (corpus.awscli_wheels(), "corpus.awscli_wheels() (awscli 1.36.40 and its dependencies)")
        if args.corpus == "awscli"
        else (corpus.BENCH_WHEELS, "corpus.BENCH_WHEELS (real PyPI wheels)")
    )
    log(f"fetching {len(pinned)} pinned wheels (cached in {corpus.wheel_cache_dir()})")
    paths = corpus.fetch(pinned)
    six = corpus.by_name("six")
    tiny = next(p for p in paths if p.name == six.filename)
    return Corpus(
        label,
        paths,
        tiny,
        f"{six.name} {six.version}",
        members=sum(w.n_files for w in pinned),
        download_bytes=sum(w.size for w in pinned),
    )


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwind: unmount and delete everything


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    t_start = time.perf_counter()
    quick = args.quick
    runs = args.runs or (1 if quick else 5)
    micro_runs = args.micro_runs or runs
    outdir: Path = args.out or (RESULTS / "raw" / "quick" if quick else RESULTS)
    uv = find_uv()
    pip = None if (quick or args.no_pip) else find_pip()
    notes: list[str] = []
    # Time safelink as users run it: installed with its bytecode. Without .pyc files
    # (an editable install under PYTHONDONTWRITEBYTECODE) every run would compile
    # the package first, tens of milliseconds that no installed copy pays.
    import compileall

    import safelink

    compileall.compile_dir(os.path.dirname(safelink.__file__), quiet=1)
    if uv is None:
        notes.append("uv is not on PATH: uv cases skipped")
        log("uv not found on PATH: skipping uv")
    if quick:
        notes.append(
            "--quick: generated corpus, 1 run, pip skipped; a smoke test, not a measurement"
        )
    elif pip is None and not args.no_pip:
        notes.append("pip not found: pip cases skipped")

    res: dict[str, Any] = {
        "machine": machine_facts(uv, pip),
        "config": {
            "quick": quick,
            "runs": runs,
            "micro_runs": micro_runs,
            "warmup": not (quick or args.no_warmup_round),
            "pip_runs": 0 if pip is None else args.pip_runs,
            "cold_runs": args.cold_runs,
            "only": args.only,
            "argv": sys.argv[1:] if argv is None else argv,
        },
        "loadavg_start": loadavg(),
        "filesystems": {},
        "micro": {},
        "macro": {},
        "notes": notes,
    }
    log(
        f"safelink {res['machine']['safelink']} · {res['machine']['uv'] or 'no uv'} · "
        f"load {res['loadavg_start']}"
    )
    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        scratch = Path(tempfile.mkdtemp(prefix="safelink-bench-"))
        stack.callback(remove, scratch)
        cases = setup_places(args, stack, scratch, notes)
        for c in cases:
            res["filesystems"][c.name] = c.describe()
            log(
                f"case {c.name}: store {c.store.root} ({c.store.fstype}), env {c.env.root} "
                f"({c.env.fstype}); hardlink {'ok' if c.can_link else c.link_error}; "
                f"clone {'ok' if c.can_clone else c.clone_error}"
            )

        if args.only in (None, "micro"):
            mcfg = (
                MicroConfig(n_small=200, n_big=1, big_size=2 << 20, runs=1, warmup=False)
                if quick
                else MicroConfig(runs=micro_runs)
            )
            log(
                f"micro: generating {mcfg.n_small} small files and {mcfg.n_big} x "
                f"{mcfg.big_size >> 20} MB"
            )
            wheels = make_wheels(scratch, mcfg)
            for c in cases:
                res["micro"][c.name] = {**run_micro(c, wheels, scratch, mcfg), "load": loadavg()}
                remove(c.store.sub("micro-cache"))

        if args.only in (None, "macro"):
            corp = macro_corpus(args, scratch)
            res["corpus"] = corp.describe()
            log("inflating every member once with zlib and zlib-ng (cold installs)")
            res["inflate"] = inflate_cost(corp.wheels, rounds=1 if quick else 3)
            cfg = MacroConfig(
                runs=runs,
                full_warmup=not (quick or args.no_warmup_round),
                pip_runs=args.pip_runs,
                cold_runs=args.cold_runs,
                with_pip=pip is not None,
                with_cold=True,
                uv=uv,
                pip=pip,
                zlib_ng=zlib_ng_module() is not None,
            )
            for c in cases:
                log(f"macro {c.name}: start (load {loadavg()})")
                out = MacroRunner(c, corp, cfg).run()
                out["load"] = loadavg()
                res["macro"][c.name] = out
                for group in ("cases", "cold", "tiny"):
                    for key, r in out.get(group, {}).items():
                        if r.get("error"):
                            failures.append(f"{c.name}: {key}: {r['error']}")
        res["loadavg_end"] = loadavg()
        res["elapsed_s"] = time.perf_counter() - t_start

        outdir.mkdir(parents=True, exist_ok=True)
        (outdir / "latest.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
        md = markdown(res)
        (outdir / "latest.md").write_text(md + "\n")
        pngs = plots(res, outdir)
        log("cleaning up (unmounting, deleting work directories)")
    print()
    print(md)
    print()
    print(f"results: {outdir / 'latest.md'}, {outdir / 'latest.json'}")
    if pngs:
        print("plots: " + ", ".join(str(p) for p in pngs))
    else:
        print("plots: none (matplotlib is not installed, or nothing to plot)")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    if failures:
        print(f"\n{len(failures)} case(s) failed:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
