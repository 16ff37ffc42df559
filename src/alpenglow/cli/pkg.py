"""``alpenglow pkg create DIR ...``: build a v2 ``.apk`` from a directory tree.

The tree is packaged as abuild does (sorted entries, per-file SHA-1, modes, owners,
extended attributes, hard links and symlinks, one fixed mtime), with ``.PKGINFO`` made from
the options, and signed with ``--sign-key`` (or left unsigned without it).
``SOURCE_DATE_EPOCH`` (or ``--mtime``) sets every timestamp and the build date.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from alpenglow.apk.package import SCRIPT_TYPES

__all__ = ["pkg"]


@click.group("pkg")
def pkg() -> None:
    """Build and inspect .apk packages."""


def _epoch(mtime: int | None) -> int:
    if mtime is not None:
        return mtime
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if value:
        if not value.isdigit():
            raise click.BadParameter(f"SOURCE_DATE_EPOCH is not a number: {value!r}")
        return int(value)
    return int(time.time())


@pkg.command("create")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", required=True, help="package name (pkgname)")
@click.option("--version", "version_", required=True, help="full version, e.g. 1.0-r0")
@click.option("--arch", required=True, help="architecture, e.g. x86_64 or noarch")
@click.option("--description", default="", help="one-line description (pkgdesc)")
@click.option("--url", default="", help="project URL")
@click.option("--license", "license_", default="", help="license (SPDX expression)")
@click.option("--origin", default="", help="source package name (default: the name)")
@click.option("--maintainer", default="", help="Name <email>")
@click.option("--packager", default="", help="Name <email> of who built it")
@click.option("--commit", default="", help="source commit")
@click.option("--depends", "-D", multiple=True, help="a dependency (repeatable)")
@click.option("--provides", "-P", multiple=True, help="a provided name[=version] (repeatable)")
@click.option("--replaces", multiple=True, help="a package whose files it may take over")
@click.option("--install-if", "install_if", default="", help="space-separated install_if rule")
@click.option("--provider-priority", type=int, default=None, help="provider priority")
@click.option("--replaces-priority", type=int, default=0, help="replaces priority")
@click.option("--triggers", multiple=True, help="a trigger directory glob (repeatable)")
@click.option(
    "--script",
    "scripts",
    multiple=True,
    metavar="KIND=FILE",
    help=f"a script; KIND is one of {', '.join(SCRIPT_TYPES)} (repeatable)",
)
@click.option("--uid", type=int, default=None, help="owner of every entry (default: from disk)")
@click.option("--gid", type=int, default=None, help="group of every entry (default: from disk)")
@click.option("--mtime", type=int, default=None, help="timestamp (default SOURCE_DATE_EPOCH)")
@click.option(
    "--sign-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="private key (PREFIX-XXXXXXXX.rsa); unsigned without it",
)
@click.option(
    "--sign-type", type=click.Choice(["RSA", "RSA256", "RSA512"]), default="RSA", show_default=True
)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def create(
    directory: Path,
    name: str,
    version_: str,
    arch: str,
    description: str,
    url: str,
    license_: str,
    origin: str,
    maintainer: str,
    packager: str,
    commit: str,
    depends: tuple[str, ...],
    provides: tuple[str, ...],
    replaces: tuple[str, ...],
    install_if: str,
    provider_priority: int | None,
    replaces_priority: int,
    triggers: tuple[str, ...],
    scripts: tuple[str, ...],
    uid: int | None,
    gid: int | None,
    mtime: int | None,
    sign_key: Path | None,
    sign_type: str,
    output: Path,
) -> None:
    """Package DIRECTORY's contents as OUTPUT (.apk)."""
    from alpenglow.apk.dependency import parse, parse_list
    from alpenglow.apk.index import Package
    from alpenglow.apk.package import PackageInfo, identity_of, tree_entries, write_package
    from alpenglow.apk.signing import Signer
    from alpenglow.apk.version import is_valid
    from alpenglow.errors import AlpenglowError, UsageError

    if not is_valid(version_):
        raise UsageError(f"--version: {version_!r} is not a valid apk version")
    script_bodies: list[tuple[str, bytes]] = []
    for spec in scripts:
        kind, eq, file_name = spec.partition("=")
        if not eq or kind not in SCRIPT_TYPES:
            raise UsageError(f"--script {spec!r}: expected KIND=FILE, KIND one of {SCRIPT_TYPES}")
        try:
            script_bodies.append(("." + kind, Path(file_name).read_bytes()))
        except OSError as exc:
            raise AlpenglowError(f"{file_name}: cannot read script ({exc.strerror})") from None
    epoch = _epoch(mtime)
    info = PackageInfo(
        Package(
            name=name,
            version=version_,
            arch=arch,
            description=description,
            url=url,
            license=license_,
            origin=origin or name,
            maintainer=maintainer,
            commit=commit,
            build_time=epoch,
            provider_priority=provider_priority,
            replaces_priority=replaces_priority,
            depends=tuple(parse(d) for d in depends),
            provides=tuple(parse(p) for p in provides),
            replaces=tuple(parse(r) for r in replaces),
            install_if=parse_list(install_if),
        ),
        packager=packager,
        triggers=triggers,
    )
    signer = Signer.from_file(sign_key, algorithm=sign_type) if sign_key else None
    entries = tree_entries(directory, mtime=epoch, uid=uid, gid=gid)
    blob = write_package(entries, info, signer, scripts=script_bodies, mtime=epoch)
    tmp = output.with_name(f".{output.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(blob)
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AlpenglowError(f"{output}: cannot write ({exc.strerror})") from None
    from alpenglow.apk.archive import split_gzip

    control = split_gzip(blob)[-2]
    click.echo(f"{output}: {name}-{version_} {identity_of(control.compressed)}")
