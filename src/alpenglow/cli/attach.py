"""``alpenglow attach CONTAINER``: this terminal to a detached container, as ``docker attach``.

Output comes as it is written; input goes to the container when it was created with
``-i``. Ctrl-P Ctrl-Q (``--detach-keys``) detaches and leaves the container running ("read
escape sequence", exit status 1, as Docker); otherwise attach ends when the container does,
with its exit status. Only containers started with ``-d`` (or by ``start``) have the
supervisor this needs.
"""

from __future__ import annotations

import os
import sys

import click

__all__ = ["attach"]


@click.command("attach")
@click.option(
    "--detach-keys",
    default="ctrl-p,ctrl-q",
    show_default=True,
    help="the key sequence that detaches (e.g. ctrl-a,q; empty: none)",
)
@click.option("--no-stdin", is_flag=True, help="do not send this terminal's input")
@click.option(
    "--sig-proxy/--no-sig-proxy",
    default=True,
    show_default=True,
    help="pass received signals to a container without a terminal",
)
@click.argument("container")
def attach(detach_keys: str, no_stdin: bool, sig_proxy: bool, container: str) -> None:
    """Attach to a running container's input and output."""
    from alpenglow.cli._runtime import container_errors, make_engine
    from alpenglow.errors import ContainerError, UsageError
    from alpenglow.runtime.attach import attach as attach_to
    from alpenglow.runtime.attach import parse_detach_keys
    from alpenglow.runtime.containers import RUNNING

    keys = parse_detach_keys(detach_keys)
    engine = make_engine(pull=False)
    record = engine.containers.find(container)
    with container_errors():
        if engine.observe(record).status != RUNNING:
            raise ContainerError(
                "you cannot attach to a stopped container, start it first", exit_status=1
            )
        send_input = not no_stdin and record.interactive
        if send_input and record.tty and not os.isatty(0):
            raise UsageError("the input device is not a TTY")
        sys.stdout.flush()
        code = attach_to(
            engine.containers.paths(record.id).dir,
            0 if send_input else None,
            1,
            stderr=2,
            detach_keys=keys,
            sig_proxy=sig_proxy,
        )
    if code is None:
        click.echo("read escape sequence", err=True)
        sys.exit(1)
    sys.exit(code)
