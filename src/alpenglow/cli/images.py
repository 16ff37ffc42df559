"""``alpenglow images``: list the local image store, as ``docker images`` does.

One row per name: REPOSITORY, TAG, IMAGE ID (the first 12 hex digits of the root digest),
PLATFORMS and SIZE (compressed: the distinct configs and layers of every platform, in
decimal units as docker prints them). A table on a terminal, plain aligned columns
otherwise; ``-q`` prints the ids only, ``--format json`` every fact of every row.
"""

from __future__ import annotations

import json
import os

import click

from alpenglow.cli._table import human_size, print_table

__all__ = ["images"]


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
