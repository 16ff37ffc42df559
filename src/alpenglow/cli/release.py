"""``alpenglow release plan|push``: publish a version with the tags of Alpine's images.

``plan REPO --version 3.22.4`` prints every tag the release concerns, where it points now,
where it will point and why (``3.22.4`` always; ``3.22``, ``3`` and ``latest`` when this is the
newest of its line; a pre-release only its own tag; ``edge`` with ``--edge``). ``push IMAGE
REPO --version 3.22.4`` uploads the image, then moves those tags (see
:mod:`alpenglow.distribution.release` for the order that keeps every tag valid).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from alpenglow.cli._registry import (
    NO_REFERRERS,
    TransferDisplay,
    click_option,
    client_for,
    insecure_option,
    jobs_option,
    parse_location,
    read_location,
    read_referrers,
    registry_reference,
    say,
)

if TYPE_CHECKING:
    from alpenglow.distribution.tags import TagMove

__all__ = ["release"]


def __dir__() -> list[str]:
    return __all__


_NEW = "<the image>"


def _short(digest: str | None, full: bool) -> str:
    if digest is None:
        return "-"
    if full or ":" not in digest:
        return digest
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:12]}"


def _show(moves: Sequence[TagMove], full: bool) -> None:
    from alpenglow.cli._table import print_table

    rows = [
        (m.tag, _short(m.current, full), _short(m.new, full), m.action, m.reason) for m in moves
    ]
    print_table(("TAG", "NOW", "WILL POINT AT", "ACTION", "WHY"), rows)


version_option = click.option(
    "--version", "version", required=True, help="the version released (apk rules: 3.22.4)"
)
edge_option = click.option("--edge", is_flag=True, help="also tag it edge (development branch)")
no_trunc_option = click.option("--no-trunc", is_flag=True, help="print full digests")


@click.group("release")
def release() -> None:
    """Publish versions with Alpine's tags.

    X.Y.Z always; X.Y, X and latest while it is the newest; edge on request."""


@release.command("plan")
@click.argument("repository", metavar="REPO")
@version_option
@edge_option
@click.option("--image", "image", metavar="SRC", help="the image to release (to show its digest)")
@no_trunc_option
@insecure_option
def plan(
    repository: str,
    version: str,
    edge: bool,
    image: str | None,
    no_trunc: bool,
    insecure: tuple[str, ...],
) -> None:
    """Show the tags a release would set, and where they point now.

    Without --image the new image is shown as <the image> (or, when the version is out
    already, as the image its tag names)."""
    from alpenglow.distribution.release import RemoteTags
    from alpenglow.distribution.tags import plan_release
    from alpenglow.oci.store import ImageStore

    repo = registry_reference(repository, default_tag="")
    digest: str | None = None
    if image is not None:
        store = ImageStore.from_environment(os.environ)
        digest = read_location(parse_location(image), store=store, insecure=insecure).root.digest
    with client_for(repo, insecure) as client:
        tags = RemoteTags(client, repo.repository)
        if digest is None:  # the version's image when it is out already (a re-run)
            digest = tags.get(version, _NEW)
        moves = plan_release(tags, version, digest, edge=edge)
    _show(moves, no_trunc)


@release.command("push")
@click.argument("image", metavar="IMAGE")
@click.argument("repository", metavar="REPO")
@version_option
@edge_option
@no_trunc_option
@insecure_option
@jobs_option
@click_option(NO_REFERRERS)
def push(
    image: str,
    repository: str,
    version: str,
    edge: bool,
    no_trunc: bool,
    insecure: tuple[str, ...],
    jobs: int,
    no_referrers: bool,
) -> None:
    """Push an image as a release and move its tags.

    IMAGE is a store name, oci:DIR[:NAME], an archive or docker://REF; REPO the registry
    repository the release goes to. The image's SBOMs kept with it (in the store or an oci:
    layout) go with it, as push sends them."""
    from alpenglow.distribution.release import release_push
    from alpenglow.oci.store import ImageStore

    repo = registry_reference(repository, default_tag="")
    store = ImageStore.from_environment(os.environ)
    source = parse_location(image)
    bundle = read_location(source, store=store, insecure=insecure, jobs=jobs)
    referrers = () if no_referrers else read_referrers(source, bundle, store=store)

    def tagged(move: TagMove) -> None:
        say(f"tagged {repo.name}:{move.tag}")

    with client_for(repo, insecure) as client, TransferDisplay() as display:
        result = release_push(
            bundle,
            repo,
            version,
            client,
            edge=edge,
            progress=display,
            jobs=jobs,
            on_tag=tagged,
            referrers=referrers,
        )
    _show(result.moves, no_trunc)
    say(
        f"released {repo.name} {version} ({result.root.digest}); "
        f"{len(result.written)} tag(s) written"
    )
