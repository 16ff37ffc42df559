"""apk's command line parsed without argparse, for start-up time.

Importing :mod:`argparse` and building a parser (which formats its usage, compiling a dozen
regular expressions, and pulls in :mod:`gettext`, :mod:`locale` and :mod:`shutil`) costs an
``alpenglow apk`` run a good part of its start-up. :class:`OptionTable` records what an
applet's ``configure`` declares through the small part of the ``ArgumentParser`` interface
the applets use, and :meth:`OptionTable.parse` reads a command line the way
``parse_intermixed_args`` would, giving an :class:`Options` with the same attributes.

It only answers when it is sure to agree with argparse: a declaration it does not model
(custom actions, ``choices``, exclusive groups, ...) or a command line that needs argparse's
judgement (``--help``, an unknown or abbreviated option, a missing or bad value, ``--``, an
argument that looks like an option) raises :class:`Unsupported`, and the caller hands the
command line to argparse, which then parses it or reports the error in its own words.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

from alpenglow._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

__all__ = ["OptionTable", "Options", "Unsupported"]


def __dir__() -> list[str]:
    return __all__


class Unsupported(Exception):
    """The declaration or the command line is one for argparse."""


class Options(SimpleNamespace):
    """Parsed options and positional arguments, read like an ``argparse.Namespace``."""

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__


# the argparse actions modelled here
_ACTIONS = frozenset({"store", "store_true", "store_false", "store_const", "append", "count"})


class _Action:
    __slots__ = ("action", "const", "default", "dest", "nargs", "type")

    def __init__(
        self,
        action: str,
        dest: str,
        default: Any,
        const: Any,
        type_: Callable[[str], Any] | None,
        nargs: str | None,
    ) -> None:
        self.action = action
        self.dest = dest
        self.default = default
        self.const = const
        self.type = type_
        self.nargs = nargs

    @property
    def takes_value(self) -> bool:
        return self.action in ("store", "append")


class OptionTable:
    """The options an applet declares, recorded through ``ArgumentParser``'s interface
    (``add_argument``, ``add_argument_group``, ``set_defaults``)."""

    def __init__(self) -> None:
        self._options: dict[str, _Action] = {}
        self._actions: list[_Action] = []
        self._positionals: list[_Action] = []
        self._defaults: dict[str, Any] = {}

    def add_argument_group(self, *args: Any, **kwargs: Any) -> OptionTable:
        return self

    def add_mutually_exclusive_group(self, *args: Any, **kwargs: Any) -> OptionTable:
        raise Unsupported("exclusive groups")

    def set_defaults(self, **kwargs: Any) -> None:
        self._defaults.update(kwargs)
        for action in self._actions:
            if action.dest in kwargs:
                action.default = kwargs[action.dest]

    def add_argument(
        self,
        *names: str,
        action: Any = None,
        nargs: Any = None,
        const: Any = None,
        default: Any = None,
        type: Callable[[str], Any] | None = None,
        dest: str | None = None,
        metavar: Any = None,
        help: Any = None,
        **other: Any,
    ) -> None:
        if other:
            raise Unsupported(f"add_argument({', '.join(other)}=...)")
        kind = "store" if action is None else action
        if not isinstance(kind, str) or kind not in _ACTIONS:
            raise Unsupported(f"action {action!r}")
        if not names:
            raise Unsupported("no option names")
        positional = not names[0].startswith("-")
        if positional:
            if len(names) != 1 or kind != "store" or nargs not in ("*", "+"):
                raise Unsupported("positional argument")
            name = dest or names[0]
            if default is None:
                default = self._defaults.get(name)
            entry = _Action("store", name, default, None, type, nargs)
            self._positionals.append(entry)
            self._actions.append(entry)
            return
        if nargs is not None and not (nargs == "?" and kind == "store"):
            raise Unsupported(f"nargs={nargs!r}")
        if dest is None:
            longs = [n for n in names if n.startswith("--")]
            dest = (longs[0] if longs else names[0]).lstrip("-").replace("-", "_")
        if default is None:
            if kind == "store_true":
                default = False
            elif kind == "store_false":
                default = True
            if dest in self._defaults:
                default = self._defaults[dest]
        if kind == "store_true":
            const = True
        elif kind == "store_false":
            const = False
        entry = _Action(kind, dest, default, const, type, nargs)
        for n in names:
            if not n.startswith("-") or n in self._options or n in ("-", "--"):
                raise Unsupported(f"option name {n!r}")
            if not n.startswith("--") and len(n) != 2:
                raise Unsupported(f"option name {n!r}")
            self._options[n] = entry
        self._actions.append(entry)

    # -- parsing -----------------------------------------------------------------------

    def parse(self, args: list[str]) -> Options:
        """``parse_intermixed_args(args)`` for the command lines argparse reads without
        complaint; :class:`Unsupported` for everything else."""
        # the namespace starts with the defaults: the first declaration of a destination
        # gives it, then set_defaults (argparse's order)
        values: dict[str, Any] = {}
        for action in self._actions:
            if action.dest not in values:
                values[action.dest] = action.default
        for dest, default in self._defaults.items():
            values.setdefault(dest, default)
        positional: list[str] = []
        options = self._options
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if not arg.startswith("-") or arg == "-":
                positional.append(arg)
                continue
            if arg.startswith("--"):
                name, eq, inline = arg.partition("=")
                opt = options.get(name)
                if opt is None or opt.nargs == "?":
                    raise Unsupported(arg)
                if not opt.takes_value:
                    if eq:
                        raise Unsupported(arg)
                    self._apply(opt, None, values)
                    continue
                if not eq:
                    if i >= len(args) or args[i].startswith("-"):
                        raise Unsupported(arg)
                    inline = args[i]
                    i += 1
                self._apply(opt, inline, values)
                continue
            if "=" in arg:
                raise Unsupported(arg)
            j = 1
            while j < len(arg):
                opt = options.get("-" + arg[j])
                if opt is None or opt.nargs == "?":
                    raise Unsupported(arg)
                j += 1
                if not opt.takes_value:
                    self._apply(opt, None, values)
                    continue
                if j < len(arg):
                    value = arg[j:]
                else:
                    if i >= len(args) or args[i].startswith("-"):
                        raise Unsupported(arg)
                    value = args[i]
                    i += 1
                self._apply(opt, value, values)
                break
        if len(self._positionals) > 1:
            raise Unsupported("several positional arguments")
        if self._positionals:
            spec = self._positionals[0]
            if spec.nargs == "+" and not positional:
                raise Unsupported("missing arguments")
            values[spec.dest] = [self._convert(spec, p) for p in positional]
        elif positional:
            raise Unsupported("unexpected arguments")
        # a string default left in place goes through the option's type (argparse does)
        for action in self._actions:
            default = action.default
            if (
                action.type is not None
                and action.takes_value
                and isinstance(default, str)
                and values[action.dest] is default
            ):
                values[action.dest] = self._convert(action, default)
        out = Options()
        out.__dict__.update(values)
        return out

    @staticmethod
    def _convert(action: _Action, text: str) -> Any:
        if action.type is None:
            return text
        try:
            return action.type(text)
        except Exception:  # argparse words the error
            raise Unsupported(text) from None

    def _apply(self, action: _Action, value: str | None, values: dict[str, Any]) -> None:
        dest = action.dest
        kind = action.action
        if kind == "store":
            assert value is not None
            values[dest] = self._convert(action, value)
        elif kind == "append":
            assert value is not None
            current = values[dest]
            items = list(current) if current is not None else []
            items.append(self._convert(action, value))
            values[dest] = items
        elif kind == "count":
            values[dest] = (values[dest] or 0) + 1
        else:
            values[dest] = action.const
