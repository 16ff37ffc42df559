"""A small synchronous HTTP/1.1 client over the standard library's :mod:`http.client`. [edge]

:class:`HttpClient` is a session object: a thread-safe pool of keep-alive connections per
origin (scheme, host, port), timeouts (connect and read), TLS through
:func:`ssl.create_default_context` (which honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), or
unverified TLS for the hosts named in ``unverified_hosts`` (``--insecure`` registries), proxies
from the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``; https goes
through an http proxy with ``CONNECT``) and, on request, redirects (``Authorization`` is
dropped when a redirect leaves the origin).

Request bodies are bytes, binary file objects or iterables of bytes (streamed; give their
``Content-Length`` in the headers, else they go chunked). A :class:`Response` is read whole
(the default) or streamed (``stream=True``: iterate :meth:`Response.iter_bytes`, then
:meth:`Response.close`). A connection goes back to the pool only when its response was read
to the end; one closed early is closed, not reused.

Failures of the transport are translated at this edge (nothing from :mod:`http.client`,
:mod:`ssl` or :mod:`socket` escapes)::

    HttpError                    (an AlpenglowError)
    ├── InvalidURL               not an http(s) URL, or a proxy that is not http://
    ├── TooManyRedirects
    └── TransportError           worth retrying, usually
        ├── ConnectError         no connection was made (DNS, unreachable, proxy refused)
        │   ├── ConnectionRefused
        │   └── TLSError         the TLS handshake failed (e.g. the server speaks plain HTTP)
        │       └── CertificateError   the certificate did not verify
        ├── Timeout              connect or read timeout
        │   └── ConnectTimeout   (also a ConnectError)
        └── ConnectionBroken     the connection dropped, or the server broke the protocol

Each request is sent once; callers retry as :class:`RetryPolicy` says (``RETRY_STATUSES``,
:func:`retry_after_seconds`), which lives here so that every HTTP user shares it.

``http.client`` and ``ssl`` are imported when the first connection is made, so importing
this module costs next to nothing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, overload
from urllib.parse import unquote, urljoin, urlsplit

from alpenglow.errors import AlpenglowError

if TYPE_CHECKING:
    import http.client
    import ssl

__all__ = [
    "RETRY_STATUSES",
    "Body",
    "CertificateError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionBroken",
    "ConnectionRefused",
    "Headers",
    "HttpClient",
    "HttpError",
    "InvalidURL",
    "Response",
    "RetryPolicy",
    "TLSError",
    "Timeout",
    "TooManyRedirects",
    "TransportError",
    "retry_after_seconds",
]


def __dir__() -> list[str]:
    return __all__


Body = bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes] | None
"""What a request may carry: bytes, a binary file (read from where it is) or an iterable of
byte chunks."""

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses worth another attempt (plus any other ``5xx``)."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_READ_SIZE = 1 << 20
_SEND_BLOCK = 1 << 16
_DRAIN_LIMIT = 1 << 16
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


# --------------------------------------------------------------------------------------------
# Errors


class HttpError(AlpenglowError):
    """Base of this module's errors: ``reason`` says what went wrong (``connection
    refused``), ``url`` is the URL asked for; the message is ``URL: REASON`` with the URL's
    user information and query left out (they may hold secrets)."""

    def __init__(self, reason: str, url: str = "") -> None:
        super().__init__(f"{_safe_url(url)}: {reason}" if url else reason)
        self.reason = reason
        self.url = url


class InvalidURL(HttpError):
    """The URL (or a proxy's) cannot be used."""


class TooManyRedirects(HttpError):
    """Redirects went on longer than allowed."""


class TransportError(HttpError):
    """The exchange failed below HTTP: no answer, or not a whole one."""


class ConnectError(TransportError):
    """No connection could be made."""


class ConnectionRefused(ConnectError):
    """Nobody listens at the address."""


class TLSError(ConnectError):
    """The TLS handshake failed."""


class CertificateError(TLSError):
    """The server's certificate did not verify."""


class Timeout(TransportError):
    """The server did not answer (or connect) in time."""


class ConnectTimeout(Timeout, ConnectError):
    """The connection was not made in time."""


class ConnectionBroken(TransportError):
    """The connection dropped, or what came back was not HTTP."""


# --------------------------------------------------------------------------------------------
# Retrying (used by the callers: this module sends each request once)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. The delay before attempt ``n + 1`` is ``backoff * 2**(n - 1)``
    capped at ``max_backoff``, of which a random half is dropped (jitter); a server's
    ``Retry-After`` replaces it, capped at ``max_retry_after``."""

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, rand: float) -> float:
        """Backoff before the next try after failed ``attempt`` (1-based); ``rand`` in [0, 1)."""
        full = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        return full / 2 + full / 2 * rand


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date).

    >>> retry_after_seconds("3"), retry_after_seconds("soon"), retry_after_seconds(None)
    (3.0, None, None)
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


# --------------------------------------------------------------------------------------------
# Headers and responses


class Headers:
    """Response headers, looked up case-insensitively; repeated headers keep every value."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)
        index: dict[str, list[str]] = {}
        for name, value in self._items:
            index.setdefault(name.lower(), []).append(value)
        self._index = index

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of ``name`` (several are joined with ``", "``), or ``default``."""
        values = self._index.get(name.lower())
        if not values:
            return default
        return values[0] if len(values) == 1 else ", ".join(values)

    def get_list(self, name: str) -> list[str]:
        """Every value of ``name``, in order."""
        return list(self._index.get(name.lower(), ()))

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def items(self) -> list[tuple[str, str]]:
        """The headers as received: (name, value) pairs."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({[name for name, _ in self._items]!r})"


class Response:
    """One response. Unless it was asked for with ``stream=True`` its body has been read
    (:attr:`content`). A streamed one is read with :meth:`iter_bytes` or :meth:`read` and
    must be closed (it is a context manager)."""

    __slots__ = (
        "_content",
        "_done",
        "_raw",
        "_release",
        "headers",
        "method",
        "reason",
        "status",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: str,
        raw: http.client.HTTPResponse,
        release: Callable[[bool], None],
    ) -> None:
        self.method = method
        self.url = url
        self.status: int = raw.status
        self.reason: str = raw.reason or ""
        self.headers = Headers(raw.msg.items())
        self._raw = raw
        self._release: Callable[[bool], None] | None = release
        self._content: bytes | None = None
        self._done = False

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.method} {_safe_url(self.url)}>"

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def content(self) -> bytes:
        """The whole body (read now if it was not yet)."""
        if self._content is None:
            return self.read()
        return self._content

    def read(self) -> bytes:
        """Read the rest of the body and return all of it."""
        if self._content is None:
            self._content = b"".join(self.iter_bytes())
        return self._content

    def iter_bytes(self, size: int = _READ_SIZE) -> Iterator[bytes]:
        """The body in chunks of at most ``size`` bytes, as they arrive. The connection goes
        back to the pool once the last byte is read. Raises :class:`ConnectionBroken` when
        the body ends early, :class:`Timeout` when it stalls."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        raw = self._raw
        received = 0
        while not self._done:
            if raw.length == 0 and not raw.chunked:
                self._finish(reusable=True)
                return
            try:
                chunk = raw.read1(size)
            except TimeoutError:
                self._finish(reusable=False)
                raise Timeout("timed out reading the body", self.url) from None
            except Exception as exc:  # http.client.HTTPException, OSError
                self._finish(reusable=False)
                raise ConnectionBroken(
                    f"connection broken while reading the body ({_describe(exc)})",
                    self.url,
                ) from None
            if not chunk:
                if raw.length:  # a Content-Length not reached
                    self._finish(reusable=False)
                    raise ConnectionBroken(
                        f"connection closed after {received} bytes, {raw.length} more expected",
                        self.url,
                    )
                self._finish(reusable=True)
                return
            received += len(chunk)
            yield chunk

    def close(self) -> None:
        """Give the connection back (body read to its end) or close it (not read)."""
        if self._done:
            return
        raw = self._raw
        self._finish(reusable=raw.length == 0 and not raw.chunked)

    def _finish(self, *, reusable: bool) -> None:
        if self._done:
            return
        self._done = True
        raw = self._raw
        reusable = reusable and not raw.will_close
        try:
            raw.close()
        except Exception:  # a broken socket: nothing to keep anyway
            reusable = False
        release, self._release = self._release, None
        if release is not None:
            release(reusable)


# --------------------------------------------------------------------------------------------
# The client


class HttpClient:
    """A pool of HTTP/1.1 connections with the request logic around it (thread-safe).

    ``timeout`` bounds every wait for the server (a read or a write); ``connect_timeout``
    (default: the smaller of ``timeout`` and 15 s) the making of a connection, TLS
    included. ``verify=False`` turns certificate checks off for every host;
    ``unverified_hosts`` (``"host"`` or ``"host:port"``) for those only. ``headers`` go
    with every request (a request's own headers win). With ``trust_env`` proxies are taken
    from the environment. ``max_idle`` idle connections are kept per origin.
    """

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        connect_timeout: float | None = None,
        verify: bool = True,
        unverified_hosts: Collection[str] = (),
        headers: Mapping[str, str] | None = None,
        trust_env: bool = True,
        max_idle: int = 16,
    ) -> None:
        self.timeout = timeout
        self.connect_timeout = min(timeout, 15.0) if connect_timeout is None else connect_timeout
        self.verify = verify
        self._unverified = frozenset(_host_port(name) for name in unverified_hosts)
        self._headers = dict(headers or {})
        self._max_idle = max(0, max_idle)
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._contexts: dict[bool, ssl.SSLContext] = {}
        self._context_lock = threading.Lock()
        self._proxies: dict[str, str] | None = None
        if trust_env and any(
            os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES
        ):
            from urllib.request import getproxies

            self._proxies = getproxies()
        self._proxy_for: dict[tuple[str, str, int], tuple[str, int, str | None] | None] = {}

    def __repr__(self) -> str:
        return f"HttpClient(timeout={self.timeout!r}, verify={self.verify!r})"

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the idle connections (the client may be used again)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    # -- requests --------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        follow_redirects: bool = False,
        max_redirects: int = 20,
    ) -> Response:
        """Send one request (following redirects if asked) and return the response, its
        body read unless ``stream``. Any status is returned; transport failures raise
        :class:`TransportError` subclasses."""
        sent_headers = dict(self._headers)
        if headers:
            for name, value in headers.items():
                for old in [k for k in sent_headers if k.lower() == name.lower()]:
                    del sent_headers[old]
                sent_headers[name] = value
        redirects = 0
        while True:
            response = self._send(method, url, sent_headers, body)
            location = response.headers.get("Location")
            if not follow_redirects or response.status not in _REDIRECTS or not location:
                break
            target = urljoin(url, location)
            status = response.status
            change_method = status == 303 and method != "HEAD"
            change_method |= status in (301, 302) and method == "POST"
            replayable = body is None or isinstance(body, bytes | bytearray | memoryview)
            if not change_method and not replayable:
                break  # a streamed body cannot be sent again: the caller decides
            redirects += 1
            if redirects > max_redirects:
                response.close()
                raise TooManyRedirects(f"more than {max_redirects} redirects", url)
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) <= _DRAIN_LIMIT:
                response.read()  # keeps the connection
            response.close()
            if change_method:
                method = "GET"
                body = None
                for name in list(sent_headers):
                    if name.lower() in ("content-length", "content-type", "transfer-encoding"):
                        del sent_headers[name]
            if not _may_keep_credentials(url, target):
                for name in list(sent_headers):
                    if name.lower() in ("authorization", "cookie"):
                        del sent_headers[name]
            url = target
        if not stream:
            try:
                response.read()
            finally:
                response.close()
        return response

    def _send(self, method: str, url: str, headers: dict[str, str], body: Body) -> Response:
        origin, target = _split(url)
        proxy = self._proxy(origin)
        key = origin
        request_target = target
        request_headers = headers
        if proxy is not None and origin[0] == "http":
            # a plain-HTTP request goes to the proxy with the whole URL
            request_target = f"http://{_netloc(origin)}{target}"
            if proxy[2] is not None:
                request_headers = {**headers, "Proxy-Authorization": proxy[2]}
        connection = self._checkout(key)
        if connection is None:
            connection = self._connect(origin, proxy, url)
        names = {name.lower() for name in request_headers}
        chunked = False
        if "content-length" not in names and "transfer-encoding" not in names:
            if body is None:
                if method in ("POST", "PUT", "PATCH"):
                    request_headers = {**request_headers, "Content-Length": "0"}
            elif isinstance(body, bytes | bytearray | memoryview):
                request_headers = {**request_headers, "Content-Length": str(len(body))}
            else:
                request_headers = {**request_headers, "Transfer-Encoding": "chunked"}
                chunked = True
        try:
            raw = self._exchange(
                connection, method, request_target, request_headers, names, body, chunked, url
            )
        except BaseException:
            connection.close()
            raise

        def release(reusable: bool) -> None:
            if reusable:
                self._checkin(key, connection)
            else:
                connection.close()

        return Response(method, url, raw, release)

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        headers: Mapping[str, str],
        names: set[str],
        body: Body,
        chunked: bool,
        url: str,
    ) -> http.client.HTTPResponse:
        import http.client

        write_error: Exception | None = None
        try:
            connection.putrequest(
                method,
                target,
                skip_host="host" in names,
                skip_accept_encoding="accept-encoding" in names,
            )
        except (ValueError, http.client.HTTPException):  # control characters, spaces
            raise InvalidURL("the URL holds characters HTTP does not allow", url) from None
        for name, value in headers.items():
            try:
                connection.putheader(name, value)
            except ValueError:  # the value is not shown: it may be a secret
                raise HttpError(
                    f"the {name} header holds characters HTTP does not allow", url
                ) from None
        try:
            message: object = body
            if isinstance(body, bytearray | memoryview):
                message = bytes(body)
            connection.endheaders(message, encode_chunked=chunked)  # type: ignore[arg-type]
        except TimeoutError:
            raise Timeout("timed out sending the request", url) from None
        except OSError as exc:
            # the server may have answered early (e.g. 401, 413) and closed its side: read
            # that answer if there is one
            write_error = exc
        try:
            return connection.getresponse()
        except TimeoutError:
            raise Timeout("timed out waiting for the answer", url) from None
        except Exception as exc:  # http.client.HTTPException, OSError
            cause = write_error or exc
            raise ConnectionBroken(f"connection broken ({_describe(cause)})", url) from None

    # -- connections -----------------------------------------------------------------------

    def _checkout(self, key: tuple[str, str, int]) -> http.client.HTTPConnection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                connection = idle.pop()
            if _alive(connection):
                return connection
            connection.close()

    def _checkin(self, key: tuple[str, str, int], connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._max_idle:
                idle.append(connection)
                return
        connection.close()

    def _context(self, verified: bool) -> ssl.SSLContext:
        with self._context_lock:  # not the pool's lock: loading CA certificates takes a while
            context = self._contexts.get(verified)
            if context is None:
                import ssl

                if verified:
                    context = ssl.create_default_context()
                else:
                    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                context.set_alpn_protocols(["http/1.1"])
                self._contexts[verified] = context
            return context

    def _connect(
        self,
        origin: tuple[str, str, int],
        proxy: tuple[str, int, str | None] | None,
        url: str,
    ) -> http.client.HTTPConnection:
        scheme, host, port = origin
        http_class, https_class = _connection_classes()
        connection: http.client.HTTPConnection
        where = host if proxy is None else proxy[0]
        at = port if proxy is None else proxy[1]
        if scheme == "https":
            verified = self.verify and (host, port) not in self._unverified
            verified = verified and (host, None) not in self._unverified
            connection = https_class(
                where,
                at,
                timeout=self.connect_timeout,
                context=self._context(verified),
                blocksize=_SEND_BLOCK,
            )
            if proxy is not None:
                tunnel_headers = {"Proxy-Authorization": proxy[2]} if proxy[2] else None
                connection.set_tunnel(host, port, headers=tunnel_headers)
        else:
            connection = http_class(where, at, timeout=self.connect_timeout, blocksize=_SEND_BLOCK)
        connection.read_timeout = self.timeout  # type: ignore[attr-defined]
        via = f" (through the proxy {proxy[0]}:{proxy[1]})" if proxy is not None else ""
        import ssl

        try:
            connection.connect()
        except ssl.SSLCertVerificationError as exc:
            connection.close()
            reason = exc.verify_message or exc.reason or "certificate verify failed"
            raise CertificateError(f"CERTIFICATE_VERIFY_FAILED: {reason}{via}", url) from None
        except ssl.SSLError as exc:
            connection.close()
            raise TLSError(f"TLS handshake failed: {_describe(exc)}{via}", url) from None
        except TimeoutError:
            connection.close()
            raise ConnectTimeout(f"timed out connecting{via}", url) from None
        except ConnectionRefusedError:
            connection.close()
            raise ConnectionRefused(f"connection refused{via}", url) from None
        except OSError as exc:
            connection.close()
            raise ConnectError(f"cannot connect: {_describe(exc)}{via}", url) from None
        except Exception as exc:  # http.client.HTTPException from a proxy's CONNECT answer
            connection.close()
            raise ConnectError(f"cannot connect: {_describe(exc)}{via}", url) from None
        return connection

    # -- proxies ---------------------------------------------------------------------------

    def _proxy(self, origin: tuple[str, str, int]) -> tuple[str, int, str | None] | None:
        """The proxy (host, port, Proxy-Authorization) for ``origin``, or None."""
        proxies = self._proxies
        if proxies is None:
            return None
        with self._lock:
            if origin in self._proxy_for:
                return self._proxy_for[origin]
        scheme, host, port = origin
        found: tuple[str, int, str | None] | None = None
        proxy_url = proxies.get(scheme) or proxies.get("all")
        if proxy_url:
            from urllib.request import (  # type: ignore[attr-defined]  # not in typeshed
                proxy_bypass_environment,
            )

            if not proxy_bypass_environment(f"{host}:{port}", proxies):
                found = _parse_proxy(proxy_url)
        with self._lock:
            self._proxy_for[origin] = found
        return found


# --------------------------------------------------------------------------------------------
# Helpers


_CLASSES: list[type[http.client.HTTPConnection]] = []
_CLASSES_LOCK = threading.Lock()


def _connection_classes() -> tuple[
    type[http.client.HTTPConnection], type[http.client.HTTPSConnection]
]:
    """HTTP(S) connection classes whose socket gets the read timeout once connected (the
    constructor's timeout is the connect timeout). Made on first use: ``http.client``
    imports ``ssl`` and ``email``."""
    with _CLASSES_LOCK:
        if not _CLASSES:
            import http.client

            class _HTTPConnection(http.client.HTTPConnection):
                read_timeout: float | None = None

                def connect(self) -> None:
                    super().connect()
                    self.sock.settimeout(self.read_timeout)

            class _HTTPSConnection(http.client.HTTPSConnection):
                read_timeout: float | None = None

                def connect(self) -> None:
                    super().connect()
                    self.sock.settimeout(self.read_timeout)

            _CLASSES.extend((_HTTPConnection, _HTTPSConnection))
    http_class, https_class = _CLASSES
    return http_class, https_class  # type: ignore[return-value]


def _alive(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection can carry another request: its socket is open and has
    nothing to read (an idle socket that is readable was closed by the server)."""
    sock = connection.sock
    if sock is None:
        return False
    import select

    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _split(url: str) -> tuple[tuple[str, str, int], str]:
    """The origin of ``url`` and its request target (path and query)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid URL ({exc})", url) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL("not an http or https URL", url)
    host = parts.hostname
    if not host:
        raise InvalidURL("no host in the URL", url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return (scheme, host, port or _DEFAULT_PORTS[scheme]), target


def _netloc(origin: tuple[str, str, int]) -> str:
    scheme, host, port = origin
    shown = f"[{host}]" if ":" in host else host
    return shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"


def _host_port(name: str) -> tuple[str, int | None]:
    """``host`` or ``host:port`` (``[v6]:port`` too) as a pair; port None when absent."""
    parts = urlsplit(f"//{name.strip()}")
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or name.strip().lower(), port)


def _may_keep_credentials(old: str, new: str) -> bool:
    """Whether ``Authorization`` may follow a redirect from ``old`` to ``new``: same
    origin, or the same host moving from http to https on default ports."""
    a, _ = _split(old)
    b, _ = _split(new)
    if a == b:
        return True
    return (
        a[1] == b[1]
        and a[0] == "http"
        and b[0] == "https"
        and a[2] == _DEFAULT_PORTS["http"]
        and b[2] == _DEFAULT_PORTS["https"]
    )


def _parse_proxy(url: str) -> tuple[str, int, str | None]:
    """A proxy URL (``http://[user:password@]host[:port]``) as (host, port, the
    ``Proxy-Authorization`` value or None)."""
    text = url if "://" in url else f"http://{url}"
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise InvalidURL(f"proxy {_safe_url(text)}: only http:// proxies are supported")
    authorization = None
    if parts.username is not None:
        import base64

        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return parts.hostname, port or 80, authorization


def _safe_url(url: str) -> str:
    """``url`` without user information or query (which may carry secrets)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else url.partition("?")[0]


def _describe(exc: BaseException) -> str:
    """A short text for a socket, ssl or http.client exception."""
    import ssl

    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
