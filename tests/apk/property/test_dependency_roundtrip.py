"""format(parse(s)) == s for canonical atoms."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alpenglow.apk.dependency import parse
from tests.apk.property.strategies import operators, prefixed_names, tags, versions


@st.composite
def canonical_atoms(draw: st.DrawFn) -> str:
    text = "!" if draw(st.booleans()) else ""
    text += draw(prefixed_names)
    if draw(st.booleans()):
        text += "@" + draw(tags)
    choice = draw(st.integers(0, 3))
    if choice == 1:
        text += draw(operators) + draw(versions())
    elif choice == 2:
        text += "><Q1" + draw(st.from_regex(r"[A-Za-z0-9+/]{27}=", fullmatch=True))
    return text


@given(canonical_atoms())
def test_format_parse_round_trip(text: str) -> None:
    assert str(parse(text)) == text
