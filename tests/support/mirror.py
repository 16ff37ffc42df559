"""A real HTTP server on 127.0.0.1 serving a directory laid out as an Alpine mirror.

:func:`serve` runs a :class:`http.server.ThreadingHTTPServer` on an ephemeral port in a
daemon thread and shuts it down on exit. It answers ``GET``/``HEAD`` with ``Content-Length``
and ``Last-Modified`` (and ``If-Modified-Since`` with 304, as ``SimpleHTTPRequestHandler``
does) and records each request path, so tests can count what a client fetched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.serving import serving

__all__ = ["Mirror", "serve"]


@dataclass(frozen=True, slots=True)
class Mirror:
    """A running server: ``url`` is ``http://127.0.0.1:PORT`` (no slash at the end)."""

    url: str
    root: Path
    requests: list[str] = field(default_factory=list, hash=False, compare=False)

    def repository(self, branch: str, repo: str = "main") -> str:
        """The repository URL as apk takes it: ``URL/alpine/BRANCH/REPO``."""
        return f"{self.url}/alpine/{branch}/{repo}"


class _Handler(SimpleHTTPRequestHandler):
    requests: list[str]

    def __init__(self, *args: Any, requests: list[str], **kwargs: Any) -> None:
        self.requests = requests
        super().__init__(*args, **kwargs)

    def send_head(self) -> Any:
        self.requests.append(self.path)
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


@contextmanager
def serve(root: Path) -> Iterator[Mirror]:
    """Serve ``root`` on ``127.0.0.1`` (port chosen by the kernel) until the block ends."""
    requests: list[str] = []
    handler = partial(_Handler, directory=str(root), requests=requests)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    with serving(server, "test-mirror"):
        host, port = server.server_address[:2]
        yield Mirror(f"http://{host!s}:{port}", root, requests)
