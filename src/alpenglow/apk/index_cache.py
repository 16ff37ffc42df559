"""A cache of parsed repository indexes, so that an unchanged ``APKINDEX.tar.gz`` is not
verified, decompressed and parsed again on every run.

An entry is keyed by the SHA-256 of the index file's bytes and remembers which key verified
it (its name and the SHA-256 of its bytes) and which signature entries the archive has. It
is used only when the same decision would be taken again: the first signer found in the
current keyring is the key that verified the bytes before and its file is byte-identical (or,
for an index that was accepted with ``--allow-untrusted``, that option is given again and no
signer is trusted now). Anything else, including a missing, truncated or corrupt entry, or
one that another user owns or could have changed, is a miss: the index is loaded the
ordinary way and the entry rewritten.

The entry holds the index as an :class:`~alpenglow.apk.index_table.IndexTable`: each
package's record encoded on its own (decoded only when a solve asks for that package), every
name in the order apk creates them while reading the index with its bucket in apk's name
hash table, and per name the providers and the reverse lists, as integer arrays. Reading an
entry back makes a few byte strings and one string per name, whatever the index's size. The
same packages follow a second time, all together in columns (equal values written once), the
fastest form when a run needs most of them (a discovery walk with nothing known, ``info``,
a build): that part is read only then. Each part ends with its CRC-32: a damaged entry is a
miss, a damaged columns part only means packages are decoded one by one. Entries are written
atomically (temporary file, then ``os.replace``); at most :data:`MAX_ENTRIES` are kept, the
least recently written dropped.

Beside the entries, the same directory keeps what the solver's discovery found out about a
package universe (:class:`alpenglow.apk.solver.Closure`: every name reachable from a root,
in the order the walk numbers them), keyed by :func:`universe_key` of everything the pool
was made from (the index digests, the installed database's bytes, architectures); it obeys
the same rules (owner only, CRC, atomic writes, pruning).

The cache lives in ``$XDG_CACHE_HOME/alpenglow/indexes`` (``~/.cache/...`` by default). It
is not apk's package cache: ``--no-cache`` does not turn it off.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import marshal
import os
import zlib
from collections.abc import Mapping, Sequence

from alpenglow._typing import TYPE_CHECKING
from alpenglow.apk.index import IndexArchive, Package, load_index_archive
from alpenglow.apk.index_table import IndexTable, decode_columns, encode_columns
from alpenglow.apk.signing import Keyring

if TYPE_CHECKING:
    from alpenglow.apk.solver import Closure

__all__ = [
    "FORMAT",
    "MAX_ENTRIES",
    "LoadedIndex",
    "default_directory",
    "load_closures",
    "load_index_cached",
    "save_closures",
    "universe_key",
]


def __dir__() -> list[str]:
    return __all__


FORMAT = 8
"""Version of the entry layout; entries of another version are ignored."""
MAX_ENTRIES = 16
"""Entries kept in the cache directory."""

_MAGIC = "alpenglow-index-cache"
_SUFFIX = f".v{FORMAT}.idx"


class LoadedIndex:
    """An index as loaded through the cache."""

    __slots__ = ("_archive", "description", "digest", "hit", "key_name", "signers", "table")

    def __init__(
        self,
        table: IndexTable,
        description: str,
        key_name: str | None,
        signers: tuple[str, ...],
        *,
        hit: bool,
        digest: str,
        archive: IndexArchive | None = None,
    ) -> None:
        self.table = table
        """The packages and the per-name tables the pool reads."""
        self.description = description
        self.key_name = key_name
        self.signers = signers
        self.hit = hit
        """Whether the entry was read from the cache (nothing was verified or parsed)."""
        self.digest = digest
        """SHA-256 (hex) of the index file's bytes."""
        self._archive = archive

    @property
    def archive(self) -> IndexArchive:
        """The index as :func:`~alpenglow.apk.index.load_index_archive` gives it (every
        package decoded)."""
        if self._archive is None:
            self._archive = IndexArchive(
                self.description, self.table.packages(), self.key_name, self.signers
            )
        return self._archive

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the index mentions, in the order apk creates them while reading it."""
        return self.table.names

    @property
    def buckets(self) -> tuple[int, ...]:
        """For each of :attr:`names`, its bucket in apk's name hash table."""
        return tuple(map(self.table.bucket, range(len(self.table.names))))


def default_directory() -> str | None:
    """``$XDG_CACHE_HOME/alpenglow/indexes``, or ``~/.cache/...``; None without a home."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = os.environ.get("HOME") or os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "alpenglow", "indexes")


def load_index_cached(
    data: bytes,
    keys: Keyring | None,
    *,
    source: str,
    allow_untrusted: bool = False,
    directory: str | os.PathLike[str] | None,
) -> LoadedIndex:
    """:func:`~alpenglow.apk.index.load_index_archive` through the cache in ``directory``
    (None: no cache). Raises what that function raises; cache problems are never errors."""
    keyring = keys if keys is not None else Keyring()
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(directory, digest + _SUFFIX) if directory is not None else None
    if path is not None:
        hit = _read(path, digest, keyring, allow_untrusted)
        if hit is not None:
            return hit
    archive = load_index_archive(data, keyring, source=source, allow_untrusted=allow_untrusted)
    table = IndexTable.build(archive.packages, _creation_names(archive.packages))
    if path is not None:
        key_digest = ""
        if archive.key_name is not None:
            key_digest = hashlib.sha256(keyring.get(archive.key_name) or b"").hexdigest()
        _write(path, _encode(digest, archive, key_digest, table))
    return LoadedIndex(
        table,
        archive.description,
        archive.key_name,
        archive.signers,
        hit=False,
        digest=digest,
        archive=archive,
    )


def _creation_names(packages: Sequence[Package]) -> tuple[str, ...]:
    order: dict[str, None] = {}
    for pkg in packages:
        order[pkg.name] = None
        for deps in (pkg.depends, pkg.provides, pkg.install_if, pkg.replaces):
            for d in deps:
                order[d.name] = None
    return tuple(order)


# -- writing -------------------------------------------------------------------------------


def _encode(digest: str, archive: IndexArchive, key_digest: str, table: IndexTable) -> bytes:
    payload = (
        _MAGIC,
        FORMAT,
        digest,
        archive.key_name,
        key_digest,
        archive.signers,
        archive.description,
        table.dump(),
    )
    # the entry, then every package again in columns (read only when a run needs them
    # all), then the length of that second part
    columns = _sealed(encode_columns(archive.packages))
    return _sealed(marshal.dumps(payload)) + columns + len(columns).to_bytes(8, "little")


def _write(path: str, blob: bytes, kind: str = ".idx", suffix: str = _SUFFIX) -> None:
    import tempfile  # only when writing: it is slow to import

    try:
        parent = os.path.dirname(path)
        os.makedirs(parent, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".tmp-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        _prune(parent, keep=os.path.basename(path), kind=kind, suffix=suffix)
    except OSError:
        pass  # a cache that cannot be written is no cache


def _prune(directory: str, keep: str, kind: str = ".idx", suffix: str = _SUFFIX) -> None:
    entries = []
    for entry in os.scandir(directory):
        if entry.name.endswith(kind) and not entry.name.endswith(suffix):
            if not entry.name.startswith(".tmp-"):
                with contextlib.suppress(OSError):  # another layout version: never read
                    os.unlink(entry.path)
            continue
        if entry.name.endswith(suffix) and entry.name != keep:
            try:
                entries.append((entry.stat().st_mtime, entry.path))
            except OSError:
                continue
    entries.sort(reverse=True)
    for _, old in entries[MAX_ENTRIES - 1 :]:
        with contextlib.suppress(OSError):
            os.unlink(old)


# -- reading -------------------------------------------------------------------------------


def _private(info: os.stat_result) -> bool:
    """Whether this user wrote the file and nobody else can change it (an entry stands in
    for a verified signature, and the cache directory may be shared)."""
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _own_bytes(path: str, start: int = 0, length: int = -1) -> bytes | None:
    """``length`` bytes of the file from ``start`` (-1: to the end), if it is
    :func:`_private`."""
    try:
        with open(path, "rb") as fh:
            if not _private(os.fstat(fh.fileno())):
                return None
            fh.seek(start)
            return fh.read(length)
    except OSError:
        return None


def _read(path: str, digest: str, keys: Keyring, allow_untrusted: bool) -> LoadedIndex | None:
    """The entry at ``path``: its first part now; the second (every package in columns)
    only if the table asks for it. An entry is the sealed first part, the sealed columns
    part, then the columns part's length in 8 bytes."""
    try:
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not _private(info) or info.st_size < 12:
                return None
            fh.seek(info.st_size - 8)
            size = int.from_bytes(fh.read(8), "little")
            length = info.st_size - 8 - size
            if length < 4:
                return None
            fh.seek(0)
            entry = fh.read(length)
    except OSError:
        return None
    if len(entry) != length:
        return None
    try:
        loaded = _decode(entry, digest, keys, allow_untrusted)
    except Exception:  # a damaged entry is a miss, whatever it contains
        return None
    if loaded is not None:
        loaded.table.set_bulk(lambda: _columns(path, length, size))
    return loaded


def _trusted(
    key_name: str | None,
    key_digest: str,
    signers: tuple[str, ...],
    keys: Keyring,
    allow_untrusted: bool,
) -> bool:
    """Whether loading again would accept the bytes with the same verdict."""
    first = next((name for name in signers if name in keys), None)
    if key_name is None:
        return first is None and allow_untrusted
    if first != key_name:
        return False
    key = keys.get(key_name)
    return key is not None and hashlib.sha256(key).hexdigest() == key_digest


def _checked(blob: bytes | memoryview) -> memoryview | None:
    """The entry without its CRC, if the CRC matches: damage anywhere, even inside a
    string, is a miss."""
    body = memoryview(blob)[:-4]
    if len(blob) < 4 or zlib.crc32(body) != int.from_bytes(blob[-4:], "little"):
        return None
    return body


def _sealed(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def _decode(blob: bytes, digest: str, keys: Keyring, allow_untrusted: bool) -> LoadedIndex | None:
    body = _checked(blob)
    if body is None:
        return None
    (
        magic,
        version,
        stored_digest,
        key_name,
        key_digest,
        signers,
        description,
        dumped,
    ) = marshal.loads(body)
    if magic != _MAGIC or version != FORMAT or stored_digest != digest:
        return None
    if not _trusted(key_name, key_digest, signers, keys, allow_untrusted):
        return None
    table = IndexTable.load(dumped)
    return LoadedIndex(table, description, key_name, signers, hit=True, digest=digest)


def _columns(path: str, start: int, length: int) -> tuple[Package, ...] | None:
    """The entry's packages in columns, None if that part is missing or damaged."""
    sealed = _own_bytes(path, start, length)
    body = _checked(sealed) if sealed is not None and len(sealed) == length else None
    if body is None:
        return None
    enabled = gc.isenabled()
    gc.disable()  # thousands of acyclic records: the collector would only slow this down
    try:
        return decode_columns(body)
    except Exception:  # damaged: the packages are decoded one by one instead
        return None
    finally:
        if enabled:
            gc.freeze()  # they live as long as the run: out of the collector's way
            gc.enable()


# -- discovery closures --------------------------------------------------------------------

CLOSURES_FORMAT = 1
"""Version of the closure file layout (and of what a closure holds)."""
_CLOSURES_MAGIC = "alpenglow-closures"
_CLOSURES_KIND = ".closures"
_CLOSURES_SUFFIX = f".v{CLOSURES_FORMAT}{_CLOSURES_KIND}"


def universe_key(parts: Sequence[object]) -> str:
    """A key for the package universe a pool is made of. ``parts`` are plain values
    (str, int, bool, None, tuples of them) naming every input in order: the index digests
    with their URLs, the architectures..., and ``bytes`` for an input given whole (the
    installed database), which stands in by its SHA-256. The version of alpenglow is part
    of the key: how packages are read may change with it."""
    from alpenglow import __version__

    named = tuple(hashlib.sha256(p).hexdigest() if isinstance(p, bytes) else p for p in parts)
    text = repr((__version__, FORMAT, CLOSURES_FORMAT, named))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def load_closures(directory: str | os.PathLike[str] | None, key: str) -> dict[str, Closure]:
    """The discovery closures kept for universe ``key`` (empty when none, or on any
    problem with the file: it is only a cache)."""
    from alpenglow.apk.solver import Closure

    if directory is None:
        return {}
    blob = _own_bytes(os.path.join(directory, key + _CLOSURES_SUFFIX))
    body = _checked(blob) if blob is not None else None
    if body is None:
        return {}
    try:
        magic, version, stored_key, table = marshal.loads(body)
        if magic != _CLOSURES_MAGIC or version != CLOSURES_FORMAT or stored_key != key:
            return {}
        closures = {}
        for root, (names, real) in table.items():
            if not isinstance(root, str) or not isinstance(names, tuple):
                return {}
            if not isinstance(real, bytes) or len(real) != len(names) or root not in names:
                return {}
            if not set(map(type, names)) <= {str}:
                return {}
            closures[root] = Closure(names, real)
        return closures
    except Exception:  # a damaged file is no cache, whatever it contains
        return {}


def save_closures(
    directory: str | os.PathLike[str] | None, key: str, closures: Mapping[str, Closure]
) -> None:
    """Keep ``closures`` for universe ``key`` (atomically; problems are ignored)."""
    if directory is None:
        return
    table = {root: (c.names, c.real) for root, c in closures.items()}
    blob = _sealed(marshal.dumps((_CLOSURES_MAGIC, CLOSURES_FORMAT, key, table)))
    path = os.path.join(directory, key + _CLOSURES_SUFFIX)
    _write(path, blob, kind=_CLOSURES_KIND, suffix=_CLOSURES_SUFFIX)
