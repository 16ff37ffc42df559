"""Pushing an :class:`ImageBundle` to a registry and pulling one back. [edge]

:func:`push` uploads what the registry lacks (each blob is checked first; with
``mount_from`` a blob is mounted from another repository of the same registry instead of
uploaded), then the manifests bottom-up: every child manifest by digest before the index
that lists it, and the root last, under the tag. So a tag never points at something
incomplete, and a re-run uploads nothing.

Artifacts about the image (its *referrers*: manifests whose ``subject`` is one of the
image's manifests, such as the SBOMs ``alpenglow build`` attaches) go up with it, by digest
(their blobs with its blobs, their manifests beside its root). A registry with the OCI 1.1
referrers API says so by answering such a manifest with an ``OCI-Subject`` header, and lists
them itself; for any other (Debian's docker-registry 2.8) the client keeps the list, as the
distribution spec's *referrers tag schema* says: an image index under the tag
``<alg>-<hex>`` of the subject's digest (:func:`referrers_tag`), one descriptor per referrer
(its ``artifactType`` and annotations copied from the manifest). :func:`push` reads that
tag (none yet: an empty list), adds the referrers it lacks, keeps every other entry, and
puts it back once the image and every artifact are up; when nothing is missing it writes
nothing. The image's own tag is never touched by this.

:func:`pull` reads the root manifest or index, the manifests it lists (all platforms, or the
one asked for, which then becomes the root), and every config and layer, in parallel; each
blob is verified against its digest and size before it is kept (in memory, or written
straight into an OCI layout, all or nothing).

Progress goes to a :class:`Progress` (per blob: started, advanced, finished); the library
never prints. Implementations must be thread-safe.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Protocol, TypeVar

from alpenglow.distribution.client import RawManifest, RegistryClient
from alpenglow.distribution.reference import Reference
from alpenglow.errors import (
    AlpenglowError,
    DigestMismatch,
    FormatError,
    ImageNotFound,
    RegistryError,
)
from alpenglow.oci.image import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OPTIONAL_LAYER_TYPES,
    Descriptor,
    ImageBundle,
    Platform,
    canonical_json,
    index_bytes,
    parse_config,
    parse_index,
    parse_json,
    parse_manifest,
)
from alpenglow.oci.layout import Layout, LayoutBlobs
from alpenglow.oci.platform import matches

__all__ = [
    "NullProgress",
    "Progress",
    "pull",
    "push",
    "referrers_tag",
]


def __dir__() -> list[str]:
    return __all__


T = TypeVar("T")


class Progress(Protocol):
    """Per-blob transfer hooks (called from worker threads).

    ``advanced`` gets the bytes done so far (it may go down when a transfer restarts);
    ``finished`` gets the outcome: ``uploaded``, ``mounted``, ``exists``, ``downloaded``,
    ``cached`` (already in the target layout) or ``failed``.
    """

    def started(self, digest: str, total: int) -> None: ...

    def advanced(self, digest: str, done: int) -> None: ...

    def finished(self, digest: str, outcome: str) -> None: ...


class NullProgress:
    """Reports nothing."""

    def started(self, digest: str, total: int) -> None:
        pass

    def advanced(self, digest: str, done: int) -> None:
        pass

    def finished(self, digest: str, outcome: str) -> None:
        pass


class _Workers:
    """At most ``jobs`` threads, started when first needed and reused by every batch of
    one push or pull (starting a thread is not free on a busy machine)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> _Workers:
        return self

    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.jobs)
        return self._pool

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _run_parallel(tasks: Sequence[Callable[[], T]], workers: _Workers) -> list[T]:
    """Run ``tasks`` on the ``workers``' threads; results in order. The first failure is
    raised once the running tasks are done; tasks not yet started are cancelled."""
    if len(tasks) <= 1 or workers.jobs <= 1:
        return [task() for task in tasks]
    pool = workers.pool()
    return _gather([pool.submit(task) for task in tasks])


def _gather(futures: Sequence[Future[T]]) -> list[T]:
    """The results of ``futures`` in order; the first failure is raised once the running
    ones are done, those not started yet are cancelled."""
    wait(futures, return_when=FIRST_EXCEPTION)
    for future in futures:
        if future.done() and not future.cancelled() and future.exception() is not None:
            for other in futures:
                other.cancel()
            wait(futures)
            error = future.exception()
            assert error is not None
            raise error
    return [future.result() for future in futures]


# --------------------------------------------------------------------------------------------
# push


def _plan(bundle: ImageBundle) -> tuple[list[Descriptor], list[Descriptor]]:
    """The leaf blobs (configs and layers) to upload, and the manifests and indexes in
    the order to put them (children before parents, the root last)."""
    blobs: dict[str, Descriptor] = {}
    documents: list[Descriptor] = []
    seen: set[str] = set()

    def visit(desc: Descriptor) -> None:
        if desc.digest in seen:
            return
        seen.add(desc.digest)
        if desc.media_type in INDEX_TYPES:
            for child in bundle.index(desc).manifests:
                visit(child)
            documents.append(desc)
        elif desc.media_type in MANIFEST_TYPES:
            manifest = bundle.manifest(desc)
            for leaf in (manifest.config, *manifest.layers):
                if leaf.media_type in OPTIONAL_LAYER_TYPES and leaf.digest not in bundle.blobs:
                    continue
                blobs.setdefault(leaf.digest, leaf)
            documents.append(desc)
        else:
            blobs.setdefault(desc.digest, desc)

    visit(bundle.root)
    return list(blobs.values()), documents


def _push_blob(
    client: RegistryClient,
    repository: str,
    bundle: ImageBundle,
    desc: Descriptor,
    progress: Progress,
    mount_from: str | None,
    chunk_size: int | None,
) -> str:
    digest = desc.digest
    progress.started(digest, desc.size)
    try:
        if client.blob_exists(repository, digest) is not None:
            progress.advanced(digest, desc.size)
            progress.finished(digest, "exists")
            return "exists"
        data = bundle.blob(digest)
        if len(data) != desc.size:
            raise FormatError(
                f"{bundle.source}: blob {digest} has {len(data)} bytes, its descriptor says "
                f"{desc.size}"
            )
        outcome = client.upload_blob(
            repository,
            data,
            digest,
            desc.size,
            chunk_size=chunk_size,
            mount_from=mount_from,
            progress=functools.partial(progress.advanced, digest),
        )
    except BaseException:
        progress.finished(digest, "failed")
        raise
    progress.finished(digest, outcome)
    return outcome


def _put_document(
    client: RegistryClient, repository: str, bundle: ImageBundle, desc: Descriptor
) -> None:
    data = bundle.blob(desc.digest)
    if len(data) != desc.size:
        raise FormatError(
            f"{bundle.source}: {desc.digest} has {len(data)} bytes, its descriptor says {desc.size}"
        )
    client.put_manifest(repository, desc.digest, data, desc.media_type)


def _push_documents(
    client: RegistryClient,
    repository: str,
    bundle: ImageBundle,
    documents: Sequence[Descriptor],
    workers: _Workers,
) -> None:
    """Put ``documents`` (children before parents): the image manifests in parallel (none
    refers to another), then the indexes one by one in order."""
    manifests = [d for d in documents if d.media_type not in INDEX_TYPES]
    indexes = [d for d in documents if d.media_type in INDEX_TYPES]
    _run_parallel(
        [functools.partial(_put_document, client, repository, bundle, d) for d in manifests],
        workers,
    )
    for desc in indexes:
        _put_document(client, repository, bundle, desc)


def push(
    bundle: ImageBundle,
    ref: Reference,
    client: RegistryClient,
    *,
    jobs: int = 4,
    progress: Progress | None = None,
    referrers: Sequence[ImageBundle] = (),
    mount_from: str | None = None,
    chunk_size: int | None = None,
) -> Descriptor:
    """Push ``bundle`` to ``ref`` (its tag; or only by digest when ``ref`` has none) and
    return the root descriptor as pushed.

    Blobs go up ``jobs`` at a time, each skipped when the registry has it, mounted from
    ``mount_from`` (a repository of the same registry) when given, else uploaded (in
    ``chunk_size`` pieces when given). Manifests follow, children first; the root is put
    under the tag last. ``referrers`` (artifacts whose ``subject`` is one of the image's
    manifests, such as SBOMs) go up by digest with it: their blobs with the image's, their
    manifests beside its root once its other manifests are up. Then each is listed under the
    referrers tag of its subject unless the registry answered that it lists them itself
    (see the module's documentation).

    If ``ref`` carries a digest, the bundle's root must have it."""
    if ref.digest and ref.digest != bundle.root.digest:
        raise AlpenglowError(
            f"{ref}: the image's digest is {bundle.root.digest}, not {ref.digest}",
            hint="push by tag, or name the image's own digest",
        )
    listings = [_listing(artifact) for artifact in referrers]
    for subject, _ in listings:
        if subject and ref.tag == referrers_tag(subject):
            raise AlpenglowError(
                f"{ref}: {ref.tag} is the tag that lists the referrers of {subject}",
                hint="push the image under another tag",
            )
    repository = ref.repository
    reporter: Progress = progress or NullProgress()
    root = bundle.root
    with _Workers(jobs) as workers:
        blobs, documents = _plan(bundle)
        plans = [(artifact, *_plan(artifact)) for artifact in referrers]
        _push_blobs(  # the artifacts' small blobs go up in the same batch as the layers
            client,
            repository,
            [(bundle, blobs), *((artifact, leaves) for artifact, leaves, _ in plans)],
            reporter,
            mount_from,
            chunk_size,
            workers,
        )
        children = [d for d in documents if d.digest != root.digest]
        _push_documents(client, repository, bundle, children, workers)
        for artifact, _, parts in plans:
            inner = [d for d in parts if d.digest != artifact.root.digest]
            if inner:
                _push_documents(client, repository, artifact, inner, workers)
        answers = _put_roots(client, repository, bundle, ref, referrers, listings, workers)
        unlisted: dict[str, list[Descriptor]] = {}
        for (subject, entry), answer in zip(listings, answers, strict=True):
            if subject and answer != subject:
                unlisted.setdefault(subject, []).append(entry)
        _run_parallel(  # once the image and every artifact are up
            [
                functools.partial(_list_referrers, client, repository, subject, entries)
                for subject, entries in unlisted.items()
            ],
            workers,
        )
    return root


def _put_roots(
    client: RegistryClient,
    repository: str,
    bundle: ImageBundle,
    ref: Reference,
    referrers: Sequence[ImageBundle],
    listings: Sequence[tuple[str, Descriptor]],
    workers: _Workers,
) -> list[str]:
    """Put the root of ``bundle`` under the tag of ``ref`` (or its digest), and the roots of
    ``referrers`` by digest beside it, in parallel (those about the root itself after it);
    returns the registry's ``OCI-Subject`` answer to each referrer."""
    root = bundle.root
    answers = [""] * len(referrers)
    first = [i for i, (subject, _) in enumerate(listings) if subject != root.digest]
    later = [i for i, (subject, _) in enumerate(listings) if subject == root.digest]
    data = bundle.blob(root.digest)
    tasks: list[Callable[[], str]] = [
        functools.partial(
            client.put_manifest, repository, ref.tag or root.digest, data, root.media_type
        )
    ]
    tasks += [functools.partial(_put_referrer, client, repository, referrers[i]) for i in first]
    for i, answer in zip(first, _run_parallel(tasks, workers)[1:], strict=True):
        answers[i] = answer
    tasks = [functools.partial(_put_referrer, client, repository, referrers[i]) for i in later]
    for i, answer in zip(later, _run_parallel(tasks, workers), strict=True):
        answers[i] = answer
    return answers


def _push_blobs(
    client: RegistryClient,
    repository: str,
    planned: Sequence[tuple[ImageBundle, Sequence[Descriptor]]],
    progress: Progress,
    mount_from: str | None,
    chunk_size: int | None,
    workers: _Workers,
) -> None:
    """Upload the blobs (configs and layers) planned for each bundle, each digest once, in
    parallel."""
    tasks: dict[str, Callable[[], str]] = {}
    for bundle, blobs in planned:
        for desc in blobs:
            if desc.digest not in tasks:
                tasks[desc.digest] = functools.partial(
                    _push_blob, client, repository, bundle, desc, progress, mount_from, chunk_size
                )
    _run_parallel(list(tasks.values()), workers)


# --------------------------------------------------------------------------------------------
# referrers


_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def referrers_tag(digest: str) -> str:
    """The tag listing the referrers of the manifest ``digest`` on a registry without the
    referrers API (the distribution spec's referrers tag schema): the algorithm cut to 32
    characters, ``-``, the hex cut to 64, anything a tag cannot hold replaced by ``-``.

    >>> referrers_tag("sha256:" + "ab" * 32) == "sha256-" + "ab" * 32
    True
    >>> len(referrers_tag("sha512:" + "0" * 128))
    71
    """
    algorithm, _, encoded = digest.partition(":")
    return _TAG_UNSAFE.sub("-", f"{algorithm[:32]}-{encoded[:64]}")


def _listing(artifact: ImageBundle) -> tuple[str, Descriptor]:
    """The subject digest of ``artifact`` ("" when it has none) and its entry in a list of
    referrers: its root with the ``artifactType`` (of the manifest, else its config's media
    type; of an index, if it says) and the annotations of the document."""
    root = artifact.root
    if root.media_type in INDEX_TYPES:
        index = artifact.index(root)
        subject, annotations, kind = index.subject, index.annotations, index.artifact_type
    elif root.media_type in MANIFEST_TYPES:
        manifest = artifact.manifest(root)
        subject, annotations = manifest.subject, manifest.annotations
        kind = manifest.artifact_type or manifest.config.media_type
    else:
        return "", root
    entry = Descriptor(
        root.media_type, root.digest, root.size, annotations=annotations, artifact_type=kind
    )
    return ("" if subject is None else subject.digest), entry


def _put_referrer(client: RegistryClient, repository: str, artifact: ImageBundle) -> str:
    """Put the root of ``artifact`` by digest; the registry's ``OCI-Subject`` answer."""
    root = artifact.root
    data = artifact.blob(root.digest)
    if len(data) != root.size:
        raise FormatError(
            f"{artifact.source}: {root.digest} has {len(data)} bytes, its descriptor says "
            f"{root.size}"
        )
    return client.store_manifest(repository, root.digest, data, root.media_type).subject


def _list_referrers(
    client: RegistryClient, repository: str, subject: str, entries: Sequence[Descriptor]
) -> bool:
    """Add ``entries`` to the index under the referrers tag of ``subject`` (made when there
    is none), keeping the entries already listed; whether it was written (not when every
    entry was there already)."""
    tag = referrers_tag(subject)
    where = f"{client.registry}/{repository}:{tag}"
    try:
        raw = client.get_manifest(repository, tag)
    except RegistryError as exc:
        if exc.status != 404:
            raise
        raw = None
    listed: list[object] = []
    document: dict[str, object] = {}
    if raw is not None:
        if raw.media_type != OCI_INDEX:
            raise AlpenglowError(
                f"{where}: holds a {raw.media_type or 'document of no media type'}, not the "
                f"image index listing the referrers of {subject}; they were pushed but are not "
                "listed",
                hint="delete that tag, or push to a registry with the OCI referrers API",
            )
        index = parse_index(raw.data, f"{where}: referrers of {subject}")
        have = {d.digest for d in index.manifests}
        document = parse_json(raw.data, where)
        assert isinstance(document, dict)  # parse_index checked it
        manifests = document.get("manifests")
        listed = list(manifests) if isinstance(manifests, list) else []
    else:
        have = set()
    missing: list[Descriptor] = []
    for entry in entries:
        if entry.digest not in have:
            have.add(entry.digest)
            missing.append(entry)
    if not missing:
        return False
    if raw is None:
        data = index_bytes(missing)
    else:
        document["manifests"] = [*listed, *(entry.to_json() for entry in missing)]
        data = canonical_json(document)
    client.put_manifest(repository, tag, data, OCI_INDEX)
    return True


# --------------------------------------------------------------------------------------------
# pull


class _EarlyLeaves:
    """Blob downloads started by the worker that fetched their manifest, so blobs flow
    while the other manifests of an index are still on their way."""

    def __init__(self, workers: _Workers, start: Callable[[Descriptor], bytes | None]) -> None:
        self._workers = workers
        self._start = start
        self._lock = threading.Lock()
        self.futures: dict[str, Future[bytes | None]] = {}

    def manifest_arrived(self, data: bytes) -> None:
        try:
            manifest = parse_manifest(data)
        except FormatError:
            return  # reported when the manifest is read again
        with self._lock:
            for leaf in (manifest.config, *manifest.layers):
                if leaf.media_type in OPTIONAL_LAYER_TYPES or leaf.digest in self.futures:
                    continue
                pool = self._workers.pool()
                self.futures[leaf.digest] = pool.submit(self._start, leaf)

    def cancel(self) -> None:
        """Cancel what has not started and wait for the rest."""
        with self._lock:
            futures = list(self.futures.values())
        for future in futures:
            future.cancel()
        wait(futures)


def _fetch_document(
    client: RegistryClient,
    repository: str,
    desc: Descriptor,
    source: str,
    early: _EarlyLeaves | None = None,
) -> RawManifest:
    raw = client.get_manifest(repository, desc.digest)
    if len(raw.data) != desc.size:
        raise DigestMismatch(
            f"{source}: manifest {desc.digest} has {len(raw.data)} bytes, its descriptor "
            f"says {desc.size}",
            registry=client.registry,
            repository=repository,
        )
    if early is not None and desc.media_type in MANIFEST_TYPES:
        early.manifest_arrived(raw.data)
    return raw


def _select(children: Sequence[Descriptor], platform: Platform) -> Descriptor | None:
    for child in children:
        if child.platform is not None and matches(platform, child.platform):
            return child
    return None


def _pull_blob(
    client: RegistryClient,
    repository: str,
    desc: Descriptor,
    progress: Progress,
    layout: Layout | None,
    staged: list[tuple[Path, Path]],
) -> bytes | None:
    digest = desc.digest
    progress.started(digest, desc.size)
    try:
        if layout is not None:
            if _present(layout, desc):
                progress.advanced(digest, desc.size)
                progress.finished(digest, "cached")
                return None
            tmp = layout.staging_path(digest)
            client.download_blob(
                repository,
                digest,
                tmp,
                size=desc.size,
                progress=functools.partial(progress.advanced, digest),
            )
            staged.append((tmp, layout.blob_path(digest)))  # list.append is atomic
            data = None
        else:
            data = client.get_blob(
                repository,
                digest,
                size=desc.size,
                progress=functools.partial(progress.advanced, digest),
            )
    except BaseException:
        progress.finished(digest, "failed")
        raise
    progress.finished(digest, "downloaded")
    return data


def _present(layout: Layout, desc: Descriptor) -> bool:
    """Whether the layout already has the blob, whole and sound (it is hashed)."""
    path = layout.blob_path(desc.digest)
    algorithm = desc.digest.partition(":")[0]
    try:
        if path.stat().st_size != desc.size:
            return False
        with open(path, "rb") as fh:
            actual = hashlib.file_digest(fh, algorithm).hexdigest()
    except OSError:
        return False
    return f"{algorithm}:{actual}" == desc.digest


def _discard(staged: Sequence[tuple[Path, Path]]) -> None:
    for tmp, _ in staged:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _commit(staged: Sequence[tuple[Path, Path]], layout: Layout) -> None:
    """Rename the verified downloads into place."""
    try:
        for tmp, path in staged:
            os.replace(tmp, path)
    except OSError as exc:
        _discard(staged)
        raise AlpenglowError(f"{layout.path}: cannot store a blob: {exc.strerror}") from None


def pull(
    ref: Reference,
    client: RegistryClient,
    *,
    platform: Platform | None = None,
    progress: Progress | None = None,
    jobs: int = 4,
    layout: Layout | None = None,
) -> ImageBundle:
    """Pull the image at ``ref`` (its digest if it has one, else its tag).

    With ``platform`` only the matching image of an index is pulled and becomes the
    bundle's root (carrying its platform); a single-image ``ref`` must match it. Without,
    every manifest the index lists is pulled. Every byte is verified before it is kept.

    The blobs are held in memory, or with ``layout`` written straight into that OCI layout
    (blobs it already has are not downloaded): each under a temporary name, hashed as it
    arrives, and renamed into place only once every blob has arrived whole and verified, so
    a failed pull leaves nothing behind. The bundle then reads them from there. Nothing is
    named in the layout's ``index.json``."""
    with _Workers(jobs) as workers:
        return _pull(ref, client, platform, progress, workers, layout)


def _pull(
    ref: Reference,
    client: RegistryClient,
    platform: Platform | None,
    progress: Progress | None,
    workers: _Workers,
    layout: Layout | None,
) -> ImageBundle:
    repository = ref.repository
    reporter: Progress = progress or NullProgress()
    staged: list[tuple[Path, Path]] = []
    start = functools.partial(
        _pull_blob, client, repository, progress=reporter, layout=layout, staged=staged
    )
    early = _EarlyLeaves(workers, start) if platform is None and workers.jobs > 1 else None
    try:
        return _pull_all(ref, client, platform, workers, layout, start, staged, early)
    except BaseException:
        if early is not None:
            early.cancel()
        _discard(staged)
        raise


def _pull_all(
    ref: Reference,
    client: RegistryClient,
    platform: Platform | None,
    workers: _Workers,
    layout: Layout | None,
    start: Callable[[Descriptor], bytes | None],
    staged: list[tuple[Path, Path]],
    early: _EarlyLeaves | None,
) -> ImageBundle:
    repository = ref.repository
    source = str(ref)
    top = client.get_manifest(repository, ref.ref)
    root = top.descriptor
    documents: dict[str, bytes] = {root.digest: top.data}
    manifests: list[Descriptor] = []
    if root.media_type in INDEX_TYPES:
        chosen = _walk_index(
            client, repository, root, top.data, platform, documents, source, workers, early
        )
        if platform is not None:
            root = chosen[0]
        manifests = chosen
    elif root.media_type in MANIFEST_TYPES:
        manifests = [root]
    else:
        raise FormatError(f"{source}: unexpected media type {root.media_type!r} for a manifest")
    leaves: dict[str, Descriptor] = {}
    configs: dict[str, Descriptor] = {}
    for desc in manifests:
        manifest = parse_manifest(documents[desc.digest], f"{source}: manifest {desc.digest}")
        configs.setdefault(desc.digest, manifest.config)
        for leaf in (manifest.config, *manifest.layers):
            if leaf.media_type in OPTIONAL_LAYER_TYPES:
                continue
            leaves.setdefault(leaf.digest, leaf)
    if platform is not None and root.media_type in MANIFEST_TYPES and root.platform is None:
        config_desc = configs[root.digest]
        config = client.get_blob(repository, config_desc.digest, size=config_desc.size)
        have = parse_config(config, f"{source}: config").platform
        if not matches(platform, have):
            raise ImageNotFound(f"{source}: the image is for {have}, not {platform}")
        root = root.with_platform(have)
    started = early.futures if early is not None else {}
    if started:
        pool = workers.pool()
        results = _gather(
            [
                started[desc.digest] if desc.digest in started else pool.submit(start, desc)
                for desc in leaves.values()
            ]
        )
    else:
        results = _run_parallel([functools.partial(start, d) for d in leaves.values()], workers)
    if layout is not None:
        _commit(staged, layout)
        for digest, document in documents.items():
            layout.put_blob(document, digest)
        keep = [d for d in (root, *manifests) if d.digest in documents]
        digests = {d.digest for d in keep} | set(leaves)
        if root.media_type in INDEX_TYPES:
            digests |= set(documents)
        return ImageBundle(root, LayoutBlobs(layout, digests), source)
    blobs: dict[str, bytes] = {}
    for desc, result in zip(leaves.values(), results, strict=True):
        assert result is not None
        blobs[desc.digest] = result
    if root.media_type in INDEX_TYPES:
        blobs.update(documents)
    else:
        for desc in manifests:
            blobs[desc.digest] = documents[desc.digest]
    return ImageBundle(root, blobs, source)


def _walk_index(
    client: RegistryClient,
    repository: str,
    root: Descriptor,
    data: bytes,
    platform: Platform | None,
    documents: dict[str, bytes],
    source: str,
    workers: _Workers,
    early: _EarlyLeaves | None = None,
) -> list[Descriptor]:
    """The image manifests under the index ``root`` (all, or the one for ``platform``),
    fetching every document on the way into ``documents``."""
    found: list[Descriptor] = []
    pending: list[tuple[Descriptor, bytes]] = [(root, data)]
    while pending:
        desc, raw = pending.pop(0)
        children = list(parse_index(raw, f"{source}: index {desc.digest}").manifests)
        if platform is not None:
            pick = _select([c for c in children if c.media_type in MANIFEST_TYPES], platform)
            nested = [c for c in children if c.media_type in INDEX_TYPES]
            children = ([pick] if pick is not None else []) + nested
        wanted = [c for c in children if c.digest not in documents]
        fetched = _run_parallel(
            [
                functools.partial(_fetch_document, client, repository, child, source, early)
                for child in wanted
            ],
            workers,
        )
        for child, doc in zip(wanted, fetched, strict=True):
            documents[child.digest] = doc.data
            if child.media_type in INDEX_TYPES:
                pending.append((child, doc.data))
            elif child.media_type in MANIFEST_TYPES:
                found.append(child)
        if platform is not None and found:
            return found[:1]
    if platform is not None:
        available = _platforms(documents, root)
        raise ImageNotFound(
            f"{source}: no image for {platform}"
            + (f" (it has {', '.join(available)})" if available else "")
        )
    return found


def _platforms(documents: Mapping[str, bytes], root: Descriptor) -> list[str]:
    out: list[str] = []
    try:
        for child in parse_index(documents[root.digest]).manifests:
            if child.platform is not None and child.platform.os != "unknown":
                out.append(str(child.platform))
    except (FormatError, KeyError):
        return out
    return out
