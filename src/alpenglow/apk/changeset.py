"""apk's change-set text: the ``(1/2) Installing b (2)`` lines, the ``OK:`` summary and the
indented, wrapped lists apk prints (plan summary, "World updated" notice, error report).

Pure functions returning strings; the CLI prints them.

>>> human_size(8192), human_size(278528), human_size(10_240_000)
('8192 B', '272 KiB', '9.8 MiB')
>>> w = Wrapper(width=50)
>>> w.group("    note:"); w.words("please select one of the 'provided by' packages explicitly")
>>> print(w.end(), end="")
    note: please select one of the 'provided by'
          packages explicitly
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from alpenglow._record import record
from alpenglow.apk.solver import Candidate, Change
from alpenglow.apk.version import compare

__all__ = [
    "Stats",
    "Wrapper",
    "change_lines",
    "change_verb",
    "counted",
    "human_size",
    "summary_line",
]


def __dir__() -> list[str]:
    return __all__


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_size(size: int) -> str:
    """apk 3's humanized size: divide by 1024 while >= 10000; one decimal from MiB up."""
    value = float(size)
    whole = size
    unit = 0
    while unit < len(_UNITS) - 1 and value >= 10000:
        value /= 1024
        whole //= 1024
        unit += 1
    if unit < 2:
        return f"{whole} {_UNITS[unit]}"
    return f"{value:.1f} {_UNITS[unit]}"


def counted(changes: Iterable[Change]) -> list[Change]:
    """The entries apk acts on and numbers (new package, removal, reinstall, new pinning)."""
    return [c for c in changes if c.is_change]


def change_verb(change: Change, available: Callable[[Candidate], bool]) -> str | None:
    """The verb apk prints for ``change`` (None: nothing to print).

    ``available`` says whether a package's ``.apk`` can be had (for reinstalls).
    """
    old, new = change.old, change.new
    if old is None:
        return "Installing"
    if new is None:
        return "Purging"
    if new is old:
        if change.reinstall:
            if available(new):
                return "Reinstalling"
            return "[APK unavailable, skipped] Reinstalling"
        if change.old_tag != change.new_tag:
            return "Updating pinning"
        return None
    r = compare(new.package.version, old.package.version)
    return "Downgrading" if r < 0 else "Upgrading" if r > 0 else "Replacing"


def change_lines(
    changes: Sequence[Change],
    tag_name: Callable[[int], str],
    available: Callable[[Candidate], bool],
) -> list[str]:
    """The ``( 1/11) Installing name@tag (version)`` lines, numbered like apk 3 (the
    number right-aligned to the width of the total)."""
    total = len(counted(changes))
    width = len(str(total))
    lines = []
    done = 0
    for change in changes:
        verb = change_verb(change, available)
        if verb is not None:
            status = f"({done + 1:>{width}}/{total})"
            new, old = change.new, change.old
            shown = new if new is not None else old
            assert shown is not None
            name = shown.package.name + tag_name(change.new_tag)
            if verb in ("Upgrading", "Downgrading", "Replacing"):
                assert old is not None
                assert new is not None
                versions = f"{old.package.version} -> {new.package.version}"
            else:
                versions = (new if new is not None else shown).package.version
                if new is None and old is not None:
                    versions = old.package.version
            lines.append(f"{status} {verb} {name} ({versions})")
        if change.is_change:
            done += 1
    return lines


@record
class Stats:
    """What the final line reports about the installed packages."""

    packages: int
    size: int
    dirs: int = 0
    files: int = 0

    def after(self, changes: Iterable[Change]) -> Stats:
        """The figures once ``changes`` are applied (apk's ``--simulate`` arithmetic)."""
        packages, size = self.packages, self.size
        for c in changes:
            if c.new is not None:
                size += c.new.package.installed_size
                packages += 1
            if c.old is not None:
                size -= c.old.package.installed_size
                packages -= 1
        return Stats(packages, size, self.dirs, self.files)


def summary_line(stats: Stats, *, errors: int = 0, verbose: bool = False) -> str:
    """``OK: 2 B in 2 packages`` (or ``N errors;``), the long form with ``-v``."""
    if errors:
        head = f"{errors} error{'s' if errors > 1 else ''};"
    else:
        head = "OK:"
    size = human_size(stats.size)
    if verbose:
        return f"{head} {stats.packages} packages, {stats.dirs} dirs, {stats.files} files, {size}"
    return f"{head} {size} in {stats.packages} packages"


class Wrapper:
    """apk's indented output (``apk_print_indented*``): a label, then items separated by a
    space, wrapped before an item that would reach ``width``; continuation lines start at
    the group's indent. Collects text; :meth:`end` returns it (with the final newline)."""

    def __init__(self, width: int = 50) -> None:
        self.width = width
        self.x = 0
        self.indent = 0
        self.parts: list[str] = []

    def line(self, text: str) -> None:
        """A whole line (``apk_print_indented_line``); resets the position."""
        self.parts.append(text)
        self.x = self.indent = 0

    def group(self, label: str, indent: int = 0) -> None:
        """Start a group with ``label``; items continue at ``indent`` (default: after the
        label and one space). A label ending in a newline starts items on the next line."""
        self.parts.append(label)
        self.x = len(label)
        self.indent = indent or self.x + 1
        if label.endswith("\n"):
            self.x = 0

    def item(self, text: str) -> None:
        """One item (``apk_print_indented``)."""
        if self.x <= self.indent:
            pad = " " * (self.indent - self.x)
            self.parts.append(pad + text)
            self.x += len(pad) + len(text)
        elif self.x + len(text) + 1 >= self.width:
            self.parts.append("\n" + " " * self.indent + text)
            self.x = self.indent + len(text)
        else:
            self.parts.append(" " + text)
            self.x += 1 + len(text)

    def words(self, text: str) -> None:
        for word in text.split():
            self.item(word)

    def close(self) -> None:
        """End the current group (``apk_print_indented_end``)."""
        if self.x:
            self.parts.append("\n")
            self.x = self.indent = 0

    def end(self) -> str:
        """Close the group and return everything written so far (and forget it)."""
        self.close()
        text = "".join(self.parts)
        self.parts = []
        return text
