"""``alpenglow keygen [PREFIX]``: make an abuild-style RSA signing key pair.

Writes ``PREFIX-XXXXXXXX.rsa`` (private, mode 0600) and ``PREFIX-XXXXXXXX.rsa.pub`` (the
public key to put in ``/etc/apk/keys``), where XXXXXXXX is the current time in hex, as
abuild-keygen does. The default prefix is ``~/.config/alpenglow/keys/<user>``.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import click

__all__ = ["keygen"]


def _default_prefix() -> Path:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "alpenglow"
    return Path.home() / ".config" / "alpenglow" / "keys" / user


@click.command("keygen")
@click.argument("prefix", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--bits", type=click.IntRange(2048, 16384), default=4096, show_default=True, help="key size"
)
def keygen(prefix: Path | None, bits: int) -> None:
    """Create an RSA key pair for signing packages and indexes."""
    from alpenglow.apk.signing import write_keypair

    private, public = write_keypair(prefix or _default_prefix(), bits=bits)
    click.echo(f"private key: {private}")
    click.echo(f"public key:  {public}")
