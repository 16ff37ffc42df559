"""Building one platform's image from a build configuration.

The pipeline for one architecture: the base image's filesystem (if ``base:``), the packages
installed into an in-memory tree (:mod:`alpenglow.build.install`), accounts, paths and local
files applied on top, every mtime clamped to the build epoch, one new layer (the difference
from the base, or the whole tree), the image configuration, the manifest, and the SBOMs.
Nothing touches the disk except the shared package cache; the result is a set of blobs that
:mod:`alpenglow.build.multiarch` puts together into an image index.

The epoch is ``SOURCE_DATE_EPOCH`` when set, otherwise the newest build date of the
installed packages, so the same configuration and the same packages give the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alpenglow.build.imageconfig import ConfigInputs, image_config
from alpenglow.errors import AlpenglowError
from alpenglow.oci.image import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    Platform,
    manifest_bytes,
)
from alpenglow.oci.layer import diff_trees, layer_tar
from alpenglow.oci.platform import platform_for_arch

if TYPE_CHECKING:
    from alpenglow.apk.index import Package
    from alpenglow.build.config import BuildConfig
    from alpenglow.build.install import LockPin
    from alpenglow.oci.tree import Tree

__all__ = [
    "BaseImage",
    "BuildError",
    "PlatformBuild",
    "build_platform",
    "source_date_epoch",
]


def __dir__() -> list[str]:
    return __all__


SBOM_ARTIFACT = "application/vnd.alpenglow.sbom"


class BuildError(AlpenglowError):
    """A build that cannot go on (the message names the configuration and the problem)."""


def source_date_epoch(environ: Mapping[str, str], source: str = "SOURCE_DATE_EPOCH") -> int | None:
    """``SOURCE_DATE_EPOCH`` as an int, None when unset; a bad value is an error."""
    value = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise BuildError(f"{source}: {value!r} is not a number of seconds since 1970")
    return int(value)


@dataclass(frozen=True, slots=True)
class BaseImage:
    """A base image's platform image: its merged filesystem, its configuration document and
    its layers (descriptors and blobs, reused as they are)."""

    tree: Tree
    config: Mapping[str, Any]
    layers: tuple[Descriptor, ...]
    blobs: Mapping[str, bytes]


@dataclass(frozen=True, slots=True)
class PlatformBuild:
    """One architecture's finished image."""

    arch: str
    platform: Platform
    manifest: Descriptor
    """The image manifest (with its platform), what the index lists."""
    config_digest: str
    layers: tuple[Descriptor, ...]
    blobs: dict[str, bytes]
    """Every blob of this platform's image (manifest, config, layers, SBOM artifact)."""
    packages: tuple[Package, ...]
    origins: dict[str, str]
    epoch: int
    sboms: tuple[tuple[str, str, bytes], ...]
    """``(file name, media type, document)`` per SBOM format."""
    sbom_manifest: Descriptor | None = None
    """An OCI artifact manifest whose ``subject`` is :attr:`manifest`, holding the SBOMs."""
    installed_size: int = 0
    annotations: tuple[tuple[str, str], ...] = ()


def _history_comment(packages: Sequence[Package]) -> str:
    names = ", ".join(p.name for p in packages[:8])
    more = f" and {len(packages) - 8} more" if len(packages) > 8 else ""
    return f"apk add {names}{more}" if packages else "files"


def build_platform(
    config: BuildConfig,
    arch: str,
    *,
    keys: tuple[Path, ...],
    cache_dir: Path | None,
    epoch: int | None,
    locked: tuple[LockPin, ...] | None = None,
    base: BaseImage | None = None,
    image_name: str = "",
) -> PlatformBuild:
    """Build ``config`` for ``arch``. Raises :class:`AlpenglowError` subclasses naming the
    configuration file."""
    from alpenglow.build.accounts import apply_accounts, resolve_user
    from alpenglow.build.install import InstallRequest, install
    from alpenglow.build.paths import apply_files, apply_paths
    from alpenglow.build.sbom import (
        CYCLONEDX_MEDIA_TYPE,
        SPDX_MEDIA_TYPE,
        SbomInput,
        cyclonedx_json,
        file_names,
        spdx_json,
    )

    platform = platform_for_arch(arch)
    request = InstallRequest(
        arch=arch,
        repositories=config.repositories + config.build_repositories,
        keys=keys,
        world=config.packages,
        cache_dir=cache_dir,
        base=base.tree if base is not None else None,  # install works on its own copy
        locked=locked,
    )
    result = install(request)
    tree = result.tree
    when = epoch if epoch is not None else result.newest_build_time
    # apko: build_repositories are used for the build only; runtime_repositories only in the
    # image's etc/apk/repositories
    runtime = config.repositories + config.runtime_repositories
    if runtime != request.repositories:
        text = "".join(line + "\n" for line in runtime).encode()
        tree.write("etc/apk/repositories", text, 0o644, mtime=when)
    apply_accounts(tree, config.accounts, mtime=when)
    apply_paths(tree, config.paths, mtime=when)
    apply_files(tree, config.files, mtime=when)
    tree.clamp_mtimes(when)

    from alpenglow.build.layercache import LayerCache, cached_layer

    top = diff_trees(base.tree, tree) if base is not None else tree
    cache = LayerCache(cache_dir / "layers") if cache_dir is not None else None
    layer = cached_layer(layer_tar(top), cache)
    blobs: dict[str, bytes] = {}
    layers: list[Descriptor] = []
    diff_ids: list[str] = []
    if base is not None:
        layers.extend(base.layers)
        diff_ids.extend(base.config.get("rootfs", {}).get("diff_ids", []))
        for d in base.layers:
            blobs[d.digest] = base.blobs[d.digest]
    layers.append(Descriptor(OCI_LAYER_GZIP, layer.digest, layer.size))
    diff_ids.append(layer.diff_id)
    blobs[layer.digest] = layer.blob

    user = resolve_user(tree, config.accounts.run_as) if config.accounts.run_as else None
    cfg = image_config(
        ConfigInputs(
            architecture=platform.architecture,
            os=platform.os,
            variant=platform.variant,
            diff_ids=tuple(diff_ids),
            epoch=when,
            entrypoint=config.entrypoint,
            cmd=config.cmd,
            environment=config.environment,
            user=user,
            work_dir=config.work_dir,
            stop_signal=config.stop_signal,
            annotations=_annotations(config),
            volumes=config.volumes,
            history_comment=_history_comment(result.installed),
            base=base.config if base is not None else None,
        )
    )
    cfg_desc = Descriptor.of(OCI_CONFIG, cfg)
    blobs[cfg_desc.digest] = cfg
    manifest = manifest_bytes(cfg_desc, layers, annotations=_annotations(config))
    manifest_desc = Descriptor.of(OCI_MANIFEST, manifest, platform=platform)
    blobs[manifest_desc.digest] = manifest

    sbom_in = SbomInput(
        image_name=image_name or config.source.stem,
        arch=arch,
        packages=result.installed,
        created=when,
        namespace_seed=layer.diff_id,
        os_version=_os_version(tree),
    )
    spdx_name, cdx_name = file_names(arch)
    sboms = (
        (spdx_name, SPDX_MEDIA_TYPE, spdx_json(sbom_in)),
        (cdx_name, CYCLONEDX_MEDIA_TYPE, cyclonedx_json(sbom_in)),
    )
    sbom_manifest = _sbom_artifact(manifest_desc, sboms, when, blobs)
    return PlatformBuild(
        arch=arch,
        platform=platform,
        manifest=manifest_desc,
        config_digest=cfg_desc.digest,
        layers=tuple(layers),
        blobs=blobs,
        packages=result.installed,
        origins=dict(result.origins),
        epoch=when,
        sboms=sboms,
        sbom_manifest=sbom_manifest,
        installed_size=sum(p.installed_size for p in result.installed),
        annotations=_annotations(config),
    )


def _annotations(config: BuildConfig) -> tuple[tuple[str, str], ...]:
    """The configuration's annotations, plus ``org.opencontainers.image.source`` from
    ``vcs-url`` (``URL@REVISION`` also gives ``.revision``), as apko sets them."""
    out = dict(config.annotations)
    if config.vcs_url:
        url, _, revision = config.vcs_url.partition("@")
        out.setdefault("org.opencontainers.image.source", url)
        if revision:
            out.setdefault("org.opencontainers.image.revision", revision)
    return tuple(out.items())


def _os_version(tree: Tree) -> str:
    try:
        return tree.read("etc/alpine-release").decode("utf-8", "replace").strip()
    except AlpenglowError:
        return ""


def _sbom_artifact(
    subject: Descriptor,
    sboms: Sequence[tuple[str, str, bytes]],
    epoch: int,
    blobs: dict[str, bytes],
) -> Descriptor:
    """An OCI 1.1 artifact manifest (empty config, the SBOMs as layers, ``subject`` = the
    image manifest), as registries' referrers API and ``oras discover`` expect."""
    from alpenglow.build.imageconfig import rfc3339

    empty = b"{}"
    empty_desc = Descriptor.of(OCI_EMPTY, empty)
    blobs[empty_desc.digest] = empty
    layers = []
    for name, media_type, data in sboms:
        desc = Descriptor.of(media_type, data, annotations={"org.opencontainers.image.title": name})
        blobs[desc.digest] = data
        layers.append(desc)
    manifest = manifest_bytes(
        empty_desc,
        layers,
        annotations={"org.opencontainers.image.created": rfc3339(epoch)},
        subject=Descriptor(subject.media_type, subject.digest, subject.size),
        artifact_type=SBOM_ARTIFACT,
    )
    desc = Descriptor.of(OCI_MANIFEST, manifest)
    blobs[desc.digest] = manifest
    return desc


def default_cache_dir() -> Path:
    """The shared package cache the ``apk`` commands use."""
    from alpenglow.apk.cache import default_cache_dir as apk_default

    return apk_default(os.environ)
