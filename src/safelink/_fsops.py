"""Small file operations every phase needs, in one place.

Why a module of its own: removing trees that safelink made read-only, and removing
paths quietly during rollback, must behave the same in the cache, the transaction,
uninstall and the cache commands. None of these follow a symlink to a directory.
"""

from __future__ import annotations

import os
import sys


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until every byte is written (short writes happen on full disks)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def rmtree(path: str) -> None:
    """Delete a tree even though the cache made its files read-only.

    A symlink is removed, never followed (``shutil.rmtree`` refuses to descend one).
    """
    import shutil

    def onerror(func: object, p: str, exc: object) -> None:
        try:
            os.chmod(os.path.dirname(p), 0o755)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o755)
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass

    if not os.path.lexists(path):
        return
    if os.path.islink(path):
        os.unlink(path)
        return
    try:
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=onerror)  # onerror= is deprecated from 3.12 on
        else:
            shutil.rmtree(path, onerror=onerror)
    except RecursionError:  # a tree deeper than the recursion limit (shutil recurses)
        _rmtree_deep(path)


def _rmtree_deep(path: str) -> None:
    """Remove a tree of any depth without recursion (symlinks are unlinked, never
    followed; read-only directories are opened up first)."""
    stack = [path]
    while stack:
        d = stack[-1]
        try:
            os.chmod(d, 0o755)
        except OSError:
            pass
        pushed = False
        try:
            with os.scandir(d) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                        pushed = True
                        break  # depth first: one child at a time keeps the stack small
                    try:
                        os.unlink(e.path)
                    except OSError:
                        pass
        except OSError:
            pass
        if not pushed:
            stack.pop()
            try:
                os.rmdir(d)
            except OSError:
                if d == path and os.path.lexists(d):
                    raise


def unlink_quiet(path: str) -> None:
    """Remove a file if it is there; directories and absent paths are left alone."""
    try:
        os.unlink(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        pass
    except OSError:
        # EROFS comes before ENOENT on a read-only mount; EPERM for a directory.
        if os.path.lexists(path) and not (os.path.isdir(path) and not os.path.islink(path)):
            raise


def rmdir_quiet(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def rmtree_quiet(path: str) -> None:
    """Remove a tree if it is there (a symlink is unlinked, never followed)."""
    if not os.path.lexists(path):
        return  # the usual case (nothing was stashed): no need to import shutil
    if os.path.islink(path):
        unlink_quiet(path)
        return
    import shutil

    shutil.rmtree(path, ignore_errors=True)
