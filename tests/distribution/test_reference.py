"""Reference parsing by Docker's rules: good and bad inputs, normal forms, round trips."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from alpenglow.distribution import reference
from alpenglow.distribution.reference import (
    Reference,
    host_of,
    is_insecure,
    is_insecure_default,
    normalize_registry,
    parse_reference,
)
from alpenglow.errors import InvalidReference
from alpenglow.oci.store import parse_name

DIGEST = "sha256:" + "ab" * 32

GOOD = [
    ("alpine", "docker.io", "library/alpine", "latest", ""),
    ("alpine:3.22", "docker.io", "library/alpine", "3.22", ""),
    ("library/alpine", "docker.io", "library/alpine", "latest", ""),
    ("user/app:v1", "docker.io", "user/app", "v1", ""),
    ("docker.io/alpine", "docker.io", "library/alpine", "latest", ""),
    ("docker.io/library/alpine:edge", "docker.io", "library/alpine", "edge", ""),
    ("index.docker.io/user/app", "docker.io", "user/app", "latest", ""),
    ("registry-1.docker.io/x", "docker.io", "library/x", "latest", ""),
    ("ghcr.io/o/r:1.2", "ghcr.io", "o/r", "1.2", ""),
    ("ghcr.io/o/r/deep/er:1", "ghcr.io", "o/r/deep/er", "1", ""),
    (f"localhost:5000/x@{DIGEST}", "localhost:5000", "x", "", DIGEST),
    (f"localhost:5000/x:t@{DIGEST}", "localhost:5000", "x", "t", DIGEST),
    ("localhost/x", "localhost", "x", "latest", ""),
    ("127.0.0.1:5000/a/b:tag", "127.0.0.1:5000", "a/b", "tag", ""),
    ("[::1]:5000/a:b", "[::1]:5000", "a", "b", ""),
    ("Registry.Example.com/a", "Registry.Example.com", "a", "latest", ""),
    ("a.b/c-d/e__f/g.h_i:T_1.x-y", "a.b", "c-d/e__f/g.h_i", "T_1.x-y", ""),
    ("docker://alpine:3", "docker.io", "library/alpine", "3", ""),
    (f"alpine@{DIGEST}", "docker.io", "library/alpine", "", DIGEST),
    ("x:" + "a" * 128, "docker.io", "library/x", "a" * 128, ""),
]


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), GOOD)
def test_good(text: str, registry: str, repository: str, tag: str, digest: str) -> None:
    ref = parse_reference(text)
    assert ref == Reference(registry, repository, tag, digest)
    assert parse_reference(str(ref)) == ref
    assert parse_reference(ref.familiar) == ref


BAD = [
    ("", "empty reference"),
    ("Alpine", "repository names must be lower case"),
    ("docker.io/Library/alpine", "repository names must be lower case"),
    ("alpine:", "bad tag ''"),
    ("alpine:-x", "bad tag '-x'"),
    ("alpine:" + "a" * 129, "bad tag"),
    ("alpine@sha256:abc", "sha256 takes 64 lower-case hex digits"),
    ("alpine@sha256:" + "A" * 64, "sha256 takes 64"),
    ("alpine@md5:" + "a" * 32, "bad digest"),
    ("alpine@", "bad digest"),
    ("a//b", "empty name component"),
    ("/a", "empty name component"),
    ("a/", "empty name component"),
    ("a/-b", "bad name component '-b'"),
    ("a/b_", "bad name component 'b_'"),
    ("a/b___c", "bad name component"),
    ("exa_mple.com/a", "bad registry host"),
    ("[::zz]:5000/a", "bad registry host"),
    ("[1:2]:5000/a", "bad IPv6 address"),
    ("https://ghcr.io/o/r", "no URL scheme"),
    ("ghcr.io/" + "a" * 300, "longer than 255"),
]


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_bad(text: str, problem: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    message = str(info.value)
    assert problem in message
    assert "\n" not in message
    assert message.startswith(f"invalid reference {text!r}")
    if text:
        hint = info.value.hint
        assert hint is not None
        assert hint.splitlines()[0] == text
        assert "^" in hint.splitlines()[1]


def test_caret_points_at_the_problem() -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference("ghcr.io/o/Bad:1")
    line, marks = (info.value.hint or "").splitlines()
    assert line[marks.index("~") if "~" in marks else marks.index("^") :].startswith("Bad")


def test_properties() -> None:
    hub = parse_reference("alpine")
    assert hub.api_host == "registry-1.docker.io"
    assert hub.name == "docker.io/library/alpine"
    assert hub.familiar == "alpine:latest"
    assert hub.familiar_name == "alpine"
    assert hub.ref == "latest"
    assert str(hub) == "docker.io/library/alpine:latest"
    user = parse_reference("user/app:1")
    assert user.familiar == "user/app:1"
    ghcr = parse_reference(f"ghcr.io/o/r:1@{DIGEST}")
    assert ghcr.api_host == "ghcr.io"
    assert ghcr.ref == DIGEST
    assert ghcr.familiar == f"ghcr.io/o/r:1@{DIGEST}"
    assert str(ghcr.with_tag("2")) == "ghcr.io/o/r:2"
    assert str(ghcr.with_digest(DIGEST)) == f"ghcr.io/o/r@{DIGEST}"
    assert str(ghcr.in_repository("o/other")) == "ghcr.io/o/other"
    with pytest.raises(InvalidReference):
        ghcr.with_tag("bad tag")
    with pytest.raises(InvalidReference):
        ghcr.with_digest("sha256:00")
    with pytest.raises(InvalidReference):
        ghcr.in_repository("Up/per")


def test_default_tag() -> None:
    assert parse_reference("alpine", default_tag="").tag == ""
    assert parse_reference("alpine", default_tag="edge").tag == "edge"


@pytest.mark.parametrize(
    "text", ["alpine", "alpine:3.22", "user/app:1", "ghcr.io/o/r:1", "localhost:5000/x/y:z"]
)
def test_familiar_is_what_the_store_uses(text: str) -> None:
    ref = parse_reference(text)
    assert parse_name(text).ref_name == ref.familiar


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("registry.localhost:80", True),
        ("127.0.0.1", True),
        ("127.1.2.3:5000", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("128.0.0.1", False),
        ("10.0.0.1:5000", False),
        ("ghcr.io", False),
        ("localhost.example.com", False),
        ("docker.io", False),
    ],
)
def test_insecure_default(registry: str, expected: bool) -> None:
    assert is_insecure_default(registry) is expected


def test_insecure_listed() -> None:
    assert is_insecure("reg.lan:5000", ["reg.lan:5000"])
    assert is_insecure("reg.lan:5000", ["reg.lan"])
    assert not is_insecure("reg.lan:5000", ["other.lan"])
    assert not is_insecure("reg.lan", [])
    assert is_insecure("localhost:1", [])


def test_normalize_registry_and_host() -> None:
    assert normalize_registry("https://index.docker.io/v1/") == "docker.io"
    assert normalize_registry("registry-1.docker.io") == "docker.io"
    assert normalize_registry("http://localhost:5000/") == "localhost:5000"
    assert host_of("[::1]:5000") == "::1"
    assert host_of("a.b:1") == "a.b"


def test_exports() -> None:
    assert sorted(reference.__all__) == sorted(
        [
            "DOCKER_HUB",
            "DOCKER_HUB_API",
            "Reference",
            "host_of",
            "is_insecure",
            "is_insecure_default",
            "normalize_registry",
            "parse_reference",
        ]
    )
    assert dir(reference) == reference.__all__


_component = st.from_regex(r"[a-z0-9]{1,5}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,5}){0,2}", fullmatch=True)
_host = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,8}[a-z0-9]\.[a-z]{2,5}(?::[0-9]{1,5})?", fullmatch=True),
    st.from_regex(r"localhost(?::[0-9]{1,5})?", fullmatch=True),
    st.just("127.0.0.1:5000"),
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)


@given(
    host=st.one_of(st.none(), _host),
    path=st.lists(_component, min_size=1, max_size=3),
    tag=st.one_of(st.none(), _tag),
    digest=st.one_of(st.none(), _digest),
)
def test_round_trip(host: str | None, path: list[str], tag: str | None, digest: str | None) -> None:
    # without a host, a first component with a '.' would be read as a host (as Docker does)
    assume(host is not None or len(path) == 1 or "." not in path[0])
    text = "/".join(path)
    if host:
        text = f"{host}/{text}"
    if tag:
        text += f":{tag}"
    if digest:
        text += f"@{digest}"
    ref = parse_reference(text)
    assert parse_reference(str(ref)) == ref
    assert parse_reference(ref.familiar) == ref
    assert ref.tag == (tag or ("" if digest else "latest"))
    assert ref.digest == (digest or "")
