"""Opening a root for the read-only applets: files, flags and errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from alpenglow.apk.catalog import Catalog
from alpenglow.apk.repository import Repository
from alpenglow.apk.solver import identity_key
from alpenglow.apk.state import OpenOptions, open_catalog, parse_triggers, printable_url
from alpenglow.errors import DatabaseError
from tests.apk.test_catalog import ident, stanza
from tests.cli.query_roots import make_root


@pytest.mark.parametrize(
    ("url", "base", "shown"),
    [
        (
            "https://h/alpine/v3.21/main/x86_64/APKINDEX.tar.gz",
            "https://h/alpine/v3.21/main",
            "https://h/alpine/v3.21/main",
        ),
        ("/srv/repo/x86_64/Packages.adb", "/srv/repo", "/srv/repo"),
        ("test:///tmp/x.tar.gz", "test:///tmp", "test:///tmp/x.tar.gz"),
        (
            "https://me:secret@h/main/x86_64/APKINDEX.tar.gz",
            "https://me:secret@h/main",
            "https://me:*@h/main",
        ),
    ],
)
def test_printable_url(url: str, base: str, shown: str) -> None:
    assert printable_url(Repository(url, base), "x86_64") == shown


def test_parse_triggers() -> None:
    text = f"{ident(1)} /usr/share/man /bin\n\nnot-an-identity /x\n{ident(1)} /more\n"
    assert parse_triggers(text.encode()) == {
        identity_key(ident(1)): ("/usr/share/man", "/bin", "/more")
    }


def warnings_of(options: OpenOptions) -> tuple[Catalog, list[str]]:
    seen: list[str] = []
    return open_catalog(options, seen.append), seen


def test_open_reads_everything_in_order(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        world=["a"],
        installed=stanza(1, "a", "1", "F:usr/bin", "R:a"),
        repos=[("", stanza(1, "a", "1") + stanza(2, "a", "2")), ("edge", stanza(3, "a", "3"))],
        description="desc",
        triggers=f"{ident(1)} /usr/bin\n",
    )
    cat, warnings = warnings_of(OpenOptions(root, no_cache=True, allow_untrusted=True))
    assert warnings == []
    assert [str(d) for d in cat.world] == ["a"]
    assert [(str(e), e.repos, e.installed is not None) for e in cat.entries] == [
        ("a-1", 1, True),
        ("a-2", 1, False),
        ("a-3", 2, False),
    ]
    assert cat.entries[0].triggers == ("/usr/bin",)
    assert [r.url for r in cat.repositories] == [
        f"test://{root}/tmp/repo0.tar.gz",
        f"test://{root}/tmp/repo1.tar.gz",
    ]
    assert cat.repositories[0].description == "desc"
    assert cat.tags == ("", "@edge")


def test_open_flags(tmp_path: Path) -> None:
    root = make_root(
        tmp_path, world=["a"], installed=stanza(1, "a", "1"), repos=[("", stanza(2, "b", "1"))]
    )
    nothing = OpenOptions(root, world=False, installed=False, system_repositories=False)
    cat, _ = warnings_of(nothing)
    assert cat.entries == ()
    # -X repositories still count without the system ones
    extra = make_root(tmp_path / "x", repos=[("", stanza(3, "c", "1"))])
    line = (extra / "etc/apk/repositories").read_text().strip()
    options = OpenOptions(
        root, system_repositories=False, repositories=(line,), no_cache=True, allow_untrusted=True
    )
    cat, _ = warnings_of(options)
    assert [str(e) for e in cat.entries] == ["a-1", "c-1"]


def test_no_network_keeps_remote_packages_unavailable(tmp_path: Path) -> None:
    root = make_root(tmp_path, repos=[("", stanza(1, "a", "1"))])
    options = OpenOptions(root, no_network=True, no_cache=True, allow_untrusted=True)
    cat, _ = warnings_of(options)
    assert cat.available_repos == 0
    assert len(cat.entries) == 1


def test_repository_warnings(tmp_path: Path) -> None:
    root = make_root(tmp_path, repos=[("", stanza(1, "a", "1"))])
    index = root / "tmp/repo0.tar.gz"
    _, warnings = warnings_of(OpenOptions(root, no_cache=True))
    assert warnings == [f"fetching test://{index}: UNTRUSTED signature"]
    _, warnings = warnings_of(OpenOptions(root, allow_untrusted=True))
    assert warnings == [f"opening from cache test://{index}: No such file or directory"]
    (root / "etc/apk/repositories").write_text("bogus-keyword x\n")
    _, warnings = warnings_of(OpenOptions(root))
    assert warnings == ["etc/apk/repositories:1: unrecogized keyword: bogus-keyword"]


def test_repositories_d_lists(tmp_path: Path) -> None:
    root = make_root(tmp_path, repos=[("", stanza(1, "a", "1"))])
    main = (root / "etc/apk/repositories").read_text()
    (root / "etc/apk/repositories").write_text("")
    (root / "lib/apk/repositories.d").mkdir(parents=True)
    (root / "lib/apk/repositories.d/base.list").write_text(main)
    (root / "lib/apk/repositories.d/ignored.txt").write_text("garbage\n")
    cat, warnings = warnings_of(OpenOptions(root, no_cache=True, allow_untrusted=True))
    assert warnings == []
    assert len(cat.entries) == 1


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda r: None, "Unable to open root: {root}/missing: No such file or directory"),
        (
            lambda r: (r / "lib/apk/db").rename(r / "lib/apk/gone"),
            "Unable to read database: {root}/lib/apk/db: No such file or directory",
        ),
        (
            lambda r: (r / "etc/apk/world").unlink(),
            "Unable to read database: {root}/etc/apk/world: No such file or directory",
        ),
        (
            lambda r: (r / "lib/apk/db/installed").write_text("P:a\nV:1\n\n"),
            "{root}/lib/apk/db/installed: package 'a' has no valid C: identity",
        ),
        (
            lambda r: (r / "etc/apk/world").write_text("a>=x\n"),
            "{root}/etc/apk/world: bad entry 'a>=x': invalid version 'x' in dependency",
        ),
    ],
)
def test_open_errors(tmp_path: Path, setup: Callable[[Path], object], message: str) -> None:
    root = make_root(tmp_path)
    setup(root)
    target = root / "missing" if "open root" in message else root
    with pytest.raises(DatabaseError) as err:
        open_catalog(OpenOptions(target), lambda _m: None)
    assert str(err.value) == message.format(root=root)


def test_missing_installed_database_is_empty(tmp_path: Path) -> None:
    root = make_root(tmp_path, world=["a"])
    (root / "lib/apk/db/installed").unlink()
    cat, _ = warnings_of(OpenOptions(root))
    assert cat.entries == ()


def test_exports() -> None:
    import alpenglow.apk.state as module

    assert sorted(module.__all__) == [
        "OpenOptions",
        "open_catalog",
        "parse_triggers",
        "printable_url",
    ]
