"""The names of :mod:`typing` that ``alpenglow apk``'s start-up path needs at run time,
without importing :mod:`typing` (9 million instructions, about 4% of a simulated ``apk add``
on Alpine's main index, measured with callgrind).

Type checkers see :mod:`typing`'s own objects: under ``TYPE_CHECKING`` (which mypy and ruff
recognise by its name) they are imported from it. At run time ``cast`` returns its value,
``overload`` and ``dataclass_transform`` return what they decorate, and ``Protocol`` is a
plain base class: what :mod:`typing` would do with them at run time, less the bookkeeping
nothing here reads. Names used only in annotations (``Any``, ``TextIO``...) are imported
from :mod:`typing` under ``TYPE_CHECKING`` where they are used.
"""

from __future__ import annotations

__all__ = ["TYPE_CHECKING", "Protocol", "cast", "dataclass_transform", "overload"]

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Protocol, cast, dataclass_transform, overload
else:

    class Protocol:
        """Base of structural interfaces (:class:`typing.Protocol` to type checkers)."""

        __slots__ = ()

    def cast(typ, value, /):
        return value

    def overload(func, /):
        return func

    def dataclass_transform(**kwargs):
        return overload
