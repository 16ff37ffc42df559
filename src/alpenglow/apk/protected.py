"""Protected paths: the configuration directories where apk keeps local changes.

apk protects ``etc`` by default (``+etc``), but only symlinks in ``etc/init.d``
(``@etc/init.d``) and nothing in ``etc/apk`` (``!etc/apk``); ``etc/apk/protected_paths.d/*.list``
adds rules, one per line: ``+glob`` protect, ``@glob`` protect symlinks only, ``!glob`` do not
protect, ``-glob`` ignore (for ``apk audit``; not protected when installing). A directory takes
the mode of the last rule matching it, else the mode of its parent.

When a package brings a file into a protected directory where a file already exists that the
database does not know or that was changed since it was installed, apk keeps the local file and
writes the package's version beside it as ``NAME.apk-new`` (unless the two are identical, or
``--clean-protected`` asks for no ``.apk-new`` files).

>>> rules = parse_rules(DEFAULT_RULES)
>>> mode_of(rules, "etc/ssh"), mode_of(rules, "etc/init.d"), mode_of(rules, "etc/apk/keys")
('+', '@', '!')
>>> mode_of(rules, "usr/bin")
''
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

__all__ = ["DEFAULT_RULES", "Rule", "is_protected", "mode_of", "parse_rules", "rules_from_files"]


def __dir__() -> list[str]:
    return __all__


DEFAULT_RULES = "+etc\n@etc/init.d\n!etc/apk\n"
"""apk-tools 3's built-in rules, read before ``protected_paths.d``."""

_MODES = frozenset("+@!-")

Rule = tuple[str, str]
"""(mode, glob) with the glob relative to the root, without slashes at either end."""


def parse_rules(*texts: str) -> tuple[Rule, ...]:
    """The rules of ``texts`` in order; lines that are not ``<mode><glob>`` are skipped."""
    rules: list[Rule] = []
    for text in texts:
        for raw in text.splitlines():
            line = raw.strip()
            if len(line) < 2 or line[0] not in _MODES:
                continue
            rules.append((line[0], line[1:].strip("/")))
    return tuple(rules)


def mode_of(rules: Sequence[Rule], directory: str) -> str:
    """The protection mode of ``directory`` ("" when none applies)."""
    mode = ""
    path = ""
    for part in (p for p in directory.split("/") if p):
        path = f"{path}/{part}" if path else part
        for rule_mode, pattern in rules:
            if fnmatch.fnmatchcase(path, pattern):
                mode = rule_mode
    return mode


def is_protected(rules: Sequence[Rule], directory: str, *, symlink: bool) -> bool:
    """Whether a file (or, with ``symlink``, a symlink) in ``directory`` keeps local changes."""
    mode = mode_of(rules, directory)
    return mode == "+" or (mode == "@" and symlink)


def rules_from_files(contents: Iterable[str]) -> tuple[Rule, ...]:
    """The built-in rules followed by those of each ``protected_paths.d`` file's text."""
    return parse_rules(DEFAULT_RULES, *contents)
