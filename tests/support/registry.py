"""A real OCI registry for the distribution tests, and the things that go wrong with one.

* :class:`RegistryServer`: Debian's ``docker-registry`` (distribution 2.8) as a subprocess on
  ``127.0.0.1``, its storage in a temporary directory. It can be stopped, killed and started
  again on the same port and storage (the upload state survives, as the HMAC ``http.secret``
  is fixed), and a blob can be tampered with where the registry keeps it.
  :meth:`RegistryServer.interrupt_upload` kills the registry as soon as an upload has
  received bytes and starts it again a moment later.
* Three flavours from :func:`running_registry`: no auth, htpasswd basic auth (the bcrypt
  line made with the system's libcrypt, or ``htpasswd -B`` when that is installed), and
  token auth backed by :class:`TokenIssuer`, a small token server written for the tests: it
  checks the user's password and signs JWTs (RS256) with a key whose self-signed
  certificate the registry trusts through ``auth.token.rootcertbundle``.
* :class:`FaultProxy`: an HTTP/1.1 reverse proxy on ``127.0.0.1`` in front of a registry that
  can answer with a status (503, 429, ...) for the next N matching requests, cut a response
  after some bytes of its body, drop a request after some bytes of its body, or run a hook
  (say, restarting the registry) before forwarding. It records every request.

Nothing here talks to anything outside ``127.0.0.1``.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import datetime
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from alpenglow.http_client import RetryPolicy

__all__ = [
    "FAST_RETRY",
    "REGISTRY_BINARY",
    "SERVICE",
    "TOKEN_ISSUER",
    "Fault",
    "FaultProxy",
    "Outcomes",
    "ProxyRecord",
    "RegistryServer",
    "TokenIssuer",
    "TokenRequest",
    "bcrypt_hash",
    "free_port",
    "registry_problem",
    "running_registry",
]

REGISTRY_BINARY = "/usr/bin/docker-registry"
SERVICE = "alpenglow-test-registry"
TOKEN_ISSUER = "alpenglow-test-issuer"
_START_TIMEOUT = 20.0


def registry_problem() -> str | None:
    """Why the registry cannot run here, or None when it can."""
    if not os.access(REGISTRY_BINARY, os.X_OK):
        return f"{REGISTRY_BINARY} is not installed (bash scripts/setup installs docker-registry)"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------------------------
# htpasswd


def bcrypt_hash(password: str, cost: int = 5) -> str:
    """A bcrypt hash (``$2b$...``) of ``password``, as ``htpasswd -B`` writes it.

    Made by the C library's ``crypt_gensalt``/``crypt`` (libxcrypt, always present on
    Debian); ``htpasswd`` from apache2-utils is used when libxcrypt cannot be loaded.
    """
    name = ctypes.util.find_library("crypt")
    if name is not None:
        lib = ctypes.CDLL(name)
        lib.crypt_gensalt.restype = ctypes.c_char_p
        lib.crypt_gensalt.argtypes = [
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        lib.crypt.restype = ctypes.c_char_p
        lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        salt = lib.crypt_gensalt(b"$2b$", cost, None, 0)
        if salt:
            hashed = lib.crypt(password.encode(), salt)
            if hashed and hashed.startswith(b"$2"):
                return str(hashed.decode())
    if shutil.which("htpasswd") is not None:
        done = subprocess.run(
            ["htpasswd", "-nbB", "-C", str(cost), "user", password],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip().partition(":")[2]
    raise RuntimeError("no bcrypt available: neither libcrypt nor htpasswd")


# --------------------------------------------------------------------------------------------
# The token issuer


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """One request to the token server: who asked, for what, and what they got."""

    method: str
    account: str
    service: str
    scopes: tuple[str, ...]
    granted: tuple[str, ...]
    status: int


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """A token server on ``127.0.0.1``: ``GET /token?service=..&scope=..`` (HTTP basic
    credentials, or none for anonymous) and ``POST /token`` (OAuth2 ``grant_type=password``).

    ``users`` maps names to passwords; a known user is granted every action asked for,
    ``public`` repositories get ``pull`` for anyone, anything else nothing. Wrong
    credentials get a 401. ``cert_pem`` is the certificate the registry must trust.
    """

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        public: frozenset[str] = frozenset(),
        lifetime: int = 300,
    ) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.users = dict(users)
        self.public = public
        self.lifetime = lifetime
        self.requests: list[TokenRequest] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alpenglow test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    def sign(self, subject: str, access: list[dict[str, Any]], audience: str = SERVICE) -> str:
        """A JWT for ``subject`` granting ``access`` (registry's ``access`` claim)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": audience,
            "exp": now + self.lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def grant(self, account: str, scopes: tuple[str, ...]) -> list[dict[str, Any]]:
        """What ``account`` ("" for anonymous) gets of ``scopes``."""
        access: list[dict[str, Any]] = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if not kind or not name:
                continue
            wanted = [a for a in actions.split(",") if a]
            if account:
                allowed = wanted
            elif kind == "repository" and name in self.public:
                allowed = [a for a in wanted if a == "pull"]
            else:
                allowed = []
            if allowed:
                access.append({"type": kind, "name": name, "actions": allowed})
        return access

    def __enter__(self) -> TokenIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="alpenglow-test"')
                self.end_headers()
                self.wfile.write(data)

            def _answer(
                self,
                method: str,
                query: dict[str, list[str]],
                user: str | None,
                password: str | None,
            ) -> None:
                service = (query.get("service") or [""])[0]
                scopes = tuple(s for item in query.get("scope", []) for s in item.split(" ") if s)
                account = ""
                if user is not None:
                    if issuer.users.get(user) != password:
                        issuer.requests.append(TokenRequest(method, user, service, scopes, (), 401))
                        self._reply(
                            401,
                            {
                                "errors": [
                                    {"code": "UNAUTHORIZED", "message": "invalid credentials"}
                                ]
                            },
                        )
                        return
                    account = user
                access = issuer.grant(account, scopes)
                token = issuer.sign(account, access)
                issuer.requests.append(
                    TokenRequest(
                        method,
                        account,
                        service,
                        scopes,
                        tuple(f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access),
                        200,
                    )
                )
                issued = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                self._reply(
                    200,
                    {
                        "token": token,
                        "access_token": token,
                        "expires_in": issuer.lifetime,
                        "issued_at": issued,
                    },
                )

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/token":
                    self._reply(404, {"errors": [{"code": "NOT_FOUND"}]})
                    return
                user: str | None = None
                password: str | None = None
                header = self.headers.get("Authorization", "")
                if header.lower().startswith("basic "):
                    try:
                        decoded = base64.b64decode(header[6:].strip()).decode()
                    except (ValueError, UnicodeDecodeError):
                        decoded = ":"
                    user, _, password = decoded.partition(":")
                self._answer("GET", urllib.parse.parse_qs(url.query), user, password)

            def do_POST(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if url.path != "/token":
                    self._reply(404, {"errors": [{"code": "NOT_FOUND"}]})
                    return
                if (form.get("grant_type") or [""])[0] != "password":
                    self._reply(400, {"error": "unsupported_grant_type"})
                    return
                user = (form.get("username") or [""])[0]
                password = (form.get("password") or [""])[0]
                self._answer("POST", form, user, password)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="token-issuer", daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


# --------------------------------------------------------------------------------------------
# The registry process


@dataclass
class RegistryServer:
    """``docker-registry serve CONFIG`` on ``127.0.0.1:port`` with storage in ``root``.

    ``auth`` is ``none``, ``basic`` or ``token``; ``users`` the accounts of the last two.
    """

    workdir: Path
    auth: str = "none"
    users: dict[str, str] = field(default_factory=dict)
    issuer: TokenIssuer | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def __post_init__(self) -> None:
        if self.auth not in ("none", "basic", "token"):
            raise ValueError(f"unknown registry auth {self.auth!r}")
        if self.auth == "token" and self.issuer is None:
            raise ValueError("a token registry needs a TokenIssuer")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(exist_ok=True)
        if not self.port:
            self.port = free_port()

    # -- where things are ----------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The filesystem storage root (``docker/registry/v2/...`` below it)."""
        return self.workdir / "storage"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the registry part of a reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.yml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def blob_path(self, digest: str) -> Path:
        """Where the registry keeps the bytes of ``digest``."""
        algorithm, _, hexpart = digest.partition(":")
        return self.root / "docker/registry/v2/blobs" / algorithm / hexpart[:2] / hexpart / "data"

    def uploads_dir(self, repository: str) -> Path:
        return self.root / "docker/registry/v2/repositories" / repository / "_uploads"

    def tag_link(self, repository: str, tag: str) -> Path:
        return (
            self.root
            / "docker/registry/v2/repositories"
            / repository
            / "_manifests/tags"
            / tag
            / "current/link"
        )

    def tamper_blob(self, digest: str, offset: int = -1) -> None:
        """Flip the bits of one byte of the stored blob ``digest`` (the size stays)."""
        path = self.blob_path(digest)
        data = bytearray(path.read_bytes())
        data[offset] ^= 0xFF
        path.write_bytes(bytes(data))

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- configuration -------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
                "redirect": {"disable": True},
            },
            "http": {
                "addr": self.host,
                # fixed, so that upload state tokens stay valid across a restart
                "secret": "alpenglow-test-secret-0123456789",
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.auth == "basic":
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text(
                "".join(f"{user}:{bcrypt_hash(pw)}\n" for user, pw in self.users.items())
            )
            config["auth"] = {"htpasswd": {"realm": "alpenglow-test", "path": str(htpasswd)}}
        elif self.auth == "token":
            assert self.issuer is not None
            bundle = self.workdir / "token-ca.pem"
            bundle.write_bytes(self.issuer.cert_pem)
            config["auth"] = {
                "token": {
                    "realm": self.issuer.realm,
                    "service": SERVICE,
                    "issuer": TOKEN_ISSUER,
                    "rootcertbundle": str(bundle),
                }
            }
        return config

    # -- process control -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = _START_TIMEOUT) -> None:
        """Start the registry and wait until ``/v2/`` answers."""
        if self.running:
            return
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        log = open(self.log_path, "ab")  # noqa: SIM115 -- handed to the child, closed below
        try:
            self.process = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self._answers():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"docker-registry did not answer within {timeout} s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/v2/")
            status = conn.getresponse().status
        except OSError:
            return False
        finally:
            conn.close()
        return status in (200, 401)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the registry (SIGTERM, then SIGKILL)."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        self.process = None

    def kill(self) -> None:
        """Kill the registry at once (SIGKILL), as a crash would."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        self.process = None

    def restart(self, down_for: float = 0.0, *, hard: bool = False) -> None:
        """Stop (or kill), wait ``down_for`` seconds, and start again on the same port."""
        if hard:
            self.kill()
        else:
            self.stop()
        if down_for:
            time.sleep(down_for)
        self.restarts += 1
        self.start()

    @contextmanager
    def interrupt_upload(
        self, repository: str, *, min_bytes: int = 1, down_for: float = 1.0, timeout: float = 60
    ) -> Iterator[threading.Event]:
        """While the block runs, watch ``repository``'s uploads: once one has received
        ``min_bytes``, kill the registry, wait ``down_for`` seconds and start it again.

        Yields an event that is set once the registry is back; on leaving the block the
        watcher is stopped (and the registry is running again either way)."""
        fired = threading.Event()
        done = threading.Event()
        errors: list[BaseException] = []

        def received() -> int:
            total = 0
            with contextlib.suppress(OSError):
                for data in self.uploads_dir(repository).glob("*/data"):
                    with contextlib.suppress(OSError):
                        total = max(total, data.stat().st_size)
            return total

        def watch() -> None:
            deadline = time.monotonic() + timeout
            try:
                while not done.is_set() and time.monotonic() < deadline:
                    if received() >= min_bytes:
                        self.restart(down_for, hard=True)
                        fired.set()
                        return
                    time.sleep(0.002)
            except BaseException as exc:  # reported by the block's exit
                errors.append(exc)

        thread = threading.Thread(target=watch, name="registry-interrupt", daemon=True)
        thread.start()
        try:
            yield fired
        finally:
            done.set()
            thread.join(timeout=timeout)
            if not self.running:
                self.start()
        if errors:
            raise errors[0]


@contextmanager
def running_registry(
    workdir: Path,
    auth: str = "none",
    *,
    users: Mapping[str, str] | None = None,
    public: frozenset[str] = frozenset(),
) -> Iterator[RegistryServer]:
    """A started registry (and its token issuer for ``auth="token"``), stopped on exit."""
    problem = registry_problem()
    if problem is not None:
        raise RuntimeError(problem)
    accounts = dict(users or {})
    with contextlib.ExitStack() as stack:
        issuer = None
        if auth == "token":
            issuer = stack.enter_context(TokenIssuer(accounts, public=public))
        server = RegistryServer(workdir, auth=auth, users=accounts, issuer=issuer)
        stack.callback(server.stop)
        for attempt in range(3):
            try:
                server.start()
                break
            except RuntimeError:
                # another process may have taken the port between choosing and binding it
                if attempt == 2 or "address already in use" not in server.log_tail():
                    raise
                server.port = free_port()
        yield server


# --------------------------------------------------------------------------------------------
# The fault proxy


@dataclass
class Fault:
    """One rule of a :class:`FaultProxy`, applied to the next ``times`` matching requests.

    ``kind``: ``status`` (answer ``status`` without forwarding), ``cut_response`` (forward,
    then send the headers and only ``after`` bytes of the body and close), ``cut_request``
    (read ``after`` bytes of the request body and close without an answer), ``hook`` (run
    ``action`` then forward). ``method`` and ``path`` (a regular expression searched in the
    request path and query) select requests."""

    kind: str
    times: int = 1
    method: str | None = None
    path: str | None = None
    status: int = 503
    headers: tuple[tuple[str, str], ...] = ()
    after: int = 0
    action: Callable[[], None] | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.times <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.path is None or re.search(self.path, path) is not None


@dataclass(frozen=True, slots=True)
class ProxyRecord:
    """A request the proxy saw and what became of it (``forwarded``, ``status``, ``cut``...)."""

    method: str
    path: str
    outcome: str
    status: int


_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


class _Cut(Exception):
    """The connection is to be dropped without an answer."""


class FaultProxy:
    """A reverse proxy on ``127.0.0.1`` in front of ``upstream_port`` with :class:`Fault`
    rules. The ``Host`` header is passed on unchanged, so the registry's ``Location`` URLs
    point back at the proxy."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.faults: list[Fault] = []
        self.records: list[ProxyRecord] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- rules ---------------------------------------------------------------------------

    def fail(
        self,
        status: int = 503,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        retry_after: int | None = None,
    ) -> Fault:
        headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
        return self._add(Fault("status", times, method, path, status=status, headers=headers))

    def cut_response(
        self, after: int, *, times: int = 1, method: str | None = None, path: str | None = None
    ) -> Fault:
        return self._add(Fault("cut_response", times, method, path, after=after))

    def cut_request(
        self, after: int, *, times: int = 1, method: str | None = None, path: str | None = None
    ) -> Fault:
        return self._add(Fault("cut_request", times, method, path, after=after))

    def hook(
        self,
        action: Callable[[], None],
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        return self._add(Fault("hook", times, method, path, action=action))

    def _add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def _record(self, method: str, path: str, outcome: str, status: int = 0) -> None:
        with self._lock:
            self.records.append(ProxyRecord(method, path, outcome, status))

    def outcomes(self, outcome: str) -> list[ProxyRecord]:
        with self._lock:
            return [r for r in self.records if r.outcome == outcome]

    # -- serving -------------------------------------------------------------------------

    def __enter__(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _body(self, limit: int | None) -> bytes:
                """The request body (chunked or sized); with ``limit``, read that many
                bytes and raise :class:`_Cut`."""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts: list[bytes] = []
                    total = 0
                    while True:
                        line = self.rfile.readline(1024)
                        size = int(line.split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        chunk = self.rfile.read(size)
                        self.rfile.readline(16)
                        parts.append(chunk)
                        total += len(chunk)
                        if limit is not None and total >= limit:
                            raise _Cut
                    body = b"".join(parts)
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    if limit is not None and length > 0:
                        self.rfile.read(min(limit, length))
                        raise _Cut
                    body = self.rfile.read(length) if length else b""
                if limit is not None:
                    raise _Cut
                return body

            def _drop(self) -> None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            def _handle(self) -> None:
                method, path = self.command, self.path
                fault = proxy._take(method, path)
                try:
                    body = self._body(
                        fault.after if fault is not None and fault.kind == "cut_request" else None
                    )
                except _Cut:
                    proxy._record(method, path, "cut_request")
                    self._drop()
                    return
                if fault is not None and fault.kind == "status":
                    data = json.dumps(
                        {"errors": [{"code": "UNAVAILABLE", "message": "injected fault"}]}
                    ).encode()
                    proxy._record(method, path, "status", fault.status)  # before it is seen
                    self.send_response(fault.status)
                    for name, value in fault.headers:
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if method != "HEAD":
                        self.wfile.write(data)
                    return
                if fault is not None and fault.kind == "hook" and fault.action is not None:
                    fault.action()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if body or method in ("POST", "PUT", "PATCH"):
                    headers["Content-Length"] = str(len(body))
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    upstream.request(method, path, body=body, headers=headers)
                    response = upstream.getresponse()
                    payload = response.read()
                except OSError as exc:
                    upstream.close()
                    proxy._record(method, path, "bad_gateway", 502)
                    message = f"upstream unavailable: {exc}".encode()
                    self.send_response(502)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(message)))
                    self.end_headers()
                    if method != "HEAD":
                        self.wfile.write(message)
                    return
                upstream.close()
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                length = response.getheader("Content-Length")
                if method == "HEAD":
                    proxy._record(method, path, "forwarded", response.status)
                    self.send_header("Content-Length", length or "0")
                    self.end_headers()
                    return
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if fault is not None and fault.kind == "cut_response":
                    proxy._record(method, path, "cut_response", response.status)
                    self.wfile.write(payload[: fault.after])
                    self.wfile.flush()
                    self._drop()
                    return
                proxy._record(method, path, "forwarded", response.status)
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._handle()

            def do_HEAD(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_PUT(self) -> None:
                self._handle()

            def do_PATCH(self) -> None:
                self._handle()

            def do_DELETE(self) -> None:
                self._handle()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


# --------------------------------------------------------------------------------------------
# For the clients of these registries

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.05, max_backoff=0.2)
"""Retries that do not keep a test waiting."""


class Outcomes:
    """A transfer Progress that remembers each blob's outcome."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def started(self, digest: str, total: int) -> None:
        pass

    def advanced(self, digest: str, done: int) -> None:
        pass

    def finished(self, digest: str, outcome: str) -> None:
        self.outcomes[digest] = outcome
