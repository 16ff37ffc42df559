"""Running a test server (``socketserver``/``http.server``) in a thread of the test process."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["serving"]


@contextmanager
def serving(server: socketserver.BaseServer, name: str = "test-server") -> Iterator[None]:
    """Serve ``server`` from a daemon thread until the block ends; then stop it, close its
    socket and wait for the thread (at most 10 s)."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
