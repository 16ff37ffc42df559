"""An OCI image layout directory: ``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``. [edge]

Every write is atomic (a temporary file in the same directory, then ``os.replace``); blobs
are checked against their digest before they are renamed into place and again when they are
read, so a corrupt file is reported with its path instead of being passed on. Changes to
``index.json`` and garbage collection take an exclusive ``flock`` on the layout directory
itself (no lock file is left in the layout), so concurrent writers in several processes
serialise instead of losing each other's entries.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from alpenglow.errors import AlpenglowError, FormatError, ImageNotFound
from alpenglow.oci.image import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OPTIONAL_LAYER_TYPES,
    ORG_REF_NAME,
    Descriptor,
    ImageBundle,
    Index,
    canonical_json,
    check_digest,
    index_bytes,
    parse_index,
    parse_json,
    parse_manifest,
    verify_blob,
)

__all__ = ["GcResult", "Layout", "LayoutBlobs"]


def __dir__() -> list[str]:
    return __all__


_LAYOUT_VERSION = "1.0.0"
_TMP_PREFIX = ".tmp-"
_LOCK_TIMEOUT = 120.0
_STALE_TMP_SECONDS = 24 * 3600
_BLOB_NAME_LENGTHS = {"sha256": 64, "sha512": 128}
_HEX_NAME = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, slots=True)
class GcResult:
    """What a garbage collection removed."""

    blobs: int
    bytes: int


def _write_atomic(path: Path, data: bytes, *, durable: bool, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory; with
    ``durable`` the data reaches the disk before the rename."""
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _written(path: Path) -> bool:
    """Whether ``path`` is a regular file with something in it."""
    try:
        info = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size > 0


def _empty_file(path: Path) -> bool:
    """Whether ``path`` is a regular file of zero bytes."""
    try:
        info = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size == 0


class LayoutBlobs(Mapping[str, bytes]):
    """A lazy, read-only mapping of some digests to the layout's blobs, each read and
    verified when it is looked up.

    Blobs once read and verified are kept, up to 64 MiB in all, so that walking a bundle
    again and again (its documents), or verifying and then sending it (a push of a small
    image), reads and hashes each once; beyond that, blobs are read anew each time rather
    than held in memory."""

    verifies_on_read = True  # (see ImageBundle.verify)
    _KEEP_BYTES = 64 << 20

    def __init__(self, layout: Layout, digests: Iterable[str]) -> None:
        self._layout = layout
        self._digests = frozenset(digests)
        self._kept: dict[str, bytes] = {}
        self._kept_bytes = 0
        self._keeping = threading.Lock()

    def __getitem__(self, digest: str) -> bytes:
        kept = self._kept.get(digest)
        if kept is not None:
            return kept
        if digest not in self._digests or not self._layout.has_blob(digest):
            raise KeyError(digest)
        data = self._layout.get_blob(digest)
        with self._keeping:
            if digest not in self._kept and self._kept_bytes + len(data) <= self._KEEP_BYTES:
                self._kept[digest] = data
                self._kept_bytes += len(data)
        return data

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._digests))

    def __len__(self) -> int:
        return len(self._digests)

    def __contains__(self, digest: object) -> bool:
        if not isinstance(digest, str) or digest not in self._digests:
            return False
        return digest in self._kept or self._layout.has_blob(digest)


class Layout:
    """An OCI image layout on disk. Open one with :meth:`open` or :meth:`create`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_depth = 0
        self._lock_fd = -1
        self._thread_lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Layout({str(self.path)!r})"

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str) -> Layout:
        """Open the layout at ``path``, making the directory, ``oci-layout``, ``index.json``
        and ``blobs/sha256`` as needed. An existing layout is kept as it is.

        Durability: the two files a new layout starts with are written atomically but not
        fsynced. They hold nothing a crash could lose (a constant marker and an empty
        index), and the first image stored rewrites ``index.json`` durably, the one fsync a
        pull or copy into a new layout pays (instead of three). The one state a crash can
        leave them in that a durable write would have prevented is an empty file (its bytes
        never reached the disk): such an empty ``oci-layout`` or ``index.json`` is taken as
        not written yet and written again here. (Every later ``index.json`` is fsynced before
        it replaces the old one, so an empty one can only come from here.)"""
        root = Path(path)
        try:
            root.mkdir(parents=True, exist_ok=True)
            (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise AlpenglowError(f"{root}: exists and is not a directory") from None
        except OSError as exc:
            raise AlpenglowError(f"{root}: cannot create an OCI layout: {exc.strerror}") from None
        layout = cls(root)
        marker, index = root / "oci-layout", root / "index.json"
        if _written(marker) and _written(index):
            layout._check_marker()  # nothing to create: no lock, so readers never wait
            return layout
        with layout.locked():
            if marker.exists() and not _empty_file(marker):
                layout._check_marker()
            else:
                marker_json = canonical_json({"imageLayoutVersion": _LAYOUT_VERSION})
                layout._write(marker, marker_json, durable=False)
            if not index.exists() or _empty_file(index):
                layout._write(index, index_bytes([]), durable=False)
        return layout

    @classmethod
    def open(cls, path: Path | str) -> Layout:
        """Open an existing layout; :class:`FormatError` if ``path`` is not one."""
        root = Path(path)
        if not root.is_dir():
            raise ImageNotFound(f"{root}: no such OCI layout directory")
        layout = cls(root)
        layout._check_marker()
        return layout

    def _check_marker(self) -> None:
        marker = self.path / "oci-layout"
        try:
            data = marker.read_bytes()
        except FileNotFoundError:
            raise FormatError(f"{self.path}: not an OCI layout (no oci-layout file)") from None
        except OSError as exc:
            raise FormatError(f"{marker}: cannot read: {exc.strerror}") from None
        obj = parse_json(data, str(marker))
        if not isinstance(obj, dict) or not isinstance(obj.get("imageLayoutVersion"), str):
            raise FormatError(f"{marker}: missing 'imageLayoutVersion'")
        if not obj["imageLayoutVersion"].startswith("1."):
            raise FormatError(
                f"{marker}: unsupported imageLayoutVersion {obj['imageLayoutVersion']!r}"
            )

    # -- locking ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, timeout: float = _LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the layout's exclusive lock (re-entrant within this object)."""
        with self._thread_lock:
            if self._lock_depth == 0:
                self._lock_fd = self._acquire(timeout)
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    os.close(self._lock_fd)
                    self._lock_fd = -1

    def _acquire(self, timeout: float) -> int:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise AlpenglowError(f"{self.path}: cannot open: {exc.strerror}") from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise AlpenglowError(f"{self.path}: cannot lock: {exc.strerror}") from None
            if time.monotonic() >= deadline:
                os.close(fd)
                raise AlpenglowError(
                    f"{self.path}: still locked by another process after {timeout:.0f} s"
                )
            time.sleep(0.02)

    def _write(self, path: Path, data: bytes, *, durable: bool = True) -> None:
        try:
            _write_atomic(path, data, durable=durable)
        except OSError as exc:
            raise AlpenglowError(f"{path}: cannot write: {exc.strerror}") from None

    # -- blobs -----------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (the digest is validated first)."""
        algorithm, _, hexpart = check_digest(digest, str(self.path)).partition(":")
        return self.path / "blobs" / algorithm / hexpart

    def staging_path(self, digest: str) -> Path:
        """A temporary name, next to where blob ``digest`` lives, to write it under before
        renaming it into place (such files left behind are removed by :meth:`gc` after a
        day)."""
        path = self.blob_path(digest)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AlpenglowError(f"{path.parent}: cannot create: {exc.strerror}") from None
        return path.with_name(f"{_TMP_PREFIX}{path.name}.{os.getpid()}.{threading.get_ident()}")

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def put_blob(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` (checked against ``digest`` when given) and return its digest.

        A blob already present is left alone if its content is right, else replaced."""
        if digest is None:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
        else:
            verify_blob(data, digest, None, f"{self.path}: put")
        if not self._blob_is_sound(digest, len(data)):
            self._store_blob(digest, data)
        return digest

    def _blob_is_sound(self, digest: str, size: int) -> bool:
        """Whether the blob file exists with ``size`` bytes hashing to ``digest``."""
        path = self.blob_path(digest)
        algorithm = digest.partition(":")[0]
        try:
            if path.stat().st_size != size:
                return False
            with open(path, "rb") as fh:
                actual = hashlib.file_digest(fh, algorithm).hexdigest()
        except OSError:
            return False
        return f"{algorithm}:{actual}" == digest

    def _store_blob(self, digest: str, data: bytes) -> None:
        # Blobs are not fsynced (index.json is): a blob torn by a crash is caught by the
        # digest check on every read and replaced by the next put.
        path = self.blob_path(digest)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AlpenglowError(f"{path.parent}: cannot create: {exc.strerror}") from None
        self._write(path, data, durable=False)

    def put_blob_stream(self, chunks: Iterable[bytes], digest: str) -> int:
        """Store a blob arriving in pieces; it is renamed into place only when the bytes
        hash to ``digest``. Returns the size."""
        algorithm = check_digest(digest, str(self.path)).partition(":")[0]
        path = self.blob_path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{os.getpid()}.{threading.get_ident()}")
        hasher = hashlib.new(algorithm)
        size = 0
        try:
            with open(tmp, "wb") as fh:
                for chunk in chunks:
                    hasher.update(chunk)
                    fh.write(chunk)
                    size += len(chunk)
            actual = f"{algorithm}:{hasher.hexdigest()}"
            if actual != digest:
                raise FormatError(f"{self.path}: blob {digest}: received bytes hash to {actual}")
            os.replace(tmp, path)
        except OSError as exc:
            raise AlpenglowError(f"{path}: cannot write: {exc.strerror}") from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        return size

    def get_blob(self, digest: str, size: int | None = None) -> bytes:
        """The bytes of ``digest``, verified; :class:`FormatError` naming the file when it
        is missing or does not hash to its name."""
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FormatError(f"{path}: blob {digest} is missing from the layout") from None
        except OSError as exc:
            raise FormatError(f"{path}: cannot read: {exc.strerror}") from None
        verify_blob(data, digest, size, str(path))
        return data

    def blob_digests(self) -> set[str]:
        """Every blob file in the layout (temporary files left out)."""
        out: set[str] = set()
        blobs = self.path / "blobs"
        if not blobs.is_dir():
            return out
        for algorithm_dir in blobs.iterdir():
            if not algorithm_dir.is_dir():
                continue
            expected = _BLOB_NAME_LENGTHS.get(algorithm_dir.name)
            for entry in algorithm_dir.iterdir():
                name = entry.name
                if len(name) == expected and _HEX_NAME.fullmatch(name):
                    out.add(f"{algorithm_dir.name}:{name}")
        return out

    # -- index.json ------------------------------------------------------------------------

    def index(self) -> Index:
        """The layout's ``index.json``."""
        return self._index_and_bytes(self.path / "index.json")[0]

    def _index_and_bytes(self, path: Path) -> tuple[Index, bytes]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FormatError(f"{path}: missing (not an OCI layout?)") from None
        except OSError as exc:
            raise FormatError(f"{path}: cannot read: {exc.strerror}") from None
        return parse_index(data, str(path)), data

    def entries(self) -> tuple[Descriptor, ...]:
        return self.index().manifests

    def update_index(
        self, change: Callable[[list[Descriptor]], list[Descriptor] | None]
    ) -> tuple[Descriptor, ...]:
        """Rewrite ``index.json`` under the lock: ``change`` gets the current entries as a
        list, edits it in place or returns a new one. Index annotations are kept."""
        with self.locked():
            path = self.path / "index.json"
            current, old = self._index_and_bytes(path)
            entries = list(current.manifests)
            result = change(entries)
            if result is not None:
                entries = result
            data = index_bytes(entries, media_type=OCI_INDEX, annotations=current.annotations)
            if data != old:  # unchanged (an image pulled again, a name set again): no write
                self._write(path, data)  # durable: the commit point of whatever was stored
            return tuple(entries)

    def add_entry(self, descriptor: Descriptor) -> None:
        """Append an entry to ``index.json``."""
        self.update_index(lambda entries: [*entries, descriptor])

    def set_ref(self, name: str, descriptor: Descriptor) -> None:
        """Point the entry named ``name`` at ``descriptor`` (replacing any with that name)."""
        self.set_refs({name: descriptor})

    def set_refs(self, refs: Mapping[str, Descriptor]) -> None:
        """Point several names at once (one index rewrite)."""

        def change(entries: list[Descriptor]) -> list[Descriptor]:
            kept = [e for e in entries if e.ref_name not in refs]
            for name, desc in refs.items():
                annotations = dict(desc.annotations)
                annotations[ORG_REF_NAME] = name
                kept.append(desc.with_annotations(annotations))
            return kept

        self.update_index(change)

    def remove_entries(self, predicate: Callable[[Descriptor], bool]) -> list[Descriptor]:
        """Drop the entries for which ``predicate`` is true; returns them."""
        removed: list[Descriptor] = []

        def change(entries: list[Descriptor]) -> list[Descriptor]:
            removed.extend(e for e in entries if predicate(e))
            return [e for e in entries if not predicate(e)]

        self.update_index(change)
        return removed

    def find(self, ref: str) -> Descriptor:
        """The entry named ``ref`` (``org.opencontainers.image.ref.name``), or the entry
        whose digest is ``ref``; with ``ref == ""`` the only entry, if there is exactly one."""
        entries = self.entries()
        if not ref:
            if len(entries) == 1:
                return entries[0]
            raise ImageNotFound(
                f"{self.path}: {len(entries)} images in index.json; name one of them"
                if entries
                else f"{self.path}: the layout holds no image"
            )
        for entry in entries:
            if entry.ref_name == ref:
                return entry
        if ":" in ref and ref.partition(":")[0] in ("sha256", "sha512"):
            for entry in entries:
                if entry.digest == ref:
                    return entry
        raise ImageNotFound(f"{self.path}: no image named {ref!r} in index.json")

    # -- bundles ---------------------------------------------------------------------------

    def write_bundle(
        self, bundle: ImageBundle, refs: Iterable[str] = (), *, verified: bool = False
    ) -> Descriptor:
        """Store every blob of ``bundle`` (verified) and name its root ``refs`` in
        ``index.json``; with no names the root is added unnamed, replacing other unnamed
        entries of the same digest. Returns the root descriptor as written (without the name
        annotation).

        With ``verified`` the caller vouches that the bundle's blobs have their digests
        (they were checked as they arrived): none is hashed again, and a blob file already
        here with the right size is kept."""
        names = list(refs)
        root = bundle.root
        with self.locked():
            self._put_bundle_blobs(bundle, verified=verified)
            if names:
                self.set_refs(dict.fromkeys(names, root))
            else:
                self.update_index(
                    lambda entries: [
                        *(e for e in entries if e.ref_name or e.digest != root.digest),
                        root,
                    ]
                )
        return root

    def _put_bundle_blobs(self, bundle: ImageBundle, *, verified: bool = False) -> None:
        for desc in bundle.descriptors():
            if desc.media_type in OPTIONAL_LAYER_TYPES and desc.digest not in bundle.blobs:
                continue
            if verified:
                try:
                    if self.blob_path(desc.digest).stat().st_size == desc.size:
                        continue
                except OSError:
                    pass
            elif self._blob_is_sound(desc.digest, desc.size):
                continue
            data = bundle.blob(desc.digest)
            if verified:
                if len(data) != desc.size:
                    raise FormatError(
                        f"{bundle.source}: blob {desc.digest} has {len(data)} bytes, its "
                        f"descriptor says {desc.size}"
                    )
            else:
                verify_blob(data, desc.digest, desc.size, bundle.source)
            self._store_blob(desc.digest, data)

    def read_bundle(self, ref: str = "") -> ImageBundle:
        """The image named ``ref`` (or with that digest; see :meth:`find`) as a bundle whose
        blobs are read and verified lazily; its root descriptor no longer carries the name.
        Every blob it needs must be present."""
        entry = self.find(ref)
        root = entry.with_annotations(
            tuple((k, v) for k, v in entry.annotations if k != ORG_REF_NAME)
        )
        return self.bundle_for(root, f"{self.path}:{ref}" if ref else str(self.path))

    def referrers(self, subjects: Collection[str]) -> tuple[Descriptor, ...]:
        """The unnamed ``index.json`` entries whose manifest (or index) has a ``subject``
        among the digests ``subjects``: the artifacts kept about those images, such as
        SBOMs (read each with :meth:`bundle_for`). An entry whose document cannot be read
        is passed over."""
        out: list[Descriptor] = []
        for entry in self.entries():
            if entry.ref_name:
                continue
            try:
                if entry.media_type in MANIFEST_TYPES:
                    data = self.get_blob(entry.digest, entry.size)
                    subject = parse_manifest(data, entry.digest).subject
                elif entry.media_type in INDEX_TYPES:
                    subject = parse_index(self.get_blob(entry.digest, entry.size)).subject
                else:
                    continue
            except FormatError:
                continue
            if subject is not None and subject.digest in subjects:
                out.append(entry)
        return tuple(out)

    def bundle_for(self, root: Descriptor, source: str | None = None) -> ImageBundle:
        """A lazy bundle rooted at ``root`` (which must be stored here)."""
        name = source or f"{self.path}@{root.digest}"
        digests = self.reachable([root], source=name)
        return ImageBundle(root, LayoutBlobs(self, digests), name)

    def reachable(self, roots: Iterable[Descriptor], source: str | None = None) -> set[str]:
        """The digests reachable from ``roots`` (reading indexes and manifests from here).
        A missing or corrupt document is an error; missing optional layers are skipped."""
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            desc = stack.pop()
            if desc.digest in seen:
                continue
            if desc.media_type in OPTIONAL_LAYER_TYPES and not self.has_blob(desc.digest):
                continue
            seen.add(desc.digest)
            where = source or str(self.path)
            if desc.media_type in INDEX_TYPES:
                data = self.get_blob(desc.digest, desc.size)
                stack.extend(parse_index(data, f"{where}: index {desc.digest}").manifests)
            elif desc.media_type in MANIFEST_TYPES:
                data = self.get_blob(desc.digest, desc.size)
                manifest = parse_manifest(data, f"{where}: manifest {desc.digest}")
                stack.extend((manifest.config, *manifest.layers))
            elif not self.has_blob(desc.digest):
                raise FormatError(
                    f"{self.blob_path(desc.digest)}: blob {desc.digest} is missing from the layout"
                )
        return seen

    # -- garbage collection ----------------------------------------------------------------

    def gc(self) -> GcResult:
        """Delete every blob no ``index.json`` entry reaches (and stale temporary files)."""
        with self.locked():
            keep = self.reachable(self.entries())
            removed = 0
            freed = 0
            blobs = self.path / "blobs"
            for digest in sorted(self.blob_digests() - keep):
                algorithm, _, hexpart = digest.partition(":")
                path = blobs / algorithm / hexpart
                try:
                    size = path.stat().st_size
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise AlpenglowError(f"{path}: cannot remove: {exc.strerror}") from None
                removed += 1
                freed += size
            self._remove_stale_temporaries()
            return GcResult(removed, freed)

    def _remove_stale_temporaries(self) -> None:
        now = time.time()
        for directory in (self.path, *(self.path / "blobs").glob("*")):
            if not directory.is_dir():
                continue
            for entry in directory.glob(f"{_TMP_PREFIX}*"):
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > _STALE_TMP_SECONDS:
                        entry.unlink()
