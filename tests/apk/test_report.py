"""apk's read-only applet texts, from catalogs built in memory."""

from __future__ import annotations

import pytest

from alpenglow.apk.catalog import Catalog, QuerySpec
from alpenglow.apk.database import parse_installed
from alpenglow.apk.report import (
    INFO_ALL,
    InfoField,
    ListOptions,
    human_size,
    info_exists,
    info_oneline,
    info_sections,
    list_lines,
    policy_lines,
    search_lines,
    version_indexes,
    version_lines,
)
from tests.apk.test_catalog import repo, stanza


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (9999, "9999 B"),
        (10000, "9 KiB"),
        (253640, "247 KiB"),
        (9999 * 1024, "9999 KiB"),
        (10240 * 1024, "10 MiB"),
        (50 * 1024**4, "50 TiB"),
        (20000 * 1024**4, "19 TiB"),  # apk divides once more past TiB
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


@pytest.fixture
def cat() -> Catalog:
    db = parse_installed(
        stanza(1, "a", "1.0-r0", "T:the a", "U:https://a", "L:MIT", "I:4096", "D:b so:c.so")
        + stanza(2, "b", "2", "F:usr/bin", "R:b", "i:a x")
        + stanza(3, "c", "3", "p:so:c.so=3")
    )
    return Catalog(installed=db, repositories=[repo(stanza(4, "a", "1.1-r0", "D:b"), url="u")])


def test_info_oneline(cat: Catalog) -> None:
    entry = cat.entries[0]
    assert [info_oneline(entry, v) for v in range(4)] == [
        None,
        "a",
        "a-1.0-r0",
        "a-1.0-r0 - the a",
    ]


def test_info_sections_by_verbosity(cat: Catalog) -> None:
    a = cat.entries[0]
    wanted = InfoField.DESCRIPTION | InfoField.DEPENDS | InfoField.SIZE
    assert info_sections(cat, a, wanted, 1) == [
        "a-1.0-r0 description:",
        "the a",
        "",
        "a-1.0-r0 installed size:",
        "4096 B",
        "",
        "a-1.0-r0 depends on:",
        "b",
        "so:c.so",
        "",
    ]
    assert info_sections(cat, a, wanted, 0) == [
        "a-1.0-r0 description:",
        "the a",
        "",
        "a-1.0-r0 installed size:",
        "4096 B",
        "",
        "b",
        "so:c.so",
        "",
    ]
    assert info_sections(cat, a, wanted, 2) == ["a: the a", "a: 4096 B", "a: b so:c.so "]


def test_info_reverse_sections(cat: Catalog) -> None:
    b = cat.installed_named("b")
    c = cat.installed_named("c")
    assert b is not None
    assert c is not None
    assert info_sections(cat, b, InfoField.RDEPENDS | InfoField.CONTENTS, 1) == [
        "b-2 is required by:",
        "a-1.0-r0",
        "",
        "b-2 contains:",
        "usr/bin/b",
        "",
    ]
    assert info_sections(cat, c, InfoField.RDEPENDS, 2) == ["c: a-1.0-r0 "]
    a = cat.installed_named("a")
    assert a is not None
    assert info_sections(cat, a, InfoField.RINSTALL_IF, 1) == [
        "a-1.0-r0 affects auto-installation of:",
        "b-2",
        "",
    ]


def test_info_sections_for_a_package_not_installed(cat: Catalog) -> None:
    newer = cat.entries[-1]
    assert newer.installed is None
    assert info_sections(cat, newer, INFO_ALL, 2) == [
        "a: ",
        "a: ",
        "a: 0 B",
        "a: b ",
        "a: ",
        "a: ",
        "a: ",
    ]


def test_info_exists(cat: Catalog) -> None:
    assert info_exists(cat, ["a", "so:c.so>2", "nosuch", "a<1", "bad name!"], 2) == (
        ["a-1.0-r0", "c-3"],
        2,
    )


def test_search_lines(cat: Catalog) -> None:
    entries = cat.query(["*"], QuerySpec(all_matches=True)).packages
    assert search_lines(cat, entries, 0) == ["a", "a", "b", "c"]
    assert search_lines(cat, entries[:1], 2) == ["a-1.0-r0 - the a"]
    assert search_lines(cat, entries[:1], 1, origin=True) == ["a-1.0-r0"]
    b_and_c = [cat.entries[1], cat.entries[2]]
    assert search_lines(cat, b_and_c, 1, rdepends=True) == [
        "b-2 is required by:",
        "a-1.0-r0",
        "a-1.1-r0",
        "c-3 is required by:",
        "a-1.0-r0",
    ]
    # quiet: one "visited" mark for the whole run, as apk does
    assert search_lines(cat, b_and_c, 0, rdepends=True) == ["a", "a"]


def test_policy_prints_every_tag_allowing_any_listing_repository() -> None:
    text = stanza(1, "a", "1")
    cat = Catalog(
        repositories=[repo(text, url="main"), repo(text, url="edge", tag="edge")],
    )
    assert policy_lines(cat, list(cat.entries)) == [
        "a policy:",
        "  1:",
        "    main",
        "    @edge main",
        "    edge",
        "    @edge edge",
    ]


def test_list_sorts_a_name_only_once_it_is_listed() -> None:
    # apk sorts a name's providers in place when it lists the name; a name reached
    # through -d before that keeps the load order
    text = stanza(1, "y", "2", "D:x") + stanza(2, "y", "1", "D:x") + stanza(3, "x", "1")
    cat = Catalog(repositories=[repo(text)])
    depends = ListOptions(depends=True)
    assert list_lines(cat, ["x"], depends, 0) == ["y", "y"]
    manifest = ListOptions(depends=True, manifest=True)
    assert list_lines(cat, ["x"], manifest, 0) == ["y 2", "y 1"]
    installed = ListOptions(depends=True, manifest=True, installed=True)
    assert list_lines(cat, ["x"], installed, 0) == []
    lines = list_lines(cat, ["*"], depends, 1)
    assert lines == ["y-2  {} ()", "y-1  {} ()"]
    assert list_lines(cat, ["y"], ListOptions(), 1) == ["y-1  {} ()", "y-2  {} ()"]


def test_list_origin_matches_exactly() -> None:
    text = stanza(1, "p", "1", "o:orig") + stanza(2, "q", "1", "o:orig2") + stanza(3, "r", "1")
    cat = Catalog(repositories=[repo(text)])
    assert list_lines(cat, ["orig"], ListOptions(origin=True), 0) == ["p"]
    assert list_lines(cat, [""], ListOptions(origin=True), 0) == ["r"]


def test_version_lines_and_limits() -> None:
    db = parse_installed(stanza(1, "a", "1") + stanza(2, "b", "2") + stanza(3, "c", "1", "s:t"))
    cat = Catalog(
        installed=db,
        repositories=[
            repo(stanza(4, "a", "2") + stanza(2, "b", "2"), url="main"),
            repo(stanza(5, "c", "9") + stanza(6, "a", "5"), url="t", tag="t"),
        ],
    )
    pad = " " * 36
    assert version_lines(cat, [], 1) == [
        f"{'Installed:':<39}   Available:",
        f"a-1{pad} < 2 ",
        f"c-1{pad} < 9 @t",
    ]
    assert version_lines(cat, ["b", "nosuch"], 1) == [
        f"{'Installed:':<39}   Available:",
        f"b-2{pad} = 2 ",
    ]
    assert version_lines(cat, [], 1, all_tags=True)[1] == f"a-1{pad} < 5 @t"
    assert version_lines(cat, ["*"], 0, limit="=") == ["b"]
    assert version_lines(cat, [], 2, limit="") == version_lines(cat, [], 2)
    assert version_indexes(cat) == [" [main]", " [t]"]


def test_exports() -> None:
    import alpenglow.apk.report as module

    assert sorted(module.__all__) == [
        "INFO_ALL",
        "INFO_DEFAULT",
        "INFO_INSTALLED_ONLY",
        "InfoField",
        "ListOptions",
        "human_size",
        "info_exists",
        "info_oneline",
        "info_sections",
        "list_lines",
        "policy_lines",
        "search_lines",
        "version_indexes",
        "version_lines",
    ]
