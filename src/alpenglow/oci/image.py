"""The OCI and Docker v2 image model: descriptors, manifests, indexes, configs and bundles.

Pure: bytes in, values out. Everything alpenglow writes goes through :func:`canonical_json`
(sorted keys, no spaces, UTF-8), so the same content always gives the same digest. Readers
accept both the OCI media types and Docker's v2 schema 2 ones, and name the source and the
field in every error.

An :class:`ImageBundle` is the in-memory currency between the builder, the image store and
the transports: a root descriptor (an index or a manifest) and the bytes of every blob it
reaches, by digest.

>>> config = canonical_json({"architecture": "amd64", "os": "linux",
...                          "rootfs": {"type": "layers", "diff_ids": []}})
>>> bundle = image_bundle(config, [])
>>> bundle.root.media_type == OCI_MANIFEST, len(bundle.blobs)
(True, 2)
>>> [str(image.platform) for image in bundle.images()]
['linux/amd64']
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alpenglow.errors import FormatError

__all__ = [
    "CONFIG_TYPES",
    "DOCKER_CONFIG",
    "DOCKER_FOREIGN_LAYER",
    "DOCKER_LAYER",
    "DOCKER_LAYER_GZIP",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "INDEX_TYPES",
    "LAYER_TYPES",
    "MANIFEST_TYPES",
    "OCI_CONFIG",
    "OCI_EMPTY",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_ZSTD",
    "OCI_MANIFEST",
    "OCI_NONDIST_LAYER",
    "OCI_NONDIST_LAYER_GZIP",
    "OPTIONAL_LAYER_TYPES",
    "ORG_REF_NAME",
    "Descriptor",
    "History",
    "ImageBundle",
    "ImageConfig",
    "Index",
    "Manifest",
    "Platform",
    "PlatformImage",
    "canonical_json",
    "check_digest",
    "digest_of",
    "image_bundle",
    "index_bundle",
    "index_bytes",
    "manifest_bytes",
    "parse_config",
    "parse_index",
    "parse_json",
    "parse_manifest",
    "verify_blob",
]


def __dir__() -> list[str]:
    return __all__


# --------------------------------------------------------------------------------------------
# Media types

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_NONDIST_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_NONDIST_LAYER_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
LAYER_TYPES = frozenset(
    {
        OCI_LAYER,
        OCI_LAYER_GZIP,
        OCI_LAYER_ZSTD,
        OCI_NONDIST_LAYER,
        OCI_NONDIST_LAYER_GZIP,
        DOCKER_LAYER,
        DOCKER_LAYER_GZIP,
        DOCKER_FOREIGN_LAYER,
    }
)
OPTIONAL_LAYER_TYPES = frozenset({OCI_NONDIST_LAYER, OCI_NONDIST_LAYER_GZIP, DOCKER_FOREIGN_LAYER})
"""Layers that registries and archives may leave out (fetched from their ``urls``)."""

ORG_REF_NAME = "org.opencontainers.image.ref.name"
"""The annotation that names an entry of an OCI layout's ``index.json`` (``oci:DIR:NAME``)."""

_DIGEST_LENGTHS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")


# --------------------------------------------------------------------------------------------
# Bytes, digests and JSON


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` reproducibly: sorted keys, no whitespace, UTF-8.

    >>> canonical_json({"b": 1, "a": ["é"]})
    b'{"a":["\\xc3\\xa9"],"b":1}'
    """
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def digest_of(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``.

    >>> digest_of(b"")
    'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str, source: str = "digest") -> str:
    """Return ``digest`` if it is ``sha256:<64 hex>`` or ``sha512:<128 hex>``, else raise.

    The hex part is used in file names (``blobs/sha256/<hex>``), so nothing else gets through.

    >>> check_digest("sha256:" + "0" * 63)
    Traceback (most recent call last):
    ...
    alpenglow.errors.FormatError: digest: 'sha256:000000000000000000000000000000000000000000000000000000000000000' is not a valid digest (sha256 takes 64 lower-case hex digits)
    """  # noqa: E501
    algorithm, sep, hexpart = digest.partition(":") if isinstance(digest, str) else ("", "", "")
    if not sep:
        raise FormatError(f"{source}: {digest!r} is not a digest (ALGORITHM:HEX)")
    length = _DIGEST_LENGTHS.get(algorithm)
    if length is None:
        raise FormatError(f"{source}: unsupported digest algorithm {algorithm!r} in {digest!r}")
    if len(hexpart) != length or not _HEX.fullmatch(hexpart):
        raise FormatError(
            f"{source}: {digest!r} is not a valid digest "
            f"({algorithm} takes {length} lower-case hex digits)"
        )
    return digest


def _hash(algorithm: str, data: bytes) -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _check_size(data: bytes, digest: str, size: int | None, source: str) -> None:
    if size is not None and len(data) != size:
        raise FormatError(
            f"{source}: blob {digest} has {len(data)} bytes, its descriptor says {size}"
        )


def verify_blob(data: bytes, digest: str, size: int | None = None, source: str = "blob") -> None:
    """Raise :class:`FormatError` unless ``data`` has ``digest`` (and ``size`` when given)."""
    algorithm = check_digest(digest, source).partition(":")[0]
    _check_size(data, digest, size, source)
    actual = _hash(algorithm, data)
    if actual != digest:
        raise FormatError(f"{source}: blob {digest} is corrupt (its content hashes to {actual})")


def parse_json(data: bytes, source: str) -> Any:
    """Decode a JSON document, naming ``source`` and the position on failure."""
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise FormatError(f"{source}: not valid UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True, order=True)
class Platform:
    """Where an image runs: ``linux/arm/v7`` is ``Platform("linux", "arm", "v7")``."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        return out


Annotations = tuple[tuple[str, str], ...]


def _annotations(value: Mapping[str, str] | Annotations | None) -> Annotations:
    if not value:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(k), str(v)) for k, v in items))


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A typed, sized, content-addressed reference to a blob.

    ``annotations`` is a sorted tuple of ``(key, value)`` pairs; a mapping is accepted too
    and sorted on construction.
    """

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Annotations = ()
    urls: tuple[str, ...] = ()
    artifact_type: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.annotations, Mapping) or (
            self.annotations and list(self.annotations) != sorted(self.annotations)
        ):
            object.__setattr__(self, "annotations", _annotations(self.annotations))

    @classmethod
    def of(
        cls,
        media_type: str,
        data: bytes,
        *,
        platform: Platform | None = None,
        annotations: Mapping[str, str] | Annotations | None = None,
    ) -> Descriptor:
        """The descriptor of ``data`` (sha256 digest and size computed here)."""
        return cls(media_type, digest_of(data), len(data), platform, _annotations(annotations))

    def annotation(self, key: str, default: str = "") -> str:
        for k, v in self.annotations:
            if k == key:
                return v
        return default

    @property
    def ref_name(self) -> str:
        """The ``org.opencontainers.image.ref.name`` annotation, or ""."""
        return self.annotation(ORG_REF_NAME)

    def with_annotations(self, annotations: Mapping[str, str] | Annotations) -> Descriptor:
        """A copy with ``annotations`` instead of the current ones."""
        return Descriptor(
            self.media_type,
            self.digest,
            self.size,
            self.platform,
            _annotations(annotations),
            self.urls,
            self.artifact_type,
        )

    def with_platform(self, platform: Platform | None) -> Descriptor:
        return Descriptor(
            self.media_type,
            self.digest,
            self.size,
            platform,
            self.annotations,
            self.urls,
            self.artifact_type,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.urls:
            out["urls"] = list(self.urls)
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    """An image manifest (OCI or Docker v2 schema 2): a config and its layers."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = OCI_MANIFEST
    annotations: Annotations = ()
    subject: Descriptor | None = None
    artifact_type: str = ""

    @property
    def is_image(self) -> bool:
        """True for a runnable image (its config is an image config), False for artifacts
        such as attestations and signatures."""
        return self.config.media_type in CONFIG_TYPES


@dataclass(frozen=True, slots=True)
class Index:
    """An image index (OCI) or manifest list (Docker): manifests, usually one per platform."""

    manifests: tuple[Descriptor, ...]
    media_type: str = OCI_INDEX
    annotations: Annotations = ()
    subject: Descriptor | None = None
    artifact_type: str = ""


@dataclass(frozen=True, slots=True)
class History:
    """One ``history`` entry of an image config."""

    created: str = ""
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The parts of an image config that tools act on. The bytes stay the authority."""

    architecture: str
    os: str
    variant: str = ""
    os_version: str = ""
    created: str = ""
    author: str = ""
    diff_ids: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    user: str = ""
    working_dir: str = ""
    stop_signal: str = ""
    labels: Annotations = ()
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    history: tuple[History, ...] = ()

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant, self.os_version)


# --------------------------------------------------------------------------------------------
# Parsing


def _fail(source: str, where: str, problem: str) -> FormatError:
    return FormatError(f"{source}: {where + ': ' if where else ''}{problem}")


def _object(value: Any, source: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(source, where, f"expected a JSON object, got {type(value).__name__}")
    return value


def _str(obj: dict[str, Any], key: str, source: str, where: str, required: bool = False) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise _fail(source, where, f"missing field {key!r}")
        return ""
    if not isinstance(value, str):
        raise _fail(source, where, f"field {key!r} must be a string")
    return value


def _str_list(value: Any, source: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(source, where, "must be a list of strings")
    return tuple(value)


def _str_map(value: Any, source: str, where: str) -> Annotations:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _fail(source, where, "must be an object of strings")
    return _annotations(value)


def _platform(value: Any, source: str, where: str) -> Platform:
    obj = _object(value, source, where)
    return Platform(
        os=_str(obj, "os", source, where, required=True),
        architecture=_str(obj, "architecture", source, where, required=True),
        variant=_str(obj, "variant", source, where),
        os_version=_str(obj, "os.version", source, where),
        os_features=_str_list(obj.get("os.features"), source, f"{where}.os.features"),
    )


def _descriptor(value: Any, source: str, where: str) -> Descriptor:
    obj = _object(value, source, where)
    media_type = _str(obj, "mediaType", source, where, required=True)
    digest = check_digest(_str(obj, "digest", source, where, required=True), f"{source}: {where}")
    size = obj.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise _fail(source, where, "field 'size' must be a non-negative integer")
    platform = obj.get("platform")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        platform=None if platform is None else _platform(platform, source, f"{where}.platform"),
        annotations=_str_map(obj.get("annotations"), source, f"{where}.annotations"),
        urls=_str_list(obj.get("urls"), source, f"{where}.urls"),
        artifact_type=_str(obj, "artifactType", source, where),
    )


def _document(data: bytes | Any, source: str, kinds: frozenset[str], what: str) -> dict[str, Any]:
    obj = _object(parse_json(data, source) if isinstance(data, bytes) else data, source, "")
    version = obj.get("schemaVersion")
    if version == 1:
        raise FormatError(f"{source}: Docker schema 1 manifests are not supported")
    if version != 2:
        raise FormatError(f"{source}: {what}: 'schemaVersion' must be 2, got {version!r}")
    media_type = obj.get("mediaType")
    if media_type is not None and media_type not in kinds:
        if media_type in INDEX_TYPES:
            raise FormatError(f"{source}: this is an image index, not a manifest")
        if media_type in MANIFEST_TYPES:
            raise FormatError(f"{source}: this is an image manifest, not an index")
        raise FormatError(f"{source}: {what}: unexpected mediaType {media_type!r}")
    return obj


def parse_manifest(data: bytes | Any, source: str = "manifest") -> Manifest:
    """Parse an OCI image manifest or a Docker v2 schema 2 manifest.

    ``data`` is the raw bytes (or already decoded JSON).
    """
    obj = _document(data, source, MANIFEST_TYPES, "manifest")
    if "manifests" in obj and "config" not in obj:
        raise FormatError(f"{source}: this is an image index, not a manifest")
    if "config" not in obj:
        raise FormatError(f"{source}: manifest: missing field 'config'")
    layers = obj.get("layers")
    if not isinstance(layers, list):
        raise FormatError(f"{source}: manifest: field 'layers' must be a list")
    subject = obj.get("subject")
    return Manifest(
        config=_descriptor(obj["config"], source, "config"),
        layers=tuple(_descriptor(v, source, f"layers[{i}]") for i, v in enumerate(layers)),
        media_type=obj.get("mediaType") or OCI_MANIFEST,
        annotations=_str_map(obj.get("annotations"), source, "annotations"),
        subject=None if subject is None else _descriptor(subject, source, "subject"),
        artifact_type=_str(obj, "artifactType", source, "manifest"),
    )


def parse_index(data: bytes | Any, source: str = "index") -> Index:
    """Parse an OCI image index (also a layout's ``index.json``) or a Docker manifest list."""
    obj = _document(data, source, INDEX_TYPES, "index")
    manifests = obj.get("manifests")
    if manifests is None and "config" in obj:
        raise FormatError(f"{source}: this is an image manifest, not an index")
    if not isinstance(manifests, list):
        raise FormatError(f"{source}: index: field 'manifests' must be a list")
    subject = obj.get("subject")
    return Index(
        manifests=tuple(_descriptor(v, source, f"manifests[{i}]") for i, v in enumerate(manifests)),
        media_type=obj.get("mediaType") or OCI_INDEX,
        annotations=_str_map(obj.get("annotations"), source, "annotations"),
        subject=None if subject is None else _descriptor(subject, source, "subject"),
        artifact_type=_str(obj, "artifactType", source, "index"),
    )


def _command(value: Any, source: str, where: str) -> tuple[str, ...] | None:
    return None if value is None else _str_list(value, source, where)


def _keys(value: Any, source: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise _fail(source, where, "must be an object")
    return tuple(sorted(value))


def parse_config(data: bytes | Any, source: str = "config") -> ImageConfig:
    """Parse an OCI image config or a Docker container image config (the same format)."""
    obj = _object(parse_json(data, source) if isinstance(data, bytes) else data, source, "")
    rootfs = _object(obj.get("rootfs"), source, "rootfs") if "rootfs" in obj else None
    if rootfs is None:
        raise FormatError(f"{source}: image config: missing field 'rootfs'")
    diff_ids = _str_list(rootfs.get("diff_ids"), source, "rootfs.diff_ids")
    for i, diff_id in enumerate(diff_ids):
        check_digest(diff_id, f"{source}: rootfs.diff_ids[{i}]")
    run = obj.get("config")
    run = {} if run is None else _object(run, source, "config")
    history_list = obj.get("history") or []
    if not isinstance(history_list, list):
        raise FormatError(f"{source}: field 'history' must be a list")
    history = []
    for i, item in enumerate(history_list):
        entry = _object(item, source, f"history[{i}]")
        history.append(
            History(
                created=_str(entry, "created", source, f"history[{i}]"),
                created_by=_str(entry, "created_by", source, f"history[{i}]"),
                author=_str(entry, "author", source, f"history[{i}]"),
                comment=_str(entry, "comment", source, f"history[{i}]"),
                empty_layer=bool(entry.get("empty_layer", False)),
            )
        )
    return ImageConfig(
        architecture=_str(obj, "architecture", source, "image config", required=True),
        os=_str(obj, "os", source, "image config", required=True),
        variant=_str(obj, "variant", source, "image config"),
        os_version=_str(obj, "os.version", source, "image config"),
        created=_str(obj, "created", source, "image config"),
        author=_str(obj, "author", source, "image config"),
        diff_ids=diff_ids,
        env=_str_list(run.get("Env"), source, "config.Env"),
        entrypoint=_command(run.get("Entrypoint"), source, "config.Entrypoint"),
        cmd=_command(run.get("Cmd"), source, "config.Cmd"),
        user=_str(run, "User", source, "config"),
        working_dir=_str(run, "WorkingDir", source, "config"),
        stop_signal=_str(run, "StopSignal", source, "config"),
        labels=_str_map(run.get("Labels"), source, "config.Labels"),
        exposed_ports=_keys(run.get("ExposedPorts"), source, "config.ExposedPorts"),
        volumes=_keys(run.get("Volumes"), source, "config.Volumes"),
        history=tuple(history),
    )


# --------------------------------------------------------------------------------------------
# Writing manifests and indexes


def manifest_bytes(
    config: Descriptor,
    layers: Sequence[Descriptor],
    *,
    media_type: str = OCI_MANIFEST,
    annotations: Mapping[str, str] | Annotations | None = None,
    subject: Descriptor | None = None,
    artifact_type: str = "",
) -> bytes:
    """The canonical JSON of an image manifest (OCI by default, or Docker v2 schema 2)."""
    if media_type not in MANIFEST_TYPES:
        raise ValueError(f"not a manifest media type: {media_type}")
    obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    if annotations:
        obj["annotations"] = dict(_annotations(annotations))
    if subject is not None:
        obj["subject"] = subject.to_json()
    if artifact_type:
        obj["artifactType"] = artifact_type
    return canonical_json(obj)


def index_bytes(
    manifests: Sequence[Descriptor],
    *,
    media_type: str = OCI_INDEX,
    annotations: Mapping[str, str] | Annotations | None = None,
) -> bytes:
    """The canonical JSON of an image index (OCI by default, or a Docker manifest list)."""
    if media_type not in INDEX_TYPES:
        raise ValueError(f"not an index media type: {media_type}")
    obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [m.to_json() for m in manifests],
    }
    if annotations:
        obj["annotations"] = dict(_annotations(annotations))
    return canonical_json(obj)


# --------------------------------------------------------------------------------------------
# Bundles


@dataclass(frozen=True, slots=True)
class PlatformImage:
    """One runnable image reached from a bundle's root: its manifest and parsed config."""

    descriptor: Descriptor
    manifest: Manifest
    config: ImageConfig
    platform: Platform

    @property
    def compressed_size(self) -> int:
        """Config plus layers, as stored and transferred."""
        return self.manifest.config.size + sum(layer.size for layer in self.manifest.layers)


@dataclass(frozen=True, slots=True)
class ImageBundle:
    """A root descriptor (index or manifest) and the bytes of every blob it references.

    ``blobs`` maps digests to bytes; it may be a lazy mapping (a layout reads and verifies
    each blob when it is looked up: such a mapping's class sets ``verifies_on_read``, and
    :meth:`verify` then leaves the hashing to it). ``source`` only names the bundle in error
    messages.
    """

    root: Descriptor
    blobs: Mapping[str, bytes]
    source: str = field(default="image", compare=False)

    def blob(self, digest: str) -> bytes:
        """The bytes of ``digest``; a :class:`FormatError` naming the source when missing."""
        try:
            return self.blobs[digest]
        except KeyError:
            raise FormatError(f"{self.source}: blob {digest} is missing") from None

    @property
    def is_index(self) -> bool:
        return self.root.media_type in INDEX_TYPES

    def manifest(self, descriptor: Descriptor | None = None) -> Manifest:
        """The manifest at ``descriptor`` (the root by default)."""
        desc = descriptor or self.root
        return parse_manifest(self.blob(desc.digest), f"{self.source}: manifest {desc.digest}")

    def index(self, descriptor: Descriptor | None = None) -> Index:
        """The index at ``descriptor`` (the root by default)."""
        desc = descriptor or self.root
        return parse_index(self.blob(desc.digest), f"{self.source}: index {desc.digest}")

    def config(self, manifest: Manifest) -> ImageConfig:
        digest = manifest.config.digest
        return parse_config(self.blob(digest), f"{self.source}: config {digest}")

    def descriptors(self) -> Iterator[Descriptor]:
        """Every descriptor reachable from the root, root first, each digest once.

        Optional (foreign, non-distributable) layers are included though their bytes may be
        absent. A manifest's ``subject`` is not followed (it usually lives elsewhere).
        """
        seen: set[str] = set()
        stack = [self.root]
        while stack:
            desc = stack.pop()
            if desc.digest in seen:
                continue
            seen.add(desc.digest)
            yield desc
            if desc.media_type in INDEX_TYPES:
                stack.extend(reversed(self.index(desc).manifests))
            elif desc.media_type in MANIFEST_TYPES:
                manifest = self.manifest(desc)
                stack.extend(reversed((manifest.config, *manifest.layers)))

    def digests(self) -> set[str]:
        """The digests of every blob this bundle needs (optional layers left out)."""
        return {d.digest for d in self.descriptors() if d.media_type not in OPTIONAL_LAYER_TYPES}

    def verify(self) -> None:
        """Check that every reachable blob is present with the right size and digest, that
        documents have the media type their descriptor says, and that each image's config
        lists one diff_id per layer. Raises :class:`FormatError` naming the source."""
        hashed_on_read = getattr(self.blobs, "verifies_on_read", False)
        for desc in self.descriptors():
            if desc.digest not in self.blobs:
                if desc.media_type in OPTIONAL_LAYER_TYPES:
                    continue
                raise FormatError(
                    f"{self.source}: blob {desc.digest} ({desc.media_type}) is missing"
                )
            data = self.blobs[desc.digest]
            if hashed_on_read:  # the lookup checked the digest: only the size is left
                _check_size(data, desc.digest, desc.size, self.source)
            else:
                verify_blob(data, desc.digest, desc.size, self.source)
        for image in self.images():
            if len(image.config.diff_ids) != len(image.manifest.layers):
                raise FormatError(
                    f"{self.source}: image {image.descriptor.digest}: the config lists "
                    f"{len(image.config.diff_ids)} diff_ids for "
                    f"{len(image.manifest.layers)} layers"
                )

    def images(self) -> tuple[PlatformImage, ...]:
        """Every runnable image reached from the root, in index order (nested indexes are
        followed; attestations and other artifacts are skipped). The platform comes from the
        index entry, or from the config when the entry has none."""
        out: list[PlatformImage] = []
        seen: set[str] = set()

        def visit(desc: Descriptor) -> None:
            if desc.digest in seen:
                return
            seen.add(desc.digest)
            if desc.media_type in INDEX_TYPES:
                for child in self.index(desc).manifests:
                    visit(child)
                return
            if desc.media_type not in MANIFEST_TYPES:
                return
            if desc.platform is not None and desc.platform.os == "unknown":
                return  # buildx attestation manifests
            manifest = self.manifest(desc)
            if not manifest.is_image:
                return
            config = self.config(manifest)
            out.append(PlatformImage(desc, manifest, config, desc.platform or config.platform))

        visit(self.root)
        return tuple(out)

    def platforms(self) -> tuple[Platform, ...]:
        return tuple(image.platform for image in self.images())

    def select(self, image: PlatformImage) -> ImageBundle:
        """A bundle of just ``image`` (its manifest as root, with its platform)."""
        root = image.descriptor.with_platform(image.platform)
        needed = [root, image.manifest.config, *image.manifest.layers]
        blobs = {d.digest: self.blobs[d.digest] for d in needed if d.digest in self.blobs}
        return ImageBundle(root, blobs, f"{self.source} ({image.platform})")

    @property
    def size(self) -> int:
        """Compressed size: the sum of the distinct configs and layers of every image."""
        sizes: dict[str, int] = {}
        for image in self.images():
            for desc in (image.manifest.config, *image.manifest.layers):
                sizes[desc.digest] = desc.size
        return sum(sizes.values())


def image_bundle(
    config: bytes,
    layers: Sequence[tuple[str, bytes]],
    *,
    platform: Platform | None = None,
    annotations: Mapping[str, str] | Annotations | None = None,
    config_media_type: str = OCI_CONFIG,
    manifest_media_type: str = OCI_MANIFEST,
) -> ImageBundle:
    """A single-image bundle from config bytes and ``(media_type, bytes)`` layers.

    The root descriptor carries ``platform`` (taken from the config when not given), ready
    to be an entry of an index.
    """
    config_desc = Descriptor.of(config_media_type, config)
    layer_descs = [Descriptor.of(media_type, data) for media_type, data in layers]
    manifest = manifest_bytes(
        config_desc, layer_descs, media_type=manifest_media_type, annotations=annotations
    )
    if platform is None:
        platform = parse_config(config).platform
    blobs = {config_desc.digest: config}
    for desc, (_, data) in zip(layer_descs, layers, strict=True):
        blobs[desc.digest] = data
    root = Descriptor.of(manifest_media_type, manifest, platform=platform)
    blobs[root.digest] = manifest
    return ImageBundle(root, blobs)


def index_bundle(
    images: Sequence[ImageBundle],
    *,
    annotations: Mapping[str, str] | Annotations | None = None,
    media_type: str = OCI_INDEX,
) -> ImageBundle:
    """An index over single-image bundles (in the given order), blobs merged.

    Each entry keeps its root's platform; one without is given the platform of its config.
    """
    manifests: list[Descriptor] = []
    blobs: dict[str, bytes] = {}
    for image in images:
        root = image.root
        if root.media_type not in MANIFEST_TYPES:
            raise ValueError(f"{image.source}: an index entry must be a manifest")
        if root.platform is None:
            root = root.with_platform(image.images()[0].platform)
        manifests.append(root)
        for digest in image.digests():
            blobs[digest] = image.blobs[digest]
    data = index_bytes(manifests, media_type=media_type, annotations=annotations)
    root_desc = Descriptor.of(media_type, data)
    blobs[root_desc.digest] = data
    return ImageBundle(root_desc, blobs)
