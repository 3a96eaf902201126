"""A package index on 127.0.0.1, started by a test: real wheels, and the ways downloads fail.

``IndexServer(wheels)`` serves, from a thread of the test process:

* ``/simple/`` and ``/simple/<project>/``: a PEP 503 simple index of *wheels* (with
  ``#sha256=`` fragments), for lockers (``pip lock``, ``uv pip compile``);
* ``/files/<file>``: the wheel itself (with ``Content-Length``);
* ``/<fault>/<file>``: the same file, broken on purpose: ``corrupt`` (one byte flipped,
  same length), ``truncate`` (half the promised length, then the connection closes),
  ``gone`` (half, then the whole server stops), ``missing`` (404), ``flaky`` (503 the
  first time each file is asked for, then the file), ``longer`` (the file plus extra
  bytes, with no length announced);
* any absolute-URL request (``GET http://host/files/<file>``), as a proxy sees them.

Every request line is kept in :attr:`IndexServer.requests`.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def _project(filename: str) -> str:
    return re.sub(r"[-_.]+", "-", filename.split("-", 1)[0]).lower()


class IndexServer:
    def __init__(self, wheels: Iterable[Path]) -> None:
        self.files = {p.name: p for p in wheels}
        self.requests: list[str] = []
        self._asked: set[str] = set()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                outer.handle(self)

            def do_HEAD(self) -> None:  # lockers ask first (no ranges here: they get it all)
                path = self.path.rsplit("/", 1)[-1]
                self.send_response(200 if path in outer.files else 404)
                if path in outer.files:
                    self.send_header("Content-Length", str(outer.files[path].stat().st_size))
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> IndexServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()

    def file_url(self, filename: str, fault: str = "files") -> str:
        return f"{self.url}/{fault}/{filename}"

    # -- responses ----------------------------------------------------------------------
    def handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        path = urlsplit(h.path).path if h.path.startswith("http") else h.path
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["simple"]:
            return self._simple(h, parts[1:])
        if len(parts) != 2 or parts[1] not in self.files:
            return self._send(h, 404, b"not found")
        fault, name = parts
        data = self.files[name].read_bytes()
        if fault == "files":
            return self._send(h, 200, data)
        if fault == "missing":
            return self._send(h, 404, b"not found")
        if fault == "corrupt":
            flipped = bytes([data[len(data) // 2] ^ 0xFF])
            return self._send(h, 200, data[: len(data) // 2] + flipped + data[len(data) // 2 + 1 :])
        if fault == "flaky":
            if name not in self._asked:
                self._asked.add(name)
                return self._send(h, 503, b"try later")
            return self._send(h, 200, data)
        if fault == "longer":
            h.send_response(200)
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(data + b"\0" * 4096)
            h.close_connection = True
            return None
        if fault in ("truncate", "gone"):
            h.send_response(200)
            h.send_header("Content-Length", str(len(data)))
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            if fault == "gone":
                self.stop()  # the listening socket is closed before this connection ends
            return None
        return self._send(h, 404, b"not found")

    def _simple(self, h: http.server.BaseHTTPRequestHandler, rest: list[str]) -> None:
        if not rest:
            projects = sorted({_project(n) for n in self.files})
            links = "".join(f'<a href="/simple/{p}/">{p}</a>\n' for p in projects)
        else:
            want = rest[0]
            links = ""
            for name, p in sorted(self.files.items()):
                if _project(name) == want:
                    sha = hashlib.sha256(p.read_bytes()).hexdigest()
                    links += f'<a href="/files/{name}#sha256={sha}">{name}</a>\n'
            if not links:
                return self._send(h, 404, b"not found")
        body = f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode()
        return self._send(h, 200, body, "text/html")

    @staticmethod
    def _send(
        h: http.server.BaseHTTPRequestHandler,
        code: int,
        body: bytes,
        ctype: str = "application/octet-stream",
    ) -> None:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
