"""Which wheel a distribution was installed from: one small file in its ``.dist-info``.

``sync`` leaves a distribution alone when it was installed from the very wheel
the lock selects. Telling that must cost one small read per distribution (never
its RECORD or its files), so every safelink install writes
``<name>-<version>.dist-info/safelink.json`` = ``{"sha256": ..., "wheel": ...}``.

Why a file of our own and not ``direct_url.json`` (which pip fills with
``archive_info.hashes`` for URL installs): PEP 610 reserves ``direct_url.json``
for direct references, and with it ``pip freeze`` prints ``name @ URL`` instead
of ``name==version``; pip and uv write none for index installs (uv keeps its
own ``uv_cache.json`` the same way). Other tools ignore unknown dist-info files,
and the file is listed in RECORD, so any installer's uninstall removes it with
the distribution: a distribution that pip or uv reinstalled has no marker, and
is reinstalled by ``sync`` rather than trusted.
"""

from __future__ import annotations

import os

from ._jsontext import dumps, loads

MARKER = "safelink.json"


def render(sha256: str, filename: str) -> bytes:
    return dumps({"sha256": sha256, "wheel": filename}, sort_keys=True).encode()


def installed_sha256(dist_info: str) -> str | None:
    """The sha256 of the wheel *dist_info* was installed from, if safelink installed it."""
    try:
        with open(os.path.join(dist_info, MARKER), "rb") as f:
            data = loads(f.read(4096))
    except (OSError, ValueError):
        return None
    sha = data.get("sha256") if isinstance(data, dict) else None
    if isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha):
        return sha
    return None
