"""v2 .apk packages: build from a tree, read back, verify, and reject tampering."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
from pathlib import Path

import pytest

from alpenglow.apk.archive import BLOCK, TarEntry, gzip_member, read_tar, split_gzip, write_tar
from alpenglow.apk.dependency import parse_list
from alpenglow.apk.index import Package
from alpenglow.apk.package import (
    CHECKSUM_KEY,
    PackageInfo,
    format_pkginfo,
    identity_of,
    parse_pkginfo,
    read_package,
    tree_entries,
    write_package,
)
from alpenglow.apk.signing import Keyring, Signer, generate_keypair
from alpenglow.errors import ArchiveError, PackageError, SignatureError

MTIME = 1_700_000_000
INFO = PackageInfo(
    Package(
        "hello",
        "1.0-r0",
        arch="x86_64",
        description="a test package",
        url="https://example.com/",
        license="MIT",
        origin="hello",
        build_time=MTIME,
        depends=parse_list("so:libc.musl-x86_64.so.1 /bin/sh"),
        provides=parse_list("cmd:hello=1.0-r0"),
    ),
    packager="Tester <t@example.com>",
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Signer, Keyring]:
    private, public = generate_keypair(2048)
    directory = tmp_path_factory.mktemp("keys")
    (directory / "packager-65000000.rsa.pub").write_bytes(public)
    return Signer("packager-65000000.rsa.pub", private), Keyring.from_directory(directory)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    tool = root / "usr" / "bin" / "hello"
    tool.write_bytes(b"#!/bin/sh\necho hello\n")
    tool.chmod(0o755)
    os.link(tool, root / "usr" / "bin" / "hello-again")
    (root / "usr" / "bin" / "hi").symlink_to("hello")
    (root / "etc" / "hello.conf").write_text("greeting=hi\n")
    (root / "etc" / "hello.conf").chmod(0o600)
    return root


def _build(tree: Path, signer: Signer | None, **kw: object) -> bytes:
    return write_package(tree_entries(tree, mtime=MTIME), INFO, signer, mtime=MTIME, **kw)  # type: ignore[arg-type]


def test_round_trip(tree: Path, keys: tuple[Signer, Keyring]) -> None:
    signer, keyring = keys
    blob = _build(tree, signer, scripts=[(".post-install", b"#!/bin/sh\ntrue\n")])
    apk = read_package(blob, keyring, source="hello.apk")
    assert apk.key_name == "packager-65000000.rsa.pub"
    assert apk.package.name == "hello"
    assert apk.package.checksum == apk.identity
    assert apk.package.size == len(blob)
    assert apk.package.depends == INFO.package.depends
    assert apk.info.packager == "Tester <t@example.com>"
    assert apk.scripts == ((".post-install", b"#!/bin/sh\ntrue\n"),)
    entries = {e.path: e for e in apk.entries()}
    assert list(entries) == [
        "etc/",
        "etc/hello.conf",
        "usr/",
        "usr/bin/",
        "usr/bin/hello",
        "usr/bin/hello-again",
        "usr/bin/hi",
    ]
    assert entries["usr/bin/hello"].data == b"#!/bin/sh\necho hello\n"
    assert entries["usr/bin/hello"].mode == 0o755
    assert entries["etc/hello.conf"].mode == 0o600
    assert entries["usr/bin/hello-again"].type == "1"
    assert entries["usr/bin/hello-again"].linkname == "usr/bin/hello"
    assert entries["usr/bin/hi"].type == "2"
    assert entries["usr/bin/hi"].linkname == "hello"
    assert all(e.mtime == MTIME for e in entries.values())


def test_layout_follows_formats_md(tree: Path, keys: tuple[Signer, Keyring]) -> None:
    blob = _build(tree, keys[0])
    signature, control, data = split_gzip(blob)
    for member in (signature, control, data):
        assert member.compressed[:10] == bytes.fromhex("1f8b0800000000000203")
    # signature and control tars are cut; the data tar has its end blocks
    assert signature.payload[-BLOCK:] != bytes(BLOCK)
    assert control.payload[-BLOCK:] != bytes(BLOCK)
    assert data.payload.endswith(bytes(2 * BLOCK))
    (sig,) = read_tar(signature.payload)
    assert sig.path == ".SIGN.RSA.packager-65000000.rsa.pub"
    assert (sig.uid, sig.gid, sig.mode) == (0, 0, 0o644)
    info_text = read_tar(control.payload)[0].data.decode()
    assert info_text.splitlines()[-1] == "datahash = " + hashlib.sha256(data.compressed).hexdigest()
    keys_in_order = [line.split(" = ")[0] for line in info_text.splitlines()[1:]]
    assert keys_in_order == [
        "pkgname",
        "pkgver",
        "pkgdesc",
        "url",
        "builddate",
        "packager",
        "size",
        "arch",
        "origin",
        "license",
        "depend",
        "depend",
        "provides",
        "datahash",
    ]
    identity = "Q1" + base64.b64encode(hashlib.sha1(control.compressed).digest()).decode()
    assert (
        read_package(blob, keys[1], source="x").identity
        == identity
        == identity_of(control.compressed)
    )


def test_file_checksums(tree: Path) -> None:
    blob = _build(tree, None)
    entries = {e.path: e for e in read_tar(split_gzip(blob)[1].payload)}
    assert (
        entries["usr/bin/hello"].pax_value(CHECKSUM_KEY)
        == hashlib.sha1(b"#!/bin/sh\necho hello\n").hexdigest()
    )
    assert entries["usr/bin/hi"].pax_value(CHECKSUM_KEY) == hashlib.sha1(b"hello").hexdigest()
    assert entries["usr/bin/hello-again"].pax_value(CHECKSUM_KEY) is None
    assert entries["etc/"].pax_value(CHECKSUM_KEY) is None


def test_installed_size(tree: Path, tmp_path: Path) -> None:
    blob = _build(tree, None)
    apk = read_package(blob, None, source="x", allow_untrusted=True)
    # hello (21) + hello.conf (12); the hard link and symlink add nothing
    assert apk.package.installed_size == 21 + 12
    empty = tmp_path / "empty"
    (empty / "var" / "empty").mkdir(parents=True)
    meta_blob = write_package(tree_entries(empty, mtime=0), INFO, None)
    assert (
        read_package(meta_blob, None, source="x", allow_untrusted=True).info.package.installed_size
        == 1
    )
    nothing = write_package([], INFO, None)
    assert (
        read_package(nothing, None, source="x", allow_untrusted=True).info.package.installed_size
        == 0
    )


def test_deterministic(tree: Path, keys: tuple[Signer, Keyring]) -> None:
    assert _build(tree, keys[0]) == _build(tree, keys[0])


def test_sorted_bytewise_like_lc_all_c(tmp_path: Path) -> None:
    root = tmp_path / "t"
    for name in ("usr/bin/x", "usr/bin-x", "usr/Bin", "a.b", "a/b"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    paths = [
        e.path
        for e in read_tar(
            split_gzip(write_package(tree_entries(root, mtime=0), INFO, None))[1].payload
        )
    ]
    assert paths == ["a/", "a.b", "a/b", "usr/", "usr/Bin", "usr/bin/", "usr/bin-x", "usr/bin/x"]


def test_owner_override_and_numeric_owner(tree: Path) -> None:
    entries = tree_entries(tree, mtime=0, uid=1000, gid=1001)
    assert {(e.uid, e.gid, e.uname, e.gname) for e in entries} == {(1000, 1001, "", "")}
    blob = write_package(entries, INFO, None)
    read = list(read_package(blob, None, source="x", allow_untrusted=True).entries())
    assert {(e.uid, e.gid) for e in read} == {(1000, 1001)}
    as_root = tree_entries(tree, mtime=0, uid=0, gid=0)
    assert {(e.uname, e.gname) for e in as_root} == {("root", "root")}


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_owner_from_disk(tree: Path) -> None:
    os.chown(tree / "etc" / "hello.conf", 123, 456)
    entries = {e.path: e for e in tree_entries(tree, mtime=0)}
    assert (entries["etc/hello.conf"].uid, entries["etc/hello.conf"].gid) == (123, 456)


def _xattrs_supported(path: Path) -> bool:
    probe = path / "probe"
    probe.write_text("")
    try:
        os.setxattr(probe, "user.alpenglow", b"1")
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


def test_xattrs_survive(tree: Path) -> None:
    if not _xattrs_supported(tree):
        pytest.skip("this file system does not support user.* extended attributes")
    os.setxattr(tree / "usr" / "bin" / "hello", "user.cap", b"\x01\x00\xff")
    blob = _build(tree, None)
    entries = {
        e.path: e for e in read_package(blob, None, source="x", allow_untrusted=True).entries()
    }
    assert entries["usr/bin/hello"].xattrs == (("user.cap", b"\x01\x00\xff"),)


def test_modes_survive(tree: Path) -> None:
    (tree / "usr" / "bin" / "hello").chmod(0o4750)
    blob = _build(tree, None)
    entries = {
        e.path: e for e in read_package(blob, None, source="x", allow_untrusted=True).entries()
    }
    assert entries["usr/bin/hello"].mode == 0o4750


def test_fifo(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    os.mkfifo(root / "pipe")
    (entry,) = tree_entries(root, mtime=0)
    assert entry.type == "6"


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="not a directory"):
        tree_entries(tmp_path / "missing", mtime=0)


# --------------------------------------------------------------------------------------------
# trust and tampering


def test_tamper_one_data_byte(tree: Path, keys: tuple[Signer, Keyring]) -> None:
    blob = bytearray(_build(tree, keys[0]))
    data = split_gzip(bytes(blob))[2]
    blob[data.start + 9] ^= 0x01  # gzip OS byte: data still decodes, hash differs
    with pytest.raises(PackageError, match=r"^x\.apk: BAD datahash"):
        read_package(bytes(blob), keys[1], source="x.apk")


def test_tamper_one_control_byte(tree: Path, keys: tuple[Signer, Keyring]) -> None:
    blob = bytearray(_build(tree, keys[0]))
    control = split_gzip(bytes(blob))[1]
    blob[control.start + 9] ^= 0x01
    with pytest.raises(SignatureError, match=r"^x\.apk: BAD signature"):
        read_package(bytes(blob), keys[1], source="x.apk")


def test_tamper_one_compressed_byte_anywhere(tree: Path, keys: tuple[Signer, Keyring]) -> None:
    blob = bytearray(_build(tree, keys[0]))
    blob[len(blob) - 30] ^= 0x40

    def read_all() -> None:
        list(read_package(bytes(blob), keys[1], source="x.apk").entries())

    with pytest.raises((ArchiveError, PackageError, SignatureError)):
        read_all()


def test_tampered_file_checksum(keys: tuple[Signer, Keyring]) -> None:
    entry = TarEntry("usr/bin/x", data=b"real", pax=((CHECKSUM_KEY, "00" * 20),))
    data_member = gzip_member(write_tar([entry]))
    info = dataclasses.replace(INFO, datahash=hashlib.sha256(data_member).hexdigest())
    control = gzip_member(
        write_tar([TarEntry(".PKGINFO", data=format_pkginfo(info))], end_of_archive=False)
    )
    apk = read_package(control + data_member, None, source="x.apk", allow_untrusted=True)
    with pytest.raises(PackageError, match=r"x\.apk: usr/bin/x: file checksum mismatch"):
        list(apk.entries())
    assert [e.path for e in apk.entries(verify=False)] == ["usr/bin/x"]


def test_unknown_key(tree: Path, keys: tuple[Signer, Keyring]) -> None:
    blob = _build(tree, keys[0])
    with pytest.raises(
        SignatureError, match=r"signed by packager-65000000\.rsa\.pub, which is not"
    ):
        read_package(blob, Keyring(), source="x.apk")
    assert read_package(blob, Keyring(), source="x", allow_untrusted=True).key_name is None


def test_unsigned(tree: Path) -> None:
    blob = _build(tree, None)
    assert len(split_gzip(blob)) == 2
    with pytest.raises(SignatureError, match="UNTRUSTED: the package is not signed"):
        read_package(blob, Keyring(), source="x.apk")
    assert read_package(blob, None, source="x", allow_untrusted=True).key_name is None


def test_expected_identity_from_a_trusted_index(tree: Path, keys: tuple[Signer, Keyring]) -> None:
    signed = _build(tree, keys[0])
    identity = read_package(signed, keys[1], source="x").identity
    # member 1 stripped: still installable from a trusted index (formats.md §1.5)
    unsigned = signed[split_gzip(signed)[1].start :]
    assert read_package(unsigned, None, source="x", expected_identity=identity).identity == identity
    with pytest.raises(PackageError, match=r"BAD checksum: identity is Q1.*the index says Q1xx"):
        read_package(signed, keys[1], source="x", expected_identity="Q1xx")


def test_signature_without_datahash_covers_control_and_data(keys: tuple[Signer, Keyring]) -> None:
    signer, keyring = keys
    control = gzip_member(
        write_tar([TarEntry(".PKGINFO", data=b"pkgname = old\npkgver = 1\n")], end_of_archive=False)
    )
    data_member = gzip_member(write_tar([TarEntry("f", data=b"x")]))
    sig_tar = write_tar(
        [TarEntry(signer.entry_name, data=signer.sign(control + data_member))], end_of_archive=False
    )
    blob = gzip_member(sig_tar) + control + data_member
    assert read_package(blob, keyring, source="x").key_name == signer.key_name
    bad_sig = write_tar(
        [TarEntry(signer.entry_name, data=signer.sign(control))], end_of_archive=False
    )
    with pytest.raises(SignatureError, match="BAD signature"):
        read_package(gzip_member(bad_sig) + control + data_member, keyring, source="x")


# --------------------------------------------------------------------------------------------
# malformed packages


def test_one_member(keys: tuple[Signer, Keyring]) -> None:
    with pytest.raises(PackageError, match=r"^x\.apk: not a v2 package: 1 gzip member"):
        read_package(gzip_member(b"x" * 1024), keys[1], source="x.apk")


def test_four_members(tree: Path, keys: tuple[Signer, Keyring]) -> None:
    blob = _build(tree, keys[0]) + gzip_member(b"")
    with pytest.raises(ArchiveError, match="more than 3 gzip member"):
        read_package(blob, keys[1], source="x.apk")


def test_truncated_and_garbage(tree: Path, keys: tuple[Signer, Keyring]) -> None:
    blob = _build(tree, keys[0])
    with pytest.raises(ArchiveError, match="truncated"):
        read_package(blob[:-7], keys[1], source="x.apk")
    with pytest.raises(ArchiveError, match="not gzip data"):
        read_package(b"PK\x03\x04 a zip file", keys[1], source="x.apk")


def test_control_with_end_blocks_is_rejected() -> None:
    control = gzip_member(write_tar([TarEntry(".PKGINFO", data=b"pkgname = a\npkgver = 1\n")]))
    data_member = gzip_member(write_tar([]))
    with pytest.raises(PackageError, match="control member ends with tar end-of-archive"):
        read_package(control + data_member, None, source="x", allow_untrusted=True)


def test_control_without_pkginfo() -> None:
    control = gzip_member(write_tar([TarEntry(".post-install", data=b"")], end_of_archive=False))
    with pytest.raises(PackageError, match=r"does not start with \.PKGINFO"):
        read_package(control + gzip_member(write_tar([])), None, source="x", allow_untrusted=True)


def test_v1_install_script_is_rejected() -> None:
    control = gzip_member(
        write_tar(
            [TarEntry(".PKGINFO", data=b"pkgname = a\npkgver = 1\n"), TarEntry(".INSTALL")],
            end_of_archive=False,
        )
    )
    with pytest.raises(PackageError, match=r"\.INSTALL"):
        read_package(control + gzip_member(write_tar([])), None, source="x", allow_untrusted=True)


def test_data_bomb_is_capped(keys: tuple[Signer, Keyring]) -> None:
    blob = write_package([TarEntry("zeros", data=bytes(3_000_000))], INFO, keys[0])
    with pytest.raises(ArchiveError, match="decompresses to more than 1000000 bytes"):
        read_package(blob, keys[1], source="x", max_size=1_000_000)


# --------------------------------------------------------------------------------------------
# .PKGINFO


def test_pkginfo_round_trip() -> None:
    info = PackageInfo(
        dataclasses.replace(
            INFO.package,
            maintainer="M <m@x>",
            commit="0" * 40,
            installed_size=4096,
            provider_priority=10,
            replaces_priority=2,
            replaces=parse_list("old-hello"),
            install_if=parse_list("hello docs"),
        ),
        packager="P",
        datahash="ab" * 32,
        triggers=("/usr/share/x/*", "/usr/lib/y"),
        extra=(("custom", "value"),),
    )
    assert parse_pkginfo(format_pkginfo(info)) == info


def test_pkginfo_comments_and_junk_lines() -> None:
    info = parse_pkginfo("# comment\npkgname = a\nnot a key line\npkgver = 1\nbuilddate = 5\n")
    assert (info.package.name, info.package.version, info.package.build_time) == ("a", "1", 5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"pkgname = a\npkgver = 1\nsize = big\n", r"^P: line 3: size needs a number"),
        (b"pkgname = a\npkgver = 1\ndepend = b>=1.0_x\n", r"^P: line 3: depend: invalid version"),
        (b"pkgver = 1\n", r"^P: missing pkgname"),
        (b"pkgname = a\n", r"^P: missing pkgver"),
        (b"pkgname = a\npkgver = 1\npkgdesc = \xff\n", r"^P: line 3: not valid UTF-8"),
    ],
)
def test_pkginfo_errors(text: bytes, message: str) -> None:
    with pytest.raises(PackageError, match=message):
        parse_pkginfo(text, source="P")


def test_write_rejects_unknown_script_and_duplicates() -> None:
    with pytest.raises(PackageError, match=r"unknown script name '\.install'"):
        write_package([], INFO, None, scripts=[(".install", b"")])
    with pytest.raises(PackageError, match="duplicate path"):
        write_package([TarEntry("a"), TarEntry("a")], INFO, None)
    with pytest.raises(PackageError, match="unsafe path"):
        write_package([TarEntry("../a")], INFO, None)
