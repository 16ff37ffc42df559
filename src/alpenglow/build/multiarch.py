"""Building every architecture of an image at once, and the image index that joins them.

``archs:`` in the configuration (or ``--arch``) names the architectures; ``all`` means every
Alpine architecture for which the repositories hold an index. Each architecture is built in a
worker process of its own (solving and compressing are CPU work), and the results are put
together into one OCI image index with each manifest's ``os``/``architecture``/``variant``.
The SBOMs are attached as OCI artifact manifests whose ``subject`` is the platform's manifest.

Edges: the repositories are probed for ``all`` (local files or an HTTP ``HEAD``) and keyring
URLs are fetched into the shared cache; everything else is in
:mod:`alpenglow.build.builder`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alpenglow.build.builder import BaseImage, BuildError, PlatformBuild, build_platform
from alpenglow.errors import AlpenglowError
from alpenglow.oci.image import OCI_INDEX, Descriptor, index_bytes
from alpenglow.oci.platform import ALL_ARCHES

if TYPE_CHECKING:
    from alpenglow.build.config import BuildConfig
    from alpenglow.build.install import LockPin
    from alpenglow.build.lock import Lock

__all__ = [
    "BuildResult",
    "available_archs",
    "build_image",
    "fetch_keys",
    "lock_of",
    "select_archs",
]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True, slots=True)
class BuildResult:
    """A finished multi-architecture image."""

    index: Descriptor
    """The image index (the root of the image)."""
    blobs: dict[str, bytes]
    """Every blob: index, manifests, configs, layers, SBOM artifacts."""
    platforms: tuple[PlatformBuild, ...]
    """In the index's order (the order of the requested architectures)."""
    referrers: tuple[Descriptor, ...]
    """The SBOM artifact manifests, one per platform."""
    epoch: int


def _index_urls(repositories: Sequence[str], arch: str, source: str) -> list[str]:
    from alpenglow.apk.repository import parse_repositories

    repos, warnings = parse_repositories("\n".join(repositories) + "\n", arch, source=source)
    if warnings:
        raise BuildError(f"{source}: {warnings[0]}")
    return [r.url for r in repos]


def _exists(url: str) -> bool:
    from alpenglow.apk.repository import index_location

    local = index_location(url)
    if local is not None:
        return os.path.isfile(local)
    from alpenglow.http_client import HttpClient, HttpError

    try:
        with HttpClient(timeout=10.0) as client:
            response = client.request("HEAD", url, follow_redirects=True)
    except HttpError:
        return False
    return response.status == 200


def available_archs(repositories: Sequence[str], *, source: str) -> tuple[str, ...]:
    """The Alpine architectures for which every repository holds an index."""
    found = []
    for arch in ALL_ARCHES:
        urls = _index_urls(repositories, arch, source)
        if urls and all(_exists(u) for u in urls):
            found.append(arch)
    return tuple(found)


def select_archs(config: BuildConfig, requested: Sequence[str]) -> tuple[str, ...]:
    """The architectures to build: ``requested`` (``all`` expands), else the configuration's
    ``archs``, else the machine's."""
    from alpenglow.build.config import normalize_arch

    source = str(config.source)
    if not requested:
        requested = list(config.archs)
    if not requested:
        from alpenglow.cli.apk._session import default_arch

        return (default_arch(),)
    if "all" in requested:
        found = available_archs(config.repositories, source=source)
        if not found:
            raise BuildError(f"{source}: no architecture has an index in every repository")
        return found
    out: list[str] = []
    for name in requested:
        arch = normalize_arch(name)
        if arch is None:
            raise BuildError(f"--arch: unknown architecture {name!r}")
        if arch not in out:
            out.append(arch)
    return tuple(out)


def fetch_keys(config: BuildConfig, cache_dir: Path) -> tuple[Path, ...]:
    """The keyring as local files: paths as they are, URLs fetched once into the cache
    (``keys/<sha256 of URL>/<name>``, written atomically)."""
    keys: list[Path] = []
    for entry in config.keyring:
        if "://" not in entry:
            path = Path(entry)
            if not path.is_file():
                raise BuildError(f"{config.source}: keyring: {entry}: no such key file")
            keys.append(path)
            continue
        name = entry.rstrip("/").rsplit("/", 1)[-1] or "key.rsa.pub"
        where = cache_dir / "keys" / hashlib.sha256(entry.encode()).hexdigest()[:16] / name
        if not where.is_file():
            from alpenglow.apk.fetch import Fetcher

            with Fetcher() as fetcher:
                data = fetcher.get(entry).data
            where.parent.mkdir(parents=True, exist_ok=True)
            tmp = where.with_name(f".{name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, where)
        keys.append(where)
    return tuple(keys)


def _pins(lock: Lock | None, arch: str) -> tuple[LockPin, ...] | None:
    if lock is None:
        return None
    from alpenglow.build.install import LockPin

    return tuple(LockPin(p.name, p.version, p.checksum) for p in lock.packages_for(arch))


def _one(job: dict[str, Any]) -> tuple[str, Any]:
    """A worker: build one architecture; errors come back as their one-line message (an
    exception with a custom constructor does not survive pickling reliably)."""
    try:
        return "ok", build_platform(**job)
    except AlpenglowError as exc:
        return "error", str(exc)


def build_image(
    config: BuildConfig,
    archs: Sequence[str],
    *,
    cache_dir: Path,
    epoch: int | None = None,
    lock: Lock | None = None,
    bases: dict[str, BaseImage] | None = None,
    jobs: int | None = None,
    image_name: str = "",
    on_done: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build ``config`` for every arch in ``archs``; raise :class:`BuildError` listing each
    architecture that failed."""
    keys = fetch_keys(config, cache_dir)
    work: list[dict[str, Any]] = []
    for arch in archs:
        work.append(
            {
                "config": config,
                "arch": arch,
                "keys": keys,
                "cache_dir": cache_dir,
                "epoch": epoch,
                "locked": _pins(lock, arch),
                "base": (bases or {}).get(arch),
                "image_name": image_name,
            }
        )
    workers = max(1, min(jobs or os.cpu_count() or 1, len(work)))
    outcomes: dict[str, tuple[str, Any]] = {}
    if workers == 1:
        for job in work:
            outcomes[job["arch"]] = _one(job)
            if on_done and outcomes[job["arch"]][0] == "ok":
                on_done(job["arch"])
    else:
        import concurrent.futures
        import multiprocessing

        context = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {pool.submit(_one, job): job["arch"] for job in work}
            for future in concurrent.futures.as_completed(futures):
                outcomes[futures[future]] = future.result()
                if on_done and outcomes[futures[future]][0] == "ok":
                    on_done(futures[future])
    errors = [f"{arch}: {msg}" for arch, (kind, msg) in outcomes.items() if kind == "error"]
    if errors:
        raise BuildError("; ".join(sorted(errors)))
    platforms = tuple(outcomes[arch][1] for arch in archs)
    return _assemble(config, platforms)


def _assemble(config: BuildConfig, platforms: tuple[PlatformBuild, ...]) -> BuildResult:
    blobs: dict[str, bytes] = {}
    for p in platforms:
        blobs.update(p.blobs)
    annotations = platforms[0].annotations if platforms else ()
    data = index_bytes([p.manifest for p in platforms], annotations=annotations)
    index = Descriptor.of(OCI_INDEX, data)
    blobs[index.digest] = data
    referrers = tuple(p.sbom_manifest for p in platforms if p.sbom_manifest is not None)
    return BuildResult(
        index=index,
        blobs=blobs,
        platforms=platforms,
        referrers=referrers,
        epoch=max(p.epoch for p in platforms),
    )


def lock_of(config: BuildConfig, result: BuildResult) -> Lock:
    """The lock file contents for what ``result`` installed."""
    from alpenglow.build.lock import lock_from_build

    return lock_from_build(config, [(p.arch, p.packages, p.origins) for p in result.platforms])
