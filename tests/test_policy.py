"""The link policy as tables: the ladder, errno classification, texts, and the decision.

Fast unit tests of :mod:`safelink._policy` (no install runs except the two
journeys at the end, which prove that ``install()`` and the installer
destination take the same decision when the probe cannot use the cache).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

import safelink
from conftest import make_venv, site_packages, tree
from safelink import _policy as policy
from safelink._policy import Action, Fallback
from safelink.destination import LinkingDestination, install_with_installer
from safelink.strategies import get
from safelink.strategies.probe import forget
from test_crash import demo_wheel

S, F, D, R, X = Action.SWITCH, Action.FRESH_INODE, Action.DISPLACE, Action.REFUSE, Action.RAISE

# (starting mode, errno, fallback allowed) -> (action, the mode tried next)
LADDER_TABLE = [
    # clone: a filesystem without reflinks, or two filesystems, moves on to hardlink.
    ("clone", errno.EOPNOTSUPP, True, S, "hardlink"),
    ("clone", errno.ENOTTY, True, S, "hardlink"),
    ("clone", errno.EXDEV, True, S, "hardlink"),
    ("clone", errno.EINVAL, True, S, "hardlink"),
    ("clone", errno.ENOSYS, True, S, "hardlink"),
    ("clone", errno.EPERM, True, S, "hardlink"),
    ("clone", errno.EMLINK, True, S, "hardlink"),  # own inode: EMLINK is not about the cache
    ("clone", errno.EXDEV, False, R, "clone"),  # an explicit mode without --allow-fallback
    ("clone", errno.EEXIST, True, D, "clone"),
    ("clone", errno.EEXIST, False, D, "clone"),
    ("clone", errno.ENOSPC, True, X, "clone"),
    ("clone", errno.EACCES, True, X, "clone"),
    ("clone", errno.EIO, True, X, "clone"),
    # hardlink: EMLINK gives the cached file a fresh inode, whatever the fallback rule.
    ("hardlink", errno.EMLINK, True, F, "hardlink"),
    ("hardlink", errno.EMLINK, False, F, "hardlink"),
    ("hardlink", errno.EXDEV, True, S, "copy"),
    ("hardlink", errno.EPERM, True, S, "copy"),  # fs.protected_hardlinks
    ("hardlink", errno.EPERM, False, R, "hardlink"),
    ("hardlink", errno.EEXIST, True, D, "hardlink"),
    ("hardlink", errno.EACCES, True, X, "hardlink"),
    ("hardlink", errno.ENOSPC, True, X, "hardlink"),
    # copy is the last rung: nothing to switch to.
    ("copy", errno.EXDEV, True, R, "copy"),
    ("copy", errno.EINVAL, True, R, "copy"),
    ("copy", errno.EEXIST, True, D, "copy"),
    ("copy", errno.ENOSPC, True, X, "copy"),
    ("copy", errno.EACCES, True, X, "copy"),
    # symlink falls back to copy, never to a hardlink.
    ("symlink", errno.EPERM, True, S, "copy"),
    ("symlink", errno.EOPNOTSUPP, True, S, "copy"),
    ("symlink", errno.EMLINK, True, S, "copy"),
    ("symlink", errno.EEXIST, True, D, "symlink"),
]


@pytest.mark.parametrize(("start", "code", "allowed", "action", "then"), LADDER_TABLE)
def test_ladder(start: str, code: int, allowed: bool, action: Action, then: str) -> None:
    chain = policy.ladder(start)
    got, level = policy.step(
        chain, 0, code, shares_inode=get(start).shares_inode, allow_fallback=allowed
    )
    assert (got, chain[level]) == (action, then)


def test_ladders() -> None:
    assert policy.ladder("clone") == ("clone", "hardlink", "copy")
    assert policy.ladder("hardlink") == ("hardlink", "copy")
    assert policy.ladder("copy") == ("copy",)
    assert policy.ladder("symlink") == ("symlink", "copy")
    assert policy.ladder("a-plugin") == ("a-plugin", "copy")
    # --guard strict where hardlinks are not allowed: clone goes straight to copy.
    assert policy.ladder("clone", hardlink_allowed=False) == ("clone", "copy")
    assert policy.ladder("hardlink", hardlink_allowed=False) == ("copy",)


@pytest.mark.parametrize("start", ["clone", "hardlink", "copy", "symlink"])
def test_every_ladder_ends_at_copy_then_refuses(start: str) -> None:
    """Failing with EXDEV again and again walks the whole ladder once, then refuses."""
    chain, level, seen = policy.ladder(start), 0, [start]
    while True:
        mode = chain[level]
        action, level = policy.step(
            chain, level, errno.EXDEV, shares_inode=get(mode).shares_inode, allow_fallback=True
        )
        if action is Action.REFUSE:
            break
        assert action is Action.SWITCH
        seen.append(chain[level])
    assert seen == list(chain) and seen[-1] == "copy"


CLASSIFY_TABLE = [
    # errno, shares_inode -> action
    (errno.EEXIST, False, D),
    (errno.EEXIST, True, D),
    (errno.EMLINK, True, F),
    (errno.EMLINK, False, S),
    *[(c, shares, S) for c in sorted(policy.STRUCTURAL - {errno.EMLINK}) for shares in (0, 1)],
    (errno.ENOSPC, True, X),
    (errno.EACCES, False, X),
    (errno.EROFS, False, X),
    (errno.ENOENT, False, X),
    (errno.EIO, True, X),
    (None, False, X),
]


@pytest.mark.parametrize(("code", "shares", "action"), CLASSIFY_TABLE)
def test_errno_classification(code: int | None, shares: bool, action: Action) -> None:
    assert policy.classify(code, shares_inode=bool(shares)) is action


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (errno.EXDEV, "e.g. SAFELINK_CACHE_DIR=<dir on the target's filesystem>"),
        (errno.EOPNOTSUPP, "this filesystem cannot do it"),
        (errno.ENOTTY, "this filesystem cannot do it"),
        (errno.EINVAL, "this filesystem cannot do it"),
        (errno.EPERM, "the kernel refused (fs.protected_hardlinks or permissions)"),
        (errno.EIO, ""),
    ],
)
def test_fallback_hint_follows_the_errno_not_the_text(code: int, hint: str) -> None:
    """The hint is chosen by the number; the text in ``error`` is only shown."""
    fb = Fallback("clone", "hardlink", "whatever the text says", "/t/x.py", code)
    line = policy.fallback_warning(fb, "/the/cache")
    head = "clone failed (whatever the text says) at /t/x.py; fell back to hardlink"
    assert line.startswith(head) and line.endswith(hint)
    assert (line == head) == (hint == "")
    assert "\n" not in line


def test_link_failed_carries_the_errno() -> None:
    exc = OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP), "x")
    err = policy.link_failed("clone", exc, "/t/x.py")
    assert err.errno == errno.EOPNOTSUPP
    assert err.message.startswith("link mode 'clone' failed for /t/x.py: ")
    assert err.message.endswith(os.strerror(errno.EOPNOTSUPP))
    assert err.hint == "use --link-mode copy or --allow-fallback"
    eperm = policy.link_failed("hardlink", OSError(errno.EPERM, "Operation not permitted"), "/p")
    assert eperm.errno == errno.EPERM and "--link-mode copy" in str(eperm)
    assert "hardlink" in (eperm.hint or "")
    assert policy.link_failed("copy", OSError(errno.EINVAL, "Invalid"), "/p").hint is None


def test_link_failed_keeps_its_errno_across_the_worker_process() -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    from safelink._workers import run_forked

    def child() -> None:
        raise policy.link_failed("clone", OSError(errno.EXDEV, "Invalid cross-device link"), "/p")

    with pytest.raises(safelink.LinkFailed) as info:
        run_forked(child, lambda: None)
    assert info.value.errno == errno.EXDEV


# -- the decision when the probe cannot use the cache -------------------------------------------


def unusable_probe(cache: Path) -> None:
    """Break the probe's scratch directory: a file where it should be (the cache stays usable
    for reading, as a read-only or another user's cache is)."""
    scratch = cache / "v1" / "tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(cache / "v1" / "probes", ignore_errors=True)
    scratch.write_text("not a directory\n")
    forget()


def test_decide_without_a_probe(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "v1").mkdir(parents=True)
    unusable_probe(cache)
    target = tmp_path / "site"
    target.mkdir()
    root, base = str(cache / "v1"), str(cache)

    def decide(mode: str, fallback: bool | None = None) -> policy.Decision:
        return policy.decide(
            root,
            base,
            str(target),
            mode,
            guard=safelink.Guard.CHECK,
            owner_root=str(target),
            allow_fallback=fallback,
        )

    auto = decide("auto")
    assert (auto.mode, auto.chain, auto.allow_fallback) == (
        "clone",
        ("clone", "hardlink", "copy"),
        True,
    )
    assert auto.warnings == [
        f"cannot probe link modes in the cache at {base} (EEXIST: File exists); "
        "trying each mode on the first file"
    ]
    explicit = decide("hardlink")
    assert (explicit.mode, explicit.chain, explicit.allow_fallback, explicit.warnings) == (
        "hardlink",
        ("hardlink", "copy"),
        False,
        [],
    )
    with pytest.raises(safelink.SafelinkError, match="unknown link mode 'nope'"):
        decide("nope")


def test_installer_destination_and_install_agree_when_the_probe_cannot_use_the_cache(
    tmp_path: Path, cache_dir: Path
) -> None:
    """Regression: the destination raised a raw ``FileExistsError`` where ``install()``
    degraded gracefully. Both now take the same decision, warn the same line and
    install the same files."""
    whl = demo_wheel(tmp_path)
    safelink.Cache(cache_dir).admit(whl)
    unusable_probe(cache_dir)
    cache_before = tree(cache_dir)

    by_api = make_venv(tmp_path / "api")
    report = safelink.install([whl], by_api, cache=cache_dir)

    unusable_probe(cache_dir)
    by_installer = make_venv(tmp_path / "installer")
    dest = LinkingDestination(whl, by_installer, cache=cache_dir)
    install_with_installer(dest)

    assert dest.link_mode == report.link_mode
    expected = (
        f"cannot probe link modes in the cache at {cache_dir} (EEXIST: File exists); "
        "trying each mode on the first file"
    )
    assert dest.warnings[0] == expected and report.warnings[0] == expected
    # The same ladder walked on the first file, for the same reason (by number).
    switches = [(f.from_mode, f.to_mode, f.errno) for f in report.fallbacks]
    assert [(f.from_mode, f.to_mode, f.errno) for f in dest.fallbacks] == switches
    # Nothing in the cache changed (the entry, the file in the probe's way); only the
    # registry of environments and remembered tags and launchers were added.
    after = tree(cache_dir)
    assert {k: after.get(k) for k in cache_before} == cache_before
    added = {k.split("/")[1] for k in set(after) - set(cache_before)}
    assert added <= {"envs", "launchers", "tags"}
    for venv in (by_api, by_installer):
        assert (site_packages(venv) / "demo" / "cli.py").read_bytes().startswith(b"def main")
    api_files = {k for k in tree(site_packages(by_api)) if "__pycache__" not in k}
    inst_files = {k for k in tree(site_packages(by_installer)) if "__pycache__" not in k}
    assert inst_files - {"demo-1.0.dist-info/INSTALLER"} <= api_files
