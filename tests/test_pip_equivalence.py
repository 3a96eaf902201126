"""Equivalence with pip on real wheels.

Every wheel of ``corpus.TEST_WHEELS`` is installed twice into fresh bare venvs: once by
``pip install --no-deps --no-index --no-compile`` and once by ``safelink install`` (auto
link mode); then all of them at once, by each tool (and by safelink in copy mode too).
The trees must match file by file: the same paths, the same bytes, the same read and
execute bits, the same RECORD rows. Only what *must* differ is set aside, each for a
stated reason (see :func:`_compare_trees` and :func:`_compare_records`). Then the
installed code is exercised: imports, console scripts, ``.data/scripts``, ``pip list``,
``pip check``, ``importlib.metadata``, and uninstalling by either tool.

pip is slow (~1 s a run), so each pip and each safelink install happens once per test
session (session-scoped factories keyed by wheel) and is snapshotted right after the
install, before any test runs code in the venv.
"""

from __future__ import annotations

import ast
import base64
import configparser
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import corpus
from conftest import make_venv, site_packages

PIP_MIN = (22, 3)  # first pip with --python
LOCK_FILE = ".safelink.lock"
FRESH_META = ("INSTALLER", "RECORD", "REQUESTED", "direct_url.json", "safelink.json")
TIMEOUT = 300

WHEEL_IDS = [w.name for w in corpus.TEST_WHEELS]


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Node:
    kind: str  # "file", "dir" or "link"
    mode: int  # st_mode & 0o7777
    data: bytes  # file bytes, link target, or b"" for a directory


def _walk(root: Path) -> dict[str, Node]:
    out: dict[str, Node] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = p.relative_to(root).as_posix()
            st = p.lstat()
            mode = st.st_mode & 0o7777
            if p.is_symlink():
                out[rel] = Node("link", mode, os.readlink(p).encode())
            elif p.is_dir():
                out[rel] = Node("dir", mode, b"")
            else:
                out[rel] = Node("file", mode, p.read_bytes())
    return out


@dataclass
class Env:
    """A venv right after one install: what the installer added, and where."""

    tool: str  # "pip" or "safelink"
    venv: Path
    skeleton: dict[str, Node]  # the bare venv, before the install
    added: dict[str, Node]  # everything the install created (__pycache__ left out)
    link_mode: str = ""  # safelink's report

    @property
    def site(self) -> Path:
        return site_packages(self.venv)

    @property
    def site_rel(self) -> str:
        return self.site.relative_to(self.venv).as_posix()

    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def shebang(self) -> bytes:
        return f"#!{self.venv}/bin/python".encode()

    def normalised(self, rel: str) -> bytes:
        """File bytes with this venv's interpreter path in a script shebang made neutral.

        Both tools write the absolute path of the target interpreter into scripts
        (``#!python`` rewrites and entry-point launchers); the venvs live in different
        directories, so ``#!<venv>/bin/python`` becomes ``#!PYTHON`` on both sides. Nothing
        else is rewritten: any other first line is compared as is.
        """
        data = self.added[rel].data
        if rel.startswith("bin/") and data.startswith(self.shebang()):
            return b"#!PYTHON" + data[len(self.shebang()) :]
        return data


def _is_pycache(rel: str) -> bool:
    return "__pycache__" in rel.split("/")


def _snapshot(tool: str, venv: Path, skeleton: dict[str, Node], link_mode: str = "") -> Env:
    after = _walk(venv)
    # The installer must not touch the venv it was given (pyvenv.cfg, activate, python).
    changed = sorted(rel for rel, node in skeleton.items() if after.get(rel) != node)
    assert not changed, f"{tool} changed or removed files of the bare venv: {changed[:10]}"
    added = {
        rel: node for rel, node in after.items() if rel not in skeleton and not _is_pycache(rel)
    }
    return Env(tool, venv, skeleton, added, link_mode)


# --------------------------------------------------------------------------- running tools


def _env(pythonpath: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("VIRTUAL_ENV", None)
    if not pythonpath:  # only safelink itself may need it (a run from a source checkout)
        env.pop("PYTHONPATH", None)
    return env


def _run(
    cmd: list[str], *, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run *cmd* to completion. The venvs' interpreters and pip run without PYTHONPATH,
    so that they see only the venv; a fixed umask, as both installers derive modes from it
    and the comparison is of modes."""
    pythonpath = cmd[:3] == [sys.executable, "-m", "safelink"]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=_env(pythonpath),
        timeout=TIMEOUT,
        umask=0o022,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def _pip(venv: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run(
        [
            sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
            "--isolated", "--disable-pip-version-check", "--no-input", *args,
        ],
        check=check,
    )  # fmt: skip


@dataclass
class Tools:
    root: Path
    cache: Path
    wheels: dict[str, Path]  # corpus name -> local .whl

    def pip_install(self, dest: Path, wheels: list[Path]) -> Env:
        venv = make_venv(dest)
        skeleton = _walk(venv)
        _pip(
            venv, "install", "--no-deps", "--no-index", "--no-compile",
            *map(str, wheels),
        )  # fmt: skip
        return _snapshot("pip", venv, skeleton)

    def safelink_install(self, dest: Path, wheels: list[Path], mode: str = "auto") -> Env:
        venv = make_venv(dest)
        skeleton = _walk(venv)
        proc = _run(
            [
                sys.executable, "-m", "safelink", "install", "--python", str(venv),
                "--cache-dir", str(self.cache), "--link-mode", mode, "--json",
                *map(str, wheels),
            ]
        )  # fmt: skip
        report = json.loads(proc.stdout)
        return _snapshot("safelink", venv, skeleton, report["link_mode"])


def _pip_version() -> tuple[int, ...] | None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, text=True, check=False
    )
    m = re.match(r"pip (\d+)\.(\d+)", proc.stdout)
    return (int(m.group(1)), int(m.group(2))) if proc.returncode == 0 and m else None


@pytest.fixture(scope="session")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Tools:
    version = _pip_version()
    if version is None:
        pytest.skip(f"pip is not installed for {sys.executable} (install the 'test' extra)")
    if version < PIP_MIN:
        pytest.skip(f"pip {version} is older than 22.3, which added --python")
    try:
        paths = corpus.fetch(corpus.TEST_WHEELS)
    except corpus.CorpusError as exc:
        pytest.skip(f"test wheels unavailable (offline?): {exc}")
    root = tmp_path_factory.mktemp("pip-equivalence")
    wheels = {w.name: p for w, p in zip(corpus.TEST_WHEELS, paths, strict=True)}
    return Tools(root, root / "safelink-cache", wheels)


def _memo(make: Callable[[str], Env]) -> Callable[[str], Env]:
    done: dict[str, Env] = {}

    def get(name: str) -> Env:
        if name not in done:
            done[name] = make(name)
        return done[name]

    return get


@pytest.fixture(scope="session")
def pip_env(tools: Tools) -> Callable[[str], Env]:
    """``pip_env(name)``: a venv with that one corpus wheel installed by pip (once)."""
    return _memo(lambda n: tools.pip_install(tools.root / "pip" / n, [tools.wheels[n]]))


@pytest.fixture(scope="session")
def sl_env(tools: Tools) -> Callable[[str], Env]:
    """``sl_env(name)``: a venv with that one corpus wheel installed by safelink (once)."""
    return _memo(lambda n: tools.safelink_install(tools.root / "sl" / n, [tools.wheels[n]]))


@pytest.fixture(scope="session")
def pip_all(tools: Tools) -> Env:
    return tools.pip_install(tools.root / "pip-all", list(tools.wheels.values()))


@pytest.fixture(scope="session")
def sl_all(tools: Tools) -> Env:
    """All of TEST_WHEELS in one ``safelink install`` call."""
    return tools.safelink_install(tools.root / "sl-all", list(tools.wheels.values()))


# --------------------------------------------------------------------------- comparing


def _dist_infos(env: Env) -> list[str]:
    prefix = env.site_rel + "/"
    return sorted(
        rel
        for rel, node in env.added.items()
        if node.kind == "dir"
        and rel.startswith(prefix)
        and "/" not in rel[len(prefix) :]
        and rel.endswith(".dist-info")
    )


def _launchers(env: Env) -> set[str]:
    """``bin/<name>`` of every console and GUI entry point the installed dists declare."""
    out: set[str] = set()
    for di in _dist_infos(env):
        node = env.added.get(f"{di}/entry_points.txt")
        if node is None:
            continue
        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        parser.optionxform = str  # type: ignore[assignment, method-assign]
        parser.read_string(node.data.decode())
        for section in ("console_scripts", "gui_scripts"):
            if parser.has_section(section):
                out.update(f"bin/{name}" for name in parser.options(section))
    return out


def _fresh_meta(env: Env, rel: str) -> str | None:
    """``INSTALLER`` etc. when *rel* is one of the files an installer writes into a
    ``.dist-info`` of site-packages (vendored, nested ``*.dist-info`` are ordinary files)."""
    parent, _, name = rel.rpartition("/")
    site, _, dist_info = parent.rpartition("/")
    if name in FRESH_META and dist_info.endswith(".dist-info") and site == env.site_rel:
        return name
    return None


def _direct_url(data: bytes) -> tuple[str, str | None]:
    """PEP 610 essentials: the URL and the archive's sha256, if recorded.

    For a local file, pip 23.0 writes ``"archive_info": {}``; pip 23.2 and later record
    ``hashes`` (and the legacy ``hash``). safelink always records the sha256.
    """
    d = json.loads(data)
    info = d["archive_info"]
    sha = info.get("hashes", {}).get("sha256") or info.get("hash", "").removeprefix("sha256=")
    return d["url"], sha or None


def _launcher_ast(data: bytes) -> str:
    """What a launcher runs: its ``from X import Y`` and the call inside ``sys.exit()``.

    Templates differ between pip and installer versions (quotes, ``re.sub`` or
    ``str.removesuffix`` to tidy ``argv[0]``); the entry point they call must not.
    """
    tree = ast.parse(data.split(b"\n", 1)[1])
    imports = [ast.dump(n) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    calls = [
        ast.dump(n.args[0])
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "sys.exit" and n.args
    ]
    return repr((imports, calls))


def _compare_trees(pip: Env, sl: Env) -> list[str]:
    """Every difference between the two installs that is not one that must be.

    Set aside, and why:

    * ``.safelink.lock``: safelink locks the environment's directory itself on POSIX, so no
      lock file should appear; one is tolerated (Windows uses a lock file). Its journal and
      stash files must be gone.
    * ``__pycache__``: left out of both snapshots (pip ran with --no-compile, and safelink
      without --compile, so neither should write any; running code later may).
    * write bits: safelink's hardlinked files share the cache's read-only inodes (that is
      the guard's design), so only the read and execute bits are compared.
    * ``INSTALLER`` names the installer; ``REQUESTED`` is an empty marker: presence only.
      ``direct_url.json``: the URL and sha256 must match, formatting may not.
      ``RECORD``: presence here, rows in :func:`_compare_records`.
    * scripts: the interpreter path in the shebang (see :meth:`Env.normalised`).
    * entry-point launchers: pip and PyPA installer (and their versions) generate them from
      different templates, so after the shebang they must import the same object and call
      it inside ``sys.exit()`` (see :func:`_launcher_ast`).
    """
    problems: list[str] = []
    a, b = dict(pip.added), dict(sl.added)
    leftovers = sorted(r for r in b if r.startswith(".safelink") and r != LOCK_FILE)
    problems += [f"safelink left {r} behind" for r in leftovers]
    for r in [LOCK_FILE, *leftovers]:
        b.pop(r, None)
    for r in [r for r in b if _fresh_meta(sl, r) == "safelink.json"]:
        b.pop(r)  # safelink's own record of the wheel's sha256 (pip writes none)
    launchers = _launchers(pip)
    problems += [f"only pip installed {r}" for r in sorted(a.keys() - b.keys())]
    problems += [f"only safelink installed {r}" for r in sorted(b.keys() - a.keys())]
    for rel in sorted(a.keys() & b.keys()):
        na, nb = a[rel], b[rel]
        if na.kind != nb.kind:
            problems.append(f"{rel}: pip made a {na.kind}, safelink a {nb.kind}")
            continue
        if na.mode & 0o555 != nb.mode & 0o555:
            problems.append(
                f"{rel}: r/x mode {na.mode & 0o555:o} (pip) != {nb.mode & 0o555:o} (safelink)"
            )
        if na.kind == "dir":
            continue
        meta = _fresh_meta(pip, rel)
        if meta == "direct_url.json":
            (url_a, sha_a), (url_b, sha_b) = _direct_url(na.data), _direct_url(nb.data)
            if url_a != url_b or sha_b is None or sha_a not in (None, sha_b):
                problems.append(f"{rel}: {(url_a, sha_a)} (pip) != {(url_b, sha_b)}")
        elif meta is not None:
            continue
        elif rel in launchers:
            la, lb = pip.normalised(rel), sl.normalised(rel)
            if la.split(b"\n", 1)[0] != lb.split(b"\n", 1)[0]:
                problems.append(f"{rel}: launcher shebangs differ: {la[:80]!r} / {lb[:80]!r}")
            elif _launcher_ast(la) != _launcher_ast(lb):
                problems.append(f"{rel}: launchers differ in code:\n{la!r}\n{lb!r}")
        elif pip.normalised(rel) != sl.normalised(rel):
            problems.append(f"{rel}: contents differ: {na.data[:80]!r} / {nb.data[:80]!r}")
    return problems


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _record(env: Env, dist_info: str) -> dict[str, tuple[str, str]]:
    rows = list(csv.reader(io.StringIO(env.added[f"{dist_info}/RECORD"].data.decode())))
    out: dict[str, tuple[str, str]] = {}
    for row in rows:
        assert len(row) == 3, f"{env.tool}: malformed RECORD row {row!r} in {dist_info}"
        assert row[0] not in out, f"{env.tool}: {dist_info}/RECORD lists {row[0]} twice"
        out[row[0]] = (row[1], row[2])
    return out


def _in_venv(env: Env, record_path: str) -> str:
    return os.path.normpath(f"{env.site_rel}/{record_path}")


def _check_record_truthful(env: Env) -> list[str]:
    """Each RECORD row hashes to the file on disk; together they list every added file."""
    problems: list[str] = []
    listed: set[str] = set()
    for di in _dist_infos(env):
        for path, (digest, size) in _record(env, di).items():
            rel = _in_venv(env, path)
            listed.add(rel)
            node = env.added.get(rel)
            if node is None or node.kind != "file":
                problems.append(f"{env.tool}: {di}/RECORD lists {path}, not installed")
            elif rel == f"{di}/RECORD":
                if (digest, size) != ("", ""):
                    problems.append(f"{env.tool}: {path} has a hash for itself")
            elif (digest, size) != (_record_hash(node.data), str(len(node.data))):
                problems.append(f"{env.tool}: {path}: RECORD says {digest},{size}; file differs")
    files = {r for r, n in env.added.items() if n.kind == "file" and r != LOCK_FILE}
    problems += [f"{env.tool}: {r} is in no RECORD" for r in sorted(files - listed)]
    return problems


def _compare_records(pip: Env, sl: Env) -> list[str]:
    """The two RECORDs of each distribution hold the same rows.

    Rows for INSTALLER, RECORD, REQUESTED and direct_url.json are left out (their bytes
    legitimately differ, see :func:`_compare_trees`), as are ``__pycache__`` rows. For the
    scripts whose shebang carries the venv's interpreter path, hash and size necessarily
    differ: their paths must match, and each side's hash must be that of its own file
    (checked by :func:`_check_record_truthful`), whose bytes were compared after
    normalisation. Every other row must be identical, hash and size included.
    """
    problems = _check_record_truthful(pip) + _check_record_truthful(sl)
    dis = _dist_infos(pip)
    if dis != _dist_infos(sl):
        return [*problems, f"dist-info dirs differ: {dis} / {_dist_infos(sl)}"]
    for di in dis:
        ra, rb = _record(pip, di), _record(sl, di)
        keep = [
            p
            for p in ra.keys() | rb.keys()
            if not _is_pycache(p) and _fresh_meta(pip, _in_venv(pip, p)) is None
        ]
        for path in sorted(keep):
            if path not in rb:
                problems.append(f"{di}/RECORD: only pip's lists {path}")
            elif path not in ra:
                problems.append(f"{di}/RECORD: only safelink's lists {path}")
            else:
                rel = _in_venv(pip, path)
                rewritten = rel in pip.added and pip.normalised(rel) != pip.added[rel].data
                if not rewritten and ra[path] != rb[path]:
                    problems.append(f"{di}/RECORD: {path}: {ra[path]} (pip) != {rb[path]}")
    return problems


def _report(problems: list[str], pip: Env, sl: Env) -> str:
    head = f"safelink ({sl.link_mode}) and pip installed differently:\n  "
    more = f"\n  ... and {len(problems) - 30} more" if len(problems) > 30 else ""
    return head + "\n  ".join(problems[:30]) + more


# --------------------------------------------------------------------------- tree tests


@pytest.mark.parametrize("name", WHEEL_IDS)
def test_installs_the_same_tree_as_pip(
    name: str, pip_env: Callable[[str], Env], sl_env: Callable[[str], Env]
) -> None:
    pip, sl = pip_env(name), sl_env(name)
    assert sl.link_mode in ("clone", "hardlink", "copy"), sl.link_mode  # auto never symlinks
    files = [r for r, n in pip.added.items() if n.kind == "file"]
    assert len(files) >= corpus.by_name(name).n_files // 2, "pip installed next to nothing"
    problems = _compare_trees(pip, sl) + _compare_records(pip, sl)
    assert not problems, _report(problems, pip, sl)


def test_one_call_installs_the_same_tree_as_pip(pip_all: Env, sl_all: Env) -> None:
    """All of TEST_WHEELS at once (from the warm cache the per-wheel tests filled, when they
    ran first): shared dirs (bin/, share/, include/) merge as with pip."""
    assert len(_dist_infos(sl_all)) == len(corpus.TEST_WHEELS)
    problems = _compare_trees(pip_all, sl_all) + _compare_records(pip_all, sl_all)
    assert not problems, _report(problems, pip_all, sl_all)


def test_copy_mode_installs_the_same_tree_as_pip(pip_all: Env, tools: Tools) -> None:
    """``--link-mode copy``, the fallback of every other mode, writes the same tree too."""
    sl = tools.safelink_install(tools.root / "sl-copy", list(tools.wheels.values()), "copy")
    assert sl.link_mode == "copy"
    problems = _compare_trees(pip_all, sl) + _compare_records(pip_all, sl)
    assert not problems, _report(problems, pip_all, sl)


def test_scripts_point_at_the_venv_python(sl_all: Env) -> None:
    """Every launcher and ``#!python`` script names the venv's interpreter, and is executable.

    (Equality with pip holds only after the shebang was normalised; this pins what it
    normalised: the exact interpreter of *this* venv, an absolute path that exists.)
    """
    assert _launchers(sl_all) == {"bin/pyflakes", "bin/docutils", "bin/thonny"}
    scripts = [r for r in sl_all.added if r.startswith("bin/")]
    assert len(scripts) == 15, sorted(scripts)  # 3 launchers + 12 docutils .data/scripts
    for rel in scripts:
        node = sl_all.added[rel]
        assert node.mode & 0o111 == 0o111, f"{rel} is not executable: {node.mode:o}"
        first = node.data.split(b"\n", 1)[0]
        assert first == sl_all.shebang(), f"{rel}: {first!r}"
    assert os.access(sl_all.python(), os.X_OK)


# --------------------------------------------------------------------------- running code

_IMPORT_PROBE = r"""
import importlib, json, sys
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = ["ok", importlib.import_module(name).__file__]
    except ModuleNotFoundError as exc:
        out[name] = ["missing", exc.name]
print(json.dumps(out))
"""


def _top_level_modules(env: Env) -> set[str]:
    """Importable top-level names, from the dist's RECORD (top_level.txt is optional)."""
    names: set[str] = set()
    for di in _dist_infos(env):
        for path in _record(env, di):
            head, sep, rest = path.partition("/")
            if head.endswith(".dist-info") or head == "..":
                continue
            if sep and rest == "__init__.py":
                names.add(head)
            elif not sep and head.endswith((".py", ".so")):
                names.add(head.split(".", 1)[0])
    return names


def _import_all(env: Env, names: set[str], cwd: Path) -> dict[str, list[str]]:
    proc = _run([env.python(), "-I", "-c", _IMPORT_PROBE, *sorted(names)], cwd=cwd)
    result: dict[str, list[str]] = json.loads(proc.stdout)
    for status in result.values():
        if status[0] == "ok":  # relative to the venv, to compare pip's with safelink's
            status[1] = Path(status[1]).relative_to(env.venv).as_posix()
    return result


@pytest.mark.parametrize("name", WHEEL_IDS)
def test_top_level_modules_import_as_with_pip(
    name: str, pip_env: Callable[[str], Env], sl_env: Callable[[str], Env], tmp_path: Path
) -> None:
    """Each top-level module imports from the venv's site-packages, or fails exactly as
    it does after a pip install: only for a dependency that ``--no-deps`` left out."""
    sl = sl_env(name)
    names = _top_level_modules(sl)
    if not names:
        pytest.skip(f"{name} installs no Python modules (only headers and data files)")
    got = _import_all(sl, names, tmp_path)
    for mod, (status, detail) in got.items():
        if status == "ok":
            assert detail.startswith(sl.site_rel + "/"), f"{mod} imported from {detail}"
        else:  # the dist is there; something it needs is not
            assert detail.split(".")[0] not in names, f"{mod}: its own {detail} is missing"
    assert got == _import_all(pip_env(name), names, tmp_path)


def _outputs(env: Env, script: str, args: list[str], cwd: Path) -> tuple[int, str, str]:
    path = env.venv / "bin" / script
    proc = _run([str(path), *args], check=False, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


RST = "Title\n=====\n\nHello *world*, see ``code``.\n"


@pytest.mark.parametrize(
    ("wheel", "script", "args", "expect"),
    [
        ("pyflakes", "pyflakes", ["--version"], "3.2.0 Python"),
        ("pyflakes", "pyflakes", ["unused.py"], "unused.py:1:1: 'os' imported but unused"),
        ("docutils", "docutils", ["--version"], "Docutils 0.19"),
        ("docutils", "rst2html.py", ["--version"], "rst2html.py (Docutils 0.19"),
        ("docutils", "rst2html.py", ["doc.rst"], "<p>Hello <em>world</em>, see"),
        ("docutils", "rst2man.py", ["doc.rst"], "Hello \\fIworld\\fP"),
    ],
)
def test_scripts_run_as_with_pip(
    wheel: str,
    script: str,
    args: list[str],
    expect: str,
    pip_env: Callable[[str], Env],
    sl_env: Callable[[str], Env],
    tmp_path: Path,
) -> None:
    """Console-script launchers and ``.data/scripts`` run by their shebang, and print
    what the same script prints after a pip install."""
    (tmp_path / "unused.py").write_text("import os\n")
    (tmp_path / "doc.rst").write_text(RST)
    code, out, err = _outputs(sl_env(wheel), script, args, tmp_path)
    assert expect in out, f"{script} {args} exited {code}:\n{out}\n{err}"
    assert (code, out, err) == _outputs(pip_env(wheel), script, args, tmp_path)


def test_gui_script_is_in_place_without_running_it(sl_all: Env, tmp_path: Path) -> None:
    """thonny's ``[gui_scripts]`` launcher needs a display to run; check what it would do."""
    launcher = sl_all.added["bin/thonny"]
    assert launcher.mode & 0o111 == 0o111
    assert launcher.data.startswith(sl_all.shebang() + b"\n")
    assert b"from thonny import launch" in launcher.data
    _run([sl_all.python(), "-I", "-c", "from thonny import launch; assert callable(launch)"],
         cwd=tmp_path)  # fmt: skip


# --------------------------------------------------------------------------- metadata

_METADATA_PROBE = r"""
import json, sys
from importlib import metadata
out = {}
for dist in metadata.distributions(path=[sys.argv[1]]):
    files = dist.files or []
    out[dist.metadata["Name"]] = {
        "version": dist.version,
        "requires": dist.requires or [],
        "entry_points": sorted(f"{e.group}:{e.name}={e.value}" for e in dist.entry_points),
        "files": sorted(str(f) for f in files),
        "missing": sorted(str(f) for f in files if not f.locate().exists()),
        "installer": (dist.read_text("INSTALLER") or "").strip(),
    }
print(json.dumps(out, sort_keys=True))
"""


def _metadata(env: Env, cwd: Path) -> dict[str, dict[str, object]]:
    proc = _run([env.python(), "-I", "-c", _METADATA_PROBE, str(env.site)], cwd=cwd)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _listing(env: Env) -> dict[str, str]:
    rows = json.loads(_pip(env.venv, "list", "--format=json", "--path", str(env.site)).stdout)
    return {corpus.normalize_name(r["name"]): r["version"] for r in rows}


EXPECTED = {w.name: w.version for w in corpus.TEST_WHEELS}


def test_pip_lists_every_wheel_installed_in_one_call(sl_all: Env) -> None:
    assert _listing(sl_all) == EXPECTED


def test_metadata_reads_as_after_pip(sl_all: Env, pip_all: Env, tmp_path: Path) -> None:
    """``importlib.metadata`` in the venv sees the same distributions, requirements,
    entry points and RECORD files as after pip, and every listed file exists."""
    got, want = _metadata(sl_all, tmp_path), _metadata(pip_all, tmp_path)
    assert {corpus.normalize_name(n): d["version"] for n, d in got.items()} == EXPECTED
    for name, dist in got.items():
        assert dist["missing"] == [], f"{name}: RECORD lists files that do not exist"
        assert dist["installer"] == "safelink"
        assert want[name]["installer"] == "pip"
        dist["installer"] = want[name]["installer"]
        files: list[str] = dist["files"]  # type: ignore[assignment]
        ours = [f for f in files if f.endswith(".dist-info/safelink.json")]
        assert len(ours) == 1, f"{name}: no safelink.json in RECORD"  # the wheel's sha256
        dist["files"] = [f for f in files if f not in ours]
    assert got == want


def test_pip_check_sees_what_it_sees_after_pip(sl_all: Env, pip_all: Env) -> None:
    """``pip check``: only the dependencies left out by --no-deps, never bad metadata."""
    got = _pip(sl_all.venv, "check", check=False)
    want = _pip(pip_all.venv, "check", check=False)
    assert (got.returncode, got.stdout, got.stderr) == (
        want.returncode,
        want.stdout,
        want.stderr,
    )
    ok = r"\S+ \S+ requires \S+, which is not installed\.|No broken requirements found\."
    for line in got.stdout.splitlines():
        assert re.fullmatch(ok, line), line


# --------------------------------------------------------------------------- uninstall


def _left_over(env: Env) -> tuple[list[str], list[str]]:
    """After an uninstall: (what differs from the bare venv other than empty directories,
    the directories left over). The lock file and ``__pycache__`` are set aside."""
    now = {r: n for r, n in _walk(env.venv).items() if r != LOCK_FILE and not _is_pycache(r)}
    extra = sorted(now.keys() - env.skeleton.keys())
    problems = [f"left: {r}" for r in extra if now[r].kind != "dir"]
    problems += [f"gone: {r}" for r in sorted(env.skeleton.keys() - now.keys())]
    problems += [
        f"changed: {r}"
        for r in sorted(now.keys() & env.skeleton.keys())
        if now[r] != env.skeleton[r]
    ]
    return problems, [r for r in extra if now[r].kind == "dir"]


def _fresh(tools: Tools, tool: str, dest: str) -> Env:
    """A new venv with all of TEST_WHEELS installed by *tool* in one call."""
    install = tools.safelink_install if tool == "safelink" else tools.pip_install
    return install(tools.root / dest, list(tools.wheels.values()))


def _sl_uninstall(env: Env, names: list[str]) -> None:
    _run([sys.executable, "-m", "safelink", "uninstall", "--python", str(env.venv), *names])


def test_safelink_uninstall_restores_the_bare_venv(tools: Tools) -> None:
    env = _fresh(tools, "safelink", "sl-uninstall")
    _sl_uninstall(env, sorted(EXPECTED))
    assert _left_over(env) == ([], [])
    assert _listing(env) == {}


def test_safelink_uninstalls_what_pip_installed(tools: Tools) -> None:
    """pip's RECORDs (``../../../bin/...`` rows, headers, data) drive a clean removal."""
    env = _fresh(tools, "pip", "pip-then-sl")
    _sl_uninstall(env, sorted(EXPECTED))
    assert _left_over(env) == ([], [])


def test_pip_uninstalls_what_safelink_installed(tools: Tools) -> None:
    """safelink's RECORDs are complete enough for pip to remove every file it put there.

    (pip itself leaves empty directories behind, e.g. ``share/jupyter/labextensions``,
    after uninstalling what it installed; those are not held against safelink.)
    """
    env = _fresh(tools, "safelink", "sl-then-pip")
    _pip(env.venv, "uninstall", "--yes", *sorted(EXPECTED))
    problems, _dirs = _left_over(env)
    assert problems == []
    assert _listing(env) == {}
