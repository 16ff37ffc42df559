"""A client of the OCI distribution API (``/v2/``) for one registry. [edge]

:class:`RegistryClient` speaks to one registry over :class:`alpenglow.http_client.HttpClient`
(made when the first request is). It is thread-safe: blob transfers run in parallel on one
connection pool.

* **Transport.** HTTPS with verified TLS, except for loopback registries (``localhost``,
  ``127.0.0.0/8``, ``::1``), which are spoken to over plain HTTP as docker does, and
  registries named in ``insecure``, for which HTTPS is tried without verifying the
  certificate and plain HTTP is used when the registry does not speak TLS.
* **Auth.** Anonymous until the registry answers ``401``; then its ``WWW-Authenticate``
  challenge decides (see :mod:`alpenglow.distribution.auth`). Every request states the
  scopes it needs (``pull``; ``pull,push`` to upload; ``pull`` on the source repository of a
  mount), so one token is fetched per set of scopes and reused.
* **Retries.** ``408``, ``429``, ``5xx``, timeouts and connection errors are retried with
  exponential backoff and jitter (:class:`alpenglow.http_client.RetryPolicy`; ``Retry-After``
  is honoured). Other failures raise :class:`RegistryError` at once: one line naming the
  registry, the repository, what was asked, the HTTP status and the registry's error codes
  and messages (``MANIFEST_UNKNOWN: manifest unknown``).
* **Redirects** are followed for reads (registries send blobs from storage elsewhere); the
  ``Authorization`` header never goes to another host.
* **Verification.** Blobs are hashed as they arrive and checked against their digest and
  size before anything is handed on; manifests against the digest asked for, else the
  registry's ``Docker-Content-Digest``. A mismatch is :class:`DigestMismatch` and nothing
  is kept.
* **Uploads** are monolithic (``POST`` then ``PUT ?digest=``) or chunked (``PATCH`` with
  ``Content-Range``); a chunked upload interrupted by a dropped connection asks the upload
  URL how much arrived (``GET`` -> ``Range``) and goes on from there, and a ``416`` does the
  same; a lost upload session starts over.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar, overload
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from alpenglow.distribution.auth import (
    Authenticator,
    Credential,
    CredentialSource,
    Scope,
)
from alpenglow.distribution.reference import (
    DOCKER_HUB,
    DOCKER_HUB_API,
    Reference,
    host_of,
    is_insecure,
    is_insecure_default,
    normalize_registry,
)
from alpenglow.errors import DigestMismatch, RegistryError
from alpenglow.http_client import (
    RETRY_STATUSES,
    CertificateError,
    ConnectError,
    ConnectionBroken,
    ConnectionRefused,
    HttpClient,
    HttpError,
    Response,
    RetryPolicy,
    Timeout,
    TLSError,
    TransportError,
    retry_after_seconds,
)
from alpenglow.oci.image import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
)

__all__ = [
    "MANIFEST_ACCEPT",
    "MAX_MANIFEST_SIZE",
    "RawManifest",
    "RegistryClient",
    "StoredManifest",
]


def __dir__() -> list[str]:
    return __all__


T = TypeVar("T")

MANIFEST_ACCEPT = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
"""The media types asked for when reading a manifest (all of OCI and Docker v2 schema 2)."""

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
"""Manifests larger than this are refused (as containerd does)."""

_READ_CHUNK = 1 << 20
_MAX_REDIRECTS = 5
_MAX_TAG_PAGES = 10_000
_OCTET = "application/octet-stream"
_DIGEST_ALGORITHMS = ("sha256", "sha384", "sha512")

Progress = Callable[[int], None]
"""Told the number of bytes of one blob transferred so far (it may go down when a
transfer restarts)."""


class RawManifest(NamedTuple):
    """A manifest as the registry sent it: the exact bytes, the media type and the digest."""

    data: bytes
    media_type: str
    digest: str

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.data))


class StoredManifest(NamedTuple):
    """A manifest the registry accepted: its digest, and the ``OCI-Subject`` header of the
    answer ("" when the registry sent none: it did not process the ``subject``, if any)."""

    digest: str
    subject: str


class _Retryable(Exception):
    """An attempt failed in a way worth retrying."""

    def __init__(self, reason: str, status: int | None = None, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.wait = wait


class _SessionLost(Exception):
    """An upload session is gone (or broken); the upload must start over."""

    def __init__(self, reason: str, status: int | None = None, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.wait = wait


def _pull(repository: str) -> frozenset[Scope]:
    return Scope.repository(repository, "pull")


def _push(repository: str) -> frozenset[Scope]:
    return Scope.repository(repository, "pull", "push")


def _network_reason(exc: TransportError) -> str:
    if isinstance(exc, Timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefused):
        return "connection refused"
    if isinstance(exc, ConnectError):
        return "cannot connect"
    if isinstance(exc, ConnectionBroken):
        return "connection broken"
    return type(exc).__name__


def _temporary_file() -> IO[bytes]:
    import tempfile  # not at start-up: it imports shutil and random

    return tempfile.TemporaryFile(prefix="alpenglow-blob-")


def _digest_algorithm(digest: str) -> str:
    algorithm = digest.partition(":")[0]
    if algorithm not in _DIGEST_ALGORITHMS:
        raise RegistryError(f"unsupported digest algorithm in {digest!r}")
    return algorithm


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class RegistryClient:
    """The distribution API of one registry.

    ``registry`` is a registry name (``docker.io``, ``ghcr.io``, ``localhost:5000``) or a
    :class:`Reference`. ``credentials`` is a :class:`Credential`, a source of them
    (:func:`alpenglow.distribution.auth.default_credentials`) or None (anonymous).
    ``insecure`` names registries that may be spoken to over plain HTTP or unverified TLS.
    ``http`` is the HTTP session to use (default: one made on the first request, with
    ``timeout``, ``max_connections`` idle connections kept and, for an insecure registry,
    unverified TLS for the registry's host only); ``sleep`` and ``rand`` replace
    :func:`time.sleep` and :func:`random.random` (tests).
    """

    def __init__(
        self,
        registry: str | Reference,
        *,
        credentials: Credential | CredentialSource | None = None,
        insecure: Collection[str] = (),
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        http: HttpClient | None = None,
        max_connections: int = 16,
        user_agent: str = "alpenglow",
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] | None = None,
    ) -> None:
        name = registry.registry if isinstance(registry, Reference) else registry
        self.registry = normalize_registry(name)
        self.host = DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry
        self.insecure = is_insecure(self.registry, insecure)
        listed = {normalize_registry(name) for name in insecure}
        self._listed = self.registry in listed or host_of(self.registry) in listed
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.auth = Authenticator(self.registry, credentials, insecure=self.insecure)
        self._given_http = http
        self._max_connections = max(1, max_connections)
        self._user_agent = user_agent
        self._sleep = sleep
        self._rand = rand  # None: random.random, imported when a retry first waits
        self._client: HttpClient | None = http
        self._base: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RegistryClient({self.registry!r})"

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (the client may be used again); a given ``http``
        session is left to its owner."""
        with self._lock:
            client, self._client = self._client, self._given_http
        if client is not None and client is not self._given_http:
            client.close()

    # -- plumbing --------------------------------------------------------------------------

    def _http(self) -> HttpClient:
        with self._lock:
            if self._client is None:
                # TLS contexts (loading the CA bundle costs 50-100 ms) are made when the
                # first https URL is asked for, not for a plain-HTTP registry; only the
                # registry itself goes unverified when insecure: token services and the
                # storage it redirects to keep their certificates checked
                self._client = HttpClient(
                    timeout=self.timeout,
                    connect_timeout=min(self.timeout, 15.0),
                    unverified_hosts=(self.host,) if self.insecure else (),
                    headers={"User-Agent": self._user_agent},
                    max_idle=self._max_connections,
                )
            return self._client

    def base_url(self) -> str:
        """``https://HOST``, or ``http://HOST`` for a loopback registry; for a registry named
        in ``insecure`` (a loopback one too) HTTPS is tried first and plain HTTP used when
        the registry does not speak TLS (found out once)."""
        if self._base is not None:
            return self._base
        if is_insecure_default(self.registry) and not self._listed:
            base = f"http://{self.host}"
        elif not self.insecure:
            base = f"https://{self.host}"
        else:
            base = self._probe_scheme()
        self._base = base
        return base

    def _probe_scheme(self) -> str:
        https, http = f"https://{self.host}", f"http://{self.host}"
        try:
            self._http().request("GET", f"{https}/v2/")
        except Timeout:
            return https
        except (TLSError, ConnectionRefused, ConnectionBroken):
            return http  # no TLS there (or nothing on the https port)
        except HttpError:
            return https
        return https

    def _url(self, path: str) -> str:
        return f"{self.base_url()}{path}"

    def _where(self, repository: str) -> str:
        return f"{self.registry}/{repository}" if repository else self.registry

    def _error(
        self,
        response: Response,
        repository: str,
        what: str,
        *,
        cls: type[RegistryError] = RegistryError,
    ) -> RegistryError:
        """A one-line error from a failed response (its body is read if needed)."""
        status = response.status
        codes: list[str] = []
        details: list[str] = []
        with contextlib.suppress(Exception):
            body = response.read()[:65536]
            obj = json.loads(body)
            for item in obj.get("errors", [])[:5]:
                code = str(item.get("code", "")).strip()
                message = " ".join(str(item.get("message", "")).split())[:200]
                if code:
                    codes.append(code)
                details.append(f"{code}: {message}" if code and message else code or message)
        text = f"{self._where(repository)}: {what}: HTTP {status}"
        if response.reason:
            text += f" {response.reason}"
        if details:
            text += f" ({'; '.join(d for d in details if d)})"
        hint = None
        if status == 401:
            hint = f"log in with `alpenglow login {self.registry}`, or check the credentials"
        elif status == 403:
            hint = "the credentials have no permission for this"
        return cls(
            text,
            hint,
            registry=self.registry,
            repository=repository,
            status=status,
            codes=tuple(codes),
        )

    def _auth_send(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
    ) -> Response:
        """A request to a token service: retried, redirects followed, body read."""

        target = url
        if params:
            target = f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"
        sent = dict(headers or {})
        body = None
        if data is not None:
            body = urlencode(data).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"

        def attempt() -> Response:
            try:
                response = self._http().request(
                    method,
                    target,
                    headers=sent,
                    body=body,
                    follow_redirects=True,  # Authorization is dropped on leaving the origin
                )
            except ConnectError as exc:
                self._check_certificate(exc, url)
                raise _Retryable(f"token service: {_network_reason(exc)}") from None
            except TransportError as exc:
                raise _Retryable(f"token service: {_network_reason(exc)}") from None
            except HttpError as exc:
                raise RegistryError(
                    f"{self.registry}: token service: {exc.reason}", registry=self.registry
                ) from None
            if response.status in RETRY_STATUSES or response.status >= 500:
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                raise _Retryable(f"token service: HTTP {response.status}", wait=wait)
            return response

        return self._with_retries(attempt, "", "authentication")

    def _with_retries(self, attempt: Callable[[], T], repository: str, what: str) -> T:
        tries = max(1, self.retry.attempts)
        for number in range(1, tries + 1):
            try:
                return attempt()
            except _Retryable as failure:
                if number == tries:
                    after = f" (after {number} attempts)" if number > 1 else ""
                    raise RegistryError(
                        f"{self._where(repository)}: {what}: {failure.reason}{after}",
                        registry=self.registry,
                        repository=repository,
                        status=failure.status,
                    ) from None
                self._backoff(number, failure.wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, wait: float | None) -> None:
        if self._rand is None:
            import random

            self._rand = random.random
        delay = self.retry.delay(attempt, self._rand())
        if wait is not None:
            delay = min(wait, self.retry.max_retry_after)
        if delay > 0:
            self._sleep(delay)

    def _send_once(
        self,
        method: str,
        url: str,
        scopes: frozenset[Scope],
        *,
        headers: dict[str, str] | None = None,
        content: bytes | Callable[[], Iterator[bytes]] | None = None,
        stream: bool = False,
        follow: bool = False,
    ) -> Response:
        """One request with authorization (answering one challenge) and, for reads,
        redirects. Transport errors and retryable statuses raise :class:`_Retryable`; any
        other response is returned (streaming when ``stream``; the caller closes it)."""
        client = self._http()
        registry_host = urlsplit(self.base_url()).netloc
        challenged = False
        authorization = self.auth.authorization(scopes, self._auth_send)
        current = url
        redirects = 0
        while True:
            request_headers = dict(headers or {})
            same_host = urlsplit(current).netloc == registry_host
            if authorization and same_host:
                request_headers["Authorization"] = authorization
            body = content() if callable(content) else content
            try:
                response = client.request(
                    method, current, headers=request_headers, body=body, stream=True
                )
            except ConnectError as exc:
                self._check_certificate(exc, current)
                raise _Retryable(_network_reason(exc)) from None
            except TransportError as exc:
                raise _Retryable(_network_reason(exc)) from None
            except HttpError as exc:
                raise RegistryError(
                    f"{self.registry}: {method} {urlsplit(current).path}: {exc.reason}",
                    registry=self.registry,
                ) from None
            status = response.status
            if status == 401 and same_host and not challenged:
                challenges = response.headers.get_list("WWW-Authenticate")
                with contextlib.suppress(HttpError):
                    response.read()  # small; kept for the error message if we give up
                response.close()
                challenged = True
                if self.auth.challenged(challenges, scopes, authorization, self._auth_send):
                    authorization = self.auth.authorization(scopes, self._auth_send)
                    continue
                return response
            if follow and status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                location = urljoin(current, response.headers["Location"])
                response.close()
                redirects += 1
                if redirects > _MAX_REDIRECTS:
                    raise RegistryError(
                        f"{self.registry}: too many redirects for {method} {urlsplit(url).path}",
                        registry=self.registry,
                    )
                current = location
                if status == 303:
                    method = "GET"
                continue
            if status in RETRY_STATUSES or status >= 500:
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                reason = f"HTTP {status}"
                if response.reason:
                    reason += f" {response.reason}"
                response.close()
                raise _Retryable(reason, status, wait)
            if not stream:
                try:
                    response.read()
                except TransportError as exc:
                    response.close()
                    raise _Retryable(_network_reason(exc)) from None
            return response

    def _check_certificate(self, exc: Exception, url: str) -> None:
        """A certificate that fails verification is not worth retrying: say so at once."""
        if not isinstance(exc, CertificateError):
            return
        host = urlsplit(url).netloc
        hint = None
        if host == urlsplit(self.base_url()).netloc:
            hint = f"if you trust this registry, allow it with --insecure {self.registry}"
        raise RegistryError(
            f"{self.registry}: the TLS certificate of {host} could not be verified",
            hint=hint,
            registry=self.registry,
        )

    def _request(
        self,
        method: str,
        path_or_url: str,
        repository: str,
        what: str,
        scopes: frozenset[Scope],
        *,
        expect: Collection[int] = (200,),
        headers: dict[str, str] | None = None,
        content: bytes | Callable[[], Iterator[bytes]] | None = None,
        follow: bool = False,
    ) -> Response:
        """A retried request whose body is read; a status outside ``expect`` raises."""
        url = path_or_url if "://" in path_or_url else self._url(path_or_url)

        def attempt() -> Response:
            return self._send_once(
                method, url, scopes, headers=headers, content=content, follow=follow
            )

        response = self._with_retries(attempt, repository, what)
        if response.status not in expect:
            raise self._error(response, repository, what)
        return response

    # -- API -------------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the registry speaks the ``/v2/`` API (and learn its challenge)."""
        response = self._request("GET", "/v2/", "", "ping", frozenset(), expect=(200, 401))
        version = response.headers.get("Docker-Distribution-API-Version", "")
        if response.status == 200 and version and not version.startswith("registry/2."):
            raise RegistryError(f"{self.registry}: not a v2 registry ({version})")

    def check_login(self) -> None:
        """Check that the registry accepts the credentials, as ``docker login`` does:
        ``GET /v2/``, answering its challenge (a ``Bearer`` challenge fetches a token with
        no scope). Raises :class:`RegistryError` when they are refused. A registry that
        asks for nothing accepts anyone."""
        what = "log in"
        if self.auth.credential is None:
            raise RegistryError(
                f"{self.registry}: no credentials to log in with", registry=self.registry
            )
        response = self._request("GET", "/v2/", "", what, frozenset(), expect=(200, 401))
        if response.status == 401:
            error = self._error(response, "", what)
            raise RegistryError(
                f"{self.registry}: login failed: the registry refused the credentials "
                f"(HTTP 401{' ' + ', '.join(error.codes) if error.codes else ''})",
                hint="check the user name and password or token",
                registry=self.registry,
                status=401,
                codes=error.codes,
            )

    def blob_exists(self, repository: str, digest: str) -> int | None:
        """The size of blob ``digest`` in ``repository``, or None if it is not there."""
        response = self._request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            repository,
            f"blob {digest}",
            _pull(repository),
            expect=(200, 404),
            follow=True,
        )
        if response.status == 404:
            return None
        length = response.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else 0

    @overload
    def get_blob(
        self,
        repository: str,
        digest: str,
        sink: None = None,
        *,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> bytes: ...

    @overload
    def get_blob(
        self,
        repository: str,
        digest: str,
        sink: Callable[[IO[bytes]], T],
        *,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> T: ...

    def get_blob(
        self,
        repository: str,
        digest: str,
        sink: Callable[[IO[bytes]], T] | None = None,
        *,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> bytes | T:
        """Download blob ``digest`` and check its digest (and ``size`` when given) before
        anything is handed on: without ``sink`` the bytes are returned; with one, the blob
        goes to a temporary file that ``sink`` is called with (positioned at 0) only once
        it is verified, and its result is returned. A dropped connection resumes with a
        ``Range`` request when the server allows it.

        Raises :class:`DigestMismatch` (nothing handed on) or :class:`RegistryError`."""
        file: IO[bytes] = io.BytesIO() if sink is None else _temporary_file()
        with file:
            self._fetch_into(file, repository, digest, size, progress)
            if sink is None:
                assert isinstance(file, io.BytesIO)
                return file.getvalue()
            file.seek(0)
            return sink(file)

    def download_blob(
        self,
        repository: str,
        digest: str,
        path: Path,
        *,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Download blob ``digest`` into the new file ``path`` (a temporary name of the
        caller's, which renames it into place), checking its digest and ``size`` as
        :meth:`get_blob` does; when the check fails or the download does, the file is
        removed. Returns the size."""
        try:
            with open(path, "wb") as file:
                return self._fetch_into(file, repository, digest, size, progress)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise

    def _fetch_into(
        self,
        file: IO[bytes],
        repository: str,
        digest: str,
        size: int | None,
        progress: Progress | None,
    ) -> int:
        """Download blob ``digest`` into ``file`` (emptied on a restart), hashing it; raise
        :class:`DigestMismatch` unless it has ``digest`` and ``size``. Returns the size."""
        algorithm = _digest_algorithm(digest)
        what = f"blob {digest}"
        scopes = _pull(repository)
        url = self._url(f"/v2/{repository}/blobs/{digest}")
        spool = _Spool(algorithm, file)

        def attempt() -> None:
            self._download(url, scopes, spool, size, repository, digest, progress)

        self._with_retries(attempt, repository, what)
        actual = f"{algorithm}:{spool.hasher.hexdigest()}"
        if size is not None and spool.received != size:
            raise DigestMismatch(
                f"{self._where(repository)}: blob {digest}: received {spool.received} "
                f"bytes, expected {size}; nothing was stored",
                registry=self.registry,
                repository=repository,
            )
        if actual != digest:
            raise DigestMismatch(
                f"{self._where(repository)}: blob {digest}: the received bytes hash to "
                f"{actual}; nothing was stored",
                registry=self.registry,
                repository=repository,
            )
        return spool.received

    def _download(
        self,
        url: str,
        scopes: frozenset[Scope],
        spool: _Spool,
        size: int | None,
        repository: str,
        digest: str,
        progress: Progress | None,
    ) -> None:
        headers = {"Accept-Encoding": "identity"}
        if spool.received:
            headers["Range"] = f"bytes={spool.received}-"
        response = self._send_once("GET", url, scopes, headers=headers, stream=True, follow=True)
        try:
            status = response.status
            resumed = False
            if status == 206 and spool.received:
                content_range = response.headers.get("Content-Range", "")
                resumed = content_range.startswith(f"bytes {spool.received}-")
            elif status != 200:
                raise self._error(response, repository, f"blob {digest}")
            if not resumed:
                spool.reset()
                if progress is not None:
                    progress(0)
            first = spool.received
            try:
                for chunk in response.iter_bytes():
                    spool.write(chunk)
                    if size is not None and spool.received > size:
                        raise DigestMismatch(
                            f"{self._where(repository)}: blob {digest}: more than the {size} "
                            "bytes expected; nothing was stored",
                            registry=self.registry,
                            repository=repository,
                        )
                    if progress is not None:
                        progress(spool.received)
            except TransportError as exc:
                raise _Retryable(_network_reason(exc)) from None
            length = response.headers.get("Content-Length", "")
            encoded = response.headers.get("Content-Encoding", "identity") != "identity"
            if length.isdigit() and not encoded and spool.received - first != int(length):
                raise _Retryable(
                    f"connection broken after {spool.received - first} of {length} bytes"
                )
        finally:
            response.close()

    def get_manifest(
        self, repository: str, ref: str, accept: Collection[str] = MANIFEST_ACCEPT
    ) -> RawManifest:
        """The manifest or index at ``ref`` (a tag or a digest), checked against the digest
        when ``ref`` is one, else against the registry's ``Docker-Content-Digest``."""
        what = f"manifest {ref}"
        response = self._request(
            "GET",
            f"/v2/{repository}/manifests/{ref}",
            repository,
            what,
            _pull(repository),
            headers={"Accept": ", ".join(accept)},
        )
        data = response.content
        if len(data) > MAX_MANIFEST_SIZE:
            raise RegistryError(
                f"{self._where(repository)}: {what}: larger than {MAX_MANIFEST_SIZE} bytes",
                registry=self.registry,
                repository=repository,
            )
        expected = ref if ":" in ref else response.headers.get("Docker-Content-Digest", "")
        digest = self._check_manifest_digest(data, expected, repository, what)
        media_type = self._media_type(response.headers.get("Content-Type", ""), data)
        return RawManifest(data, media_type, digest)

    def _check_manifest_digest(self, data: bytes, expected: str, repository: str, what: str) -> str:
        algorithm = expected.partition(":")[0] if expected else "sha256"
        if algorithm not in _DIGEST_ALGORITHMS:
            algorithm = "sha256"
        actual = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
        if expected and actual != expected:
            raise DigestMismatch(
                f"{self._where(repository)}: {what}: the received manifest hashes to "
                f"{actual}, not {expected}",
                registry=self.registry,
                repository=repository,
            )
        return actual

    @staticmethod
    def _media_type(content_type: str, data: bytes) -> str:
        media_type = content_type.partition(";")[0].strip()
        if media_type in MANIFEST_TYPES or media_type in INDEX_TYPES:
            return media_type
        with contextlib.suppress(ValueError, AttributeError):
            obj = json.loads(data)
            declared = obj.get("mediaType")
            if isinstance(declared, str) and declared:
                return declared
            if "manifests" in obj:
                return OCI_INDEX
            if "config" in obj:
                return OCI_MANIFEST
        return media_type

    def head_manifest(
        self, repository: str, ref: str, accept: Collection[str] = MANIFEST_ACCEPT
    ) -> Descriptor | None:
        """The descriptor of the manifest at ``ref`` without its body (None when there is
        none); the digest is the registry's ``Docker-Content-Digest`` (or ``ref`` itself).
        When the registry sends no digest the manifest is fetched."""
        response = self._request(
            "HEAD",
            f"/v2/{repository}/manifests/{ref}",
            repository,
            f"manifest {ref}",
            _pull(repository),
            headers={"Accept": ", ".join(accept)},
            expect=(200, 404),
        )
        if response.status == 404:
            return None
        digest = response.headers.get("Docker-Content-Digest", "")
        length = response.headers.get("Content-Length", "")
        media_type = response.headers.get("Content-Type", "").partition(";")[0].strip()
        if not digest or not length.isdigit() or not media_type:
            return self.get_manifest(repository, ref, accept).descriptor
        return Descriptor(media_type, digest, int(length))

    def put_manifest(self, repository: str, ref: str, data: bytes, media_type: str) -> str:
        """Store a manifest or index under ``ref`` (a tag or its digest); returns its
        digest (checked against the registry's ``Docker-Content-Digest``)."""
        return self.store_manifest(repository, ref, data, media_type).digest

    def store_manifest(
        self, repository: str, ref: str, data: bytes, media_type: str
    ) -> StoredManifest:
        """:meth:`put_manifest`, also telling what the registry answered about the
        manifest's ``subject``: its ``OCI-Subject`` header, which a registry with the
        referrers API (OCI distribution 1.1) sends for a manifest with a ``subject``."""
        what = f"manifest {ref}"
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if ":" in ref and ref != digest:
            self._check_manifest_digest(data, ref, repository, what)
            digest = ref
        response = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{ref}",
            repository,
            what,
            _push(repository),
            expect=(200, 201, 202, 204),
            headers={"Content-Type": media_type},
            content=data,
        )
        answered = response.headers.get("Docker-Content-Digest", "")
        same_algorithm = answered.partition(":")[0] == digest.partition(":")[0]
        if answered and same_algorithm and answered != digest:
            raise DigestMismatch(
                f"{self._where(repository)}: {what}: the registry stored it as "
                f"{answered}, not {digest}",
                registry=self.registry,
                repository=repository,
            )
        return StoredManifest(digest, response.headers.get("OCI-Subject", "").strip())

    def delete_manifest(self, repository: str, ref: str) -> None:
        """Delete the manifest at ``ref`` (registries usually want a digest)."""
        self._delete(f"/v2/{repository}/manifests/{ref}", repository, f"delete manifest {ref}")

    def delete_blob(self, repository: str, digest: str) -> None:
        """Delete blob ``digest`` from ``repository``."""
        self._delete(f"/v2/{repository}/blobs/{digest}", repository, f"delete blob {digest}")

    def _delete(self, path: str, repository: str, what: str) -> None:
        scopes = Scope.repository(repository, "pull", "push", "delete")
        try:
            self._request("DELETE", path, repository, what, scopes, expect=(200, 202, 204))
        except RegistryError as exc:
            if exc.status == 405 or "UNSUPPORTED" in exc.codes:
                raise RegistryError(
                    f"{exc.message} - this registry does not allow deleting",
                    hint="deletion must be enabled on the registry (storage.delete.enabled)",
                    registry=exc.registry,
                    repository=exc.repository,
                    status=exc.status,
                    codes=exc.codes,
                ) from None
            raise

    def list_tags(self, repository: str, *, page_size: int | None = None) -> list[str]:
        """Every tag of ``repository``, following ``Link: <...>; rel="next"`` pages
        (``n=page_size`` per page when given)."""
        path = f"/v2/{repository}/tags/list"
        url = self._url(path)
        if page_size is not None:
            url = _with_query(url, n=str(page_size))
        tags: list[str] = []
        seen: set[str] = set()
        for _ in range(_MAX_TAG_PAGES):
            seen.add(url)
            response = self._request("GET", url, repository, "list tags", _pull(repository))
            try:
                obj = json.loads(response.content)
                page = obj.get("tags") or []
                if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
                    raise ValueError
            except (ValueError, AttributeError):
                raise RegistryError(
                    f"{self._where(repository)}: list tags: the answer is not a tag list",
                    registry=self.registry,
                    repository=repository,
                ) from None
            tags.extend(page)
            following = _next_link(response.headers.get_list("Link"))
            if not following:
                return tags
            url = urljoin(url, following)
            if url in seen:
                return tags
        return tags

    # -- uploads ---------------------------------------------------------------------------

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Ask the registry to link blob ``digest`` from ``from_repository`` into
        ``repository``: True when it did (``201``); False when it opened an upload
        instead (``202``), which is cancelled."""
        location = self._start_upload(repository, digest, from_repository)
        if location is None:
            return True
        with contextlib.suppress(RegistryError):
            self._request(
                "DELETE",
                location,
                repository,
                "cancel upload",
                _push(repository),
                expect=(200, 202, 204, 404),
            )
        return False

    def _start_upload(
        self, repository: str, digest: str, from_repository: str | None = None
    ) -> str | None:
        """Open an upload session (or mount): its absolute URL, None when mounted."""
        scopes = _push(repository)
        path = f"/v2/{repository}/blobs/uploads/"
        what = "start upload"
        if from_repository and from_repository != repository:
            path += "?" + urlencode({"mount": digest, "from": from_repository})
            scopes = scopes | _pull(from_repository)
            what = f"mount blob {digest} from {from_repository}"
        response = self._request(
            "POST", path, repository, what, scopes, expect=(201, 202), content=b""
        )
        if response.status == 201:
            return None
        return self._location(response, repository, what)

    def _location(self, response: Response, repository: str, what: str) -> str:
        location: str = response.headers.get("Location", "")
        if not location:
            raise RegistryError(
                f"{self._where(repository)}: {what}: the registry sent no upload location",
                registry=self.registry,
                repository=repository,
                status=response.status,
            )
        return urljoin(response.url, location)

    def upload_blob(
        self,
        repository: str,
        data: bytes | IO[bytes],
        digest: str,
        size: int | None = None,
        *,
        chunk_size: int | None = None,
        mount_from: str | None = None,
        progress: Progress | None = None,
    ) -> str:
        """Upload a blob: ``data`` is bytes or a seekable binary file (read from its
        start) of ``size`` bytes. With ``chunk_size`` the blob goes in ``PATCH`` chunks of
        that size, resumed where the registry says it stopped; without, in one ``PUT``.
        With ``mount_from`` a cross-repository mount is tried first.

        Returns ``"mounted"`` or ``"uploaded"``. The registry checks the digest."""
        _digest_algorithm(digest)
        if size is None:
            if isinstance(data, bytes | bytearray | memoryview):
                size = len(data)
            else:
                size = data.seek(0, io.SEEK_END)
        source = _Source(data, size)
        tries = max(1, self.retry.attempts)
        last: _SessionLost | None = None
        for number in range(1, tries + 1):
            location = self._start_upload(repository, digest, mount_from)
            if location is None:
                if progress is not None:
                    progress(size)
                return "mounted"
            mount_from = None  # a refused mount is not asked again
            try:
                if chunk_size is None or chunk_size <= 0 or size <= chunk_size:
                    self._put_whole(repository, location, source, digest, progress)
                else:
                    self._put_chunks(repository, location, source, digest, chunk_size, progress)
                return "uploaded"
            except _SessionLost as lost:
                last = lost
                if number < tries:
                    self._backoff(number, lost.wait)
                    if self._arrived(repository, digest, size):
                        return "uploaded"  # only the answer was lost
        assert last is not None
        after = f" (after {tries} attempts)" if tries > 1 else ""
        raise RegistryError(
            f"{self._where(repository)}: upload blob {digest}: {last.reason}{after}",
            registry=self.registry,
            repository=repository,
            status=last.status,
        )

    def _arrived(self, repository: str, digest: str, size: int) -> bool:
        """Whether the registry has the blob after all (best effort)."""
        try:
            return self.blob_exists(repository, digest) == size
        except RegistryError:
            return False

    def _put_whole(
        self,
        repository: str,
        location: str,
        source: _Source,
        digest: str,
        progress: Progress | None,
    ) -> None:
        url = _with_query(location, digest=digest)
        headers = {"Content-Type": _OCTET, "Content-Length": str(source.size)}
        response = self._upload_send(
            repository,
            "PUT",
            url,
            headers,
            lambda: source.chunks(0, source.size, progress),
            f"upload blob {digest}",
        )
        if response.status not in (201, 204):
            self._fail_upload(response, repository, f"upload blob {digest}")

    def _upload_send(
        self,
        repository: str,
        method: str,
        url: str,
        headers: dict[str, str],
        content: Callable[[], Iterator[bytes]] | None,
        what: str,
    ) -> Response:
        """One upload request; a network failure or retryable status loses the session's
        certainty, which the caller handles (ask the status, or start over)."""
        try:
            return self._send_once(method, url, _push(repository), headers=headers, content=content)
        except _Retryable as failure:
            raise _SessionLost(failure.reason, failure.status, failure.wait) from None

    def _fail_upload(self, response: Response, repository: str, what: str) -> None:
        error = self._error(response, repository, what)
        if response.status == 404 or {
            "BLOB_UPLOAD_UNKNOWN",
            "BLOB_UPLOAD_INVALID",
            "DIGEST_INVALID",
        } & set(error.codes):
            prefix = f"{self._where(repository)}: {what}: "
            raise _SessionLost(error.message.removeprefix(prefix), response.status)
        raise error

    def _put_chunks(
        self,
        repository: str,
        location: str,
        source: _Source,
        digest: str,
        chunk_size: int,
        progress: Progress | None,
    ) -> None:
        what = f"upload blob {digest}"
        offset = 0
        stalls = 0
        while offset < source.size:
            end = min(offset + chunk_size, source.size)
            headers = {
                "Content-Type": _OCTET,
                "Content-Length": str(end - offset),
                "Content-Range": f"{offset}-{end - 1}",
            }
            start = offset
            try:
                response = self._upload_send(
                    repository,
                    "PATCH",
                    location,
                    headers,
                    functools.partial(source.chunks, start, end, progress),
                    what,
                )
            except _SessionLost as lost:
                stalls += 1
                if stalls > max(1, self.retry.attempts):
                    raise
                self._backoff(stalls, None)
                location, offset = self._upload_status(repository, location, what, lost)
                continue
            if response.status == 416:
                stalls += 1
                if stalls > max(1, self.retry.attempts):
                    raise _SessionLost("the registry keeps refusing the chunk range")
                location, offset = self._upload_status(repository, location, what, None)
                continue
            if response.status != 202:
                self._fail_upload(response, repository, what)
            location = self._location(response, repository, what)
            confirmed = _range_end(response.headers.get("Range", ""))
            offset = end if confirmed is None else confirmed
            if offset > end or offset < start:
                offset = end
            if offset > start:
                stalls = 0
        if progress is not None:
            progress(source.size)
        response = self._upload_send(
            repository,
            "PUT",
            _with_query(location, digest=digest),
            {"Content-Length": "0", "Content-Type": _OCTET},
            None,
            what,
        )
        if response.status not in (201, 204):
            self._fail_upload(response, repository, what)

    def _upload_status(
        self, repository: str, location: str, what: str, cause: _SessionLost | None
    ) -> tuple[str, int]:
        """How much of an upload arrived (``GET`` its URL -> ``Range: 0-LAST``): the URL to
        go on with and the next offset. The question is retried while the registry is
        unreachable (it may come back with the session intact); a lost session raises
        :class:`_SessionLost`."""

        def attempt() -> Response:
            return self._send_once("GET", location, _push(repository))

        try:
            response = self._with_retries(attempt, repository, what)
        except RegistryError as exc:
            raise _SessionLost(cause.reason if cause else exc.message, exc.status) from None
        if response.status not in (200, 204):
            if response.status in (400, 404):
                reason = cause.reason if cause else "the upload session was lost"
                raise _SessionLost(reason, response.status)
            raise self._error(response, repository, what)
        offset = _range_end(response.headers.get("Range", "")) or 0
        next_location = response.headers.get("Location")
        if next_location:
            location = urljoin(location, next_location)
        return location, offset


class _Spool:
    """Where a download goes while it is hashed: a file (or memory), the running hash and
    the byte count."""

    def __init__(self, algorithm: str, file: IO[bytes]) -> None:
        self.algorithm = algorithm
        self.file = file
        self.hasher = hashlib.new(algorithm)
        self.received = 0

    def reset(self) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.hasher = hashlib.new(self.algorithm)
        self.received = 0

    def write(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        self.file.write(chunk)
        self.received += len(chunk)


class _Source:
    """Bytes or a seekable file, read in slices (thread-confined to one upload)."""

    def __init__(self, data: bytes | IO[bytes], size: int) -> None:
        self._data = data
        self.size = size

    def chunks(self, start: int, end: int, progress: Progress | None) -> Iterator[bytes]:
        if progress is not None:
            progress(start)
        position = start
        data = self._data
        if isinstance(data, bytes | bytearray | memoryview):
            view = memoryview(data)
            while position < end:
                step = min(_READ_CHUNK, end - position)
                yield bytes(view[position : position + step])
                position += step
                if progress is not None:
                    progress(position)
            return
        data.seek(start)
        while position < end:
            piece = data.read(min(_READ_CHUNK, end - position))
            if not piece:
                raise RegistryError(f"blob source ended after {position} of {self.size} bytes")
            yield piece
            position += len(piece)
            if progress is not None:
                progress(position)


def _range_end(value: str) -> int | None:
    """The next offset from a ``Range: 0-LAST`` (or ``bytes=0-LAST``) header; ``0-0`` is
    taken as nothing received (the distribution registry sends it for 0 and 1 byte)."""
    text = value.strip().removeprefix("bytes=")
    first, sep, last = text.partition("-")
    if not sep or not first.isdigit() or not last.isdigit():
        return None
    end = int(last)
    return 0 if end == 0 else end + 1


def _next_link(values: list[str]) -> str:
    """The target of a ``Link: <URL>; rel="next"`` header, or ""."""
    for value in values:
        for part in value.split(","):
            target, _, params = part.partition(";")
            target = target.strip()
            if not (target.startswith("<") and target.endswith(">")):
                continue
            for param in params.split(";"):
                name, _, rel = param.strip().partition("=")
                if name.strip().lower() == "rel" and "next" in rel.strip('" ').split():
                    return target[1:-1]
    return ""
