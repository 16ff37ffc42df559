"""``alpenglow inspect IMAGE``: an image's index, manifests and configs as JSON.

IMAGE is a store name or id, or any transport (``oci:DIR:TAG``, ``oci-archive:FILE``,
``docker-archive:FILE``); a name or id that is no image but a container's shows the
container (as ``alpenglow container inspect``). With ``--sizes`` it prints instead, per
platform, the compressed size of the image and its largest packages by installed size
(from the apk database in the image; ``--top N`` of them).
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from alpenglow.cli._table import human_size, print_table

__all__ = ["inspect"]


def _document(data: bytes) -> Any:
    return json.loads(data)


@click.command("inspect")
@click.argument("image")
@click.option("--sizes", is_flag=True, help="print sizes and the largest packages per platform")
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="how many packages --sizes lists per platform",
)
@click.option("--platform", "platform_text", default=None, help="only this platform (linux/arm64)")
def inspect(image: str, sizes: bool, top: int, platform_text: str | None) -> None:
    """Show an image's index, manifests and configs (or its sizes)."""
    from alpenglow.errors import ImageNotFound, InvalidReference
    from alpenglow.oci.image import Platform
    from alpenglow.oci.platform import arch_for_platform, matches, parse_platform
    from alpenglow.oci.sizes import size_report
    from alpenglow.oci.store import ImageStore, short_id
    from alpenglow.oci.transport import parse_reference, read_image

    reference = parse_reference(image)
    store = ImageStore.from_environment(os.environ) if reference.transport == "store" else None
    try:
        bundle = read_image(reference, store=store)
    except ImageNotFound:
        from alpenglow.cli._runtime import container_json

        found = container_json(image) if reference.transport == "store" and not sizes else None
        if found is None:
            raise
        click.echo(found)  # a container of that name or id (as docker inspect finds both)
        return
    wanted = parse_platform(platform_text) if platform_text else None
    images = [i for i in bundle.images() if wanted is None or matches(wanted, i.platform)]
    if wanted is not None and not images:
        have = ", ".join(str(i.platform) for i in bundle.images())
        raise ImageNotFound(f"{image}: no image for {wanted} (it has {have})")
    name = str(reference) if reference.transport != "store" else reference.name

    if not sizes:
        out: dict[str, Any] = {
            "name": name,
            "digest": bundle.root.digest,
            "mediaType": bundle.root.media_type,
        }
        if bundle.is_index:
            out["index"] = _document(bundle.blob(bundle.root.digest))
        out["images"] = [
            {
                "platform": str(i.platform),
                "digest": i.descriptor.digest,
                "manifest": _document(bundle.blob(i.descriptor.digest)),
                "config": _document(bundle.blob(i.manifest.config.digest)),
            }
            for i in images
        ]
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return

    report = [r for r in size_report(bundle) if wanted is None or matches(wanted, r.platform)]

    def arch(platform: Platform) -> str:
        try:
            return arch_for_platform(platform)
        except InvalidReference:
            return platform.architecture

    print_table(
        ("ARCH", "PLATFORM", "TAG", "DIGEST", "COMPRESSED"),
        [
            (
                arch(r.platform),
                str(r.platform),
                name,
                short_id(r.digest),
                human_size(r.compressed_size),
            )
            for r in report
        ],
    )
    for r in report:
        click.echo("")
        if r.packages is None:
            click.echo(f"{r.platform}: no apk database in the image")
            continue
        click.echo(
            f"{r.platform}: {len(r.packages)} packages, "
            f"{human_size(r.installed_size)} installed; largest {min(top, len(r.packages))}:"
        )
        print_table(
            ("PACKAGE", "VERSION", "INSTALLED SIZE"),
            [(p.name, p.version, human_size(p.installed_size)) for p in r.packages[:top]],
        )
