"""Where a finished build goes: the local image store, an OCI layout or archive, a docker
archive per platform, and the SBOM files.

The store and ``oci:`` layouts also keep each platform's SBOM artifact manifest (an unnamed
``index.json`` entry whose ``subject`` is the platform's manifest); archives carry the image
only, the SBOMs are written beside them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from alpenglow.errors import AlpenglowError
from alpenglow.oci.image import ImageBundle
from alpenglow.oci.transport import parse_reference, write_image

if TYPE_CHECKING:
    from alpenglow.build.multiarch import BuildResult
    from alpenglow.oci.store import ImageStore

__all__ = ["image_of", "referrers_of", "sbom_directory", "write_output", "write_sboms"]


def __dir__() -> list[str]:
    return __all__


def image_of(result: BuildResult) -> ImageBundle:
    """The built image as a bundle rooted at its index."""
    return ImageBundle(result.index, result.blobs, "build")


def referrers_of(result: BuildResult) -> list[ImageBundle]:
    """One bundle per SBOM artifact manifest."""
    out = []
    for desc in result.referrers:
        out.append(ImageBundle(desc, result.blobs, "build (SBOM)"))
    return out


def write_output(
    result: BuildResult,
    output: str | None,
    names: Sequence[str],
    *,
    store: ImageStore | None = None,
) -> tuple[str, ...]:
    """Write the image to ``output`` (a transport reference), or to ``store`` under
    ``names`` when ``output`` is None. Returns what was written."""
    bundle = image_of(result)
    if output is None:
        if store is None:
            raise AlpenglowError("no output and no image store to write the image to")
        store.add(bundle, list(names), referrers=referrers_of(result))
        return tuple(names)
    ref = parse_reference(output)
    if ref.transport == "store":
        raise AlpenglowError(
            f"--output {output}: expected oci:DIR, oci-archive:FILE or docker-archive:FILE "
            "(use --tag to name an image in the local store)"
        )
    if ref.transport != "oci":
        try:
            Path(ref.path).resolve().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AlpenglowError(
                f"{ref.path}: cannot create its directory: {exc.strerror}"
            ) from None
    written = write_image(bundle, ref, names=names, mtime=result.epoch)
    if ref.transport == "oci":
        from alpenglow.oci.layout import Layout

        layout = Layout.open(ref.path)
        for artifact in referrers_of(result):
            layout.write_bundle(artifact)
    return written


def sbom_directory(output: str) -> Path:
    """Where SBOMs go beside ``output``: an archive's directory, or a layout's parent."""
    ref = parse_reference(output)
    return Path(ref.path).resolve().parent


def write_sboms(result: BuildResult, directory: Path, stem: str) -> list[Path]:
    """Write each platform's SBOMs as ``STEM.sbom-ARCH.spdx.json`` / ``.cdx.json`` files
    (atomically); returns the paths."""
    written: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for platform in result.platforms:
            for name, _media_type, data in platform.sboms:
                target = directory / f"{stem}.{name}"
                tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, target)
                written.append(target)
    except OSError as exc:
        raise AlpenglowError(f"{directory}: cannot write SBOMs: {exc.strerror}") from None
    return written
