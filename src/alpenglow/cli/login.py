"""``alpenglow login REGISTRY`` and ``alpenglow logout REGISTRY``, as docker has them.

``login`` checks the credentials against the registry (``GET /v2/``, answering its Basic or
Bearer challenge) before it stores them in alpenglow's auth file (see
:mod:`alpenglow.distribution.auth`; mode 0600, Docker's ``config.json`` format). The password
comes from ``--password-stdin`` (for scripts), ``-p`` (with a warning, as docker gives), or a
prompt that does not echo it. ``logout`` forgets what ``login`` stored.
"""

from __future__ import annotations

import os
import sys

import click

from alpenglow.cli._registry import client_for, insecure_option, say

__all__ = ["login", "logout"]


def __dir__() -> list[str]:
    return __all__


def _registry_name(text: str) -> str:
    from alpenglow.distribution.reference import normalize_registry

    name = normalize_registry(text.removeprefix("docker://"))
    if not name:
        raise click.UsageError(f"{text!r} is not a registry name")
    return name


@click.command("login")
@click.argument("registry", metavar="REGISTRY", default="docker.io")
@click.option("--username", "-u", help="user name (prompted for when not given)")
@click.option("--password", "-p", help="password or token (insecure: prefer --password-stdin)")
@click.option("--password-stdin", is_flag=True, help="read the password or token from stdin")
@insecure_option
def login(
    registry: str,
    username: str | None,
    password: str | None,
    password_stdin: bool,
    insecure: tuple[str, ...],
) -> None:
    """Log in to a registry (checked, then kept for later commands)."""
    from alpenglow.distribution.auth import Credential, alpenglow_auth_file, save_login

    name = _registry_name(registry)
    if password is not None and password_stdin:
        raise click.UsageError("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise click.UsageError("--password-stdin needs --username")
        password = sys.stdin.read().rstrip("\r\n")
    elif password is not None:
        say("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if not username:
        if not sys.stdin.isatty():
            raise click.UsageError("no --username given and no terminal to ask on")
        username = click.prompt("Username", err=True).strip()
    if password is None:
        if not sys.stdin.isatty():
            raise click.UsageError("no password given (use --password-stdin)")
        password = click.prompt("Password", hide_input=True, err=True)
    if not password:
        raise click.UsageError("the password is empty")
    with client_for(name, insecure, Credential(username, password)) as client:
        client.check_login()
    path = alpenglow_auth_file(os.environ)
    save_login(name, username, password, path=path)
    say(f"credentials saved in {path}")
    click.echo("Login Succeeded")


@click.command("logout")
@click.argument("registry", metavar="REGISTRY", default="docker.io")
def logout(registry: str) -> None:
    """Forget the credentials stored for a registry by login."""
    from alpenglow.distribution.auth import alpenglow_auth_file, remove_login

    name = _registry_name(registry)
    if remove_login(name, path=alpenglow_auth_file(os.environ)):
        click.echo(f"Removing login credentials for {name}")
    else:
        click.echo(f"Not logged in to {name}")
