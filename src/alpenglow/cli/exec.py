"""``alpenglow exec [-i] [-t] CONTAINER COMMAND...``: run a command in a running container,
as ``docker exec``. Its exit status becomes alpenglow's; a command not found in the image
exits 127, one that cannot be run 126.
"""

from __future__ import annotations

import os
import sys

import click

__all__ = ["exec_command"]


@click.command(
    "exec", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": False}
)
@click.option("-i", "--interactive", is_flag=True, help="keep stdin attached")
@click.option("-t", "--tty", is_flag=True, help="allocate a pseudo-terminal")
@click.option("-e", "--env", "env", multiple=True, help="set KEY=VALUE (KEY alone: the host's)")
@click.option("-u", "--user", default="", help="NAME|UID[:GROUP|GID]")
@click.option("-w", "--workdir", default="", help="working directory inside the container")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(
    interactive: bool,
    tty: bool,
    env: tuple[str, ...],
    user: str,
    workdir: str,
    container: str,
    command: tuple[str, ...],
) -> None:
    """Run a command in a running container."""
    from alpenglow.cli._runtime import container_errors, make_engine
    from alpenglow.errors import ContainerError, UsageError
    from alpenglow.runtime.containers import RUNNING
    from alpenglow.runtime.exec import exec_in
    from alpenglow.runtime.spec import parse_env

    if tty and interactive and not os.isatty(0):
        raise UsageError("the input device is not a TTY")
    variables = parse_env(env, os.environ)
    engine = make_engine(pull=False)
    record = engine.containers.find(container)
    with container_errors():
        if engine.observe(record).status != RUNNING:
            raise ContainerError(f"container {record.short_id} is not running", exit_status=1)
        sys.stdout.flush()
        code = exec_in(
            engine.containers.paths(record.id).dir,
            command,
            oci=engine.oci_for(record),
            container_id=record.id,
            tty=tty,
            interactive=interactive,
            env=variables,
            user=user,
            workdir=workdir,
        )
    sys.exit(code)
