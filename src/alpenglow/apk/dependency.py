"""apk dependency atoms: ``[!]name[@tag][op version]`` and ``name><Q1...`` identity pins.

The same atom grammar serves ``depends``, ``provides``, ``install_if``, ``replaces`` and the
world file. Names may carry namespaces (``so:libc.musl-x86_64.so.1``, ``cmd:sh``,
``pc:zlib``) or be paths (``/bin/sh``).

>>> d = parse("!busybox@edge>=1.36")
>>> d.name, d.conflict, d.tag, op_string(d.op), d.version
('busybox', True, 'edge', '>=', '1.36')
>>> str(d)
'!busybox@edge>=1.36'
"""

from __future__ import annotations

from functools import cache, lru_cache

from alpenglow._record import record
from alpenglow._typing import TYPE_CHECKING
from alpenglow.apk.version import (
    ANY,
    CHECKSUM,
    Op,
    invalid_position,
    is_valid,
    op_string,
    version_matches,
)
from alpenglow.errors import InvalidDependency

if TYPE_CHECKING:
    import re

__all__ = [
    "Dependency",
    "format_list",
    "parse",
    "parse_cached",
    "parse_list",
]


def __dir__() -> list[str]:
    return __all__


_COMPARERS = frozenset("<>=~")
_SEPARATORS = frozenset(" \t\n")
# Characters that can never be part of a name: separators, comparers, control characters.
_FORBIDDEN_IN_NAME = frozenset(" \t\n\r\v\f<>=~@!") | frozenset(map(chr, range(32)))


@cache
def _atom() -> re.Pattern[str]:
    """The well-formed atom, in one pass: conflict, name, tag, operator, version. Anything
    that does not match goes through the careful parser, which knows where the problem is.
    Compiled when first needed: a plain name needs no pattern, and ``re`` costs start-up."""
    import re

    return re.compile(r"(!?)([^<>=~@!\x00-\x20]+)(?:@([^<>=~@!\x00-\x20]+))?(?:([<>=~]+)(.*))?\Z")


_OPS: dict[str, Op] = {
    "<": Op.LT,
    "<=": Op.LT | Op.EQ,
    "=<": Op.LT | Op.EQ,
    "<~": Op.LT | Op.EQ | Op.FUZZY,
    "~": Op.EQ | Op.FUZZY,
    "=": Op.EQ,
    ">=": Op.GT | Op.EQ,
    "=>": Op.GT | Op.EQ,
    ">~": Op.GT | Op.EQ | Op.FUZZY,
    ">": Op.GT,
    "><": CHECKSUM,
}


@record
class Dependency:
    """One dependency atom.

    ``op`` is the version mask (:class:`~alpenglow.apk.version.Op`) without the conflict bit;
    it is ``ANY`` when no version is given and ``CHECKSUM`` (``LT|GT``) for ``><`` pins,
    whose ``version`` is then the package identity (``Q1...``).
    """

    name: str
    op: Op = ANY
    version: str | None = None
    conflict: bool = False
    tag: str | None = None

    @property
    def is_checksum(self) -> bool:
        """Whether this is a ``name><Q1...`` identity pin."""
        return self.op == CHECKSUM and self.version is not None

    def matches(self, version: str, checksum: str | None = None) -> bool:
        """Whether a provider at ``version`` (and identity ``checksum``) satisfies the
        version part of this atom. The conflict flag is not applied here."""
        if self.version is None:
            return True
        if self.is_checksum:
            return checksum is not None and checksum == self.version
        return version_matches(version, self.op, self.version)

    def without_conflict(self) -> Dependency:
        """The same atom without the leading ``!``."""
        return Dependency(self.name, self.op, self.version, False, self.tag)

    def __str__(self) -> str:
        text = ("!" if self.conflict else "") + self.name
        if self.tag:
            text += "@" + self.tag
        if self.version is not None:
            text += op_string(self.op) + self.version
        return text


def parse(text: str) -> Dependency:
    """Parse one atom; raise :class:`InvalidDependency` with a caret under the bad spot.

    >>> dep = parse("so:libc.musl-x86_64.so.1=1")
    >>> dep.name, dep.op, dep.version
    ('so:libc.musl-x86_64.so.1', <Op.EQ: 1>, '1')
    """
    if text and _FORBIDDEN_IN_NAME.isdisjoint(text):
        return Dependency(text)  # a plain name, the most common atom
    match = _atom().match(text)
    if match is not None:
        bang, name, tag, op_text, version = match.groups()
        if op_text is None:
            return Dependency(name, ANY, None, bool(bang), tag)
        op = _OPS.get(op_text)
        if op is not None and version and (op == CHECKSUM or is_valid(version)):
            return Dependency(name, op, version, bool(bang), tag)
    return _parse_slowly(text)


def _parse_slowly(text: str) -> Dependency:
    """The character-by-character parser: accepts what apk accepts, and says where not."""
    pos = 0
    conflict = text.startswith("!")
    if conflict:
        pos = 1
    end = len(text)
    cut = pos
    while cut < end and text[cut] not in _COMPARERS:
        cut += 1
    name_part = text[pos:cut]
    op = ANY
    version: str | None = None
    if cut < end:
        op_end = cut
        while op_end < end and text[op_end] in _COMPARERS:
            op_end += 1
        op = Op(0)
        for ch in text[cut:op_end]:
            if ch == "<":
                op |= Op.LT
            elif ch == ">":
                op |= Op.GT
            elif ch == "=":
                op |= Op.EQ
            else:
                op |= Op.FUZZY | Op.EQ
        version = text[op_end:]
        if op != CHECKSUM and not is_valid(version):
            where = op_end + (invalid_position(version) or 0)
            raise InvalidDependency(f"invalid version {version!r} in dependency", text, where)
        if op == CHECKSUM and not version:
            raise InvalidDependency("missing identity after '><'", text, op_end)
    name, at, tag = name_part.partition("@")
    if not name:
        raise InvalidDependency("missing package name", text, pos)
    for i, ch in enumerate(name):
        if ch in _FORBIDDEN_IN_NAME:
            raise InvalidDependency(f"invalid character {ch!r} in name", text, pos + i)
    if at:
        if not tag:
            raise InvalidDependency("missing repository tag after '@'", text, pos + len(name) + 1)
        for i, ch in enumerate(tag):
            if ch in _FORBIDDEN_IN_NAME:
                where = pos + len(name) + 1 + i
                raise InvalidDependency(f"invalid character {ch!r} in tag", text, where)
    return Dependency(name, op, version, conflict, tag if at else None)


@lru_cache(maxsize=131072)
def parse_cached(text: str) -> Dependency:
    """:func:`parse`, memoised: indexes repeat the same atoms thousands of times."""
    return parse(text)


def parse_list(text: str) -> tuple[Dependency, ...]:
    """Parse a space-separated list of atoms (``D:``, ``p:``, ``i:`` values)."""
    return tuple(parse_cached(atom) for atom in text.split())


def format_list(deps: tuple[Dependency, ...] | list[Dependency]) -> str:
    """The space-separated canonical form of ``deps``."""
    return " ".join(map(str, deps))
