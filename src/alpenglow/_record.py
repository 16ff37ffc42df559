"""Records: dataclasses without the cost of importing :mod:`dataclasses` at start-up.

``@record`` makes what ``@dataclass(frozen=True, slots=True)`` makes: an ``__init__`` with
the fields in order and their defaults, ``__repr__``, ``__eq__`` and ``__hash__`` over the
fields, ``__match_args__``, slots, and assignment refused with
:class:`dataclasses.FrozenInstanceError`. ``@record(eq=False)`` keeps identity equality;
``@record(frozen=False, slots=False)`` makes a mutable record (unhashable, like a
dataclass with ``eq=True``). :func:`field` gives a default factory or leaves a field out of
``repr``, ``hash`` or comparison.

Why not :mod:`dataclasses` itself: importing it pulls in :mod:`inspect` (and with it
``ast``, ``dis`` and ``tokenize``), and each class it processes compiles half a dozen
methods from source. Measured on ``alpenglow apk add``, that was about a fifth of the whole
run's instructions, for records that are the same either way. Here only ``__init__`` is
compiled (it must be fast: parsers make thousands of records), and only once a class has
made 64 records (before that a shared one binds the arguments: most records on a command's
path are made a few times, or never); the other methods are shared functions driven by the
class's field list.

The classes are still dataclasses to every tool: type checkers read the decorator through
:func:`typing.dataclass_transform`, and :func:`dataclasses.fields`, :func:`dataclasses.replace`,
:func:`dataclasses.asdict` and :func:`dataclasses.is_dataclass` work on them
(``__dataclass_fields__`` is made, with :mod:`dataclasses` imported, the first time it is
looked up). Code on the start-up path uses :func:`replace` from here.

>>> @record
... class Point:
...     x: int
...     y: int = 0
>>> Point(1), Point(1) == Point(1, 0), replace(Point(1), y=2)
(Point(x=1, y=0), True, Point(x=1, y=2))
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

from alpenglow._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform, overload
else:
    from alpenglow._typing import dataclass_transform, overload

__all__ = ["field", "fields_of", "record", "replace"]


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    T = TypeVar("T")

_MISSING: Any = object()


class _Field:
    """A field's options, as :func:`field` gives them."""

    __slots__ = ("compare", "default", "default_factory", "hash", "repr")

    def __init__(
        self,
        default: Any,
        default_factory: Callable[[], Any] | Any,
        repr: bool,
        hash: bool | None,
        compare: bool,
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.hash = hash
        self.compare = compare


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | Any = _MISSING,
    repr: bool = True,
    hash: bool | None = None,
    compare: bool = True,
) -> Any:
    """Options of one field (like :func:`dataclasses.field`)."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, default_factory, repr, hash, compare)


class _Spec:
    """One field of a record: its name, annotation and options."""

    __slots__ = ("name", "options", "type")

    def __init__(self, name: str, type: object, options: _Field) -> None:
        self.name = name
        self.type = type
        self.options = options


def _is_classvar(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return isinstance(text, str) and text.replace("typing.", "").startswith("ClassVar")


def _specs(cls: type) -> list[_Spec]:
    specs: dict[str, _Spec] = {}
    for base in reversed(cls.__mro__[1:]):
        for spec in getattr(base, "__record_fields__", ()):
            specs[spec.name] = spec
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - inspect is what we avoid
    for name, annotation in own.items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, _MISSING)
        options = value if isinstance(value, _Field) else field(default=value)
        specs[name] = _Spec(name, annotation, options)
    return list(specs.values())


def _init(cls: type, specs: list[_Spec], frozen: bool) -> Callable[..., None]:
    """``__init__``, compiled from source as :mod:`dataclasses` does (a generic one that
    loops over the fields is several times slower per record)."""
    namespace: dict[str, Any] = {"_set": object.__setattr__, "_MISSING": _MISSING}
    params = []
    body = []
    seen_default = False
    for i, spec in enumerate(specs):
        options = spec.options
        value = spec.name
        if options.default_factory is not _MISSING:
            namespace[f"_f{i}"] = options.default_factory
            params.append(f"{spec.name}=_MISSING")
            value = f"_f{i}() if {spec.name} is _MISSING else {spec.name}"
            seen_default = True
        elif options.default is not _MISSING:
            namespace[f"_d{i}"] = options.default
            params.append(f"{spec.name}=_d{i}")
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {spec.name!r} follows default argument")
        else:
            params.append(spec.name)
        if frozen:
            body.append(f"    _set(self, {spec.name!r}, {value})")
        else:
            body.append(f"    self.{spec.name} = {value}")
    source = f"def __init__(self, {', '.join(params)}) -> None:\n" + ("\n".join(body) or "    pass")
    exec(source, namespace)
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


_COMPILE_AFTER = 64
"""Calls of a record's ``__init__`` after which it is compiled (see :func:`_warming_init`)."""


def _warming_init(cls: type, specs: list[_Spec], frozen: bool) -> Callable[..., None]:
    """An ``__init__`` that binds its arguments itself for the first calls, then replaces
    itself with the one :func:`_init` compiles. Compiling costs about as much as a hundred
    calls of the slow one (0.8 million instructions for ten fields), and most records on a
    command's path are made a few times, or never; those made by the thousand (parsed
    dependencies) soon get the fast one."""
    names = [spec.name for spec in specs]
    calls = 0

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls > _COMPILE_AFTER:
            fast = _init(cls, specs, frozen)
            type.__setattr__(cls, "__init__", fast)
            fast(self, *args, **kwargs)
            return
        where = f"{cls.__qualname__}.__init__()"
        if len(args) > len(specs):
            raise TypeError(
                f"{where} takes {len(specs) + 1} positional arguments"
                f" but {len(args) + 1} were given"
            )
        for name in names[: len(args)]:
            if name in kwargs:
                raise TypeError(f"{where} got multiple values for argument {name!r}")
        values = list(args)
        for spec in specs[len(args) :]:
            options = spec.options
            if spec.name in kwargs:
                values.append(kwargs.pop(spec.name))
            elif options.default_factory is not _MISSING:
                values.append(options.default_factory())
            elif options.default is not _MISSING:
                values.append(options.default)
            else:
                raise TypeError(f"{where} missing required argument: {spec.name!r}")
        if kwargs:
            raise TypeError(f"{where} got an unexpected keyword argument {next(iter(kwargs))!r}")
        set_field = object.__setattr__ if frozen else setattr
        for name, value in zip(names, values, strict=True):
            set_field(self, name, value)

    init.__name__ = "__init__"
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _values(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return attrgetter(*names)


def _repr(self: Any) -> str:
    cls = type(self)
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in cls.__record_repr__)
    return f"{cls.__qualname__}({shown})"


def _eq(self: Any, other: Any) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    values = self.__record_compare__
    return bool(values(self) == values(other))


def _hash(self: Any) -> int:
    return hash(self.__record_hash__(self))


def _frozen_setattr(self: Any, name: str, value: object) -> None:
    from dataclasses import FrozenInstanceError

    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    from dataclasses import FrozenInstanceError

    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, spec.name) for spec in type(self).__record_fields__]


def _setstate(self: Any, state: list[Any]) -> None:
    for spec, value in zip(type(self).__record_fields__, state, strict=True):
        object.__setattr__(self, spec.name, value)


class _DataclassFields:
    """``__dataclass_fields__`` (and ``__dataclass_params__``), made on first look-up by
    running :func:`dataclasses.dataclass` over a twin of the record's fields."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute

    def __get__(self, obj: object, owner: type) -> Any:
        import dataclasses

        namespace: dict[str, Any] = {"__annotations__": {}}
        for spec in owner.__record_fields__:  # type: ignore[attr-defined]
            options = spec.options
            namespace["__annotations__"][spec.name] = spec.type
            namespace[spec.name] = dataclasses.field(
                default=options.default if options.default is not _MISSING else dataclasses.MISSING,
                default_factory=(
                    options.default_factory
                    if options.default_factory is not _MISSING
                    else dataclasses.MISSING
                ),
                repr=options.repr,
                hash=options.hash,
                compare=options.compare,
            )
        params = owner.__record_params__  # type: ignore[attr-defined]
        twin: Any = dataclasses.dataclass(type(owner.__name__, (), namespace), **params)
        for attribute in ("__dataclass_fields__", "__dataclass_params__"):
            setattr(owner, attribute, getattr(twin, attribute))
        return getattr(owner, self.attribute)


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(  # noqa: F811 - an overload (typing.overload is not imported at run time)
    *, frozen: bool = True, slots: bool = True, eq: bool = True
) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(  # noqa: F811 - the implementation of the overloads above
    cls: type[T] | None = None, /, *, frozen: bool = True, slots: bool = True, eq: bool = True
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make ``cls`` a record (see the module's docstring)."""

    def wrap(cls: type[T]) -> type[T]:
        return _make(cls, frozen=frozen, slots=slots, eq=eq)

    return wrap if cls is None else wrap(cls)


def _make(cls: type[T], *, frozen: bool, slots: bool, eq: bool) -> type[T]:
    specs = _specs(cls)
    defaulted = False
    for spec in specs:
        options = spec.options
        if options.default is not _MISSING or options.default_factory is not _MISSING:
            defaulted = True
        elif defaulted:
            raise TypeError(f"non-default argument {spec.name!r} follows default argument")
    names = [spec.name for spec in specs]
    namespace = dict(cls.__dict__)
    for name in names:
        value = namespace.get(name, _MISSING)
        if isinstance(value, _Field):
            if slots or value.default is _MISSING:
                namespace.pop(name)
            else:
                namespace[name] = value.default
        elif slots and value is not _MISSING:
            namespace.pop(name)
    namespace["__qualname__"] = cls.__qualname__
    namespace["__record_fields__"] = tuple(specs)
    namespace["__record_params__"] = {"frozen": frozen, "eq": eq}
    namespace["__record_repr__"] = tuple(s.name for s in specs if s.options.repr)
    namespace["__match_args__"] = tuple(names)
    namespace["__dataclass_fields__"] = _DataclassFields("__dataclass_fields__")
    namespace["__dataclass_params__"] = _DataclassFields("__dataclass_params__")
    namespace["__repr__"] = _repr
    if eq:
        namespace["__record_compare__"] = staticmethod(
            _values([s.name for s in specs if s.options.compare])
        )
        namespace["__eq__"] = _eq
        if frozen:
            hashed = [
                s.name
                for s in specs
                if (s.options.hash if s.options.hash is not None else s.options.compare)
            ]
            namespace["__record_hash__"] = staticmethod(_values(hashed))
            namespace["__hash__"] = _hash
        else:
            namespace["__hash__"] = None
    if frozen:
        namespace["__setattr__"] = _frozen_setattr
        namespace["__delattr__"] = _frozen_delattr
    if slots:
        namespace["__slots__"] = tuple(n for n in names if n not in _inherited_slots(cls))
        namespace.pop("__dict__", None)
        namespace.pop("__weakref__", None)
        if frozen:
            namespace["__getstate__"] = _getstate
            namespace["__setstate__"] = _setstate
        made: type[T] = type(cls.__name__, cls.__bases__, namespace)
    else:
        for key, value in namespace.items():
            if key not in cls.__dict__ or cls.__dict__[key] is not value:
                setattr(cls, key, value)
        for key in names:
            if key in cls.__dict__ and key not in namespace:
                delattr(cls, key)  # a field() with a factory: no class attribute
        made = cls
    setattr(made, "__init__", _warming_init(made, specs, frozen))  # noqa: B010 - not a plain attribute to mypy
    return made


def fields_of(cls: type) -> tuple[str, ...]:
    """The names of a record class's fields, in order (its slots, for a slotted one)."""
    return tuple(spec.name for spec in cls.__record_fields__)  # type: ignore[attr-defined]


def _inherited_slots(cls: type) -> set[str]:
    found: set[str] = set()
    for base in cls.__mro__[1:]:
        found.update(getattr(base, "__slots__", ()))
    return found


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of record ``obj`` with ``changes`` (like :func:`dataclasses.replace`)."""
    specs = type(obj).__record_fields__  # type: ignore[attr-defined]
    for spec in specs:
        if spec.name not in changes:
            changes[spec.name] = getattr(obj, spec.name)
    if len(changes) != len(specs):
        unknown = sorted(set(changes) - {spec.name for spec in specs})
        raise TypeError(f"{type(obj).__name__} has no field {unknown[0]!r}")
    return type(obj)(**changes)
