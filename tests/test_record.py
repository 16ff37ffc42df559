"""A record behaves as the dataclass it stands for: the same methods, the same answers from
the dataclasses helpers, the same errors."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
from typing import ClassVar

import pytest

from alpenglow._record import field, fields_of, record, replace


@record
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()
    note: str = field(default="", repr=False, compare=False)
    KIND: ClassVar[str] = "point"


@dataclasses.dataclass(frozen=True, slots=True)
class DataPoint:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()
    note: str = dataclasses.field(default="", repr=False, compare=False)
    KIND: ClassVar[str] = "point"


@record(eq=False)
class Handle:
    value: int


@record(frozen=False, slots=False)
class Settings:
    level: int = 1
    names: list[str] = field(default_factory=list)


@record
class Keys:
    name: str
    table: dict[str, bytes] = field(default_factory=dict, hash=False)


def test_methods_match_the_dataclass() -> None:
    ours, theirs = Point(1, 2, ("a",), "n"), DataPoint(1, 2, ("a",), "n")
    assert repr(ours).replace("Point", "DataPoint") == repr(theirs)
    assert ours == Point(1, 2, ("a",), "other")  # note is not compared
    assert ours != Point(2)
    assert ours.__eq__((1, 2, ("a",), "n")) is NotImplemented  # another type: never equal
    assert hash(ours) == hash(Point(1, 2, ("a",)))
    assert Point.__match_args__ == DataPoint.__match_args__
    assert Point.__slots__ == ("x", "y", "tags", "note")  # type: ignore[attr-defined]
    assert fields_of(Point) == ("x", "y", "tags", "note")
    assert Point.KIND == "point"
    assert Point(3).y == 0
    assert Point.__qualname__ == "Point"
    assert not hasattr(ours, "__dict__")


def test_frozen_like_a_dataclass() -> None:
    point = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError, match="'x'"):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.y


def test_constructor_errors_like_a_dataclass() -> None:
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, z=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="follows default"):

        @record
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_dataclasses_helpers_work_on_records() -> None:
    point = Point(1, 2)
    assert dataclasses.is_dataclass(point)
    assert [f.name for f in dataclasses.fields(point)] == ["x", "y", "tags", "note"]
    assert dataclasses.replace(point, y=5) == Point(1, 5)
    assert dataclasses.asdict(point) == {"x": 1, "y": 2, "tags": (), "note": ""}
    assert Point.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_replace() -> None:
    assert replace(Point(1), y=3, note="n") == Point(1, 3, (), "n")
    with pytest.raises(TypeError, match="no field 'z'"):
        replace(Point(1), z=3)


def test_copy_and_pickle() -> None:
    point = Point(1, 2, ("t",), "n")
    for twin in (copy.copy(point), copy.deepcopy(point), pickle.loads(pickle.dumps(point))):
        assert twin == point
        assert twin.note == "n"


def test_identity_equality() -> None:
    a = Handle(1)
    assert a == a  # noqa: PLR0124
    assert a != Handle(1)
    assert {a, Handle(1)} != {a}


def test_mutable_record() -> None:
    one, two = Settings(), Settings()
    one.names.append("x")
    assert two.names == []  # a factory per instance
    one.level = 3
    assert one == Settings(3, ["x"])
    assert Settings.level == 1  # the default stays a class attribute, as in a dataclass
    assert Settings.__hash__ is None
    assert "names" not in Settings.__dict__


def test_hash_leaves_out_what_it_is_told_to() -> None:
    assert hash(Keys("a", {"k": b"1"})) == hash(Keys("a"))
    assert Keys("a", {"k": b"1"}) != Keys("a")


def test_apk_start_up_does_not_import_dataclasses() -> None:
    code = (
        "import sys, alpenglow.cli.apk, alpenglow.cli.apk.add, alpenglow.apk.index_cache; "
        "print(sorted({'dataclasses', 'typing', 'pathlib', 'inspect'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_init_binds_like_the_compiled_one_before_and_after_it_is_compiled() -> None:
    @record
    class Item:
        name: str
        count: int = 1
        tags: list[str] = field(default_factory=list)

    for _ in range(3):  # binding by hand first, then compiled (after 64 calls)
        made = [Item("a") for _ in range(40)]
        assert made[0] == Item("a", 1, []) == Item(name="a", tags=[], count=1)
        assert made[0].tags is not made[1].tags
        with pytest.raises(TypeError, match="missing"):
            Item()  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="positional"):
            Item("a", 1, [], 4)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="multiple values"):
            Item("a", name="b")  # type: ignore[misc]
        with pytest.raises(TypeError, match="unexpected keyword"):
            Item("a", colour="red")  # type: ignore[call-arg]
    assert Item.__init__.__qualname__.endswith("<locals>.Item.__init__")
