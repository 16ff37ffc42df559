"""The installed database (``lib/apk/db/installed``) and the world file (``etc/apk/world``).

Pure parse and format, no file access. An installed stanza is an index stanza (read with
:func:`alpenglow.apk.index.parse_package_fields`) plus the package's file list: ``F:`` a
directory, ``M:`` its owner and mode, ``R:`` a file in it, ``a:`` the file's owner and mode,
``Z:`` the file's checksum (formats.md §4.2). Reading follows apk's rules: a line shorter
than two characters ends a stanza (so does the end of the data), ``X:`` is required, file
entries must come in order, and a field apk does not know is refused ("too old").

>>> text = "C:Q1EyN5AdpAOBJWKMR89pp/C66o+OE=\\nP:a\\nV:1\\nF:usr/bin\\nR:a\\nZ:Q1abc=\\n\\n"
>>> [(p.package.name, p.dirs[0].path, p.dirs[0].files[0].name) for p in parse_installed(text)]
[('a', 'usr/bin', 'a')]
>>> [str(d) for d in parse_world("b\\na<2\\n")]
['b', 'a<2']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from alpenglow._record import record
from alpenglow.apk.dependency import Dependency, parse
from alpenglow.apk.index import Package, format_package, parse_package_fields
from alpenglow.errors import DatabaseError, FormatError, InvalidDependency

__all__ = [
    "InstalledDir",
    "InstalledFile",
    "InstalledPackage",
    "ScriptRecord",
    "find_owner",
    "format_installed",
    "format_scripts",
    "format_triggers",
    "format_world",
    "parse_installed",
    "parse_scripts",
    "parse_triggers",
    "parse_world",
    "script_entry_name",
]


def __dir__() -> list[str]:
    return __all__


@record
class InstalledFile:
    """One ``R:`` entry: a file name in its directory, its ``a:`` and ``Z:`` values."""

    name: str
    acl: str = ""
    """``uid:gid:mode[:xattrhash]`` when not the default ``0:0:644``; "" otherwise."""
    digest: str = ""
    """``Q1...`` checksum of the content (or of the link target)."""


@record
class InstalledDir:
    """One ``F:`` entry: a directory the package owns, its ``M:`` value and files."""

    path: str
    acl: str = ""
    files: tuple[InstalledFile, ...] = ()


@record
class InstalledPackage:
    """A package of the installed database with the files it owns."""

    package: Package
    dirs: tuple[InstalledDir, ...] = ()

    @property
    def broken_files(self) -> bool:
        return "f" in self.package.flags

    @property
    def broken_script(self) -> bool:
        return "s" in self.package.flags

    def owns(self, path: str) -> bool:
        """Whether ``path`` (relative to the root, leading ``/`` allowed) is one of its files."""
        path = path.lstrip("/")
        directory, _, base = path.rpartition("/")
        return any(d.path == directory and any(f.name == base for f in d.files) for d in self.dirs)


_FILE_LETTERS = frozenset("FMRaZ")
# Letters apk understands in an installed stanza (index fields plus database-only ones).
_KNOWN = frozenset("CPVASITULomtckDpigrqsf") | _FILE_LETTERS
_FLAG_CHARS = frozenset("fsxS")


class _Stanza:
    __slots__ = ("dir_acl", "dir_path", "dirs", "fields", "files", "first_line", "name_seen")

    def __init__(self, line: int) -> None:
        self.first_line = line
        self.fields: list[tuple[str, str]] = []
        self.dirs: list[InstalledDir] = []
        self.files: list[InstalledFile] = []
        self.dir_path: str | None = None
        self.dir_acl = ""
        self.name_seen = False

    def close_dir(self) -> None:
        if self.dir_path is not None:
            self.dirs.append(InstalledDir(self.dir_path, self.dir_acl, tuple(self.files)))
        self.dir_path = None
        self.dir_acl = ""
        self.files = []


def parse_installed(
    data: bytes | str, *, source: str = "lib/apk/db/installed"
) -> list[InstalledPackage]:
    """Parse an installed database, in file order.

    Raises :class:`DatabaseError` naming ``source`` and the line for anything apk refuses:
    non-UTF-8 bytes, a line that is not ``X:value``, file entries out of order, an unknown
    field, a bad ``f:`` flag, or a stanza without ``P``/``V``.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = data.count(b"\n", 0, exc.start) + 1
            raise DatabaseError(f"{source}: line {bad}: not valid UTF-8") from None
    else:
        text = data
    out: list[InstalledPackage] = []
    cur: _Stanza | None = None
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if len(line) < 2:
            if cur is not None:
                out.append(_finish(cur, source))
                cur = None
            continue
        if line[1] != ":":
            shown = line if len(line) <= 40 else line[:40] + "..."
            raise DatabaseError(f"{source}: line {number}: expected 'X:value', got {shown!r}")
        letter, value = line[0], line[2:]
        if cur is None:
            cur = _Stanza(number)
        if letter not in _KNOWN:
            raise DatabaseError(
                f"{source}: line {number}: unknown field {letter!r} (written by a newer apk-tools?)"
            )
        if letter not in _FILE_LETTERS:
            if letter == "P":
                cur.name_seen = True
            elif letter == "f" and not set(value) <= _FLAG_CHARS:
                raise DatabaseError(f"{source}: line {number}: unknown package flags {value!r}")
            cur.fields.append((letter, value))
            continue
        if letter == "F":
            if not cur.name_seen:
                raise DatabaseError(f"{source}: line {number}: 'F:' before the package name")
            cur.close_dir()
            cur.dir_path = value
        elif letter == "M":
            if cur.dir_path is None:
                raise DatabaseError(f"{source}: line {number}: 'M:' outside a directory")
            cur.dir_acl = value
        elif letter == "R":
            if cur.dir_path is None:
                raise DatabaseError(f"{source}: line {number}: 'R:' outside a directory")
            cur.files.append(InstalledFile(value))
        else:  # a, Z: modify the last file
            if not cur.files:
                raise DatabaseError(f"{source}: line {number}: '{letter}:' without a file")
            last = cur.files[-1]
            if letter == "a":
                cur.files[-1] = InstalledFile(last.name, value, last.digest)
            else:
                cur.files[-1] = InstalledFile(last.name, last.acl, value)
    if cur is not None:
        out.append(_finish(cur, source))
    return out


def _finish(st: _Stanza, source: str) -> InstalledPackage:
    st.close_dir()
    try:
        pkg = parse_package_fields(st.fields, source=source, line=st.first_line)
    except FormatError as exc:
        raise DatabaseError(str(exc)) from None
    return InstalledPackage(pkg, tuple(st.dirs))


def _display_key(name: str) -> tuple[str, str]:
    return (name.lower(), name)


def format_installed(packages: Iterable[InstalledPackage]) -> bytes:
    """Write an installed database as apk does: sorted by name, each stanza followed by
    its file list and an empty line."""
    from functools import cmp_to_key

    from alpenglow.apk.version import compare

    def order(a: InstalledPackage, b: InstalledPackage) -> int:
        ka, kb = _display_key(a.package.name), _display_key(b.package.name)
        if ka != kb:
            return -1 if ka < kb else 1
        return compare(a.package.version, b.package.version)

    parts: list[str] = []
    for ip in sorted(packages, key=cmp_to_key(order)):
        parts.append(format_package(ip.package, installed=True))
        for d in ip.dirs:
            parts.append(f"F:{d.path}")
            if d.acl:
                parts.append(f"M:{d.acl}")
            for f in d.files:
                parts.append(f"R:{f.name}")
                if f.acl:
                    parts.append(f"a:{f.acl}")
                if f.digest:
                    parts.append(f"Z:{f.digest}")
        parts.append("")
    return ("\n".join(parts) + "\n").encode("utf-8") if parts else b""


def find_owner(packages: Iterable[InstalledPackage], path: str) -> InstalledPackage | None:
    """The installed package whose file list has ``path``, if any."""
    for ip in packages:
        if ip.owns(path):
            return ip
    return None


# --------------------------------------------------------------------------------------------
# scripts.tar[.gz] and triggers (formats.md §4.3)


@record
class ScriptRecord:
    """One script of an installed package, as ``scripts.tar`` keeps it."""

    identity: str
    """The package's ``Q1...`` identity."""
    name: str
    version: str
    script: str
    """``post-install``, ``trigger``... (without the leading dot of the control entry)."""
    body: bytes
    mtime: int = 0


def _identity_bytes(identity: str) -> bytes:
    import base64
    import binascii

    text = identity.strip()
    try:
        if text.startswith("Q1"):
            return base64.b64decode(text[2:], validate=True)
        if text.startswith("X1"):
            return bytes.fromhex(text[2:])
    except (binascii.Error, ValueError):
        pass
    raise DatabaseError(f"bad package identity {identity!r}")


def _identity_text(raw: bytes) -> str:
    import base64

    return "Q1" + base64.b64encode(raw).decode()


def script_entry_name(record: ScriptRecord) -> str:
    """apk 3's name for a script in ``scripts.tar``: ``NAME-VERSION.X1<hex>.SCRIPT``."""
    hexid = _identity_bytes(record.identity).hex()
    return f"{record.name}-{record.version}.X1{hexid}.{record.script}"


def parse_scripts(data: bytes, *, source: str = "lib/apk/db/scripts.tar") -> list[ScriptRecord]:
    """Read ``scripts.tar`` (or, when ``data`` is gzip, ``scripts.tar.gz``).

    Entry names are split on their last two dots, and both apk 3's ``X1<hex>`` and apk
    2's ``Q1<base64>`` identities are accepted; entries apk would skip (not a regular file,
    unknown script type, unreadable identity) are skipped too.
    """
    from alpenglow.apk.archive import FILE_TYPES, iter_tar, split_gzip
    from alpenglow.apk.package import SCRIPT_TYPES
    from alpenglow.errors import ArchiveError

    try:
        if data[:2] == b"\x1f\x8b":
            data = b"".join(m.payload for m in split_gzip(data, source=source))
        entries = list(iter_tar(data, source=source))
    except ArchiveError as exc:
        raise DatabaseError(str(exc)) from None
    out = []
    for entry in entries:
        if entry.type not in FILE_TYPES:
            continue
        parts = entry.path.rsplit(".", 2)
        if len(parts) != 3 or parts[2] not in SCRIPT_TYPES:
            continue
        stem, ident, script = parts
        try:
            identity = _identity_text(_identity_bytes(ident))
        except DatabaseError:
            continue
        name, _, version = stem.rpartition("-")
        release = ""
        if version.startswith("r") and "-" in name:  # NAME-VER-rN
            name, _, ver = name.rpartition("-")
            release = f"{ver}-{version}"
        out.append(
            ScriptRecord(identity, name, release or version, script, entry.data, entry.mtime)
        )
    return out


def _gnu_header(path: str, size: int, mtime: int) -> bytes:
    name = path.encode("utf-8", "surrogateescape")
    if len(name) > 100:
        raise DatabaseError(f"script name too long for scripts.tar: {path}")
    head = b"".join(
        (
            name.ljust(100, b"\x00"),
            b"%07o\x00" % 0o755,
            b"%07o\x00" % 0,
            b"%07o\x00" % 0,
            b"%011o\x00" % size,
            b"%011o\x00" % max(mtime, 0),
            b"        ",
            b"0",
            bytes(100),
            b"ustar  \x00",
            b"root".ljust(32, b"\x00"),
            b"root".ljust(32, b"\x00"),
            bytes(8 + 8 + 155 + 12),
        )
    )
    checksum = b"%06o\x00 " % sum(head)
    return head[:148] + checksum + head[156:]


def format_scripts(records: Iterable[ScriptRecord], *, compress: bool = False) -> bytes:
    """``scripts.tar`` as apk 3 writes it: GNU headers, owner ``root``, mode 0755, mtime the
    package's build time, two zero blocks at the end and no record padding. ``records``
    are written in the order given (apk: installed packages sorted, scripts in type order).
    With ``compress``, the gzip of that (``scripts.tar.gz``)."""
    from alpenglow.apk.archive import gzip_member

    parts = []
    for script in records:
        parts.append(_gnu_header(script_entry_name(script), len(script.body), script.mtime))
        parts.append(script.body + bytes(-len(script.body) % 512))
    parts.append(bytes(1024))
    tar = b"".join(parts)
    return gzip_member(tar) if compress else tar


def parse_triggers(
    data: bytes | str, *, source: str = "lib/apk/db/triggers"
) -> dict[str, tuple[str, ...]]:
    """The triggers file: identity -> trigger globs, one line per package."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    out: dict[str, tuple[str, ...]] = {}
    for line in text.split("\n"):
        words = line.split()
        if not words:
            continue
        try:
            identity = _identity_text(_identity_bytes(words[0]))
        except DatabaseError:
            continue
        out[identity] = tuple(words[1:])
    return out


def format_triggers(entries: Iterable[tuple[str, Sequence[str]]]) -> bytes:
    """The triggers file: ``Q1<identity> <glob>...`` per package that has triggers."""
    lines = [f"{identity} {' '.join(globs)}\n" for identity, globs in entries if globs]
    return "".join(lines).encode("utf-8")


def parse_world(data: bytes | str, *, source: str = "etc/apk/world") -> tuple[Dependency, ...]:
    """Parse the world file: dependencies separated by spaces or newlines.

    Raises :class:`DatabaseError` naming ``source`` and the entry apk would refuse.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise DatabaseError(f"{source}: not valid UTF-8") from None
    else:
        text = data
    deps = []
    for atom in text.split():
        try:
            deps.append(parse(atom))
        except InvalidDependency as exc:
            raise DatabaseError(f"{source}: bad entry {atom!r}: {exc.reason}") from None
    return tuple(deps)


def format_world(deps: Iterable[Dependency]) -> bytes:
    """The world file apk writes: one entry per line, in the given order (apk's solver
    sorts it by name), ending with a newline; an empty world is a single newline."""
    return ("\n".join(str(d) for d in deps) + "\n").encode("utf-8")
