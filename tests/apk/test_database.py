"""The installed database and world file: parse, format, and apk's refusals."""

from __future__ import annotations

import pytest

from alpenglow.apk.database import (
    InstalledDir,
    InstalledFile,
    InstalledPackage,
    find_owner,
    format_installed,
    format_world,
    parse_installed,
    parse_world,
)
from alpenglow.apk.dependency import parse
from alpenglow.errors import DatabaseError

STANZA = """\
C:Q1jPsNozZhCks+WW7OUyLGU9t/7K8=
P:a
V:1.0-r0
A:x86_64
S:1036
I:4096
T:test package a
U:https://example.com/
L:MIT
o:a
t:1700000000
D:b so:libfoo.so.1
p:cmd:a=1.0-r0
r:old-a
q:5
s:edge
f:fs
F:usr
F:usr/bin
M:0:0:755:Q1abc=
R:a
Z:Q1cbyjZSvA/NcBLMN5Ti0kga0zIno=
R:a-link
a:0:0:777
Z:Q1hvfkN/qlp/zhXR3cuerq6jd2Z7g=

"""


def test_parse_installed_keeps_files_and_db_fields() -> None:
    (ip,) = parse_installed(STANZA)
    pkg = ip.package
    assert (pkg.name, pkg.version, pkg.installed_size) == ("a", "1.0-r0", 4096)
    assert [str(d) for d in pkg.depends] == ["b", "so:libfoo.so.1"]
    assert [str(d) for d in pkg.replaces] == ["old-a"]
    assert (pkg.replaces_priority, pkg.repository_tag, pkg.flags) == (5, "edge", "fs")
    assert ip.broken_files
    assert ip.broken_script
    assert ip.dirs == (
        InstalledDir("usr"),
        InstalledDir(
            "usr/bin",
            "0:0:755:Q1abc=",
            (
                InstalledFile("a", "", "Q1cbyjZSvA/NcBLMN5Ti0kga0zIno="),
                InstalledFile("a-link", "0:0:777", "Q1hvfkN/qlp/zhXR3cuerq6jd2Z7g="),
            ),
        ),
    )
    assert ip.owns("/usr/bin/a-link")
    assert not ip.owns("usr/bin/b")
    assert find_owner([ip], "usr/bin/a") is ip


def test_format_installed_round_trips() -> None:
    pkgs = parse_installed(STANZA)
    assert format_installed(pkgs).decode() == STANZA
    assert parse_installed(format_installed(pkgs)) == pkgs


def test_last_stanza_needs_no_blank_line() -> None:
    text = "C:Q1EyN5AdpAOBJWKMR89pp/C66o+OE=\nP:a\nV:1\nS:1\nI:1"
    assert [p.package.name for p in parse_installed(text)] == ["a"]


def test_sorted_by_name_case_insensitively() -> None:
    text = "C:Q1A=\nP:b\nV:1\n\nC:Q1B=\nP:B\nV:1\n\nC:Q1C=\nP:a\nV:1\n\n"
    out = format_installed(parse_installed(text)).decode()
    assert [line[2:] for line in out.split("\n") if line.startswith("P:")] == ["a", "B", "b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("P:a\nV:1\nR:file\n", "'R:' outside a directory"),
        ("F:usr\nP:a\n", "'F:' before the package name"),
        ("P:a\nV:1\nF:usr\nZ:Q1x=\n", "'Z:' without a file"),
        ("P:a\nV:1\nX:new\n", "unknown field 'X'"),
        ("P:a\nV:1\nf:q\n", "unknown package flags"),
        ("P:a\nV:1\nbroken line\n", "expected 'X:value'"),
        ("P:a\n\n", "missing or empty V: field"),
        (b"P:\xff\n", "not valid UTF-8"),
    ],
)
def test_corrupt_installed_database_is_refused(text: str | bytes, message: str) -> None:
    with pytest.raises(DatabaseError, match=message) as exc:
        parse_installed(text, source="R/lib/apk/db/installed")
    assert "R/lib/apk/db/installed" in str(exc.value)


def test_world() -> None:
    deps = parse_world("b\na<2 c@edge\n!d\n")
    assert [str(d) for d in deps] == ["b", "a<2", "c@edge", "!d"]
    assert format_world(deps) == b"b\na<2\nc@edge\n!d\n"
    assert format_world([]) == b"\n"
    assert parse_world(b"") == ()
    with pytest.raises(DatabaseError, match="bad entry 'foo=invalid'"):
        parse_world("foo=invalid\n")


def test_installed_package_defaults() -> None:
    ip = InstalledPackage(parse_installed("P:x\nV:1\n")[0].package)
    assert ip.dirs == ()
    assert not ip.broken_files
    assert parse("x").name == ip.package.name
