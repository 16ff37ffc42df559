"""A real HTTP server on 127.0.0.1 for the fetch, cache and ``apk update`` tests.

:class:`FlakyServer` serves a dict of paths to bytes with ``ETag``/``Last-Modified`` and
answers conditional requests with ``304``. Each path can be given a queue of misbehaviours
that are used up one request at a time (:meth:`FlakyServer.misbehave`): an HTTP status (with
headers), a connection dropped half way through the body, or wrong bytes. Every request is
logged. :func:`build_mirror` lays out a signed Alpine-style repository made with alpenglow's
own :func:`~alpenglow.apk.package.write_package` and
:func:`~alpenglow.apk.index.write_index_archive`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from alpenglow.apk.archive import DIRECTORY, TarEntry
from alpenglow.apk.dependency import parse_list
from alpenglow.apk.index import Package, write_index_archive
from alpenglow.apk.package import PackageInfo, read_package, write_package
from alpenglow.apk.signing import Signer, generate_keypair

__all__ = [
    "Behaviour",
    "FlakyServer",
    "MirrorRepo",
    "build_mirror",
    "publish",
    "serve",
    "write_keys",
]

LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"


@dataclass(frozen=True)
class Behaviour:
    """One scripted answer: ``status`` (with ``headers``), ``drop`` (send half the body,
    then close), or ``body`` (send these bytes instead of the file)."""

    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    drop: bool = False
    body: bytes | None = None


@dataclass
class FlakyServer:
    """Files by path, misbehaviour queues by path, and a request log."""

    files: dict[str, bytes] = field(default_factory=dict)
    queues: dict[str, list[Behaviour]] = field(default_factory=dict)
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def misbehave(self, path: str, *behaviours: Behaviour) -> None:
        with self.lock:
            self.queues.setdefault(path.lstrip("/"), []).extend(behaviours)

    def requests(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [h for p, h in self.log if p == path.lstrip("/")]

    def next_behaviour(self, path: str) -> Behaviour | None:
        with self.lock:
            queue = self.queues.get(path)
            return queue.pop(0) if queue else None


def _handler(server: FlakyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].lstrip("/")
            with server.lock:
                server.log.append((path, {k.lower(): v for k, v in self.headers.items()}))
            if server.delay:
                time.sleep(server.delay)
            behaviour = server.next_behaviour(path)
            if behaviour is not None and behaviour.status is not None:
                body = f"status {behaviour.status}\n".encode()
                self.send_response(behaviour.status)
                for key, value in behaviour.headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            data = server.files.get(path)
            if data is None:
                self.send_error(404, "Not Found")
                return
            etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
            if behaviour is None and (
                self.headers.get("If-None-Match") == etag
                or (
                    self.headers.get("If-None-Match") is None
                    and self.headers.get("If-Modified-Since") == LAST_MODIFIED
                )
            ):
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            if behaviour is not None and behaviour.body is not None:
                data = behaviour.body
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", LAST_MODIFIED)
            self.end_headers()
            if behaviour is not None and behaviour.drop:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(data)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early are part of the tests


def serve(server: FlakyServer) -> Iterator[FlakyServer]:
    """Run ``server`` on 127.0.0.1 (a free port) for the life of the generator."""
    httpd = _Server(("127.0.0.1", 0), _handler(server))
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@dataclass(frozen=True)
class MirrorRepo:
    """A signed repository laid out as ``alpine/v3.99/main/<arch>/...`` in ``files``."""

    base: str
    """Path of the repository under the server root (``alpine/v3.99/main``)."""
    arch: str
    key_name: str
    public_key: bytes
    signer: Signer
    packages: dict[str, bytes]
    """File name (``NAME-VERSION.apk``) to bytes."""
    records: tuple[Package, ...]
    index: bytes
    description: str


def _package(name: str, version: str, arch: str, depends: str, signer: Signer) -> bytes:
    info = PackageInfo(
        Package(
            name,
            version,
            arch=arch,
            description=f"the {name} package",
            url="https://example.com/",
            license="MIT",
            origin=name,
            build_time=1_700_000_000,
            depends=parse_list(depends) if depends else (),
        ),
        packager="Tester <t@example.com>",
    )
    body = f"{name} {version}\n".encode() * 40
    entries = [
        TarEntry("usr", type=DIRECTORY, mode=0o755, uname="root", gname="root"),
        TarEntry("usr/share", type=DIRECTORY, mode=0o755, uname="root", gname="root"),
        TarEntry(f"usr/share/{name}.txt", data=body, mode=0o644, uname="root", gname="root"),
    ]
    return write_package(entries, info, signer, mtime=1_700_000_000)


def build_mirror(
    *,
    arch: str = "x86_64",
    description: str = "v3.99.0-1-gtest",
    key_bits: int = 1024,
    keypair: tuple[bytes, bytes] | None = None,
) -> MirrorRepo:
    """A small signed repository: ``app`` depends on ``lib``; ``lib`` has no deps."""
    private, public = keypair or generate_keypair(key_bits)
    key_name = "test-65000000.rsa.pub"
    signer = Signer(key_name, private)
    wanted = [("lib", "1.0-r0", ""), ("app", "2.0-r0", "lib"), ("tool", "0.5-r1", "")]
    packages: dict[str, bytes] = {}
    records: list[Package] = []
    for name, version, depends in wanted:
        data = _package(name, version, arch, depends, signer)
        packages[f"{name}-{version}.apk"] = data
        records.append(read_package(data, None, source=name, allow_untrusted=True).package)
    index = write_index_archive(records, description, signer, mtime=1_700_000_000)
    return MirrorRepo(
        base="alpine/v3.99/main",
        arch=arch,
        key_name=key_name,
        public_key=public,
        signer=signer,
        packages=packages,
        records=tuple(records),
        index=index,
        description=description,
    )


def publish(server: FlakyServer, repo: MirrorRepo) -> None:
    """Put the repository's files on the server."""
    prefix = f"{repo.base}/{repo.arch}"
    server.files[f"{prefix}/APKINDEX.tar.gz"] = repo.index
    for name, data in repo.packages.items():
        server.files[f"{prefix}/{name}"] = data


def write_keys(directory: Path, repo: MirrorRepo) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / repo.key_name).write_bytes(repo.public_key)
    return directory
