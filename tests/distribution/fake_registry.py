"""A small but real registry for the client's unit tests: ``http.server`` on 127.0.0.1.

It speaks enough of the distribution API (blobs with ``Range``, monolithic and chunked
uploads with ``Content-Range``/416 and status queries, mounts, manifests, tags with ``Link``
pages, deletes) for :class:`alpenglow.distribution.client.RegistryClient`, and can be told
to misbehave: :meth:`FakeRegistry.add_rule` answers the next matching requests with a status
and headers, closes the connection without an answer (after taking some bytes of an upload
chunk), cuts a blob download short, or serves wrong bytes. Auth: none, ``basic`` or
``bearer`` (a token endpoint on the same server grants what a user asks for; anonymous users
get ``pull`` on ``public/`` repositories). Blob downloads can be redirected to a second
server (``storage``), which records the ``Authorization`` headers it sees. With
``referrers_api`` it answers a manifest with a ``subject`` as a registry with the OCI 1.1
referrers API does: with an ``OCI-Subject`` header.

Every request is recorded in :attr:`FakeRegistry.log` (method, path, headers).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.support.tls import self_signed

__all__ = ["FakeRegistry", "Logged", "Rule"]

_MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")
_BLOB = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_UPLOADS = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/$")
_UPLOAD = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<uuid>[0-9a-f]+)$")
_TAGS = re.compile(r"^/v2/(?P<repo>.+)/tags/list$")


@dataclass
class Rule:
    """Misbehaviour for the next ``times`` requests whose method is ``method`` (any when
    None) and whose path matches the regular expression ``path``.

    ``status``: answer with it (and ``headers``, and a JSON ``errors`` body with ``code``).
    ``drop``: close the connection without answering, after taking ``keep`` bytes of an
    upload chunk into the upload. ``cut``: send only the first ``cut`` bytes of a blob.
    ``corrupt``: serve the blob with its last byte flipped. ``lose_answer``: do what was
    asked, then close the connection instead of answering.
    """

    method: str | None = None
    path: str = ""
    times: int = 1
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    code: str = ""
    drop: bool = False
    keep: int = 0
    cut: int | None = None
    corrupt: bool = False
    lose_answer: bool = False
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.hits >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        return re.search(self.path, path) is not None


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _Upload:
    repo: str
    data: bytearray = field(default_factory=bytearray)


class _Storage:
    """A second server that blob downloads are redirected to."""

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry
        self.authorizations: list[str | None] = []
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        storage = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                storage.authorizations.append(self.headers.get("Authorization"))
                digest = self.path.rsplit("/", 1)[-1]
                data = storage.registry.blobs.get(digest)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _tls_context() -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return self_signed(Path(tmp)).context


class FakeRegistry:
    """Start with ``with FakeRegistry(...) as registry:``; ``registry.host`` is
    ``127.0.0.1:PORT``."""

    def __init__(
        self,
        *,
        auth: str = "none",
        users: dict[str, str] | None = None,
        page_size: int = 0,
        delete: bool = True,
        redirect_blobs: bool = False,
        send_digest: bool = True,
        token_lifetime: int = 300,
        www_authenticate: str | None = None,
        tls: bool = False,
        referrers_api: bool = False,
    ) -> None:
        self.auth = auth
        self.referrers_api = referrers_api
        self.users = users or {}
        self.page_size = page_size
        self.delete_enabled = delete
        self.redirect_blobs = redirect_blobs
        self.send_digest = send_digest
        self.token_lifetime = token_lifetime
        self.www_authenticate = www_authenticate
        self.tls = tls
        self.blobs: dict[str, bytes] = {}
        self.repo_blobs: dict[str, set[str]] = {}
        self.manifests: dict[str, dict[str, tuple[bytes, str]]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.uploads: dict[str, _Upload] = {}
        self.tokens: dict[str, tuple[str, frozenset[str], float]] = {}
        self.token_requests: list[dict[str, Any]] = []
        self.rules: list[Rule] = []
        self.log: list[Logged] = []
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None
        self.storage = _Storage(self)
        self.storage_url = ""
        self.host = ""

    # -- control ---------------------------------------------------------------------------

    def add_rule(self, rule: Rule) -> Rule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def requests(self, method: str | None = None, path: str = "") -> list[Logged]:
        with self.lock:
            return [
                r
                for r in self.log
                if (method is None or r.method == method) and re.search(path, r.path)
            ]

    def put_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with self.lock:
            self.blobs[digest] = data
            self.repo_blobs.setdefault(repo, set()).add(digest)
        return digest

    def __enter__(self) -> FakeRegistry:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                registry._handle(self)

            def do_HEAD(self) -> None:
                registry._handle(self)

            def do_POST(self) -> None:
                registry._handle(self)

            def do_PUT(self) -> None:
                registry._handle(self)

            def do_PATCH(self) -> None:
                registry._handle(self)

            def do_DELETE(self) -> None:
                registry._handle(self)

        if self.redirect_blobs:
            self.storage_url = self.storage.start()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        if self.tls:
            self.server.socket = _tls_context().wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.storage.stop()

    # -- plumbing --------------------------------------------------------------------------

    def _rule(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        method = h.command
        parts = urlsplit(h.path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self.lock:
            self.log.append(Logged(method, h.path, {k.lower(): v for k, v in h.headers.items()}))
        if path == "/token":
            self._token(h, parts.query)
            return
        rule = self._rule(method, path)
        if rule is not None and rule.status is not None:
            self._drain(h)
            body = {"errors": [{"code": rule.code, "message": "injected"}]} if rule.code else {}
            self._reply(h, rule.status, body, rule.headers)
            return
        if rule is not None and rule.drop:
            if method == "PATCH":
                self._patch(h, path, keep_only=rule.keep)
            h.close_connection = True
            h.wfile.flush()
            h.connection.shutdown(2)
            return
        if not self._authorized(h, path, method):
            return
        if rule is not None and rule.lose_answer:
            h.lose_answer = True  # type: ignore[attr-defined]
        self._route(h, method, path, query, rule)

    def _drain(self, h: BaseHTTPRequestHandler) -> bytes:
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    def _reply(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> None:
        data = raw if raw is not None else (json.dumps(body).encode() if body else b"")
        if getattr(h, "lose_answer", False):
            h.close_connection = True
            h.connection.shutdown(2)
            return
        h.send_response(status)
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        if not any(k.lower() == "content-length" for k in headers or {}):
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _error(self, h: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
        self._reply(h, status, {"errors": [{"code": code, "message": message}]})

    # -- auth ------------------------------------------------------------------------------

    def _needed(self, path: str, method: str) -> str | None:
        """The scope a request needs (None for /v2/)."""
        for pattern in (_MANIFEST, _BLOB, _UPLOADS, _UPLOAD, _TAGS):
            match = pattern.match(path)
            if match:
                repo = match.group("repo")
                if method == "DELETE" and pattern in (_MANIFEST, _BLOB):
                    return f"repository:{repo}:delete"
                action = (
                    "pull"
                    if method in ("GET", "HEAD")
                    and pattern
                    not in (
                        _UPLOADS,
                        _UPLOAD,
                    )
                    else "push"
                )
                return f"repository:{repo}:{action}"
        return None

    def _authorized(self, h: BaseHTTPRequestHandler, path: str, method: str) -> bool:
        if self.auth == "none":
            return True
        header = h.headers.get("Authorization", "")
        needed = self._needed(path, method)
        if self.auth == "basic":
            if header.startswith("Basic "):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                if self.users.get(user) == password:
                    return True
            self._drain(h)
            challenge = self.www_authenticate or 'Basic realm="fake"'
            self._reply_401(h, challenge)
            return False
        granted: frozenset[str] = frozenset()
        if header.startswith("Bearer "):
            with self.lock:
                entry = self.tokens.get(header[7:])
            if entry is not None and entry[2] > time.time():
                granted = entry[1]
        if header.startswith("Bearer ") and (needed is None or needed in granted):
            return True
        self._drain(h)
        scope = ""
        if needed is not None:
            kind, _, rest = needed.partition(":")
            name, _, action = rest.rpartition(":")
            wanted = "pull,push" if action == "push" else action
            scope = f',scope="{kind}:{name}:{wanted}"'
        realm = f"{'https' if self.tls else 'http'}://{self.host}/token"
        challenge = self.www_authenticate or f'Bearer realm="{realm}",service="fake"{scope}'
        self._reply_401(h, challenge)
        return False

    def _reply_401(self, h: BaseHTTPRequestHandler, challenge: str) -> None:
        self._reply(
            h,
            401,
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
            {"WWW-Authenticate": challenge},
        )

    def _token(self, h: BaseHTTPRequestHandler, query_text: str) -> None:
        body = self._drain(h)
        query = parse_qs(query_text)
        if h.command == "POST":
            query = parse_qs(body.decode())
        account = ""
        header = h.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if self.users.get(user) != password:
                self.token_requests.append({"account": user, "status": 401})
                self._error(h, 401, "UNAUTHORIZED", "bad credentials")
                return
            account = user
        if h.command == "POST":
            refresh = query.get("refresh_token", [""])[0]
            if refresh not in self.users.values():
                self._error(h, 401, "UNAUTHORIZED", "bad refresh token")
                return
            account = "refresh"
        scopes = [s for value in query.get("scope", []) for s in value.split(" ")]
        granted: set[str] = set()
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            for action in actions.split(","):
                if account or (name.startswith("public/") and action == "pull"):
                    granted.add(f"{kind}:{name}:{action}")
        token = secrets.token_hex(16)
        with self.lock:
            self.tokens[token] = (account, frozenset(granted), time.time() + self.token_lifetime)
            self.token_requests.append(
                {
                    "method": h.command,
                    "account": account,
                    "scopes": scopes,
                    "service": query.get("service", [""])[0],
                    "status": 200,
                }
            )
        key = "access_token" if h.command == "POST" else "token"
        self._reply(h, 200, {key: token, "expires_in": self.token_lifetime})

    # -- API -------------------------------------------------------------------------------

    def _route(
        self,
        h: BaseHTTPRequestHandler,
        method: str,
        path: str,
        query: dict[str, str],
        rule: Rule | None,
    ) -> None:
        if path == "/v2/":
            self._reply(h, 200, {}, {"Docker-Distribution-API-Version": "registry/2.0"})
            return
        if match := _BLOB.match(path):
            self._blob(h, method, match.group("repo"), match.group("digest"), rule)
        elif match := _UPLOADS.match(path):
            self._start_upload(h, match.group("repo"), query)
        elif match := _UPLOAD.match(path):
            if method == "PATCH":
                self._patch(h, path)
            elif method == "PUT":
                self._finish_upload(h, match.group("repo"), match.group("uuid"), query)
            elif method == "GET":
                self._upload_status(h, match.group("repo"), match.group("uuid"))
            elif method == "DELETE":
                with self.lock:
                    self.uploads.pop(match.group("uuid"), None)
                self._reply(h, 204)
        elif match := _MANIFEST.match(path):
            self._manifest(h, method, match.group("repo"), match.group("ref"))
        elif match := _TAGS.match(path):
            self._tags(h, match.group("repo"), query)
        else:
            self._error(h, 404, "NOT_FOUND", "no such endpoint")

    def _blob(
        self, h: BaseHTTPRequestHandler, method: str, repo: str, digest: str, rule: Rule | None
    ) -> None:
        with self.lock:
            present = digest in self.repo_blobs.get(repo, set())
            data = self.blobs.get(digest, b"")
        if method == "DELETE":
            if not self.delete_enabled:
                self._error(h, 405, "UNSUPPORTED", "The operation is unsupported.")
                return
            with self.lock:
                self.repo_blobs.get(repo, set()).discard(digest)
            self._reply(h, 202 if present else 404)
            return
        if not present:
            self._error(h, 404, "BLOB_UNKNOWN", "blob unknown to registry")
            return
        if self.redirect_blobs and method == "GET":
            self._reply(h, 307, None, {"Location": f"{self.storage_url}/storage/{digest}"})
            return
        if rule is not None and rule.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        start = 0
        status = 200
        headers = {"Docker-Content-Digest": digest, "Accept-Ranges": "bytes"}
        range_header = h.headers.get("Range", "")
        if range_header.startswith("bytes=") and range_header.endswith("-"):
            start = int(range_header[6:-1])
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        headers["Content-Length"] = str(len(body))
        if rule is not None and rule.cut is not None and method == "GET":
            h.send_response(status)
            for key, value in headers.items():
                h.send_header(key, value)
            h.end_headers()
            h.wfile.write(body[: rule.cut])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)
            return
        self._reply(h, status, None, headers, raw=body)

    def _start_upload(self, h: BaseHTTPRequestHandler, repo: str, query: dict[str, str]) -> None:
        self._drain(h)
        mount, source = query.get("mount"), query.get("from")
        if mount and source:
            with self.lock:
                if mount in self.repo_blobs.get(source, set()):
                    self.repo_blobs.setdefault(repo, set()).add(mount)
                    self._reply(h, 201, None, {"Location": f"/v2/{repo}/blobs/{mount}"})
                    return
        uuid = secrets.token_hex(8)
        with self.lock:
            self.uploads[uuid] = _Upload(repo)
        self._reply(h, 202, None, {"Location": f"/v2/{repo}/blobs/uploads/{uuid}", "Range": "0-0"})

    def _patch(self, h: BaseHTTPRequestHandler, path: str, keep_only: int | None = None) -> None:
        match = _UPLOAD.match(path)
        assert match is not None
        repo, uuid = match.group("repo"), match.group("uuid")
        with self.lock:
            upload = self.uploads.get(uuid)
        length = int(h.headers.get("Content-Length") or 0)
        content_range = h.headers.get("Content-Range", "")
        if upload is None:
            self._drain(h)
            self._error(h, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
            return
        if keep_only is not None:
            data = h.rfile.read(min(keep_only, length))
            with self.lock:
                upload.data.extend(data)
            return
        if content_range:
            start = int(content_range.partition("-")[0])
            if start != len(upload.data):
                self._drain(h)
                self._reply(h, 416, None, {"Range": f"0-{max(len(upload.data) - 1, 0)}"})
                return
        data = h.rfile.read(length)
        with self.lock:
            upload.data.extend(data)
            size = len(upload.data)
        self._reply(
            h,
            202,
            None,
            {"Location": f"/v2/{repo}/blobs/uploads/{uuid}", "Range": f"0-{max(size - 1, 0)}"},
        )

    def _upload_status(self, h: BaseHTTPRequestHandler, repo: str, uuid: str) -> None:
        with self.lock:
            upload = self.uploads.get(uuid)
        if upload is None:
            self._error(h, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
            return
        size = len(upload.data)
        self._reply(
            h,
            204,
            None,
            {"Location": f"/v2/{repo}/blobs/uploads/{uuid}", "Range": f"0-{max(size - 1, 0)}"},
        )

    def _finish_upload(
        self, h: BaseHTTPRequestHandler, repo: str, uuid: str, query: dict[str, str]
    ) -> None:
        body = self._drain(h)
        with self.lock:
            upload = self.uploads.get(uuid)
        if upload is None:
            self._error(h, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
            return
        data = bytes(upload.data) + body
        digest = query.get("digest", "")
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            with self.lock:
                self.uploads.pop(uuid, None)
            self._error(h, 400, "DIGEST_INVALID", "provided digest did not match uploaded content")
            return
        with self.lock:
            self.uploads.pop(uuid, None)
            self.blobs[digest] = data
            self.repo_blobs.setdefault(repo, set()).add(digest)
        self._reply(
            h,
            201,
            None,
            {"Location": f"/v2/{repo}/blobs/{digest}", "Docker-Content-Digest": digest},
        )

    def _manifest(self, h: BaseHTTPRequestHandler, method: str, repo: str, ref: str) -> None:
        if method == "PUT":
            data = self._drain(h)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            media_type = h.headers.get("Content-Type", "")
            if ref.startswith("sha256:") and ref != digest:
                self._error(h, 400, "DIGEST_INVALID", "digest mismatch")
                return
            with self.lock:
                self.manifests.setdefault(repo, {})[digest] = (data, media_type)
                if not ref.startswith("sha256:"):
                    self.tags.setdefault(repo, {})[ref] = digest
            headers = {"Docker-Content-Digest": digest}
            subject = json.loads(data).get("subject") if self.referrers_api else None
            if isinstance(subject, dict):
                headers["OCI-Subject"] = str(subject.get("digest"))
            self._reply(h, 201, None, headers)
            return
        with self.lock:
            digest = ref if ref.startswith("sha256:") else self.tags.get(repo, {}).get(ref, "")
            found = self.manifests.get(repo, {}).get(digest)
        if method == "DELETE":
            if not self.delete_enabled:
                self._error(h, 405, "UNSUPPORTED", "The operation is unsupported.")
                return
            if found is None:
                self._error(h, 404, "MANIFEST_UNKNOWN", "manifest unknown")
                return
            with self.lock:
                del self.manifests[repo][digest]
                for tag in [t for t, d in self.tags.get(repo, {}).items() if d == digest]:
                    del self.tags[repo][tag]
            self._reply(h, 202)
            return
        if found is None:
            self._error(h, 404, "MANIFEST_UNKNOWN", "manifest unknown")
            return
        data, media_type = found
        headers = {"Content-Type": media_type}
        if self.send_digest:
            headers["Docker-Content-Digest"] = digest
        self._reply(h, 200, None, headers, raw=data)

    def _tags(self, h: BaseHTTPRequestHandler, repo: str, query: dict[str, str]) -> None:
        with self.lock:
            if repo not in self.tags and repo not in self.manifests:
                self._error(h, 404, "NAME_UNKNOWN", "repository name not known to registry")
                return
            tags = sorted(self.tags.get(repo, {}))
        last = query.get("last", "")
        page_size = int(query.get("n") or self.page_size or 0)
        tags = [t for t in tags if t > last] if last else tags
        headers: dict[str, str] = {}
        if page_size and len(tags) > page_size:
            tags = tags[:page_size]
            following = urlencode({"n": page_size, "last": tags[-1]})
            headers["Link"] = f'</v2/{repo}/tags/list?{following}>; rel="next"'
        self._reply(h, 200, {"name": repo, "tags": tags}, headers)
