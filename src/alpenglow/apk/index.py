"""APKINDEX: the package records of a repository, as text and as a signed archive.

The text is one stanza per package, ``X:value`` lines ended by an empty line (formats.md
§2.1). :func:`parse_index` reads it into :class:`Package` records and :func:`format_index`
writes it back. :func:`load_index_archive` and :func:`write_index_archive` handle the
``APKINDEX.tar.gz`` container: a signature gzip member, then one gzip member holding a tar
with ``DESCRIPTION`` and ``APKINDEX`` (§2.2).

Loading Alpine's indexes is on every command's path, so parsing has a fast path: stanzas in
the exact layout ``apk index`` writes are matched by one regular expression over the whole
text; anything else (other field orders, unknown or repeated fields, errors) goes through the
general line-by-line reader, which gives the same records and names the offending line.

>>> pkgs = parse_index("P:hello\\nV:1.0-r0\\nD:so:libc.musl-x86_64.so.1 /bin/sh\\n\\n")
>>> str(pkgs[0]), [str(d) for d in pkgs[0].depends]
('hello-1.0-r0', ['so:libc.musl-x86_64.so.1', '/bin/sh'])
>>> print(format_package(pkgs[0]))
C:
P:hello
V:1.0-r0
S:0
I:0
T:
U:
L:
D:so:libc.musl-x86_64.so.1 /bin/sh
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import accumulate, chain, islice, repeat

from alpenglow._record import fields_of, record
from alpenglow._typing import TYPE_CHECKING, cast
from alpenglow.apk.dependency import Dependency, parse_cached
from alpenglow.errors import ArchiveError, IndexFormatError, InvalidDependency, SignatureError

if TYPE_CHECKING:
    # the archive and signing machinery is imported by the functions that read or write
    # archives: a run whose indexes come from the parsed-index cache never needs it
    from alpenglow.apk.signing import Keyring, Signer

__all__ = [
    "DEFAULT_MAX_INDEX_SIZE",
    "IndexArchive",
    "Package",
    "format_index",
    "format_package",
    "load_index_archive",
    "parse_index",
    "parse_package_fields",
    "write_index_archive",
]


def __dir__() -> list[str]:
    return __all__


@record
class Package:
    """One package as an index (or the installed database) describes it."""

    name: str  # P
    version: str  # V
    checksum: str = ""  # C, "Q1..." identity
    arch: str = ""  # A
    size: int = 0  # S, .apk file size
    installed_size: int = 0  # I
    description: str = ""  # T
    url: str = ""  # U
    license: str = ""  # L
    origin: str = ""  # o
    maintainer: str = ""  # m
    build_time: int = 0  # t
    commit: str = ""  # c
    provider_priority: int | None = None  # k, None when not given
    depends: tuple[Dependency, ...] = ()  # D
    provides: tuple[Dependency, ...] = ()  # p
    install_if: tuple[Dependency, ...] = ()  # i
    replaces: tuple[Dependency, ...] = ()  # r (installed db)
    replaces_priority: int = 0  # q (installed db)
    tags: tuple[str, ...] = ()  # g (apk 3 installed db)
    repository_tag: str = ""  # s (installed db, without "@")
    flags: str = ""  # f (installed db)
    uninstallable: bool = False  # unknown upper-case field, or malformed D:
    extra: tuple[tuple[str, str], ...] = ()  # unknown fields (letter, value), in order

    def __str__(self) -> str:
        return f"{self.name}-{self.version}"


class _PackageShell:
    """A mutable twin of :class:`Package` with the same slots, used only by the parser.

    A frozen dataclass sets every field through ``object.__setattr__``, which costs about
    8 microseconds per 24-field record on a small machine: 40 ms for Alpine's main index
    alone. The parser fills this plain slotted class instead and then re-labels the instance
    as a :class:`Package` (same slots, same memory layout), so what comes out is an ordinary
    frozen ``Package``, equal to one built the normal way.
    """

    __slots__ = fields_of(Package)

    def __init__(
        self,
        checksum: str,
        name: str,
        version: str,
        arch: str | None,
        size: int,
        installed_size: int,
        description: str,
        url: str,
        license: str,
        origin: str | None,
        maintainer: str | None,
        build_time: int,
        commit: str | None,
        provider_priority: int | None,
        depends: tuple[Dependency, ...],
        provides: tuple[Dependency, ...],
        install_if: tuple[Dependency, ...],
        uninstallable: bool,
    ) -> None:
        self.name = name
        self.version = version
        self.checksum = checksum
        self.arch = arch or ""
        self.size = size
        self.installed_size = installed_size
        self.description = description
        self.url = url
        self.license = license
        self.origin = origin or ""
        self.maintainer = maintainer or ""
        self.build_time = build_time
        self.commit = commit or ""
        self.provider_priority = provider_priority
        self.depends = depends
        self.provides = provides
        self.install_if = install_if
        self.replaces = ()
        self.replaces_priority = 0
        self.tags = ()
        self.repository_tag = ""
        self.flags = ""
        self.uninstallable = uninstallable
        self.extra = ()
        self.__class__ = Package  # type: ignore[assignment]


_COMPARERS = "<>=~"


def _lenient_atom(atom: str) -> Dependency | None:
    """An atom whose only fault is its version, as apk keeps it (marked broken); else None.

    apk keeps ``cmd:smtp=6.8.0p2-r4`` (the version is not valid) but flags the list, so the
    caller decides: a broken ``D:`` makes the package uninstallable, a broken ``i:`` drops
    the rule, ``p:`` and ``r:`` keep it.
    """
    cut = next((i for i, ch in enumerate(atom) if ch in _COMPARERS), -1)
    if cut < 0:
        return None
    op_end = cut
    while op_end < len(atom) and atom[op_end] in _COMPARERS:
        op_end += 1
    version = atom[op_end:]
    if not version:
        return None
    try:
        base = parse_cached(atom[:op_end] + "0")
    except InvalidDependency:
        return None
    return Dependency(base.name, base.op, version, base.conflict, base.tag)


_DepCache = dict[str, tuple[Dependency, ...]]


def _deps(text: str, cache: _DepCache, broken: set[str]) -> tuple[Dependency, ...]:
    """Parse a dependency list, memoised in ``cache``; lists with a bad atom go in
    ``broken`` (their good atoms, and atoms whose only fault is the version, are kept)."""
    hit = cache.get(text)
    if hit is not None:
        return hit
    try:
        result = tuple(map(parse_cached, text.split()))
    except InvalidDependency:
        good: list[Dependency] = []
        for atom in text.split():
            try:
                good.append(parse_cached(atom))
            except InvalidDependency:
                kept = _lenient_atom(atom)
                if kept is not None:
                    good.append(kept)
        result = tuple(good)
        broken.add(text)
    cache[text] = result
    return result


# The layout `apk index` writes: C P V [A] S I T U L [o] [m] [t] [c] [k] [D] [p] [i], blank.
def _required(letter: str, value: str = "[^\n]*") -> str:
    return f"{letter}:({value})\n"


def _optional(letter: str, value: str = "[^\n]*") -> str:
    # An empty alternative rather than "?": sre runs it ~20% faster (no repeat context).
    return f"(?:{letter}:({value})\n|)"


_NUMBER = "[0-9]+"
# compiled on first use (start-up: a run whose indexes come from the cache parses none)
_CANONICAL_PATTERN = (
    _required("C")
    + _required("P", "[^\n]+")
    + _required("V", "[^\n]+")
    + _optional("A")
    + _required("S", _NUMBER)
    + _required("I", _NUMBER)
    + _required("T")
    + _required("U")
    + _required("L")
    + _optional("o")
    + _optional("m")
    + _optional("t", _NUMBER)
    + _optional("c")
    + _optional("k", _NUMBER)
    + _optional("D")
    + _optional("p")
    + _optional("i")
    + "(?:\n|\\Z)"
)
_STRIDE = 18  # 17 groups, then the (empty) text between two matches


_DepTable = dict[str | None, tuple[Dependency, ...]]


def _dep_table(values: Iterable[str | None]) -> tuple[_DepTable, set[str]]:
    """Parse every distinct dependency list in ``values`` at once.

    Returns ``{text: atoms}`` (with ``None -> ()``) and the set of lists that had a bad
    atom. All atoms of all lists are parsed in one C-level ``map``; when an atom fails,
    ``list.extend`` has kept the atoms before it, so the bad one is handled on its own and
    the ``map`` resumes after it. The flat result is then cut back into one tuple per list.
    """
    unique = dict.fromkeys(values)
    unique.pop(None, None)
    texts = cast("list[str]", list(unique))
    splits = list(map(str.split, texts))
    atoms = chain.from_iterable(splits)
    parsed: list[Dependency | None] = []
    bad: list[int] = []
    while True:
        try:
            parsed.extend(map(parse_cached, atoms))
            break
        except InvalidDependency as exc:
            bad.append(len(parsed))
            parsed.append(_lenient_atom(exc.text))
    flat = iter(parsed)
    tuples = list(map(tuple, map(islice, repeat(flat), map(len, splits))))
    broken: set[str] = set()
    if bad:
        ends = list(accumulate(map(len, splits)))
        for position in bad:
            owner = bisect_right(ends, position)
            broken.add(texts[owner])
            tuples[owner] = tuple(d for d in tuples[owner] if d is not None)
    table = cast("_DepTable", dict(zip(texts, tuples, strict=True)))
    table[None] = ()
    return table, broken


def _parse_canonical(text: str) -> list[Package] | None:
    """Parse ``text`` if every stanza has the canonical layout; None otherwise.

    Works column by column (all names, all sizes, ...) so that most of the work runs in
    C-level ``map`` calls rather than per-field Python code.
    """
    import re  # here, not at the top: a run whose indexes come from the cache never parses

    parts: list[str | None] = re.split(_CANONICAL_PATTERN, text)
    if any(parts[::_STRIDE]):  # text between matches: not all stanzas are canonical
        return None
    col = [parts[i::_STRIDE] for i in range(_STRIDE)]
    table, broken = _dep_table(chain(col[15], col[16], col[17]))
    lookup = table.__getitem__
    depends = list(map(lookup, col[15]))
    provides = list(map(lookup, col[16]))
    install_if = list(map(lookup, col[17]))
    uninstallable: Iterable[bool] = repeat(False)
    build_times: Iterable[int]
    try:
        build_times = list(map(int, col[12]))  # type: ignore[arg-type]
    except TypeError:  # some stanzas have no t:
        build_times = [int(v) if v else 0 for v in col[12]]
    priorities: Iterable[int | None] = repeat(None)
    if any(col[14]):
        priorities = [None if v is None else int(v) for v in col[14]]
    if broken:
        install_if = [() if v in broken else d for v, d in zip(col[17], install_if, strict=True)]
        uninstallable = [v in broken for v in col[15]]
    shells = list(
        map(
            _PackageShell,
            col[1],
            col[2],
            col[3],
            col[4],
            map(int, col[5]),  # type: ignore[arg-type]
            map(int, col[6]),  # type: ignore[arg-type]
            col[7],
            col[8],
            col[9],
            col[10],
            col[11],
            build_times,
            col[13],
            priorities,
            depends,
            provides,
            install_if,
            uninstallable,
        )
    )
    return cast("list[Package]", shells)


_INT_FIELDS = {"S": "size", "I": "installed_size", "t": "build_time", "q": "replaces_priority"}
_STR_FIELDS = {
    "C": "checksum",
    "P": "name",
    "V": "version",
    "A": "arch",
    "T": "description",
    "U": "url",
    "L": "license",
    "o": "origin",
    "m": "maintainer",
    "c": "commit",
    "s": "repository_tag",
    "f": "flags",
}
_DEP_FIELDS = {"D": "depends", "p": "provides", "i": "install_if", "r": "replaces"}


def _stanza(
    fields: Sequence[tuple[str, str]],
    source: str,
    lines: Sequence[int] | None,
    first_line: int,
    cache: _DepCache,
    broken: set[str],
) -> Package:
    values: dict[str, object] = {}
    extra: list[tuple[str, str]] = []
    uninstallable = False

    def where(index: int) -> str:
        if lines is not None:
            return f"{source}: line {lines[index]}"
        return f"{source}: package at line {first_line}"

    for index, (letter, value) in enumerate(fields):
        if letter in _STR_FIELDS:
            values[_STR_FIELDS[letter]] = value
        elif letter in _INT_FIELDS or letter == "k":
            if not (value.isascii() and value.isdigit()):
                raise IndexFormatError(
                    f"{where(index)}: field {letter}: needs a number, got {value!r}"
                )
            values[_INT_FIELDS.get(letter, "provider_priority")] = int(value)
        elif letter in _DEP_FIELDS:
            deps = _deps(value, cache, broken)
            if value in broken:
                if letter == "i":
                    deps = ()
                elif letter == "D":
                    uninstallable = True
            # apk appends a repeated D:/p:/i:/r: line to the list it already has
            key = _DEP_FIELDS[letter]
            values[key] = values.get(key, ()) + deps  # type: ignore[operator]
        elif letter == "g":
            values["tags"] = tuple(value.split())
        else:
            if letter.isupper():
                uninstallable = True
            extra.append((letter, value))
    for key, letter in (("name", "P"), ("version", "V")):
        if not values.get(key):
            raise IndexFormatError(
                f"{source}: package at line {first_line}: missing or empty {letter}: field"
            )
    return Package(**values, uninstallable=uninstallable, extra=tuple(extra))  # type: ignore[arg-type]


def parse_package_fields(
    fields: Sequence[tuple[str, str]], *, source: str = "APKINDEX", line: int = 1
) -> Package:
    """Build a :class:`Package` from ``(letter, value)`` pairs of one stanza.

    ``line`` is where the stanza starts, for error messages. Unknown letters are kept in
    ``extra`` (an unknown upper-case letter makes the package uninstallable), a malformed
    ``D:`` makes it uninstallable, a malformed ``i:`` drops install_if; in ``p:``/``r:``
    the atoms that can be read are kept (as apk does). Raises
    :class:`IndexFormatError` for a non-numeric ``S I t k q`` or a missing ``P``/``V``.
    """
    return _stanza(fields, source, None, line, {}, set())


def _parse_general(text: str, source: str) -> list[Package]:
    packages: list[Package] = []
    cache: _DepCache = {}
    broken: set[str] = set()
    fields: list[tuple[str, str]] = []
    lines: list[int] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line:
            if fields:
                packages.append(_stanza(fields, source, lines, lines[0], cache, broken))
                fields = []
                lines = []
            continue
        if len(line) < 2 or line[1] != ":":
            shown = line if len(line) <= 40 else line[:40] + "..."
            raise IndexFormatError(f"{source}: line {number}: expected 'X:value', got {shown!r}")
        fields.append((line[0], line[2:]))
        lines.append(number)
    if fields:
        packages.append(_stanza(fields, source, lines, lines[0], cache, broken))
    return packages


def parse_index(data: bytes | str, *, source: str = "APKINDEX") -> list[Package]:
    """Parse APKINDEX text into packages, in file order.

    Raises :class:`IndexFormatError` naming ``source`` and the line for bytes that are not
    UTF-8, a line that is not ``X:value``, a non-numeric ``S I t k``, or a stanza without
    ``P``/``V``.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise IndexFormatError(f"{source}: line {line}: not valid UTF-8") from None
    else:
        text = data
    with _gc_paused():
        fast = _parse_canonical(text)
        if fast is not None:
            return fast
        return _parse_general(text, source)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building thousands of records.

    Parsing allocates only acyclic objects, yet every 700 allocations would trigger a
    collection that walks the growing heap (it more than doubles the parse time).
    Reference counting still frees everything as usual; the collector is re-enabled after,
    with the new (long-lived) records counted as old objects.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            # Count the new records as old: move every tracked object to the oldest
            # generation (freeze + unfreeze splices lists; nothing is traversed), instead
            # of letting the next young collection walk all of them at once.
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def _dep_text(deps: tuple[Dependency, ...]) -> str:
    return " ".join(map(str, deps))


def format_package(pkg: Package, *, installed: bool = False) -> str:
    """One stanza (no trailing newline, no blank line) in apk's field order."""
    out = [f"C:{pkg.checksum}", f"P:{pkg.name}", f"V:{pkg.version}"]
    if pkg.arch:
        out.append(f"A:{pkg.arch}")
    out += [
        f"S:{pkg.size}",
        f"I:{pkg.installed_size}",
        f"T:{pkg.description}",
        f"U:{pkg.url}",
        f"L:{pkg.license}",
    ]
    if pkg.origin:
        out.append(f"o:{pkg.origin}")
    if pkg.maintainer:
        out.append(f"m:{pkg.maintainer}")
    if pkg.build_time:
        out.append(f"t:{pkg.build_time}")
    if pkg.commit:
        out.append(f"c:{pkg.commit}")
    if pkg.provider_priority is not None:
        out.append(f"k:{pkg.provider_priority}")
    if pkg.depends:
        out.append(f"D:{_dep_text(pkg.depends)}")
    if pkg.provides:
        out.append(f"p:{_dep_text(pkg.provides)}")
    if pkg.install_if:
        out.append(f"i:{_dep_text(pkg.install_if)}")
    if installed:
        if pkg.tags:
            out.append(f"g:{' '.join(pkg.tags)}")
        if pkg.replaces:
            out.append(f"r:{_dep_text(pkg.replaces)}")
        if pkg.replaces_priority:
            out.append(f"q:{pkg.replaces_priority}")
        if pkg.repository_tag:
            out.append(f"s:{pkg.repository_tag}")
        if pkg.flags:
            out.append(f"f:{pkg.flags}")
    out += [f"{letter}:{value}" for letter, value in pkg.extra]
    return "\n".join(out)


def format_index(packages: Iterable[Package]) -> bytes:
    """APKINDEX text for ``packages``, sorted by name, each stanza ended by a blank line."""
    ordered = sorted(packages, key=lambda p: p.name)
    return "".join(format_package(p) + "\n\n" for p in ordered).encode("utf-8")


# --------------------------------------------------------------------------------------------
# APKINDEX.tar.gz

DEFAULT_MAX_INDEX_SIZE = 64 << 20
"""Cap on the decompressed size of an index member (Alpine's biggest are ~10 MiB)."""
_MAX_SIGNATURE_MEMBER = 1 << 20
_MAX_DESCRIPTION = 160


@record
class IndexArchive:
    """A loaded ``APKINDEX.tar.gz``: its description, packages, and the key that signed it
    (None when it was accepted unsigned or untrusted)."""

    description: str
    packages: tuple[Package, ...]
    key_name: str | None = None
    signers: tuple[str, ...] = ()
    """Key names of the signature entries that could decide, in archive order (known
    algorithm, not oversized): the first one found in a keyring is the one checked."""


def _signature_entries(payload: bytes, source: str) -> list[tuple[str, bytes]]:
    from alpenglow.apk.archive import iter_tar
    from alpenglow.apk.signing import parse_signature_name

    entries: list[tuple[str, bytes]] = []
    for entry in iter_tar(payload, source=source):
        if parse_signature_name(entry.path) is None:
            raise ArchiveError(f"{source}: unexpected entry {entry.path!r} in the signature member")
        entries.append((entry.path, entry.data))
    return entries


def _signers(entries: Sequence[tuple[str, bytes]]) -> tuple[str, ...]:
    """The key names :func:`verify_signatures` would consider, in order."""
    from alpenglow.apk.signing import ALGORITHMS, MAX_SIGNATURE_SIZE, parse_signature_name

    out = []
    for name, signature in entries:
        parsed = parse_signature_name(name)
        if parsed is not None and parsed[0] in ALGORITHMS and len(signature) <= MAX_SIGNATURE_SIZE:
            out.append(parsed[1])
    return tuple(out)


def load_index_archive(
    data: bytes,
    keys: Keyring | None,
    *,
    source: str,
    allow_untrusted: bool = False,
    max_size: int = DEFAULT_MAX_INDEX_SIZE,
) -> IndexArchive:
    """Read an ``APKINDEX.tar.gz``: verify its signature, then parse the index.

    The signature (first gzip member) covers the compressed bytes of the index member.
    ``allow_untrusted`` accepts an index with no signature member (e.g. a single gzip member
    holding just ``APKINDEX``) or one signed by a key that is not in ``keys``; a signature by
    a trusted key that does not verify is always an error. ``max_size`` caps the decompressed
    size of each member. Raises :class:`ArchiveError`, :class:`SignatureError` or
    :class:`IndexFormatError`, each naming ``source``.
    """
    from alpenglow.apk.archive import iter_tar, split_gzip
    from alpenglow.apk.signing import Keyring, verify_signatures

    members = split_gzip(
        data, source=source, max_member_size=max_size, max_total_size=2 * max_size, max_members=2
    )
    key_name: str | None = None
    signers: tuple[str, ...] = ()
    if len(members) == 2:
        signed, index_member = members
        if len(signed.payload) > _MAX_SIGNATURE_MEMBER:
            raise ArchiveError(f"{source}: signature member is too large")
        entries = _signature_entries(signed.payload, source)
        signers = _signers(entries)
        try:
            key_name = verify_signatures(
                entries, index_member.compressed, Keyring() if keys is None else keys, source=source
            )
        except SignatureError as exc:
            if not allow_untrusted or "BAD signature" in exc.message:
                raise
    else:
        index_member = members[0]
        if not allow_untrusted:
            raise SignatureError(
                f"{source}: UNTRUSTED: the index is not signed",
                hint="use --allow-untrusted to accept it anyway",
            )
    description = ""
    text: bytes | None = None
    for entry in iter_tar(index_member.payload, source=source):
        if entry.path == "DESCRIPTION":
            if len(entry.data) <= _MAX_DESCRIPTION:
                description = entry.data.decode("utf-8", "replace").strip()
        elif entry.path == "APKINDEX":
            text = entry.data
    if text is None:
        raise IndexFormatError(f"{source}: no APKINDEX entry in the index archive")
    packages = parse_index(text, source=f"{source}: APKINDEX")
    return IndexArchive(description, tuple(packages), key_name, signers)


def write_index_archive(
    packages: Iterable[Package],
    description: str,
    signer: Signer | None,
    *,
    mtime: int = 0,
) -> bytes:
    """An ``APKINDEX.tar.gz``: a signature member (when ``signer`` is given, RSA over the
    compressed index member, tar without end blocks) followed by the index member (a tar of
    ``DESCRIPTION`` and ``APKINDEX`` with end blocks). Packages are sorted by name."""
    from alpenglow.apk.archive import TarEntry, gzip_member, write_tar

    common = {"mode": 0o644, "uname": "root", "gname": "root", "mtime": mtime}
    index_tar = write_tar(
        [
            TarEntry("DESCRIPTION", data=description.encode("utf-8"), **common),  # type: ignore[arg-type]
            TarEntry("APKINDEX", data=format_index(packages), **common),  # type: ignore[arg-type]
        ]
    )
    index_member = gzip_member(index_tar)
    if signer is None:
        return index_member
    signature = signer.sign(index_member)
    signature_tar = write_tar(
        [TarEntry(signer.entry_name, data=signature, mode=0o644, mtime=mtime)],
        end_of_archive=False,
    )
    return gzip_member(signature_tar) + index_member
