"""What an image weighs: per platform, its compressed size and its largest packages.

The package sizes come from the apk installed database inside the image
(``lib/apk/db/installed``, or ``usr/lib/apk/db/installed`` as apko writes it), read straight
from the layer tars with whiteouts honoured; nothing is unpacked to disk.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import zlib
from dataclasses import dataclass

from alpenglow.errors import ArchiveError
from alpenglow.oci.image import OCI_LAYER_ZSTD, ImageBundle, Platform, PlatformImage

__all__ = [
    "INSTALLED_DB_PATHS",
    "PackageSize",
    "PlatformSizes",
    "read_image_file",
    "size_report",
]


def __dir__() -> list[str]:
    return __all__


INSTALLED_DB_PATHS = ("lib/apk/db/installed", "usr/lib/apk/db/installed")
"""Where apk keeps its installed database, in the order they are tried."""

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True, slots=True)
class PackageSize:
    """One installed package and its installed size (``I:``) in bytes."""

    name: str
    version: str
    installed_size: int


@dataclass(frozen=True, slots=True)
class PlatformSizes:
    """The size facts of one platform's image.

    ``packages`` is sorted largest first (then by name); it is ``None`` when the image has
    no apk database.
    """

    platform: Platform
    digest: str
    compressed_size: int
    layers: int
    packages: tuple[PackageSize, ...] | None

    @property
    def installed_size(self) -> int:
        return sum(p.installed_size for p in self.packages or ())


def _layer_tar(data: bytes, media_type: str, source: str) -> tarfile.TarFile:
    if media_type == OCI_LAYER_ZSTD or data[:4] == b"\x28\xb5\x2f\xfd":
        raise ArchiveError(f"{source}: zstd-compressed layers cannot be read here")
    try:
        return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(f"{source}: not a readable layer tar ({exc})") from None


def _normal(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _hides(name: str, path: str) -> bool:
    """Whether a layer entry ``name`` deletes ``path`` of the layers below."""
    directory, base = posixpath.split(name)
    if base == _OPAQUE:
        return path.startswith(f"{directory}/") if directory else True
    if not base.startswith(_WHITEOUT):
        return False
    hidden = posixpath.join(directory, base[len(_WHITEOUT) :])
    return path == hidden or path.startswith(f"{hidden}/")


def read_image_file(bundle: ImageBundle, image: PlatformImage, path: str) -> bytes | None:
    """The content of the regular file ``path`` in ``image``'s filesystem, or ``None``
    when no layer has it (or an upper layer deleted it). Symlinks are not followed."""
    wanted = _normal(path)
    for layer in reversed(image.manifest.layers):
        source = f"{bundle.source}: layer {layer.digest}"
        deleted = False
        with _layer_tar(bundle.blob(layer.digest), layer.media_type, source) as tar:
            try:
                for member in tar:
                    name = _normal(member.name)
                    if name == wanted and member.isreg():
                        handle = tar.extractfile(member)
                        return handle.read() if handle is not None else b""
                    if _hides(name, wanted):
                        deleted = True
            except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
                raise ArchiveError(f"{source}: not a readable layer tar ({exc})") from None
        if deleted:
            return None
    return None


def _packages(bundle: ImageBundle, image: PlatformImage) -> tuple[PackageSize, ...] | None:
    from alpenglow.apk.database import parse_installed

    for path in INSTALLED_DB_PATHS:
        data = read_image_file(bundle, image, path)
        if data is None:
            continue
        installed = parse_installed(data, source=f"{bundle.source} ({image.platform}): {path}")
        sizes = [
            PackageSize(p.package.name, p.package.version, p.package.installed_size)
            for p in installed
        ]
        sizes.sort(key=lambda p: (-p.installed_size, p.name))
        return tuple(sizes)
    return None


def size_report(bundle: ImageBundle, *, packages: bool = True) -> tuple[PlatformSizes, ...]:
    """Per platform of ``bundle``: manifest digest, compressed size (config + layers), layer
    count and, when ``packages`` is true, the installed packages by size."""
    out = []
    for image in bundle.images():
        out.append(
            PlatformSizes(
                platform=image.platform,
                digest=image.descriptor.digest,
                compressed_size=image.compressed_size,
                layers=len(image.manifest.layers),
                packages=_packages(bundle, image) if packages else None,
            )
        )
    return tuple(out)
