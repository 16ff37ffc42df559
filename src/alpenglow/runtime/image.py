"""What a container needs of an image, and a cache of it. [edge]

:class:`ImageFacts` holds the parts of one platform's image that creating a container uses:
its ids, its layers (blob digest, diff_id, media type) and the run settings of its config.
:func:`image_facts` finds them in the image store (for the host's platform unless one is
asked for) and remembers them in ``RUNTIME/images.json``, keyed by the reference, the
platform and the identity of the store's ``index.json`` (a new file on every change of the
store, so a moved tag or a removed image is never served from the cache). With the layers
already unpacked, a cached ``run`` reads no manifest or config at all, and does not even
import the image model.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from alpenglow.errors import FormatError, ImageNotFound

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from typing import Any

    from alpenglow.oci.image import Platform, PlatformImage
    from alpenglow.oci.store import ImageStore

__all__ = ["ImageFacts", "LayerFacts", "Puller", "facts_of", "host_platform", "image_facts"]


def __dir__() -> list[str]:
    return __all__


Puller = Callable[[str, "Platform | None"], None]
"""Fetches an image missing from the store into it: ``puller(reference, platform)``."""

_VERSION = 1


@dataclass(frozen=True, slots=True)
class LayerFacts:
    """One layer of an image: its blob's digest, its ``diff_id`` and its media type."""

    digest: str
    diff_id: str
    media_type: str


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """One platform's image as a container needs it."""

    image_id: str
    """The store entry's digest (an index or a manifest)."""
    manifest: str
    platform: str
    layers: tuple[LayerFacts, ...]
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    user: str = ""
    working_dir: str = ""
    stop_signal: str = ""

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ImageFacts:
        def strings(value: Any) -> tuple[str, ...] | None:
            return None if value is None else tuple(str(v) for v in value)

        return cls(
            image_id=str(obj["image_id"]),
            manifest=str(obj["manifest"]),
            platform=str(obj["platform"]),
            layers=tuple(
                LayerFacts(str(x["digest"]), str(x["diff_id"]), str(x["media_type"]))
                for x in obj["layers"]
            ),
            env=strings(obj.get("env")) or (),
            entrypoint=strings(obj.get("entrypoint")),
            cmd=strings(obj.get("cmd")),
            user=str(obj.get("user", "")),
            working_dir=str(obj.get("working_dir", "")),
            stop_signal=str(obj.get("stop_signal", "")),
        )


def host_platform() -> Platform:
    """The platform this machine runs natively (``linux/amd64`` on x86_64)."""
    from alpenglow.errors import AlpenglowError
    from alpenglow.oci.image import Platform
    from alpenglow.oci.platform import parse_platform

    try:
        return parse_platform(os.uname().machine)
    except AlpenglowError:
        return Platform("linux", os.uname().machine)


def facts_of(image_id: str, image: PlatformImage) -> ImageFacts:
    """The facts of a platform image of the store entry ``image_id``."""
    manifest, config = image.manifest, image.config
    if len(manifest.layers) != len(config.diff_ids):
        raise FormatError(
            f"image {image.descriptor.digest}: {len(manifest.layers)} layers but "
            f"{len(config.diff_ids)} diff_ids in its config"
        )
    return ImageFacts(
        image_id=image_id,
        manifest=image.descriptor.digest,
        platform=str(image.platform),
        layers=tuple(
            LayerFacts(layer.digest, diff_id, layer.media_type)
            for layer, diff_id in zip(manifest.layers, config.diff_ids, strict=True)
        ),
        env=config.env,
        entrypoint=config.entrypoint,
        cmd=config.cmd,
        user=config.user,
        working_dir=config.working_dir,
        stop_signal=config.stop_signal,
    )


def _select(
    store: ImageStore, reference: str, platform: str | None, puller: Puller | None
) -> ImageFacts:
    from alpenglow.oci.platform import matches, parse_platform

    wanted_platform = parse_platform(platform) if platform else None
    try:
        desc = store.resolve(reference)
    except ImageNotFound:
        if puller is None:
            raise
        puller(reference, wanted_platform)
        desc = store.resolve(reference)
    candidates = store.get(desc.digest).images()
    wanted = wanted_platform or host_platform()
    for image in candidates:
        if matches(wanted, image.platform):
            return facts_of(desc.digest, image)
    if wanted_platform is None and len(candidates) == 1:
        return facts_of(desc.digest, candidates[0])  # a lone foreign image runs if it can
    have = ", ".join(str(image.platform) for image in candidates) or "none"
    raise ImageNotFound(
        f"image {reference} has no variant for {wanted} (it has: {have})",
        hint="pick one with --platform",
    )


def _store_identity(store_path: Path) -> str:
    try:
        st = os.stat(store_path / "index.json")
    except OSError:
        return ""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def image_facts(
    store_path: Path,
    reference: str,
    platform: str | None,
    *,
    cache: Path | None,
    puller: Puller | None = None,
    store: ImageStore | None = None,
) -> ImageFacts:
    """The facts of ``reference`` for ``platform`` (text such as ``linux/arm64``; the
    host's when None), from ``cache`` when the store has not changed since they were put
    there; pulled first by ``puller`` when the store lacks the image."""
    key = f"{reference}\0{platform or os.uname().machine}"
    identity = _store_identity(store_path)
    known: dict[str, Any] = {}
    if cache is not None and identity:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(cache.read_text())
            if (
                isinstance(data, dict)
                and data.get("version") == _VERSION
                and data.get("store") == identity
            ):
                known = data.get("images") or {}
                if key in known:
                    with contextlib.suppress(KeyError, TypeError, ValueError):
                        return ImageFacts.from_json(known[key])
    if store is None:
        from alpenglow.oci.store import ImageStore

        store = ImageStore(store_path)
    facts = _select(store, reference, platform, puller)
    identity_after = _store_identity(store_path)
    if cache is not None and identity_after:
        if identity_after != identity:
            known = {}
        known[key] = facts.to_json()
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".tmp-{cache.name}.{os.getpid()}")
            tmp.write_text(
                json.dumps({"version": _VERSION, "store": identity_after, "images": known})
            )
            os.replace(tmp, cache)
    return facts
