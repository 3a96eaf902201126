"""The commands as a user runs them: exact output lines and exit codes.

verify/repair on environments made from real wheels (setuptools vendors
``*.dist-info`` directories inside its package), paths that are not
environments, ``--json`` documents and errors, closed pipes, and the habits
people bring from pip and uv.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import corpus
from conftest import REPO, make_venv, run_cli, site_packages, tree
from safelink._lock import env_lock
from wheelmaker import make_wheel


@pytest.fixture(scope="module")
def real_wheels() -> dict[str, Path]:
    """setuptools and pip as published: what every real environment has."""
    pins = [corpus.by_name("setuptools"), corpus.by_name("pip")]
    return {w.name: p for w, p in zip(pins, corpus.fetch(pins), strict=True)}


def lines(text: str) -> list[str]:
    return text.splitlines()


# -- verify: only the distributions importlib.metadata sees --------------------------


def test_verify_is_clean_right_after_installing_setuptools_and_pip(
    tmp_path: Path, cache_dir: Path, real_wheels: dict[str, Path]
) -> None:
    venv = make_venv(tmp_path / "venv")
    proc = run_cli("install", "--python", str(venv), *map(str, real_wheels.values()))
    assert proc.returncode == 0, proc.stderr
    vendored = list(site_packages(venv).glob("setuptools/_vendor/*.dist-info/RECORD"))
    assert vendored  # the trap: RECORDs of wheels vendored inside the package
    proc = run_cli("verify", "--env", str(venv))
    assert (proc.returncode, lines(proc.stdout), proc.stderr) == (0, [f"{venv}: clean"], "")
    proc = run_cli("verify")  # every environment the cache knows
    assert (proc.returncode, lines(proc.stdout)) == (0, [f"{venv}: clean"])


def test_verify_is_clean_after_pip_installed_into_the_environment(
    tmp_path: Path, cache_dir: Path, real_wheels: dict[str, Path]
) -> None:
    """pip, installed by safelink, installs setuptools itself: verify must agree it is intact."""
    venv = make_venv(tmp_path / "venv")
    run_cli("install", "--python", str(venv), str(real_wheels["pip"]), check=True)
    pip = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            str(real_wheels["setuptools"]),
        ],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr
    assert (site_packages(venv) / "setuptools-75.8.0.dist-info" / "INSTALLER").read_text() == (
        "pip\n"
    )
    proc = run_cli("verify", "--env", str(venv))
    assert (proc.returncode, lines(proc.stdout), proc.stderr) == (0, [f"{venv}: clean"], "")


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not on PATH")
def test_verify_is_clean_after_uv_install(
    tmp_path: Path, cache_dir: Path, real_wheels: dict[str, Path]
) -> None:
    venv = make_venv(tmp_path / "venv")
    uv = subprocess.run(
        [
            "uv",
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            "--no-deps",
            "--offline",
            "--cache-dir",
            str(tmp_path / "uv-cache"),
            *map(str, real_wheels.values()),
        ],
        capture_output=True,
        text=True,
    )
    assert uv.returncode == 0, uv.stderr
    proc = run_cli("verify", "--env", str(venv))
    assert (proc.returncode, lines(proc.stdout), proc.stderr) == (0, [f"{venv}: clean"], "")


def test_verify_still_finds_an_edit_in_a_real_environment(
    tmp_path: Path, cache_dir: Path, real_wheels: dict[str, Path]
) -> None:
    venv = make_venv(tmp_path / "venv")
    run_cli(
        "install",
        "--python",
        str(venv),
        "--link-mode",
        "copy",
        str(real_wheels["setuptools"]),
        check=True,
    )
    edited = site_packages(venv) / "setuptools" / "__init__.py"
    size = edited.stat().st_size
    with open(edited, "ab") as f:
        f.write(b"#\n")
    proc = run_cli("verify", "--env", str(venv))
    assert proc.returncode == 1
    assert lines(proc.stdout) == [
        f"{venv}: modified {edited} (setuptools-75.8.0: size {size + 2}, expected {size})"
    ]
    proc = run_cli("repair", "--env", str(venv))
    assert (proc.returncode, lines(proc.stdout)) == (0, [f"restored {edited}"])
    assert run_cli("verify", "--env", str(venv)).returncode == 0


def test_verify_and_repair_escape_record_paths(tmp_path: Path, cache_dir: Path) -> None:
    """An installed RECORD is untrusted: a path in it with an escape sequence or a
    newline is printed escaped, never recolouring the terminal or faking a line."""
    import csv
    import io

    whl = make_wheel(tmp_path, "demo", "1.0", {"demo/__init__.py": b"X = 1\n"})
    venv = make_venv(tmp_path / "venv")
    run_cli("install", "--python", str(venv), str(whl), check=True)
    site = site_packages(venv)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        ["demo/\x1b[31mred\nclean.py", "sha256=" + "A" * 43, "3"]
    )
    with open(site / "demo-1.0.dist-info" / "RECORD", "a", encoding="utf-8") as f:
        f.write(buf.getvalue())
    shown = f"{site}/demo/\\x1b[31mred\\nclean.py"
    proc = run_cli("verify", "--env", str(venv))
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        1, f"{venv}: modified {shown} (demo-1.0: missing)\n", ""
    )
    proc = run_cli("repair", "--env", str(venv))
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0, f"cannot restore {shown}: not installed from a cache entry\n", ""
    )


# -- a path that is not an environment ---------------------------------------------


@pytest.mark.parametrize("command", ["verify", "repair"])
def test_a_path_that_is_not_an_environment_is_an_error_and_creates_nothing(
    tmp_path: Path, cache_dir: Path, command: str
) -> None:
    typo = tmp_path / "typo"
    before = tree(tmp_path)
    proc = run_cli(command, "--env", str(typo))
    assert (proc.returncode, proc.stdout) == (1, "")
    assert lines(proc.stderr) == [
        f"safelink: error: {typo}: no such environment "
        "(pass --env a venv, a --prefix or a --target directory)"
    ]
    assert tree(tmp_path) == before

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not an environment\n")
    before = tree(tmp_path)
    proc = run_cli(command, "--env", str(plain))
    assert (proc.returncode, proc.stdout) == (1, "")
    assert lines(proc.stderr) == [
        f"safelink: error: {plain}: not an environment (no pyvenv.cfg, site-packages or "
        "*.dist-info) (pass --env a venv, a --prefix or a --target directory)"
    ]
    assert tree(tmp_path) == before


def test_repair_decides_what_to_restore_under_the_environment_lock(
    tmp_path: Path, cache_dir: Path
) -> None:
    """A repair waiting for an install must look at the environment the install leaves.

    The test holds the environment's lock (as an install does), edits a file,
    starts ``repair``, then -- still holding the lock -- puts the pristine
    file back (as the install finishing would) and releases it. Deciding
    before the lock, repair would "restore" a file that is no longer damaged.
    """
    whl = make_wheel(tmp_path, "locked", "1.0", {"locked/__init__.py": b"X = 1\n"})
    venv = make_venv(tmp_path / "venv")
    run_cli("install", "--python", str(venv), "--link-mode", "copy", str(whl), check=True)
    target = site_packages(venv) / "locked" / "__init__.py"
    held = env_lock(str(venv))  # what an install holds (a lock file where no flock)
    held.__enter__()
    try:
        target.write_bytes(b"X = 2\n")
        repair = subprocess.Popen(
            [sys.executable, "-m", "safelink", "repair", "--env", str(venv)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "SAFELINK_LOCK_TIMEOUT": "60"},
        )
        time.sleep(1.5)  # repair starts and waits for the lock
        fresh = target.with_name("fresh.tmp")
        fresh.write_bytes(b"X = 1\n")
        os.replace(fresh, target)
    finally:
        held.__exit__(None, None, None)
    out, err = repair.communicate(timeout=60)
    assert (repair.returncode, lines(out), err) == (0, ["nothing to repair"], "")


def test_repair_lock_timeout_is_one_line(tmp_path: Path, cache_dir: Path) -> None:
    venv = make_venv(tmp_path / "venv")
    held = env_lock(str(venv))
    held.__enter__()
    try:
        proc = run_cli("repair", "--env", str(venv), "--lock-timeout", "0.2")
    finally:
        held.__exit__(None, None, None)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert lines(proc.stderr) == [
        f"safelink: error: environment {venv} is being modified by another safelink process "
        "(waited 0.2 s; try again when it has finished)"
    ]


# -- --json: a schema version, and errors as JSON ----------------------------------


def test_every_json_document_has_a_schema_and_errors_are_json(
    tmp_path: Path, cache_dir: Path
) -> None:
    whl = make_wheel(tmp_path, "jsonny", "1.0", {"jsonny.py": b""})
    venv = make_venv(tmp_path / "venv")
    docs = {
        "install": run_cli("install", "--python", str(venv), "--json", str(whl)),
        "verify": run_cli("verify", "--json", "--env", str(venv)),
        "repair": run_cli("repair", "--json", "--env", str(venv)),
        "probe": run_cli("probe", "--json", str(tmp_path)),
        "uninstall": run_cli("uninstall", "--python", str(venv), "--json", "jsonny", "absent"),
    }
    for name, proc in docs.items():
        assert proc.returncode == 0, (name, proc.stderr)
        assert json.loads(proc.stdout)["schema"] == 1, name
    assert json.loads(docs["verify"].stdout)["envs"] == {str(venv): []}
    assert json.loads(docs["repair"].stdout)["actions"] == []
    uninstalled = json.loads(docs["uninstall"].stdout)
    assert [d["name"] for d in uninstalled["uninstalled"]] == ["jsonny"]
    assert uninstalled["not_installed"] == ["absent"]
    assert [json.loads(ln) for ln in lines(docs["uninstall"].stderr)] == [
        {"schema": 1, "warning": "skipping 'absent': not installed"}
    ]

    proc = run_cli("verify", "--json", "--env", str(tmp_path / "nowhere"))
    assert (proc.returncode, proc.stdout) == (1, "")
    assert [json.loads(ln) for ln in lines(proc.stderr)] == [
        {
            "schema": 1,
            "error": {
                "type": "TargetError",
                "message": f"{tmp_path / 'nowhere'}: no such environment",
                "hint": "pass --env a venv, a --prefix or a --target directory",
            },
            "exit_code": 1,
        }
    ]


# -- habits from pip and uv ------------------------------------------------------


def test_a_closed_pipe_ends_quietly(tmp_path: Path, cache_dir: Path) -> None:
    venv = make_venv(tmp_path / "venv")
    read, write = os.pipe()
    os.close(read)  # like '| head' that has already exited
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "safelink", "verify", "--env", str(venv)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


def test_uninstall_of_something_not_installed_warns_like_pip(
    tmp_path: Path, cache_dir: Path
) -> None:
    whl = make_wheel(tmp_path, "present", "1.0", {"present.py": b""})
    venv = make_venv(tmp_path / "venv")
    run_cli("install", "--python", str(venv), str(whl), check=True)
    proc = run_cli("uninstall", "--python", str(venv), "absent", "present")
    assert (proc.returncode, lines(proc.stdout), lines(proc.stderr)) == (
        0,
        ["Uninstalled present 1.0"],
        ["safelink: warning: skipping 'absent': not installed"],
    )
    before = tree(venv)
    proc = run_cli("uninstall", "--python", str(venv), "--strict", "absent")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert lines(proc.stderr) == [f"safelink: error: absent is not installed in {venv}"]
    assert tree(venv) == before


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        (
            "six",
            "safelink: error: 'six' is not a wheel file; safelink does not resolve requirements "
            "(get wheels with 'pip download -d wheels six' or 'pip wheel', "
            "then 'safelink install wheels/*.whl'; or, from a lock file, "
            "'safelink install -r pylock.toml' or 'safelink sync pylock.toml')",
        ),
        (
            "requests>=2",
            "safelink: error: 'requests>=2' is not a wheel file; safelink does not resolve "
            "requirements (get wheels with 'pip download -d wheels 'requests>=2'' or 'pip wheel', "
            "then 'safelink install wheels/*.whl'; or, from a lock file, "
            "'safelink install -r pylock.toml' or 'safelink sync pylock.toml')",
        ),
        (
            "https://example.org/six-1.17.0-py2.py3-none-any.whl",
            "safelink: error: 'https://example.org/six-1.17.0-py2.py3-none-any.whl' is a URL; "
            "safelink installs wheel files it is given (download it first, e.g. "
            "'pip download --no-deps -d wheels URL', then 'safelink install wheels/*.whl')",
        ),
    ],
)
def test_install_of_a_name_or_url_says_what_to_do(
    tmp_path: Path, cache_dir: Path, arg: str, expected: str
) -> None:
    venv = make_venv(tmp_path / "venv")
    before = tree(tmp_path)
    proc = run_cli("install", "--python", str(venv), arg)
    assert (proc.returncode, proc.stdout, lines(proc.stderr)) == (1, "", [expected])
    assert tree(tmp_path) == before


def test_a_wheel_named_twice_is_installed_once(tmp_path: Path, cache_dir: Path) -> None:
    """``safelink install *.whl dist/*.whl`` can name one file twice: no "two wheels for x"."""
    whl = make_wheel(tmp_path, "twice", "1.0", {"twice.py": b""})
    venv = make_venv(tmp_path / "venv")
    proc = run_cli("install", "--python", str(venv), str(whl), str(tmp_path / "." / whl.name))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith(f"Installed 1 wheel into {venv}, ")


def test_no_deps_is_accepted(tmp_path: Path, cache_dir: Path) -> None:
    whl = make_wheel(tmp_path, "nodeps", "1.0", {"nodeps.py": b""})
    venv = make_venv(tmp_path / "venv")
    proc = run_cli("install", "--python", str(venv), "--no-deps", "-q", str(whl))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert (site_packages(venv) / "nodeps.py").exists()


def test_the_library_never_prints() -> None:
    """Only the command line writes to stdout/stderr; library code returns data or warns."""
    allowed = {"cli.py", "__main__.py"}
    offenders = []
    for path in sorted((REPO / "src" / "safelink").rglob("*.py")):
        if path.name in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize(
    ("spelling", "value"),
    [("separate", "inf"), ("equals", "1e400"), ("argparse", "nan"), ("equals", "-1")],
)
def test_a_size_that_is_not_a_byte_count_is_a_usage_error(
    tmp_path: Path, spelling: str, value: str
) -> None:
    """``--max-unpacked-size inf`` (or 1e400, nan): exit 2, one usage line, no traceback,
    whichever reader sees the line (the plain fast path or argparse)."""
    opt = {
        "separate": ["--max-unpacked-size", value],
        "equals": [f"--max-unpacked-size={value}"],
        "argparse": ["--max-unpacked", value],  # an abbreviation: only argparse reads it
    }[spelling]
    proc = run_cli("install", *opt, str(tmp_path / "x-1.0-py3-none-any.whl"))
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"not a size: '{value}'" in proc.stderr.splitlines()[-1], proc.stderr


def test_columns_that_are_not_ascii_digits_are_ignored() -> None:
    """``COLUMNS=²`` (``'²'.isdigit()`` is true, ``int('²')`` fails): help and usage
    errors still work, at the default width."""
    env = {"COLUMNS": "\u00b2"}
    proc = run_cli("install", "--help", env=env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "--max-unpacked-size" in proc.stdout
    proc = run_cli("uninstall", "--no-such-option", "x", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "unrecognized arguments: --no-such-option" in proc.stderr.splitlines()[-1]
    from safelink._layout import parse_temp

    assert parse_temp(".safelink-admit-\u00b2-0123456789abcdef") is None


def test_install_dry_run_of_wheel_files_changes_nothing(tmp_path: Path, cache_dir: Path) -> None:
    """``install --dry-run WHEEL`` printed "Installed..." and installed: it must only say."""
    venv = make_venv(tmp_path / "venv")
    for sub in ("old", "same", "new"):
        (tmp_path / sub).mkdir()
    old = make_wheel(tmp_path / "old", "swap", "1.0", {"swap.py": b""})
    run_cli("install", "--python", str(venv), "-q", str(old), check=True)
    same = make_wheel(tmp_path / "same", "kept", "2.0", {"kept.py": b""})
    run_cli("install", "--python", str(venv), "-q", str(same), check=True)
    new = make_wheel(tmp_path / "new", "swap", "1.1", {"swap.py": b""})
    added = make_wheel(tmp_path / "new", "fresh", "0.3", {"fresh.py": b""})
    before = tree(venv), tree(cache_dir)
    args = ("install", "--dry-run", "--python", str(venv), str(new), str(added), str(same))
    proc = run_cli(*args)
    assert (proc.returncode, lines(proc.stdout), proc.stderr) == (
        0,
        [
            " + fresh==0.3",
            " ~ swap 1.0 -> 1.1",
            f"Would install 2 wheels into {venv} (1 already installed from the same wheel)",
        ],
        "",
    )
    assert (tree(venv), tree(cache_dir)) == before
    doc = json.loads(run_cli(*args, "--json", check=True).stdout)
    assert (doc["schema"], doc["dry_run"], doc["lines"]) == (
        1,
        True,
        [" + fresh==0.3", " ~ swap 1.0 -> 1.1"],
    )
    assert doc["unchanged"] == ["kept==2.0"]
    assert (tree(venv), tree(cache_dir)) == before


def test_install_dry_run_into_an_empty_cache_creates_no_cache(
    tmp_path: Path, cache_dir: Path
) -> None:
    venv = make_venv(tmp_path / "venv")
    whl = make_wheel(tmp_path, "lone", "1.0", {"lone.py": b""})
    before = tree(tmp_path)
    proc = run_cli("install", "--python", str(venv), "--dry-run", str(whl))
    assert (proc.returncode, lines(proc.stdout), proc.stderr) == (
        0,
        [" + lone==1.0", f"Would install 1 wheel into {venv}"],
        "",
    )
    assert tree(tmp_path) == before
    assert not cache_dir.exists()


def test_install_dry_run_of_a_missing_wheel_is_one_line(tmp_path: Path, cache_dir: Path) -> None:
    venv = make_venv(tmp_path / "venv")
    missing = tmp_path / "gone-1.0-py3-none-any.whl"
    proc = run_cli("install", "--python", str(venv), "--dry-run", str(missing))
    assert (proc.returncode, proc.stdout, lines(proc.stderr)) == (
        1,
        "",
        [f"safelink: error: no such wheel file: {missing} (check the path)"],
    )


def test_probe_accepts_the_target_options_its_hint_names(tmp_path: Path, cache_dir: Path) -> None:
    """With no venv around, probe said "pass --python, --prefix or --target, or --system",
    then refused ``probe --python X`` as an unrecognized argument."""
    venv = make_venv(tmp_path / "venv")
    work = tmp_path / "work"
    work.mkdir()
    proc = run_cli("probe", env={"VIRTUAL_ENV": None}, cwd=work)
    assert proc.returncode == 1 and "pass --python, --prefix or --target" in proc.stderr
    proc = run_cli("probe", "--json", "--python", str(venv), env={"VIRTUAL_ENV": None}, cwd=work)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout)["target"] == str(site_packages(venv))
    flat = tmp_path / "flat"
    flat.mkdir()
    proc = run_cli("probe", "--json", "--target", str(flat), env={"VIRTUAL_ENV": None}, cwd=work)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout)["target"] == str(flat)



def test_cache_size_hears_quiet(tmp_path: Path, cache_dir: Path) -> None:
    """``cache size -q`` still printed its summary line; -q prints only errors."""
    from safelink import Cache

    Cache(cache_dir).admit(make_wheel(tmp_path, "hush", "1.0", {"hush.py": b""}))
    for action in ("size", "list", "dir"):
        proc = run_cli("cache", action, "-q")
        assert (proc.returncode, proc.stderr) == (0, ""), action
        assert proc.stdout == ("" if action == "size" else run_cli("cache", action).stdout)
    assert run_cli("cache", "size").stdout.startswith("1 ")


def test_cache_commands_count_in_the_singular(tmp_path: Path, cache_dir: Path) -> None:
    """"1 entries", "pruned 1 unused entries": now "1 entry"."""
    from safelink import Cache

    Cache(cache_dir).admit(make_wheel(tmp_path, "single", "1.0", {"single.py": b""}))
    proc = run_cli("cache", "size")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith("1 entry, ")
    proc = run_cli("cache", "prune")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert lines(proc.stdout)[-1] == "pruned 1 unused entry and 0 stale temp files"
    assert run_cli("cache", "size", check=True).stdout.startswith("0 entries, 0 files, ")
    Cache(cache_dir).admit(make_wheel(tmp_path, "single", "1.0", {"single.py": b""}))
    proc = run_cli("cache", "clean")
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0,
        f"removed 1 entry from {cache_dir}\n",
        "",
    )
