"""Image layers: an in-memory tree to a reproducible tar (and gzip), and layers back to a tree.

Writing: entries in :meth:`Tree.walk` order (parents first, names sorted), PAX format,
numeric owners only (empty user and group names), no access or change times, mtimes as the
tree holds them (the builder clamps them first), xattrs as ``SCHILY.xattr.*`` records. The
gzip stream has a zero mtime, no file name and a fixed level, so the same tree always gives the
same bytes, and so the same ``diff_id`` and digest.

A layer on top of a base holds only what differs from the base, with OCI whiteouts
(``.wh.NAME``) for what the upper tree removed.

Reading applies a layer onto a tree: whiteouts and opaque-directory markers
(``.wh..wh..opq``) remove what lower layers had, hostile member names (absolute, ``..``)
are refused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from dataclasses import dataclass

from alpenglow.errors import FormatError
from alpenglow.oci.tree import (
    BLOCK,
    CHAR,
    DIRECTORY,
    FIFO,
    HARDLINK,
    REGULAR,
    SYMLINK,
    Node,
    Tree,
    TreeError,
    normalize,
)

__all__ = [
    "GZIP_LEVEL",
    "Layer",
    "LayerError",
    "apply_layer",
    "compress",
    "diff_trees",
    "layer_tar",
    "make_layer",
]


def __dir__() -> list[str]:
    return __all__


GZIP_LEVEL = 9
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_XATTR = "SCHILY.xattr."
_MAX_LAYER = 8 << 30


class LayerError(FormatError):
    """A layer that cannot be read or applied."""


@dataclass(frozen=True, slots=True)
class Layer:
    """One finished layer: the compressed blob and the digests an image needs."""

    blob: bytes
    """The ``tar+gzip`` bytes (what the manifest's layer descriptor points at)."""
    digest: str
    """``sha256:`` of :attr:`blob`."""
    diff_id: str
    """``sha256:`` of the uncompressed tar (the image config's ``rootfs.diff_ids``)."""
    uncompressed_size: int

    @property
    def size(self) -> int:
        return len(self.blob)


_TYPES = {
    REGULAR: tarfile.REGTYPE,
    DIRECTORY: tarfile.DIRTYPE,
    SYMLINK: tarfile.SYMTYPE,
    HARDLINK: tarfile.LNKTYPE,
    CHAR: tarfile.CHRTYPE,
    BLOCK: tarfile.BLKTYPE,
    FIFO: tarfile.FIFOTYPE,
}
_KINDS = {v: k for k, v in _TYPES.items()}
_KINDS[tarfile.AREGTYPE] = REGULAR
_KINDS[tarfile.CONTTYPE] = REGULAR


def _info(path: str, node: Node) -> tarfile.TarInfo:
    name = path + "/" if node.kind == DIRECTORY else path
    info = tarfile.TarInfo(name)
    info.type = _TYPES[node.kind]
    info.mode = node.mode & 0o7777
    info.uid = node.uid
    info.gid = node.gid
    info.uname = ""
    info.gname = ""
    info.mtime = node.mtime
    if node.kind == REGULAR:
        info.size = len(node.data)
    elif node.kind in (SYMLINK, HARDLINK):
        info.linkname = node.target
    elif node.kind in (CHAR, BLOCK):
        info.devmajor = node.devmajor
        info.devminor = node.devminor
    if node.xattrs:
        info.pax_headers = {
            _XATTR + key: value.decode("utf-8", "surrogateescape") for key, value in node.xattrs
        }
    return info


def layer_tar(tree: Tree) -> bytes:
    """The uncompressed layer tar of ``tree`` (the root directory itself is not an entry).

    A hard link whose target comes later in the walk is written right after its target, as
    a tar reader needs the target first.
    """
    out = io.BytesIO()
    waiting: dict[str, list[tuple[str, Node]]] = {}
    written: set[str] = set()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, node in tree.walk():
            if not path:
                continue
            if node.kind == HARDLINK and node.target not in written:
                waiting.setdefault(node.target, []).append((path, node))
                continue
            tar.addfile(_info(path, node), io.BytesIO(node.data) if node.kind == REGULAR else None)
            written.add(path)
            for link_path, link in waiting.pop(path, ()):
                tar.addfile(_info(link_path, link))
        if waiting:
            missing = sorted(waiting)[0]
            raise LayerError(f"/{missing}: hard link target is not in the tree")
    return out.getvalue()


def compress(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """gzip with a fixed header (no name, zero mtime): the same input, the same bytes."""
    return gzip.compress(data, compresslevel=level, mtime=0)


def make_layer(tree: Tree, *, level: int = GZIP_LEVEL) -> Layer:
    """Tar and compress ``tree`` into a :class:`Layer`."""
    raw = layer_tar(tree)
    blob = compress(raw, level)
    return Layer(
        blob=blob,
        digest="sha256:" + hashlib.sha256(blob).hexdigest(),
        diff_id="sha256:" + hashlib.sha256(raw).hexdigest(),
        uncompressed_size=len(raw),
    )


def diff_trees(lower: Tree, upper: Tree) -> Tree:
    """What a layer over ``lower`` must hold so that the result is ``upper``.

    Changed and new paths are included (with their parent directories, as layers carry
    them); paths of ``lower`` missing from ``upper`` get a whiteout. A directory replaced by a
    non-directory (or the reverse) is whited out and then added anew.
    """
    out = Tree(upper[""])
    forced: set[str] = set()  # lower paths gone or replaced: everything below them is new
    for path, node in lower.walk():
        if not path:
            continue
        parent, _, name = path.rpartition("/")
        if parent in forced:
            forced.add(path)
            continue
        new = upper.get(path)
        if new is None or (new.kind == DIRECTORY) != (node.kind == DIRECTORY):
            forced.add(path)
            _include(out, upper, parent)
            out.add(f"{parent}/{WHITEOUT}{name}" if parent else WHITEOUT + name, Node(REGULAR, 0))
    for path, node in upper.walk():
        if not path:
            continue
        changed = lower.get(path) != node
        if changed or (node.kind == HARDLINK and node.target in out):
            _include(out, upper, path)
    return out


def _include(out: Tree, upper: Tree, path: str) -> None:
    """Copy ``path`` and its missing ancestors from ``upper`` into ``out``."""
    if not path:
        return
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        p = "/".join(parts[:i])
        node = upper[p]
        if i < len(parts):
            if p not in out:
                out.add(p, node)
            continue
        if node.kind == HARDLINK and node.target not in out:
            _include(out, upper, node.target)
        out.add(p, node)


def apply_layer(tree: Tree, data: bytes, *, source: str = "layer") -> None:
    """Apply one layer (tar, optionally gzip-compressed) onto ``tree`` in place.

    Raises :class:`LayerError` naming ``source`` for a corrupt archive or a hostile member;
    ``tree`` may then hold part of the layer, so apply onto a copy when that matters.
    """
    if data[:2] == b"\x1f\x8b":
        try:
            data = _gunzip(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise LayerError(f"{source}: corrupt gzip stream: {exc}") from None
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                _apply_member(tree, tar, info, source)
    except tarfile.TarError as exc:
        raise LayerError(f"{source}: corrupt tar archive: {exc}") from None
    except TreeError as exc:
        raise LayerError(f"{source}: {exc}") from None


def _gunzip(data: bytes) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
        out = fh.read(_MAX_LAYER + 1)
    if len(out) > _MAX_LAYER:
        raise LayerError("layer expands beyond 8 GiB")
    return out


def _apply_member(tree: Tree, tar: tarfile.TarFile, info: tarfile.TarInfo, source: str) -> None:
    raw = info.name
    if raw.startswith("/") or ".." in raw.split("/"):
        raise LayerError(f"{source}: refusing member {raw!r}: it leaves the image root")
    path = normalize(raw)
    if not path:
        return
    parent, _, name = path.rpartition("/")
    if parent and tree.resolve(parent) != parent:
        raise LayerError(f"{source}: refusing member {raw!r}: its parent is a symlink")
    if parent and not tree.is_dir(parent):
        tree.mkdir(parent)
    if name == OPAQUE:
        for child in tree.children(parent):
            tree.remove(f"{parent}/{child}" if parent else child)
        return
    if name.startswith(WHITEOUT):
        victim = f"{parent}/{name[len(WHITEOUT) :]}" if parent else name[len(WHITEOUT) :]
        if victim in tree:
            tree.remove(victim)
        return
    kind = _KINDS.get(info.type)
    if kind is None:
        raise LayerError(f"{source}: {raw}: unsupported tar entry type {info.type!r}")
    xattrs = tuple(
        sorted(
            (k[len(_XATTR) :], v.encode("utf-8", "surrogateescape"))
            for k, v in info.pax_headers.items()
            if k.startswith(_XATTR)
        )
    )
    data = b""
    target = ""
    if kind == REGULAR:
        fh = tar.extractfile(info)
        data = fh.read() if fh is not None else b""
    elif kind == SYMLINK:
        target = info.linkname
    elif kind == HARDLINK:
        target = normalize(info.linkname)
    node = Node(
        kind,
        info.mode & 0o7777,
        info.uid,
        info.gid,
        int(info.mtime),
        data=data,
        target=target,
        devmajor=info.devmajor,
        devminor=info.devminor,
        xattrs=xattrs,
    )
    existing = tree.get(path)
    if existing is not None and (existing.kind == DIRECTORY) != (kind == DIRECTORY):
        tree.remove(path)
    tree.add(path, node)
