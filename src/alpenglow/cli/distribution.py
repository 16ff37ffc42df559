"""Images to and from registries: ``push``, ``pull``, ``copy``, ``tag``, ``ls``, ``digest``,
``manifest``.

Each command is a thin call into :mod:`alpenglow.distribution` and
:mod:`alpenglow.oci.transport` (shared plumbing in :mod:`alpenglow.cli._registry`). A
registry reference follows Docker's rules (``alpine`` is ``docker.io/library/alpine:latest``)
and may be written with skopeo's ``docker://`` in front; ``localhost`` and ``127.0.0.0/8`` are
spoken to over plain HTTP, other registries over verified HTTPS unless named with
``--insecure``. Results go to stdout, progress and commentary to stderr.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from alpenglow.cli._registry import (
    REGISTRY_PREFIX,
    Location,
    TransferDisplay,
    client_for,
    insecure_option,
    jobs_option,
    parse_location,
    platform_option,
    read_location,
    registry_reference,
    say,
    write_location,
)

if TYPE_CHECKING:
    from alpenglow.oci.layout import Layout

__all__ = ["copy", "digest", "ls", "manifest", "pull", "push", "tag"]


def __dir__() -> list[str]:
    return __all__


@click.command("push")
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="REF")
@insecure_option
@jobs_option
def push(source: str, target: str, insecure: tuple[str, ...], jobs: int) -> None:
    """Push an image to a registry.

    SRC is a store name, oci:DIR[:NAME], oci-archive:FILE or docker-archive:FILE; REF a
    registry reference (docker:// optional)."""
    from alpenglow.oci.store import ImageStore

    store = ImageStore.from_environment(os.environ)
    src = parse_location(source)
    dst = Location(target, remote=registry_reference(target))
    bundle = read_location(src, store=store, insecure=insecure, jobs=jobs)
    write_location(
        bundle, dst, store=store, insecure=insecure, jobs=jobs, progress=TransferDisplay()
    )
    assert dst.remote is not None
    label = dst.remote.tag or dst.remote.digest
    click.echo(f"{label}: digest: {bundle.root.digest} size: {bundle.root.size}")


@click.command("pull")
@click.argument("reference", metavar="REF")
@platform_option
@insecure_option
@jobs_option
def pull(reference: str, platform: str | None, insecure: tuple[str, ...], jobs: int) -> None:
    """Pull an image from a registry into the local store.

    Every platform of REF, or the one named with --platform; stored under REF's name as
    docker names it."""
    from alpenglow.errors import AlpenglowError
    from alpenglow.oci.platform import parse_platform
    from alpenglow.oci.store import ImageStore

    store = ImageStore.from_environment(os.environ)
    ref = registry_reference(reference)
    wanted = parse_platform(platform) if platform else None
    bundle = read_location(
        Location(reference, remote=ref),
        store=store,
        insecure=insecure,
        platform=wanted,
        jobs=jobs,
        progress=TransferDisplay(),
        layout=store.layout,  # written straight into the store, all or nothing
    )
    name = ref.familiar
    try:
        before: str | None = store.resolve(name).digest
    except AlpenglowError:  # not there before (or unreadable: replaced now)
        before = None
    store.add(bundle, [name], verified=True)  # every blob was checked as it arrived
    click.echo(f"Digest: {bundle.root.digest}")
    if before == bundle.root.digest:
        click.echo(f"Status: Image is up to date for {name}")
    else:
        click.echo(f"Status: Downloaded newer image for {name}")
    click.echo(name)


@click.command("copy")
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DST")
@platform_option
@insecure_option
@jobs_option
def copy(
    source: str, target: str, platform: str | None, insecure: tuple[str, ...], jobs: int
) -> None:
    """Copy an image between registries, the store, layouts and archives.

    SRC and DST are each docker://REF (a registry), a store name, oci:DIR[:NAME],
    oci-archive:FILE[:NAME] or docker-archive:FILE[:NAME:TAG]."""
    from alpenglow.oci.platform import parse_platform
    from alpenglow.oci.store import ImageStore

    store = ImageStore.from_environment(os.environ)
    src = parse_location(source)
    dst = parse_location(target)
    wanted = parse_platform(platform) if platform else None
    with _straight_into(src, dst) as layout:
        bundle = read_location(
            src,
            store=store,
            insecure=insecure,
            platform=wanted,
            jobs=jobs,
            progress=TransferDisplay() if src.remote is not None else None,
            layout=layout,
        )
    mount_from = None
    if (
        src.remote is not None
        and dst.remote is not None
        and src.remote.registry == dst.remote.registry
        and src.remote.repository != dst.remote.repository
    ):
        mount_from = src.remote.repository
    names = [src.name] if src.name and (dst.remote is None) else []
    written = write_location(
        bundle,
        dst,
        store=store,
        insecure=insecure,
        names=names,
        jobs=jobs,
        progress=TransferDisplay() if dst.remote is not None else None,
        mount_from=mount_from,
        verified=src.remote is not None,  # a pull checked every blob as it arrived
    )
    for item in written:
        say(f"wrote {item}")
    click.echo(bundle.root.digest)


@contextmanager
def _straight_into(src: Location, dst: Location) -> Iterator[Layout | None]:
    """The layout a pull from a registry is written straight into: the destination's, when
    it is an ``oci:`` layout (created here, and removed again if the pull fails and it did
    not exist before), else None (the pull is held in memory)."""
    if src.remote is None or dst.remote is not None:
        yield None
        return
    from alpenglow.oci.layout import Layout
    from alpenglow.oci.transport import parse_reference

    local = parse_reference(dst.local)
    if local.transport != "oci":
        yield None
        return
    path = Path(local.path)
    existed = path.exists()
    try:
        yield Layout.create(path)
    except BaseException:
        if not existed:
            shutil.rmtree(path, ignore_errors=True)
        raise


@click.command("tag")
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="NEW")
@insecure_option
def tag(source: str, target: str, insecure: tuple[str, ...]) -> None:
    """Give an image another name, in the store or in a registry.

    In the local store by default; for SRC docker://REF the registry's manifest is tagged
    (NEW is then a tag, or a reference in the same registry)."""
    if source.startswith(REGISTRY_PREFIX):
        src = registry_reference(source)
        if ":" in target or "/" in target:
            dst = registry_reference(target)
        else:
            dst = src.with_tag(target)
        if dst.registry != src.registry:
            raise click.UsageError(f"{target}: a tag must be in the same registry as {source}")
        if not dst.tag:
            raise click.UsageError(f"{target}: name a tag")
        with client_for(src, insecure) as client:
            raw = client.get_manifest(src.repository, src.ref)
            client.put_manifest(dst.repository, dst.tag, raw.data, raw.media_type)
        click.echo(f"{dst.name}:{dst.tag}")
        return
    from alpenglow.oci.store import ImageStore

    store = ImageStore.from_environment(os.environ)
    click.echo(store.tag(source, target))


@click.command("ls")
@click.argument("reference", metavar="REPOSITORY")
@insecure_option
def ls(reference: str, insecure: tuple[str, ...]) -> None:
    """List the tags of a repository in a registry, sorted."""
    ref = registry_reference(reference, default_tag="")
    with client_for(ref, insecure) as client:
        tags = client.list_tags(ref.repository)
    for name in sorted(tags):  # registries disagree on the order; the spec says lexical
        click.echo(name)


def _raw_manifest(reference: str, platform: str | None, insecure: tuple[str, ...]) -> bytes:
    """The raw manifest of ``reference`` (or of its ``platform`` entry)."""
    from alpenglow.errors import ImageNotFound
    from alpenglow.oci.image import INDEX_TYPES, parse_index
    from alpenglow.oci.platform import matches, parse_platform

    ref = registry_reference(reference)
    with client_for(ref, insecure) as client:
        raw = client.get_manifest(ref.repository, ref.ref)
        if platform is None or raw.media_type not in INDEX_TYPES:
            return raw.data
        wanted = parse_platform(platform)
        index = parse_index(raw.data, str(ref))
        for entry in index.manifests:
            if entry.platform is not None and matches(wanted, entry.platform):
                return client.get_manifest(ref.repository, entry.digest).data
        have = ", ".join(str(e.platform) for e in index.manifests if e.platform is not None)
        raise ImageNotFound(f"{ref}: no image for {wanted} (it has {have})")


@click.command("digest")
@click.argument("reference", metavar="REF")
@platform_option
@insecure_option
def digest(reference: str, platform: str | None, insecure: tuple[str, ...]) -> None:
    """Print the digest of an image in a registry."""
    if platform is None:
        from alpenglow.errors import RegistryError

        ref = registry_reference(reference)
        with client_for(ref, insecure) as client:
            desc = client.head_manifest(ref.repository, ref.ref)
        if desc is None:
            raise RegistryError(
                f"{ref.name}: manifest {ref.ref}: not found",
                registry=ref.registry,
                repository=ref.repository,
                status=404,
            )
        click.echo(desc.digest)
        return
    from alpenglow.oci.image import digest_of

    click.echo(digest_of(_raw_manifest(reference, platform, insecure)))


@click.command("manifest")
@click.argument("reference", metavar="REF")
@platform_option
@insecure_option
def manifest(reference: str, platform: str | None, insecure: tuple[str, ...]) -> None:
    """Print an image's manifest, byte for byte.

    The index or manifest REF names, exactly as the registry stores it."""
    data = _raw_manifest(reference, platform, insecure)
    out = sys.stdout.buffer
    out.write(data)
    if sys.stdout.isatty():
        out.write(b"\n")
    out.flush()
