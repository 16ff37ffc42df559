"""Publishing a release: push the image, then move its tags by Alpine's scheme. [edge]

:func:`release_push` works in an order that is safe to interrupt and to run again:

1. the plan is made from the repository's tags (:func:`alpenglow.distribution.tags.plan_release`;
   a version tag that already names another image stops everything before any upload);
2. the image is pushed by digest only (every blob, every child manifest, the root), so no tag
   changes while anything is missing;
3. the tags are read again (another release may have happened meanwhile) and re-planned, and
   the tags that change are written one by one, the version's own tag first, then the
   aliases from the most to the least specific, ``latest``, ``edge``. Each one names the
   manifest uploaded in step 2, so a failure midway leaves every tag pointing at a complete
   image, and a re-run finds the tags written so far in place and writes the rest.

:class:`RemoteTags` is the repository's tags as a mapping whose digests are asked for (with
``HEAD``) only when looked up, so planning costs one request per tag in the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from alpenglow.distribution.client import RegistryClient
from alpenglow.distribution.reference import Reference
from alpenglow.distribution.tags import TagMove, plan_release
from alpenglow.distribution.transfer import Progress, push
from alpenglow.errors import RegistryError
from alpenglow.oci.image import Descriptor, ImageBundle

__all__ = ["ReleaseResult", "RemoteTags", "plan_remote_release", "release_push"]


def __dir__() -> list[str]:
    return __all__


class RemoteTags(Mapping[str, str]):
    """The tags of ``repository`` (listed once), each tag's digest fetched on first use.

    A repository that does not exist yet has no tags."""

    def __init__(self, client: RegistryClient, repository: str) -> None:
        self._client = client
        self._repository = repository
        try:
            self._tags = list(dict.fromkeys(client.list_tags(repository)))
        except RegistryError as exc:
            if exc.status != 404:
                raise
            self._tags = []
        self._known = set(self._tags)
        self._digests: dict[str, str] = {}

    def __getitem__(self, tag: str) -> str:
        if tag not in self._known:
            raise KeyError(tag)
        if tag not in self._digests:
            desc = self._client.head_manifest(self._repository, tag)
            if desc is None:  # deleted since it was listed
                self._known.discard(tag)
                raise KeyError(tag)
            self._digests[tag] = desc.digest
        return self._digests[tag]

    def __contains__(self, tag: object) -> bool:
        if not isinstance(tag, str) or tag not in self._known:
            return False
        try:
            self[tag]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter([t for t in self._tags if t in self._known])

    def __len__(self) -> int:
        return len(self._known)


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    """What :func:`release_push` did: the image pushed (``root``), the plan it carried out
    (``moves``; ``written`` the tags it actually changed)."""

    root: Descriptor
    moves: tuple[TagMove, ...]
    written: tuple[str, ...]


def plan_remote_release(
    client: RegistryClient, repository: Reference, version: str, digest: str, *, edge: bool
) -> tuple[TagMove, ...]:
    """The release plan of ``version`` (image ``digest``) against the repository's tags now."""
    return plan_release(RemoteTags(client, repository.repository), version, digest, edge=edge)


def release_push(
    bundle: ImageBundle,
    repository: Reference,
    version: str,
    client: RegistryClient,
    *,
    edge: bool = False,
    progress: Progress | None = None,
    jobs: int = 4,
    on_tag: Callable[[TagMove], None] | None = None,
    referrers: Sequence[ImageBundle] = (),
) -> ReleaseResult:
    """Push ``bundle`` to ``repository`` (its tag and digest, if any, are ignored) as
    release ``version`` and move the tags the plan says; ``on_tag`` is told of each tag
    as it is written. ``referrers`` (the image's SBOMs) go up with the image, before any
    tag moves. See the module docstring for the order and why it is safe."""
    root = bundle.root
    plan_remote_release(client, repository, version, root.digest, edge=edge)  # fail early
    target = repository.with_digest(root.digest)
    push(bundle, target, client, jobs=jobs, progress=progress, referrers=referrers)
    moves = plan_remote_release(client, repository, version, root.digest, edge=edge)
    data = bundle.blob(root.digest)
    written: list[str] = []
    for move in moves:
        if not move.changes:
            continue
        client.put_manifest(repository.repository, move.tag, data, root.media_type)
        written.append(move.tag)
        if on_tag is not None:
            on_tag(move)
    return ReleaseResult(root, moves, tuple(written))
