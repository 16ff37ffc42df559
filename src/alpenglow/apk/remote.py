"""Remote repositories: indexes and packages through the shared cache (the edge).

:class:`Remote` decides, the way ``apk_db_open`` does, whether a network repository's index
is fetched again or read from the cache (:class:`IndexPolicy`: apk's ``autoupdate``,
``--cache-max-age``, ``-U``/``apk update``, ``--force-refresh``, ``--no-network``,
``--no-cache``), and reports the outcome in apk's terms (:class:`IndexOutcome`: the warning
``updating``/``opening from cache``/``updating and opening``/``fetching <url>: <reason>``,
and whether the repository counts as unavailable or stale). A freshly downloaded index is
handed to the caller's loader (which verifies its signature and parses it) *before* it is
stored, so an index that fails verification never replaces a good cached copy.

:class:`RepositoryPackageSource` gets ``.apk`` files for the commit: from the cache when a
verified copy is there, else from the repository (network or local path), each checked
against the identity (``C:``) and size (``S:``) in the signed index before it is returned;
a download that fails the check is refused and never stored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from alpenglow._record import record
from alpenglow.apk.cache import Cache
from alpenglow.apk.fetch import Fetcher, FetchError, is_network_url
from alpenglow.apk.repository import Repository, index_location
from alpenglow.errors import AlpenglowError, PackageError

if TYPE_CHECKING:
    from alpenglow.apk.index import Package
    from alpenglow.apk.signing import Keyring
    from alpenglow.apk.solver import Candidate

__all__ = [
    "DEFAULT_MAX_AGE",
    "NO_NETWORK",
    "IndexOutcome",
    "IndexPolicy",
    "Remote",
    "RepositoryPackageSource",
    "package_url",
]


def __dir__() -> list[str]:
    return __all__


T = TypeVar("T")

DEFAULT_MAX_AGE = 4 * 60 * 60
"""apk's default index age before a refresh: 4 hours (``--cache-max-age`` is in minutes)."""

NO_NETWORK = "network access disabled (--no-network)"
"""The reason given when a download would be needed under ``--no-network``."""

_MAX_INDEX_DOWNLOAD = 256 << 20
_MAX_PACKAGE_DOWNLOAD = 4 << 30


@record
class IndexPolicy:
    """When a cached index is refreshed (apk's ``is_index_stale``).

    ``autoupdate``: the command may refresh indexes at all (apk: applets that write,
    except ``del``, and never under ``--no-network``). ``max_age``: seconds a cached index
    stays fresh (0: always refresh; ``-U`` and ``apk update``). ``force``:
    ``--force-refresh`` (no conditional request either). ``network``: False under
    ``--no-network``. ``use_cache``: False under ``--no-cache`` (fetch, do not store).
    """

    autoupdate: bool = False
    max_age: float = DEFAULT_MAX_AGE
    force: bool = False
    network: bool = True
    use_cache: bool = True


@record
class IndexOutcome(Generic[T]):
    """What opening one remote index gave, in apk's terms."""

    url: str
    result: T | None
    """The loader's result, or None when no usable index was found."""
    action: str
    """``opening from cache`` or ``fetching`` (``--no-cache``)."""
    error: str | None = None
    """Why the index could not be opened (None when ``result`` is set)."""
    update_error: str | None = None
    """Why refreshing failed (the cached copy, if any, was used)."""
    updated: bool = False
    """A new index was downloaded and stored."""

    @property
    def unavailable(self) -> bool:
        return self.result is None

    @property
    def stale(self) -> bool:
        """Opened, but refreshing it failed."""
        return self.result is not None and self.update_error is not None

    @property
    def warning(self) -> str | None:
        """apk's warning line (without ``WARNING: ``), or None."""
        if self.error is None and self.update_error is None:
            return None
        if self.update_error is not None:
            action = "updating and opening" if self.error is not None else "updating"
            return f"{action} {self.url}: {self.update_error}"
        return f"{self.action} {self.url}: {self.error}"


def _reason(exc: AlpenglowError) -> str:
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else exc.message


class Remote:
    """Network repositories for one command: the cache, a fetcher and the policy."""

    def __init__(self, cache: Cache | None, fetcher: Fetcher, policy: IndexPolicy) -> None:
        self.cache = cache if policy.use_cache else None
        self.fetcher = fetcher
        self.policy = policy

    def close(self) -> None:
        self.fetcher.close()

    # -- indexes ----------------------------------------------------------------------------

    def open_index(self, url: str, load: Callable[[bytes], T]) -> IndexOutcome[T]:
        """Open the index at the network ``url``: refresh it if stale, else use the cache.

        ``load`` verifies and parses the bytes; it raises :class:`AlpenglowError` (its
        ``reason``, if any, is apk's wording) for an index that cannot be used.
        """
        if self.cache is None:
            return self._fetch_uncached(url, load)
        cache = self.cache
        entry = cache.index_entry(url)
        policy = self.policy
        update_error: str | None = None
        data = cache.read(entry)  # content-checked: a corrupt entry is gone afterwards
        refresh = policy.autoupdate and policy.network
        if refresh and (data is None or self._stale(entry)):
            with cache.locked(entry):
                # Another process may have refreshed it while we waited for the lock.
                data = cache.read(entry)
                if data is None or policy.max_age <= 0 or self._stale(entry):
                    update_error, fresh = self._refresh(url, entry, data, load)
                    if fresh is not None:
                        return IndexOutcome(url, fresh[0], "opening from cache", updated=True)
        if data is None:
            return IndexOutcome(
                url, None, "opening from cache", "No such file or directory", update_error
            )
        try:
            result = load(data)
        except AlpenglowError as exc:
            return IndexOutcome(url, None, "opening from cache", _reason(exc), update_error)
        return IndexOutcome(url, result, "opening from cache", None, update_error)

    def _refresh(
        self, url: str, entry: Path, cached: bytes | None, load: Callable[[bytes], T]
    ) -> tuple[str | None, tuple[T] | None]:
        """Download the index again (conditionally when there is a good copy and the
        refresh is not forced); store it once ``load`` accepted it. Returns (update error,
        (result,) when a new index was loaded)."""
        assert self.cache is not None
        meta = self.cache.meta(entry) if cached is not None and not self.policy.force else None
        try:
            download = self.fetcher.get(
                url,
                etag=meta.etag if meta else None,
                last_modified=meta.last_modified if meta else None,
                max_size=_MAX_INDEX_DOWNLOAD,
            )
        except FetchError as exc:
            return exc.reason, None
        if download.not_modified:
            if cached is None:
                return "HTTP 304 without a cached copy", None
            self.cache.touch(entry, etag=download.etag, last_modified=download.last_modified)
            return None, None
        try:
            result = load(download.data)
        except AlpenglowError as exc:
            return _reason(exc), None
        self.cache.store(
            entry, download.data, url=url, etag=download.etag, last_modified=download.last_modified
        )
        return None, (result,)

    def _stale(self, entry: Path) -> bool:
        policy = self.policy
        if policy.force or policy.max_age <= 0:
            return True
        assert self.cache is not None
        age = self.cache.age(entry)
        return age is None or age > policy.max_age

    def _fetch_uncached(self, url: str, load: Callable[[bytes], T]) -> IndexOutcome[T]:
        if not self.policy.network:
            return IndexOutcome(url, None, "fetching", NO_NETWORK)
        try:
            download = self.fetcher.get(url, max_size=_MAX_INDEX_DOWNLOAD)
            return IndexOutcome(url, load(download.data), "fetching")
        except FetchError as exc:
            return IndexOutcome(url, None, "fetching", exc.reason)
        except AlpenglowError as exc:
            return IndexOutcome(url, None, "fetching", _reason(exc))


def package_url(repository: Repository, package: Package) -> str:
    """Where a repository keeps a package: ``NAME-VERSION.apk`` beside its index file
    (``BASE/ARCH/`` on an Alpine mirror, the index's directory for an index-file URL).

    >>> from alpenglow.apk.index import Package
    >>> repo = Repository("https://m/alpine/v3.21/main/x86_64/APKINDEX.tar.gz",
    ...                   "https://m/alpine/v3.21/main")
    >>> package_url(repo, Package("musl", "1.2.5-r0"))
    'https://m/alpine/v3.21/main/x86_64/musl-1.2.5-r0.apk'
    """
    directory = repository.url.rsplit("/", 1)[0] if "/" in repository.url else "."
    return f"{directory}/{package.name}-{package.version}.apk"


def _key(candidate: Candidate, repository: Repository) -> tuple[str, str, str, str]:
    p = candidate.package
    return (p.name, p.version, p.checksum, repository.url)


class RepositoryPackageSource:
    """Package bytes for the commit (helper A's ``PackageSource``), verified.

    Network repositories go through the cache (``remote.cache``; None: no caching); local
    ones (paths, ``file:``, ``test:``) are read in place. Every file is checked against the
    signed index's identity and size before it is returned; for a package the index lists
    without an identity, its own signature must verify with ``keys`` (unless
    ``allow_untrusted``).
    """

    def __init__(
        self, remote: Remote, keys: Keyring | None, *, allow_untrusted: bool = False
    ) -> None:
        self.remote = remote
        self.keys = keys
        self.allow_untrusted = allow_untrusted
        self._ready: dict[tuple[str, str, str, str], bytes] = {}

    def fetch(self, candidate: Candidate, repository: Repository) -> bytes:
        """The verified ``.apk`` of ``candidate`` from ``repository``.

        Raises :class:`FetchError` (download failed), :class:`PackageError` (the bytes are
        not the package the index promised), :class:`SignatureError`.
        """
        package = candidate.package
        ready = self._ready.pop(_key(candidate, repository), None)
        if ready is not None:
            return ready
        url = package_url(repository, package)
        if not is_network_url(url):
            return self._local(url, package)
        cache = self.remote.cache
        if cache is None:
            return self._download(url, package)
        entry = cache.package_entry(package.name, package.version, package.checksum)
        data = cache.read(entry)
        if data is not None:
            if self._good(data, url, package):
                return data
            cache.discard(entry, data)
        with cache.locked(entry):
            data = cache.read(entry)  # filled by another process meanwhile?
            if data is not None and self._good(data, url, package):
                return data
            data = self._download(url, package)
            cache.store(entry, data, url=url)
            return data

    def fetch_all(self, items: Sequence[tuple[Candidate, Repository]]) -> list[bytes]:
        """:meth:`fetch` for many packages, in parallel (bounded by the fetcher's jobs)."""
        return self.remote.fetcher.run_all(
            [lambda c=c, r=r: self.fetch(c, r) for c, r in items]  # type: ignore[misc]
        )

    def prefetch(self, items: Sequence[tuple[Candidate, Repository]]) -> None:
        """Fetch (in parallel) and verify the packages a commit will ask for; the next
        :meth:`fetch` of each returns the bytes without checking them again."""
        wanted = [(c, r) for c, r in items if _key(c, r) not in self._ready]
        for (c, r), data in zip(wanted, self.fetch_all(wanted), strict=True):
            self._ready[_key(c, r)] = data

    # -- helpers ----------------------------------------------------------------------------

    def _download(self, url: str, package: Package) -> bytes:
        if not self.remote.policy.network:
            raise FetchError(url, NO_NETWORK)
        limit = package.size if package.size > 0 else _MAX_PACKAGE_DOWNLOAD
        download = self.remote.fetcher.get(url, max_size=limit)
        self._verify(download.data, url, package)
        return download.data

    def _local(self, url: str, package: Package) -> bytes:
        path = index_location(url)
        assert path is not None
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise FetchError(url, reason) from None
        self._verify(data, url, package)
        return data

    def _good(self, data: bytes, url: str, package: Package) -> bool:
        with contextlib.suppress(AlpenglowError):
            self._verify(data, url, package)
            return True
        return False

    def _verify(self, data: bytes, url: str, package: Package) -> None:
        from alpenglow.apk.package import read_package

        if package.size > 0 and len(data) != package.size:
            raise PackageError(
                f"{url}: size {len(data)} does not match the index ({package.size} bytes)"
            )
        read_package(
            data,
            self.keys,
            source=url,
            allow_untrusted=self.allow_untrusted,
            expected_identity=package.checksum or None,
        )
