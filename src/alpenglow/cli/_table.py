"""Tables and sizes as docker prints them, shared by the listing commands (``images``,
``inspect --sizes``, ``ps``, ``release plan``, ``prune``, ``build``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["format_columns", "human_size", "print_table"]


def __dir__() -> list[str]:
    return __all__


_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def human_size(size: int) -> str:
    """Docker's size format: decimal units, three significant digits (``3.79MB``).

    >>> human_size(0), human_size(999), human_size(3_790_000), human_size(999_999)
    ('0B', '999B', '3.79MB', '1MB')
    """
    value = float(size)
    unit = 0
    while unit < len(_UNITS) - 1 and float(f"{value:.3g}") >= 1000:
        value /= 1000
        unit += 1
    return f"{value:.3g}{_UNITS[unit]}"


def format_columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain text columns, left aligned, three spaces apart (docker's layout)."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        lines.append("   ".join(cells).rstrip())
    return lines


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table on a terminal, plain columns when the output is a pipe or file."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in header:
            table.add_column(name, no_wrap=True)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    sys.stdout.write("".join(f"{line}\n" for line in format_columns(header, rows)))
