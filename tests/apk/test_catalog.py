"""The catalog: apk's load order, merging by identity, tags, queries, reverse
dependencies and file ownership."""

from __future__ import annotations

import base64

import pytest

from alpenglow.apk.catalog import Catalog, Field, QuerySpec, RepositoryIndex
from alpenglow.apk.database import InstalledPackage, parse_installed, parse_world
from alpenglow.apk.index import parse_index
from alpenglow.apk.pool import HASH_BUCKETS, name_hash


def ident(n: int) -> str:
    return "Q1" + base64.b64encode(bytes([n]) * 20).decode()


def stanza(n: int, name: str, ver: str, *extra: str) -> str:
    return "\n".join([f"C:{ident(n)}", f"P:{name}", f"V:{ver}", *extra]) + "\n\n"


def repo(text: str, url: str = "test:///r.tar.gz", **kw: object) -> RepositoryIndex:
    return RepositoryIndex(url, parse_index(text), **kw)  # type: ignore[arg-type]


def names(entries: object) -> list[str]:
    return [str(e) for e in entries]  # type: ignore[attr-defined]


def test_same_identity_is_one_package_installed_and_in_repositories() -> None:
    db = parse_installed(stanza(1, "a", "1"))
    cat = Catalog(
        installed=db,
        repositories=[
            repo(stanza(1, "a", "1") + stanza(2, "a", "2"), url="u1"),
            repo(stanza(1, "a", "1"), url="u2"),
        ],
    )
    assert names(cat.entries) == ["a-1", "a-2"]
    first = cat.entries[0]
    assert first.installed is not None
    assert first.repos == 0b11
    assert cat.entries[1].repos == 0b01
    assert [str(p.entry) for p in cat.providers("a")] == ["a-1", "a-2"]


def test_identity_spellings_are_compared_as_bytes() -> None:
    hexed = "X1" + "05" * 20
    cat = Catalog(
        repositories=[repo(stanza(5, "a", "1")), repo(f"C:{hexed}\nP:a\nV:1\n\n", url="x")]
    )
    assert len(cat.entries) == 1
    assert cat.entries[0].repos == 0b11


def test_packages_without_identity_are_left_out() -> None:
    cat = Catalog(repositories=[repo("P:a\nV:1\n\n" + stanza(1, "b", "1"))])
    assert names(cat.entries) == ["b-1"]


def test_tags_in_the_order_apk_meets_them() -> None:
    db = parse_installed(stanza(1, "a", "1", "s:community"))
    cat = Catalog(
        world=parse_world("x@edge\n"),
        installed=db,
        repositories=[
            repo(stanza(2, "a", "2"), url="u1", tag="testing"),
            repo(stanza(3, "a", "3"), url="u2", tag="edge"),
            repo("", url="u1", tag=""),
        ],
    )
    assert cat.tags == ("", "@edge", "@community", "@testing")
    assert [cat.allowed_repos(i) for i in range(4)] == [0b01, 0b10, 0, 0b01]
    assert cat.entries[0].repository_tag == 2
    assert len(cat.repositories) == 2


def test_unloaded_and_unavailable_repositories() -> None:
    cat = Catalog(
        repositories=[
            repo(stanza(1, "a", "1"), url="u1", available=False),
            RepositoryIndex("u2", (), loaded=False),
        ]
    )
    assert cat.available_repos == 0
    assert cat.allowed_repos(0) == 0b01
    assert not cat.is_available(cat.entries[0])
    assert cat.has_repository_providers("a")


def test_repository_providers_include_provided_names() -> None:
    db = parse_installed(stanza(1, "local", "1", "p:virt"))
    cat = Catalog(installed=db, repositories=[repo(stanza(2, "a", "1", "p:so:liba.so.1=1"))])
    assert cat.has_repository_providers("so:liba.so.1")
    assert not cat.has_repository_providers("virt")
    assert not cat.has_repository_providers("local")


def _bucket(name: str) -> int:
    return name_hash(name) % HASH_BUCKETS


def test_reverse_names_follow_the_name_table() -> None:
    # two names in one bucket: the one created later comes first
    seen: dict[int, str] = {}
    pair: tuple[str, str] | None = None
    for i in range(100000):
        candidate = f"p{i}"
        bucket = _bucket(candidate)
        if bucket in seen:
            pair = (seen[bucket], candidate)
            break
        seen[bucket] = candidate
    assert pair is not None
    older, newer = pair
    text = stanza(1, older, "1", "D:target") + stanza(2, newer, "1", "D:target")
    text += stanza(3, "zzz", "1", "D:target") + stanza(4, "aaa", "1", "D:target")
    cat = Catalog(repositories=[repo(text)])
    order = list(cat.rdepends("target"))
    assert order.index(newer) == order.index(older) - 1
    assert [_bucket(n) for n in order] == sorted(_bucket(n) for n in order)


def test_reverse_names_include_provided_names() -> None:
    cat = Catalog(repositories=[repo(stanza(1, "a", "1", "D:t", "p:cmd:a=1", "i:t x"))])
    assert sorted(cat.rdepends("t")) == ["a", "cmd:a"]
    assert sorted(cat.rinstall_if("x")) == ["a", "cmd:a"]


def test_reverse_dependencies() -> None:
    db = parse_installed(
        stanza(1, "lib", "1", "p:so:lib.so.1=1")
        + stanza(2, "app", "1", "D:so:lib.so.1")
        + stanza(3, "tool", "1", "D:lib>=1 so:lib.so.1")
    )
    text = stanza(4, "newapp", "1", "D:lib>2") + stanza(5, "other", "1", "D:!lib")
    text += stanza(6, "third", "1", "D:lib<2")
    cat = Catalog(installed=db, repositories=[repo(text)])
    lib = cat.installed_named("lib")
    assert lib is not None
    found = cat.reverse_dependencies(lib)
    assert sorted((str(e), str(d)) for e, d in found) == [
        ("app-1", "so:lib.so.1"),
        ("third-1", "lib<2"),
        ("tool-1", "lib>=1"),
    ]
    installed = cat.reverse_dependencies(lib, installed_only=True)
    assert sorted(str(e) for e, _ in installed) == ["app-1", "tool-1"]
    seen: set[int] = set()
    cat.reverse_dependencies(lib, seen=seen)
    assert cat.reverse_dependencies(lib, seen=seen) == []


def test_checksum_pins() -> None:
    cat = Catalog(repositories=[repo(stanza(1, "a", "1") + stanza(2, "a", "1"))])
    from alpenglow.apk.dependency import parse

    pin = parse(f"a><{ident(2)}")
    assert [cat.satisfies(None, pin, e) for e in cat.entries] == [False, True]
    assert [cat.is_provided(pin, p) for p in cat.providers("a")] == [False, True]


def test_upgradable_follows_the_installed_pinning() -> None:
    db = parse_installed(stanza(1, "a", "1") + stanza(2, "b", "1", "s:edge"))
    cat = Catalog(
        installed=db,
        repositories=[
            repo(stanza(3, "a", "2") + stanza(4, "b", "2"), url="main"),
            repo(stanza(5, "a", "3") + stanza(6, "b", "3"), url="edge", tag="edge"),
        ],
    )
    by_name = {str(e): cat.upgradable_from(e) for e in cat.entries}
    assert {k: str(v) for k, v in by_name.items() if v} == {"a-2": "a-1", "b-3": "b-1"}


# -- queries -------------------------------------------------------------------------------

QUERY_TEXT = (
    stanza(1, "foo", "1.0", "T:The Foo tool", "o:foo")
    + stanza(2, "foo", "2.0", "T:The Foo tool", "o:foo")
    + stanza(3, "foo-doc", "2.0", "T:Docs", "o:foo")
    + stanza(4, "libbar", "1", "T:A library", "o:bar", "p:so:libbar.so.1=1 cmd:bar")
    + stanza(5, "Baz", "1", "T:capital")
)


@pytest.fixture
def qcat() -> Catalog:
    installed = parse_installed(stanza(1, "foo", "1.0", "T:The Foo tool", "o:foo"))
    return Catalog(installed=installed, repositories=[repo(QUERY_TEXT)])


@pytest.mark.parametrize(
    ("patterns", "spec", "expected", "unmatched"),
    [
        # the best per name: a newer one met after the installed one replaces it (apk's rule)
        (["foo"], QuerySpec(), ["foo-2.0"], 0),
        (["foo"], QuerySpec(all_matches=True), ["foo-1.0", "foo-2.0"], 0),
        (["foo*"], QuerySpec(), ["foo-2.0", "foo-doc-2.0"], 0),
        (["FOO"], QuerySpec(), [], 1),  # exact names are case-sensitive
        (["FOO*"], QuerySpec(), ["foo-2.0", "foo-doc-2.0"], 0),  # globs are not
        (["oo"], QuerySpec(search=True), ["foo-2.0", "foo-doc-2.0"], 0),
        (["foo>1"], QuerySpec(), [], 1),  # apk compares the whole argument with names
        (["cmd:bar"], QuerySpec(match=frozenset({Field.NAME, Field.PROVIDES})), ["libbar-1"], 0),
        (["so:*"], QuerySpec(match=frozenset({Field.NAME, Field.PROVIDES})), ["libbar-1"], 0),
        (
            ["library"],
            QuerySpec(match=frozenset({Field.NAME, Field.DESCRIPTION}), search=True),
            ["libbar-1"],
            0,
        ),
        (
            ["foo"],
            QuerySpec(match=frozenset({Field.ORIGIN}), all_matches=True),
            ["foo-1.0", "foo-2.0", "foo-doc-2.0"],
            0,
        ),
        (["nosuch", "foo-doc"], QuerySpec(), ["foo-doc-2.0"], 1),
        ([], QuerySpec(), [], 0),
        (
            [],
            QuerySpec(empty_matches_all=True),
            ["Baz-1", "foo-1.0", "foo-2.0", "foo-doc-2.0", "libbar-1"],
            0,
        ),
        ([], QuerySpec(empty_matches_all=True, installed=True), ["foo-1.0"], 0),
    ],
)
def test_query(
    qcat: Catalog, patterns: list[str], spec: QuerySpec, expected: list[str], unmatched: int
) -> None:
    result = qcat.query(patterns, spec)
    assert names(result.packages) == expected
    assert result.unmatched == unmatched


def test_query_filters() -> None:
    db = parse_installed(stanza(1, "a", "1") + stanza(9, "local", "1"))
    cat = Catalog(
        installed=db,
        repositories=[repo(stanza(1, "a", "1") + stanza(2, "a", "2"), available=False)],
    )
    every = QuerySpec(empty_matches_all=True, all_matches=True)
    assert names(cat.query([], every).packages) == ["a-1", "a-2", "local-1"]
    orphaned = QuerySpec(empty_matches_all=True, orphaned=True)
    assert names(cat.query([], orphaned).packages) == ["local-1"]
    upgradable = QuerySpec(empty_matches_all=True, upgradable=True)
    assert names(cat.query([], upgradable).packages) == ["a-2"]
    available = QuerySpec(empty_matches_all=True, available=True)
    assert names(cat.query([], available).packages) == []


# -- files ---------------------------------------------------------------------------------


def test_directory_and_file_owners() -> None:
    db = parse_installed(
        stanza(1, "zlib", "1", "F:usr", "F:usr/lib", "R:libz.so.1")
        + stanza(2, "base", "1", "q:1", "F:usr", "F:var", "R:motd")
        + stanza(3, "aaa-sub", "1", "o:zzz", "F:etc", "F:var", "R:motd", "R:profile")
        + stanza(4, "zzz", "1", "o:zzz", "F:etc")
        + stanza(5, "alpha", "1", "F:usr/lib", "F:", "R:rootfile")
    )
    cat = Catalog(installed=db)
    paths = ("usr", "/etc/", "usr/lib", "var/motd", "/rootfile")
    assert {p: str(cat.owner(p)) for p in paths} == {
        "usr": "base-1",  # the higher replaces_priority wins
        "/etc/": "zzz-1",  # same origin: the package named like the origin
        "usr/lib": "alpha-1",  # otherwise the first name in byte order
        "var/motd": "base-1",  # a file belongs to the first package listing it
        "/rootfile": "alpha-1",
    }
    assert cat.owner("etc/nothing") is None
    sub = cat.installed_named("aaa-sub")
    assert sub is not None
    assert cat.contents(sub) == ["var/profile"]


def test_contents_are_sorted_within_a_directory() -> None:
    db = parse_installed(stanza(1, "a", "1", "F:b", "R:z", "R:B", "R:a", "F:a", "R:x"))
    cat = Catalog(installed=db)
    assert cat.contents(cat.entries[0]) == ["b/B", "b/a", "b/z", "a/x"]


def test_installed_records_keep_triggers() -> None:
    from alpenglow.apk.solver import identity_key

    db = [InstalledPackage(parse_index(stanza(1, "a", "1"))[0])]
    cat = Catalog(installed=db, triggers={identity_key(ident(1)): ("/usr/share/man",)})
    assert cat.entries[0].triggers == ("/usr/share/man",)


def test_exports() -> None:
    import alpenglow.apk.catalog as module

    assert sorted(module.__all__) == [
        "Catalog",
        "Entry",
        "Field",
        "Provider",
        "QueryResult",
        "QuerySpec",
        "RepositoryIndex",
        "RepositoryInfo",
        "compare_display",
        "compile_glob",
        "sort_display",
        "sort_names",
    ]
    assert dir(module) == module.__all__
