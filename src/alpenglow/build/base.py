"""``base:``: building on top of an existing image.

The reference names an image in the local store or any readable transport (``oci:DIR:TAG``,
``oci-archive:FILE``, ``docker-archive:FILE``). For each architecture the matching platform
image is taken, its layers are applied in order onto an empty in-memory tree (whiteouts
honoured), and its configuration is kept for inheritance. The new image reuses the base's
layers as they are and adds one layer with the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alpenglow.build.builder import BaseImage, BuildError
from alpenglow.oci.image import (
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    Descriptor,
    ImageBundle,
    parse_json,
)
from alpenglow.oci.layer import apply_layer
from alpenglow.oci.platform import platform_for_arch
from alpenglow.oci.tree import Tree

if TYPE_CHECKING:
    from alpenglow.build.config import BuildConfig

__all__ = ["base_for", "load_bases"]


def __dir__() -> list[str]:
    return __all__


# Docker's layer media types carry the same bytes as OCI's: the new manifest is OCI.
_AS_OCI = {DOCKER_LAYER_GZIP: OCI_LAYER_GZIP, DOCKER_LAYER: OCI_LAYER}


def base_for(bundle: ImageBundle, arch: str, reference: str) -> BaseImage:
    """The base image for ``arch`` out of ``bundle``."""
    from alpenglow.oci.platform import matches

    wanted = platform_for_arch(arch)
    chosen = [image for image in bundle.images() if matches(wanted, image.platform)]
    if not chosen:
        have = ", ".join(str(i.platform) for i in bundle.images()) or "none"
        raise BuildError(f"base image {reference} has no {wanted} image (it has: {have})")
    image = chosen[0]
    tree = Tree()
    layers: list[Descriptor] = []
    blobs: dict[str, bytes] = {}
    for desc in image.manifest.layers:
        data = bundle.blob(desc.digest)
        apply_layer(tree, data, source=f"{reference}: layer {desc.digest}")
        layers.append(
            Descriptor(_AS_OCI.get(desc.media_type, desc.media_type), desc.digest, desc.size)
        )
        blobs[desc.digest] = data
    config = parse_json(bundle.blob(image.manifest.config.digest), f"{reference}: config")
    if not isinstance(config, dict):
        raise BuildError(f"{reference}: image config is not a JSON object")
    return BaseImage(tree=tree, config=config, layers=tuple(layers), blobs=blobs)


def load_bases(
    config: BuildConfig, archs: Sequence[str], *, insecure: Sequence[str] = ()
) -> dict[str, BaseImage]:
    """Each architecture's base image for ``config.base``: a store name, a transport
    reference, or a registry reference. A name the store does not have is pulled from its
    registry (``docker://`` forces the registry) and kept in the store, as ``docker build``
    does with ``FROM``."""
    import os

    from alpenglow.errors import ImageNotFound
    from alpenglow.oci.store import ImageStore
    from alpenglow.oci.transport import parse_reference, read_image

    reference = config.base or ""
    store = ImageStore.from_environment(os.environ)
    if reference.startswith("docker://"):
        bundle = _pull(reference, store, insecure)
    else:
        try:
            bundle = read_image(reference, store=store)
        except ImageNotFound:
            if parse_reference(reference).transport != "store":
                raise
            bundle = _pull(reference, store, insecure)
    return {arch: base_for(bundle, arch, reference) for arch in archs}


def _pull(reference: str, store: Any, insecure: Sequence[str]) -> ImageBundle:
    import os

    from alpenglow.distribution.auth import default_credentials
    from alpenglow.distribution.client import RegistryClient
    from alpenglow.distribution.reference import parse_reference
    from alpenglow.distribution.transfer import pull

    ref = parse_reference(reference)
    credentials = default_credentials(os.environ)
    with RegistryClient(ref, credentials=credentials, insecure=tuple(insecure)) as client:
        bundle = pull(ref, client)
    store.add(bundle, [ref.familiar])
    return bundle
