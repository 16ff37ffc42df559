"""APKINDEX text and APKINDEX.tar.gz: apk's reader rules, writer layout, signatures, bad input."""

from __future__ import annotations

import dataclasses
import gzip
import io
import tarfile
from pathlib import Path

import pytest

from alpenglow.apk.archive import BLOCK, TarEntry, gzip_member, read_tar, split_gzip, write_tar
from alpenglow.apk.dependency import Dependency, parse, parse_list
from alpenglow.apk.index import (
    IndexArchive,
    Package,
    format_index,
    format_package,
    load_index_archive,
    parse_index,
    parse_package_fields,
    write_index_archive,
)
from alpenglow.apk.signing import Keyring, Signer, generate_keypair
from alpenglow.apk.version import Op
from alpenglow.errors import ArchiveError, IndexFormatError, SignatureError

ALPINE_KEY = "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"

EXAMPLE = """\
C:Q1jPsNozZhCks+WW7OUyLGU9t/7K8=
P:hello
V:1.0-r0
A:x86_64
S:1036
I:4096
T:example package
U:https://example.com/
L:MIT
o:hello
t:1700000000
D:so:libc.musl-x86_64.so.1 /bin/sh
p:cmd:hello=1.0-r0

"""


@pytest.fixture(scope="module")
def alpine_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "alpine-v3.16-main-x86_64"


@pytest.fixture(scope="module")
def alpine_blob(alpine_dir: Path) -> bytes:
    return (alpine_dir / "APKINDEX.tar.gz").read_bytes()


@pytest.fixture(scope="module")
def alpine_keys(alpine_dir: Path) -> Keyring:
    return Keyring.from_directory(alpine_dir)


@pytest.fixture(scope="module")
def alpine_text(alpine_blob: bytes) -> bytes:
    index_tar = read_tar(split_gzip(alpine_blob)[1].payload)
    return next(e.data for e in index_tar if e.path == "APKINDEX")


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Signer, Keyring]:
    private, public = generate_keypair(2048)
    keys_dir = tmp_path_factory.mktemp("keys")
    (keys_dir / "test-65000000.rsa.pub").write_bytes(public)
    return Signer("test-65000000.rsa.pub", private), Keyring.from_directory(keys_dir)


# --------------------------------------------------------------------------------------------
# text


def test_parse_example_stanza() -> None:
    (pkg,) = parse_index(EXAMPLE)
    assert pkg == Package(
        name="hello",
        version="1.0-r0",
        checksum="Q1jPsNozZhCks+WW7OUyLGU9t/7K8=",
        arch="x86_64",
        size=1036,
        installed_size=4096,
        description="example package",
        url="https://example.com/",
        license="MIT",
        origin="hello",
        build_time=1_700_000_000,
        depends=(Dependency("so:libc.musl-x86_64.so.1"), Dependency("/bin/sh")),
        provides=(Dependency("cmd:hello", Op.EQ, "1.0-r0"),),
    )
    assert str(pkg) == "hello-1.0-r0"
    assert pkg.provider_priority is None


def test_parse_bytes_and_str_agree() -> None:
    assert parse_index(EXAMPLE.encode()) == parse_index(EXAMPLE)


def test_format_example_stanza_is_byte_exact() -> None:
    assert format_index(parse_index(EXAMPLE)) == EXAMPLE.encode()


def test_parsed_packages_are_ordinary_frozen_records() -> None:
    (pkg,) = parse_index(EXAMPLE)
    assert type(pkg) is Package
    with pytest.raises(dataclasses.FrozenInstanceError):
        pkg.name = "other"  # type: ignore[misc]
    assert hash(pkg) == hash(dataclasses.replace(pkg))
    assert {pkg: 1}[dataclasses.replace(pkg)] == 1


def test_field_order_and_presence() -> None:
    pkg = Package(
        name="z",
        version="2",
        maintainer="M <m@x>",
        commit="abc",
        provider_priority=0,
        install_if=parse_list("a b=1"),
        depends=parse_list("c"),
        provides=parse_list("d=2"),
        build_time=5,
        extra=(("x", "kept"),),
    )
    assert format_package(pkg) == "\n".join(
        [
            "C:",
            "P:z",
            "V:2",
            "S:0",
            "I:0",
            "T:",
            "U:",
            "L:",
            "m:M <m@x>",
            "t:5",
            "c:abc",
            "k:0",
            "D:c",
            "p:d=2",
            "i:a b=1",
            "x:kept",
        ]
    )


def test_installed_fields() -> None:
    pkg = Package(
        name="a",
        version="1",
        arch="x86_64",
        tags=("t1", "t2"),
        replaces=parse_list("b c"),
        replaces_priority=3,
        repository_tag="edge",
        flags="fs",
    )
    text = format_package(pkg, installed=True)
    assert text.splitlines()[-5:] == ["g:t1 t2", "r:b c", "q:3", "s:edge", "f:fs"]
    assert "r:" not in format_package(pkg)
    (back,) = parse_index(text + "\n\n")
    assert back == pkg


def test_format_index_sorts_by_name() -> None:
    pkgs = [Package("b", "1"), Package("a", "2"), Package("a", "1")]
    text = format_index(pkgs).decode()
    assert [line for line in text.splitlines() if line.startswith("P:")] == ["P:a", "P:a", "P:b"]
    assert text.endswith("\n\n")
    assert "V:2\nS:0" in text.split("\n\n")[0]  # stable for equal names


def test_several_stanza_layouts_give_the_same_records() -> None:
    canonical = parse_index(EXAMPLE)
    shuffled = "\n".join(reversed(EXAMPLE.strip().splitlines())) + "\n\n"
    assert parse_index(shuffled) == canonical
    assert parse_index(EXAMPLE.rstrip("\n")) == canonical  # no final newline
    assert parse_index("\n\n" + EXAMPLE + "\n\n\n") == canonical  # extra blank lines


def test_empty_index() -> None:
    assert parse_index("") == []
    assert parse_index(b"\n\n") == []


def test_unknown_fields() -> None:
    lower, upper = parse_index("P:a\nV:1\nz:zed\ny:why\n\nP:b\nV:1\nZ:upper\n\n")
    assert lower.extra == (("z", "zed"), ("y", "why"))
    assert not lower.uninstallable
    assert upper.extra == (("Z", "upper"),)
    assert upper.uninstallable


def test_provider_priority_given_or_not() -> None:
    given, absent = parse_index("P:a\nV:1\nk:0\n\nP:b\nV:1\n\n")
    assert given.provider_priority == 0
    assert absent.provider_priority is None
    assert "k:0" in format_package(given)
    assert "k:" not in format_package(absent)


def test_malformed_depends_makes_package_uninstallable() -> None:
    (pkg,) = parse_index("P:a\nV:1\nD:good b>=1.0_foo !\n\n")
    assert pkg.uninstallable
    assert [d.name for d in pkg.depends] == ["good", "b"]  # apk keeps the bad-version atom


def test_malformed_install_if_is_dropped() -> None:
    (pkg,) = parse_index("P:a\nV:1\ni:x y=v1\n\n")
    assert pkg.install_if == ()
    assert not pkg.uninstallable


def test_provides_with_invalid_version_is_kept() -> None:
    # Alpine v3.16 really has `p:cmd:smtp=6.8.0p2-r4`; apk keeps it.
    (pkg,) = parse_index("P:a\nV:1\np:cmd:smtp=6.8.0p2-r4 so:libx.so.1=1\n\n")
    assert pkg.provides == (
        Dependency("cmd:smtp", Op.EQ, "6.8.0p2-r4"),
        parse("so:libx.so.1=1"),
    )
    assert not pkg.uninstallable


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("P:a\nV:1\nnonsense\n\n", "idx: line 3: expected 'X:value', got 'nonsense'"),
        ("P:a\nV:1\n\nP:b\nV:1\nS:12k\n", "idx: line 6: field S: needs a number, got '12k'"),
        ("P:a\nV:1\nI:-1\n", "idx: line 3: field I: needs a number"),
        ("P:a\nV:1\nt:\n", "idx: line 3: field t: needs a number"),
        ("P:a\nV:1\nk:high\n", "idx: line 3: field k: needs a number"),
        ("C:Q1x\nV:1\n\n", "idx: package at line 1: missing or empty P: field"),
        ("P:a\nV:\n\n", "idx: package at line 1: missing or empty V: field"),
        ("P:a\nV:1\nXY\n", "idx: line 3: expected 'X:value'"),
    ],
)
def test_malformed_lines(text: str, message: str) -> None:
    with pytest.raises(IndexFormatError) as info:
        parse_index(text, source="idx")
    assert str(info.value).startswith(message)


def test_non_utf8_bytes() -> None:
    with pytest.raises(IndexFormatError, match=r"^idx: line 3: not valid UTF-8$"):
        parse_index(b"P:a\nV:1\nT:caf\xe9\n\n", source="idx")


def test_parse_package_fields() -> None:
    pkg = parse_package_fields(
        [("P", "a"), ("V", "1"), ("r", "b"), ("q", "2"), ("s", "edge"), ("g", "x y")],
        source="installed",
        line=7,
    )
    assert pkg.replaces == (Dependency("b"),)
    assert (pkg.replaces_priority, pkg.repository_tag, pkg.tags) == (2, "edge", ("x", "y"))
    with pytest.raises(IndexFormatError, match=r"^installed: package at line 7: field q:"):
        parse_package_fields([("P", "a"), ("V", "1"), ("q", "x")], source="installed", line=7)


def test_real_index_parses(alpine_text: bytes) -> None:
    packages = parse_index(alpine_text)
    assert len(packages) == 4929
    by_name = {p.name: p for p in packages}
    musl = by_name["musl"]
    assert musl.arch == "x86_64"
    assert musl.size > 0
    assert musl.installed_size > 0
    assert musl.build_time > 1_600_000_000
    assert any(d.name == "so:libc.musl-x86_64.so.1" for d in musl.provides)
    assert [p.name for p in packages if p.uninstallable] == ["opensmtpd-pam"]


def test_real_index_general_and_fast_paths_agree(alpine_text: bytes) -> None:
    fast = parse_index(alpine_text)
    # One unknown lower-case field per stanza sends the text through the general reader.
    slow_text = alpine_text.replace(b"\nP:", b"\nz:1\nP:")
    slow = parse_index(slow_text)
    assert [dataclasses.replace(p, extra=()) for p in slow] == fast
    assert all(p.extra == (("z", "1"),) for p in slow[1:])


def test_real_index_round_trips(alpine_text: bytes) -> None:
    packages = parse_index(alpine_text)
    written = format_index(packages)
    assert sorted(parse_index(written), key=lambda p: p.name) == sorted(
        packages, key=lambda p: p.name
    )
    original = set(alpine_text.decode().split("\n\n"))
    rewritten = set(written.decode().split("\n\n"))
    # Only the two stanzas whose i: apk drops (invalid version inside) differ.
    assert len(original - rewritten) == 2
    assert all("opensmtpd" in stanza for stanza in original - rewritten)


# --------------------------------------------------------------------------------------------
# APKINDEX.tar.gz


def test_load_real_signed_index(alpine_blob: bytes, alpine_keys: Keyring) -> None:
    index = load_index_archive(alpine_blob, alpine_keys, source="v3.16/main")
    assert isinstance(index, IndexArchive)
    assert index.description == "v3.16.3-13-g4d933a1fa3"
    assert index.key_name == ALPINE_KEY
    assert len(index.packages) == 4929


def test_one_changed_byte_gives_bad_signature(alpine_blob: bytes, alpine_keys: Keyring) -> None:
    members = split_gzip(alpine_blob)
    tampered = bytearray(alpine_blob)
    tampered[members[1].start + 9] ^= 0x01  # gzip OS byte: still valid gzip, other bytes
    with pytest.raises(SignatureError, match=r"^v3.16/main: BAD signature"):
        load_index_archive(bytes(tampered), alpine_keys, source="v3.16/main")
    with pytest.raises(SignatureError, match="BAD signature"):
        load_index_archive(bytes(tampered), alpine_keys, source="v3.16/main", allow_untrusted=True)


def test_one_changed_compressed_byte(alpine_blob: bytes, alpine_keys: Keyring) -> None:
    tampered = bytearray(alpine_blob)
    tampered[len(alpine_blob) // 2] ^= 0x55
    with pytest.raises((ArchiveError, SignatureError)):
        load_index_archive(bytes(tampered), alpine_keys, source="x")


def test_key_absent(alpine_blob: bytes, tmp_path: Path) -> None:
    keys = Keyring.from_directory(tmp_path)
    with pytest.raises(SignatureError) as info:
        load_index_archive(alpine_blob, keys, source="v3.16/main")
    assert info.value.message == f"v3.16/main: signed by {ALPINE_KEY}, which is not in {tmp_path}"
    index = load_index_archive(alpine_blob, keys, source="x", allow_untrusted=True)
    assert index.key_name is None
    assert len(index.packages) == 4929
    assert load_index_archive(alpine_blob, None, source="x", allow_untrusted=True).key_name is None


def _conformance_style_index(text: str) -> bytes:
    """What apk-tools' test suite makes: `tar czf x.tar.gz APKINDEX`, unsigned."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = text.encode()
        info = tarfile.TarInfo("APKINDEX")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue())


def test_unsigned_single_member_index(shared_dir: Path) -> None:
    repo = next((shared_dir / "conformance" / "apk-solver").glob("*.repo"))
    blob = _conformance_style_index(repo.read_text())
    with pytest.raises(SignatureError, match="UNTRUSTED"):
        load_index_archive(blob, Keyring(), source="test.tar.gz")
    index = load_index_archive(blob, Keyring(), source="test.tar.gz", allow_untrusted=True)
    assert index.key_name is None
    assert index.description == ""
    assert len(index.packages) == repo.read_text().count("\nP:") + repo.read_text().startswith("P:")


def test_unknown_algorithm_member(alpine_blob: bytes, alpine_keys: Keyring) -> None:
    members = split_gzip(alpine_blob)
    sig = read_tar(members[0].payload)[0]
    odd = write_tar([TarEntry(".SIGN.FOO." + ALPINE_KEY, data=sig.data)], end_of_archive=False)
    blob = gzip_member(odd) + members[1].compressed
    with pytest.raises(SignatureError, match="unknown signature algorithm 'FOO'"):
        load_index_archive(blob, alpine_keys, source="x")


def test_signature_member_with_other_entries(alpine_blob: bytes, alpine_keys: Keyring) -> None:
    members = split_gzip(alpine_blob)
    odd = write_tar([TarEntry("APKINDEX", data=b"P:a\nV:1\n")], end_of_archive=False)
    with pytest.raises(ArchiveError, match="unexpected entry 'APKINDEX' in the signature"):
        load_index_archive(gzip_member(odd) + members[1].compressed, alpine_keys, source="x")


def test_three_members(alpine_blob: bytes, alpine_keys: Keyring) -> None:
    with pytest.raises(ArchiveError, match="more than 2 gzip member"):
        load_index_archive(alpine_blob + gzip_member(b""), alpine_keys, source="x")


def test_truncated_and_garbage(alpine_blob: bytes, alpine_keys: Keyring) -> None:
    with pytest.raises(ArchiveError, match="x: truncated gzip data"):
        load_index_archive(alpine_blob[:-100], alpine_keys, source="x")
    with pytest.raises(ArchiveError, match="x: not gzip data"):
        load_index_archive(b"<html>404</html>", alpine_keys, source="x")


def test_oversized_member(alpine_blob: bytes, alpine_keys: Keyring) -> None:
    with pytest.raises(ArchiveError, match="decompresses to more than 1000000 bytes"):
        load_index_archive(alpine_blob, alpine_keys, source="x", max_size=1_000_000)


def test_index_member_without_apkindex(signer: tuple[Signer, Keyring]) -> None:
    member = gzip_member(write_tar([TarEntry("DESCRIPTION", data=b"d")]))
    with pytest.raises(IndexFormatError, match="x: no APKINDEX entry"):
        load_index_archive(member, None, source="x", allow_untrusted=True)


def test_malformed_line_inside_archive_names_both() -> None:
    member = gzip_member(write_tar([TarEntry("APKINDEX", data=b"P:a\nV:1\nbad\n")]))
    with pytest.raises(IndexFormatError, match=r"^repo: APKINDEX: line 3: expected"):
        load_index_archive(member, None, source="repo", allow_untrusted=True)


@pytest.mark.parametrize("algorithm", ["RSA", "RSA256", "RSA512"])
def test_write_and_load_signed_index(signer: tuple[Signer, Keyring], algorithm: str) -> None:
    base, keys = signer
    sign_with = dataclasses.replace(base, algorithm=algorithm)
    packages = [*parse_index(EXAMPLE), Package("abc", "2.0-r1", checksum="Q1x=", size=9)]
    blob = write_index_archive(packages, "v1.0-test", sign_with, mtime=1_700_000_000)
    assert blob == write_index_archive(packages, "v1.0-test", sign_with, mtime=1_700_000_000)
    index = load_index_archive(blob, keys, source="mine")
    assert index.key_name == "test-65000000.rsa.pub"
    assert index.description == "v1.0-test"
    assert list(index.packages) == sorted(packages, key=lambda p: p.name)
    signature_member, index_member = split_gzip(blob)
    assert signature_member.compressed[:10] == bytes.fromhex("1f8b0800000000000203")
    (sig,) = read_tar(signature_member.payload)
    assert sig.path == f".SIGN.{algorithm}.test-65000000.rsa.pub"
    assert len(signature_member.payload) == 2 * BLOCK  # header + 256-byte signature, no EOF
    entries = read_tar(index_member.payload)
    assert [e.path for e in entries] == ["DESCRIPTION", "APKINDEX"]
    assert all(e.mtime == 1_700_000_000 and e.mode == 0o644 for e in entries)
    assert index_member.payload.endswith(bytes(2 * BLOCK))


def test_write_unsigned_index_loads_only_untrusted() -> None:
    blob = write_index_archive(parse_index(EXAMPLE), "", None)
    assert len(split_gzip(blob)) == 1
    with pytest.raises(SignatureError, match="not signed"):
        load_index_archive(blob, Keyring(), source="x")
    assert len(load_index_archive(blob, None, source="x", allow_untrusted=True).packages) == 1


def test_long_description_is_ignored_like_apk() -> None:
    member = gzip_member(
        write_tar(
            [TarEntry("DESCRIPTION", data=b"d" * 161), TarEntry("APKINDEX", data=b"P:a\nV:1\n")]
        )
    )
    assert load_index_archive(member, None, source="x", allow_untrusted=True).description == ""
