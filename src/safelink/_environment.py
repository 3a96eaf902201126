"""Where a wheel goes: target discovery without starting the interpreter when possible.

A venv's layout is fully determined by its ``pyvenv.cfg`` (version) and the
platform, so a fresh venv is described without running its Python. Other
interpreters are asked once and the answer is remembered in the cache, keyed
by the interpreter's path, size and mtime.
"""

from __future__ import annotations

import os
import sys

from ._dataclass import dataclass, field
from .errors import TargetError

_WINDOWS = sys.platform == "win32"


@dataclass(frozen=True)
class Target:
    """An install target: the five scheme roots plus the interpreter that will run the code."""

    kind: str
    """``venv``, ``system``, ``prefix`` or ``target`` (flat, like ``pip --target``)."""
    root: str
    """Nothing is ever written or removed outside this directory."""
    purelib: str
    platlib: str
    scripts: str
    headers: str
    """Headers root; the distribution's name is appended per wheel."""
    data: str
    python: str
    """Interpreter written into script shebangs."""
    version: tuple[int, int]
    implementation: str = "cpython"
    free_threaded: bool = False
    stdlib: str = ""
    """The interpreter's standard library directory, where a PEP 668 ``EXTERNALLY-MANAGED``
    marker would be; empty when not known (venvs, ``--prefix``, ``--target``)."""
    _tags: list[str] | None = field(default=None, compare=False, repr=False)

    def scheme_root(self, scheme: str, dist_name: str) -> str:
        if scheme == "headers":
            return os.path.join(self.headers, dist_name)
        return str(getattr(self, scheme))

    @property
    def site_dirs(self) -> list[str]:
        return [self.purelib] if self.purelib == self.platlib else [self.purelib, self.platlib]

    def supported_tags(self) -> set[str]:
        """Wheel tags this target's interpreter accepts."""
        if self._tags is not None:
            return set(self._tags)
        return set(self.tag_list())

    def tag_list(self) -> list[str]:
        """Wheel tags this target's interpreter accepts, most preferred first."""
        from packaging import tags

        if self._tags is not None:
            return list(self._tags)
        same = (
            self.version == sys.version_info[:2] and self.implementation == sys.implementation.name
        )
        if same:
            return [str(t) for t in tags.sys_tags()]
        platforms = list(tags.platform_tags())
        if self.implementation == "cpython":
            v = f"{self.version[0]}{self.version[1]}"
            abis = [f"cp{v}t"] if self.free_threaded else [f"cp{v}", "abi3", "none"]
            out = [str(t) for t in tags.cpython_tags(self.version, abis, platforms)]
            out += [str(t) for t in tags.compatible_tags(self.version, f"cp{v}", platforms)]
            return out
        return [str(t) for t in tags.compatible_tags(self.version, None, platforms)]


def _read_cfg(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip().lower()] = value.strip()
    return out


def venv_target(venv: str, cache_root: str | None = None) -> Target:
    """Describe the venv at *venv* from its ``pyvenv.cfg`` (no subprocess for CPython)."""
    venv = os.path.abspath(venv)
    cfg_path = os.path.join(venv, "pyvenv.cfg")
    try:
        cfg = _read_cfg(cfg_path)
    except OSError:
        raise TargetError(
            f"{venv}: not a virtual environment (no pyvenv.cfg)",
            "create one with 'python -m venv' or use --prefix/--target",
        ) from None
    bindir = os.path.join(venv, "Scripts" if _WINDOWS else "bin")
    python = os.path.join(bindir, "python.exe" if _WINDOWS else "python")
    impl = cfg.get("implementation", "cpython").lower()
    home = cfg.get("home", "")
    if "pypy" in home.lower() or impl not in ("cpython",):
        return query_interpreter(python, cache_root, venv_root=venv)
    raw_version = cfg.get("version_info") or cfg.get("version") or ""
    try:
        major, minor = (int(x) for x in raw_version.split(".")[:2])
    except ValueError:
        return query_interpreter(python, cache_root, venv_root=venv)
    if _WINDOWS:  # pragma: no cover
        site = os.path.join(venv, "Lib", "site-packages")
        include = os.path.join(venv, "Include")
    else:
        ft = cfg.get("gil_disabled", "").lower() == "true" or "t" in cfg.get("abiflags", "")
        pyname = f"python{major}.{minor}{'t' if ft else ''}"
        site = os.path.join(venv, "lib", pyname, "site-packages")
        if not os.path.isdir(site):
            return query_interpreter(python, cache_root, venv_root=venv)
        include = os.path.join(venv, "include", "site", f"python{major}.{minor}")
    return Target(
        kind="venv",
        root=venv,
        purelib=site,
        platlib=site,
        scripts=bindir,
        headers=include,
        data=venv,
        python=python,
        version=(major, minor),
    )


_PLACEHOLDER = "/@safelink-prefix@"
"""Stands for the ``--prefix`` directory in the prefix scheme an interpreter reports."""

_QUERY_FORMAT = 2

_QUERY = r"""
import json, os, sys, sysconfig
P = "/@safelink-prefix@"
print(json.dumps({
  "format": 2,
  "prefix_paths": sysconfig.get_paths("nt" if os.name == "nt" else "posix_prefix",
    vars={"base": P, "platbase": P, "installed_base": P, "installed_platbase": P}),
  "version": list(sys.version_info[:2]),
  "implementation": sys.implementation.name,
  "executable": sys.executable,
  "prefix": sys.prefix,
  "base_prefix": getattr(sys, "base_prefix", sys.prefix),
  "paths": sysconfig.get_paths(),
  "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
}))
"""


def _interpreter_info(python: str, cache_root: str | None) -> dict[str, object]:
    try:
        st = os.stat(python)
    except OSError:
        raise TargetError(
            f"{python}: no such interpreter", "pass --python a python executable or venv"
        ) from None
    import json  # not for a venv: its scheme is read from pyvenv.cfg (start-up cost)
    import subprocess

    from ._record import sha256

    key = sha256(
        f"{os.path.realpath(python)}\0{python}\0{st.st_size}\0{st.st_mtime_ns}".encode()
    ).hexdigest()
    from ._layout import interpreter_file

    cached = interpreter_file(cache_root, key) if cache_root else None
    if cached:
        try:
            with open(cached, encoding="utf-8") as f:
                info = dict(json.load(f))
            if info.get("format") == _QUERY_FORMAT:
                return info
        except (OSError, ValueError, TypeError):
            pass
    try:
        out = subprocess.run(
            [python, "-I", "-c", _QUERY], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        info = dict(json.loads(out))
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise TargetError(f"{python}: cannot query this interpreter ({exc})") from None
    if cached:
        from ._atomic import remember

        remember(cached, json.dumps(info).encode())
    return info


def query_interpreter(
    python: str, cache_root: str | None = None, venv_root: str | None = None
) -> Target:
    info = _interpreter_info(python, cache_root)
    paths = dict(info["paths"])  # type: ignore[call-overload]
    version: tuple[int, ...] = tuple(info["version"])  # type: ignore[arg-type]
    prefix = str(info["prefix"])
    is_venv = venv_root is not None or info["prefix"] != info["base_prefix"]
    root = venv_root or prefix
    return Target(
        kind="venv" if is_venv else "system",
        root=root,
        purelib=paths["purelib"],
        platlib=paths["platlib"],
        scripts=paths["scripts"],
        headers=os.path.dirname(paths["include"])
        if not is_venv
        else os.path.join(root, "include", "site", f"python{version[0]}.{version[1]}"),
        data=paths["data"],
        python=python if is_venv else str(info["executable"]),
        version=(int(version[0]), int(version[1])),
        implementation=str(info["implementation"]),
        free_threaded=bool(info.get("free_threaded")),
        stdlib="" if is_venv else str(paths.get("stdlib", "")),
    )


def prefix_scheme(python: str, cache_root: str | None = None) -> dict[str, str]:
    """*python*'s own ``--prefix`` scheme (``platlibdir``: ``lib64`` on some platforms),
    with :data:`_PLACEHOLDER` standing for the prefix."""
    if os.path.isdir(python):
        python = os.path.join(python, "Scripts" if _WINDOWS else "bin", "python")
    info = _interpreter_info(python, cache_root)
    return {str(k): str(v) for k, v in dict(info["prefix_paths"]).items()}  # type: ignore[call-overload]


def python_target(python: str, cache_root: str | None = None) -> Target:
    """``--python PATH``: a venv directory, a venv's interpreter, or any interpreter."""
    if os.path.isdir(python):
        return venv_target(python, cache_root)
    parent = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    if os.path.isfile(os.path.join(parent, "pyvenv.cfg")):
        target = venv_target(parent, cache_root)
        return target
    return query_interpreter(python, cache_root)


def current_target() -> Target:
    """The running interpreter's environment; an active ``VIRTUAL_ENV`` wins."""
    venv = os.environ.get("VIRTUAL_ENV")
    if venv and os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        return venv_target(venv)
    if sys.prefix != sys.base_prefix:
        return venv_target(sys.prefix)
    import sysconfig  # not for a venv (start-up cost)

    paths = sysconfig.get_paths()
    return Target(
        kind="system",
        root=sys.prefix,
        purelib=paths["purelib"],
        platlib=paths["platlib"],
        scripts=paths["scripts"],
        headers=os.path.dirname(paths["include"]),
        data=paths["data"],
        python=sys.executable,
        version=sys.version_info[:2],
        implementation=sys.implementation.name,
        stdlib=paths["stdlib"],
    )


def prefix_target(
    prefix: str, base: Target | None = None, scheme: dict[str, str] | None = None
) -> Target:
    """``--prefix DIR``: an interpreter's prefix scheme rooted at *DIR*.

    *scheme* is that interpreter's own scheme (:func:`prefix_scheme`); without
    it, the running interpreter's is used (its ``sys.platlibdir``, ``lib64`` on
    some platforms), for *base*'s Python version.
    """
    base = base or current_target()
    prefix = os.path.abspath(prefix)
    v = f"{base.version[0]}.{base.version[1]}"
    if scheme is None:
        import sysconfig

        scheme = sysconfig.get_paths(
            "nt" if _WINDOWS else "posix_prefix",
            vars={
                "base": _PLACEHOLDER,
                "platbase": _PLACEHOLDER,
                "installed_base": _PLACEHOLDER,
                "installed_platbase": _PLACEHOLDER,
                "py_version_short": v,
                "platlibdir": getattr(sys, "platlibdir", "lib"),
                "abiflags": "t" if base.free_threaded else "",
            },
        )
    paths = {
        k: os.path.normpath(prefix + p[len(_PLACEHOLDER) :])
        for k, p in scheme.items()
        if p.startswith(_PLACEHOLDER)
    }
    if not {"purelib", "platlib", "scripts"} <= set(paths):
        raise TargetError(f"{base.python}: unusual prefix scheme; cannot install with --prefix")
    return Target(
        kind="prefix",
        root=prefix,
        purelib=paths["purelib"],
        platlib=paths["platlib"],
        scripts=paths["scripts"],
        headers=os.path.join(prefix, "include", f"python{v}"),
        data=prefix,
        python=base.python,
        version=base.version,
        implementation=base.implementation,
        free_threaded=base.free_threaded,
    )


def flat_target(directory: str, base: Target | None = None) -> Target:
    """``--target DIR``: everything importable straight from *DIR*, like ``pip --target``."""
    base = base or current_target()
    d = os.path.abspath(directory)
    return Target(
        kind="target",
        root=d,
        purelib=d,
        platlib=d,
        scripts=os.path.join(d, "bin"),
        headers=os.path.join(d, "include"),
        data=d,
        python=base.python,
        version=base.version,
        implementation=base.implementation,
        free_threaded=base.free_threaded,
    )


def find_venv(start: str) -> str | None:
    """A ``.venv`` (with ``pyvenv.cfg``) in *start* or the nearest parent that has one, as uv."""
    d = os.path.abspath(start)
    while True:
        candidate = os.path.join(d, ".venv")
        if os.path.isfile(os.path.join(candidate, "pyvenv.cfg")):
            return candidate
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _on_path(*names: str) -> str | None:
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        for name in names:
            path = os.path.join(d or ".", name + (".exe" if _WINDOWS else ""))
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
    return None


def default_target(cache_root: str | None = None, *, system: bool = False) -> Target:
    """The environment to use when none is named, chosen as pip and uv choose it.

    An active ``VIRTUAL_ENV``, else a ``.venv`` in the working directory or a
    parent; never the environment safelink itself happens to run from. With
    *system*, the first ``python3`` (or ``python``) on ``PATH`` instead, as
    ``uv pip install --system`` does. Raises :class:`TargetError` otherwise.
    """
    if system:
        python = _on_path("python3", "python")
        if python is None:
            raise TargetError("--system: no python3 or python on PATH", "pass --python PATH")
        return python_target(python, cache_root)
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        if not os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
            raise TargetError(
                f"VIRTUAL_ENV={venv} is not a virtual environment (no pyvenv.cfg)",
                "activate an existing venv or unset VIRTUAL_ENV",
            )
        return venv_target(venv, cache_root)
    cwd = os.getcwd()
    found = find_venv(cwd)
    if found is not None:
        return venv_target(found, cache_root)
    raise TargetError(
        f"no virtual environment found: VIRTUAL_ENV is not set and there is no .venv in {cwd} "
        "or its parents",
        "create one with 'python -m venv .venv', pass --python, --prefix or --target, "
        "or --system to install into the interpreter on PATH",
    )


def check_externally_managed(target: Target) -> None:
    """Refuse an interpreter whose distributor manages its packages (PEP 668)."""
    if target.kind != "system" or not target.stdlib:
        return
    marker = os.path.join(target.stdlib, "EXTERNALLY-MANAGED")
    if os.path.isfile(marker):
        raise TargetError(
            f"{target.python} is externally managed (PEP 668: {marker})",
            "use a virtual environment ('python -m venv .venv'), "
            "or --break-system-packages to install into it anyway",
        )


def resolve_target(
    target: Target | str | os.PathLike[str] | None = None,
    *,
    python: str | None = None,
    prefix: str | None = None,
    flat: str | None = None,
    cache_root: str | None = None,
    system: bool = False,
    break_system_packages: bool = False,
) -> Target:
    """Pick the target from the options the CLI and API accept (at most one).

    A :class:`Target` is used as it is. Otherwise: *target* (a venv directory
    or an interpreter), *python* (the same, or the interpreter whose scheme
    *prefix* and *flat* use), *prefix* (``--prefix``), *flat* (``--target``);
    with none of them, :func:`default_target` (an active ``VIRTUAL_ENV``, else
    a ``.venv`` in the working directory or a parent, else *system*'s
    interpreter on ``PATH``, else :class:`TargetError`). An interpreter that is
    not a venv and is marked ``EXTERNALLY-MANAGED`` (PEP 668) is refused unless
    *break_system_packages*.
    """
    if isinstance(target, Target):
        return target
    chosen = [x for x in (target, prefix, flat) if x is not None]
    if len(chosen) > 1:
        raise TargetError("choose at most one of a venv target, --prefix and --target")
    if target is not None:
        if python is not None:
            raise TargetError("choose either a venv target or --python")
        tgt = python_target(os.fspath(target), cache_root)
    elif prefix is not None:
        base = python_target(python, cache_root) if python else None
        scheme = prefix_scheme(python, cache_root) if python else None
        tgt = prefix_target(prefix, base, scheme)
    elif flat is not None:
        tgt = flat_target(flat, python_target(python, cache_root) if python else None)
    elif python is not None:
        tgt = python_target(python, cache_root)
    else:
        tgt = default_target(cache_root, system=system)
    if not break_system_packages:
        check_externally_managed(tgt)
    return tgt


def site_dirs_of(root: str) -> list[str]:
    """The directories ``importlib.metadata`` would search in the environment at *root*.

    A venv (``pyvenv.cfg``) or a ``--prefix`` tree: its ``lib*/python*/site-packages``
    (``Lib/site-packages`` on Windows); a ``--target`` directory: itself, when it holds
    ``*.dist-info`` directories. Only these directories' own ``*.dist-info`` entries are
    installed distributions: a ``.dist-info`` vendored inside a package is not one.
    Raises :class:`TargetError` when *root* is none of these.
    """
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise TargetError(
            f"{root}: no such environment", "pass --env a venv, a --prefix or a --target directory"
        )
    found: list[str] = []
    for lib in ("lib", "lib64", "Lib"):
        base = os.path.join(root, lib)
        try:
            names = sorted(os.listdir(base))
        except OSError:
            continue
        if lib == "Lib":
            names = ["."]
        for name in names:
            if name != "." and not name.startswith(("python", "pypy")):
                continue
            for leaf in ("site-packages", "dist-packages"):
                d = os.path.normpath(os.path.join(base, name, leaf))
                if os.path.isdir(d) and not any(os.path.samefile(d, f) for f in found):
                    found.append(d)
    try:
        flat = any(n.endswith(".dist-info") for n in os.listdir(root))
    except OSError:
        flat = False
    if flat:
        found.insert(0, root)
    if not found and not os.path.isfile(os.path.join(root, "pyvenv.cfg")):
        raise TargetError(
            f"{root}: not an environment (no pyvenv.cfg, site-packages or *.dist-info)",
            "pass --env a venv, a --prefix or a --target directory",
        )
    return found
