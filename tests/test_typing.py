"""The run-time stand-ins of alpenglow._typing do what typing's objects do at run time."""

from __future__ import annotations

from alpenglow import _typing


def test_cast_returns_its_value() -> None:
    value = object()
    assert _typing.cast("int", value) is value


def test_decorators_return_what_they_decorate() -> None:
    def f() -> int:
        return 1

    assert _typing.overload(f) is f
    assert _typing.dataclass_transform(frozen_default=True)(f) is f


def test_protocol_is_a_plain_base() -> None:
    class Shape(_typing.Protocol):
        def area(self) -> float: ...

    class Square(Shape):
        def area(self) -> float:
            return 4.0

    assert Square().area() == 4.0
    assert not _typing.TYPE_CHECKING
