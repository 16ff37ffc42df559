"""A configuration's ``paths`` (apko's path mutations) and ``files`` (local files copied in),
applied to an image tree.

Paths inside the image are followed through the tree's own symlinks, as a process chrooted
into the image would follow them (``/bin/x`` lands in ``/usr/bin/x`` when ``/bin`` is a link
to ``usr/bin``); the last component is followed where the system call would follow it
(``mkdir -p``, creating or ``chmod``-ing a file) and not where it would not (making a link).

``paths`` (in order):

- ``directory``: ``mkdir -p`` (new parents ``0755`` root), then the permissions and owner;
  with ``recursive``, the permissions and owner of everything below as well (apko applies
  the same bits to files and directories).
- ``empty-file``: creates or truncates the file.
- ``symlink``: a link at ``path`` to ``source`` (replacing a file or link there).
- ``hardlink``: a hard link at ``path`` to the regular file ``source``; the permissions and
  owner apply to the shared file, as ``chmod`` on either name would.
- ``permissions``: ``chmod``/``chown`` of an existing path (and, with ``recursive``, of
  everything below it).

Unset owner or permissions leave an existing entry's value; new entries get root and the
type's default mode. Symlinks keep their ``0777``. ``files`` are read with ``os.walk``:
regular files, directories and symlinks (kept as symlinks) are copied, owned by the entry's
uid/gid; anything else (devices, fifos, sockets) is refused.

Errors are :class:`~alpenglow.build.config.ConfigError` led by the entry's place in the
configuration (``apko.yaml:12: paths[0]: ...``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from alpenglow.build.config import ConfigError, FileSpec, PathSpec
from alpenglow.oci import tree as t
from alpenglow.oci.tree import Node, Tree, TreeError, normalize

__all__ = ["apply_files", "apply_paths"]


def __dir__() -> list[str]:
    return __all__


# The path types of apko's path mutations.
DIRECTORY_TYPE = "directory"
EMPTY_FILE = "empty-file"
HARDLINK = "hardlink"
SYMLINK = "symlink"
PERMISSIONS = "permissions"


def _label(spec: PathSpec | FileSpec, fallback: str) -> str:
    return spec.where or fallback


def _split(path: str) -> tuple[str, str]:
    parent, _, name = normalize(path).rpartition("/")
    return parent, name


def _placed(tree: Tree, path: str) -> str:
    """Where a new entry named ``path`` goes: the parent followed through symlinks, the last
    component not."""
    parent, name = _split(path)
    real_parent = tree.resolve(parent) if parent else ""
    return f"{real_parent}/{name}" if real_parent else name


def _parents(tree: Tree, real: str, mtime: int) -> None:
    parent = real.rpartition("/")[0]
    if parent:
        tree.mkdir(parent, 0o755, mtime=mtime)


def _chmod(node: Node, mode: int | None, uid: int | None, gid: int | None) -> Node:
    return replace(
        node,
        mode=node.mode if mode is None or node.kind == t.SYMLINK else mode,
        uid=node.uid if uid is None else uid,
        gid=node.gid if gid is None else gid,
    )


def _change(tree: Tree, real: str, spec: PathSpec, *, below: bool) -> None:
    """Set ``spec``'s permissions and owner on ``real`` (a hard link's file as well) and,
    with ``below``, on everything under it."""
    targets = [p for p, _ in tree.walk(real)] if below else [real]
    for path in targets:
        node = tree[path]
        tree.set_node(path, _chmod(node, spec.permissions, spec.uid, spec.gid))
        if node.kind == t.HARDLINK:
            target = tree[node.target]
            tree.set_node(node.target, _chmod(target, spec.permissions, spec.uid, spec.gid))


def apply_paths(tree: Tree, paths: Sequence[PathSpec], *, mtime: int) -> None:
    """Apply ``paths`` to ``tree`` in order; new entries get ``mtime``."""
    for i, spec in enumerate(paths):
        label = _label(spec, f"paths[{i}]")
        try:
            _apply_path(tree, spec, label, mtime)
        except TreeError as err:
            raise ConfigError(f"{label}: {spec.path}: {err}") from None


def _apply_path(tree: Tree, spec: PathSpec, label: str, mtime: int) -> None:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{label}: {spec.path}: {problem}")

    if spec.type == DIRECTORY_TYPE:
        real = tree.resolve(spec.path)
        node = tree.get(real)
        if node is None:
            _parents(tree, real, mtime)
            mode = spec.permissions if spec.permissions is not None else 0o755
            tree.add(real, Node(t.DIRECTORY, mode, spec.uid or 0, spec.gid or 0, mtime))
        elif node.kind != t.DIRECTORY:
            raise fail(f"exists and is a {node.kind}, not a directory")
        _change(tree, real, spec, below=spec.recursive)
    elif spec.type == EMPTY_FILE:
        real = tree.resolve(spec.path)
        node = tree.get(real)
        if node is not None and node.kind == t.DIRECTORY:
            raise fail("exists and is a directory")
        if node is not None and node.kind == t.HARDLINK:
            node = tree.get(node.target)
        _parents(tree, real, mtime)
        if node is None or node.kind != t.REGULAR:
            node = Node(t.REGULAR, 0o644)
        empty = replace(node, data=b"", mtime=mtime)
        tree.add(real, _chmod(empty, spec.permissions, spec.uid, spec.gid))
    elif spec.type == SYMLINK:
        real = _placed(tree, spec.path)
        node = tree.get(real)
        if node is not None and node.kind == t.DIRECTORY:
            raise fail("exists and is a directory")
        if not real:
            raise fail("cannot replace the root directory")
        _parents(tree, real, mtime)
        if node is not None:
            tree.remove(real)
        link = Node(t.SYMLINK, 0o777, spec.uid or 0, spec.gid or 0, mtime, target=spec.source or "")
        tree.add(real, link)
    elif spec.type == HARDLINK:
        source = tree.resolve(spec.source or "")
        target = tree.get(source)
        if target is not None and target.kind == t.HARDLINK:
            source = target.target
            target = tree.get(source)
        if target is None:
            raise fail(f"the hard link's source {spec.source} does not exist")
        if target.kind != t.REGULAR:
            raise fail(f"the hard link's source {spec.source} is a {target.kind}, not a file")
        real = _placed(tree, spec.path)
        if real == source:
            raise fail(f"is the hard link's source {spec.source} itself")
        node = tree.get(real)
        if node is not None and node.kind == t.DIRECTORY:
            raise fail("exists and is a directory")
        _parents(tree, real, mtime)
        if node is not None:
            tree.remove(real)
            target = tree[source]  # removing may have handed the content to another link
        tree.add(real, Node(t.HARDLINK, target.mode, target.uid, target.gid, mtime, target=source))
        _change(tree, real, spec, below=False)
    else:
        assert spec.type == PERMISSIONS, spec.type
        real = tree.resolve(spec.path)
        if tree.get(real) is None:
            raise fail("does not exist")
        _change(tree, real, spec, below=spec.recursive)


# -- files -----------------------------------------------------------------------------------


def apply_files(tree: Tree, files: Sequence[FileSpec], *, mtime: int) -> None:
    """Copy each local file or directory of ``files`` into ``tree``, in order.

    A file goes to ``destination`` (or into it, when it ends with ``/``); a directory's
    contents go into ``destination`` (created when missing), like ``COPY dir /dest``.
    Directories that exist in the tree keep their metadata; files and links replace what is
    there.
    """
    for i, spec in enumerate(files):
        label = _label(spec, f"files[{i}]")
        try:
            _copy(tree, spec, label, mtime)
        except TreeError as err:
            raise ConfigError(f"{label}: {spec.destination}: {err}") from None


def _local_error(label: str, path: Path | str, err: OSError) -> ConfigError:
    reason = err.strerror or str(err)
    return ConfigError(f"{label}: {path}: {reason}")


def _copy(tree: Tree, spec: FileSpec, label: str, mtime: int) -> None:
    try:
        st = os.stat(spec.source)
    except OSError as err:
        raise _local_error(label, spec.source, err) from None
    if stat.S_ISREG(st.st_mode):
        destination = spec.destination
        if destination.endswith("/"):
            destination += spec.source.name
        real = _placed(tree, destination)
        node = tree.get(real)
        if node is not None and node.kind == t.DIRECTORY:
            raise ConfigError(
                f"{label}: {spec.destination} is a directory in the image; "
                "end the destination with / to copy the file into it"
            )
        _parents(tree, real, mtime)
        _put_file(tree, real, spec.source, st, spec, label, mtime)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{label}: {spec.source}: {_kind_name(st.st_mode)} cannot be copied")
    top = _put_dir(tree, tree.resolve(spec.destination), st, spec, mtime)
    real_dirs = {str(spec.source): top}

    def walk_error(err: OSError) -> None:
        raise _local_error(label, err.filename or spec.source, err)

    for dirpath, dirnames, filenames in os.walk(spec.source, onerror=walk_error):
        dirnames.sort()
        here = real_dirs[dirpath]
        for name in sorted([*dirnames, *filenames]):
            local = os.path.join(dirpath, name)
            try:
                st = os.lstat(local)
            except OSError as err:
                raise _local_error(label, local, err) from None
            inside = f"{here}/{name}" if here else name
            if stat.S_ISDIR(st.st_mode):
                real_dirs[local] = _put_dir(tree, tree.resolve(inside), st, spec, mtime)
            elif stat.S_ISLNK(st.st_mode):
                _put_link(tree, inside, local, spec, label, mtime)
            elif stat.S_ISREG(st.st_mode):
                _put_file(tree, inside, Path(local), st, spec, label, mtime)
            else:
                raise ConfigError(f"{label}: {local}: {_kind_name(st.st_mode)} cannot be copied")


def _kind_name(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _put_dir(tree: Tree, real: str, st: os.stat_result, spec: FileSpec, mtime: int) -> str:
    node = tree.get(real)
    if node is not None:
        if node.kind != t.DIRECTORY:
            raise TreeError(f"/{real}: exists and is a {node.kind}, not a directory")
        return real
    _parents(tree, real, mtime)
    tree.add(real, Node(t.DIRECTORY, stat.S_IMODE(st.st_mode) & 0o777, spec.uid, spec.gid, mtime))
    return real


def _replaceable(tree: Tree, real: str, label: str, local: Path | str) -> None:
    node = tree.get(real)
    if node is not None and node.kind == t.DIRECTORY:
        raise ConfigError(f"{label}: {local}: /{real} is a directory in the image")
    if node is not None:
        tree.remove(real)


def _put_file(
    tree: Tree,
    real: str,
    local: Path,
    st: os.stat_result,
    spec: FileSpec,
    label: str,
    mtime: int,
) -> None:
    try:
        data = local.read_bytes()
    except OSError as err:
        raise _local_error(label, local, err) from None
    mode = spec.mode if spec.mode is not None else stat.S_IMODE(st.st_mode) & 0o777
    _replaceable(tree, real, label, local)
    tree.add(real, Node(t.REGULAR, mode, spec.uid, spec.gid, mtime, data=data))


def _put_link(tree: Tree, real: str, local: str, spec: FileSpec, label: str, mtime: int) -> None:
    try:
        target = os.readlink(local)
    except OSError as err:
        raise _local_error(label, local, err) from None
    _replaceable(tree, real, label, local)
    tree.add(real, Node(t.SYMLINK, 0o777, spec.uid, spec.gid, mtime, target=target))
