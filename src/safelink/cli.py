"""``python -m safelink``: the command line.

Errors a user can act on print one line (``safelink: error: what (what to do)``)
and exit 1; usage errors exit 2. Nothing here is imported by the library.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from . import __version__
from ._argv import default_link_mode, install_args, parse_size
from .errors import SafelinkError

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None


def _target_options(p: argparse.ArgumentParser, lock: bool = True) -> None:
    g = p.add_argument_group(
        "target (default: the active VIRTUAL_ENV, else a .venv here or in a parent directory)"
    )
    g.add_argument(
        "--python", metavar="PATH", help="a venv directory or any Python interpreter to install for"
    )
    x = g.add_mutually_exclusive_group()
    x.add_argument("--prefix", metavar="DIR", help="install under this prefix")
    x.add_argument("--target", metavar="DIR", help="install flat into DIR (like pip --target)")
    x.add_argument(
        "--system",
        action="store_true",
        help="use the python3 on PATH even though it is not a virtual environment",
    )
    g.add_argument(
        "--break-system-packages",
        action="store_true",
        help="allow an interpreter marked EXTERNALLY-MANAGED (PEP 668)",
    )
    if not lock:  # probe locks no environment
        return
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long to wait for another safelink process using the environment",
    )


def _link_options(p: argparse.ArgumentParser) -> None:
    """How files are placed: shared by ``install`` and ``sync``."""
    p.add_argument(
        "--link-mode",
        default=default_link_mode(),
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


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="cache location (default: $SAFELINK_CACHE_DIR or the user cache dir)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    p.add_argument("-v", "--verbose", action="count", default=0, help="say more")
    p.add_argument("--json", action="store_true", help="print a JSON report for tools")


def _formatter(prog: str) -> argparse.HelpFormatter:
    """Help text as wide as ``$COLUMNS`` (default 100), without asking the terminal.

    argparse's own default imports ``shutil`` (and its compression modules) for
    every parser, which every install would pay for at start-up.
    """
    import argparse

    from ._record import size_of

    width = size_of(os.environ.get("COLUMNS", ""))  # ASCII digits only ('²'.isdigit())
    return argparse.HelpFormatter(prog, width=width - 2 if width is not None else 98)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with *command*, only that command's sub-parser (all a
    command line starting with it can reach: the others are never consulted)."""

    import argparse  # only here and on errors: a plain install line is read by _argv

    parser = argparse.ArgumentParser(
        formatter_class=_formatter,
        prog="safelink",
        description="Install wheels from a verified unpacked-wheel cache by linking.",
    )
    parser.add_argument("--version", action="version", version=f"safelink {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, add in _ADD_PARSER.items():
        if command is None or command == name:
            add(sub)
    return parser


def _add_install_parser(sub: Any) -> None:
    p = sub.add_parser(
        "install", formatter_class=_formatter, help="install wheels into an environment"
    )
    p.add_argument("wheels", nargs="*", metavar="WHEEL")
    _target_options(p)
    _common(p)
    _lock_install_options(p)
    _link_options(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="install even if the wheel's tags do not match the target",
    )
    p.add_argument(
        "--ignore-requires-python",
        action="store_true",
        help="install even if a wheel's Requires-Python excludes the target, like pip",
    )
    p.add_argument("--threads", type=int, default=None, help="link threads (default: auto)")
    p.add_argument(
        "--no-deps",
        action="store_true",
        help="accepted for pip habits; safelink never installs dependencies anyway",
    )
    p.add_argument(
        "--max-unpacked-size",
        type=_size,
        default=None,
        metavar="SIZE",
        help="refuse wheels that unpack to more than SIZE (default 8G)",
    )


def _add_uninstall_parser(sub: Any) -> None:
    p = sub.add_parser(
        "uninstall", formatter_class=_formatter, help="remove distributions by their RECORD"
    )
    p.add_argument("names", nargs="+", metavar="NAME")
    _target_options(p)
    _common(p)
    p.add_argument("--strict", action="store_true", help="a name that is not installed is an error")


def _add_probe_parser(sub: Any) -> None:
    p = sub.add_parser(
        "probe",
        formatter_class=_formatter,
        help="show what each link mode does between the cache and DIR",
    )
    p.add_argument(
        "dir",
        nargs="?",
        default=None,
        metavar="DIR",
        help="target directory (default: the target's site-packages)",
    )
    _target_options(p, lock=False)
    _common(p)


def _add_verify_parser(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        formatter_class=_formatter,
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


def _add_repair_parser(sub: Any) -> None:
    p = sub.add_parser(
        "repair",
        formatter_class=_formatter,
        help="heal the cache; with --env, restore edited files",
    )
    p.add_argument(
        "--env", action="append", default=[], metavar="PATH", help="environment to restore"
    )
    p.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long to wait for another safelink process using the environment",
    )
    _common(p)


def _add_cache_parser(sub: Any) -> None:
    p = sub.add_parser("cache", formatter_class=_formatter, help="inspect and manage the cache")
    p.add_argument("action", choices=("dir", "list", "size", "prune", "clean"))
    p.add_argument("names", nargs="*", metavar="NAME", help="for clean: only these projects")
    _common(p)


SCHEMA = 1
"""Version of every ``--json`` document (stdout) and ``--json`` error line (stderr)."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # the first word names the command: build only its parser (start-up cost)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    # a plain install line is read without argparse (start-up cost), as argparse reads it
    args = install_args(argv) if command == "install" else None
    if args is None:
        args = build_parser(command).parse_args(argv)
    from . import _log

    as_json = bool(getattr(args, "json", False))

    def warning(message: str) -> None:
        if as_json:
            _stderr_json({"warning": message})
        else:
            print(f"safelink: warning: {message}", file=sys.stderr)

    previous = _log.sink
    _log.sink = (lambda _message: None) if args.quiet else warning
    try:
        code = int(_dispatch(args))
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _closed_stdout()
    except SafelinkError as exc:
        return _error(as_json, type(exc).__name__, exc.message, exc.hint, exc.exit_code)
    except KeyboardInterrupt:
        return _error(as_json, "Interrupted", "interrupted", None, 130, prefix="safelink: ")
    except Exception as exc:
        from ._translate import translate

        err = translate(exc, args.command)  # OSError and lock time-outs: one line
        if not isinstance(err, SafelinkError):
            raise
        return _error(as_json, type(err).__name__, err.message, err.hint, err.exit_code)
    finally:
        _log.sink = previous


def _error(
    as_json: bool, kind: str, message: str, hint: str | None, code: int, prefix: str = ""
) -> int:
    if as_json:
        _stderr_json({"error": {"type": kind, "message": message, "hint": hint}, "exit_code": code})
    else:
        text = f"{message} ({hint})" if hint else message
        print(prefix + text if prefix else f"safelink: error: {text}", file=sys.stderr)
    return code


def _stderr_json(obj: dict[str, Any]) -> None:
    import json  # only for --json (start-up cost)

    print(json.dumps({"schema": SCHEMA, **obj}), file=sys.stderr)


def _json(obj: dict[str, Any]) -> None:
    """Print one ``--json`` document; every one carries the ``schema`` version first."""
    import json  # only for --json (start-up cost)

    print(json.dumps({"schema": SCHEMA, **obj}, default=str))


def _closed_stdout() -> int:
    """The reader went away (``safelink ... | head``): stop quietly, like ``ls | head``.

    Exit status 141 is what a shell reports for a process ended by SIGPIPE. The
    work already done stays done; only the rest of the output is dropped.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return 141


def _out(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text)


def _dispatch(args: argparse.Namespace) -> int:
    from ._cache import Cache

    cache = Cache(args.cache_dir)
    if args.command == "sync" or (args.command == "install" and args.requirement):
        return _sync(args, cache)
    if args.command == "install":
        if not args.wheels:
            raise SafelinkError("no wheels given", "name wheel files, or a lock file with -r")
        return _install(args, cache)
    if args.command == "uninstall":
        return _uninstall(args)
    if args.command == "probe":
        return _probe(args, cache)
    if args.command == "verify":
        return _verify(args, cache)
    if args.command == "repair":
        return _repair(args, cache)
    return _cache_command(args, cache)


def _uninstall(args: argparse.Namespace) -> int:
    """Like pip and uv: a name that is not installed is a warning (an error with ``--strict``)."""
    from ._log import warn
    from ._uninstall import canonicalize_name, uninstall

    removed = uninstall(
        args.names,
        _target(args),
        lock_timeout=args.lock_timeout,
        missing_ok=not args.strict,
    )
    found = {canonicalize_name(r.name) for r in removed}
    missing = [n for n in args.names if canonicalize_name(n) not in found]
    for name in missing:
        warn(f"skipping {name!r}: not installed")
    if args.json:
        _json(
            {
                "uninstalled": [r.__dict__ for r in removed],
                "not_installed": missing,
            }
        )
    else:
        from ._names import shown

        for r in removed:
            _out(args, f"Uninstalled {shown(r.name)} {shown(r.version)}")
    return 0


def _verify(args: argparse.Namespace, cache: object) -> int:
    from ._cache import Cache
    from ._verify import verify

    assert isinstance(cache, Cache)
    report = verify(cache, args.env or None, cache_only=args.check_cache)
    if args.json:
        _json(report.to_dict())
        return 0 if report.clean else 1
    from ._names import shown

    for f in report.cache:
        shared = f"; shared by {', '.join(map(shown, f.shared_with))}" if f.shared_with else ""
        print(f"cache: poisoned {shown(f.path)} ({shown(f.dist)}: {shown(f.reason)}){shared}")
    for env, fs in report.envs.items():
        if not fs:
            _out(args, f"{shown(env)}: clean")
        for f in fs:
            print(f"{shown(env)}: modified {shown(f.path)} ({shown(f.dist)}: {shown(f.reason)})")
    if not report.cache and not report.envs:
        _out(args, "cache: clean")
    return 0 if report.clean else 1


def _repair(args: argparse.Namespace, cache: object) -> int:
    from ._cache import Cache
    from ._verify import repair

    assert isinstance(cache, Cache)
    actions = repair(cache, args.env, dry_run=args.dry_run, lock_timeout=args.lock_timeout)
    if args.json:
        _json({"actions": actions, "dry_run": args.dry_run})
        return 0
    for a in actions:
        _out(args, a)
    if not actions:
        _out(args, "nothing to repair")
    return 0


def _install(args: argparse.Namespace, cache: object) -> int:
    wheels = _check_wheel_args(args.wheels)
    if args.dry_run:
        return _install_dry_run(args, wheels)
    progress = _progress_display() if not (args.quiet or args.json) else None
    if progress is not None:
        from ._progress import Progress

        progress(Progress("admit", "", 0, len(wheels)))  # visible before any real work
    from ._cache import Cache
    from ._install import install

    assert isinstance(cache, Cache)
    try:
        report = install(
            wheels,
            _target(args, cache.root),
            progress=progress,
            cache=cache,
            link_mode=args.link_mode,
            allow_fallback=True if args.allow_fallback else None,
            guard=args.guard,
            compile_bytecode=args.compile,
            force=args.force,
            ignore_requires_python=args.ignore_requires_python,
            lock_timeout=args.lock_timeout,
            threads=args.threads,
            max_unpacked=args.max_unpacked_size,
        )
    finally:
        if progress is not None:
            progress.done()
    if args.json:
        _json(report.to_dict())
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
    if not args.quiet and sys.stdout.isatty():
        for line in _changes(report):
            print(line)
    return 0


def _install_dry_run(args: argparse.Namespace, wheels: list[str]) -> int:
    """``install --dry-run WHEEL...``: the change lines and a summary; nothing is written,
    not even the cache (the wheels are not admitted)."""
    from ._sync import plan_wheels

    plan = plan_wheels(wheels, _target(args))
    if args.json:
        _json(plan.to_dict())
        return 0
    for line in plan.lines():
        _out(args, line)
    _out(args, plan.summary())
    return 0


def _target(args: argparse.Namespace, cache_root: str | None = None) -> Any:
    """The environment the target options name (the same rule for every command)."""
    from ._environment import resolve_target

    return resolve_target(
        python=args.python,
        prefix=args.prefix,
        flat=args.target,
        cache_root=cache_root,
        system=args.system,
        break_system_packages=args.break_system_packages,
    )


def _check_wheel_args(wheels: list[str]) -> list[str]:
    """The wheels to install, each once (a shell glob can name one file twice).

    A URL or a requirement where a wheel file belongs gets told what to do instead.
    """
    seen: set[str] = set()
    unique: list[str] = []
    for arg in wheels:
        key = os.path.realpath(arg)
        if key not in seen:
            seen.add(key)
            unique.append(arg)
        if "://" in arg:
            raise SafelinkError(
                f"{arg!r} is a URL; safelink installs wheel files it is given",
                "download it first, e.g. 'pip download --no-deps -d wheels URL', "
                "then 'safelink install wheels/*.whl'",
            )
        if not arg.lower().endswith(".whl") and not os.path.exists(arg):
            raise SafelinkError(
                f"{arg!r} is not a wheel file; safelink does not resolve requirements",
                f"get wheels with 'pip download -d wheels {_shell_word(arg)}' or 'pip wheel', "
                "then 'safelink install wheels/*.whl'; or, from a lock file, "
                "'safelink install -r pylock.toml' or 'safelink sync pylock.toml'",
            )
    return unique


def _shell_word(text: str) -> str:
    import shlex

    return shlex.quote(text) if text.isprintable() else "NAME"


def _progress_display() -> Any:
    """One status line on stderr while an install runs, when stderr is a terminal.

    It shows from the first event on (the first one comes before any wheel is
    unpacked) and is redrawn at most every 50 ms: wheels made ready in the cache,
    then files linked, then metadata written, each as done/total, counting the
    forked worker's part too (it draws the line as well while it works).
    """
    if not sys.stderr.isatty():
        return None
    import time

    labels = {
        "download": "Downloading wheels...",
        "admit": "Preparing packages...",
        "link": "Linking files...",
        "finalize": "Writing metadata...",
    }
    stage, done_, wheel_, drawn, shown = [""], [-1], [""], [0.0], [False]
    try:
        width = os.get_terminal_size(sys.stderr.fileno()).columns - 1
    except OSError:
        width = 0
    width = width if width > 20 else 79  # a line that wraps cannot be redrawn with \r

    def show(event: Any) -> None:
        now = time.monotonic()
        if event.stage != stage[0]:  # a new stage is always drawn at once
            stage[0], done_[0], wheel_[0], drawn[0] = event.stage, -1, "", 0.0
        stale = event.done < done_[0] or (event.done, event.wheel) == (done_[0], wheel_[0])
        hurried = event.stage == "link" and now - drawn[0] < 0.05 and event.done < event.total
        if stale or hurried:
            return
        done_[0], wheel_[0], drawn[0], shown[0] = event.done, event.wheel, now, True
        text = f"{labels.get(event.stage, event.stage)} ({event.done:,}/{event.total:,})"
        if event.wheel and event.stage == "admit":
            name = event.wheel if event.wheel.isprintable() else repr(event.wheel)
            text += f" {name}"
        try:
            sys.stderr.write(f"\r\x1b[2K{text[:width]}")
            sys.stderr.flush()
        except OSError:
            pass

    def done() -> None:
        if shown[0]:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()

    show.from_workers = True  # type: ignore[attr-defined]
    show.done = done  # type: ignore[attr-defined]
    return show


def _changes(report: Any) -> list[str]:
    """One line per distribution, like uv: `` + name==version`` or `` ~ name old -> new``
    (the same lines as ``sync``'s: :func:`safelink._report.change_line`)."""
    from ._report import change_line

    return [
        change_line(w.name, w.replaced, w.version)
        for w in sorted(report.wheels, key=lambda w: w.name)
    ]


def _probe(args: argparse.Namespace, cache: object) -> int:
    from ._cache import Cache
    from ._layout import tmp_dir
    from ._policy import choose
    from .strategies.probe import pair_key, probe

    assert isinstance(cache, Cache)
    directory = os.path.abspath(args.dir) if args.dir else _target(args, cache.root).purelib
    os.makedirs(cache.root, exist_ok=True)
    result = probe(cache.root, directory, refresh=True)
    pick = choose(result)
    if args.json:
        _json(
            {
                "cache": cache.base,
                "target": directory,
                "modes": result.modes,
                "same_filesystem": result.same_filesystem,
                "auto": pick,
                "key": pair_key(tmp_dir(cache.root), directory),
            }
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
    import json

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
        if args.json:
            print(json.dumps(data))
        else:
            print(data["dir"])
            for sat in data["satellites"]:
                print(f"satellite: {sat}")
        return 0
    if action == "list":
        data = _cachecmd.list_entries(cache)
        if args.json:
            print(json.dumps(data))
            return 0
        for part in [data, *data["satellites"]]:
            if part is not data:
                print(f"satellite {part['dir']}:")
            for r in part["entries"]:
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
        elif not args.quiet:
            for part in [data, *data["satellites"]]:
                mib, all_mib = part["bytes"] / 1024**2, part["total_bytes"] / 1024**2
                print(
                    f"{_count(part['entries'], 'entry', 'entries')}, "
                    f"{_count(part['files'], 'file')}, {mib:,.1f} MiB in "
                    f"{part['dir']} ({all_mib:,.1f} MiB with everything the cache remembers)"
                    + (" (satellite)" if part is not data else "")
                )
        return 0
    if action == "prune":
        data = _cachecmd.prune(cache)
        if args.json:
            print(json.dumps(data))
        elif not args.quiet:
            for part in [data, *data["satellites"]]:
                for filename in part["removed"]:
                    print(f"removed {filename}")
                print(
                    f"pruned {_count(len(part['removed']), 'unused entry', 'unused entries')} "
                    f"and {_count(part['temp_dirs'], 'stale temp file')}"
                    + (f" in the satellite {part['dir']}" if part is not data else "")
                )
                _skipped(part["skipped"])
        return 0
    data = _cachecmd.clean(cache, list(args.names))
    if args.json:
        print(json.dumps(data))
    elif not args.quiet:
        for part in [data, *data["satellites"]]:
            print(f"removed {_count(len(part['removed']), 'entry', 'entries')} from {part['dir']}")
            _skipped(part["skipped"])
    return 0


def _skipped(filenames: list[str]) -> None:
    if filenames:
        print(f"skipped {_count(len(filenames), 'entry', 'entries')} in use by a running install")


def _count(n: int, one: str, many: str | None = None) -> str:
    """``1 entry``, ``2 entries``: *many* defaults to *one* + ``s``."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


# -- install -r / sync: from a pylock.toml ------------------------------------------------


def _lock_options(p: argparse.ArgumentParser) -> None:
    """Options of ``sync`` and ``install -r`` (selection and fetching)."""
    g = p.add_argument_group("lock file")
    g.add_argument(
        "--extras",
        "--extra",
        action="append",
        default=[],
        metavar="NAME",
        help="select the lock's packages for this extra (repeatable, or comma-separated)",
    )
    g.add_argument(
        "--group",
        action="append",
        default=None,
        metavar="NAME",
        help="dependency group to select (repeatable; default: the lock's default groups)",
    )
    g.add_argument(
        "--dry-run", action="store_true", help="print what would change; change nothing"
    )
    g.add_argument(
        "--reinstall",
        action="store_true",
        help="reinstall even what is already installed from the locked wheel",
    )
    g.add_argument(
        "--offline",
        action="store_true",
        help="never use the network: wheels must be in the cache or on disk",
    )


def _lock_install_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-r",
        "--requirement",
        metavar="PYLOCK",
        default=None,
        help="install what a PEP 751 lock file (pylock.toml) selects for the target",
    )
    _lock_options(p)


def _add_sync_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sync",
        formatter_class=_formatter,
        help="make an environment exactly what a pylock.toml selects (adds, replaces, removes)",
    )
    p.add_argument("lock", metavar="PYLOCK", help="a PEP 751 lock file (pylock.toml)")
    _target_options(p)
    _common(p)
    _lock_options(p)
    _link_options(p)
    p.add_argument("--threads", type=int, default=None, help="link threads (default: auto)")
    p.add_argument(
        "--max-unpacked-size",
        type=_size,
        default=None,
        metavar="SIZE",
        help="refuse wheels that unpack to more than SIZE (default 8G)",
    )


def _sync(args: argparse.Namespace, cache: object) -> int:
    from ._cache import Cache
    from ._sync import sync

    assert isinstance(cache, Cache)
    exact = args.command == "sync"
    if not exact and args.wheels:
        raise SafelinkError(
            "give either wheel files or -r PYLOCK, not both",
            "install the wheels and the lock in two runs",
        )
    extras = [e.strip() for x in args.extras for e in x.split(",") if e.strip()]
    groups = (
        None
        if args.group is None
        else [g.strip() for x in args.group for g in x.split(",") if g.strip()]
    )
    progress = _progress_display() if not (args.quiet or args.json) else None
    report = sync(
        args.lock if exact else args.requirement,
        _target(args, cache.root),
        cache=cache,
        extras=extras,
        groups=groups,
        exact=exact,
        dry_run=args.dry_run,
        reinstall=args.reinstall,
        offline=args.offline,
        link_mode=args.link_mode,
        allow_fallback=True if args.allow_fallback else None,
        guard=args.guard,
        compile_bytecode=args.compile,
        lock_timeout=args.lock_timeout,
        threads=args.threads,
        max_unpacked=args.max_unpacked_size,
        progress=progress,
    )
    progress_done = getattr(progress, "done", None)
    if progress_done:
        progress_done()
    if args.json:
        _json(report.to_dict())
        return 0
    for line in report.lines():
        _out(args, line)
    if args.verbose:
        for spec in report.unchanged:
            _out(args, f"  {spec} (unchanged)")
    _out(args, report.summary())
    return 0


_ADD_PARSER: dict[str, Callable[[Any], None]] = {
    "install": _add_install_parser,
    "sync": _add_sync_parser,
    "uninstall": _add_uninstall_parser,
    "probe": _add_probe_parser,
    "verify": _add_verify_parser,
    "repair": _add_repair_parser,
    "cache": _add_cache_parser,
}
"""Each command's sub-parser, in the order ``--help`` lists them (one table: the names
a command line may start with are its keys)."""

COMMANDS = tuple(_ADD_PARSER)
