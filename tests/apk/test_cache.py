"""The shared download cache and remote repositories through it (apk.cache, apk.remote).

Indexes and packages come from a real HTTP server on 127.0.0.1 serving a signed repository
made with alpenglow's own writers; the server can misbehave on request.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from alpenglow.apk import cache as cache_module
from alpenglow.apk import remote as remote_module
from alpenglow.apk.cache import Cache, EntryMeta, default_cache_dir, package_file_name
from alpenglow.apk.fetch import Fetcher, FetchError, RetryPolicy
from alpenglow.apk.index import IndexArchive, load_index_archive
from alpenglow.apk.remote import (
    NO_NETWORK,
    IndexPolicy,
    Remote,
    RepositoryPackageSource,
    package_url,
)
from alpenglow.apk.repository import Repository, cache_file_name
from alpenglow.apk.signing import Keyring, generate_keypair
from alpenglow.apk.solver import Candidate
from alpenglow.errors import AlpenglowError, PackageError
from tests.apk.http_mirror import (
    Behaviour,
    FlakyServer,
    MirrorRepo,
    build_mirror,
    publish,
    serve,
    write_keys,
)

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
FAST = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, max_retry_after=0.01)


@pytest.fixture(scope="module")
def mirror() -> MirrorRepo:
    return build_mirror()


@pytest.fixture(scope="module")
def other_key() -> tuple[bytes, bytes]:
    return generate_keypair(1024)


@pytest.fixture
def server(mirror: MirrorRepo) -> Iterator[FlakyServer]:
    srv = FlakyServer()
    publish(srv, mirror)
    yield from serve(srv)


@pytest.fixture
def keys(tmp_path: Path, mirror: MirrorRepo) -> Keyring:
    return Keyring.from_directory(write_keys(tmp_path / "keys", mirror))


def index_path(mirror: MirrorRepo) -> str:
    return f"{mirror.base}/{mirror.arch}/APKINDEX.tar.gz"


def loader(keys: Keyring, url: str) -> Callable[[bytes], IndexArchive]:
    def load(data: bytes) -> IndexArchive:
        return load_index_archive(data, keys, source=url)

    return load


def make_remote(tmp_path: Path, **policy: object) -> Remote:
    fetcher = Fetcher(retry=FAST, sleep=lambda _s: None)
    return Remote(Cache(tmp_path / "cache"), fetcher, IndexPolicy(**policy))  # type: ignore[arg-type]


# -- the cache itself ---------------------------------------------------------------------


def test_exports() -> None:
    assert cache_module.__all__ == ["Cache", "EntryMeta", "default_cache_dir", "package_file_name"]
    assert remote_module.__all__ == [
        "DEFAULT_MAX_AGE",
        "NO_NETWORK",
        "IndexOutcome",
        "IndexPolicy",
        "Remote",
        "RepositoryPackageSource",
        "package_url",
    ]


def test_default_directory() -> None:
    assert default_cache_dir({"XDG_CACHE_HOME": "/x/c", "HOME": "/h"}) == Path("/x/c/alpenglow")
    assert default_cache_dir({"HOME": "/h"}) == Path("/h/.cache/alpenglow")
    assert default_cache_dir({"XDG_CACHE_HOME": "", "HOME": "/h"}) == Path("/h/.cache/alpenglow")


def test_layout(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    url = "https://dl-cdn.alpinelinux.org/alpine/v3.21/main/x86_64/APKINDEX.tar.gz"
    assert cache.index_entry(url) == tmp_path / "apk/indexes" / cache_file_name(url)
    identity = "Q1" + "3q2+7w" + "A" * 21 + "="  # first bytes de ad be ef
    assert cache.package_entry("musl", "1.2.5-r0", identity) == (
        tmp_path / "apk/packages/musl-1.2.5-r0.deadbeef.apk"
    )
    # names that could escape the directory are hashed instead
    odd = package_file_name("../x", "1", identity)
    assert "/" not in odd
    assert odd.startswith("pkg-")
    assert odd.endswith(".deadbeef.apk")


def test_store_read_and_meta(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.index_entry("http://127.0.0.1/x")
    assert cache.read(entry) is None
    assert cache.age(entry) is None
    assert cache.store(entry, b"payload", url="http://127.0.0.1/x", etag='"e"', last_modified="L")
    assert cache.read(entry) == b"payload"
    meta = cache.meta(entry)
    assert meta == EntryMeta(
        "http://127.0.0.1/x",
        7,
        "239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5",
        '"e"',
        "L",
    )
    age = cache.age(entry)
    assert age is not None
    assert 0 <= age < 60
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name, entry.name + ".meta"]


def test_corrupt_entry_is_discarded(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.index_entry("http://127.0.0.1/x")
    cache.store(entry, b"payload", url="u")
    entry.write_bytes(b"paYload")  # same size, other bytes
    assert cache.read(entry) is None
    assert not entry.exists()
    assert not entry.with_name(entry.name + ".meta").exists()
    cache.store(entry, b"payload", url="u")
    entry.with_name(entry.name + ".meta").write_text("{not json")
    assert cache.read(entry) is None
    assert not entry.exists()


def test_touch_resets_age_and_validators(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.index_entry("u")
    cache.store(entry, b"x", url="u", etag='"1"')
    old = time.time() - 3600
    os.utime(entry, (old, old))
    age = cache.age(entry)
    assert age is not None
    assert age > 3500
    cache.touch(entry, etag='"2"')
    age = cache.age(entry)
    assert age is not None
    assert age < 60
    meta = cache.meta(entry)
    assert meta is not None
    assert meta.etag == '"2"'
    assert cache.read(entry) == b"x"


def test_unwritable_cache_is_still_readable(tmp_path: Path) -> None:
    """Works as root too: a file where a directory should be cannot be written into."""
    cache = Cache(tmp_path)
    entry = cache.index_entry("u")
    cache.store(entry, b"x", url="u")
    (tmp_path / "apk/locks").write_bytes(b"")  # no lock files can be made
    (tmp_path / "apk/packages").write_bytes(b"")  # no packages can be stored
    assert cache.read(entry) == b"x"
    entry.write_bytes(b"y")  # corrupt: detected, and nothing breaks without locks
    assert cache.read(entry) is None
    assert not cache.store(cache.package_entry("a", "1", "Q1x"), b"y", url="v")


# -- indexes through the cache ------------------------------------------------------------


def test_index_fetched_when_missing_then_served_from_cache(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    url = server.url(index_path(mirror))
    remote = make_remote(tmp_path, autoupdate=True)
    first = remote.open_index(url, loader(keys, url))
    assert first.updated
    assert first.warning is None
    assert isinstance(first.result, IndexArchive)
    assert first.result.description == mirror.description
    assert [p.name for p in first.result.packages] == ["app", "lib", "tool"]
    second = remote.open_index(url, loader(keys, url))
    assert not second.updated
    assert second.result == first.result
    assert len(server.requests(index_path(mirror))) == 1  # fresh: no request at all
    entry = Cache(tmp_path / "cache").index_entry(url)
    assert entry.read_bytes() == mirror.index


def test_stale_index_is_revalidated_with_a_conditional_request(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    url = server.url(index_path(mirror))
    make_remote(tmp_path, autoupdate=True).open_index(url, loader(keys, url))
    entry = Cache(tmp_path / "cache").index_entry(url)
    old = time.time() - 5 * 3600
    os.utime(entry, (old, old))
    outcome = make_remote(tmp_path, autoupdate=True).open_index(url, loader(keys, url))
    assert not outcome.updated  # 304: the cached copy is current
    assert outcome.warning is None
    assert outcome.result is not None
    sent = server.requests(index_path(mirror))
    assert len(sent) == 2
    assert sent[1]["if-none-match"].startswith('"')
    age = Cache(tmp_path / "cache").age(entry)
    assert age is not None
    assert age < 60  # confirmed current: its age starts again


def test_max_age_and_force(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    url = server.url(index_path(mirror))
    make_remote(tmp_path, autoupdate=True).open_index(url, loader(keys, url))
    # -U / apk update: max_age 0 -> always asks (conditionally)
    make_remote(tmp_path, autoupdate=True, max_age=0).open_index(url, loader(keys, url))
    # --force-refresh: asks unconditionally
    forced = make_remote(tmp_path, autoupdate=True, force=True).open_index(url, loader(keys, url))
    assert forced.updated
    # read-only commands never refresh
    make_remote(tmp_path, autoupdate=False, max_age=0).open_index(url, loader(keys, url))
    sent = server.requests(index_path(mirror))
    assert len(sent) == 3
    assert "if-none-match" in sent[1]
    assert "if-none-match" not in sent[2]


def test_failed_refresh_keeps_the_cached_index_as_stale(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    url = server.url(index_path(mirror))
    make_remote(tmp_path, autoupdate=True).open_index(url, loader(keys, url))
    server.misbehave(index_path(mirror), *[Behaviour(status=500)] * 3)
    outcome = make_remote(tmp_path, autoupdate=True, max_age=0).open_index(url, loader(keys, url))
    assert outcome.result is not None
    assert outcome.stale
    assert not outcome.unavailable
    assert outcome.warning == (f"updating {url}: HTTP 500: Internal Server Error")


def test_refresh_with_a_bad_index_does_not_replace_the_good_one(
    tmp_path: Path,
    server: FlakyServer,
    mirror: MirrorRepo,
    keys: Keyring,
    other_key: tuple[bytes, bytes],
) -> None:
    url = server.url(index_path(mirror))
    make_remote(tmp_path, autoupdate=True).open_index(url, loader(keys, url))
    evil = build_mirror(keypair=other_key, description="evil")
    server.misbehave(index_path(mirror), Behaviour(body=evil.index))
    outcome = make_remote(tmp_path, autoupdate=True, force=True).open_index(url, loader(keys, url))
    assert outcome.stale
    assert outcome.warning is not None
    assert outcome.warning.startswith(f"updating {url}: ")
    assert outcome.warning.endswith(
        "BAD signature (key test-65000000.rsa.pub)"
    )  # same name, other key
    assert isinstance(outcome.result, IndexArchive)
    assert outcome.result.description == mirror.description
    entry = Cache(tmp_path / "cache").index_entry(url)
    assert entry.read_bytes() == mirror.index


def test_unavailable_index_warnings(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    url = server.url("alpine/nope/x86_64/APKINDEX.tar.gz")
    outcome = make_remote(tmp_path, autoupdate=True).open_index(url, loader(keys, url))
    assert outcome.unavailable
    assert outcome.warning == f"updating and opening {url}: HTTP 404: Not Found"
    # --no-network (no autoupdate): only the cache is looked at
    outcome = make_remote(tmp_path, autoupdate=False, network=False).open_index(
        url, loader(keys, url)
    )
    assert outcome.warning == f"opening from cache {url}: No such file or directory"
    # --no-cache: fetched every time, never stored
    good = server.url(index_path(mirror))
    uncached = make_remote(tmp_path, use_cache=False, autoupdate=True)
    outcome = uncached.open_index(good, loader(keys, good))
    assert outcome.result is not None
    assert outcome.action == "fetching"
    assert not (tmp_path / "cache/apk/indexes" / cache_file_name(good)).exists()
    outcome = make_remote(tmp_path, use_cache=False, network=False).open_index(
        good, loader(keys, good)
    )
    assert outcome.warning == f"fetching {good}: {NO_NETWORK}"


def test_corrupt_cached_index_is_refetched(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    url = server.url(index_path(mirror))
    make_remote(tmp_path, autoupdate=True).open_index(url, loader(keys, url))
    entry = Cache(tmp_path / "cache").index_entry(url)
    data = bytearray(entry.read_bytes())
    data[-30] ^= 0xFF
    entry.write_bytes(bytes(data))
    outcome = make_remote(tmp_path, autoupdate=True).open_index(url, loader(keys, url))
    assert outcome.updated
    assert outcome.result is not None
    assert entry.read_bytes() == mirror.index
    assert len(server.requests(index_path(mirror))) == 2


# -- packages -----------------------------------------------------------------------------


def candidate(mirror: MirrorRepo, name: str) -> Candidate:
    return Candidate(next(p for p in mirror.records if p.name == name))


def repository(server: FlakyServer, mirror: MirrorRepo) -> Repository:
    base = server.url(mirror.base)
    return Repository(f"{base}/{mirror.arch}/APKINDEX.tar.gz", base)


def test_package_url() -> None:
    from alpenglow.apk.index import Package

    ndx = Repository("http://127.0.0.1:1/repo/custom.tar.gz", "http://127.0.0.1:1/repo")
    assert package_url(ndx, Package("a", "1-r0")) == "http://127.0.0.1:1/repo/a-1-r0.apk"


def test_package_is_verified_stored_and_reused(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    source = RepositoryPackageSource(make_remote(tmp_path), keys)
    repo = repository(server, mirror)
    data = source.fetch(candidate(mirror, "app"), repo)
    assert data == mirror.packages["app-2.0-r0.apk"]
    again = RepositoryPackageSource(make_remote(tmp_path), keys)
    assert again.fetch(candidate(mirror, "app"), repo) == data
    path = f"{mirror.base}/{mirror.arch}/app-2.0-r0.apk"
    assert len(server.requests(path)) == 1
    stored = list((tmp_path / "cache/apk/packages").glob("app-2.0-r0.*.apk"))
    assert len(stored) == 1
    assert stored[0].read_bytes() == data


def test_wrong_bytes_are_refused_and_not_cached(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    source = RepositoryPackageSource(make_remote(tmp_path), keys)
    repo = repository(server, mirror)
    path = f"{mirror.base}/{mirror.arch}/app-2.0-r0.apk"
    lib = mirror.packages["lib-1.0-r0.apk"]
    app_size = len(mirror.packages["app-2.0-r0.apk"])
    # another valid package of exactly the expected size: only the identity can tell
    impostor = replace(
        candidate(mirror, "app"), package=replace(candidate(mirror, "app").package, size=len(lib))
    )
    server.misbehave(path, Behaviour(body=lib))
    with pytest.raises(PackageError, match="BAD checksum") as info:
        source.fetch(impostor, repo)
    assert server.url(path) in str(info.value)
    assert not list((tmp_path / "cache/apk/packages").glob("app-*"))
    # wrong size: refused before parsing
    server.misbehave(path, Behaviour(body=b"x" * app_size))
    with pytest.raises(AlpenglowError):
        source.fetch(candidate(mirror, "app"), repo)
    assert not list((tmp_path / "cache/apk/packages").glob("app-*"))
    # and the real one is still fetched fine afterwards
    assert source.fetch(candidate(mirror, "app"), repo) == mirror.packages["app-2.0-r0.apk"]


def test_corrupt_cached_package_is_refetched(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    source = RepositoryPackageSource(make_remote(tmp_path), keys)
    repo = repository(server, mirror)
    source.fetch(candidate(mirror, "lib"), repo)
    (stored,) = (tmp_path / "cache/apk/packages").glob("lib-1.0-r0.*.apk")
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    assert source.fetch(candidate(mirror, "lib"), repo) == mirror.packages["lib-1.0-r0.apk"]
    assert stored.read_bytes() == mirror.packages["lib-1.0-r0.apk"]
    assert len(server.requests(f"{mirror.base}/{mirror.arch}/lib-1.0-r0.apk")) == 2


def test_dropped_download_is_retried(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    path = f"{mirror.base}/{mirror.arch}/tool-0.5-r1.apk"
    server.misbehave(path, Behaviour(drop=True), Behaviour(status=503))
    source = RepositoryPackageSource(make_remote(tmp_path), keys)
    got = source.fetch(candidate(mirror, "tool"), repository(server, mirror))
    assert got == mirror.packages["tool-0.5-r1.apk"]
    assert len(server.requests(path)) == 3


def test_missing_package_names_the_url(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    path = f"{mirror.base}/{mirror.arch}/tool-0.5-r1.apk"
    del server.files[path]
    source = RepositoryPackageSource(make_remote(tmp_path), keys)
    with pytest.raises(FetchError) as info:
        source.fetch(candidate(mirror, "tool"), repository(server, mirror))
    assert str(info.value) == f"{server.url(path)}: HTTP 404: Not Found"


def test_no_network_uses_only_the_cache(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    repo = repository(server, mirror)
    RepositoryPackageSource(make_remote(tmp_path), keys).fetch(candidate(mirror, "lib"), repo)
    offline = RepositoryPackageSource(make_remote(tmp_path, network=False), keys)
    assert offline.fetch(candidate(mirror, "lib"), repo) == mirror.packages["lib-1.0-r0.apk"]
    with pytest.raises(FetchError, match="network access disabled"):
        offline.fetch(candidate(mirror, "app"), repo)


def test_fetch_all_in_parallel(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, keys: Keyring
) -> None:
    server.delay = 0.02
    source = RepositoryPackageSource(make_remote(tmp_path), keys)
    repo = repository(server, mirror)
    names = ["app", "lib", "tool"]
    got = source.fetch_all([(candidate(mirror, n), repo) for n in names])
    assert got == [
        mirror.packages[f"{c.package.name}-{c.package.version}.apk"]
        for c in (candidate(mirror, n) for n in names)
    ]


def test_local_repository_packages_are_verified_too(
    tmp_path: Path, mirror: MirrorRepo, keys: Keyring
) -> None:
    directory = tmp_path / "local" / mirror.arch
    directory.mkdir(parents=True)
    (directory / "APKINDEX.tar.gz").write_bytes(mirror.index)
    (directory / "lib-1.0-r0.apk").write_bytes(mirror.packages["lib-1.0-r0.apk"])
    (directory / "app-2.0-r0.apk").write_bytes(mirror.packages["tool-0.5-r1.apk"])
    repo = Repository(f"file://{directory}/APKINDEX.tar.gz", f"file://{tmp_path}/local")
    source = RepositoryPackageSource(make_remote(tmp_path), keys)
    assert source.fetch(candidate(mirror, "lib"), repo) == mirror.packages["lib-1.0-r0.apk"]
    with pytest.raises(PackageError):
        source.fetch(candidate(mirror, "app"), repo)
    with pytest.raises(FetchError, match="No such file or directory"):
        source.fetch(candidate(mirror, "tool"), repo)


# -- two processes at once ----------------------------------------------------------------

_FILLER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from alpenglow.apk.cache import Cache
    from alpenglow.apk.fetch import Fetcher
    from alpenglow.apk.index import load_index_archive
    from alpenglow.apk.remote import IndexPolicy, Remote, RepositoryPackageSource
    from alpenglow.apk.repository import Repository
    from alpenglow.apk.signing import Keyring
    from alpenglow.apk.solver import Candidate

    cache_dir, keys_dir, base, arch = sys.argv[1:5]
    keys = Keyring.from_directory(keys_dir)
    url = f"{base}/{arch}/APKINDEX.tar.gz"
    remote = Remote(Cache(cache_dir), Fetcher(), IndexPolicy(autoupdate=True))
    outcome = remote.open_index(url, lambda d: load_index_archive(d, keys, source=url))
    assert outcome.result is not None, outcome.warning
    source = RepositoryPackageSource(remote, keys)
    repo = Repository(url, base)
    for pkg in outcome.result.packages:
        data = source.fetch(Candidate(pkg), repo)
        assert len(data) == pkg.size
    print("ok", len(outcome.result.packages))
    """
)


def test_two_processes_fill_the_cache_at_once(
    tmp_path: Path, server: FlakyServer, mirror: MirrorRepo
) -> None:
    server.delay = 0.2  # long enough for both processes to want the same entries
    keys_dir = write_keys(tmp_path / "keys", mirror)
    cache_dir = tmp_path / "shared-cache"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    args = [str(cache_dir), str(keys_dir), server.url(mirror.base), mirror.arch]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _FILLER, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out == "ok 3\n"
    # one good entry each, downloaded once: the second process waited and found it filled
    stored = sorted(p.name for p in (cache_dir / "apk/packages").iterdir())
    assert [n for n in stored if n.endswith(".apk")] == sorted(
        package_file_name(p.name, p.version, p.checksum) for p in mirror.records
    )
    assert not [n for n in stored if n.endswith(".tmp")]
    cache = Cache(cache_dir)
    for record in mirror.records:
        entry = cache.package_entry(record.name, record.version, record.checksum)
        assert entry.read_bytes() == mirror.packages[f"{record.name}-{record.version}.apk"]
        path = f"{mirror.base}/{mirror.arch}/{record.name}-{record.version}.apk"
        assert len(server.requests(path)) == 1
    assert len(server.requests(index_path(mirror))) == 1
