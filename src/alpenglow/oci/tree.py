"""A filesystem held in memory: what an image layer holds, built without touching the disk.

Paths are relative, ``/``-separated, without a leading or trailing slash; ``""`` is the root
directory, which always exists. Every non-root path has a directory parent in the tree.
Nothing here follows symlinks implicitly: :meth:`Tree.resolve` does it on request, the way a
process chrooted into the tree would see the path, and it never leaves the tree.

Pure: no I/O. :mod:`alpenglow.oci.layer` turns a tree into a layer tar and back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Final

from alpenglow.errors import AlpenglowError

__all__ = [
    "BLOCK",
    "CHAR",
    "DIRECTORY",
    "FIFO",
    "HARDLINK",
    "KINDS",
    "REGULAR",
    "SYMLINK",
    "Node",
    "Tree",
    "TreeError",
    "normalize",
]


def __dir__() -> list[str]:
    return __all__


REGULAR: Final = "file"
DIRECTORY: Final = "dir"
SYMLINK: Final = "symlink"
HARDLINK: Final = "hardlink"
CHAR: Final = "char"
BLOCK: Final = "block"
FIFO: Final = "fifo"
KINDS: Final = frozenset({REGULAR, DIRECTORY, SYMLINK, HARDLINK, CHAR, BLOCK, FIFO})

_MAX_SYMLINK_HOPS = 40


class TreeError(AlpenglowError):
    """A path that cannot be placed or found in an in-memory tree."""


@dataclass(frozen=True, slots=True)
class Node:
    """One filesystem object.

    ``mode`` holds the permission bits including setuid/setgid/sticky (``0o7777``), never the
    type bits. ``target`` is a symlink's target as stored, or a hard link's target path (a
    tree path). ``data`` is a regular file's content.
    """

    kind: str
    mode: int
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    data: bytes = b""
    target: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown node kind {self.kind!r}")

    @property
    def size(self) -> int:
        return len(self.data) if self.kind == REGULAR else 0


def normalize(path: str) -> str:
    """The tree spelling of ``path``: no leading, trailing or doubled slashes, no ``.``.

    ``..`` components are refused: a path that climbs is never meant for a tree.

    >>> normalize("/usr//bin/./sh/")
    'usr/bin/sh'
    >>> normalize("/")
    ''
    """
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise TreeError(f"{path}: path climbs out of its root with '..'")
        parts.append(part)
    return "/".join(parts)


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


class Tree:
    """A mutable filesystem tree.

    >>> t = Tree()
    >>> t.mkdir("usr/bin")
    >>> t.add("usr/bin/hello", Node(REGULAR, 0o755, data=b"hi"))
    >>> t.symlink("usr/bin", "bin")
    >>> t.resolve("bin/hello")
    'usr/bin/hello'
    >>> [p for p, _ in t.walk()]
    ['', 'bin', 'usr', 'usr/bin', 'usr/bin/hello']
    """

    __slots__ = ("_children", "_nodes")

    def __init__(self, root: Node | None = None) -> None:
        self._nodes: dict[str, Node] = {"": root or Node(DIRECTORY, 0o755)}
        self._children: dict[str, set[str]] = {"": set()}

    # -- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and normalize(path) in self._nodes

    def get(self, path: str) -> Node | None:
        """The node at ``path`` itself (a symlink is not followed), or None."""
        return self._nodes.get(normalize(path))

    def __getitem__(self, path: str) -> Node:
        node = self.get(path)
        if node is None:
            raise TreeError(f"/{normalize(path)}: no such file or directory")
        return node

    def children(self, path: str = "") -> list[str]:
        """The names directly inside directory ``path``, sorted."""
        kids = self._children.get(normalize(path))
        if kids is None:
            raise TreeError(f"/{normalize(path)}: not a directory")
        return sorted(kids)

    def walk(self, path: str = "") -> Iterator[tuple[str, Node]]:
        """``(path, node)`` for ``path`` and everything below it, parents first, names sorted
        by their bytes (a fixed order, so that what is made of a walk is reproducible)."""
        start = normalize(path)
        if start not in self._nodes:
            return
        stack = [start]
        while stack:
            current = stack.pop()
            yield current, self._nodes[current]
            kids = self._children.get(current)
            if kids:
                prefix = current + "/" if current else ""
                names = sorted(kids, key=lambda n: n.encode("utf-8", "surrogateescape"))
                stack.extend(prefix + name for name in reversed(names))

    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """Where ``path`` leads when every symlink on the way is followed inside the tree.

        Absolute link targets start again at the tree's root and ``..`` stops there, as for a
        chrooted process. Components that do not exist are kept as they are.
        """
        pending = [part for part in reversed(path.split("/")) if part not in ("", ".")]
        done: list[str] = []
        hops = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/".join([*done, part])
            node = self._nodes.get(candidate)
            if node is not None and node.kind == SYMLINK and (pending or follow_last):
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    raise TreeError(f"{path}: too many levels of symbolic links")
                target = node.target
                if target.startswith("/"):
                    done = []
                pending.extend(reversed(target.split("/")))
                continue
            done.append(part)
        return "/".join(done)

    def read(self, path: str) -> bytes:
        """The content of the regular file ``path`` leads to (symlinks and hard links are
        followed)."""
        real = self.resolve(path)
        node = self._nodes.get(real)
        if node is not None and node.kind == HARDLINK:
            node = self._nodes.get(node.target)
        if node is None:
            raise TreeError(f"/{normalize(path)}: no such file or directory")
        if node.kind != REGULAR:
            raise TreeError(f"/{normalize(path)}: not a regular file")
        return node.data

    def is_dir(self, path: str) -> bool:
        node = self._nodes.get(self.resolve(path))
        return node is not None and node.kind == DIRECTORY

    def copy(self) -> Tree:
        """An independent tree with the same nodes (nodes are immutable and shared)."""
        other = Tree()
        other._nodes = dict(self._nodes)
        other._children = {k: set(v) for k, v in self._children.items()}
        return other

    # -- writing ----------------------------------------------------------------------------

    def add(self, path: str, node: Node, *, replace_existing: bool = True) -> None:
        """Put ``node`` at ``path``; the parent must be a directory of the tree.

        An existing non-directory is replaced (unless ``replace_existing`` is false). Adding
        a directory over a directory updates its metadata and keeps its contents; anything
        else over a directory, or a directory over a non-directory, is an error.
        """
        path = normalize(path)
        if not path:
            if node.kind != DIRECTORY:
                raise TreeError("/: the root must be a directory")
            self._nodes[""] = node
            return
        parent = _parent(path)
        parent_node = self._nodes.get(parent)
        if parent_node is None or parent_node.kind != DIRECTORY:
            raise TreeError(f"/{path}: parent /{parent} is not a directory")
        old = self._nodes.get(path)
        if old is not None:
            if old.kind == DIRECTORY and node.kind == DIRECTORY:
                self._nodes[path] = node
                return
            if DIRECTORY in (old.kind, node.kind) or not replace_existing:
                raise TreeError(f"/{path}: already exists as a {old.kind}")
        if node.kind == HARDLINK:
            target = self._nodes.get(node.target)
            if target is None or target.kind != REGULAR:
                raise TreeError(f"/{path}: hard link target /{node.target} is not a regular file")
        self._nodes[path] = node
        self._children[parent].add(path.rpartition("/")[2])
        if node.kind == DIRECTORY:
            self._children.setdefault(path, set())

    def mkdir(
        self,
        path: str,
        mode: int = 0o755,
        *,
        uid: int = 0,
        gid: int = 0,
        mtime: int = 0,
    ) -> None:
        """Create directory ``path`` and its missing parents (like ``mkdir -p``); existing
        directories are left as they are."""
        path = normalize(path)
        if not path:
            return
        built = ""
        for part in path.split("/"):
            built = f"{built}/{part}" if built else part
            node = self._nodes.get(built)
            if node is None:
                self.add(built, Node(DIRECTORY, mode, uid, gid, mtime))
            elif node.kind != DIRECTORY:
                raise TreeError(f"/{built}: exists and is not a directory")

    def write(
        self,
        path: str,
        data: bytes,
        mode: int = 0o644,
        *,
        uid: int = 0,
        gid: int = 0,
        mtime: int = 0,
    ) -> None:
        """A regular file at ``path`` (parents created as ``0755`` root directories)."""
        path = normalize(path)
        self.mkdir(_parent(path), mtime=mtime)
        self.add(path, Node(REGULAR, mode, uid, gid, mtime, data=data))

    def symlink(self, target: str, path: str, *, mtime: int = 0) -> None:
        """A symlink at ``path`` pointing at ``target`` (stored as given)."""
        path = normalize(path)
        self.mkdir(_parent(path), mtime=mtime)
        self.add(path, Node(SYMLINK, 0o777, mtime=mtime, target=target))

    def remove(self, path: str) -> None:
        """Remove ``path`` and, for a directory, everything below it. Hard links pointing at
        a removed file become regular files holding its content, as on a disk."""
        path = normalize(path)
        if not path:
            raise TreeError("/: cannot remove the root directory")
        if path not in self._nodes:
            raise TreeError(f"/{path}: no such file or directory")
        doomed = [p for p, _ in self.walk(path)]
        contents = {p: self._nodes[p].data for p in doomed if self._nodes[p].kind == REGULAR}
        for p in reversed(doomed):
            del self._nodes[p]
            self._children.pop(p, None)
        self._children[_parent(path)].discard(path.rpartition("/")[2])
        promoted: dict[str, str] = {}
        for p, node in sorted(self._nodes.items()):
            if node.kind != HARDLINK or node.target not in contents:
                continue
            first = promoted.get(node.target)
            if first is None:  # the first surviving link takes over the content
                promoted[node.target] = p
                self._nodes[p] = replace(node, kind=REGULAR, target="", data=contents[node.target])
            else:
                self._nodes[p] = replace(node, target=first)

    def set_node(self, path: str, node: Node) -> None:
        """Replace the metadata of an existing path with ``node`` of the same kind."""
        path = normalize(path)
        old = self._nodes.get(path)
        if old is None:
            raise TreeError(f"/{path}: no such file or directory")
        if old.kind != node.kind:
            raise TreeError(f"/{path}: is a {old.kind}, not a {node.kind}")
        self._nodes[path] = node

    def clamp_mtimes(self, epoch: int) -> None:
        """Every mtime later than ``epoch`` becomes ``epoch`` (SOURCE_DATE_EPOCH's rule)."""
        for path, node in self._nodes.items():
            if node.mtime > epoch:
                self._nodes[path] = replace(node, mtime=epoch)
