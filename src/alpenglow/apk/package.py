"""v2 ``.apk`` packages: read and verify, or build one from a directory tree.

A package is three gzip members (formats.md §1): signature, control (``.PKGINFO`` and
scripts), data (the file tree). The identity (``C:`` in indexes) is ``Q1`` + base64 of the
SHA-1 of the *compressed* control member; ``.PKGINFO``'s ``datahash`` is the SHA-256 of the
compressed data member; the signature covers the compressed control member (or control and
data when there is no datahash). Every data file carries its SHA-1 as a PAX record.

:func:`read_package` checks all of these except the per-file hashes, which
:meth:`ApkFile.entries` checks while it yields the data entries. :func:`write_package`
builds the bytes from tar entries and a :class:`PackageInfo`; :func:`tree_entries` (the only
function here that reads the disk) turns a directory into those entries the way abuild does.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from alpenglow._record import field, record, replace
from alpenglow.apk.archive import (
    BLOCK,
    DIRECTORY,
    FILE_TYPES,
    HARDLINK,
    SYMLINK,
    GzipMember,
    TarEntry,
    gzip_member,
    iter_tar,
    read_tar,
    split_gzip,
    write_tar,
)
from alpenglow.apk.dependency import Dependency, parse
from alpenglow.apk.index import Package
from alpenglow.apk.signing import Keyring, Signer, parse_signature_name, verify_signatures
from alpenglow.errors import ArchiveError, InvalidDependency, PackageError, SignatureError

__all__ = [
    "CHECKSUM_KEY",
    "DEFAULT_MAX_PACKAGE_SIZE",
    "SCRIPT_NAMES",
    "SCRIPT_TYPES",
    "ApkFile",
    "PackageInfo",
    "format_pkginfo",
    "identity_of",
    "parse_pkginfo",
    "read_package",
    "tree_entries",
    "write_package",
]


def __dir__() -> list[str]:
    return __all__


SCRIPT_TYPES = (
    "pre-install",
    "post-install",
    "pre-deinstall",
    "post-deinstall",
    "pre-upgrade",
    "post-upgrade",
    "trigger",
)
"""The kinds of package script, in the order apk writes them."""

SCRIPT_NAMES = tuple("." + kind for kind in SCRIPT_TYPES)
"""Control entries that are scripts, in the order they are written."""

CHECKSUM_KEY = "APK-TOOLS.checksum.SHA1"
"""The PAX record holding a data entry's SHA-1 (hex)."""

DEFAULT_MAX_PACKAGE_SIZE = 4 << 30
"""Cap on the decompressed size of a package's data member."""

_MAX_CONTROL_SIZE = 64 << 20


def identity_of(control: bytes) -> str:
    """The package identity for the compressed control member: ``Q1`` + b64(SHA-1)."""
    return "Q1" + base64.b64encode(hashlib.sha1(control).digest()).decode()


# --------------------------------------------------------------------------------------------
# .PKGINFO


@record
class PackageInfo:
    """The contents of ``.PKGINFO``.

    ``package`` carries the fields an index has (``checksum`` and ``size`` are filled in
    when the package is read from a file: identity and file size). The rest are only in
    ``.PKGINFO``. ``extra`` keeps unknown keys in order.
    """

    package: Package
    packager: str = ""
    datahash: str = ""
    triggers: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()


_PKGINFO_STR = {
    "pkgname": "name",
    "pkgver": "version",
    "pkgdesc": "description",
    "url": "url",
    "arch": "arch",
    "origin": "origin",
    "commit": "commit",
    "maintainer": "maintainer",
    "license": "license",
}
_PKGINFO_INT = {
    "builddate": "build_time",
    "size": "installed_size",
    "provider_priority": "provider_priority",
    "replaces_priority": "replaces_priority",
}
_PKGINFO_DEPS = {"depend": "depends", "provides": "provides", "replaces": "replaces"}


def parse_pkginfo(data: bytes | str, *, source: str = ".PKGINFO") -> PackageInfo:
    """Parse ``.PKGINFO`` text (``key = value`` lines, ``#`` comments).

    Lines without `` = `` are ignored, as apk does. Raises :class:`PackageError` naming
    ``source`` for bytes that are not UTF-8, a non-numeric number, a bad dependency, or a
    missing ``pkgname``/``pkgver``.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_line = data.count(b"\n", 0, exc.start) + 1
            raise PackageError(f"{source}: line {bad_line}: not valid UTF-8") from None
    else:
        text = data
    values: dict[str, object] = {}
    deps: dict[str, list[Dependency]] = {"depends": [], "provides": [], "replaces": []}
    install_if: tuple[Dependency, ...] = ()
    packager = datahash = ""
    triggers: tuple[str, ...] = ()
    extra: list[tuple[str, str]] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(" = ")
        if not sep:
            continue
        try:
            if key in _PKGINFO_STR:
                values[_PKGINFO_STR[key]] = value
            elif key in _PKGINFO_INT:
                if not (value.isascii() and value.isdigit()):
                    raise PackageError(
                        f"{source}: line {number}: {key} needs a number, got {value!r}"
                    )
                values[_PKGINFO_INT[key]] = int(value)
            elif key in _PKGINFO_DEPS:
                deps[_PKGINFO_DEPS[key]].extend(parse(atom) for atom in value.split())
            elif key == "install_if":
                install_if = tuple(parse(atom) for atom in value.split())
            elif key == "packager":
                packager = value
            elif key == "datahash":
                datahash = value
            elif key == "triggers":
                triggers = tuple(value.split())
            else:
                extra.append((key, value))
        except InvalidDependency as exc:
            raise PackageError(f"{source}: line {number}: {key}: {exc.reason}") from None
    for key, what in (("name", "pkgname"), ("version", "pkgver")):
        if not values.get(key):
            raise PackageError(f"{source}: missing {what}")
    package = Package(
        **values,  # type: ignore[arg-type]
        depends=tuple(deps["depends"]),
        provides=tuple(deps["provides"]),
        replaces=tuple(deps["replaces"]),
        install_if=install_if,
    )
    return PackageInfo(package, packager, datahash, triggers, tuple(extra))


def format_pkginfo(info: PackageInfo) -> bytes:
    """``.PKGINFO`` in abuild's key order, ``datahash`` last."""
    pkg = info.package
    lines = [
        "# Generated by alpenglow",
        f"pkgname = {pkg.name}",
        f"pkgver = {pkg.version}",
        f"pkgdesc = {pkg.description}",
        f"url = {pkg.url}",
        f"builddate = {pkg.build_time}",
    ]
    if info.packager:
        lines.append(f"packager = {info.packager}")
    lines += [f"size = {pkg.installed_size}", f"arch = {pkg.arch}"]
    if pkg.origin:
        lines.append(f"origin = {pkg.origin}")
    if pkg.commit:
        lines.append(f"commit = {pkg.commit}")
    if pkg.maintainer:
        lines.append(f"maintainer = {pkg.maintainer}")
    if pkg.replaces_priority:
        lines.append(f"replaces_priority = {pkg.replaces_priority}")
    if pkg.provider_priority is not None:
        lines.append(f"provider_priority = {pkg.provider_priority}")
    lines.append(f"license = {pkg.license}")
    lines += [f"replaces = {d}" for d in pkg.replaces]
    lines += [f"depend = {d}" for d in pkg.depends]
    lines += [f"provides = {d}" for d in pkg.provides]
    if info.triggers:
        lines.append(f"triggers = {' '.join(info.triggers)}")
    if pkg.install_if:
        lines.append(f"install_if = {' '.join(map(str, pkg.install_if))}")
    lines += [f"{key} = {value}" for key, value in info.extra]
    if info.datahash:
        lines.append(f"datahash = {info.datahash}")
    return ("\n".join(lines) + "\n").encode("utf-8")


# --------------------------------------------------------------------------------------------
# reading


@record
class ApkFile:
    """A package read from its bytes, with its signature, identity and datahash checked.

    ``package`` is the index record (identity as ``checksum``, file size as ``size``);
    ``key_name`` is the key that verified the signature (None when the package was accepted
    unsigned, untrusted, or on the strength of an expected identity from a trusted index).
    """

    source: str
    info: PackageInfo
    package: Package
    identity: str
    key_name: str | None
    scripts: tuple[tuple[str, bytes], ...]
    signatures: tuple[tuple[str, bytes], ...] = field(repr=False)
    control: GzipMember = field(repr=False)
    data: GzipMember = field(repr=False)

    def entries(self, *, verify: bool = True) -> Iterator[TarEntry]:
        """The data entries. With ``verify``, each file's and symlink's
        ``APK-TOOLS.checksum.SHA1`` is checked; a mismatch raises :class:`PackageError`."""
        for entry in iter_tar(self.data.payload, source=f"{self.source}: data"):
            if verify:
                _check_entry(entry, self.source)
            yield entry


def _check_entry(entry: TarEntry, source: str) -> None:
    expected = entry.pax_value(CHECKSUM_KEY)
    if expected is None:
        return
    if entry.type in FILE_TYPES:
        actual = hashlib.sha1(entry.data).hexdigest()
    elif entry.type == SYMLINK:
        actual = hashlib.sha1(entry.linkname.encode("utf-8", "surrogateescape")).hexdigest()
    else:
        return
    if actual != expected.lower():
        raise PackageError(f"{source}: {entry.path}: file checksum mismatch (BAD file hash)")


def _is_signature_member(member: GzipMember, source: str) -> bool:
    try:
        first = next(iter_tar(member.payload, source=source), None)
    except ArchiveError:
        return False
    return first is not None and parse_signature_name(first.path) is not None


def read_package(
    data: bytes,
    keys: Keyring | None,
    *,
    source: str,
    allow_untrusted: bool = False,
    expected_identity: str | None = None,
    max_size: int = DEFAULT_MAX_PACKAGE_SIZE,
) -> ApkFile:
    """Read and verify a v2 ``.apk``.

    With ``expected_identity`` (the ``C:`` of a trusted index) the identity must match and
    no signature is needed, as in apk. Otherwise the signature must be by a key in ``keys``,
    unless ``allow_untrusted``. When ``.PKGINFO`` has a ``datahash`` it must match the data
    member. Raises :class:`ArchiveError`, :class:`PackageError` or :class:`SignatureError`,
    each naming ``source``.
    """
    members = split_gzip(
        data,
        source=source,
        # member 1 is the signature or (unsigned) the control member, never the data
        max_member_size=(_MAX_CONTROL_SIZE, max_size),
        max_total_size=max_size + 2 * _MAX_CONTROL_SIZE,
        max_members=3,
    )
    if len(members) == 3:
        signature_member, control, data_member = members
        if not _is_signature_member(signature_member, source):
            raise PackageError(f"{source}: the first gzip member is not a signature")
        signatures = tuple(
            (e.path, e.data)
            for e in read_tar(signature_member.payload, source=f"{source}: signature")
        )
    elif len(members) == 2:
        control, data_member = members
        if _is_signature_member(control, source):
            raise PackageError(f"{source}: has a signature but no control or data member")
        signatures = ()
    else:
        raise PackageError(
            f"{source}: not a v2 package: {len(members)} gzip member, expected 2 or 3"
        )
    if len(control.payload) > _MAX_CONTROL_SIZE:
        raise PackageError(f"{source}: control member is too large")
    if control.payload[-BLOCK:] == bytes(BLOCK):
        raise PackageError(
            f"{source}: control member ends with tar end-of-archive blocks",
            hint="apk reads such a package as truncated",
        )
    control_entries = read_tar(control.payload, source=f"{source}: control")
    if not control_entries or control_entries[0].path != ".PKGINFO":
        raise PackageError(f"{source}: control member does not start with .PKGINFO")
    scripts: list[tuple[str, bytes]] = []
    for entry in control_entries[1:]:
        if entry.path == ".INSTALL":
            raise PackageError(f"{source}: APK v1 .INSTALL script is not supported")
        if entry.path in SCRIPT_NAMES:
            scripts.append((entry.path, entry.data))
        elif not entry.path.startswith(".") or "/" in entry.path:
            raise PackageError(f"{source}: unexpected control entry {entry.path!r}")
    info = parse_pkginfo(control_entries[0].data, source=f"{source}: .PKGINFO")
    identity = identity_of(control.compressed)
    key_name: str | None = None
    if expected_identity is not None:
        if identity != expected_identity:
            raise PackageError(
                f"{source}: BAD checksum: identity is {identity}, the index says "
                f"{expected_identity}"
            )
    elif signatures:
        signed = (
            control.compressed if info.datahash else control.compressed + data_member.compressed
        )
        try:
            key_name = verify_signatures(
                signatures, signed, Keyring() if keys is None else keys, source=source
            )
        except SignatureError as exc:
            if not allow_untrusted or "BAD signature" in exc.message:
                raise
    elif not allow_untrusted:
        raise SignatureError(
            f"{source}: UNTRUSTED: the package is not signed",
            hint="use --allow-untrusted to accept it anyway",
        )
    if info.datahash:
        actual = hashlib.sha256(data_member.compressed).hexdigest()
        if actual != info.datahash.lower():
            raise PackageError(f"{source}: BAD datahash: the data member does not match")
    package = replace(info.package, checksum=identity, size=len(data))
    return ApkFile(
        source=source,
        info=info,
        package=package,
        identity=identity,
        key_name=key_name,
        scripts=tuple(scripts),
        signatures=signatures,
        control=control,
        data=data_member,
    )


# --------------------------------------------------------------------------------------------
# writing


def _with_checksum(entry: TarEntry) -> TarEntry:
    if entry.type in FILE_TYPES:
        digest = hashlib.sha1(entry.data).hexdigest()
    elif entry.type == SYMLINK:
        digest = hashlib.sha1(entry.linkname.encode("utf-8", "surrogateescape")).hexdigest()
    else:
        return entry
    pax = (*(kv for kv in entry.pax if kv[0] != CHECKSUM_KEY), (CHECKSUM_KEY, digest))
    return replace(entry, pax=pax)


def _sort_key(entry: TarEntry) -> bytes:
    return entry.path.rstrip("/").encode("utf-8", "surrogateescape")


def write_package(
    entries: Iterable[TarEntry],
    info: PackageInfo,
    signer: Signer | None,
    *,
    scripts: Sequence[tuple[str, bytes]] = (),
    mtime: int = 0,
) -> bytes:
    """Build a v2 package, following abuild's recipe.

    ``entries`` (e.g. from :func:`tree_entries`) are sorted bytewise by path and each file
    and symlink gets its ``APK-TOOLS.checksum.SHA1``. ``info.package.installed_size`` is
    replaced by the sum of the regular files' sizes (1 when that is 0 but the package has
    entries or scripts) and ``info.datahash`` by the data member's SHA-256. The control tar
    (``.PKGINFO``, then ``scripts`` in apk's order) and the signature tar carry no
    end-of-archive blocks. With ``signer`` None the package has no signature member.
    """
    data_entries = sorted((_with_checksum(e) for e in entries), key=_sort_key)
    seen = set()
    for entry in data_entries:
        if entry.path.rstrip("/") in seen:
            raise PackageError(f"duplicate path in package data: {entry.path}")
        seen.add(entry.path.rstrip("/"))
        if entry.path.startswith("/") or ".." in entry.path.split("/"):
            raise PackageError(f"unsafe path in package data: {entry.path}")
    for name, _ in scripts:
        if name not in SCRIPT_NAMES:
            raise PackageError(f"unknown script name {name!r}; known: {', '.join(SCRIPT_NAMES)}")
    data_member = gzip_member(write_tar(data_entries))
    installed = sum(len(e.data) for e in data_entries if e.type in FILE_TYPES)
    if installed == 0 and (data_entries or scripts):
        installed = 1
    info = replace(
        info,
        package=replace(info.package, installed_size=installed),
        datahash=hashlib.sha256(data_member).hexdigest(),
    )
    root = TarEntry(".PKGINFO", mode=0o644, uname="root", gname="root", mtime=mtime)
    control_entries = [replace(root, data=format_pkginfo(info))]
    order = {name: i for i, name in enumerate(SCRIPT_NAMES)}
    for name, body in sorted(scripts, key=lambda s: order[s[0]]):
        control_entries.append(replace(root, path=name, data=body, mode=0o755))
    control_member = gzip_member(write_tar(control_entries, end_of_archive=False))
    if signer is None:
        return control_member + data_member
    signature = signer.sign(control_member)
    signature_member = gzip_member(
        write_tar(
            [TarEntry(signer.entry_name, data=signature, mode=0o644, mtime=mtime)],
            end_of_archive=False,
        )
    )
    return signature_member + control_member + data_member


def tree_entries(
    root: Path | str,
    *,
    mtime: int,
    uid: int | None = None,
    gid: int | None = None,
) -> list[TarEntry]:
    """The tar entries for everything under ``root`` (not ``root`` itself), like abuild.

    Paths are relative, directories end with ``/``; modes, owners (numeric; name ``root``
    for id 0), symlink targets, device numbers and extended attributes are taken from the
    disk, all times are ``mtime``. ``uid``/``gid`` override every owner. The second and
    later paths of a hard-linked file (in sorted order) become hard links to the first.
    Raises :class:`PackageError` for sockets and unreadable files.
    """
    base = Path(root)
    if not base.is_dir():
        raise PackageError(f"{base}: not a directory")
    found: list[tuple[bytes, str, os.stat_result]] = []
    try:
        for dirpath, dirnames, filenames in os.walk(base, onerror=_raise):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, base)
            for name in [*dirnames, *filenames]:
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                st = os.lstat(os.path.join(dirpath, name))
                found.append((rel.encode("utf-8", "surrogateescape"), rel, st))
    except OSError as exc:
        raise PackageError(f"{exc.filename}: cannot read ({exc.strerror})") from None
    found.sort(key=lambda item: item[0])
    entries: list[TarEntry] = []
    first_link: dict[tuple[int, int], str] = {}
    for _, rel, st in found:
        path = base / rel
        owner = st.st_uid if uid is None else uid
        group = st.st_gid if gid is None else gid
        template = TarEntry(
            rel,
            mode=stat.S_IMODE(st.st_mode),
            uid=owner,
            gid=group,
            uname="root" if owner == 0 else "",
            gname="root" if group == 0 else "",
            mtime=mtime,
            xattrs=_xattrs(path),
        )
        kind = st.st_mode
        try:
            if stat.S_ISDIR(kind):
                entry = replace(template, path=rel + "/", type=DIRECTORY)
            elif stat.S_ISLNK(kind):
                entry = replace(template, type=SYMLINK, linkname=os.readlink(path))
            elif stat.S_ISREG(kind):
                inode = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and inode in first_link:
                    entry = replace(template, type=HARDLINK, linkname=first_link[inode])
                else:
                    first_link[inode] = rel
                    entry = replace(template, data=path.read_bytes())
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                entry = replace(
                    template,
                    type="3" if stat.S_ISCHR(kind) else "4",
                    devmajor=os.major(st.st_rdev),
                    devminor=os.minor(st.st_rdev),
                )
            elif stat.S_ISFIFO(kind):
                entry = replace(template, type="6")
            else:
                raise PackageError(f"{path}: cannot package this kind of file (socket?)")
        except OSError as exc:
            raise PackageError(f"{path}: cannot read ({exc.strerror})") from None
        entries.append(entry)
    return entries


def _raise(exc: OSError) -> None:
    raise exc


def _xattrs(path: Path) -> tuple[tuple[str, bytes], ...]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:  # not supported by the file system, or a symlink that cannot have any
        return ()
    out = []
    for name in sorted(names):
        try:
            out.append((name, os.getxattr(path, name, follow_symlinks=False)))
        except OSError:
            continue
    return tuple(out)
