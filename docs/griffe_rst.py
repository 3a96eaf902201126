"""A griffe extension for the API reference: read safelink's docstrings as Markdown.

safelink's docstrings are written for ``help()`` and Sphinx-style readers: they
use roles such as :class:`Cache` and end a line with ``::`` before an indented
example. Markdown has no roles, so this turns each role into inline code and
each ``::`` into ``:`` (the indented block below it is already a code block).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|exc|data|obj|const):`~?\.?([^`]+)`")
_LITERAL = re.compile(r"::$", re.MULTILINE)


def to_markdown(text: str) -> str:
    return _LITERAL.sub(":", _ROLE.sub(r"`\1`", text))


class RstRolesToMarkdown(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
