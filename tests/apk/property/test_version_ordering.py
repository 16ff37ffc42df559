"""Laws of version ordering on generated valid versions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alpenglow.apk.version import compare, is_valid
from tests.apk.property.strategies import versions


@given(versions())
def test_generated_versions_are_valid(v: str) -> None:
    assert is_valid(v)


@given(versions())
def test_reflexive(v: str) -> None:
    assert compare(v, v) == 0


@given(versions(), versions())
def test_antisymmetric(a: str, b: str) -> None:
    assert compare(a, b) == -compare(b, a)


@settings(max_examples=300)
@given(st.lists(versions(), min_size=3, max_size=3))
def test_transitive(vs: list[str]) -> None:
    a, b, c = sorted(vs, key=lambda v: (v,))
    ab, bc, ac = compare(a, b), compare(b, c), compare(a, c)
    if ab <= 0 and bc <= 0:
        assert ac <= 0
    if ab >= 0 and bc >= 0:
        assert ac >= 0
    if ab == 0 and bc == 0:
        assert ac == 0
