"""Container commands named as Docker names them: ``start``, ``stop``, ``restart``, ``rm``,
``prune``, ``rmi`` and ``container inspect``.

Each takes containers by full id, unique id prefix or name, and prints each one as given
once done (Docker's output); the first failure is reported after the others were tried, and
makes the command exit 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click

__all__ = ["container", "prune", "restart", "rm", "rmi", "start", "stop"]


def _each(names: tuple[str, ...], action: Callable[[str], None]) -> None:
    """Run ``action`` on every name; report failures one line each, exit 1 if any."""
    from alpenglow.cli._errors import report
    from alpenglow.errors import AlpenglowError

    failed = False
    for name in names:
        try:
            action(name)
        except AlpenglowError as exc:
            failed = True
            report(exc)
    if failed:
        sys.exit(1)


_timeout_option = click.option(
    "-t",
    "--time",
    "timeout",
    type=click.IntRange(min=0),
    default=None,
    help="seconds to wait before SIGKILL (default: the container's, 10)",
)


@click.command("stop")
@_timeout_option
@click.argument("containers", nargs=-1, required=True)
def stop(timeout: int | None, containers: tuple[str, ...]) -> None:
    """Stop running containers (their stop signal, then SIGKILL)."""
    from alpenglow.cli._runtime import make_engine

    engine = make_engine(pull=False)

    def one(name: str) -> None:
        engine.stop(engine.containers.find(name), timeout)
        click.echo(name)

    _each(containers, one)


@click.command("start")
@click.option("-a", "--attach", is_flag=True, help="run in the foreground, attached")
@click.option("-i", "--interactive", is_flag=True, help="attach stdin (with -a)")
@click.argument("containers", nargs=-1, required=True)
def start(attach: bool, interactive: bool, containers: tuple[str, ...]) -> None:
    """Start stopped containers (in the background unless -a)."""
    from alpenglow.cli._runtime import container_errors, make_engine, start_detached
    from alpenglow.errors import UsageError

    engine = make_engine(pull=False)
    if attach:
        if len(containers) != 1:
            raise UsageError("you cannot start and attach several containers at once")
        with container_errors():
            code = engine.run_attached(engine.containers.find(containers[0]), stdin=interactive)
        sys.stdout.flush()
        sys.exit(code)

    def one(name: str) -> None:
        record = engine.containers.find(name)
        if engine.observe(record).status != "running":
            start_detached(engine, record)
        click.echo(name)

    _each(containers, one)


@click.command("restart")
@_timeout_option
@click.argument("containers", nargs=-1, required=True)
def restart(timeout: int | None, containers: tuple[str, ...]) -> None:
    """Stop and start containers again (in the background)."""
    from alpenglow.cli._runtime import make_engine, start_detached

    engine = make_engine(pull=False)

    def one(name: str) -> None:
        record = engine.containers.find(name)
        engine.stop(record, timeout)
        start_detached(engine, record)
        click.echo(name)

    _each(containers, one)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="kill and remove running containers too")
@click.argument("containers", nargs=-1, required=True)
def rm(force: bool, containers: tuple[str, ...]) -> None:
    """Remove containers (their mounts, runtime state and files)."""
    from alpenglow.cli._runtime import make_engine

    engine = make_engine(pull=False)

    def one(name: str) -> None:
        engine.remove(engine.containers.find(name), force=force)
        click.echo(name)

    _each(containers, one)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="do not ask for confirmation")
def prune(force: bool) -> None:
    """Remove every stopped container and the unpacked layers no container uses."""
    from alpenglow.cli._runtime import make_engine
    from alpenglow.cli._table import human_size

    if not force:
        click.echo(
            "WARNING! This will remove all stopped containers and unused unpacked layers.\n"
            "Are you sure you want to continue? [y/N] ",
            nl=False,
            err=True,
        )
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            click.echo("" if answer else "\nnot confirmed: nothing removed", err=True)
            return
    result = make_engine(pull=False).prune()
    if result.containers:
        click.echo("Deleted Containers:")
        for container_id in result.containers:
            click.echo(container_id)
        click.echo("")
    if result.layers:
        click.echo("Deleted unpacked layers:")
        for diff_id in result.layers:
            click.echo(diff_id)
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(result.reclaimed)}")


@click.command("rmi")
@click.option("-f", "--force", is_flag=True, help="remove even when containers use it")
@click.argument("images", nargs=-1, required=True)
def rmi(force: bool, images: tuple[str, ...]) -> None:
    """Remove images from the store (refused while a container uses one, unless -f)."""
    from alpenglow.cli._runtime import make_engine
    from alpenglow.errors import AlpenglowError

    engine = make_engine(pull=False)

    def one(name: str) -> None:
        desc = engine.images.resolve(name)
        users = engine.users_of([desc.digest])
        if users and not force:
            user = users[0]
            raise AlpenglowError(
                f"unable to remove image {name}: container {user.short_id} ({user.name}) uses it",
                hint="remove the container first, or force the removal (rmi -f)",
            )
        result = engine.images.remove(name, force=force)
        for untagged in result.untagged:
            click.echo(f"Untagged: {untagged}")
        if not engine.images.names(desc.digest):
            click.echo(f"Deleted: {desc.digest}")
        engine.gc_layers(keep=engine.image_layers())

    _each(images, one)


@click.group("container")
def container() -> None:
    """Manage containers (``container inspect``)."""


@container.command("inspect")
@click.argument("containers", nargs=-1, required=True)
def container_inspect(containers: tuple[str, ...]) -> None:
    """Show containers' records and states as JSON (Docker's field names)."""
    from alpenglow.cli._runtime import make_engine

    engine = make_engine(pull=False)
    out = [engine.inspect(engine.containers.find(name)) for name in containers]
    click.echo(json.dumps(out, indent=2))


container.add_command(stop)
container.add_command(start)
container.add_command(restart)
container.add_command(rm)
container.add_command(prune)
