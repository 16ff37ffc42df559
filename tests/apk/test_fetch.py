"""Fetcher: retries, backoff, Retry-After, conditional requests, errors, parallel jobs.

Every test talks to a real HTTP server on 127.0.0.1 (tests.apk.http_mirror).
"""

from __future__ import annotations

import email.utils
import socket
import threading
from collections.abc import Iterator

import pytest

from alpenglow.apk import fetch
from alpenglow.apk.fetch import Fetcher, FetchError, RetryPolicy, retry_after_seconds
from alpenglow.http_client import HttpClient
from tests.apk.http_mirror import Behaviour, FlakyServer, serve

FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, max_retry_after=0.05)


class Recorder:
    """A Progress that remembers what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.lock = threading.Lock()

    def started(self, url: str, total: int | None) -> None:
        with self.lock:
            self.events.append(("started", url, str(total)))

    def advanced(self, url: str, nbytes: int) -> None:
        with self.lock:
            self.events.append(("advanced", url, str(nbytes)))

    def finished(self, url: str, ok: bool) -> None:
        with self.lock:
            self.events.append(("finished", url, str(ok)))

    def retrying(self, url: str, attempt: int, delay: float, reason: str) -> None:
        with self.lock:
            self.events.append(("retrying", url, str(attempt), f"{delay:g}", reason))


@pytest.fixture
def server() -> Iterator[FlakyServer]:
    srv = FlakyServer(files={"a/file.bin": b"hello world\n" * 100, "b": b"bee"})
    yield from serve(srv)


def make(sleeps: list[float] | None = None, **kw: object) -> tuple[Fetcher, Recorder]:
    progress = Recorder()
    log = sleeps if sleeps is not None else []
    fetcher = Fetcher(
        retry=FAST,
        progress=progress,
        sleep=log.append,
        rand=lambda: 0.0,
        **kw,  # type: ignore[arg-type]
    )
    return fetcher, progress


def test_exports() -> None:
    assert fetch.__all__ == [
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


def test_plain_get_reports_progress_and_validators(server: FlakyServer) -> None:
    fetcher, progress = make()
    with fetcher:
        got = fetcher.get(server.url("a/file.bin"))
    assert got.status == 200
    assert got.data == server.files["a/file.bin"]
    assert got.etag
    assert got.etag.startswith('"')
    assert got.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert not got.not_modified
    url = server.url("a/file.bin")
    assert progress.events[0] == ("started", url, "1200")
    assert sum(int(e[2]) for e in progress.events if e[0] == "advanced") == 1200
    assert progress.events[-1] == ("finished", url, "True")


def test_500_then_200_is_retried(server: FlakyServer) -> None:
    server.misbehave("b", Behaviour(status=500))
    sleeps: list[float] = []
    fetcher, progress = make(sleeps)
    with fetcher:
        assert fetcher.get(server.url("b")).data == b"bee"
    assert len(server.requests("b")) == 2
    retries = [e for e in progress.events if e[0] == "retrying"]
    assert retries == [
        ("retrying", server.url("b"), "1", "0.005", "HTTP 500: Internal Server Error")
    ]
    assert sleeps == [0.005]  # backoff 0.01, jitter drops up to half (rand=0: exactly half)


def test_429_honours_retry_after(server: FlakyServer) -> None:
    server.misbehave("b", Behaviour(status=429, headers=(("Retry-After", "0"),)))
    sleeps: list[float] = []
    fetcher, progress = make(sleeps)
    with fetcher:
        assert fetcher.get(server.url("b")).data == b"bee"
    assert len(server.requests("b")) == 2
    assert sleeps == []  # Retry-After: 0 means at once
    assert [e[3:] for e in progress.events if e[0] == "retrying"] == [
        ("0", "HTTP 429: Too Many Requests")
    ]


def test_retry_after_is_capped(server: FlakyServer) -> None:
    server.misbehave("b", Behaviour(status=503, headers=(("Retry-After", "3600"),)))
    sleeps: list[float] = []
    fetcher, _ = make(sleeps)
    with fetcher:
        assert fetcher.get(server.url("b")).data == b"bee"
    assert sleeps == [0.05]


def test_connection_dropped_mid_body_is_retried(server: FlakyServer) -> None:
    server.misbehave("a/file.bin", Behaviour(drop=True))
    fetcher, progress = make()
    with fetcher:
        got = fetcher.get(server.url("a/file.bin"))
    assert got.data == server.files["a/file.bin"]
    assert len(server.requests("a/file.bin")) == 2
    retry = [e for e in progress.events if e[0] == "retrying"]
    assert len(retry) == 1
    assert retry[0][4].startswith("Connection broken")
    finished = [e for e in progress.events if e[0] == "finished"]
    assert [e[2] for e in finished] == ["False", "True"]


def test_404_fails_at_once_naming_the_url(server: FlakyServer) -> None:
    fetcher, _ = make()
    url = server.url("missing/APKINDEX.tar.gz")
    with fetcher, pytest.raises(FetchError) as info:
        fetcher.get(url)
    assert str(info.value) == f"{url}: HTTP 404: Not Found"
    assert info.value.status == 404
    assert info.value.reason == "HTTP 404: Not Found"
    assert len(server.requests("missing/APKINDEX.tar.gz")) == 1


def test_persistent_5xx_gives_up_after_the_last_attempt(server: FlakyServer) -> None:
    server.misbehave("b", *[Behaviour(status=502)] * 5)
    sleeps: list[float] = []
    fetcher, _ = make(sleeps)
    with fetcher, pytest.raises(FetchError) as info:
        fetcher.get(server.url("b"))
    assert str(info.value) == f"{server.url('b')}: HTTP 502: Bad Gateway (after 3 attempts)"
    assert info.value.attempts == 3
    assert len(server.requests("b")) == 3
    assert sleeps == [0.005, 0.01]  # exponential: 0.01, 0.02 (halved by rand=0)


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(backoff=1.0, max_backoff=4.0)
    assert [policy.delay(n, 0.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert [policy.delay(n, 0.999) for n in (1, 3)] == pytest.approx([0.9995, 3.998])


def test_conditional_request_gets_304(server: FlakyServer) -> None:
    fetcher, _ = make()
    with fetcher:
        first = fetcher.get(server.url("b"))
        again = fetcher.get(server.url("b"), etag=first.etag)
        by_date = fetcher.get(server.url("b"), last_modified=first.last_modified)
        stale = fetcher.get(server.url("b"), etag='"other"')
    assert again.not_modified
    assert again.data == b""
    assert by_date.not_modified
    assert not stale.not_modified
    assert stale.data == b"bee"
    sent = server.requests("b")
    assert sent[1]["if-none-match"] == first.etag
    assert sent[2]["if-modified-since"] == first.last_modified
    assert "if-none-match" not in sent[0]
    assert "if-modified-since" not in sent[0]


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    fetcher, progress = make()
    with fetcher, pytest.raises(FetchError) as info:
        fetcher.get(url)
    assert str(info.value) == f"{url}: Connection refused (after 3 attempts)"
    assert info.value.status is None
    assert len([e for e in progress.events if e[0] == "retrying"]) == 2


def test_size_limit(server: FlakyServer) -> None:
    fetcher, _ = make()
    with fetcher, pytest.raises(FetchError, match="too large"):
        fetcher.get(server.url("a/file.bin"), max_size=100)


def test_only_http_urls() -> None:
    fetcher, _ = make()
    with pytest.raises(FetchError, match="Protocol not supported"):
        fetcher.get("ftp://127.0.0.1/x")
    assert fetch.is_network_url("HTTPS://a/b")
    assert not fetch.is_network_url("file:///a")
    assert not fetch.is_network_url("test:///a")


def test_injected_http_session(server: FlakyServer) -> None:
    """The HTTP session can be injected (style: transports are injected): the fetcher
    uses it, with its headers, and leaves it open for its owner."""
    server.misbehave("b", Behaviour(status=503, headers=(("Retry-After", "0"),)))
    with HttpClient(headers={"User-Agent": "injected/1"}) as http:
        fetcher, _ = make(http=http)
        with fetcher:
            got = fetcher.get(server.url("b"))
        assert got.data == b"bee"
        assert got.etag
        sent = server.requests("b")
        assert [h["user-agent"] for h in sent] == ["injected/1"] * 2
        assert fetcher.get(server.url("b")).data == b"bee"  # still usable after close
        assert len(server.requests("b")) == 3


def test_run_all_in_parallel_keeps_order(server: FlakyServer) -> None:
    server.delay = 0.05
    fetcher, _ = make(jobs=4)
    started = threading.Event()
    active = [0, 0]  # current, peak
    lock = threading.Lock()

    def job(path: str) -> bytes:
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
        started.set()
        try:
            return fetcher.get(server.url(path)).data
        finally:
            with lock:
                active[0] -= 1

    paths = ["b", "a/file.bin"] * 4
    with fetcher:
        results = fetcher.run_all([lambda p=p: job(p) for p in paths])  # type: ignore[misc]
    assert results == [server.files[p] for p in paths]
    assert 1 < active[1] <= 4


def test_run_all_raises_the_first_failure(server: FlakyServer) -> None:
    fetcher, _ = make(jobs=3)
    paths = ["b", "nope", "a/file.bin"]
    with fetcher, pytest.raises(FetchError, match="nope: HTTP 404"):
        fetcher.run_all([lambda p=p: fetcher.get(server.url(p)) for p in paths])  # type: ignore[misc]


def test_retry_after_forms() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert retry_after_seconds(date, now=now) == 7.0
    assert retry_after_seconds(email.utils.formatdate(now - 7, usegmt=True), now=now) == 0.0
    assert retry_after_seconds(" 12 ") == 12.0
    assert retry_after_seconds("") is None
