"""HttpClient against real servers on 127.0.0.1: keep-alive reuse, streaming both ways,
chunked bodies, truncated bodies, timeouts, refused connections, redirects (credentials
kept or dropped), TLS (verified, unverified, SSL_CERT_FILE, plain HTTP spoken to), proxies
from the environment (plain requests and CONNECT tunnels, NO_PROXY) and threads."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import select
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from alpenglow import http_client
from alpenglow.errors import AlpenglowError
from alpenglow.http_client import (
    CertificateError,
    ConnectError,
    ConnectionBroken,
    ConnectionRefused,
    Headers,
    HttpClient,
    HttpError,
    InvalidURL,
    Timeout,
    TLSError,
    TooManyRedirects,
    TransportError,
)
from tests.support.serving import serving
from tests.support.tls import Certificate, self_signed

BIG = bytes(range(256)) * 1200  # 300 KiB


@dataclass
class Seen:
    method: str
    path: str
    connection: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    """A small HTTP/1.1 server; ``log`` has every request with the id of its connection."""

    url: str = ""
    log: list[Seen] = field(default_factory=list)
    connections: Iterator[int] = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.log if urlsplit(s.path).path == path]


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(h.rfile.readline().split(b";")[0], 16)
            if size == 0:
                h.rfile.readline()
                return bytes(out)
            out += h.rfile.read(size)
            h.rfile.readline()
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length else b""


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        serial = 0

        def setup(self) -> None:
            super().setup()
            self.serial = next(server.connections)  # one per connection (ids get reused)

        def log_message(self, format: str, *args: object) -> None:
            return

        def answer(self, status: int, body: bytes = b"", *headers: tuple[str, str]) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def route(self) -> None:
            body = _read_body(self)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            with server.lock:
                server.log.append(
                    Seen(
                        self.command,
                        self.path,
                        self.serial,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
            path = parts.path
            if path == "/hello":
                self.answer(200, b"hello", ("X-Multi", "a"), ("X-Multi", "b"), ("ETag", '"e"'))
            elif path == "/big":
                self.answer(200, BIG)
            elif path == "/echo":
                summary = {
                    "method": self.command,
                    "size": len(body),
                    "sha256": hashlib.sha256(body).hexdigest(),
                    "chunked": self.headers.get("Transfer-Encoding") == "chunked",
                    "length": self.headers.get("Content-Length"),
                    "type": self.headers.get("Content-Type"),
                }
                self.answer(200, json.dumps(summary).encode(), ("Content-Type", "text/json"))
            elif path == "/chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in (b"one,", b"two,", b"three"):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            elif path == "/short":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"x" * 10)
                self.wfile.flush()
                self.close_connection = True
            elif path == "/slow":
                time.sleep(float(query.get("s", "1")))
                self.answer(200, b"late")
            elif path == "/hangup":  # keep-alive promised, connection closed anyway
                self.answer(200, b"bye")
                self.wfile.flush()
                self.close_connection = True
            elif path == "/redirect":
                status = int(query.get("status", "302"))
                self.answer(status, b"moved", ("Location", query["to"]))
            elif path == "/loop":
                self.answer(302, b"", ("Location", "/loop"))
            elif path == "/status":
                self.answer(int(query["code"]), b"status body")
            else:
                self.answer(404, b"not here")

        def do_GET(self) -> None:
            self.route()

        def do_HEAD(self) -> None:
            self.route()

        def do_POST(self) -> None:
            self.route()

        def do_PUT(self) -> None:
            self.route()

        def do_PATCH(self) -> None:
            self.route()

        def do_DELETE(self) -> None:
            self.route()

    return Handler


class _Quiet(ThreadingHTTPServer):
    """Connections reset by the client (a response closed before its end) are expected."""

    def handle_error(self, request: object, client_address: object) -> None:
        return


def _start(server: Server, tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    httpd = _Quiet(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    port = httpd.server_address[1]
    server.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    with serving(httpd):
        yield server


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _start(Server())


@pytest.fixture
def other() -> Iterator[Server]:
    yield from _start(Server())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and a server context with it."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(certificate: Certificate) -> Iterator[Server]:
    yield from _start(Server(), certificate.context)


# -- basics --------------------------------------------------------------------------------


def test_exports() -> None:
    names = http_client.__all__
    assert len(set(names)) == len(names)
    assert all(hasattr(http_client, name) for name in names)
    assert http_client.__dir__() == names
    # the transport errors form one hierarchy that callers catch as a whole
    errors = ("ConnectError", "ConnectionRefused", "ConnectTimeout", "Timeout", "TLSError")
    for name in (*errors, "CertificateError", "ConnectionBroken"):
        assert issubclass(getattr(http_client, name), http_client.TransportError)


def test_error_hierarchy() -> None:
    assert issubclass(HttpError, AlpenglowError)
    assert issubclass(ConnectionRefused, ConnectError)
    assert issubclass(CertificateError, TLSError)
    assert issubclass(TLSError, ConnectError)
    assert issubclass(http_client.ConnectTimeout, Timeout)
    assert issubclass(http_client.ConnectTimeout, ConnectError)
    for cls in (ConnectError, Timeout, ConnectionBroken):
        assert issubclass(cls, TransportError)
    assert not issubclass(InvalidURL, TransportError)
    assert not issubclass(TooManyRedirects, TransportError)


def test_get_reads_the_body_and_headers_case_insensitively(server: Server) -> None:
    with HttpClient(headers={"User-Agent": "test/1"}) as client:
        response = client.request("GET", f"{server.url}/hello")
    assert response.status == 200
    assert response.reason == "OK"
    assert response.content == b"hello"
    assert response.url == f"{server.url}/hello"
    assert response.headers.get("etag") == '"e"'
    assert response.headers["ETAG"] == '"e"'
    assert "content-length" in response.headers
    assert response.headers.get_list("x-multi") == ["a", "b"]
    assert response.headers.get("X-Multi") == "a, b"
    assert response.headers.get("missing") is None
    assert response.headers.get("missing", "d") == "d"
    with pytest.raises(KeyError):
        response.headers["missing"]
    seen = server.seen("/hello")[0]
    assert seen.headers["user-agent"] == "test/1"
    assert seen.headers["accept-encoding"] == "identity"
    assert seen.headers["host"] == server.url.removeprefix("http://")


def test_headers_of_a_request_replace_the_defaults(server: Server) -> None:
    with HttpClient(headers={"User-Agent": "default"}) as client:
        client.request("GET", f"{server.url}/hello", headers={"user-agent": "mine"})
    assert server.seen("/hello")[0].headers["user-agent"] == "mine"


def test_headers_record() -> None:
    headers = Headers([("A", "1"), ("b", "2"), ("a", "3")])
    assert headers.items() == [("A", "1"), ("b", "2"), ("a", "3")]
    assert headers.get("a") == "1, 3"
    assert 5 not in headers
    assert repr(headers) == "Headers(['A', 'b', 'a'])"


def test_keep_alive_connections_are_reused(server: Server) -> None:
    with HttpClient() as client:
        for _ in range(3):
            assert client.request("GET", f"{server.url}/hello").content == b"hello"
        assert client.request("HEAD", f"{server.url}/big").content == b""
        assert client.request("GET", f"{server.url}/chunked").content == b"one,two,three"
        assert client.request("GET", f"{server.url}/hello").status == 200
    assert len({s.connection for s in server.log}) == 1


def test_a_response_closed_early_is_not_reused(server: Server) -> None:
    with HttpClient() as client:
        with client.request("GET", f"{server.url}/big", stream=True) as response:
            first = next(response.iter_bytes(1000))
            assert first == BIG[:1000]
        client.request("GET", f"{server.url}/hello")
    assert len({s.connection for s in server.log}) == 2


def test_a_streamed_response_read_to_its_end_is_reused(server: Server) -> None:
    with HttpClient() as client:
        with client.request("GET", f"{server.url}/big", stream=True) as response:
            chunks = list(response.iter_bytes(65536))
        assert b"".join(chunks) == BIG
        assert all(len(c) <= 65536 for c in chunks)
        client.request("GET", f"{server.url}/hello")
    assert len({s.connection for s in server.log}) == 1


def test_an_idle_connection_the_server_closed_is_not_used(server: Server) -> None:
    with HttpClient() as client:
        assert client.request("GET", f"{server.url}/hangup").content == b"bye"
        time.sleep(0.1)  # the server's FIN arrives
        assert client.request("GET", f"{server.url}/hello").content == b"hello"
    assert len({s.connection for s in server.log}) == 2


# -- request bodies ------------------------------------------------------------------------


def _echo(client: HttpClient, server: Server, **kwargs: object) -> dict[str, object]:
    response = client.request("PUT", f"{server.url}/echo", **kwargs)  # type: ignore[arg-type]
    assert response.status == 200
    answer: dict[str, object] = json.loads(response.content)
    return answer


def test_request_bodies_of_every_kind(server: Server) -> None:
    digest = hashlib.sha256(BIG).hexdigest()
    length = {"Content-Length": str(len(BIG))}
    with HttpClient() as client:
        as_bytes = _echo(client, server, body=BIG)
        as_file = _echo(client, server, body=io.BytesIO(BIG), headers=length)
        as_iter = _echo(client, server, body=(BIG[i : i + 7000] for i in range(0, len(BIG), 7000)))
        as_iter_sized = _echo(client, server, body=iter([BIG[:5], BIG[5:]]), headers=length)
        empty = _echo(client, server)
        view = _echo(client, server, body=memoryview(BIG))
    for answer in (as_bytes, as_file, as_iter, as_iter_sized, view):
        assert answer["size"] == len(BIG)
        assert answer["sha256"] == digest
    assert as_bytes["length"] == str(len(BIG))
    assert not as_bytes["chunked"]
    assert as_iter["chunked"]
    assert as_iter["length"] is None
    assert not as_iter_sized["chunked"]
    assert empty["length"] == "0"
    assert empty["size"] == 0
    assert len({s.connection for s in server.log}) == 1


# -- failures ------------------------------------------------------------------------------


def test_truncated_body_is_a_broken_connection(server: Server) -> None:
    url = f"{server.url}/short"
    with HttpClient() as client:
        with pytest.raises(ConnectionBroken) as info:
            client.request("GET", url)
        assert info.value.reason == "connection closed after 10 bytes, 90 more expected"
        assert str(info.value) == f"{url}: {info.value.reason}"
        assert info.value.url == url
        with client.request("GET", url, stream=True) as response, pytest.raises(ConnectionBroken):
            response.read()
        assert client.request("GET", f"{server.url}/hello").content == b"hello"


def test_read_timeout(server: Server) -> None:
    with HttpClient(timeout=0.2) as client, pytest.raises(Timeout) as info:
        client.request("GET", f"{server.url}/slow?s=1")
    assert not isinstance(info.value, ConnectError)
    assert info.value.reason == "timed out waiting for the answer"


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x?token=secret"
    with HttpClient() as client, pytest.raises(ConnectionRefused) as info:
        client.request("GET", url)
    assert str(info.value) == f"http://127.0.0.1:{port}/x: connection refused"
    assert "secret" not in str(info.value)


def test_cannot_resolve() -> None:
    with HttpClient() as client, pytest.raises(ConnectError) as info:
        client.request("GET", "http://name.invalid/x")
    assert not isinstance(info.value, ConnectionRefused)
    assert info.value.reason.startswith("cannot connect: ")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/x", "not an http or https URL"),
        ("http:///x", "no host in the URL"),
        ("http://127.0.0.1:http/x", "invalid URL"),
    ],
)
def test_invalid_urls(url: str, reason: str) -> None:
    with HttpClient() as client, pytest.raises(InvalidURL) as info:
        client.request("GET", url)
    assert info.value.reason.startswith(reason)


def test_forbidden_characters_are_refused_without_showing_secrets(server: Server) -> None:
    with HttpClient() as client:
        with pytest.raises(InvalidURL) as info:
            client.request("GET", f"{server.url}/a b")
        assert info.value.reason == "the URL holds characters HTTP does not allow"
        with pytest.raises(HttpError) as header:
            client.request(
                "GET", f"{server.url}/hello", headers={"Authorization": "Bearer s3cret\r\nX: y"}
            )
        assert not isinstance(header.value, TransportError)
        assert str(header.value) == (
            f"{server.url}/hello: the Authorization header holds characters HTTP does not allow"
        )
        assert client.request("GET", f"{server.url}/hello").content == b"hello"
    assert [s.path for s in server.log] == ["/hello"]


def test_statuses_are_returned_not_raised(server: Server) -> None:
    with HttpClient() as client:
        response = client.request("GET", f"{server.url}/status?code=503")
    assert response.status == 503
    assert response.reason == "Service Unavailable"
    assert response.content == b"status body"
    assert repr(response) == f"<Response 503 GET {server.url}/status>"


# -- redirects -----------------------------------------------------------------------------


def test_redirects_are_followed_only_when_asked(server: Server) -> None:
    url = f"{server.url}/redirect?to=/hello"
    with HttpClient() as client:
        assert client.request("GET", url).status == 302
        response = client.request("GET", url, follow_redirects=True)
    assert response.status == 200
    assert response.content == b"hello"
    assert response.url == f"{server.url}/hello"


def test_authorization_stays_on_the_origin(server: Server, other: Server) -> None:
    auth = {"Authorization": "Bearer secret"}
    with HttpClient() as client:
        client.request(
            "GET", f"{server.url}/redirect?to=/hello", headers=auth, follow_redirects=True
        )
        client.request(
            "GET",
            f"{server.url}/redirect?to={other.url}/hello",
            headers=auth,
            follow_redirects=True,
        )
    assert [s.headers.get("authorization") for s in server.seen("/hello")] == ["Bearer secret"]
    assert [s.headers.get("authorization") for s in other.seen("/hello")] == [None]
    assert other.seen("/hello")[0].headers["host"] == other.url.removeprefix("http://")


def test_see_other_turns_a_post_into_a_get(server: Server) -> None:
    with HttpClient() as client:
        response = client.request(
            "POST",
            f"{server.url}/redirect?status=303&to=/echo",
            body=b"form",
            headers={"Content-Type": "x/y"},
            follow_redirects=True,
        )
    answer = json.loads(response.content)
    assert answer["method"] == "GET"
    assert answer["size"] == 0
    assert answer["type"] is None


def test_temporary_redirect_sends_the_body_again(server: Server) -> None:
    with HttpClient() as client:
        response = client.request(
            "PUT",
            f"{server.url}/redirect?status=307&to=/echo",
            body=b"x" * 10,
            follow_redirects=True,
        )
        streamed = client.request(
            "PUT",
            f"{server.url}/redirect?status=307&to=/echo",
            body=iter([b"x" * 10]),
            follow_redirects=True,
        )
    assert json.loads(response.content)["size"] == 10
    assert streamed.status == 307  # a stream cannot be replayed: left to the caller


def test_too_many_redirects(server: Server) -> None:
    with HttpClient() as client, pytest.raises(TooManyRedirects) as info:
        client.request("GET", f"{server.url}/loop", follow_redirects=True, max_redirects=3)
    assert info.value.reason == "more than 3 redirects"
    assert len(server.seen("/loop")) == 4


# -- TLS -----------------------------------------------------------------------------------


def test_unverifiable_certificate_is_refused(tls_server: Server) -> None:
    with HttpClient() as client, pytest.raises(CertificateError) as info:
        client.request("GET", f"{tls_server.url}/hello")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert tls_server.log == []


def test_unverified_hosts_and_verify_false(tls_server: Server) -> None:
    host = tls_server.url.removeprefix("https://")
    with HttpClient(unverified_hosts=[host]) as client:
        assert client.request("GET", f"{tls_server.url}/hello").content == b"hello"
        assert client.request("GET", f"{tls_server.url}/hello").content == b"hello"
    with HttpClient(unverified_hosts=["127.0.0.1"]) as client:
        assert client.request("GET", f"{tls_server.url}/hello").content == b"hello"
    with HttpClient(unverified_hosts=["127.0.0.1:1"]) as client, pytest.raises(CertificateError):
        client.request("GET", f"{tls_server.url}/hello")
    with HttpClient(verify=False) as client:
        assert client.request("GET", f"{tls_server.url}/hello").content == b"hello"
    assert len(tls_server.seen("/hello")) == 4


def test_ssl_cert_file_is_honoured(
    tls_server: Server, certificate: Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.pem))
    with HttpClient() as client:
        assert client.request("GET", f"{tls_server.url}/hello").content == b"hello"


def test_tls_to_a_plain_http_server_is_a_tls_error(server: Server) -> None:
    url = server.url.replace("http://", "https://") + "/hello"
    with HttpClient(verify=False) as client, pytest.raises(TLSError) as info:
        client.request("GET", url)
    assert not isinstance(info.value, CertificateError)
    assert info.value.reason.startswith("TLS handshake failed")


# -- proxies -------------------------------------------------------------------------------


@dataclass
class Proxy:
    url: str = ""
    log: list[tuple[str, str, str | None]] = field(default_factory=list)


def _relay(a: socket.socket, b: socket.socket) -> None:
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], 5)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (b if sock is a else a).sendall(data)


def _proxy_handler(proxy: Proxy) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline().decode("latin-1")
            method, target, _ = line.split(" ", 2)
            lines = []
            while True:
                header = self.rfile.readline()
                if header in (b"\r\n", b"\n", b""):
                    break
                lines.append(header.decode("latin-1").rstrip("\r\n"))
            named = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
            proxy.log.append((method, target, named.get("proxy-authorization")))
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection((host, int(port)))
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                with upstream:
                    _relay(self.connection, upstream)
                return
            parts = urlsplit(target)
            assert parts.hostname is not None
            upstream = socket.create_connection((parts.hostname, parts.port or 80))
            kept = [h for h in lines if not h.lower().startswith(("proxy-", "connection"))]
            head = [f"{method} {parts.path or '/'} HTTP/1.1", *kept, "Connection: close", "", ""]
            with upstream:
                upstream.sendall("\r\n".join(head).encode("latin-1"))
                while data := upstream.recv(65536):
                    self.wfile.write(data)
            self.wfile.flush()

    return Handler


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    found = Proxy()
    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _proxy_handler(found))
    httpd.daemon_threads = True
    found.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    with serving(httpd, "test-proxy"):
        yield found


def test_http_proxy_from_the_environment(
    server: Server, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = proxy.url.replace("http://", "http://user:p%40ss@")
    monkeypatch.setenv("HTTP_PROXY", credentials)
    with HttpClient() as client:
        assert client.request("GET", f"{server.url}/hello").content == b"hello"
    import base64

    expected = "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert proxy.log == [("GET", f"{server.url}/hello", expected)]
    assert server.seen("/hello")[0].headers.get("proxy-authorization") is None
    with HttpClient(trust_env=False) as client:
        client.request("GET", f"{server.url}/hello")
    assert len(proxy.log) == 1


def test_https_goes_through_a_connect_tunnel(
    tls_server: Server, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", proxy.url)
    host = tls_server.url.removeprefix("https://")
    with HttpClient(unverified_hosts=[host]) as client:
        assert client.request("GET", f"{tls_server.url}/hello").content == b"hello"
        assert client.request("GET", f"{tls_server.url}/hello").content == b"hello"
    assert proxy.log == [("CONNECT", host, None)]  # one tunnel, kept alive


def test_no_proxy_and_all_proxy(
    server: Server, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with HttpClient() as client:
        assert client.request("GET", f"{server.url}/hello").content == b"hello"
    assert proxy.log == []
    monkeypatch.delenv("NO_PROXY")
    with HttpClient() as client:
        assert client.request("GET", f"{server.url}/hello").content == b"hello"
    assert [entry[0] for entry in proxy.log] == ["GET"]


def test_only_http_proxies(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "socks5://127.0.0.1:1")
    with HttpClient() as client, pytest.raises(InvalidURL, match="only http:// proxies"):
        client.request("GET", f"{server.url}/hello")


def test_proxy_that_is_not_there(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    with HttpClient() as client, pytest.raises(ConnectionRefused) as info:
        client.request("GET", f"{server.url}/hello")
    assert info.value.reason == f"connection refused (through the proxy 127.0.0.1:{port})"


# -- threads -------------------------------------------------------------------------------


def test_parallel_requests_share_the_pool(server: Server) -> None:
    errors: list[BaseException] = []
    results: list[bytes] = []
    lock = threading.Lock()

    with HttpClient(max_idle=4) as client:

        def work() -> None:
            try:
                for _ in range(5):
                    data = client.request("GET", f"{server.url}/big").content
                    with lock:
                        results.append(data)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert results == [BIG] * 40
        connections = len({s.connection for s in server.log})
        assert 1 <= connections <= 40
        assert sum(len(idle) for idle in client._idle.values()) <= 4
