"""``python -m safelink``: the command line.

Errors a user can act on print one line (``safelink: error: what (what to do)``)
and exit 1; usage errors exit 2. Nothing here is imported by the library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .errors import SafelinkError


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    t = text.strip().lower().rstrip("b").rstrip("i")
    mult = units.get(t[-1:], 1)
    num = t[:-1] if t[-1:] in units else t
    try:
        return int(float(num) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None


def _target_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("target (default: the active venv, else this interpreter's env)")
    g.add_argument(
        "--python", metavar="PATH", help="a venv directory or any Python interpreter to install for"
    )
    x = g.add_mutually_exclusive_group()
    x.add_argument("--prefix", metavar="DIR", help="install under this prefix")
    x.add_argument("--target", metavar="DIR", help="install flat into DIR (like pip --target)")
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long to wait for another safelink process using the environment",
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="cache location (default: $SAFELINK_CACHE_DIR or the user cache dir)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    p.add_argument("-v", "--verbose", action="count", default=0, help="say more")
    p.add_argument("--json", action="store_true", help="print a JSON report for tools")


class _Formatter(argparse.HelpFormatter):
    """Help text as wide as ``$COLUMNS`` (default 100), without asking the terminal.

    argparse's own default imports ``shutil`` (and its compression modules) for
    every parser, which every install would pay for at start-up.
    """

    def __init__(self, prog: str) -> None:
        columns = os.environ.get("COLUMNS", "")
        super().__init__(prog, width=int(columns) - 2 if columns.isdigit() else 98)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        formatter_class=_Formatter,
        prog="safelink",
        description="Install wheels from a verified unpacked-wheel cache by linking.",
    )
    parser.add_argument("--version", action="version", version=f"safelink {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "install", formatter_class=_Formatter, help="install wheels into an environment"
    )
    p.add_argument("wheels", nargs="+", metavar="WHEEL")
    _target_options(p)
    _common(p)
    p.add_argument(
        "--link-mode",
        default=os.environ.get("SAFELINK_LINK_MODE", "auto"),
        metavar="MODE",
        help="auto (default), clone, hardlink, copy, symlink, or a plugin's name",
    )
    p.add_argument(
        "--allow-fallback",
        action="store_true",
        help="let an explicit --link-mode fall back per file when it cannot work",
    )
    p.add_argument(
        "--guard",
        choices=("off", "check", "strict"),
        default="check",
        help="protection against edits through hardlinks (default: check)",
    )
    p.add_argument("--compile", action="store_true", help="byte-compile .py files, like pip")
    p.add_argument(
        "--force",
        action="store_true",
        help="install even if the wheel's tags do not match the target",
    )
    p.add_argument("--threads", type=int, default=None, help="link threads (default: auto)")
    p.add_argument(
        "--max-unpacked-size",
        type=_size,
        default=None,
        metavar="SIZE",
        help="refuse wheels that unpack to more than SIZE (default 8G)",
    )

    p = sub.add_parser(
        "uninstall", formatter_class=_Formatter, help="remove distributions by their RECORD"
    )
    p.add_argument("names", nargs="+", metavar="NAME")
    _target_options(p)
    _common(p)

    p = sub.add_parser(
        "probe",
        formatter_class=_Formatter,
        help="show what each link mode does between the cache and DIR",
    )
    p.add_argument(
        "dir",
        nargs="?",
        default=None,
        metavar="DIR",
        help="target directory (default: the target's site-packages)",
    )
    _common(p)

    p = sub.add_parser(
        "verify",
        formatter_class=_Formatter,
        help="deep-check the cache and environments against RECORD",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="PATH",
        help="environment to check (repeatable; default: all the cache knows)",
    )
    p.add_argument(
        "--cache",
        dest="check_cache",
        action="store_true",
        help="check the cache only (no environments)",
    )
    _common(p)

    p = sub.add_parser(
        "repair",
        formatter_class=_Formatter,
        help="heal the cache; with --env, restore edited files",
    )
    p.add_argument("--env", action="append", default=[], metavar="PATH")
    p.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    _common(p)

    p = sub.add_parser("cache", formatter_class=_Formatter, help="inspect and manage the cache")
    p.add_argument("action", choices=("dir", "list", "size", "prune", "clean"))
    p.add_argument("names", nargs="*", metavar="NAME", help="for clean: only these projects")
    _common(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import _log

    def warning(message: str) -> None:
        print(f"safelink: warning: {message}", file=sys.stderr)

    previous = _log.sink
    _log.sink = (lambda _message: None) if args.quiet else warning
    try:
        return int(_dispatch(args))
    except SafelinkError as exc:
        print(f"safelink: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("safelink: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"safelink: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    finally:
        _log.sink = previous


def _out(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text)


def _dispatch(args: argparse.Namespace) -> int:
    from ._cache import Cache

    cache = Cache(args.cache_dir)
    if args.command == "install":
        return _install(args, cache)
    if args.command == "uninstall":
        from ._uninstall import uninstall

        removed = uninstall(
            args.names,
            python=args.python,
            prefix=args.prefix,
            flat_target=args.target,
            lock_timeout=args.lock_timeout,
        )
        if args.json:
            print(json.dumps([r.__dict__ for r in removed]))
        else:
            for r in removed:
                _out(args, f"Uninstalled {r.name} {r.version}")
        return 0
    if args.command == "probe":
        return _probe(args, cache)
    if args.command in ("verify", "repair"):
        from . import _verify

        return _verify.cli(args, cache)
    return _cache_command(args, cache)


def _install(args: argparse.Namespace, cache: object) -> int:
    from ._cache import Cache
    from ._install import install

    assert isinstance(cache, Cache)
    progress = _progress_display() if not (args.quiet or args.json) else None
    report = install(
        args.wheels,
        progress=progress,
        python=args.python,
        prefix=args.prefix,
        flat_target=args.target,
        cache=cache,
        link_mode=args.link_mode,
        allow_fallback=True if args.allow_fallback else None,
        guard=args.guard,
        compile_bytecode=args.compile,
        force=args.force,
        lock_timeout=args.lock_timeout,
        threads=args.threads,
        max_unpacked=args.max_unpacked_size,
    )
    progress_done = getattr(progress, "done", None)
    if progress_done:
        progress_done()
    if args.json:
        print(json.dumps(report.to_dict(), default=str))
        return 0
    from ._log import warn

    for path in report.healed:
        warn(
            "a cached file had been modified through a hardlink and was restored "
            f"before use: {path}"
        )
    if args.verbose:
        for w in report.wheels:
            _out(
                args,
                f"  {w.name} {w.version}: {w.files} files"
                f"{' (new in cache)' if w.admitted else ''}"
                f"{f', replaced {w.replaced}' if w.replaced else ''}",
            )
    _out(args, report.summary())
    return 0


def _progress_display() -> Any:
    """A one-line status on a terminal, shown only once work has taken about a second."""
    if not sys.stderr.isatty():
        return None
    import time

    start = time.monotonic()
    shown = [False]

    def show(event: Any) -> None:
        if time.monotonic() - start < 1.0:
            return
        shown[0] = True
        if event.stage == "admit":
            text = f"unpacking {event.wheel} into the cache ({event.done + 1}/{event.total})"
        elif event.stage == "link":
            text = f"linking {event.total:,} files"
        else:
            text = f"writing metadata for {event.wheel}"
        sys.stderr.write(f"\r\x1b[2K{text[:100]}")
        sys.stderr.flush()

    def done() -> None:
        if shown[0]:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()

    show.done = done  # type: ignore[attr-defined]
    return show


def _probe(args: argparse.Namespace, cache: object) -> int:
    from ._cache import Cache
    from ._environment import current_target
    from ._layout import tmp_dir
    from .strategies.auto import choose
    from .strategies.probe import pair_key, probe

    assert isinstance(cache, Cache)
    directory = os.path.abspath(args.dir) if args.dir else current_target().purelib
    os.makedirs(cache.root, exist_ok=True)
    result = probe(cache.root, directory, refresh=True)
    pick = choose(result)
    if args.json:
        print(
            json.dumps(
                {
                    "cache": cache.base,
                    "target": directory,
                    "modes": result.modes,
                    "same_filesystem": result.same_filesystem,
                    "auto": pick,
                    "key": pair_key(tmp_dir(cache.root), directory),
                }
            )
        )
        return 0
    print(f"cache:  {cache.base}")
    print(f"target: {directory} ({'same' if result.same_filesystem else 'different'} filesystem)")
    for mode, err in result.modes.items():
        print(f"  {mode:9} {'works' if err is None else 'fails: ' + err}")
    why = {
        "clone": "isolated copy-on-write clones",
        "hardlink": "guarded hardlinks (no clone support here)",
        "copy": "copies (no clone, no hardlink between these two)",
    }[pick]
    print(f"auto picks: {pick} — {why}")
    return 0


# -- the cache commands (printing only; the data comes from _cachecmd) ----------------
def _cache_command(args: argparse.Namespace, cache: object) -> int:
    from . import _cachecmd
    from ._cache import Cache

    assert isinstance(cache, Cache)
    action = args.action
    if args.names and action != "clean":
        raise SafelinkError(
            f"'cache {action}' takes no names", "only 'cache clean' takes project names"
        )
    if action == "dir":
        data = _cachecmd.cache_dir(cache)
        print(json.dumps(data) if args.json else data["dir"])
        return 0
    if action == "list":
        data = _cachecmd.list_entries(cache)
        if args.json:
            print(json.dumps(data))
            return 0
        for r in data["entries"]:
            if r["corrupt"]:
                print(f"? (corrupt entry)  {r['sha256'][:12]}")
            else:
                print(
                    f"{r['name']} {r['version']}  {r['files']} files  {r['sha256'][:12]}  "
                    f"{r['filename']}"
                )
        return 0
    if action == "size":
        data = _cachecmd.size(cache)
        if args.json:
            print(json.dumps(data))
        else:
            mib, all_mib = data["bytes"] / 1024**2, data["total_bytes"] / 1024**2
            print(
                f"{data['entries']} entries, {data['files']:,} files, {mib:,.1f} MiB in "
                f"{cache.base} ({all_mib:,.1f} MiB with everything the cache remembers)"
            )
        return 0
    if action == "prune":
        data = _cachecmd.prune(cache)
        if args.json:
            print(json.dumps(data))
        elif not args.quiet:
            for filename in data["removed"]:
                print(f"removed {filename}")
            print(
                f"pruned {len(data['removed'])} unused entries and "
                f"{data['temp_dirs']} stale temp dirs"
            )
        return 0
    data = _cachecmd.clean(cache, list(args.names))
    if args.json:
        print(json.dumps(data))
    elif not args.quiet:
        print(f"removed {len(data['removed'])} entries from {cache.base}")
    return 0
