"""The local image store: one OCI layout holding every image by name. [edge]

The store lives in ``$ALPENGLOW_STORE``, else ``$XDG_DATA_HOME/alpenglow/images``, else
``~/.local/share/alpenglow/images`` (see :func:`default_store_path`; the CLI passes the
environment in, the library reads none). Each image is an ``index.json`` entry whose
``org.opencontainers.image.ref.name`` is its normalised name ``NAME:TAG`` (or
``NAME@DIGEST`` for an image known only by digest), so the store is also readable by
``skopeo inspect oci:STORE:alpine-base:latest`` and ``umoci``.

Names follow Docker's rules: a missing tag means ``latest``, and Docker Hub names are shown
the familiar way (``docker.io/library/alpine`` is stored as ``alpine``). The image id is the
root digest (index or manifest); its first 12 hex digits are the short id.

>>> str(parse_name("alpine-base"))
'alpine-base:latest'
>>> parse_name("docker.io/library/alpine:3.22").ref_name
'alpine:3.22'
>>> parse_name("localhost:5000/x/y:1").repository
'localhost:5000/x/y'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from alpenglow.errors import AlpenglowError, FormatError, ImageNotFound, InvalidReference
from alpenglow.oci.image import (
    MANIFEST_TYPES,
    ORG_REF_NAME,
    Descriptor,
    ImageBundle,
    check_digest,
    parse_manifest,
)
from alpenglow.oci.layout import GcResult, Layout

__all__ = [
    "ImageName",
    "ImageRow",
    "ImageStore",
    "RemoveResult",
    "check_structure",
    "default_store_path",
    "parse_name",
    "short_id",
]


def __dir__() -> list[str]:
    return __all__


# Docker's reference grammar (distribution/reference), without IPv6 hosts.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_COMPONENT_RE = re.compile(_COMPONENT)
_DOMAIN_RE = re.compile(_DOMAIN)
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
_HEX_RE = re.compile(r"[0-9a-f]{1,64}")
_MAX_NAME = 255
_MIN_ID_PREFIX = 4


@dataclass(frozen=True, slots=True)
class ImageName:
    """A normalised image name: repository plus a tag and/or a digest."""

    repository: str
    tag: str = ""
    digest: str = ""

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def ref_name(self) -> str:
        """The name the store files the image under: ``NAME:TAG``, else ``NAME@DIGEST``."""
        if self.tag:
            return f"{self.repository}:{self.tag}"
        return f"{self.repository}@{self.digest}"


def _familiar(repository: str) -> str:
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if repository.startswith(prefix):
            rest = repository[len(prefix) :]
            return rest.removeprefix("library/") if rest.count("/") == 1 else rest
    return repository


def parse_name(text: str, default_tag: str = "latest") -> ImageName:
    """Parse ``NAME[:TAG][@DIGEST]`` by Docker's rules; :class:`InvalidReference` if bad.

    The tag defaults to ``default_tag`` unless a digest is given.
    """
    rest, _, digest = text.partition("@")
    if digest:
        try:
            check_digest(digest, "reference")
        except FormatError:
            raise InvalidReference(f"invalid reference {text!r}: bad digest {digest!r}") from None
    repository, tag = rest, ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        repository, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference(f"invalid reference {text!r}: bad tag {tag!r}")
    if not repository:
        raise InvalidReference(f"invalid reference {text!r}: no repository name")
    if len(repository) > _MAX_NAME:
        raise InvalidReference(f"invalid reference {text!r}: name longer than {_MAX_NAME}")
    parts = repository.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        if not _DOMAIN_RE.fullmatch(first):
            raise InvalidReference(f"invalid reference {text!r}: bad registry host {first!r}")
        parts = parts[1:]
    for part in parts:
        if not _COMPONENT_RE.fullmatch(part):
            hint = " (names must be lower case)" if part.lower() != part else ""
            raise InvalidReference(f"invalid reference {text!r}: bad name part {part!r}{hint}")
    if not tag and not digest:
        tag = default_tag
    return ImageName(_familiar(repository), tag, digest)


def _parse_ref_name(ref_name: str) -> ImageName | None:
    try:
        return parse_name(ref_name, default_tag="")
    except InvalidReference:
        return None


def short_id(digest: str) -> str:
    """Docker's short image id: the first 12 hex digits of a digest."""
    return digest.partition(":")[2][:12]


def default_store_path(environ: Mapping[str, str]) -> Path:
    """``$ALPENGLOW_STORE``, else ``$XDG_DATA_HOME/alpenglow/images``, else
    ``$HOME/.local/share/alpenglow/images``."""
    explicit = environ.get("ALPENGLOW_STORE")
    if explicit:
        return Path(explicit)
    data_home = environ.get("XDG_DATA_HOME", "")
    if data_home and Path(data_home).is_absolute():
        return Path(data_home) / "alpenglow" / "images"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "alpenglow" / "images"


@dataclass(frozen=True, slots=True)
class ImageRow:
    """One line of ``alpenglow images``: a name of an image and what it holds.

    ``size`` is compressed bytes: the distinct configs and layers of every platform.
    ``problem`` is set (and the other facts may be empty) when the image is damaged.
    """

    repository: str
    tag: str
    digest: str
    platforms: tuple[str, ...]
    size: int
    created: str = ""
    problem: str = ""

    @property
    def image_id(self) -> str:
        return short_id(self.digest)


@dataclass(frozen=True, slots=True)
class RemoveResult:
    """What :meth:`ImageStore.remove` did: the names removed and what gc freed."""

    untagged: tuple[str, ...]
    gc: GcResult


class ImageStore:
    """The image store at ``path`` (created on the first write)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._layout: Layout | None = None

    def __repr__(self) -> str:
        return f"ImageStore({str(self.path)!r})"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ImageStore:
        return cls(default_store_path(environ))

    @property
    def layout(self) -> Layout:
        """The store's layout, created if it does not exist yet."""
        if self._layout is None:
            self._layout = Layout.create(self.path)
        return self._layout

    def _entries(self) -> tuple[Descriptor, ...]:
        if self._layout is None and not (self.path / "index.json").exists():
            return ()
        return self.layout.entries()

    # -- writing ---------------------------------------------------------------------------

    def add(
        self,
        bundle: ImageBundle,
        names: Sequence[str],
        *,
        referrers: Sequence[ImageBundle] = (),
        verified: bool = False,
    ) -> Descriptor:
        """Store ``bundle`` under every name in ``names`` (``NAME[:TAG]``); a name already
        in use is moved to this image (the old image's blobs stay until :meth:`gc`).

        ``referrers`` are artifacts about the image (an SBOM manifest whose ``subject`` is
        one of its manifests); they are stored as unnamed entries, not listed as images,
        found with :meth:`referrers`, and dropped by :meth:`gc` once their subject is gone.
        All names and blobs are checked before anything is written.

        With ``verified`` the caller vouches that every blob has its digest (a pull checked
        each as it arrived, maybe straight into this store's layout): the blobs are not
        hashed again, only their presence and sizes and the images' structure are checked."""
        if not names:
            raise InvalidReference("an image needs at least one name to be stored")
        refs = [parse_name(name).ref_name for name in names]
        for artifact in (bundle, *referrers):
            if verified:
                check_structure(artifact)
            else:
                artifact.verify()
        layout = self.layout
        with layout.locked():
            for artifact in referrers:
                layout.write_bundle(artifact, verified=verified)
            return layout.write_bundle(bundle, refs, verified=verified)

    def referrers(self, digest: str) -> tuple[Descriptor, ...]:
        """The unnamed entries whose manifest's ``subject`` is ``digest`` (see
        :meth:`Layout.referrers`, for several subjects at once)."""
        if self._layout is None and not (self.path / "index.json").exists():
            return ()
        return self.layout.referrers({digest})

    def _unnamed_subjects(self) -> list[tuple[Descriptor, str]]:
        out = []
        for entry in self._entries():
            if entry.ref_name or entry.media_type not in MANIFEST_TYPES:
                continue
            try:
                manifest = parse_manifest(self.layout.get_blob(entry.digest), entry.digest)
            except FormatError:
                continue
            if manifest.subject is not None:
                out.append((entry, manifest.subject.digest))
        return out

    def tag(self, source: str, target: str) -> str:
        """Give the image ``source`` resolves to the name ``target``; returns the ref name."""
        desc = self.resolve(source)
        ref = parse_name(target).ref_name
        self.layout.set_ref(ref, _without_name(desc))
        return ref

    def remove(self, text: str, *, force: bool = False) -> RemoveResult:
        """Remove a name (``NAME[:TAG]``), or every name of an image given by digest or id
        (several names need ``force``), then collect garbage."""
        entries = self._entries()
        name = self._by_name(text, entries)
        if name is not None:
            targets = [name]
        else:
            desc = self.resolve(text)
            targets = [e for e in entries if e.digest == desc.digest]
            if len(targets) > 1 and not force:
                names = ", ".join(sorted(e.ref_name for e in targets))
                raise AlpenglowError(
                    f"image {short_id(desc.digest)} has several names ({names})",
                    hint="remove the names one by one, or force the removal",
                )
        ids = {(e.digest, e.ref_name) for e in targets}
        removed = self.layout.remove_entries(lambda e: (e.digest, e.ref_name) in ids)
        return RemoveResult(tuple(e.ref_name or e.digest for e in removed), self.gc())

    def gc(self) -> GcResult:
        """Drop referrers whose subject is gone, then delete blobs nothing reaches."""
        if not (self.path / "index.json").exists():
            return GcResult(0, 0)
        layout = self.layout
        with layout.locked():
            named = [e for e in layout.entries() if e.ref_name]
            alive = layout.reachable(named)
            orphans = {e.digest for e, subject in self._unnamed_subjects() if subject not in alive}
            if orphans:
                layout.remove_entries(lambda e: not e.ref_name and e.digest in orphans)
            return layout.gc()

    # -- reading ---------------------------------------------------------------------------

    def _by_name(self, text: str, entries: Sequence[Descriptor]) -> Descriptor | None:
        try:
            name = parse_name(text)
        except InvalidReference:
            return None
        if name.tag:
            for entry in entries:
                if entry.ref_name == name.ref_name:
                    if name.digest and entry.digest != name.digest:
                        return None
                    return entry
            return None
        for entry in entries:  # NAME@DIGEST: any name of that repository with that digest
            known = _parse_ref_name(entry.ref_name)
            if (
                known is not None
                and known.repository == name.repository
                and entry.digest == name.digest
            ):
                return entry
        return None

    def resolve(self, text: str) -> Descriptor:
        """The store entry for ``NAME[:TAG]``, ``NAME@DIGEST``, a digest ``sha256:...``
        (also written ``@sha256:...``) or an image id prefix (at least 4 hex digits).
        Names win over id prefixes, as in Docker."""
        query = text.strip()
        entries = self._entries()
        found = self._by_name(query, entries)
        if found is not None:
            return found
        bare = query.removeprefix("@")
        if bare.startswith(("sha256:", "sha512:")) and len(bare.partition(":")[2]) > 12:
            try:
                check_digest(bare, "image")
            except FormatError:
                raise InvalidReference(f"invalid image digest {text!r}") from None
            for entry in entries:
                if entry.digest == bare:
                    return entry
            raise ImageNotFound(f"no image with digest {bare} in the store")
        prefix = bare.removeprefix("sha256:")
        if len(prefix) >= _MIN_ID_PREFIX and _HEX_RE.fullmatch(prefix):
            matches = {e.digest: e for e in entries if e.digest.startswith(f"sha256:{prefix}")}
            if len(matches) == 1:
                return next(iter(matches.values()))
            if len(matches) > 1:
                raise AlpenglowError(f"image id prefix {prefix!r} is ambiguous")
        name = parse_name(query)  # a malformed name is reported as such, not as "not found"
        raise ImageNotFound(f"no such image in the store: {name}", hint="see `alpenglow images`")

    def get(self, text: str) -> ImageBundle:
        """The image ``text`` resolves to (see :meth:`resolve`), blobs read lazily."""
        desc = self.resolve(text)
        return self.layout.bundle_for(_without_name(desc), desc.ref_name or desc.digest)

    def names(self, digest: str) -> tuple[str, ...]:
        """Every name under which the image ``digest`` is stored."""
        return tuple(sorted(e.ref_name for e in self._entries() if e.digest == digest))

    def list(self) -> list[ImageRow]:
        """One row per name, sorted by repository and tag."""
        rows: list[ImageRow] = []
        facts: dict[str, tuple[tuple[str, ...], int, str, str]] = {}
        for entry in self._entries():
            if entry.digest not in facts:
                facts[entry.digest] = self._facts(entry)
            platforms, size, created, problem = facts[entry.digest]
            if not entry.ref_name and not platforms and not problem:
                continue  # an artifact about an image (an SBOM), not an image
            name = _parse_ref_name(entry.ref_name)
            if name is None:
                repository, tag = "<none>", "<none>"
            else:
                repository, tag = name.repository, name.tag or "<none>"
            rows.append(ImageRow(repository, tag, entry.digest, platforms, size, created, problem))
        rows.sort(key=lambda r: (r.repository, r.tag, r.digest))
        return rows

    def _facts(self, entry: Descriptor) -> tuple[tuple[str, ...], int, str, str]:
        try:
            bundle = self.layout.bundle_for(_without_name(entry), entry.ref_name)
            images = bundle.images()
        except FormatError as exc:
            return (), 0, "", str(exc)
        created = max((image.config.created for image in images), default="")
        return tuple(str(i.platform) for i in images), bundle.size, created, ""


def check_structure(bundle: ImageBundle) -> None:
    """What :meth:`ImageBundle.verify` checks besides the digests (for a bundle whose blobs
    were verified as they arrived): each image's config lists one diff_id per layer."""
    for image in bundle.images():
        if len(image.config.diff_ids) != len(image.manifest.layers):
            raise FormatError(
                f"{bundle.source}: image {image.descriptor.digest}: the config lists "
                f"{len(image.config.diff_ids)} diff_ids for {len(image.manifest.layers)} layers"
            )


def _without_name(desc: Descriptor) -> Descriptor:
    return desc.with_annotations(tuple((k, v) for k, v in desc.annotations if k != ORG_REF_NAME))
