"""Root file systems for containers: unpacked layers and overlay mounts. [edge]

Each image layer is unpacked once into ``RUNTIME/layers/sha256/<hex of its diff_id>``, in the
format overlayfs reads as a lower directory: a whiteout (``.wh.NAME``) becomes a character
device 0/0 named ``NAME``, an opaque-directory marker (``.wh..wh..opq``) becomes the
``trusted.overlay.opaque=y`` attribute of its directory. A layer is unpacked into a
temporary directory beside its final place, checked against its ``diff_id`` (and its blob
against its digest), and only then renamed into place, so a layer directory that exists is
complete. Layers never change once unpacked.

Unpacking refuses hostile members (absolute names, ``..``, a path through a symbolic link,
hard links leaving the layer) and keeps owners, modes, times, extended attributes and
device nodes (it needs root for owners and devices; as another user owners are left as the
user's and devices are refused).

Each container gets an overlay mount at ``containers/<id>/rootfs`` with the image's layers as
lower directories and its own ``upper`` and ``work``; where overlayfs cannot be mounted
(:func:`overlay_supported` finds out once and remembers), the layers are copied into
``rootfs`` instead. :func:`unmount_all` removes every mount below a directory, deepest first,
as ``/proc/self/mountinfo`` lists them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from alpenglow.errors import AlpenglowError, ArchiveError, ContainerError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    import tarfile
    from typing import IO

__all__ = [
    "LayerStore",
    "copy_layers",
    "mount_overlay",
    "mounts_below",
    "overlay_supported",
    "unmount",
    "unmount_all",
    "unpack_layer",
]


def __dir__() -> list[str]:
    return __all__


WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_XATTR = "SCHILY.xattr."
_TMP = ".tmp-"
_CHUNK = 1 << 20
_MAX_MOUNT_DATA = 4000  # the kernel takes one page of mount options


# --------------------------------------------------------------------------------------------
# Unpacking


_DIGEST_LENGTHS = {"sha256": 64, "sha512": 128}


def check_digest(digest: str, source: str) -> str:
    """``digest`` if it is ``sha256:<64 hex>`` or ``sha512:<128 hex>`` (it names files)."""
    algorithm, _, hexpart = digest.partition(":")
    length = _DIGEST_LENGTHS.get(algorithm)
    if length is None or len(hexpart) != length or hexpart.strip("0123456789abcdef"):
        raise ArchiveError(f"{source}: {digest!r} is not a valid digest")
    return digest


class _HashingReader(io.RawIOBase):
    """A readable stream that hashes what passes through it."""

    def __init__(self, raw: IO[bytes], algorithm: str = "sha256") -> None:
        import hashlib

        self._raw = raw
        self.hash = hashlib.new(algorithm)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        self.hash.update(data)
        n = len(data)
        buffer[:n] = data
        return n


def _safe_name(raw: str, source: str) -> str:
    """The member name relative to the layer root ("" for the root itself), or refused."""
    name = raw
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if name in ("", "."):
        return ""
    if name.startswith("/"):
        raise ArchiveError(f"{source}: refusing member {raw!r}: it leaves the image root")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"{source}: refusing member {raw!r}: it leaves the image root")
    if "\0" in name:
        raise ArchiveError(f"{source}: refusing member {raw!r}: NUL in its name")
    return "/".join(parts)


class _Extractor:
    """Writes tar members into ``root`` as an overlay lower directory."""

    def __init__(self, root: Path, source: str) -> None:
        self.root = root
        self.source = source
        self.dirs: dict[str, tarfile.TarInfo] = {}
        self.opaque: set[str] = set()
        self.can_chown = os.geteuid() == 0

    def _parent_fd(self, path: str, raw: str) -> int:
        """An fd of ``path``'s parent directory inside the root, made as needed; refuses to
        go through a symbolic link or a non-directory."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in path.split("/")[:-1]:
                try:
                    st = os.lstat(part, dir_fd=fd)
                except FileNotFoundError:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    st = os.lstat(part, dir_fd=fd)
                if stat.S_ISLNK(st.st_mode):
                    raise ArchiveError(
                        f"{self.source}: refusing member {raw!r}: its parent is a symlink"
                    )
                if not stat.S_ISDIR(st.st_mode):
                    raise ArchiveError(
                        f"{self.source}: refusing member {raw!r}: its parent is not a directory"
                    )
                child = os.open(
                    part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
                )
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def add(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        path = _safe_name(info.name, self.source)
        if not path:
            if info.isdir():
                self.dirs[""] = info
            return
        base = path.rpartition("/")[2]
        dfd = self._parent_fd(path, info.name)
        try:
            if base == OPAQUE:
                self.opaque.add(path.rpartition("/")[0])
                return
            if base.startswith(WHITEOUT + WHITEOUT):
                return  # aufs bookkeeping (.wh..wh.plnk and the like)
            if base.startswith(WHITEOUT):
                name = base[len(WHITEOUT) :]
                self._clear(dfd, name, keep_dir=False)
                os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dfd)
                return
            self._member(tar, info, dfd, base, path)
        except OSError as exc:
            raise ArchiveError(f"{self.source}: {info.name}: {exc.strerror}") from None
        finally:
            os.close(dfd)

    def _clear(self, dfd: int, name: str, keep_dir: bool) -> None:
        """Remove what is at ``name`` (a directory only when ``keep_dir`` is False)."""
        try:
            st = os.lstat(name, dir_fd=dfd)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            import shutil

            shutil.rmtree(name, dir_fd=dfd)
        else:
            os.unlink(name, dir_fd=dfd)

    def _member(
        self, tar: tarfile.TarFile, info: tarfile.TarInfo, dfd: int, name: str, path: str
    ) -> None:
        if info.isdir():
            self._clear(dfd, name, keep_dir=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=dfd)
            self.dirs[path] = info
            self._attributes(info, name, dfd, path)
            return
        self._clear(dfd, name, keep_dir=False)
        if info.isreg():
            fd = os.open(
                name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=dfd,
            )
            with os.fdopen(fd, "wb") as out:
                src = tar.extractfile(info)
                while src is not None:
                    chunk = src.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
        elif info.issym():
            os.symlink(info.linkname, name, dir_fd=dfd)
        elif info.islnk():
            target = _safe_name(info.linkname, self.source)
            if not target:
                raise ArchiveError(f"{self.source}: {info.name}: hard link to the layer root")
            tfd = self._parent_fd(target, info.linkname)
            try:
                tbase = target.rpartition("/")[2]
                st = os.lstat(tbase, dir_fd=tfd)
                if stat.S_ISDIR(st.st_mode):
                    raise ArchiveError(f"{self.source}: {info.name}: hard link to a directory")
                os.link(tbase, name, src_dir_fd=tfd, dst_dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                raise ArchiveError(
                    f"{self.source}: {info.name}: hard link target {info.linkname!r} is not "
                    "in the layer"
                ) from None
            finally:
                os.close(tfd)
            return  # a hard link shares its target's inode and attributes
        elif info.ischr() or info.isblk() or info.isfifo():
            kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK if info.isblk() else stat.S_IFIFO
            device = os.makedev(info.devmajor, info.devminor) if not info.isfifo() else 0
            try:
                os.mknod(name, kind | 0o600, device, dir_fd=dfd)
            except PermissionError:
                raise ArchiveError(
                    f"{self.source}: {info.name}: device nodes need root to be unpacked"
                ) from None
        else:
            raise ArchiveError(f"{self.source}: {info.name}: unsupported tar entry type")
        self._attributes(info, name, dfd, path)

    def _attributes(self, info: tarfile.TarInfo, name: str, dfd: int, path: str) -> None:
        symlink = info.issym()
        if self.can_chown:
            os.chown(name, info.uid, info.gid, dir_fd=dfd, follow_symlinks=False)
        for key, value in info.pax_headers.items():
            if key.startswith(_XATTR):
                attr = key[len(_XATTR) :]
                data = value.encode("utf-8", "surrogateescape")
                try:
                    os.setxattr(
                        f"/proc/self/fd/{dfd}/{name}", attr, data, follow_symlinks=not symlink
                    )
                except OSError as exc:
                    if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                        raise
        if not symlink:
            os.chmod(name, info.mode & 0o7777, dir_fd=dfd)
        if not info.isdir():
            mtime = int(info.mtime)
            os.utime(name, (mtime, mtime), dir_fd=dfd, follow_symlinks=not symlink)

    def finish(self) -> None:
        """Mark opaque directories and set directory times (children change them)."""
        for path in self.opaque:
            target = self.root / path if path else self.root
            if not target.is_dir() or target.is_symlink():
                target.mkdir(parents=True, exist_ok=True)
            os.setxattr(target, OPAQUE_XATTR, b"y")
        for path, info in sorted(self.dirs.items(), key=lambda item: -item[0].count("/")):
            target = self.root / path if path else self.root
            if path == "":
                os.chmod(target, info.mode & 0o7777)
                if self.can_chown:
                    os.chown(target, info.uid, info.gid)
            mtime = int(info.mtime)
            os.utime(target, (mtime, mtime), follow_symlinks=False)


def unpack_layer(
    blob: IO[bytes],
    dest: Path,
    *,
    diff_id: str,
    digest: str = "",
    source: str = "layer",
) -> None:
    """Unpack a layer (tar, gzip-compressed or not) read from ``blob`` into the directory
    ``dest`` (made here; it must not exist) as an overlay lower directory.

    Raises :class:`ArchiveError` for a corrupt or hostile layer, and when the uncompressed
    bytes do not hash to ``diff_id`` (or the blob to ``digest``, when given); ``dest`` is then
    left half-written for the caller to remove.
    """
    import gzip
    import tarfile
    import zlib
    from typing import IO, cast

    check_digest(diff_id, source)
    outer = _HashingReader(blob, (digest or "sha256:").partition(":")[0])
    buffered = io.BufferedReader(outer, _CHUNK)
    head = buffered.peek(2)[:2]
    stream: IO[bytes]
    if head == b"\x1f\x8b":
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))
    elif head[:1] == b"\x28" and buffered.peek(4)[:4] == b"\x28\xb5\x2f\xfd":
        raise ArchiveError(f"{source}: zstd-compressed layers are not supported yet")
    else:
        stream = buffered
    inner = _HashingReader(stream, diff_id.partition(":")[0])
    dest.mkdir(mode=0o755)
    extractor = _Extractor(dest, source)
    try:
        with tarfile.open(fileobj=io.BufferedReader(inner, _CHUNK), mode="r|") as tar:
            for info in tar:
                extractor.add(tar, info)
        # read what is left (tar end blocks, padding) so that the hashes cover everything
        while inner.read(_CHUNK):
            pass
        while buffered.read(_CHUNK):
            pass
    except tarfile.TarError as exc:
        raise ArchiveError(f"{source}: corrupt tar archive: {exc}") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"{source}: corrupt gzip stream: {exc}") from None
    actual = f"{diff_id.partition(':')[0]}:{inner.hash.hexdigest()}"
    if actual != diff_id:
        raise ArchiveError(
            f"{source}: the layer's content hashes to {actual}, its image says {diff_id}"
        )
    if digest:
        blob_digest = f"{digest.partition(':')[0]}:{outer.hash.hexdigest()}"
        if blob_digest != digest:
            raise ArchiveError(f"{source}: blob {digest} is corrupt (it hashes to {blob_digest})")
    extractor.finish()


class LayerStore:
    """Unpacked layers under ``path`` (``RUNTIME/layers``), one directory per diff_id.

    The caller serialises :meth:`ensure` and :meth:`gc` (the container store's lock). A
    service object like :class:`~alpenglow.runtime.containers.ContainerStore` (a plain
    slotted class: no dataclass to generate when a container starts)."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"LayerStore({str(self.path)!r})"

    def dir(self, diff_id: str) -> Path:
        algorithm, _, hexpart = check_digest(diff_id, "diff_id").partition(":")
        return self.path / algorithm / hexpart

    def has(self, diff_id: str) -> bool:
        return self.dir(diff_id).is_dir()

    def ensure(self, diff_id: str, open_blob: Iterable[IO[bytes]], digest: str = "") -> Path:
        """The directory of ``diff_id``, unpacked first from the blob ``open_blob`` yields
        (a one-item iterable, so the blob is opened only when needed) if it is missing."""
        final = self.dir(diff_id)
        if final.is_dir():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f"{_TMP}{final.name}.{os.getpid()}")
        _remove_tree(tmp)
        try:
            for blob in open_blob:
                with blob:
                    unpack_layer(
                        blob, tmp, diff_id=diff_id, digest=digest, source=f"layer {diff_id}"
                    )
                break
            else:
                raise ArchiveError(f"layer {diff_id}: no blob to unpack it from")
            os.rename(tmp, final)
        except BaseException:
            _remove_tree(tmp)
            raise
        return final

    def diff_ids(self) -> list[str]:
        """The diff_ids of every unpacked layer."""
        out = []
        for algorithm in ("sha256", "sha512"):
            with contextlib.suppress(FileNotFoundError):
                for name in os.listdir(self.path / algorithm):
                    if not name.startswith(_TMP):
                        out.append(f"{algorithm}:{name}")
        return sorted(out)

    def gc(self, keep: set[str]) -> list[str]:
        """Remove every unpacked layer not in ``keep`` (and leftovers of interrupted
        unpacks); returns the diff_ids removed."""
        removed = []
        for diff_id in self.diff_ids():
            if diff_id not in keep:
                _remove_tree(self.dir(diff_id))
                removed.append(diff_id)
        for algorithm in ("sha256", "sha512"):
            with contextlib.suppress(FileNotFoundError):
                for name in os.listdir(self.path / algorithm):
                    if name.startswith(_TMP):
                        _remove_tree(self.path / algorithm / name)
        return removed


def _remove_tree(path: Path) -> None:
    """Remove ``path`` whatever it is (a directory with all it holds)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil

        shutil.rmtree(path)
    else:
        path.unlink()


# --------------------------------------------------------------------------------------------
# Mounts


_LIBC: list[ctypes.CDLL] = []


def _libc() -> ctypes.CDLL:
    if not _LIBC:
        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


def _mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    libc = _libc()
    result = libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode())
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def mount_overlay(
    lower: Sequence[Path], upper: Path, work: Path, target: Path, *, volatile: bool = False
) -> None:
    """Mount an overlay of ``lower`` (lowest first) with ``upper`` and ``work`` at ``target``.

    ``volatile``: the upper layer is throwaway (a container removed when it exits), so the
    overlay is mounted with overlayfs' ``volatile`` option: nothing is synced to disk, and
    above all the unmount does not sync the whole upper file system (tens of milliseconds
    on a busy disk). A kernel without the option (before 5.10) gets an ordinary mount. A
    volatile overlay leaves ``work/work/incompat/volatile`` behind, which stops a later
    mount; it is removed first (the upper is never trusted across a host crash anyway: such a
    container is only ever removed).

    A lower list too long for the mount options (one page) is given through short symbolic
    links in ``.lower-NAME`` beside ``target``."""
    if not lower:
        raise ContainerError("an overlay needs at least one lower directory")
    for path in (*lower, upper, work, target):
        if ":" in str(path) or "," in str(path):
            raise ContainerError(f"{path}: overlayfs cannot take a path with ':' or ','")
    top_first = [str(p) for p in reversed(lower)]
    options = f"lowerdir={':'.join(top_first)},upperdir={upper},workdir={work}"
    try:
        if volatile:
            _remove_tree(work / "work" / "incompat" / "volatile")
        if len(options) <= _MAX_MOUNT_DATA:
            _mount_overlay_options(str(target), options, volatile)
            return
        # too long for one page: name the layers by short symbolic links beside the
        # mount point (as Docker's overlay2 does) and mount from that directory
        links = target.parent / f".lower-{target.name}"
        _remove_tree(links)
        links.mkdir()
        for i, layer in enumerate(top_first):
            os.symlink(os.path.abspath(layer), links / str(i))
        options = (
            f"lowerdir={':'.join(str(i) for i in range(len(top_first)))},"
            f"upperdir={os.path.abspath(upper)},workdir={os.path.abspath(work)}"
        )
        if len(options) > _MAX_MOUNT_DATA:
            raise ContainerError(f"{target}: too many layers for one overlay mount ({len(lower)})")
        previous = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.chdir(links)
            _mount_overlay_options(os.path.abspath(target), options, volatile)
        finally:
            os.fchdir(previous)
            os.close(previous)
    except OSError as exc:
        raise ContainerError(f"{target}: cannot mount overlayfs: {exc.strerror}") from None


def _mount_overlay_options(target: str, options: str, volatile: bool) -> None:
    """Mount an overlay with ``options`` (``,volatile`` added when asked and the kernel
    knows it: an older one refuses it with EINVAL, and then gets the plain options)."""
    if volatile:
        try:
            _mount("overlay", target, "overlay", 0, options + ",volatile")
            return
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
    _mount("overlay", target, "overlay", 0, options)


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (``\\040`` for a space)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and len(field[i + 1 : i + 4]) == 3:
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_below(path: Path, mountinfo: str | None = None) -> list[Path]:
    """Mount points at or below ``path`` (as ``/proc/self/mountinfo`` lists them), deepest
    first."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return []
    base = os.path.realpath(path) if os.path.exists(path) else os.path.abspath(path)
    found = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        point = _unescape(fields[4])
        if point == base or point.startswith(base.rstrip("/") + "/"):
            found.append(Path(point))
    found.sort(key=lambda p: -len(p.parts))
    return list(dict.fromkeys(found))


def unmount(target: Path) -> bool:
    """Unmount ``target``; False when it was not mounted. A busy mount is detached."""
    libc = _libc()
    if libc.umount2(str(target).encode(), 0) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    if err == errno.EBUSY and libc.umount2(str(target).encode(), 2) == 0:  # MNT_DETACH
        return True
    err = ctypes.get_errno()
    raise ContainerError(f"{target}: cannot unmount: {os.strerror(err)}")


def unmount_all(path: Path) -> int:
    """Unmount everything at or below ``path``, deepest first; returns how many."""
    count = 0
    for _ in range(3):  # stacked mounts show up again after the top one goes
        points = mounts_below(path)
        if not points:
            break
        for point in points:
            if unmount(point):
                count += 1
    return count


def overlay_supported(probe_dir: Path) -> bool:
    """Whether an overlay can be mounted here: tries one in ``probe_dir`` (made and removed
    here). The caller remembers the answer."""
    probe = probe_dir / f"{_TMP}overlay-probe.{os.getpid()}"
    _remove_tree(probe)
    try:
        for name in ("lower", "upper", "work", "merged"):
            (probe / name).mkdir(parents=True)
        try:
            mount_overlay([probe / "lower"], probe / "upper", probe / "work", probe / "merged")
        except ContainerError:
            return False
        unmount(probe / "merged")
        return True
    finally:
        unmount_all(probe)
        _remove_tree(probe)


def _walk_layer(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every path of a layer directory (relative), parents first."""
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root / rel if rel else root) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = f"{rel}/{entry.name}" if rel else entry.name
                st = entry.stat(follow_symlinks=False)
                yield path, st
                if stat.S_ISDIR(st.st_mode):
                    stack.append(path)


def copy_layers(lower: Sequence[Path], dest: Path) -> None:
    """Merge unpacked layers (lowest first) into ``dest`` as overlayfs would show them: the
    fallback where overlayfs cannot be mounted. Uses ``cp -a`` for the copying (it keeps
    hard links, owners, modes, times and extended attributes)."""
    dest.mkdir(parents=True, exist_ok=True)
    for layer in lower:
        whiteouts = []
        for rel, st in _walk_layer(layer):
            target = dest / rel
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                whiteouts.append(rel)
                _remove_tree(target)
            elif stat.S_ISDIR(st.st_mode):
                try:
                    opaque = os.getxattr(layer / rel, OPAQUE_XATTR, follow_symlinks=False)
                except OSError:
                    opaque = b""
                if opaque == b"y" and target.is_dir() and not target.is_symlink():
                    for child in os.listdir(target):
                        _remove_tree(target / child)
                elif target.exists() and (target.is_symlink() or not target.is_dir()):
                    _remove_tree(target)
            else:
                _remove_tree(target)  # never write through what a lower layer left there
        import subprocess

        done = subprocess.run(
            ["cp", "-a", "--remove-destination", f"{layer}/.", f"{dest}/"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise AlpenglowError(f"{dest}: cannot copy layer {layer.name}: {done.stderr.strip()}")
        for rel in whiteouts:
            with contextlib.suppress(FileNotFoundError):
                (dest / rel).unlink()
