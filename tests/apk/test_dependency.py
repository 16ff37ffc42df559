"""Dependency atoms: every form apk understands, canonical printing, caret errors."""

from __future__ import annotations

import pytest

from alpenglow.apk.dependency import Dependency, format_list, parse, parse_cached, parse_list
from alpenglow.apk.version import ANY, CHECKSUM, Op
from alpenglow.errors import InvalidDependency


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name", Dependency("name")),
        ("name=1.2-r0", Dependency("name", Op.EQ, "1.2-r0")),
        ("name>1", Dependency("name", Op.GT, "1")),
        ("name>=1", Dependency("name", Op.GT | Op.EQ, "1")),
        ("name<1", Dependency("name", Op.LT, "1")),
        ("name<=1", Dependency("name", Op.LT | Op.EQ, "1")),
        ("name~1.2", Dependency("name", Op.FUZZY | Op.EQ, "1.2")),
        ("name<~1.2", Dependency("name", Op.LT | Op.EQ | Op.FUZZY, "1.2")),
        ("name>~1.2", Dependency("name", Op.GT | Op.EQ | Op.FUZZY, "1.2")),
        (
            "name><Q1jPsNozZhCks+WW7OUyLGU9t/7K8=",
            Dependency("name", CHECKSUM, "Q1jPsNozZhCks+WW7OUyLGU9t/7K8="),
        ),
        ("!name", Dependency("name", conflict=True)),
        ("!name<2", Dependency("name", Op.LT, "2", conflict=True)),
        ("name@edge", Dependency("name", tag="edge")),
        ("name@edge>=1.2", Dependency("name", Op.GT | Op.EQ, "1.2", tag="edge")),
        ("so:libc.musl-x86_64.so.1", Dependency("so:libc.musl-x86_64.so.1")),
        ("so:libc.musl-x86_64.so.1=1", Dependency("so:libc.musl-x86_64.so.1", Op.EQ, "1")),
        ("cmd:sh", Dependency("cmd:sh")),
        ("cmd:busybox=1.37.0-r30", Dependency("cmd:busybox", Op.EQ, "1.37.0-r30")),
        ("pc:zlib", Dependency("pc:zlib")),
        ("pc:zlib=1.3.1", Dependency("pc:zlib", Op.EQ, "1.3.1")),
        ("/bin/sh", Dependency("/bin/sh")),
    ],
)
def test_parse_and_format(text: str, expected: Dependency) -> None:
    dep = parse(text)
    assert dep == expected
    assert str(dep) == text


def test_any_version() -> None:
    dep = parse("busybox")
    assert dep.op == ANY
    assert dep.version is None
    assert dep.matches("1.0")


def test_matches_versions_and_checksums() -> None:
    assert parse("a>=1.2").matches("1.10")
    assert not parse("a>=1.2").matches("1.1")
    assert not parse("a=1.0").matches("1.0-r0")
    assert parse("a~1.2").matches("1.2.9-r3")
    pin = parse("a><Q1abc=")
    assert pin.is_checksum
    assert pin.matches("9", checksum="Q1abc=")
    assert not pin.matches("9", checksum="Q1xyz=")
    assert not pin.matches("9")


def test_conflict_is_ignored_by_matches() -> None:
    dep = parse("!a<2")
    assert dep.matches("1")
    assert dep.without_conflict() == parse("a<2")


def test_parse_list_and_format_list() -> None:
    deps = parse_list("so:libc.musl-x86_64.so.1  /bin/sh\tb>=2")
    assert [str(d) for d in deps] == ["so:libc.musl-x86_64.so.1", "/bin/sh", "b>=2"]
    assert format_list(deps) == "so:libc.musl-x86_64.so.1 /bin/sh b>=2"
    assert parse_list("") == ()


def test_parse_cached_is_memoised() -> None:
    assert parse_cached("zlib>=1") is parse_cached("zlib>=1")


@pytest.mark.parametrize(
    ("text", "caret_at"),
    [
        ("foo==", 5),
        ("foo=invalid", 4),
        ("foo>=1..2", 7),
        ("name>=1.2@tag", 9),
        ("=1.0", 0),
        ("!", 1),
        ("foo@", 4),
        ("foo><", 5),
        ("fo\x01o", 2),
    ],
)
def test_errors_point_at_the_bad_spot(text: str, caret_at: int) -> None:
    with pytest.raises(InvalidDependency) as info:
        parse(text)
    err = info.value
    assert err.position == caret_at
    first, second, caret = str(err).split("\n")
    assert first
    assert second == text
    assert caret.index("^") == caret_at
