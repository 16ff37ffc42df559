"""apk version strings: validation, ordering and operator matching.

The grammar is ``number{.number}...{letter}{_suffix{number}}...{~hash}{-rN}``. Comparison
walks both strings token by token, exactly as apk-tools does, so that every ordering apk
decides is decided the same way here, including its answers for invalid strings.

>>> compare("1.0", "1.0-r0")
-1
>>> matches("3.6.9", "~", "3.6")
True
>>> is_valid("1.0_rc1-r2"), is_valid("1.0_foo")
(True, False)
"""

from __future__ import annotations

import enum
from functools import lru_cache

from alpenglow.errors import InvalidVersion

__all__ = [
    "ANY",
    "CHECKSUM",
    "Op",
    "compare",
    "compare_mask",
    "invalid_position",
    "is_valid",
    "matches",
    "op_mask",
    "op_string",
    "validate",
    "version_matches",
]


def __dir__() -> list[str]:
    return __all__


class Op(enum.IntFlag):
    """Comparison results and dependency operators share one bit mask, as in apk."""

    EQ = 1
    LT = 2
    GT = 4
    FUZZY = 8
    CONFLICT = 16


ANY = Op.EQ | Op.LT | Op.GT
"""The mask of a dependency without a version: every version matches."""

CHECKSUM = Op.LT | Op.GT
"""The mask of a ``name><Q1...`` identity pin."""

# Token types, in the order that decides "which side has more components".
_INITIAL, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _HASH, _REVISION, _END, _INVALID = range(9)

# Suffix ranks: pre-release suffixes sort below "no suffix" (_NONE), the rest above it.
_NONE = 5
_SUFFIXES = {
    "alpha": 1,
    "beta": 2,
    "pre": 3,
    "rc": 4,
    "cvs": 6,
    "svn": 7,
    "git": 8,
    "hg": 9,
    "p": 10,
}

_DIGITS = frozenset("0123456789")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_HEX = frozenset("0123456789abcdef")

# A token is (type, sort key, raw text). The raw text matters for DIGIT tokens with a
# leading zero (compared as strings) and for HASH tokens.
_Token = tuple[int, int | str, str]


def _span(text: str, pos: int, allowed: frozenset[str]) -> int:
    end = pos
    n = len(text)
    while end < n and text[end] in allowed:
        end += 1
    return end


@lru_cache(maxsize=65536)
def _tokenize(text: str) -> tuple[_Token, ...]:
    """Split ``text`` into tokens; the last one is always END or INVALID."""
    tokens: list[_Token] = []
    end = _span(text, 0, _DIGITS)
    if end == 0:
        return ((_INVALID, 0, ""),)
    tokens.append((_INITIAL, int(text[:end]), text[:end]))
    pos = end
    prev = _INITIAL
    n = len(text)
    while pos < n:
        ch = text[pos]
        kind = _INVALID
        bad = pos
        if ch in _LOWER:
            if prev <= _DIGIT:
                kind = _LETTER
                tokens.append((kind, ch, ch))
                pos += 1
        elif ch == "." or ch in _DIGITS:
            start = pos + 1 if ch == "." else pos
            if prev <= _DIGIT and ch == ".":
                kind = _DIGIT
            elif prev == _SUFFIX and ch != ".":
                kind = _SUFFIX_NO
            if kind != _INVALID:
                end = _span(text, start, _DIGITS)
                if end == start:
                    kind = _INVALID
                    bad = start
                else:
                    raw = text[start:end]
                    tokens.append((kind, int(raw), raw))
                    pos = end
        elif ch == "_":
            if prev <= _SUFFIX_NO:
                end = _span(text, pos + 1, _LOWER)
                rank = _SUFFIXES.get(text[pos + 1 : end])
                bad = pos + 1
                if rank is not None:
                    kind = _SUFFIX
                    tokens.append((kind, rank, text[pos + 1 : end]))
                    pos = end
        elif ch == "~":
            if prev < _HASH:
                end = _span(text, pos + 1, _HEX)
                bad = end
                if end > pos + 1:
                    kind = _HASH
                    tokens.append((kind, text[pos + 1 : end], text[pos + 1 : end]))
                    pos = end
        elif ch == "-" and prev < _REVISION and text.startswith("-r", pos):
            end = _span(text, pos + 2, _DIGITS)
            bad = pos + 2
            if end > pos + 2:
                kind = _REVISION
                tokens.append((kind, int(text[pos + 2 : end]), text[pos + 2 : end]))
                pos = end
        if kind == _INVALID:
            tokens.append((_INVALID, bad, ""))
            return tuple(tokens)
        prev = kind
    tokens.append((_END, "", ""))
    return tuple(tokens)


def _token_order(a: _Token, b: _Token) -> Op:
    """Order two tokens of the same type."""
    kind = a[0]
    if kind == _DIGIT and (a[2].startswith("0") or b[2].startswith("0")):
        # A leading zero makes the component compare as a string (Gentoo rule).
        x: int | str = a[2]
        y: int | str = b[2]
    elif kind == _HASH:
        x, y = a[2], b[2]
    else:
        x, y = a[1], b[1]
    if x < y:  # type: ignore[operator]
        return Op.LT
    if x > y:  # type: ignore[operator]
        return Op.GT
    return Op.EQ


def compare_mask(a: str, b: str, fuzzy: bool = False) -> Op:
    """Compare two versions and return ``Op.LT``, ``Op.EQ`` or ``Op.GT``.

    With ``fuzzy``, ``a`` also counts as equal when ``b`` ends while every token so far was
    equal (``3.6.9`` against ``3.6``), which is what ``name~3.6`` asks for.
    """
    ta = _tokenize(a)
    tb = _tokenize(b)
    i = 0
    while True:
        x = ta[i]
        y = tb[i]
        if x[0] != y[0] or x[0] >= _END:
            break
        result = _token_order(x, y)
        if result != Op.EQ:
            return result
        i += 1
    if x[0] == y[0]:
        return Op.EQ
    if fuzzy and y[0] == _END:
        return Op.EQ
    # Equal so far: the longer version is newer, unless what follows is a pre-release suffix.
    if x[0] == _SUFFIX and isinstance(x[1], int) and x[1] < _NONE:
        return Op.LT
    if y[0] == _SUFFIX and isinstance(y[1], int) and y[1] < _NONE:
        return Op.GT
    if x[0] > y[0]:
        return Op.LT
    if y[0] > x[0]:
        return Op.GT
    return Op.EQ


def compare(a: str, b: str) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    >>> compare("1.2", "1.10"), compare("01", "1"), compare("1.0_p1", "1.0")
    (-1, 0, 1)
    """
    result = compare_mask(a, b)
    if result == Op.LT:
        return -1
    if result == Op.GT:
        return 1
    return 0


def is_valid(version: str) -> bool:
    """Whether ``version`` follows apk's version grammar."""
    return _tokenize(version)[-1][0] == _END


def invalid_position(version: str) -> int | None:
    """Offset of the first character that makes ``version`` invalid, or None if valid.

    >>> invalid_position("1..2"), invalid_position("1.0_foo"), invalid_position("1.2")
    (2, 4, None)
    """
    last = _tokenize(version)[-1]
    if last[0] == _END:
        return None
    return last[1] if isinstance(last[1], int) else 0


def validate(version: str) -> str:
    """Return ``version`` if it is valid, else raise :class:`InvalidVersion`."""
    if not is_valid(version):
        raise InvalidVersion(f"invalid version: {version!r}")
    return version


_OP_STRINGS = {
    Op.LT: "<",
    Op.LT | Op.EQ: "<=",
    Op.LT | Op.EQ | Op.FUZZY: "<~",
    Op.EQ | Op.FUZZY: "~",
    Op.FUZZY: "~",
    Op.EQ: "=",
    Op.GT | Op.EQ: ">=",
    Op.GT | Op.EQ | Op.FUZZY: ">~",
    Op.GT: ">",
    CHECKSUM: "><",
    ANY: "",
}


def op_string(mask: Op | int) -> str:
    """The operator text apk prints for a dependency mask (conflict bit ignored)."""
    return _OP_STRINGS.get(Op(mask & ~Op.CONFLICT), "?")


def op_mask(op: str) -> Op:
    """The mask for an operator such as ``<=`` or ``>~``; raises ``ValueError`` if unknown."""
    mask = Op(0)
    for ch in op:
        if ch == "<":
            mask |= Op.LT
        elif ch == ">":
            mask |= Op.GT
        elif ch == "=":
            mask |= Op.EQ
        elif ch == "~":
            mask |= Op.FUZZY | Op.EQ
        else:
            raise ValueError(f"unknown version operator {op!r}")
    if not mask:
        raise ValueError("empty version operator")
    return mask


def version_matches(version: str, mask: Op | int, want: str) -> bool:
    """Whether ``version`` satisfies ``mask`` against ``want`` (apk's matching rule).

    ``ANY`` matches everything; the conflict bit inverts the answer.
    """
    if mask & ANY == ANY:
        ok = True
    else:
        ok = bool(compare_mask(version, want, bool(mask & Op.FUZZY)) & mask)
    if mask & Op.CONFLICT:
        ok = not ok
    return ok


def matches(a: str, op: str, b: str) -> bool:
    """Whether ``a OP b`` holds, for any operator apk accepts (``<``, ``<=``, ``~``, ``>~``...).

    >>> matches("1.0", "<", "1.0-r0"), matches("3.6.0", "~", "3.6"), matches("3.8", "~", "3.8.1")
    (True, True, False)
    """
    return version_matches(a, op_mask(op), b)
