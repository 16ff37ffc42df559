"""``alpenglow logs CONTAINER``: a detached container's output, as ``docker logs``.

What the container wrote to stdout goes to stdout, its stderr to stderr (a container with a
terminal has only stdout). ``--tail N`` shows the last N lines only, ``-t`` prefixes each
with when it was written, ``-f`` keeps following until the container ends.
"""

from __future__ import annotations

import sys

import click

__all__ = ["logs"]


def _tail(text: str) -> int | None:
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number of lines or 'all'") from None
    return None if value < 0 else value


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="keep printing new output until it exits")
@click.option(
    "-n", "--tail", "tail", default="all", show_default=True, help="only the last N lines"
)
@click.option("-t", "--timestamps", is_flag=True, help="prefix each line with its time")
@click.argument("container")
def logs(follow: bool, tail: str, timestamps: bool, container: str) -> None:
    """Print a container's output."""
    from alpenglow.cli._runtime import make_engine
    from alpenglow.runtime.logs import logs as read_logs

    count = _tail(tail)
    engine = make_engine(pull=False)
    record = engine.containers.find(container)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    sys.stdout.flush()
    try:
        for entry in read_logs(engine.containers.paths(record.id).dir, follow=follow, tail=count):
            target = err if entry.stream == "stderr" else out
            if timestamps:
                target.write(entry.time.encode() + b" ")
            target.write(entry.data)
            if follow:
                target.flush()
    except BrokenPipeError:
        sys.stderr.close()  # nobody reads any more: no complaint either
        sys.exit(0)
    out.flush()
