"""``alpenglow images``: list the local image store, as ``docker images`` does.

One row per name: REPOSITORY, TAG, IMAGE ID (the first 12 hex digits of the root digest),
PLATFORMS and SIZE (compressed: the distinct configs and layers of every platform, in
decimal units as docker prints them). A table on a terminal, plain aligned columns
otherwise; ``-q`` prints the ids only, ``--format json`` every fact of every row.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

import click

__all__ = ["format_columns", "human_size", "images", "print_table"]

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
    for line in format_columns(header, rows):
        click.echo(line)


@click.command("images")
@click.option("-q", "--quiet", is_flag=True, help="print image ids only")
@click.option("--no-trunc", is_flag=True, help="print full image digests")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="output format",
)
def images(quiet: bool, no_trunc: bool, fmt: str) -> None:
    """List the images in the local store."""
    from alpenglow.oci.store import ImageStore

    store = ImageStore.from_environment(os.environ)
    rows = store.list()
    for row in rows:
        if row.problem:
            click.echo(f"WARNING: {row.repository}:{row.tag}: {row.problem}", err=True)
    if quiet:
        seen: set[str] = set()
        for row in rows:
            image_id = row.digest if no_trunc else row.image_id
            if image_id not in seen:
                seen.add(image_id)
                click.echo(image_id)
        return
    if fmt == "json":
        data = [
            {
                "repository": row.repository,
                "tag": row.tag,
                "id": row.image_id,
                "digest": row.digest,
                "platforms": list(row.platforms),
                "size": row.size,
                "created": row.created,
                **({"problem": row.problem} if row.problem else {}),
            }
            for row in rows
        ]
        click.echo(json.dumps(data, indent=2))
        return
    table = [
        (
            row.repository,
            row.tag,
            row.digest if no_trunc else row.image_id,
            ",".join(row.platforms) if not row.problem else "<damaged>",
            human_size(row.size),
        )
        for row in rows
    ]
    print_table(("REPOSITORY", "TAG", "IMAGE ID", "PLATFORMS", "SIZE"), table)
