"""Where images go and come from, spelled as skopeo spells them. [edge]

* ``NAME[:TAG]`` (or an image id or digest): the local image store
  (:mod:`alpenglow.oci.store`);
* ``oci:DIR[:REF]``: an OCI layout directory, the entry named REF in its index.json;
* ``oci-archive:FILE[:REF]``: the same layout as a tar file;
* ``docker-archive:FILE[:NAME:TAG]``: ``docker save`` format, one platform per file.

Every transport has a matching writer and reader over :class:`ImageBundle`, so any source
can be copied to any sink.

* ``oci:`` and ``oci-archive:`` keep the whole image (index and all platforms) as one
  ``index.json`` entry named by ``org.opencontainers.image.ref.name``, so ``skopeo inspect
  oci:DIR:REF`` finds it. Archives are reproducible: entries sorted, a fixed mtime, owner 0,
  modes 0644/0755.
* ``docker-archive:`` holds one image for one platform, as ``docker load`` and ``podman
  load`` need: ``manifest.json`` (Config, RepoTags, Layers), the config as ``<hex>.json``,
  each layer uncompressed as ``<diff-id hex>.tar`` and a ``repositories`` file. When more
  than one platform is written, each goes to its own file named after the platform:
  ``out.tar`` becomes ``out-amd64.tar``, ``out-arm-v7.tar``, ``out-arm64-v8.tar`` (see
  :func:`alpenglow.oci.platform.platform_suffix`); a file name without ``.tar`` gets the
  suffix appended (``out`` -> ``out-amd64``).

Readers never extract anything to disk. A member with an absolute or ``..`` path, a link
leading outside the archive, a device or fifo, a duplicated name, a truncated archive or a
blob that does not match its digest is refused with one :class:`ArchiveError` or
:class:`FormatError` line naming the file, and nothing is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import posixpath
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alpenglow.errors import (
    AlpenglowError,
    ArchiveError,
    FormatError,
    ImageNotFound,
    InvalidReference,
)
from alpenglow.oci.image import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OPTIONAL_LAYER_TYPES,
    ORG_REF_NAME,
    Descriptor,
    ImageBundle,
    Platform,
    PlatformImage,
    canonical_json,
    check_digest,
    image_bundle,
    index_bytes,
    parse_config,
    parse_index,
    parse_json,
)
from alpenglow.oci.layout import Layout
from alpenglow.oci.platform import matches, platform_suffix
from alpenglow.oci.store import ImageStore, parse_name

__all__ = [
    "TRANSPORTS",
    "ImageReference",
    "docker_archive_paths",
    "parse_reference",
    "read_docker_archive",
    "read_image",
    "read_oci",
    "read_oci_archive",
    "write_docker_archive",
    "write_image",
    "write_oci",
    "write_oci_archive",
]


def __dir__() -> list[str]:
    return __all__


TRANSPORTS = ("oci", "oci-archive", "docker-archive")
"""The transports besides the store, as skopeo names them."""

_OCI_REF = re.compile(
    r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*"
)
_IMAGE_ID = re.compile(r"@?(?:sha256:)?[0-9a-f]{4,64}")
_FOREIGN = ("docker://", "docker-daemon:", "containers-storage:", "dir:", "ostree:", "sif:")


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A parsed image reference: ``transport`` is ``store`` or one of :data:`TRANSPORTS`;
    ``path`` the directory or file; ``name`` the store name (``NAME:TAG``, or an image id
    or digest as given), the layout's
    ref name, or the archive's ``NAME:TAG`` (``@N`` picks the N-th image of a docker
    archive when reading). ``name`` is "" when not given."""

    transport: str
    path: str = ""
    name: str = ""

    def __str__(self) -> str:
        if self.transport == "store":
            return self.name
        return f"{self.transport}:{self.path}" + (f":{self.name}" if self.name else "")


def parse_reference(text: str) -> ImageReference:
    """Parse a reference as skopeo does: the path ends at the first ``:`` after the prefix.

    >>> parse_reference("oci:out:alpine-base:latest")
    ImageReference(transport='oci', path='out', name='alpine-base:latest')
    >>> str(parse_reference("docker-archive:a.tar:alpine"))
    'docker-archive:a.tar:alpine:latest'
    >>> parse_reference("alpine").name
    'alpine:latest'
    """
    for foreign in _FOREIGN:
        if text.startswith(foreign):
            raise InvalidReference(
                f"unsupported transport in {text!r} "
                f"(use a store name, {', '.join(t + ':' for t in TRANSPORTS)})"
            )
    for transport in ("oci-archive", "docker-archive", "oci"):
        if text.startswith(f"{transport}:"):
            path, _, name = text[len(transport) + 1 :].partition(":")
            if not path:
                raise InvalidReference(f"invalid reference {text!r}: no path after {transport}:")
            if transport == "docker-archive":
                name = _archive_name(name, text)
            elif name and not _OCI_REF.fullmatch(name):
                raise InvalidReference(f"invalid reference {text!r}: bad image name {name!r}")
            return ImageReference(transport, path, name)
    if _IMAGE_ID.fullmatch(text):
        return ImageReference("store", "", text)  # an image id or digest, resolved by the store
    return ImageReference("store", "", parse_name(text).ref_name)


def _archive_name(name: str, text: str) -> str:
    if not name:
        return ""
    if name.startswith("@"):
        if not name[1:].isdigit():
            raise InvalidReference(f"invalid reference {text!r}: @ must be followed by a number")
        return name
    parsed = parse_name(name)
    if parsed.digest:
        raise InvalidReference(f"invalid reference {text!r}: docker-archive names take no digest")
    return parsed.ref_name


# --------------------------------------------------------------------------------------------
# Dispatch


def write_image(
    bundle: ImageBundle,
    reference: ImageReference | str,
    *,
    store: ImageStore | None = None,
    names: Sequence[str] = (),
    platforms: Sequence[Platform] | None = None,
    mtime: int = 0,
) -> tuple[str, ...]:
    """Write ``bundle`` to ``reference``; returns what was written (store names, the
    directory, or the archive files).

    ``names`` (``NAME[:TAG]``) are used when the reference has no name of its own: the
    store's names, the layout's ref names, the archive's RepoTags. ``platforms`` limits a
    docker archive to some platforms. ``mtime`` is the time stamp of archive members.
    """
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    wanted = [ref.name] if ref.name else [parse_name(n).ref_name for n in names]
    if ref.transport == "store":
        if store is None:
            raise AlpenglowError("no image store given for writing to the store")
        store.add(bundle, wanted)
        return tuple(wanted)
    if ref.transport == "oci":
        write_oci(bundle, ref.path, wanted)
        return (ref.path,)
    if ref.transport == "oci-archive":
        write_oci_archive(bundle, ref.path, wanted, mtime=mtime)
        return (ref.path,)
    if ref.transport == "docker-archive":
        written = write_docker_archive(bundle, ref.path, wanted, platforms=platforms, mtime=mtime)
        return tuple(str(p) for p in written)
    raise InvalidReference(f"unknown transport {ref.transport!r}")


def read_image(reference: ImageReference | str, *, store: ImageStore | None = None) -> ImageBundle:
    """Read the image at ``reference`` into a verified bundle."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    if ref.transport == "store":
        if store is None:
            raise AlpenglowError("no image store given for reading from the store")
        return store.get(ref.name)
    if ref.transport == "oci":
        return read_oci(ref.path, ref.name)
    if ref.transport == "oci-archive":
        return read_oci_archive(ref.path, ref.name)
    if ref.transport == "docker-archive":
        return read_docker_archive(ref.path, ref.name)
    raise InvalidReference(f"unknown transport {ref.transport!r}")


# --------------------------------------------------------------------------------------------
# oci: and oci-archive:


def write_oci(bundle: ImageBundle, directory: Path | str, names: Sequence[str] = ()) -> Descriptor:
    """Add ``bundle`` to the layout at ``directory`` (created if needed) under ``names``
    (unnamed when empty)."""
    bundle.verify()
    return Layout.create(directory).write_bundle(bundle, names)


def read_oci(directory: Path | str, name: str = "") -> ImageBundle:
    """The image named ``name`` (or the only one) of the layout at ``directory``."""
    bundle = Layout.open(directory).read_bundle(name)
    bundle.verify()
    return bundle


def write_oci_archive(
    bundle: ImageBundle, file: Path | str, names: Sequence[str] = (), *, mtime: int = 0
) -> None:
    """Write ``bundle`` as a one-image OCI layout in a reproducible tar at ``file``."""
    bundle.verify()
    entries = [
        bundle.root.with_annotations({**dict(bundle.root.annotations), ORG_REF_NAME: name})
        for name in names
    ] or [bundle.root]
    files: dict[str, bytes] = {
        "oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"}),
        "index.json": index_bytes(entries, media_type=OCI_INDEX),
    }
    for digest in bundle.digests():
        algorithm, _, hexpart = digest.partition(":")
        files[f"blobs/{algorithm}/{hexpart}"] = bundle.blobs[digest]
    _write_tar(Path(file), files, mtime)


def read_oci_archive(file: Path | str, name: str = "") -> ImageBundle:
    """The image named ``name`` (or the only one) of an OCI archive."""
    path = Path(file)
    members = _read_tar(path)
    source = str(path)
    for required in ("oci-layout", "index.json"):
        if required not in members:
            raise FormatError(f"{source}: not an OCI archive (no {required})")
    layout = parse_json(members["oci-layout"], f"{source}: oci-layout")
    if not isinstance(layout, dict) or not str(layout.get("imageLayoutVersion", "")).startswith(
        "1."
    ):
        raise FormatError(f"{source}: oci-layout: unsupported or missing imageLayoutVersion")
    index = parse_index(members["index.json"], f"{source}: index.json")
    root = _pick_entry(index.manifests, name, source)
    blobs: dict[str, bytes] = {}
    for member, data in members.items():
        parts = member.split("/")
        if len(parts) == 3 and parts[0] == "blobs":
            digest = f"{parts[1]}:{parts[2]}"
            try:
                check_digest(digest, source)
            except FormatError:
                continue
            blobs[digest] = data
    annotations = tuple((k, v) for k, v in root.annotations if k != ORG_REF_NAME)
    probe = ImageBundle(
        root.with_annotations(annotations), blobs, f"{source}:{name}" if name else source
    )
    probe.verify()
    needed = probe.digests()
    return ImageBundle(probe.root, {d: blobs[d] for d in needed if d in blobs}, probe.source)


def _pick_entry(entries: Sequence[Descriptor], name: str, source: str) -> Descriptor:
    if not name:
        if len(entries) == 1:
            return entries[0]
        raise ImageNotFound(
            f"{source}: {len(entries)} images in index.json; name one of them"
            if entries
            else f"{source}: the archive holds no image"
        )
    for entry in entries:
        if entry.ref_name == name:
            return entry
    raise ImageNotFound(f"{source}: no image named {name!r}")


# --------------------------------------------------------------------------------------------
# docker-archive:


def docker_archive_paths(file: Path | str, platforms: Sequence[Platform]) -> list[Path]:
    """The file names a docker archive of ``platforms`` is written to: ``file`` itself for
    one platform, else ``file`` with ``-<platform>`` before ``.tar`` for each."""
    path = Path(file)
    if len(platforms) <= 1:
        return [path]
    out = []
    for platform in platforms:
        suffix = platform_suffix(platform)
        if path.name.endswith(".tar"):
            out.append(path.with_name(f"{path.name[:-4]}-{suffix}.tar"))
        else:
            out.append(path.with_name(f"{path.name}-{suffix}"))
    return out


def write_docker_archive(
    bundle: ImageBundle,
    file: Path | str,
    names: Sequence[str] = (),
    *,
    platforms: Sequence[Platform] | None = None,
    mtime: int = 0,
) -> list[Path]:
    """Write each platform of ``bundle`` (or those in ``platforms``) as a ``docker save``
    archive tagged ``names`` (``NAME:TAG``); returns the files written. Every file is made
    before any is renamed into place."""
    bundle.verify()
    images = list(bundle.images())
    if platforms:
        chosen: list[PlatformImage] = []
        for want in platforms:
            found = [image for image in images if matches(want, image.platform)]
            if not found:
                have = ", ".join(str(i.platform) for i in images)
                raise ImageNotFound(f"{bundle.source}: no image for {want} (it has {have})")
            chosen.extend(i for i in found if i not in chosen)
        images = chosen
    if not images:
        raise ImageNotFound(f"{bundle.source}: holds no runnable image")
    tags = [parse_name(name).ref_name for name in names]
    for tag in tags:
        if "@" in tag:
            raise InvalidReference(f"docker-archive names take no digest: {tag}")
    paths = docker_archive_paths(file, [image.platform for image in images])
    prepared = [
        (path, _docker_files(bundle, image, tags))
        for path, image in zip(paths, images, strict=True)
    ]
    temporaries: list[tuple[Path, Path]] = []
    try:
        for path, files in prepared:
            temporaries.append((_write_tar_temp(path, files, mtime), path))
        for tmp, path in temporaries:
            os.replace(tmp, path)
    except OSError as exc:
        raise AlpenglowError(f"{file}: cannot write: {exc.strerror}") from None
    finally:
        for tmp, _ in temporaries:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return paths


def _uncompressed(data: bytes, media_type: str, source: str) -> bytes:
    if data[:2] == b"\x1f\x8b":
        import gzip

        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ArchiveError(f"{source}: layer is not valid gzip: {exc}") from None
    if data[:4] == b"\x28\xb5\x2f\xfd" or media_type == OCI_LAYER_ZSTD:
        raise ArchiveError(f"{source}: zstd-compressed layers are not supported here")
    return data


def _docker_files(
    bundle: ImageBundle, image: PlatformImage, tags: Sequence[str]
) -> dict[str, bytes]:
    manifest = image.manifest
    config_hex = manifest.config.digest.partition(":")[2]
    files: dict[str, bytes] = {f"{config_hex}.json": bundle.blob(manifest.config.digest)}
    layer_names: list[str] = []
    for layer, diff_id in zip(manifest.layers, image.config.diff_ids, strict=True):
        if layer.media_type in OPTIONAL_LAYER_TYPES and layer.digest not in bundle.blobs:
            raise ArchiveError(
                f"{bundle.source}: foreign layer {layer.digest} is not in the image; "
                "a docker archive needs every layer"
            )
        where = f"{bundle.source}: layer {layer.digest}"
        tar = _uncompressed(bundle.blob(layer.digest), layer.media_type, where)
        actual = "sha256:" + hashlib.sha256(tar).hexdigest()
        if actual != diff_id:
            raise FormatError(
                f"{where}: uncompressed content is {actual}, the config says {diff_id}"
            )
        name = f"{diff_id.partition(':')[2]}.tar"
        files[name] = tar
        layer_names.append(name)
    entry = {"Config": f"{config_hex}.json", "RepoTags": list(tags), "Layers": layer_names}
    files["manifest.json"] = canonical_json([entry])
    if tags and layer_names:
        repositories: dict[str, dict[str, str]] = {}
        top = layer_names[-1].removesuffix(".tar")
        for tag in tags:
            repo, _, tag_name = tag.rpartition(":")
            repositories.setdefault(repo, {})[tag_name] = top
        files["repositories"] = canonical_json(repositories)
    return files


def read_docker_archive(file: Path | str, name: str = "") -> ImageBundle:
    """The image ``name`` (``NAME:TAG``, ``@N``, or the only one) of a ``docker save``
    archive, as an OCI image (uncompressed layers stay uncompressed, gzip ones gzip).
    Each layer must match its ``diff_id``."""
    path = Path(file)
    source = str(path)
    members = _read_tar(path)
    if "manifest.json" not in members:
        raise FormatError(f"{source}: not a docker archive (no manifest.json)")
    listing = parse_json(members["manifest.json"], f"{source}: manifest.json")
    if not isinstance(listing, list) or not all(isinstance(e, dict) for e in listing):
        raise FormatError(f"{source}: manifest.json: expected a list of objects")
    entry = _pick_docker_entry(listing, name, source)
    config_name = entry.get("Config")
    layer_names = entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise FormatError(f"{source}: manifest.json: an entry needs 'Config' and 'Layers'")
    config = _member(members, config_name, source)
    parsed = parse_config(config, f"{source}: {config_name}")
    if len(parsed.diff_ids) != len(layer_names):
        raise FormatError(
            f"{source}: {config_name} lists {len(parsed.diff_ids)} diff_ids "
            f"for {len(layer_names)} layers"
        )
    layers: list[tuple[str, bytes]] = []
    for layer_name, diff_id in zip(layer_names, parsed.diff_ids, strict=True):
        if not isinstance(layer_name, str):
            raise FormatError(f"{source}: manifest.json: layer names must be strings")
        data = _member(members, layer_name, source)
        where = f"{source}: {layer_name}"
        tar = _uncompressed(data, "", where)
        actual = "sha256:" + hashlib.sha256(tar).hexdigest()
        if actual != diff_id:
            raise FormatError(f"{where}: content is {actual}, the config says {diff_id}")
        layers.append((OCI_LAYER_GZIP if tar is not data else OCI_LAYER, data))
    bundle = image_bundle(config, layers, config_media_type=OCI_CONFIG)
    label = f"{source}:{name}" if name else source
    return ImageBundle(bundle.root, bundle.blobs, label)


def _pick_docker_entry(listing: list[dict[str, Any]], name: str, source: str) -> dict[str, Any]:
    if name.startswith("@"):
        index = int(name[1:])
        if index >= len(listing):
            raise ImageNotFound(f"{source}: no image @{index} (the archive holds {len(listing)})")
        return listing[index]
    if name:
        for entry in listing:
            tags = entry.get("RepoTags") or []
            for tag in tags if isinstance(tags, list) else []:
                with contextlib.suppress(InvalidReference):
                    if isinstance(tag, str) and parse_name(tag).ref_name == name:
                        return entry
        raise ImageNotFound(f"{source}: no image tagged {name!r}")
    if len(listing) == 1:
        return listing[0]
    raise ImageNotFound(
        f"{source}: {len(listing)} images in the archive; name one (NAME:TAG or @N)"
        if listing
        else f"{source}: the archive holds no image"
    )


def _member(members: dict[str, bytes], name: str, source: str) -> bytes:
    key = _clean_member_name(name, source)
    if key not in members:
        raise FormatError(f"{source}: {name!r} is named in manifest.json but not in the archive")
    return members[key]


# --------------------------------------------------------------------------------------------
# Tar files


def _tar_to(fh: Any, files: dict[str, bytes], mtime: int) -> None:
    import tarfile

    directories: set[str] = set()
    for name in files:
        parent = posixpath.dirname(name)
        while parent:
            directories.add(parent)
            parent = posixpath.dirname(parent)
    names = sorted([*(d + "/" for d in directories), *files])
    with tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in names:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                data = files[name]
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))


def _write_tar_temp(path: Path, files: dict[str, bytes], mtime: int) -> Path:
    tmp = path.with_name(f".tmp-{path.name}.{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            _tar_to(fh, files, mtime)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def _write_tar(path: Path, files: dict[str, bytes], mtime: int) -> None:
    try:
        tmp = _write_tar_temp(path, files, mtime)
    except OSError as exc:
        raise AlpenglowError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise AlpenglowError(f"{path}: cannot write: {exc.strerror}") from None


def _clean_member_name(name: str, source: str) -> str:
    """A member name made relative and normalised; hostile names are refused."""
    if name.startswith("/") or "\0" in name:
        raise ArchiveError(f"{source}: refusing archive member {name!r} (an absolute path)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"{source}: refusing archive member {name!r} (a '..' path)")
    return "/".join(parts)


def _read_tar(path: Path) -> dict[str, bytes]:
    """Every regular file of a (possibly compressed) tar, by normalised name. Links are
    resolved inside the archive; anything hostile raises :class:`ArchiveError`."""
    # tar and its compressions load only for archives (a pull into an oci: layout that
    # names this module for its references does not pay for them)
    import gzip
    import tarfile

    source = str(path)
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                name = _clean_member_name(member.name, source)
                if member.isdir():
                    continue
                if not name:
                    raise ArchiveError(f"{source}: refusing archive member {member.name!r}")
                if name in files or name in links:
                    raise ArchiveError(f"{source}: archive member {name!r} appears twice")
                if member.issym():
                    target = posixpath.normpath(
                        posixpath.join(posixpath.dirname(name), member.linkname)
                    )
                    if (
                        member.linkname.startswith("/")
                        or target == ".."
                        or target.startswith("../")
                    ):
                        raise ArchiveError(
                            f"{source}: refusing symlink {name!r} -> {member.linkname!r} "
                            "(it leads outside the archive)"
                        )
                    links[name] = target
                elif member.islnk():
                    links[name] = _clean_member_name(member.linkname, source)
                elif member.isreg():
                    handle = tar.extractfile(member)
                    data = handle.read() if handle is not None else b""
                    if len(data) != member.size:
                        raise ArchiveError(f"{source}: archive member {name!r} is truncated")
                    files[name] = data
                else:
                    raise ArchiveError(
                        f"{source}: refusing archive member {name!r} (not a file or directory)"
                    )
    except FileNotFoundError:
        raise ImageNotFound(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ArchiveError(f"{source}: is a directory, not an archive") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, gzip.BadGzipFile):
            raise ArchiveError(f"{source}: cannot read: {exc.strerror}") from None
        # tarfile's "r:*" lists each compression it tried on lines of their own; the last
        # one is the plain tar reader's reason, which keeps the message on one line
        lines = str(exc).splitlines()
        reason = lines[-1].removeprefix("- method tar: ") if lines else "truncated"
        raise ArchiveError(f"{source}: not a readable tar archive ({reason})") from None
    for name in links:
        files_target = _resolve_link(name, links, files, source)
        files[name] = files[files_target]
    return files


def _resolve_link(name: str, links: dict[str, str], files: dict[str, bytes], source: str) -> str:
    current = name
    for _ in range(len(links) + 1):
        if current in files:
            return current
        if current not in links:
            break
        current = links[current]
    raise ArchiveError(f"{source}: link {name!r} does not lead to a file in the archive")
