"""The RECORD format (PEP 376 / the wheel spec): digests, rows, parsing and rendering.

One home for the format, so that admission, metadata writing, verify and uninstall
encode and check hashes the same way.
"""

from __future__ import annotations

import base64
import hashlib


def encode_digest(raw: bytes) -> str:
    """RECORD's digest text: urlsafe base64 without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def hash_of(data: bytes) -> str:
    """The ``sha256=...`` RECORD hash of *data*."""
    return "sha256=" + encode_digest(hashlib.sha256(data).digest())
