"""``alpenglow build CONFIG`` and ``alpenglow lock CONFIG``: images from apko-style YAML.

``build`` puts the image into the local image store under its tags (default: the
configuration file's stem, tag ``latest``) or writes it with ``--output``
(``oci:DIR``, ``oci-archive:FILE.tar``, ``docker-archive:FILE.tar``). SBOMs (SPDX 2.3 and
CycloneDX 1.5, one pair per architecture) are attached to the image as OCI artifacts and, with
``--output``, also written beside it (``--sbom-dir`` moves them).

``lock`` resolves and fetches what a build would install and writes the exact versions and
checksums per architecture (``CONFIG.lock.json`` beside the configuration by default);
``build --lockfile FILE`` installs exactly those and fails if anything differs.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from alpenglow.errors import AlpenglowError

if TYPE_CHECKING:
    from alpenglow.build.config import BuildConfig
    from alpenglow.build.multiarch import BuildResult

__all__ = ["build", "lock"]


def _say(text: str) -> None:
    click.echo(text, err=True)


def _run_build(
    config: BuildConfig,
    arch: Sequence[str],
    lockfile: Path | None,
    jobs: int | None,
    image_name: str,
    insecure: Sequence[str] = (),
) -> BuildResult:
    from alpenglow.build.builder import default_cache_dir, source_date_epoch
    from alpenglow.build.lock import parse_lock
    from alpenglow.build.multiarch import build_image, select_archs

    archs = select_archs(config, arch)
    epoch = source_date_epoch(os.environ)
    lock = None
    if lockfile is not None:
        try:
            data = lockfile.read_bytes()
        except OSError as exc:
            raise AlpenglowError(f"{lockfile}: {exc.strerror}") from None
        lock = parse_lock(data, source=str(lockfile))
    bases = None
    if config.base:
        from alpenglow.build.base import load_bases

        bases = load_bases(config, archs, insecure=insecure)
    started = time.monotonic()

    def build(on_done: Callable[[str], None]) -> BuildResult:
        return build_image(
            config,
            archs,
            cache_dir=default_cache_dir(),
            epoch=epoch,
            lock=lock,
            bases=bases,
            jobs=jobs,
            image_name=image_name,
            on_done=on_done,
        )

    if not sys.stderr.isatty():
        _say(f"building {config.source.name} for {', '.join(archs)}")
        return build(lambda a: _say(f"  {a}: done ({time.monotonic() - started:.1f} s)"))
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(f"building {config.source.name}", total=len(archs))

        def done(a: str) -> None:
            progress.advance(task)
            progress.console.print(f"  {a}: done ({time.monotonic() - started:.1f} s)")

        return build(done)


def _tags(config: BuildConfig, tags: Sequence[str]) -> list[str]:
    from alpenglow.oci.store import parse_name

    names = list(tags) or [config.source.stem]
    return [parse_name(t).ref_name for t in names]


@click.command("build")
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=Path))
@click.option(
    "--tag", "-t", "tags", multiple=True, help="NAME[:TAG] in the image store (repeatable)"
)
@click.option(
    "--arch",
    "arch",
    multiple=True,
    help="architecture(s) to build (Alpine or OCI names, comma separated, or 'all')",
)
@click.option(
    "--output", "-o", "output", help="oci:DIR, oci-archive:FILE.tar or docker-archive:FILE.tar"
)
@click.option("--lockfile", type=click.Path(path_type=Path), help="install exactly what it lists")
@click.option("--sbom-dir", type=click.Path(path_type=Path), help="where to write the SBOM files")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), help="architectures built at once")
@click.option(
    "--insecure",
    multiple=True,
    metavar="HOST",
    help="plain HTTP or unverified TLS for this registry (the base image's)",
)
def build(
    config_path: Path,
    tags: tuple[str, ...],
    arch: tuple[str, ...],
    output: str | None,
    lockfile: Path | None,
    sbom_dir: Path | None,
    jobs: int | None,
    insecure: tuple[str, ...],
) -> None:
    """Build a multi-architecture OCI image from an apko-style YAML file."""
    from alpenglow.build.config import load_config
    from alpenglow.build.output import sbom_directory, write_output, write_sboms
    from alpenglow.oci.store import ImageStore
    from alpenglow.oci.transport import parse_reference

    config = load_config(config_path)
    arches = [a.strip() for item in arch for a in item.split(",") if a.strip()]
    names = _tags(config, tags)
    if output:
        parse_reference(output)  # a bad --output fails before the build
    result = _run_build(config, arches, lockfile, jobs, names[0], insecure)
    if output:
        for written in write_output(result, output, names):
            _say(f"wrote {written}")
        where = sbom_dir or sbom_directory(output)
        for path in write_sboms(result, where, config.source.stem):
            _say(f"wrote {path}")
    else:
        write_output(result, None, names, store=ImageStore.from_environment(os.environ))
        if sbom_dir is not None:
            for path in write_sboms(result, sbom_dir, config.source.stem):
                _say(f"wrote {path}")
    from alpenglow.cli._table import human_size

    for p in result.platforms:
        size = len(p.blobs[p.config_digest]) + sum(d.size for d in p.layers)
        _say(
            f"  {p.arch:<8} {p.platform!s:<16} {p.manifest.digest[7:19]}  {human_size(size):>8}  "
            f"{len(p.packages)} packages"
        )
    click.echo(result.index.digest)
    if not output:
        _say(f"tagged {', '.join(names)}")


@click.command("lock")
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=Path))
@click.option("--arch", "arch", multiple=True, help="architecture(s), or 'all'")
@click.option(
    "--output", "-o", type=click.Path(path_type=Path), help="lock file (default CONFIG.lock.json)"
)
@click.option("--jobs", "-j", type=click.IntRange(1, 64))
def lock(config_path: Path, arch: tuple[str, ...], output: Path | None, jobs: int | None) -> None:
    """Resolve a configuration and write its lock file (exact versions and checksums)."""
    from alpenglow.build.config import load_config
    from alpenglow.build.lock import format_lock
    from alpenglow.build.multiarch import lock_of

    config = load_config(config_path)
    arches = [a.strip() for item in arch for a in item.split(",") if a.strip()]
    result = _run_build(config, arches, None, jobs, config.source.stem)
    target = output or config.source.with_name(config.source.stem + ".lock.json")
    data = format_lock(lock_of(config, result))
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AlpenglowError(f"{target}: cannot write: {exc.strerror}") from None
    count = sum(len(p.packages) for p in result.platforms)
    _say(f"wrote {target} ({count} packages, {len(result.platforms)} architectures)")
    sys.stdout.flush()
