"""``alpenglow system``: machine-wide setup. ``system binfmt`` registers qemu-user-static
with binfmt_misc (the ``F`` flag, so emulators work inside containers) for every foreign
architecture alpenglow knows, or the ones named; it needs root and changes nothing that is
already registered.
"""

from __future__ import annotations

import os
import sys

import click

__all__ = ["system"]


@click.group("system")
def system() -> None:
    """Machine-wide setup for running containers."""


@system.command("binfmt")
@click.argument("arches", nargs=-1)
def binfmt_command(arches: tuple[str, ...]) -> None:
    """Register qemu emulators for foreign architectures (as root).

    ARCHES are Alpine or OCI names (aarch64, arm64, armv7, linux/riscv64); all foreign ones
    whose emulator is installed by default."""
    from alpenglow.errors import AlpenglowError, UsageError
    from alpenglow.oci.platform import ALL_ARCHES, parse_platform, platform_for_arch
    from alpenglow.runtime import binfmt

    if os.geteuid() != 0:
        raise AlpenglowError("registering binfmt_misc handlers needs root", hint="run it with sudo")
    explicit = bool(arches)
    platforms = [parse_platform(a) for a in arches] or [platform_for_arch(a) for a in ALL_ARCHES]
    failed = False
    seen: set[str] = set()
    for platform in platforms:
        name = binfmt.qemu_name(str(platform))
        if name is None:
            raise UsageError(f"no qemu emulator is known for {platform}")
        if name in seen:
            continue
        seen.add(name)
        machine = {"x86_64": 62, "i386": 3, "aarch64": 183, "arm": 40}.get(name)
        if machine is not None and machine in binfmt.native_machines():
            if explicit:
                click.echo(f"{platform}: runs natively here")
            continue
        emulator = binfmt.emulator_for(name)
        if emulator is None:
            if explicit:
                failed = True
                click.echo(
                    f"ERROR: {platform}: qemu-{name}-static is not installed "
                    "(apt-get install qemu-user-static)",
                    err=True,
                )
            continue
        try:
            outcome = binfmt.register(name, emulator)
        except AlpenglowError as exc:
            failed = True
            click.echo(f"ERROR: {platform}: {exc}", err=True)
            continue
        click.echo(f"{platform}: {outcome} ({emulator})")
    if failed:
        sys.exit(1)
