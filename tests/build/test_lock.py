"""Lock files: apko's apko.lock.json read and written, and locks compared with a resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alpenglow.apk.index import Package
from alpenglow.build import lock as lock_module
from alpenglow.build.config import BuildConfig
from alpenglow.build.lock import (
    Lock,
    LockedKey,
    LockedPackage,
    LockedRepository,
    LockError,
    Span,
    format_lock,
    lock_differences,
    lock_from_build,
    locked_repository,
    package_url,
    parse_lock,
)
from alpenglow.errors import FormatError

MAIN = "https://dl-cdn.alpinelinux.org/alpine/v3.22/main"

BUSYBOX = LockedPackage(
    "busybox",
    "1.36.1-r0",
    "x86_64",
    "Q1Ho3E8Ky3b5DW2lqpkOkUNf3CsNs=",
    f"{MAIN}/x86_64/busybox-1.36.1-r0.apk",
    MAIN,
    signature=Span("bytes=0-700", "sha1-dGVzdA=="),
    control=Span("bytes=701-1800", "sha1-Y29udHJvbA=="),
    data=Span("bytes=1801-9000", "sha256-ZGF0YQ=="),
)
BASELAYOUT_DATA = LockedPackage(
    "alpine-baselayout-data",
    "3.6.8-r1",
    "aarch64",
    "Q1aXQgaXMgbm9hcmNoIGRhdGEgIQ==",
    f"{MAIN}/aarch64/alpine-baselayout-data-3.6.8-r1.apk",
    MAIN,
    package_arch="noarch",
)


def sample() -> Lock:
    return Lock(
        config_name="apko.yaml",
        config_checksum="sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        keyring=(LockedKey("example.org/k.rsa.pub", "https://example.org/k.rsa.pub"),),
        repositories=(
            locked_repository(MAIN, "x86_64"),
            locked_repository(MAIN, "aarch64"),
        ),
        packages=(
            BUSYBOX,
            LockedPackage("musl", "1.2.5-r9", "x86_64", "Q1bXVzbA=="),
            BASELAYOUT_DATA,
            LockedPackage("busybox", "1.36.1-r0", "aarch64", "Q1YWFyY2g2NA=="),
        ),
    )


def test_round_trip_and_fixed_bytes() -> None:
    lock = sample()
    data = format_lock(lock)
    assert parse_lock(data, "apko.lock.json") == lock
    assert format_lock(parse_lock(data, "apko.lock.json")) == data
    assert data.endswith(b"}\n")
    assert lock.archs == ("x86_64", "aarch64")
    assert lock.packages_for("aarch64") == (BASELAYOUT_DATA, lock.packages[3])


def test_written_like_apko() -> None:
    doc = json.loads(format_lock(sample()))
    assert list(doc) == ["version", "config", "contents"]
    assert doc["version"] == "v1"
    assert doc["config"] == {
        "name": "apko.yaml",
        "checksum": "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    }
    contents = doc["contents"]
    assert list(contents) == ["keyring", "build_repositories", "repositories", "packages"]
    assert contents["repositories"][0] == {
        "name": "dl-cdn.alpinelinux.org/alpine/v3.22/main/x86_64",
        "url": f"{MAIN}/x86_64/APKINDEX.tar.gz",
        "architecture": "x86_64",
    }
    busybox, musl, data, _ = contents["packages"]
    assert list(busybox) == [
        "name",
        "url",
        "version",
        "architecture",
        "signature",
        "control",
        "data",
        "checksum",
        "repository",
    ]
    assert busybox["control"] == {"range": "bytes=701-1800", "checksum": "sha1-Y29udHJvbA=="}
    assert musl == {
        "name": "musl",
        "url": "",
        "version": "1.2.5-r9",
        "architecture": "x86_64",
        "checksum": "Q1bXVzbA==",
    }
    assert data["architecture"] == "noarch"
    assert data["image_architecture"] == "aarch64"


APKO_LOCK = """{
  "version": "v1",
  "config": {
    "name": "examples/alpine-base.yaml",
    "checksum": "sha256-Q4vJfZ7bnjp0vtoWUHo5pPsZCZ4m/sbU5Xv1pXgK6bk="
  },
  "contents": {
    "keyring": null,
    "build_repositories": [],
    "repositories": [
      {
        "name": "dl-cdn.alpinelinux.org/alpine/edge/main/x86_64",
        "url": "https://dl-cdn.alpinelinux.org/alpine/edge/main/x86_64/APKINDEX.tar.gz",
        "architecture": "x86_64"
      },
      {
        "name": "dl-cdn.alpinelinux.org/alpine/edge/main/aarch64",
        "url": "https://dl-cdn.alpinelinux.org/alpine/edge/main/aarch64/APKINDEX.tar.gz",
        "architecture": "aarch64"
      }
    ],
    "packages": [
      {
        "name": "alpine-baselayout-data",
        "url": "https://dl-cdn.alpinelinux.org/alpine/edge/main/x86_64/alpine-baselayout-data-3.6.8-r1.apk",
        "version": "3.6.8-r1",
        "architecture": "noarch",
        "signature": {"range": "bytes=0-698", "checksum": "sha1-pLtbB9yDmFvzmw6FVGpxzBUBUOI="},
        "control": {"range": "bytes=699-1078", "checksum": "sha1-YgsbVm8d2jfOM6yB0rlpyzzgpFs="},
        "data": {"range": "bytes=1079-2540",
                 "checksum": "sha256-Ti/1QiVStEaSpS02rOtOc6VuxojMOPJlSlpNXYyn4qo="},
        "checksum": "Q1YgsbVm8d2jfOM6yB0rlpyzzgpFs="
      },
      {
        "name": "musl",
        "url": "https://dl-cdn.alpinelinux.org/alpine/edge/main/aarch64/musl-1.2.5-r9.apk",
        "version": "1.2.5-r9",
        "architecture": "aarch64",
        "signature": {"range": "", "checksum": ""},
        "control": {"range": "bytes=0-10", "checksum": "sha1-AAAA"},
        "data": {"range": "bytes=11-20", "checksum": "sha256-BBBB"},
        "checksum": "Q1bXVzbGFhcmNoNjQ=",
        "some_future_field": 1
      }
    ]
  }
}
"""


def test_reads_an_apko_lock() -> None:
    lock = parse_lock(APKO_LOCK.encode(), "alpine-base.lock.json")
    assert lock.config_name == "examples/alpine-base.yaml"
    assert lock.keyring == ()
    assert lock.archs == ("x86_64", "aarch64")
    data, musl = lock.packages
    assert (data.arch, data.package_arch) == ("x86_64", "noarch")  # from the URL's directory
    assert data.signature == Span("bytes=0-698", "sha1-pLtbB9yDmFvzmw6FVGpxzBUBUOI=")
    assert (musl.arch, musl.package_arch, musl.signature) == ("aarch64", "", None)
    assert musl.control == Span("bytes=0-10", "sha1-AAAA")


def test_noarch_of_a_single_arch_lock() -> None:
    doc = json.loads(APKO_LOCK)
    doc["contents"]["repositories"] = doc["contents"]["repositories"][1:]
    doc["contents"]["packages"][0]["url"] = "file:///srv/repo/alpine-baselayout-data.apk"
    doc["contents"]["packages"] = doc["contents"]["packages"][:1]
    lock = parse_lock(json.dumps(doc), "x.lock.json")
    assert lock.packages[0].arch == "aarch64"


def test_lock_from_build(tmp_path: Path) -> None:
    config = BuildConfig(
        source=tmp_path / "alpine-base.yaml",
        checksum="sha256-abc=",
        repositories=(MAIN, "@local /srv/packages"),
        keyring=("https://example.org/b.rsa.pub", "/etc/apk/keys/a.rsa.pub"),
    )
    musl = Package("musl", "1.2.5-r9", checksum="Q1bXVzbA==", arch="x86_64")
    data = Package("alpine-baselayout-data", "3.6.8-r1", checksum="Q1ZGF0YQ==", arch="noarch")
    mine = Package("mine", "1.0-r0", checksum="Q1bWluZQ==", arch="x86_64")
    lock = lock_from_build(
        config,
        [
            (
                "x86_64",
                (musl, data, mine),
                {
                    "Q1bXVzbA==": MAIN,
                    "alpine-baselayout-data": MAIN,
                    "mine": "@local /srv/packages",
                },
            )
        ],
    )
    assert lock.config_name == "alpine-base.yaml"
    assert lock.config_checksum == "sha256-abc="
    assert lock.keyring == (
        LockedKey("/etc/apk/keys/a.rsa.pub", "/etc/apk/keys/a.rsa.pub"),
        LockedKey("example.org/b.rsa.pub", "https://example.org/b.rsa.pub"),
    )
    assert lock.repositories == (
        LockedRepository(
            "dl-cdn.alpinelinux.org/alpine/v3.22/main/x86_64",
            f"{MAIN}/x86_64/APKINDEX.tar.gz",
            "x86_64",
        ),
        LockedRepository("/srv/packages/x86_64", "/srv/packages/x86_64/APKINDEX.tar.gz", "x86_64"),
    )
    assert lock.packages == (
        LockedPackage(
            "musl", "1.2.5-r9", "x86_64", "Q1bXVzbA==", f"{MAIN}/x86_64/musl-1.2.5-r9.apk", MAIN
        ),
        LockedPackage(
            "alpine-baselayout-data",
            "3.6.8-r1",
            "x86_64",
            "Q1ZGF0YQ==",
            f"{MAIN}/x86_64/alpine-baselayout-data-3.6.8-r1.apk",
            MAIN,
            package_arch="noarch",
        ),
        LockedPackage(
            "mine",
            "1.0-r0",
            "x86_64",
            "Q1bWluZQ==",
            "/srv/packages/x86_64/mine-1.0-r0.apk",
            "@local /srv/packages",
        ),
    )
    assert parse_lock(format_lock(lock), "l") == lock


def test_package_url() -> None:
    assert package_url("", "x86_64", "a", "1-r0") == ""
    assert package_url("https://r.example/main/", "armv7", "a", "1-r0") == (
        "https://r.example/main/armv7/a-1-r0.apk"
    )


# -- errors name the file --------------------------------------------------------------------


def _doc(**changes: object) -> str:
    doc = json.loads(format_lock(sample()))
    for path, value in changes.items():
        target = doc
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{", r"^l\.json:1: invalid JSON: Expecting property name"),
        ("[]", r"^l\.json: expected an object, got a list$"),
        (_doc(version="v2"), r"^l\.json: version: unsupported lock file version 'v2'"),
        (_doc(contents=None), r"^l\.json: contents: expected an object, got null$"),
        (
            _doc(contents__packages__1__name=""),
            r"^l\.json: contents\.packages\[1\]\.name: expected a non-empty string, got a string$",
        ),
        (
            _doc(contents__packages__1__version="1.x"),
            r"^l\.json: contents\.packages\[1\]\.version: '1\.x' is not an apk version$",
        ),
        (
            _doc(contents__packages__0__checksum="sha1-xyz"),
            r"^l\.json: contents\.packages\[0\]\.checksum: 'sha1-xyz' is not a package identity",
        ),
        (
            _doc(contents__packages__0__architecture=7),
            r"^l\.json: contents\.packages\[0\]\.architecture: expected a non-empty string, "
            r"got a number",
        ),
        (
            _doc(contents__repositories="x"),
            r"^l\.json: contents\.repositories: expected a list, got a string$",
        ),
        (
            _doc(contents__packages__2__image_architecture="", contents__packages__2__url=""),
            r"^l\.json: contents\.packages\[2\]: cannot tell which architecture the noarch package",
        ),
    ],
)
def test_errors_name_the_file(data: str, message: str) -> None:
    with pytest.raises(LockError, match=message):
        parse_lock(data.encode(), "l.json")


def test_not_utf8() -> None:
    with pytest.raises(LockError, match=r"^l\.json: not UTF-8 text$"):
        parse_lock(b'{"version": "\xff"}', "l.json")


def test_lock_error_is_a_format_error() -> None:
    assert issubclass(LockError, FormatError)


# -- differences -----------------------------------------------------------------------------


def test_no_differences() -> None:
    lock = sample()
    assert lock_differences(lock, "x86_64", lock.packages_for("x86_64")) == []
    reordered = tuple(reversed(lock.packages_for("aarch64")))
    assert lock_differences(lock, "aarch64", reordered) == []


def test_differences_are_named() -> None:
    lock = sample()
    resolved = [
        LockedPackage("busybox", "1.36.1-r1", "x86_64", "Q1bmV3"),
        LockedPackage("musl", "1.2.5-r9", "x86_64", "Q1b3RoZXI="),
        LockedPackage("zlib", "1.3.1-r0", "x86_64", "Q1emxpYg=="),
    ]
    assert lock_differences(lock, "x86_64", resolved) == [
        "x86_64: busybox 1.36.1-r0 (locked) != 1.36.1-r1 (resolved)",
        "x86_64: musl 1.2.5-r9: checksum Q1bXVzbA== (locked) != Q1b3RoZXI= (resolved)",
        "x86_64: zlib 1.3.1-r0 (resolved) is not in the lock",
    ]
    assert lock_differences(lock, "aarch64", []) == [
        "aarch64: alpine-baselayout-data 3.6.8-r1 (locked) is not in the resolved set",
        "aarch64: busybox 1.36.1-r0 (locked) is not in the resolved set",
    ]


def test_checksums_compared_only_when_both_known() -> None:
    lock = Lock(packages=(LockedPackage("a", "1-r0", "x86", ""),))
    assert lock_differences(lock, "x86", [LockedPackage("a", "1-r0", "x86", "Q1YQ==")]) == []


def test_architecture_missing_from_the_lock() -> None:
    assert lock_differences(sample(), "riscv64", [BUSYBOX]) == [
        "riscv64: the lock file has no packages for this architecture"
    ]
    assert lock_differences(Lock(), "riscv64", []) == []


# -- property: anything written reads back the same ------------------------------------------

_text = st.text(
    st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters='"\\'),
    min_size=1,
    max_size=12,
)
_versions = st.sampled_from(["1.0", "1.36.1-r0", "2.0_rc1-r3", "0.1.2.3_p4", "6.5_p20251025-r1"])
_arches = st.sampled_from(["x86_64", "aarch64", "armv7"])
_spans = st.none() | st.builds(Span, _text, _text)


@st.composite
def _packages(draw: st.DrawFn) -> LockedPackage:
    arch = draw(_arches)
    return LockedPackage(
        name=draw(_text),
        version=draw(_versions),
        arch=arch,
        checksum=draw(st.sampled_from(["", "Q1abc=", "Q2xyz="])),
        url=draw(st.just("") | _text),
        repository=draw(st.just("") | _text),
        package_arch=draw(st.sampled_from(["", "noarch"])),
        signature=draw(_spans),
        control=draw(_spans),
        data=draw(_spans),
    )


@given(st.lists(_packages(), max_size=6), st.lists(st.builds(LockedKey, _text, _text), max_size=3))
def test_format_then_parse_is_identity(
    packages: list[LockedPackage], keys: list[LockedKey]
) -> None:
    lock = Lock(
        config_name="c.yaml",
        config_checksum="sha256-x",
        keyring=tuple(keys),
        repositories=tuple(locked_repository(MAIN, a) for a in ("x86_64", "aarch64", "armv7")),
        packages=tuple(packages),
    )
    assert parse_lock(format_lock(lock), "p.json") == lock


def test_exports() -> None:
    assert set(dir(lock_module)) == set(lock_module.__all__)
