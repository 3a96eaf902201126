"""Warnings from the library: standard ``logging`` for embedders, a plain line for the CLI.

Library code never prints. Warnings go to the ``safelink`` logger, so an
embedding tool routes them like any other; ``logging`` is imported only when
there is something to say (it is one of the costlier imports, and start-up
is part of every install). The CLI installs a *sink* that writes one line to
stderr instead.
"""

from __future__ import annotations

from collections.abc import Callable

sink: Callable[[str], None] | None = None
"""Set by the CLI; ``None`` means: use the ``safelink`` logger."""


def warn(message: str) -> None:
    if sink is not None:
        sink(message)
        return
    import logging

    logging.getLogger("safelink").warning(message)
