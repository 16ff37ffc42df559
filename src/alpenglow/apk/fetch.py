"""Downloading over HTTP(S): retries, conditional requests, parallel jobs, progress hooks.

A :class:`Fetcher` is a session object (no module state) over an
:class:`alpenglow.http_client.HttpClient` that the caller may inject (tests point it at a
server on 127.0.0.1).
:meth:`Fetcher.get` retries timeouts, connection errors, ``5xx``, ``408`` and ``429`` with
exponential backoff and jitter (``Retry-After`` is honoured, capped); other statuses fail
at once. After the last attempt it raises :class:`FetchError`, whose one-line message names
the URL and the last status or network error. A request can carry the validators of a
cached copy (``ETag`` / ``Last-Modified``); a ``304`` answer comes back as a
:class:`Download` with ``not_modified`` set and no body.

Progress goes to a :class:`Progress` (no-op by default): the library never prints, the CLI
chooses a rich bar or plain lines. ``http.client`` is imported only when the first
connection is made, so commands that never touch the network do not pay for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from alpenglow._record import record
from alpenglow.apk.repository import is_network_url
from alpenglow.errors import AlpenglowError
from alpenglow.http_client import RETRY_STATUSES, RetryPolicy, retry_after_seconds

if TYPE_CHECKING:
    from alpenglow.http_client import HttpClient, TransportError

__all__ = [
    "RETRY_STATUSES",
    "Download",
    "FetchError",
    "Fetcher",
    "NullProgress",
    "Progress",
    "RetryPolicy",
    "is_network_url",
    "retry_after_seconds",
]


def __dir__() -> list[str]:
    return __all__


T = TypeVar("T")

_REASONS = {
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class FetchError(AlpenglowError):
    """A download failed for good. ``reason`` is the short cause (``HTTP 404: Not Found``,
    ``Connection refused``...), ``status`` the last HTTP status if there was one."""

    def __init__(self, url: str, reason: str, *, status: int | None = None, attempts: int = 1):
        tail = f" (after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"{url}: {reason}{tail}")
        self.url = url
        self.reason = reason
        self.status = status
        self.attempts = attempts


@record
class Download:
    """One answered request: the bytes and the validators to store with them."""

    url: str
    status: int
    data: bytes
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        """The server said the cached copy is current (``304``); ``data`` is empty."""
        return self.status == 304


class Progress(Protocol):
    """Hooks a fetcher calls; implementations must be thread-safe (jobs run in parallel)."""

    def started(self, url: str, total: int | None) -> None: ...

    def advanced(self, url: str, nbytes: int) -> None: ...

    def finished(self, url: str, ok: bool) -> None: ...

    def retrying(self, url: str, attempt: int, delay: float, reason: str) -> None: ...


class NullProgress:
    """Reports nothing."""

    def started(self, url: str, total: int | None) -> None:
        pass

    def advanced(self, url: str, nbytes: int) -> None:
        pass

    def finished(self, url: str, ok: bool) -> None:
        pass

    def retrying(self, url: str, attempt: int, delay: float, reason: str) -> None:
        pass


class _Retry(Exception):
    """One failed attempt that may be retried."""

    def __init__(self, reason: str, status: int | None, wait: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.wait = wait


def _network_reason(exc: TransportError) -> str:
    from alpenglow.http_client import ConnectError, ConnectionBroken, ConnectionRefused, Timeout

    if isinstance(exc, Timeout):
        return "Operation timed out"
    if isinstance(exc, ConnectionRefused):
        return "Connection refused"
    if isinstance(exc, ConnectError):
        return f"Connection failed: {exc.reason}"
    if isinstance(exc, ConnectionBroken):
        return f"Connection broken: {exc.reason}"
    return f"{type(exc).__name__}: {exc.reason}"


class Fetcher:
    """An HTTP session: one connection pool, shared by the threads of :meth:`run_all`.

    ``http`` is the HTTP session to use (default: one made when first needed, with
    ``timeout``, ``verify_tls`` and ``jobs`` idle connections kept); ``sleep`` and
    ``rand`` replace :func:`time.sleep` and :func:`random.random` (tests make retries
    instant and deterministic). ``jobs`` bounds parallel downloads.
    """

    def __init__(
        self,
        *,
        http: HttpClient | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        progress: Progress | None = None,
        jobs: int = 4,
        verify_tls: bool = True,
        user_agent: str = "alpenglow",
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.progress: Progress = progress or NullProgress()
        self.jobs = max(1, jobs)
        self._given_http = http
        self._verify = verify_tls
        self._headers = {"User-Agent": user_agent}
        self._sleep = sleep
        if rand is None:
            import random

            rand = random.random
        self._rand = rand
        self._client: HttpClient | None = http
        self._lock = threading.Lock()

    # -- session ------------------------------------------------------------------------

    def _session(self) -> HttpClient:
        with self._lock:
            if self._client is None:
                from alpenglow.http_client import HttpClient

                self._client = HttpClient(
                    timeout=self.timeout,
                    verify=self._verify,
                    headers=self._headers,
                    max_idle=self.jobs,
                )
            return self._client

    def close(self) -> None:
        """Close the connection pool (the fetcher may be used again afterwards); a given
        ``http`` session is left to its owner."""
        with self._lock:
            client, self._client = self._client, self._given_http
        if client is not None and client is not self._given_http:
            client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one download -------------------------------------------------------------------

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_size: int | None = None,
    ) -> Download:
        """GET ``url``, retrying as the policy says. With ``etag``/``last_modified`` the
        request is conditional and may return a ``304`` :class:`Download`.

        Raises :class:`FetchError` (never a transport exception).
        """
        if not is_network_url(url):
            raise FetchError(url, "Protocol not supported")
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        attempts = max(1, self.retry.attempts)
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(url, headers, max_size)
            except _Retry as failure:
                if attempt == attempts:
                    raise FetchError(
                        url, failure.reason, status=failure.status, attempts=attempt
                    ) from None
                delay = self.retry.delay(attempt, self._rand())
                if failure.wait is not None:
                    delay = min(failure.wait, self.retry.max_retry_after)
                self.progress.retrying(url, attempt, delay, failure.reason)
                if delay > 0:
                    self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, url: str, headers: dict[str, str], max_size: int | None) -> Download:
        from alpenglow.http_client import HttpError, TransportError

        client = self._session()
        started = False
        ok = False
        try:
            with client.request(
                "GET", url, headers=headers, stream=True, follow_redirects=True
            ) as response:
                status = response.status
                if status == 304:
                    ok = True
                    return Download(
                        url,
                        304,
                        b"",
                        response.headers.get("ETag"),
                        response.headers.get("Last-Modified"),
                    )
                if status != 200:
                    reason = f"HTTP {status}: {response.reason or _REASONS.get(status, '')}"
                    reason = reason.rstrip(": ")
                    if status in RETRY_STATUSES or 500 <= status < 600:
                        wait = retry_after_seconds(response.headers.get("Retry-After"))
                        raise _Retry(reason, status, wait)
                    raise FetchError(url, reason, status=status)
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if max_size is not None and total is not None and total > max_size:
                    raise FetchError(url, f"too large ({total} bytes, limit {max_size})")
                self.progress.started(url, total)
                started = True
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if max_size is not None and size > max_size:
                        raise FetchError(url, f"too large (more than {max_size} bytes)")
                    chunks.append(chunk)
                    self.progress.advanced(url, len(chunk))
                if total is not None and size != total:
                    raise _Retry(f"Connection broken: got {size} of {total} bytes", None, None)
                ok = True
                return Download(
                    url,
                    200,
                    b"".join(chunks),
                    response.headers.get("ETag"),
                    response.headers.get("Last-Modified"),
                )
        except TransportError as exc:
            raise _Retry(_network_reason(exc), None, None) from None
        except HttpError as exc:  # invalid URL and the like: not worth retrying
            raise FetchError(url, exc.reason) from None
        finally:
            if started:
                self.progress.finished(url, ok)

    # -- many downloads -----------------------------------------------------------------

    def run_all(self, jobs: Iterable[Callable[[], T]]) -> list[T]:
        """Run the callables on at most ``self.jobs`` threads; results in input order.

        The first exception is re-raised once the running jobs have finished; jobs not yet
        started are cancelled.
        """
        todo: Sequence[Callable[[], T]] = list(jobs)
        if len(todo) <= 1 or self.jobs == 1:
            return [job() for job in todo]
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

        with ThreadPoolExecutor(max_workers=min(self.jobs, len(todo))) as pool:
            futures = [pool.submit(job) for job in todo]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future.done() and not future.cancelled():
                    error = future.exception()
                    if error is not None:
                        for other in futures:
                            other.cancel()
                        raise error
            return [future.result() for future in futures]
