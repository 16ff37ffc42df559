"""Version ordering against apk-tools' own version.data, and the operator forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpenglow.apk.version import (
    ANY,
    CHECKSUM,
    Op,
    compare,
    compare_mask,
    is_valid,
    matches,
    op_mask,
    op_string,
    validate,
    version_matches,
)
from alpenglow.errors import InvalidVersion
from tests.conftest import SHARED

VERSION_DATA = SHARED / "conformance" / "apk-version" / "version.data"


def _cases(path: Path) -> list[tuple[int, str]]:
    cases = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line:
            cases.append((number, line))
    return cases


@pytest.mark.parametrize(("number", "line"), _cases(VERSION_DATA), ids=str)
def test_version_data(number: int, line: str) -> None:
    parts = line.split()
    if len(parts) == 1:
        text = parts[0]
        if text.startswith("!"):
            assert not is_valid(text[1:]), f"line {number}: {text[1:]} should be invalid"
        else:
            assert is_valid(text), f"line {number}: {text} should be valid"
        return
    a, op, b = parts
    negate = op.startswith("!")
    op = op.removeprefix("!")
    assert matches(a, op, b) is not negate, f"line {number}: {line}"


def test_version_data_is_complete() -> None:
    assert len(_cases(VERSION_DATA)) > 500


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0", "1.0.0", -1),
        ("1.0", "1.0-r0", -1),
        ("1.0a", "1.0.1", -1),
        ("1.0a", "1.0_p1", 1),
        ("1.0_alpha", "1.0_alpha0", -1),
        ("1.0_alpha_beta", "1.0_alpha", -1),
        ("1.0_rc1", "1.0", -1),
        ("1.0_p1", "1.0", 1),
        ("1.0_p1", "1.0-r1", 1),
        ("1.0_p1", "1.0.1", -1),
        ("1.0_hg", "1.0_p", -1),
        ("1.0_git20240101", "1.0_p1", -1),
        ("1.01", "1.1", -1),
        ("1.010", "1.01", 1),
        ("0.1", "0.09", 1),
        ("1.2", "1.10", -1),
        ("01", "1", 0),
        ("1.0-r01", "1.0-r1", 0),
        ("1.0~abc", "1.0-r1", 1),
        ("1.0~abc-r1", "1.0-r2", 1),
        ("1.0~ab", "1.0~abc", -1),
        ("1.0-r1", "1.0.0-r0", -1),
        ("1.0.0_rc1", "1.0", 1),
        ("2.0_rc1", "1.99", 1),
        ("1.0_rc", "1.0_rc0", -1),
        ("1.10a", "1.9z", 1),
    ],
)
def test_compare_table_from_formats(a: str, b: str, expected: int) -> None:
    assert compare(a, b) == expected
    assert compare(b, a) == -expected


@pytest.mark.parametrize(
    "text",
    [
        "1.0_",
        "1.0-r",
        "1.0.a",
        "1a.1",
        "0.1a1",
        "1_0",
        ".1",
        "1..2",
        "1.0-r1-r2",
        "1.0~AB",
        "1.0~ab~cd",
        "1.0_foo",
        "foo",
        "",
    ],
)
def test_invalid_versions(text: str) -> None:
    assert not is_valid(text)
    with pytest.raises(InvalidVersion):
        validate(text)


def test_validate_returns_valid_version() -> None:
    assert validate("1.2.3_rc1-r4") == "1.2.3_rc1-r4"


@pytest.mark.parametrize(
    ("op", "mask"),
    [
        ("<", Op.LT),
        ("<=", Op.LT | Op.EQ),
        ("=", Op.EQ),
        (">=", Op.GT | Op.EQ),
        (">", Op.GT),
        ("~", Op.FUZZY | Op.EQ),
        ("<~", Op.LT | Op.EQ | Op.FUZZY),
        (">~", Op.GT | Op.EQ | Op.FUZZY),
        ("><", CHECKSUM),
    ],
)
def test_operator_masks_round_trip(op: str, mask: Op) -> None:
    assert op_mask(op) == mask
    assert op_string(mask) == op


def test_op_string_of_any_is_empty() -> None:
    assert op_string(ANY) == ""
    assert op_string(Op.CONFLICT | Op.GT) == ">"


@pytest.mark.parametrize("op", ["", "!", "<x"])
def test_unknown_operator(op: str) -> None:
    with pytest.raises(ValueError, match="operator"):
        op_mask(op)


def test_fuzzy_matches_at_token_boundary_only() -> None:
    assert matches("1.6.3", "~", "1.6")
    assert not matches("1.60", "~", "1.6")
    assert matches("1.5", "<~", "1.6")
    assert matches("1.6.1", ">~", "1.6")
    assert compare_mask("1.6.3", "1.6", fuzzy=True) == Op.EQ


def test_any_and_conflict_masks() -> None:
    assert version_matches("anything", ANY, "")
    assert not version_matches("1.0", Op.EQ | Op.CONFLICT, "1.0")
    assert version_matches("1.1", Op.EQ | Op.CONFLICT, "1.0")
