"""``alpenglow ps``: list containers, as ``docker ps`` does.

Columns: CONTAINER ID (12 hex digits), IMAGE, COMMAND (quoted, cut at 20 characters),
CREATED, STATUS (``Up 3 seconds``, ``Exited (0) 2 minutes ago``, ``Created``) and NAMES.
Only running containers unless ``-a``; ``-q`` prints the ids only. The status is the
observed truth: a container whose supervisor died is checked with the OCI runtime.
"""

from __future__ import annotations

import json
import time

import click

__all__ = ["ps"]


def _command(args: tuple[str, ...], no_trunc: bool) -> str:
    text = " ".join(args)
    if not no_trunc and len(text) > 20:
        text = text[:19] + "…"
    return json.dumps(text, ensure_ascii=False)


@click.command("ps")
@click.option("-a", "--all", "all_containers", is_flag=True, help="show all containers")
@click.option("-q", "--quiet", is_flag=True, help="print container ids only")
@click.option("--no-trunc", is_flag=True, help="do not truncate ids and commands")
def ps(all_containers: bool, quiet: bool, no_trunc: bool) -> None:
    """List containers."""
    from alpenglow.cli._runtime import describe_status, human_duration, make_engine
    from alpenglow.cli._table import print_table
    from alpenglow.runtime.containers import parse_time

    engine = make_engine(pull=False)
    rows = engine.ps(all_containers=all_containers)
    if quiet:
        for record, _ in rows:
            click.echo(record.id if no_trunc else record.short_id)
        return
    now = time.time()
    table = [
        (
            record.id if no_trunc else record.short_id,
            record.image,
            _command(record.args, no_trunc),
            f"{human_duration(now - parse_time(record.created))} ago",
            describe_status(state, now),
            record.name,
        )
        for record, state in rows
    ]
    print_table(("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"), table)
