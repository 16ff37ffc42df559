"""gzip members and tar streams: offsets, caps, dialects, hostile input, interop with tarfile."""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib

import pytest

from alpenglow.apk.archive import (
    BLOCK,
    DIRECTORY,
    HARDLINK,
    REGULAR,
    SYMLINK,
    TarEntry,
    gzip_member,
    iter_tar,
    read_tar,
    split_gzip,
    unsafe_path_reason,
    write_tar,
)
from alpenglow.errors import ArchiveError

# --------------------------------------------------------------------------------------------
# gzip


def test_split_gzip_offsets_bytes_and_payloads() -> None:
    payloads = [b"first member", b"", b"x" * 100_000]
    members_bytes = [gzip_member(p) for p in payloads]
    blob = b"".join(members_bytes)
    members = split_gzip(blob)
    assert [m.payload for m in members] == payloads
    assert [m.compressed for m in members] == members_bytes
    pos = 0
    for member, raw in zip(members, members_bytes, strict=True):
        assert (member.start, member.end) == (pos, pos + len(raw))
        assert blob[member.start : member.end] == member.compressed
        pos += len(raw)


def test_split_gzip_accepts_other_writers_headers() -> None:
    # Python's gzip writes a different OS byte and may carry a file name; apk accepts any.
    buf = io.BytesIO()
    with gzip.GzipFile(filename="named.txt", mode="wb", fileobj=buf, mtime=12345) as handle:
        handle.write(b"with a name")
    blob = buf.getvalue() + gzip.compress(b"second")
    assert [m.payload for m in split_gzip(blob)] == [b"with a name", b"second"]


def test_split_gzip_member_that_contains_gzip_magic() -> None:
    # A payload holding the gzip magic must not be mistaken for a member boundary.
    inner = gzip_member(b"inner") * 3
    members = split_gzip(gzip_member(inner, level=0) + gzip_member(b"after"))
    assert [m.payload for m in members] == [inner, b"after"]


def test_gzip_member_is_deterministic_like_gzip_n_9() -> None:
    member = gzip_member(b"hello world\n")
    assert member[:10] == bytes.fromhex("1f8b0800000000000203")
    assert member == gzip_member(b"hello world\n")
    assert gzip.decompress(member) == b"hello world\n"
    assert gzip_member(b"", level=1)[8] == 4  # XFL: fastest
    assert gzip_member(b"", level=6)[8] == 0


def test_split_gzip_empty() -> None:
    with pytest.raises(ArchiveError, match="empty"):
        split_gzip(b"", source="f.apk")


def test_split_gzip_garbage() -> None:
    with pytest.raises(ArchiveError, match=r"f\.apk: not gzip data at byte 0"):
        split_gzip(b"this is not gzip at all", source="f.apk")


def test_split_gzip_garbage_after_members() -> None:
    with pytest.raises(ArchiveError, match="garbage after the last gzip member"):
        split_gzip(gzip_member(b"ok") + b"\x00\x01junk")


@pytest.mark.parametrize("cut", [1, 4, 9])
def test_split_gzip_truncated(cut: int) -> None:
    blob = gzip_member(b"a" * 5000) + gzip_member(b"b" * 5000)
    with pytest.raises(ArchiveError, match="truncated gzip data"):
        split_gzip(blob[:-cut], source="f.apk")


def test_split_gzip_corrupt_crc() -> None:
    member = bytearray(gzip_member(b"payload"))
    member[-5] ^= 0xFF  # CRC32 trailer
    with pytest.raises(ArchiveError, match="not gzip data"):
        split_gzip(bytes(member))


def test_split_gzip_bomb_per_member() -> None:
    bomb = gzip_member(bytes(10_000_000))
    assert len(bomb) < 20_000
    with pytest.raises(ArchiveError, match="member 1 decompresses to more than 1000000 bytes"):
        split_gzip(bomb, max_member_size=1_000_000)


def test_split_gzip_bomb_in_total() -> None:
    blob = gzip_member(bytes(600)) * 3
    with pytest.raises(ArchiveError, match="more than 1000 bytes in total"):
        split_gzip(blob, max_member_size=800, max_total_size=1000)


def test_split_gzip_exact_cap_is_allowed() -> None:
    assert split_gzip(gzip_member(bytes(1000)), max_member_size=1000)[0].payload == bytes(1000)


def test_split_gzip_max_members() -> None:
    blob = gzip_member(b"1") + gzip_member(b"2") + gzip_member(b"3")
    with pytest.raises(ArchiveError, match="more than 2 gzip member"):
        split_gzip(blob, max_members=2)


def test_split_gzip_raw_zlib_is_not_gzip() -> None:
    with pytest.raises(ArchiveError, match="not gzip data"):
        split_gzip(zlib.compress(b"zlib, not gzip"))


# --------------------------------------------------------------------------------------------
# tar reading: what tarfile (GNU and POSIX writers) produces


def _tarfile_bytes(fmt: int, build: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in build:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, **kw: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mtime = 1_700_000_000
    for key, value in kw.items():
        setattr(info, key, value)
    return info


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_read_all_entry_types(fmt: int) -> None:
    long_name = "usr/share/" + "d" * 120 + "/file.txt"
    blob = _tarfile_bytes(
        fmt,
        [
            (_info("usr/", tarfile.DIRTYPE, mode=0o755), None),
            (_info("usr/bin/tool", size=5, mode=0o4755, uid=1000, gid=100), b"hello"),
            (_info("usr/bin/link", tarfile.SYMTYPE, linkname="tool", mode=0o777), None),
            (_info("usr/bin/hard", tarfile.LNKTYPE, linkname="usr/bin/tool"), None),
            (_info("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3), None),
            (_info("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0), None),
            (_info("run/fifo", tarfile.FIFOTYPE), None),
            (_info(long_name, size=3), b"abc"),
        ],
    )
    entries = read_tar(blob)
    assert [e.path for e in entries] == [
        "usr/",
        "usr/bin/tool",
        "usr/bin/link",
        "usr/bin/hard",
        "dev/null",
        "dev/sda",
        "run/fifo",
        long_name,
    ]
    assert [e.type for e in entries] == ["5", "0", "2", "1", "3", "4", "6", "0"]
    tool = entries[1]
    assert (tool.data, tool.mode, tool.uid, tool.gid, tool.mtime) == (
        b"hello",
        0o4755,
        1000,
        100,
        1_700_000_000,
    )
    assert entries[2].linkname == "tool"
    assert entries[3].linkname == "usr/bin/tool"
    assert (entries[4].devmajor, entries[4].devminor) == (1, 3)
    assert entries[7].data == b"abc"


def test_read_pax_records_xattrs_checksums_and_long_link() -> None:
    target = "/opt/" + "t" * 150
    info = _info("usr/bin/ping", size=4)
    info.pax_headers = {
        "SCHILY.xattr.security.capability": "\x01\x00\x00\x02",
        "APK-TOOLS.checksum.SHA1": "aabbcc",
        "comment": "ignored",
    }
    link = _info("l", tarfile.SYMTYPE, linkname=target)
    blob = _tarfile_bytes(tarfile.PAX_FORMAT, [(info, b"ping"), (link, None)])
    ping, sym = read_tar(blob)
    assert ping.xattrs == (("security.capability", b"\x01\x00\x00\x02"),)
    assert ping.pax == (("APK-TOOLS.checksum.SHA1", "aabbcc"),)
    assert ping.pax_value("APK-TOOLS.checksum.SHA1") == "aabbcc"
    assert ping.pax_value("nope") is None
    assert sym.linkname == target


def test_read_ustar_prefix_is_joined() -> None:
    name = "a" * 90 + "/" + "b" * 90 + "/file"
    blob = _tarfile_bytes(tarfile.USTAR_FORMAT, [(_info(name, size=1), b"z")])
    assert blob[345:350] == b"aaaaa"  # really stored in the prefix field
    assert read_tar(blob)[0].path == name


def test_read_skips_global_headers_and_stops_at_zero_block() -> None:
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "global"}
    ) as tar:
        tar.addfile(_info("one", size=1), io.BytesIO(b"1"))
    blob = buf.getvalue() + b"garbage after the end-of-archive blocks"
    assert [e.path for e in read_tar(blob)] == ["one"]


def test_read_cut_tar_without_end_blocks() -> None:
    blob = write_tar([TarEntry(".PKGINFO", data=b"pkgname = x\n")], end_of_archive=False)
    assert len(blob) == 2 * BLOCK
    assert [e.path for e in read_tar(blob)] == [".PKGINFO"]


def test_read_truncated_header() -> None:
    blob = write_tar([TarEntry("a", data=b"1")])
    with pytest.raises(ArchiveError, match="truncated tar header at byte 0"):
        read_tar(blob[:300], source="x.tar")


def test_read_truncated_content() -> None:
    blob = write_tar([TarEntry("a", data=b"1" * 2000)], end_of_archive=False)
    with pytest.raises(ArchiveError, match="truncated tar entry content"):
        read_tar(blob[:1024])


def test_read_checksum_mismatch() -> None:
    blob = bytearray(write_tar([TarEntry("a", data=b"1")]))
    blob[0] = ord("b")
    with pytest.raises(ArchiveError, match="checksum mismatch at byte 0"):
        read_tar(bytes(blob))


def test_read_not_ustar() -> None:
    with pytest.raises(ArchiveError, match="not a ustar tar header"):
        read_tar(b"x" * BLOCK)


def test_read_bad_octal() -> None:
    blob = bytearray(write_tar([TarEntry("a")]))
    blob[100:108] = b"9999999\x00"  # mode
    blob[148:156] = b"%06o\x00 " % (sum(blob[:148]) + 256 + sum(blob[156:512]))
    with pytest.raises(ArchiveError, match="bad mode field"):
        read_tar(bytes(blob))


def test_read_unsupported_type() -> None:
    blob = write_tar([TarEntry("sparse", type="S")])
    with pytest.raises(ArchiveError, match="unsupported tar entry type 'S'"):
        read_tar(blob)


def test_read_extended_header_at_end() -> None:
    blob = write_tar([TarEntry("x", xattrs=(("user.a", b"1"),))], end_of_archive=False)
    with pytest.raises(ArchiveError, match="ends after an extended header"):
        read_tar(blob[:1024])  # the PAX header and its records, but not the entry


def test_read_gnu_long_name_and_ignored_long_link() -> None:
    long_name = "n" * 300
    blob = _tarfile_bytes(tarfile.GNU_FORMAT, [(_info(long_name, size=2), b"ok")])
    assert blob[156:157] == b"L"
    (entry,) = read_tar(blob)
    assert (entry.path, entry.data) == (long_name, b"ok")


def test_iter_tar_is_lazy() -> None:
    blob = write_tar([TarEntry("a"), TarEntry("b")]) + b"ignored"
    it = iter_tar(blob)
    assert next(it).path == "a"


# --------------------------------------------------------------------------------------------
# tar writing


def test_write_is_deterministic_and_readable_by_tarfile() -> None:
    entries = [
        TarEntry("etc/", type=DIRECTORY, mode=0o755),
        TarEntry("etc/motd", data=b"welcome\n", mode=0o644, uid=0, gid=0, mtime=1_700_000_000),
        TarEntry("etc/link", type=SYMLINK, linkname="motd", mode=0o777),
        TarEntry("etc/hard", type=HARDLINK, linkname="etc/motd"),
        TarEntry(
            "usr/bin/ping",
            data=b"\x7fELF",
            mode=0o755,
            uname="root",
            gname="root",
            xattrs=(("security.capability", b"\x01\x00\x00\x02\x00\x20\x00\x00"),),
            pax=(("APK-TOOLS.checksum.SHA1", "0123456789abcdef0123456789abcdef01234567"),),
        ),
        TarEntry("x/" + "long" * 40, data=b"long"),
    ]
    blob = write_tar(entries)
    assert blob == write_tar(entries)
    assert len(blob) % BLOCK == 0
    assert blob.endswith(bytes(2 * BLOCK))
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [
            "etc",
            "etc/motd",
            "etc/link",
            "etc/hard",
            "usr/bin/ping",
            "x/" + "long" * 40,
        ]
        ping = members[4]
        assert ping.pax_headers["APK-TOOLS.checksum.SHA1"].startswith("0123")
        assert "SCHILY.xattr.security.capability" in ping.pax_headers
        assert (ping.uname, ping.gname, ping.mode) == ("root", "root", 0o755)
        assert members[2].linkname == "motd"
        assert members[3].linkname == "etc/motd"
        extracted = tar.extractfile(members[1])
        assert extracted is not None
        assert extracted.read() == b"welcome\n"
    assert read_tar(blob) == entries


def test_write_cut_has_no_end_blocks() -> None:
    blob = write_tar([TarEntry(".SIGN.RSA.k.rsa.pub", data=b"s" * 512)], end_of_archive=False)
    assert len(blob) == 2 * BLOCK
    assert not blob.endswith(bytes(BLOCK))


def test_write_large_numbers_use_base256() -> None:
    entry = TarEntry("big", uid=2**40, gid=3, mtime=2**36)
    assert read_tar(write_tar([entry]))[0] == entry


def test_write_non_ascii_and_undecodable_names_round_trip() -> None:
    entries = [TarEntry("caf\u00e9/\u00fc.txt", data=b"1"), TarEntry("raw/\udcff", data=b"2")]
    assert read_tar(write_tar(entries)) == entries


def test_regular_typeflag_constants() -> None:
    assert REGULAR == "0"
    assert TarEntry("a").is_file
    assert not TarEntry("d/", type=DIRECTORY).is_file
    assert TarEntry("a", data=b"123").size == 3


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("usr/bin/x", None),
        ("./usr/bin/x", None),
        ("etc/", None),
        ("a..b/c", None),
        ("/etc/passwd", "is absolute"),
        ("../etc/passwd", "contains a '..' component"),
        ("usr/../../etc", "contains a '..' component"),
        ("usr/..", "contains a '..' component"),
        ("", "is empty"),
        ("/", "is empty"),
        ("./", "is empty"),
        ("a\x00b", "contains a NUL byte"),
    ],
)
def test_unsafe_path_reason(path: str, reason: str | None) -> None:
    assert unsafe_path_reason(path) == reason


def test_split_gzip_per_member_caps() -> None:
    blob = gzip_member(bytes(500)) + gzip_member(bytes(5000)) + gzip_member(bytes(5000))
    assert len(split_gzip(blob, max_member_size=(1000, 6000))) == 3
    with pytest.raises(ArchiveError, match="member 1 decompresses to more than 100 bytes"):
        split_gzip(blob, max_member_size=(100, 6000))
    with pytest.raises(ArchiveError, match="member 3 decompresses to more than 4000 bytes"):
        split_gzip(blob, max_member_size=(1000, 6000, 4000))
