"""``alpenglow apk update`` and remote repositories through the real console script.

The repository is served by a real HTTP server on 127.0.0.1 (tests.apk.http_mirror); the
shared cache is a temporary directory (``XDG_CACHE_HOME``), so nothing outside the test's
own directories is read or written.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpenglow.apk.repository import cache_file_name
from tests.apk.http_mirror import (
    Behaviour,
    FlakyServer,
    MirrorRepo,
    build_mirror,
    publish,
    serve,
    write_keys,
)
from tests.cli.conftest import Run


@pytest.fixture(scope="module")
def mirror() -> MirrorRepo:
    return build_mirror()


@pytest.fixture
def server(mirror: MirrorRepo) -> Iterator[FlakyServer]:
    srv = FlakyServer()
    publish(srv, mirror)
    yield from serve(srv)


@pytest.fixture
def root(tmp_path: Path, mirror: MirrorRepo) -> Path:
    """An initialised empty root that trusts the mirror's key."""
    r = tmp_path / "root"
    for sub in ("etc/apk", "lib/apk/db"):
        (r / sub).mkdir(parents=True)
    (r / "etc/apk/world").write_text("")
    (r / "lib/apk/db/installed").write_text("")
    (r / "etc/apk/arch").write_text(f"{mirror.arch}\n")
    write_keys(r / "etc/apk/keys", mirror)
    return r


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache"), "HOME": str(tmp_path / "home")}


def index_entry(env: dict[str, str], url: str) -> Path:
    return Path(env["XDG_CACHE_HOME"]) / "alpenglow/apk/indexes" / cache_file_name(url)


def test_update_fetches_and_lists(
    run_cli: Run, root: Path, server: FlakyServer, mirror: MirrorRepo, env: dict[str, str]
) -> None:
    base = server.url(mirror.base)
    index = f"{base}/{mirror.arch}/APKINDEX.tar.gz"
    result = run_cli("apk", "--root", str(root), "-X", base, "update", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"{mirror.description} [{base}]\nOK: 3 distinct packages available\n")
    assert result.stderr == f"fetch {index}\n"  # plain progress: stderr is not a terminal
    assert index_entry(env, index).read_bytes() == mirror.index
    # again: a conditional request, answered 304; nothing downloaded
    result = run_cli("apk", "--root", str(root), "-X", base, "-q", "update", env=env)
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == ""
    sent = server.requests(f"{mirror.base}/{mirror.arch}/APKINDEX.tar.gz")
    assert len(sent) == 2
    assert "if-none-match" in sent[1]


def test_repositories_file_and_unavailable_counts(
    run_cli: Run, root: Path, server: FlakyServer, mirror: MirrorRepo, env: dict[str, str]
) -> None:
    base = server.url(mirror.base)
    missing = server.url("alpine/v3.99/community")
    (root / "etc/apk/repositories").write_text(f"{base}\n{missing}\n")
    result = run_cli("apk", "--root", str(root), "--no-progress", "update", env=env)
    assert result.returncode == 1
    assert result.stdout == (
        f"{mirror.description} [{base}]\n1 unavailable, 0 stale; 3 distinct packages available\n"
    )
    assert result.stderr == (
        f"WARNING: updating and opening {missing}/{mirror.arch}/APKINDEX.tar.gz: "
        "HTTP 404: Not Found\n"
    )


def test_stale_when_the_mirror_fails(
    run_cli: Run, root: Path, server: FlakyServer, mirror: MirrorRepo, env: dict[str, str]
) -> None:
    base = server.url(mirror.base)
    index = f"{base}/{mirror.arch}/APKINDEX.tar.gz"
    assert run_cli("apk", "--root", str(root), "-X", base, "update", env=env).returncode == 0
    # Retry-After: 0 keeps the CLI's retries instant
    busy = Behaviour(status=503, headers=(("Retry-After", "0"),))
    server.misbehave(f"{mirror.base}/{mirror.arch}/APKINDEX.tar.gz", *[busy] * 4)
    result = run_cli("apk", "--root", str(root), "-X", base, "--no-progress", "update", env=env)
    assert result.returncode == 1
    assert result.stdout == (
        f"{mirror.description} [{base}]\n0 unavailable, 1 stale; 3 distinct packages available\n"
    )
    assert result.stderr == f"WARNING: updating {index}: HTTP 503: Service Unavailable\n"
    assert len(server.requests(f"{mirror.base}/{mirror.arch}/APKINDEX.tar.gz")) == 1 + 4


def test_no_network_uses_the_cache_only(
    run_cli: Run, root: Path, server: FlakyServer, mirror: MirrorRepo, env: dict[str, str]
) -> None:
    base = server.url(mirror.base)
    index = f"{base}/{mirror.arch}/APKINDEX.tar.gz"
    result = run_cli("apk", "--root", str(root), "-X", base, "--no-network", "update", env=env)
    assert result.returncode == 1
    assert result.stdout == "1 unavailable, 0 stale; 0 distinct packages available\n"
    assert result.stderr == f"WARNING: opening from cache {index}: No such file or directory\n"
    assert server.log == []
    assert run_cli("apk", "--root", str(root), "-X", base, "update", env=env).returncode == 0
    result = run_cli("apk", "--root", str(root), "-X", base, "--no-network", "update", env=env)
    assert result.returncode == 0
    assert result.stdout.endswith("OK: 3 distinct packages available\n")
    assert len(server.log) == 1


def test_simulated_add_from_the_mirror(
    run_cli: Run, root: Path, server: FlakyServer, mirror: MirrorRepo, env: dict[str, str]
) -> None:
    base = server.url(mirror.base)
    result = run_cli(
        "apk",
        "--root",
        str(root),
        "-X",
        base,
        "--no-progress",
        "--simulate",
        "add",
        "app",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["(1/2) Installing lib (1.0-r0)", "(2/2) Installing app (2.0-r0)"]
    assert lines[2].startswith("OK: ")
    assert lines[2].endswith(" in 2 packages")
    assert result.stderr == ""
    # the index came from the network once and is cached; no package was downloaded
    paths = [p for p, _ in server.log]
    assert paths == [f"{mirror.base}/{mirror.arch}/APKINDEX.tar.gz"]


def test_index_age_rules(
    run_cli: Run, root: Path, server: FlakyServer, mirror: MirrorRepo, env: dict[str, str]
) -> None:
    base = server.url(mirror.base)
    index = f"{base}/{mirror.arch}/APKINDEX.tar.gz"
    path = f"{mirror.base}/{mirror.arch}/APKINDEX.tar.gz"
    simulate = ("apk", "--root", str(root), "-X", base, "--no-progress", "-s", "add", "tool")
    assert run_cli(*simulate, env=env).returncode == 0
    assert len(server.requests(path)) == 1
    assert run_cli(*simulate, env=env).returncode == 0  # fresh: no request
    assert len(server.requests(path)) == 1
    assert run_cli(*simulate, "-U", env=env).returncode == 0  # -U: always asks
    assert len(server.requests(path)) == 2
    old = time.time() - 10 * 60
    os.utime(index_entry(env, index), (old, old))
    assert run_cli(*simulate, env=env).returncode == 0  # 10 min old < 4 h: fresh
    assert len(server.requests(path)) == 2
    assert run_cli(*simulate, "--cache-max-age", "5", env=env).returncode == 0
    assert len(server.requests(path)) == 3
    # read-only applets never refresh
    os.utime(index_entry(env, index), (0, 0))
    result = run_cli("apk", "--root", str(root), "-X", base, "search", "app", env=env)
    assert result.returncode == 0
    assert len(server.requests(path)) == 3


def test_cache_dir_option(
    run_cli: Run, root: Path, server: FlakyServer, mirror: MirrorRepo, env: dict[str, str]
) -> None:
    base = server.url(mirror.base)
    index = f"{base}/{mirror.arch}/APKINDEX.tar.gz"
    elsewhere = root.parent / "elsewhere"
    result = run_cli(
        "apk", "--root", str(root), "-X", base, "--cache-dir", str(elsewhere), "update", env=env
    )
    assert result.returncode == 0, result.stderr
    assert (elsewhere / "apk/indexes" / cache_file_name(index)).read_bytes() == mirror.index
    assert not index_entry(env, index).exists()


def test_untrusted_index_is_not_cached(
    run_cli: Run, root: Path, server: FlakyServer, mirror: MirrorRepo, env: dict[str, str]
) -> None:
    base = server.url(mirror.base)
    index = f"{base}/{mirror.arch}/APKINDEX.tar.gz"
    for key in (root / "etc/apk/keys").iterdir():
        key.unlink()
    result = run_cli("apk", "--root", str(root), "-X", base, "--no-progress", "update", env=env)
    assert result.returncode == 1
    assert result.stderr == f"WARNING: updating and opening {index}: UNTRUSTED signature\n"
    assert not index_entry(env, index).exists()


def test_install_from_the_mirror_downloads_verifies_and_caches(
    run_cli: Run, tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, env: dict[str, str]
) -> None:
    base = server.url(mirror.base)
    target = tmp_path / "new-root"
    keys = write_keys(tmp_path / "trusted", mirror)
    server.misbehave(f"{mirror.base}/{mirror.arch}/lib-1.0-r0.apk", Behaviour(drop=True))
    args = ("apk", "--root", str(target), "--keys-dir", str(keys), "-X", base, "--no-progress")
    result = run_cli(*args, "--initdb", "add", "app", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        "(1/2) Installing lib (1.0-r0)",
        "(2/2) Installing app (2.0-r0)",
    ]
    assert (target / "usr/share/app.txt").read_text().startswith("app 2.0-r0\n")
    assert (target / "usr/share/lib.txt").exists()
    packages = Path(env["XDG_CACHE_HOME"]) / "alpenglow/apk/packages"
    assert sorted(p.name.split(".")[0] for p in packages.glob("*.apk")) == ["app-2", "lib-1"]
    # a second root from the warm cache: no package is downloaded again
    before = len(server.log)
    other = tmp_path / "other-root"
    result = run_cli(
        "apk",
        "--root",
        str(other),
        "--keys-dir",
        str(keys),
        "-X",
        base,
        "--no-progress",
        "--initdb",
        "add",
        "tool",
        "app",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    fetched = [p for p, _ in server.log[before:]]
    assert fetched == [f"{mirror.base}/{mirror.arch}/tool-0.5-r1.apk"]


def test_install_refuses_a_tampered_download(
    run_cli: Run, tmp_path: Path, server: FlakyServer, mirror: MirrorRepo, env: dict[str, str]
) -> None:
    base = server.url(mirror.base)
    target = tmp_path / "new-root"
    keys = write_keys(tmp_path / "trusted", mirror)
    good = mirror.packages["app-2.0-r0.apk"]
    evil = bytearray(good)
    evil[len(evil) // 3] ^= 0x20
    server.misbehave(f"{mirror.base}/{mirror.arch}/app-2.0-r0.apk", Behaviour(body=bytes(evil)))
    args = ("apk", "--root", str(target), "--keys-dir", str(keys), "-X", base, "--no-progress")
    result = run_cli(*args, "--initdb", "add", "app", env=env)
    assert result.returncode != 0
    url = server.url(f"{mirror.base}/{mirror.arch}/app-2.0-r0.apk")
    assert url in result.stderr
    assert "Traceback" not in result.stderr
    assert not (target / "usr/share/app.txt").exists()
    packages = Path(env["XDG_CACHE_HOME"]) / "alpenglow/apk/packages"
    assert not list(packages.glob("app-*"))


def test_read_only_applets_read_the_cached_index(
    run_cli: Run, root: Path, server: FlakyServer, mirror: MirrorRepo, env: dict[str, str]
) -> None:
    base = server.url(mirror.base)
    index = f"{base}/{mirror.arch}/APKINDEX.tar.gz"
    result = run_cli("apk", "--root", str(root), "-X", base, "search", "app", env=env)
    assert result.stdout == ""
    assert result.stderr == f"WARNING: opening from cache {index}: No such file or directory\n"
    assert server.log == []  # read-only: never fetched
    assert run_cli("apk", "--root", str(root), "-X", base, "update", env=env).returncode == 0
    result = run_cli("apk", "--root", str(root), "-X", base, "search", "app", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "app-2.0-r0\n"
    assert result.stderr == ""
    assert len(server.log) == 1


def test_discovery_closures_are_kept_per_universe(
    run_cli: Run, root: Path, server: FlakyServer, mirror: MirrorRepo, env: dict[str, str]
) -> None:
    base = server.url(mirror.base)
    cmd = ["apk", "--root", str(root), "-X", base, "--simulate", "add", "app"]
    first = run_cli(*cmd, env=env)
    assert first.returncode == 0, first.stderr
    indexes = Path(env["XDG_CACHE_HOME"]) / "alpenglow" / "indexes"
    (kept,) = indexes.glob("*.closures")
    again = run_cli(*cmd, env=env)
    assert (again.returncode, again.stdout) == (0, first.stdout)  # (the index is not fetched)
    assert list(indexes.glob("*.closures")) == [kept]
    # another installed database is another universe
    (root / "lib/apk/db/installed").write_text(
        "C:Q1hdUpqRv5mYgJEqW52UmVsvmy3DI=\nP:tool\nV:0.4-r0\nA:x86_64\nS:1\nI:1\n\n"
    )
    assert run_cli(*cmd, env=env).returncode == 0
    assert len(list(indexes.glob("*.closures"))) == 2
    # a virtual package exists in one run only: nothing is kept for it
    for path in indexes.glob("*.closures"):
        path.unlink()
    virtual = run_cli(*cmd[:-2], "add", "-t", ".build-deps", "app", env=env)
    assert virtual.returncode == 0, virtual.stderr
    assert list(indexes.glob("*.closures")) == []
