"""gzip members and tar streams, on bytes.

An ``.apk`` or ``APKINDEX.tar.gz`` is several gzip members back to back, and hashes and
signatures are taken over the *compressed* bytes of single members. :func:`split_gzip` finds
the members by decoding them (never by searching for magic bytes) and keeps each member's
offsets, compressed bytes and payload. :func:`read_tar` and :func:`write_tar` read and write
the tar dialect apk uses (ustar/GNU headers, PAX records, GNU long names); :func:`gzip_member`
writes one deterministic member like ``gzip -n -9``.

>>> blob = gzip_member(b"one") + gzip_member(b"two")
>>> [(m.start, m.end, m.payload) for m in split_gzip(blob)]
[(0, 23, b'one'), (23, 46, b'two')]
>>> tar = write_tar([TarEntry("hello.txt", data=b"hi\\n")])
>>> [(e.path, e.data) for e in read_tar(tar)]
[('hello.txt', b'hi\\n')]
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence

from alpenglow._record import record
from alpenglow.errors import ArchiveError

__all__ = [
    "BLOCK",
    "DEFAULT_MAX_MEMBER_SIZE",
    "DEFAULT_MAX_TOTAL_SIZE",
    "DIRECTORY",
    "FILE_TYPES",
    "HARDLINK",
    "REGULAR",
    "SYMLINK",
    "GzipMember",
    "TarEntry",
    "gzip_member",
    "iter_tar",
    "read_tar",
    "split_gzip",
    "unsafe_path_reason",
    "write_tar",
]


def __dir__() -> list[str]:
    return __all__


BLOCK = 512
DEFAULT_MAX_MEMBER_SIZE = 1 << 30
"""Default cap on one member's decompressed size (1 GiB); callers pass tighter caps."""
DEFAULT_MAX_TOTAL_SIZE = 4 << 30
"""Default cap on the decompressed size of all members together (4 GiB)."""

REGULAR = "0"
HARDLINK = "1"
SYMLINK = "2"
CHARDEV = "3"
BLOCKDEV = "4"
DIRECTORY = "5"
FIFO = "6"
CONTIGUOUS = "7"
FILE_TYPES = frozenset((REGULAR, CONTIGUOUS))
"""Typeflags of entries with file content."""
_ENTRY_TYPES = frozenset((REGULAR, HARDLINK, SYMLINK, CHARDEV, BLOCKDEV, DIRECTORY, FIFO))
_ZERO_BLOCK = bytes(BLOCK)


# --------------------------------------------------------------------------------------------
# gzip


@record
class GzipMember:
    """One gzip member: where it sits in the file, its exact bytes, and what it holds."""

    start: int
    end: int
    compressed: bytes
    payload: bytes


def split_gzip(
    data: bytes,
    *,
    source: str = "archive",
    max_member_size: int | Sequence[int] = DEFAULT_MAX_MEMBER_SIZE,
    max_total_size: int = DEFAULT_MAX_TOTAL_SIZE,
    max_members: int | None = None,
) -> list[GzipMember]:
    """Decode the concatenated gzip members of ``data``.

    Each member is decoded on its own; where its deflate stream and trailer end is where the
    next member starts. ``max_member_size`` caps each member's decompressed size; a sequence
    gives the caps of the first members in turn (its last value applies to the rest).
    Raises :class:`ArchiveError` naming ``source`` for empty input, bytes that are not gzip,
    a member cut short, more than ``max_members`` members, or a member (or all of them
    together) that would decompress beyond the caps.
    """
    caps = (max_member_size,) if isinstance(max_member_size, int) else tuple(max_member_size)
    if not data:
        raise ArchiveError(f"{source}: empty file, expected gzip data")
    members: list[GzipMember] = []
    view = memoryview(data)
    pos = 0
    total = 0
    size = len(data)
    while pos < size:
        if max_members is not None and len(members) >= max_members:
            raise ArchiveError(
                f"{source}: more than {max_members} gzip member(s) (extra data at byte {pos})"
            )
        member_cap = caps[min(len(members), len(caps) - 1)]
        limit = min(member_cap, max_total_size - total)
        decoder = zlib.decompressobj(31)
        try:
            payload = decoder.decompress(view[pos:], limit + 1)
        except zlib.error as exc:
            what = "not gzip data" if not members else "garbage after the last gzip member"
            raise ArchiveError(f"{source}: {what} at byte {pos} ({exc})") from None
        if len(payload) > limit:
            if limit < member_cap:
                raise ArchiveError(
                    f"{source}: decompresses to more than {max_total_size} bytes in total"
                )
            raise ArchiveError(
                f"{source}: gzip member {len(members) + 1} decompresses to more than "
                f"{member_cap} bytes"
            )
        if not decoder.eof:
            raise ArchiveError(
                f"{source}: truncated gzip data (member {len(members) + 1} starting at "
                f"byte {pos} is cut short)"
            )
        end = size - len(decoder.unused_data)
        members.append(GzipMember(pos, end, data[pos:end], payload))
        total += len(payload)
        pos = end
    return members


def gzip_member(payload: bytes, level: int = 9) -> bytes:
    """One deterministic gzip member, like ``gzip -n``: no name, mtime 0, OS = Unix.

    >>> gzip_member(b"")[:10].hex()
    '1f8b0800000000000203'
    """
    xfl = 2 if level == 9 else 4 if level == 1 else 0
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes((xfl, 3))
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 8)
    body = compressor.compress(payload) + compressor.flush()
    trailer = struct.pack("<II", zlib.crc32(payload), len(payload) & 0xFFFFFFFF)
    return header + body + trailer


# --------------------------------------------------------------------------------------------
# tar


@record
class TarEntry:
    """One tar entry, as read or to be written.

    ``type`` is the typeflag (``"0"`` file, ``"1"`` hard link, ``"2"`` symlink, ``"3"``/``"4"``
    devices, ``"5"`` directory, ``"6"`` fifo; ``"7"`` is read as ``"0"``). ``linkname`` is the
    symlink target or hard-link source. ``xattrs`` come from ``SCHILY.xattr.*`` PAX records;
    ``pax`` holds the other PAX records that are kept (e.g. ``APK-TOOLS.checksum.SHA1``).
    """

    path: str
    type: str = REGULAR
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    uname: str = ""
    gname: str = ""
    mtime: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()
    pax: tuple[tuple[str, str], ...] = ()

    @property
    def size(self) -> int:
        """Content size in bytes."""
        return len(self.data)

    @property
    def is_file(self) -> bool:
        return self.type in FILE_TYPES

    def pax_value(self, key: str) -> str | None:
        """The value of PAX record ``key``, or None."""
        for k, v in self.pax:
            if k == key:
                return v
        return None


def unsafe_path_reason(path: str) -> str | None:
    """Why ``path`` must not be extracted (absolute, ``..``, empty, NUL), or None if it is
    a plain relative path.

    >>> unsafe_path_reason("usr/bin/x"), unsafe_path_reason("../etc/passwd")
    (None, "contains a '..' component")
    """
    if not path.strip("/") or path in (".", "./"):
        return "is empty"
    if "\x00" in path:
        return "contains a NUL byte"
    if path.startswith("/"):
        return "is absolute"
    if ".." in path.split("/"):
        return "contains a '..' component"
    return None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _cstr(field: bytes) -> bytes:
    nul = field.find(0)
    return field if nul < 0 else field[:nul]


def _number(field: bytes, what: str, source: str, offset: int) -> int:
    if field and field[0] & 0x80:  # GNU base-256
        value = int.from_bytes(field[1:], "big") | ((field[0] & 0x7F) << (8 * (len(field) - 1)))
        if field[0] & 0x40:  # negative
            value -= 1 << (8 * len(field) - 1)
        return value
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise ArchiveError(
            f"{source}: bad {what} field {text!r} in tar header at byte {offset}"
        ) from None


def _parse_pax(raw: bytes, source: str, offset: int) -> list[tuple[str, bytes]]:
    records: list[tuple[str, bytes]] = []
    pos = 0
    while pos < len(raw):
        if raw[pos] == 0:  # trailing NUL padding
            break
        space = raw.find(b" ", pos)
        length = -1
        if space > pos:
            try:
                length = int(raw[pos:space])
            except ValueError:
                length = -1
        end = pos + length
        if length <= 0 or end > len(raw) or raw[end - 1] != 0x0A:
            raise ArchiveError(f"{source}: malformed PAX record in tar header at byte {offset}")
        key, eq, value = raw[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise ArchiveError(f"{source}: malformed PAX record in tar header at byte {offset}")
        records.append((_text(key), value))
        pos = end
    return records


def iter_tar(data: bytes, *, source: str = "tar") -> Iterator[TarEntry]:
    """Yield the entries of the tar stream ``data``.

    The stream ends at the first all-zero header or at the end of ``data`` (control and
    signature tars have no end-of-archive blocks). PAX ``x`` headers and GNU ``L`` long names
    apply to the next entry; ``g`` and ``K`` headers are skipped. Raises
    :class:`ArchiveError` for a truncated or corrupt header or content.
    """
    pos = 0
    size = len(data)
    pending_pax: list[tuple[str, bytes]] = []
    long_name: str | None = None
    while pos < size:
        if size - pos < BLOCK:
            raise ArchiveError(f"{source}: truncated tar header at byte {pos}")
        header = data[pos : pos + BLOCK]
        if header == _ZERO_BLOCK:
            return
        if header[257:262] != b"ustar":
            raise ArchiveError(f"{source}: not a ustar tar header at byte {pos}")
        stored_sum = _number(header[148:156], "checksum", source, pos)
        actual = sum(header[:148]) + 256 + sum(header[156:])
        if stored_sum != actual:
            raise ArchiveError(f"{source}: tar header checksum mismatch at byte {pos}")
        typeflag = chr(header[156]) if header[156] else REGULAR
        length = _number(header[124:136], "size", source, pos)
        start = pos + BLOCK
        end = start + length
        if length < 0 or end > size:
            raise ArchiveError(f"{source}: truncated tar entry content at byte {start}")
        content = data[start:end]
        pos = start + (length + BLOCK - 1) // BLOCK * BLOCK
        if typeflag == "x":
            pending_pax.extend(_parse_pax(content, source, start - BLOCK))
            continue
        if typeflag == "L":
            long_name = _text(_cstr(content))
            continue
        if typeflag in ("g", "K"):
            continue
        if typeflag == CONTIGUOUS:
            typeflag = REGULAR
        if typeflag not in _ENTRY_TYPES:
            raise ArchiveError(
                f"{source}: unsupported tar entry type {typeflag!r} at byte {start - BLOCK}"
            )
        name = _text(_cstr(header[0:100]))
        if header[257:263] == b"ustar\x00":  # POSIX: prefix field; GNU keeps times there
            prefix = _cstr(header[345:500])
            if prefix:
                name = _text(prefix) + "/" + name
        if long_name is not None:
            name = long_name
        linkname = _text(_cstr(header[157:257]))
        xattrs: list[tuple[str, bytes]] = []
        kept: list[tuple[str, str]] = []
        for key, value in pending_pax:
            if key == "path":
                name = _text(value)
            elif key == "linkpath":
                linkname = _text(value)
            elif key.startswith("SCHILY.xattr."):
                xattrs.append((key[13:], value))
            elif key.startswith("APK-TOOLS."):
                kept.append((key, _text(value)))
        pending_pax = []
        long_name = None
        yield TarEntry(
            path=name,
            type=typeflag,
            data=content if typeflag == REGULAR else b"",
            mode=_number(header[100:108], "mode", source, start - BLOCK) & 0o7777,
            uid=_number(header[108:116], "uid", source, start - BLOCK),
            gid=_number(header[116:124], "gid", source, start - BLOCK),
            uname=_text(_cstr(header[265:297])),
            gname=_text(_cstr(header[297:329])),
            mtime=_number(header[136:148], "mtime", source, start - BLOCK),
            linkname=linkname,
            devmajor=_number(header[329:337], "devmajor", source, start - BLOCK),
            devminor=_number(header[337:345], "devminor", source, start - BLOCK),
            xattrs=tuple(xattrs),
            pax=tuple(kept),
        )
    if pending_pax or long_name is not None:
        raise ArchiveError(f"{source}: tar stream ends after an extended header")


def read_tar(data: bytes, *, source: str = "tar") -> list[TarEntry]:
    """All entries of :func:`iter_tar`."""
    return list(iter_tar(data, source=source))


def _octal(value: int, width: int) -> bytes:
    """``width``-byte numeric field: octal digits + NUL, or GNU base-256 when too large."""
    if 0 <= value < 8 ** (width - 1):
        return b"%0*o\x00" % (width - 1, value)
    if value < 0:
        value += 1 << (8 * width - 1)
        return bytes((0xFF,)) + value.to_bytes(width - 1, "big")
    return bytes((0x80,)) + value.to_bytes(width - 1, "big")


def _field(text: str, width: int) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    return raw[:width].ljust(width, b"\x00")


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode("utf-8", "surrogateescape") + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def _header(
    name: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    typeflag: str,
    linkname: bytes,
    uname: str,
    gname: str,
    devmajor: int,
    devminor: int,
) -> bytes:
    head = b"".join(
        (
            name[:100].ljust(100, b"\x00"),
            _octal(mode, 8),
            _octal(uid, 8),
            _octal(gid, 8),
            _octal(size, 12),
            _octal(mtime, 12),
            b"        ",
            typeflag.encode(),
            linkname[:100].ljust(100, b"\x00"),
            b"ustar\x0000",
            _field(uname, 32),
            _field(gname, 32),
            _octal(devmajor, 8),
            _octal(devminor, 8),
            bytes(155 + 12),
        )
    )
    checksum = b"%06o\x00 " % sum(head)
    return head[:148] + checksum + head[156:]


def _padded(content: bytes) -> bytes:
    return content + bytes(-len(content) % BLOCK)


def write_tar(entries: Iterable[TarEntry], *, end_of_archive: bool = True) -> bytes:
    """Serialise ``entries`` in the order given (the caller sorts), deterministically.

    Headers use POSIX ustar magic. A PAX header (named ``DIR/PaxHeaders/BASE``) precedes an
    entry when it has ``pax`` records or ``xattrs``, or when its path, link name, owner or
    size does not fit the ustar fields. ``end_of_archive=False`` leaves out the two zero
    blocks, as apk requires for signature and control tars; no record padding is added.
    """
    out: list[bytes] = []
    for entry in entries:
        name = entry.path.encode("utf-8", "surrogateescape")
        link = entry.linkname.encode("utf-8", "surrogateescape")
        size = len(entry.data) if entry.type in FILE_TYPES else 0
        records: list[bytes] = []
        if len(name) > 100:
            records.append(_pax_record("path", name))
        if len(link) > 100:
            records.append(_pax_record("linkpath", link))
        for key, value in entry.pax:
            records.append(_pax_record(key, value.encode("utf-8", "surrogateescape")))
        for attr, raw in entry.xattrs:
            records.append(_pax_record("SCHILY.xattr." + attr, raw))
        if records:
            pax = b"".join(records)
            head, _, base = name.rstrip(b"/").rpartition(b"/")
            pax_name = (head + b"/" if head else b"./") + b"PaxHeaders/" + base
            out.append(
                _header(pax_name, 0o644, 0, 0, len(pax), entry.mtime, "x", b"", "", "", 0, 0)
            )
            out.append(_padded(pax))
        out.append(
            _header(
                name,
                entry.mode,
                entry.uid,
                entry.gid,
                size,
                entry.mtime,
                entry.type,
                link,
                entry.uname,
                entry.gname,
                entry.devmajor,
                entry.devminor,
            )
        )
        if size:
            out.append(_padded(entry.data))
    if end_of_archive:
        out.append(bytes(2 * BLOCK))
    return b"".join(out)
