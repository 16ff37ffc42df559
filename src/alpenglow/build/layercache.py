"""A cache of compressed layers, keyed by the uncompressed tar's digest (the ``diff_id``).

Layers are reproducible: the same tree gives the same tar, and the tar fixes the compressed
bytes. Compressing is the slowest step of a build, so a rebuild whose tree did not change
takes the blob from here. An entry is used only if it decompresses to bytes with the
expected digest; anything else (truncated, tampered, unreadable) is ignored and replaced.
Entries are written to a temporary file and renamed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import zlib
from pathlib import Path

from alpenglow.oci.layer import GZIP_LEVEL, Layer, compress

__all__ = ["LayerCache", "cached_layer"]


def __dir__() -> list[str]:
    return __all__


class LayerCache:
    """Compressed layers under ``directory`` (``<hex of diff_id>.tar.gz``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, diff_id: str) -> Path:
        return self.directory / f"{diff_id.removeprefix('sha256:')}.tar.gz"

    def get(self, diff_id: str) -> bytes | None:
        """The cached blob of ``diff_id`` if present and sound."""
        try:
            blob = self._path(diff_id).read_bytes()
            raw = gzip.decompress(blob)
        except (OSError, EOFError, zlib.error):
            return None
        if "sha256:" + hashlib.sha256(raw).hexdigest() != diff_id:
            return None
        return blob

    def put(self, diff_id: str, blob: bytes) -> None:
        """Keep ``blob``; a cache that cannot be written is not an error."""
        target = self._path(diff_id)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(blob)
            os.replace(tmp, target)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()


def cached_layer(raw: bytes, cache: LayerCache | None, level: int = GZIP_LEVEL) -> Layer:
    """The :class:`Layer` of the tar ``raw``, compressed or taken from ``cache``."""
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    blob = cache.get(diff_id) if cache is not None else None
    if blob is None:
        blob = compress(raw, level)
        if cache is not None:
            cache.put(diff_id, blob)
    return Layer(
        blob=blob,
        digest="sha256:" + hashlib.sha256(blob).hexdigest(),
        diff_id=diff_id,
        uncompressed_size=len(raw),
    )
