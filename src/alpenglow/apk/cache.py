"""The download cache shared by every command and build (the edge: this module owns disk I/O).

One directory holds the raw bytes fetched from repositories, so that a second command, a
second build, or a second process on the same machine does not fetch them again::

    ROOT/apk/indexes/APKINDEX.<8 hex>.tar.gz        a repository's index as served
                                                    (hex: apk's name, SHA-256 of the URL)
    ROOT/apk/indexes/APKINDEX.<8 hex>.tar.gz.meta   JSON: url, size, sha256, etag,
                                                    last_modified of that download
    ROOT/apk/packages/<name>-<version>.<8 hex>.apk  a package as served (hex: the first
                                                    4 bytes of its identity, as apk names
                                                    its cache files)
    ROOT/apk/packages/<...>.apk.meta                as above
    ROOT/apk/locks/<entry name>.lock                flock()ed while the entry is filled

``ROOT`` is ``--cache-dir`` if given, else ``$XDG_CACHE_HOME/alpenglow``, else
``~/.cache/alpenglow`` (:func:`default_cache_dir`). Only raw downloads live under
``ROOT/apk/``; parsed data, if cached, belongs elsewhere under ``ROOT``.

Safety: an entry is written to a temporary file in its own directory and renamed into place
(``os.replace``), so a reader sees the old bytes or the new, never half of them; a
per-entry lock (``fcntl.flock``) lets one process fill an entry while another waits and then
finds it filled. Reads are content-checked: the size and SHA-256 recorded in the ``.meta``
file must match (and callers check more: an index's signature, a package's identity); an
entry that fails is removed, under its lock, so that it is fetched again. The mtime of an
entry is the time it was last fetched or confirmed current (a ``304``): apk's index age.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path

from alpenglow._record import record
from alpenglow.apk.repository import cache_file_name

__all__ = ["Cache", "EntryMeta", "default_cache_dir", "package_file_name"]


def __dir__() -> list[str]:
    return __all__


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/alpenglow`` (when set and absolute), else ``~/.cache/alpenglow``.

    >>> default_cache_dir({"XDG_CACHE_HOME": "/c", "HOME": "/h"}).as_posix()
    '/c/alpenglow'
    >>> default_cache_dir({"XDG_CACHE_HOME": "rel", "HOME": "/h"}).as_posix()
    '/h/.cache/alpenglow'
    """
    xdg = environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "alpenglow"
    home = environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".cache" / "alpenglow"


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~@-]*\Z")


def package_file_name(name: str, version: str, identity: str) -> str:
    """apk's cache name ``NAME-VERSION.<8 hex>.apk`` (hex of the identity's first 4 bytes).

    >>> package_file_name("musl", "1.2.3-r0", "Q1" + "A" * 27 + "=")
    'musl-1.2.3-r0.00000000.apk'
    """
    raw = b""
    if identity.startswith("Q1"):
        try:
            raw = base64.b64decode(identity[2:], validate=True)
        except (binascii.Error, ValueError):
            raw = b""
    digest = raw[:4].hex() if len(raw) >= 4 else hashlib.sha256(identity.encode()).hexdigest()[:8]
    stem = f"{name}-{version}"
    if not _SAFE_NAME.match(stem) or len(stem) > 200:
        stem = "pkg-" + hashlib.sha256(stem.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{stem}.{digest}.apk"


@record
class EntryMeta:
    """What is recorded beside an entry: where it came from and how to recognise it."""

    url: str
    size: int
    sha256: str
    etag: str | None = None
    last_modified: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> EntryMeta | None:
        try:
            raw = json.loads(data)
            meta = cls(
                url=str(raw["url"]),
                size=int(raw["size"]),
                sha256=str(raw["sha256"]),
                etag=None if raw.get("etag") is None else str(raw["etag"]),
                last_modified=(
                    None if raw.get("last_modified") is None else str(raw["last_modified"])
                ),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return meta

    def matches(self, data: bytes) -> bool:
        return len(data) == self.size and hashlib.sha256(data).hexdigest() == self.sha256


def _meta_path(entry: Path) -> Path:
    return entry.with_name(entry.name + ".meta")


class Cache:
    """The cache at ``root`` (created on first write)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.apk = self.root / "apk"

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    # -- names ------------------------------------------------------------------------------

    def index_entry(self, url: str) -> Path:
        """Where the index fetched from ``url`` is kept."""
        return self.apk / "indexes" / cache_file_name(url)

    def package_entry(self, name: str, version: str, identity: str) -> Path:
        """Where the package with this identity is kept."""
        return self.apk / "packages" / package_file_name(name, version, identity)

    # -- locking ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, entry: Path) -> Iterator[None]:
        """Hold the entry's lock (exclusive, blocking) for the ``with`` body. Without
        write access to the cache there is nothing to lock and the body runs unlocked."""
        locks = self.apk / "locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
            fd = os.open(locks / f"{entry.name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            # A cache we cannot write to cannot be written by us either: read it unlocked.
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # -- reading ----------------------------------------------------------------------------

    def meta(self, entry: Path) -> EntryMeta | None:
        """The entry's recorded metadata, or None."""
        try:
            return EntryMeta.from_json(_meta_path(entry).read_bytes())
        except OSError:
            return None

    def age(self, entry: Path, now: float | None = None) -> float | None:
        """Seconds since the entry was fetched or confirmed, or None if there is none."""
        try:
            mtime = entry.stat().st_mtime
        except OSError:
            return None
        return (time.time() if now is None else now) - mtime

    def _read_pair(self, entry: Path) -> tuple[bytes, EntryMeta | None] | None:
        try:
            data = entry.read_bytes()
        except OSError:
            return None
        return data, self.meta(entry)

    def read(self, entry: Path) -> bytes | None:
        """The entry's bytes if present and matching its recorded size and SHA-256.

        A mismatch is re-checked under the entry's lock (a writer may have been between its
        two renames); if it persists, the entry is removed and None returned.
        """
        pair = self._read_pair(entry)
        if pair is None:
            return None
        data, meta = pair
        if meta is not None and meta.matches(data):
            return data
        with self.locked(entry):
            pair = self._read_pair(entry)
            if pair is None:
                return None
            data, meta = pair
            if meta is not None and meta.matches(data):
                return data
            self._remove(entry)
        return None

    def discard(self, entry: Path, seen: bytes | None = None) -> None:
        """Remove an entry the caller found bad (only if it still holds ``seen``, when given)."""
        with self.locked(entry):
            if seen is not None:
                pair = self._read_pair(entry)
                if pair is None or pair[0] != seen:
                    return
            self._remove(entry)

    def _remove(self, entry: Path) -> None:
        for path in (entry, _meta_path(entry)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    # -- writing ----------------------------------------------------------------------------

    def store(
        self,
        entry: Path,
        data: bytes,
        *,
        url: str,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> bool:
        """Put ``data`` in place atomically (call with the entry's lock held when racing
        writers matter). Returns False if the cache cannot be written (the caller still has
        the bytes; the cache is an optimisation)."""
        meta = EntryMeta(url, len(data), hashlib.sha256(data).hexdigest(), etag, last_modified)
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            self._write(_meta_path(entry), meta.to_json())
            self._write(entry, data)
        except OSError:
            return False
        return True

    def touch(
        self, entry: Path, *, etag: str | None = None, last_modified: str | None = None
    ) -> None:
        """Mark the entry current (a ``304``): reset its age, refresh validators if given."""
        with contextlib.suppress(OSError):
            os.utime(entry)
            if etag or last_modified:
                meta = self.meta(entry)
                if meta is not None:
                    new = EntryMeta(
                        meta.url,
                        meta.size,
                        meta.sha256,
                        etag or meta.etag,
                        last_modified or meta.last_modified,
                    )
                    self._write(_meta_path(entry), new.to_json())

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
