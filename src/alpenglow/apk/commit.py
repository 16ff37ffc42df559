"""Applying a change set to a root: plan, stage, commit (apk's ``apk_solver_commit_changeset``
and ``apk_db_install_pkg``, made atomic).

1. **Stage.** Every new package is fetched through a :class:`PackageSource`, verified against
   its index identity (``C:``), its ``datahash`` and each file's SHA-1, checked for hostile
   entries (absolute paths, ``..``, control characters, an entry below a symlink or a file of
   the same package, hard links to nothing, device nodes or setuid/setgid files from an
   untrusted package) and written into a staging directory inside the root
   (``ROOT/.alpenglow-stage-*``, so that the final moves are renames on one file system).
   File ownership is decided as apk decides it (same name, ``replaces`` with
   ``replaces_priority``, same origin; otherwise "trying to overwrite X owned by Y.").
   The new ``installed``, ``triggers``, ``scripts.tar[.gz]``, ``world`` and ``arch`` files are
   written into the stage too. Nothing in the root has changed yet; any failure here removes
   the stage and raises.
2. **Commit.** The planned operations run in apk's order: directories are created, files are
   renamed into place (what they replace is moved into the stage first), files of removed
   packages are moved into the stage, emptied directories are removed, and the database files
   are renamed in last. Every step records how to undo it; on any exception (including
   ``KeyboardInterrupt`` and ``ENOSPC``) the steps are undone in reverse and the root is as it
   was. Only then is the stage deleted.

Paths in the root are resolved the way a process chrooted into the root would see them
(:func:`resolve_in_root`): symlinks already in the root are followed, but an absolute target
or ``..`` never leaves the root.

The decisions (checks, ownership, the operations and the new database) are made by
:func:`plan_commit`, which touches the root only through callables; :func:`commit` applies
its plan to a directory, :mod:`alpenglow.build.install` to an in-memory tree.

Scripts are not run by default (like apko); the effects images need are produced directly
(:mod:`alpenglow.apk.scripts`: busybox applet links). With ``run_scripts`` they run chrooted
after the files are in place.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from alpenglow._record import field, record, replace
from alpenglow.apk.archive import (
    DIRECTORY,
    FILE_TYPES,
    HARDLINK,
    SYMLINK,
    TarEntry,
    unsafe_path_reason,
)
from alpenglow.apk.database import (
    InstalledDir,
    InstalledFile,
    InstalledPackage,
    ScriptRecord,
    format_installed,
    format_scripts,
    format_triggers,
    format_world,
    parse_installed,
    parse_scripts,
    parse_triggers,
)
from alpenglow.apk.index import Package
from alpenglow.apk.package import CHECKSUM_KEY, SCRIPT_TYPES, ApkFile, read_package
from alpenglow.apk.protected import Rule, is_protected, rules_from_files
from alpenglow.errors import CommitError, DatabaseError, PackageError

if TYPE_CHECKING:
    from alpenglow.apk.dependency import Dependency
    from alpenglow.apk.repository import Repository
    from alpenglow.apk.signing import Keyring
    from alpenglow.apk.solver import Candidate

__all__ = [
    "DB_DIR",
    "STAGE_PREFIX",
    "CommitOptions",
    "CommitResult",
    "DatabaseState",
    "EntryWriter",
    "Ids",
    "LocalPackageSource",
    "Operation",
    "PackageSource",
    "Plan",
    "StagedFile",
    "StagedPackage",
    "Step",
    "check_entries",
    "commit",
    "database_files",
    "load_database",
    "package_file_name",
    "plan_commit",
    "read_database",
    "resolve_in_root",
    "stage_package",
]


def __dir__() -> list[str]:
    return __all__


DB_DIR = "lib/apk/db"
STAGE_PREFIX = ".alpenglow-stage-"
_DEFAULT_DIR_ACL = "0:0:755"
_DEFAULT_FILE_ACL = "0:0:644"
_MAX_SYMLINK_HOPS = 40


# --------------------------------------------------------------------------------------------
# where package bytes come from


class PackageSource(Protocol):
    """Gives the bytes of a package file. Implementations: :class:`LocalPackageSource`
    (plain paths, ``file:`` and ``test:``); the HTTP one with the shared cache lives in
    :mod:`alpenglow.apk.fetch`."""

    def fetch(self, candidate: Candidate, repository: Repository) -> bytes:
        """The ``.apk`` bytes; raise an :class:`AlpenglowError` naming what failed."""
        ...


def package_file_name(package: Package) -> str:
    """``NAME-VERSION.apk``, the file name on a mirror."""
    return f"{package.name}-{package.version}.apk"


class LocalPackageSource:
    """Packages of local repositories: ``NAME-VERSION.apk`` beside the repository's index
    (``BASE/ARCH/`` for an ordinary repository, the index's own directory for an index-file
    URL)."""

    def fetch(self, candidate: Candidate, repository: Repository) -> bytes:
        from alpenglow.apk.repository import index_location

        local = index_location(repository.url)
        if local is None:
            raise CommitError(
                f"{candidate}: {repository.url}: Protocol not supported",
                hint="packages from http(s) repositories need the HTTP package source",
            )
        path = os.path.join(os.path.dirname(local), package_file_name(candidate.package))
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise CommitError(f"{candidate}: {path}: {reason}") from None


# --------------------------------------------------------------------------------------------
# the database of a root


@record
class DatabaseState:
    """What ``lib/apk/db`` of a root holds: installed packages, their scripts and triggers."""

    installed: tuple[InstalledPackage, ...] = ()
    scripts: tuple[ScriptRecord, ...] = ()
    triggers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scripts_file: str = "scripts.tar.gz"
    """``scripts.tar`` when the root has one (apk keeps using it), else ``scripts.tar.gz``."""


def load_database(root: Path | str) -> DatabaseState:
    """Read ``ROOT/lib/apk/db`` (missing files count as empty). Raises :class:`DatabaseError`."""
    db = Path(root) / DB_DIR
    return read_database(lambda name: _read_optional(db / name), str(db))


def read_database(read: Callable[[str], bytes | None], where: str = DB_DIR) -> DatabaseState:
    """The database from its files: ``read(name)`` gives the bytes of ``installed``,
    ``scripts.tar``, ``scripts.tar.gz`` or ``triggers`` (None when missing); ``where``
    names the directory in messages. Raises :class:`DatabaseError`."""
    installed: list[InstalledPackage] = []
    data = read("installed")
    if data is not None:
        installed = parse_installed(data, source=f"{where}/installed")
    scripts_file = "scripts.tar.gz"
    scripts: list[ScriptRecord] = []
    for name in ("scripts.tar", "scripts.tar.gz"):
        data = read(name)
        if data is not None:
            scripts_file = name
            scripts = parse_scripts(data, source=f"{where}/{name}")
            break
    triggers = {}
    data = read("triggers")
    if data is not None:
        triggers = parse_triggers(data, source=f"{where}/triggers")
    return DatabaseState(tuple(installed), tuple(scripts), triggers, scripts_file)


def _read_optional(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except OSError as exc:
        raise DatabaseError(f"{path}: {os.strerror(exc.errno or 0)}") from None


# --------------------------------------------------------------------------------------------
# inputs and outputs


@record
class Step:
    """One change of the change set, in apk's order.

    ``old`` is the installed package (None for a new install), ``new`` the candidate to install
    (None for a removal; the same candidate as ``old`` for a reinstall or a pinning update).
    ``repository`` is where ``new``'s file comes from (None: nothing to fetch, e.g. a virtual
    package). ``tag`` is the repository tag name for ``s:`` ("" for none).
    """

    old: Package | None
    new: Candidate | None
    repository: Repository | None = None
    reinstall: bool = False
    tag: str = ""


@record
class CommitOptions:
    """How to commit."""

    world: tuple[Dependency, ...] = ()
    arches: tuple[str, ...] = ()
    """Written to ``etc/apk/arch`` when ``write_arch`` (or when the root has no arch file)."""
    write_arch: bool = False
    initdb: bool = False
    force_overwrite: bool = False
    allow_untrusted: bool = False
    """Packages were accepted without a trusted signature chain: no device nodes, no
    setuid/setgid files."""
    keys: Keyring | None = None
    chown: bool = True
    busybox_links: bool = True
    run_scripts: bool = False
    create_cache_dir: bool = True
    """Create ``var/cache/apk`` as apk does when ``etc/apk/cache`` is absent."""
    clean_protected: bool = False
    """Never write ``.apk-new`` files: keep locally changed configuration as it is."""


@record
class CommitResult:
    """What the root holds after a successful commit, and apk's warnings."""

    installed: tuple[InstalledPackage, ...]
    warnings: tuple[str, ...] = ()
    script_errors: tuple[str, ...] = ()
    """apk's error texts of scripts that failed (``--scripts`` only); the packages are
    flagged ``f:s`` in the database."""


# --------------------------------------------------------------------------------------------
# resolving paths inside the root


def resolve_in_root(root: str, relative: str) -> str:
    """The real path of ``relative`` as a process chrooted into ``root`` sees it.

    Symlinks in the root are followed, absolute link targets start again at ``root`` and
    ``..`` stops at ``root``, so the result always lies under ``root``. Components that do not
    exist are kept as they are. Raises :class:`CommitError` on a symlink loop.
    """
    pending = [p for p in relative.split("/") if p and p != "."]
    pending.reverse()
    done: list[str] = []
    hops = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            done.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        hops += 1
        if hops > _MAX_SYMLINK_HOPS:
            raise CommitError(f"{relative}: too many levels of symbolic links in the root")
        target = os.readlink(candidate)
        if target.startswith("/"):
            done = []
        extra = [p for p in target.split("/") if p and p != "."]
        pending.extend(reversed(extra))
    return os.path.join(root, *done)


# --------------------------------------------------------------------------------------------
# user and group names


class Ids:
    """``uname``/``gname`` to ids through the root's ``etc/passwd`` and ``etc/group``
    (numeric fallback), updated when a package of the transaction ships those files."""

    def __init__(self, passwd: bytes | None = None, group: bytes | None = None) -> None:
        self.users: dict[str, int] = {}
        self.groups: dict[str, int] = {}
        if passwd is not None:
            _parse_ids(passwd, self.users)
        if group is not None:
            _parse_ids(group, self.groups)

    @classmethod
    def from_root(cls, root: str) -> Ids:
        """The tables of the root directory ``root`` (missing files: numeric ids only)."""
        found: list[bytes | None] = []
        for rel in ("etc/passwd", "etc/group"):
            try:
                with open(resolve_in_root(root, rel), "rb") as fh:
                    found.append(fh.read())
            except OSError:
                found.append(None)
        return cls(*found)

    def update(self, rel: str, data: bytes) -> None:
        if rel == "etc/passwd":
            self.users = {}
            _parse_ids(data, self.users)
        elif rel == "etc/group":
            self.groups = {}
            _parse_ids(data, self.groups)

    def uid(self, name: str, fallback: int) -> int:
        return self.users.get(name, fallback) if name else fallback

    def gid(self, name: str, fallback: int) -> int:
        return self.groups.get(name, fallback) if name else fallback


def _parse_ids(data: bytes, table: dict[str, int]) -> None:
    for line in data.decode("utf-8", "replace").split("\n"):
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] and fields[2].isdigit() and fields[0] not in table:
            table[fields[0]] = int(fields[2])


# --------------------------------------------------------------------------------------------
# ownership rules (apk_pkg_replaces_file / apk_pkg_replaces_dir)


def _materialized(dep: Dependency, pkg: Package) -> bool:
    return not dep.conflict and dep.name == pkg.name and dep.matches(pkg.version)


_YES, _NO, _CONFLICT = 0, 1, 2


def _replaces_file(a: Package, b: Package, removing: set[str]) -> int:
    """May ``b`` (being installed) take a file that ``a`` owns?"""
    if a.name == b.name:
        return _YES
    if a.name in removing:
        return _YES
    if b.name in removing:
        return _NO
    a_prio = next((a.replaces_priority for d in a.replaces if _materialized(d, b)), -1)
    b_prio = next((b.replaces_priority for d in b.replaces if _materialized(d, a)), -1)
    if a_prio > b_prio:
        return _NO
    if b_prio >= 0:
        return _YES
    if a.origin and a.origin == b.origin:
        return _YES
    return _CONFLICT


def _replaces_dir(a: Package, b: Package, removing: set[str]) -> bool:
    """Does ``b``'s directory mode win over ``a``'s (the current owner)?"""
    if a.name == b.name or a.name in removing:
        return True
    if b.name in removing:
        return False
    if a.replaces_priority != b.replaces_priority:
        return a.replaces_priority < b.replaces_priority
    if a.origin and a.origin == b.origin:
        if a.origin == a.name:
            return False
        if b.origin == b.name:
            return True
    return a.name > b.name


# --------------------------------------------------------------------------------------------
# staging a package


@record(frozen=False)
class StagedFile:
    """A package file ready to be put in place."""

    path: str  # relative to the root
    staged: object  # what the writer made: a path in the stage (disk), a node (memory)...
    acl: str
    digest: str
    kind: str


@record(frozen=False)
class StagedPackage:
    """A package's directories and files, checked and staged, in archive order."""

    package: Package
    dirs: list[tuple[str, str]]  # (path, acl) in archive order, "" for top-level files
    files: list[StagedFile]
    scripts: list[tuple[str, bytes]]
    triggers: tuple[str, ...]
    broken_xattr: bool = False


def _acl(uid: int, gid: int, mode: int, xattrs: Sequence[tuple[str, bytes]]) -> str:
    text = f"{uid}:{gid}:{mode & 0o7777:o}"
    if xattrs:
        h = hashlib.sha1()
        for name, value in sorted(xattrs):
            raw = name.encode("utf-8", "surrogateescape")
            h.update(len(raw).to_bytes(4, "big") + raw)
            h.update(len(value).to_bytes(4, "big") + value)
        text += ":Q1" + base64.b64encode(h.digest()).decode()
    return text


def _q1(hexdigest: str | None) -> str:
    if not hexdigest:
        return ""
    try:
        return "Q1" + base64.b64encode(bytes.fromhex(hexdigest)).decode()
    except ValueError:
        return ""


def _hostile(path: str) -> str | None:
    reason = unsafe_path_reason(path)
    if reason:
        return reason
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "contains a control character"
    if "." in path.split("/") or path.startswith("./"):
        return "contains a '.' component"
    return None


class _Stage:
    """The staging directory inside the root."""

    def __init__(self, root: str) -> None:
        self.dir = tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=root)
        os.chmod(self.dir, 0o700)
        self.counter = 0

    def new_path(self, hint: str = "") -> str:
        self.counter += 1
        return os.path.join(self.dir, f"{self.counter}{hint}")

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


EntryWriter = Callable[[TarEntry, int, int, object | None], tuple[object, bool]]
"""Stages one checked package entry: ``(entry, uid, gid, link_source)`` -> ``(staged,
xattrs_kept)``. ``link_source`` is what the writer returned for a hard link's target (None
for other entries); ``staged`` is handed back to the caller's ``place`` operation."""


def check_entries(entries: Iterable[TarEntry], label: str, *, trusted: bool) -> list[TarEntry]:
    """The data entries of package ``label``, checked and in archive order (directory
    paths without their trailing ``/``). Raises :class:`PackageError` ("refusing package")
    for a hostile entry: an unsafe path, a duplicate, an entry below a symlink or file of the
    package, a file without its directory entry, a hard link to nothing, and device nodes or
    setuid/setgid files when the package is not ``trusted``."""
    checked: list[TarEntry] = []
    kinds: dict[str, str] = {}
    for entry in entries:
        path = entry.path.rstrip("/") if entry.type == DIRECTORY else entry.path
        why = _hostile(path)
        if why:
            raise PackageError(f"{label}: refusing package: entry {entry.path!r} {why}")
        if path in kinds:
            raise PackageError(f"{label}: refusing package: {path} appears twice in the archive")
        parent = path.rpartition("/")[0]
        # every ancestor that the package itself ships must be a directory of the package
        up = parent
        while up:
            kind = kinds.get(up)
            if kind is not None and kind != DIRECTORY:
                raise PackageError(
                    f"{label}: refusing package: {path} lies below {up}, which the package "
                    "ships as a symlink or file"
                )
            up = up.rpartition("/")[0]
        if entry.type != DIRECTORY:
            prefix = path + "/"
            if any(other.startswith(prefix) for other in kinds):
                raise PackageError(
                    f"{label}: refusing package: {path} is not a directory but the package "
                    "has entries below it"
                )
        if entry.type in ("3", "4") and not trusted:
            raise PackageError(
                f"{label}: refusing package: {path} is a device node and the package is not trusted"
            )
        if entry.type in FILE_TYPES and entry.mode & 0o6000 and not trusted:
            raise PackageError(
                f"{label}: refusing package: {path} is setuid/setgid and the package is not trusted"
            )
        if entry.type != DIRECTORY and parent and kinds.get(parent) != DIRECTORY:
            raise PackageError(f"{label}: refusing package: {path}: no directory entry in archive")
        if entry.type == HARDLINK:
            target = entry.linkname
            if kinds.get(target) not in FILE_TYPES:
                raise PackageError(
                    f"{label}: refusing package: {path}: no hard link target ({target}) in archive"
                )
        kinds[path] = entry.type
        checked.append(replace(entry, path=path))
    return checked


def stage_package(
    apk: ApkFile,
    package: Package,
    ids: Ids,
    *,
    trusted: bool,
    write: EntryWriter,
    warnings: list[str],
) -> StagedPackage:
    """Check ``apk``'s entries (:func:`check_entries`), stage each file with ``write`` and
    record the directories and files as the installed database lists them (owners through
    ``ids``, which a shipped ``etc/passwd``/``etc/group`` updates)."""
    label = str(package)
    entries = check_entries(apk.entries(verify=True), label, trusted=trusted)
    staged = StagedPackage(package, [], [], list(apk.scripts), apk.info.triggers)
    digests: dict[str, str] = {}
    staged_at: dict[str, object] = {}
    dir_index: dict[str, int] = {}
    for entry in entries:
        uid = ids.uid(entry.uname, entry.uid)
        gid = ids.gid(entry.gname, entry.gid)
        acl = _acl(uid, gid, entry.mode, entry.xattrs)
        if entry.type == DIRECTORY:
            if entry.path in dir_index:
                continue
            dir_index[entry.path] = len(staged.dirs)
            staged.dirs.append((entry.path, "" if acl == _DEFAULT_DIR_ACL else acl))
            continue
        parent = entry.path.rpartition("/")[0]
        if parent not in dir_index:  # a top-level file: apk's directory ""
            dir_index[parent] = len(staged.dirs)
            staged.dirs.append((parent, ""))
        if entry.type in FILE_TYPES and entry.path in ("etc/passwd", "etc/group"):
            ids.update(entry.path, entry.data)
        if entry.type == HARDLINK:
            target, _ = write(entry, uid, gid, staged_at[entry.linkname])
            digest = digests.get(entry.linkname, "")
            kind = HARDLINK
        else:
            target, kept = write(entry, uid, gid, None)
            if not kept:
                staged.broken_xattr = True
                warnings.append(f"{label}: failed to preserve xattrs of {entry.path}")
            digest = _q1(entry.pax_value(CHECKSUM_KEY))
            kind = entry.type
        staged_at[entry.path] = target
        digests[entry.path] = digest
        staged.files.append(
            StagedFile(entry.path, target, "" if acl == _DEFAULT_FILE_ACL else acl, digest, kind)
        )
    return staged


def _disk_writer(stage: _Stage, chown: bool) -> EntryWriter:
    """Stages entries as files in ``stage`` (hard links as links to their staged target)."""

    def write(
        entry: TarEntry, uid: int, gid: int, link_source: object | None
    ) -> tuple[object, bool]:
        target = stage.new_path()
        if entry.type == HARDLINK:
            assert isinstance(link_source, str)
            os.link(link_source, target)
            return target, True
        return target, _write_staged(target, entry, uid, gid, chown=chown)

    return write


def _write_staged(target: str, entry: TarEntry, uid: int, gid: int, *, chown: bool) -> bool:
    """Create ``target`` from ``entry``; False when extended attributes could not be kept."""
    mode = entry.mode & 0o7777
    if entry.type in FILE_TYPES:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            view = memoryview(entry.data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if chown:
                os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            ok = _set_xattrs(fd, entry.xattrs)
        finally:
            os.close(fd)
        os.utime(target, (entry.mtime, entry.mtime))
        return ok
    if entry.type == SYMLINK:
        os.symlink(entry.linkname, target)
        if chown:
            os.lchown(target, uid, gid)
        os.utime(target, (entry.mtime, entry.mtime), follow_symlinks=False)
        return True
    if entry.type in ("3", "4"):
        kind = stat.S_IFCHR if entry.type == "3" else stat.S_IFBLK
        os.mknod(target, kind | 0o600, os.makedev(entry.devmajor, entry.devminor))
    elif entry.type == "6":
        os.mkfifo(target, 0o600)
    else:  # pragma: no cover - iter_tar yields no other types
        raise PackageError(f"{entry.path}: unsupported entry type {entry.type!r}")
    if chown:
        os.lchown(target, uid, gid)
    os.chmod(target, mode)
    os.utime(target, (entry.mtime, entry.mtime))
    return True


def _set_xattrs(fd: int, xattrs: Sequence[tuple[str, bytes]]) -> bool:
    ok = True
    for name, value in xattrs:
        try:
            os.setxattr(fd, name, value)
        except OSError:
            ok = False
    return ok


# --------------------------------------------------------------------------------------------
# the in-memory model of ownership


@record(frozen=False)
class _Owned:
    """A package's record while planning: its directories and files in order."""

    package: Package
    dirs: dict[str, str]  # path -> acl ("" = default)
    files: dict[str, dict[str, InstalledFile]]  # dir -> name -> record

    @classmethod
    def from_installed(cls, ip: InstalledPackage) -> _Owned:
        dirs: dict[str, str] = {}
        files: dict[str, dict[str, InstalledFile]] = {}
        for d in ip.dirs:
            dirs[d.path] = d.acl
            files.setdefault(d.path, {}).update((f.name, f) for f in d.files)
        return cls(ip.package, dirs, files)

    def record(self) -> InstalledPackage:
        def key(text: str) -> bytes:
            return text.encode("utf-8", "surrogateescape")

        out = []
        for path in sorted(self.dirs, key=key):
            names = self.files.get(path, {})
            out.append(
                InstalledDir(path, self.dirs[path], tuple(names[n] for n in sorted(names, key=key)))
            )
        return InstalledPackage(self.package, tuple(out))

    def all_files(self) -> list[str]:
        return [_join(d, n) for d, names in self.files.items() for n in names]


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def _split(path: str) -> tuple[str, str]:
    directory, _, name = path.rpartition("/")
    return directory, name


def _ancestors(path: str) -> Iterable[str]:
    while path:
        yield path
        path = path.rpartition("/")[0]


# --------------------------------------------------------------------------------------------
# operations and their undo


class _Journal:
    """Runs filesystem operations in the root and remembers how to undo each."""

    def __init__(self, root: str, stage: _Stage) -> None:
        self.root = root
        self.stage = stage
        self.undo: list[Callable[[], None]] = []
        self.changed_dirs: set[str] = set()
        # Times of the directories whose entries change, as they were before the first
        # change: a rollback puts them back too, so the root is left exactly as it was.
        self.dir_times: dict[str, tuple[int, int]] = {}

    def _touching(self, real: str) -> None:
        """Remember the times of the directory holding ``real`` before changing it."""
        parent = os.path.dirname(real)
        if parent in self.dir_times:
            return
        try:
            st = os.lstat(parent)
        except FileNotFoundError:
            return
        self.dir_times[parent] = (st.st_atime_ns, st.st_mtime_ns)

    def real(self, rel: str) -> str:
        directory, name = _split(rel)
        return os.path.join(resolve_in_root(self.root, directory), name)

    def mkdir(self, rel: str, acl: str, chown: bool) -> None:
        """Create directory ``rel`` (and missing parents, mode 0755) unless it exists.

        The path is resolved inside the root first, so a symlinked directory (``lib`` to
        ``usr/lib``, or an absolute link) is created where the link leads, inside the root.
        """
        real = resolve_in_root(self.root, rel)
        parts = os.path.relpath(real, self.root).split("/") if real != self.root else []
        current = self.root
        for i, part in enumerate(parts):
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                st = None
            if st is not None:
                if not stat.S_ISDIR(st.st_mode):
                    raise CommitError(
                        f"{os.path.relpath(current, self.root)}: exists in the root and is not "
                        "a directory"
                    )
                continue
            last = i == len(parts) - 1
            uid, gid, mode = _parse_acl(acl if last else "", _DEFAULT_DIR_ACL)
            self._touching(current)
            os.mkdir(current, 0o700)
            self.undo.append(partial(os.rmdir, current))
            if chown:
                os.chown(current, uid, gid)
            os.chmod(current, mode)

    def set_perms(self, rel: str, acl: str, chown: bool) -> None:
        real = resolve_in_root(self.root, rel)
        try:
            st = os.stat(real)
        except FileNotFoundError:
            return
        uid, gid, mode = _parse_acl(acl, _DEFAULT_DIR_ACL)
        if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, mode):
            return
        old = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))

        def restore(real: str = real, old: tuple[int, int, int] = old) -> None:
            if chown:
                os.chown(real, old[0], old[1])
            os.chmod(real, old[2])

        self.undo.append(restore)
        if chown:
            os.chown(real, uid, gid)
        os.chmod(real, mode)

    def _set_aside(self, real: str) -> str | None:
        """Move what is at ``real`` into the stage; returns where (None: nothing there)."""
        try:
            st = os.lstat(real)
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(st.st_mode):
            raise CommitError(f"{os.path.relpath(real, self.root)}: a directory is in the way")
        backup = self.stage.new_path(".old")
        self._touching(real)
        os.rename(real, backup)
        self.undo.append(lambda: os.rename(backup, real))
        return backup

    def place(self, staged: str, rel: str) -> None:
        real = self.real(rel)
        self._set_aside(real)
        self._touching(real)
        os.rename(staged, real)
        self.undo.append(lambda: os.rename(real, staged))
        self.changed_dirs.add(_split(rel)[0])

    def remove(self, rel: str) -> None:
        self._set_aside(self.real(rel))
        self.changed_dirs.add(_split(rel)[0])

    def rmdir(self, rel: str) -> None:
        real = self.real(rel)
        try:
            st = os.lstat(real)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode):
            return
        self._touching(real)
        try:
            os.rmdir(real)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EBUSY):
                return
            raise

        def restore(real: str = real, st: os.stat_result = st) -> None:
            os.mkdir(real, 0o700)
            os.chown(real, st.st_uid, st.st_gid)
            os.chmod(real, stat.S_IMODE(st.st_mode))
            os.utime(real, ns=(st.st_atime_ns, st.st_mtime_ns))

        self.undo.append(restore)

    def symlink_if_absent(self, target: str, rel: str, mtime: int) -> bool:
        real = self.real(rel)
        if os.path.lexists(real):
            return False
        self._touching(real)
        os.symlink(target, real)
        self.undo.append(lambda: os.unlink(real))
        os.utime(real, (mtime, mtime), follow_symlinks=False)
        return True

    def rollback(self) -> None:
        while self.undo:
            action = self.undo.pop()
            try:
                action()
            except OSError:
                continue
        for path, (atime, mtime) in self.dir_times.items():
            try:
                os.utime(path, ns=(atime, mtime), follow_symlinks=False)
            except OSError:
                continue


def _parse_acl(acl: str, default: str) -> tuple[int, int, int]:
    fields = (acl or default).split(":")
    try:
        return int(fields[0]), int(fields[1]), int(fields[2], 8)
    except (IndexError, ValueError):
        fields = default.split(":")
        return int(fields[0]), int(fields[1]), int(fields[2], 8)


# --------------------------------------------------------------------------------------------
# the commit


def _lock(root: str) -> tuple[int, str | None] | None:
    """Hold ``lib/apk/db/lock`` (apk's lock file) if the database exists; returns the file
    descriptor and the lock's path when this call created it."""
    db = resolve_in_root(root, DB_DIR)
    if not os.path.isdir(db):
        return None
    path = os.path.join(db, "lock")
    created = None if os.path.lexists(path) else path
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise CommitError(f"Unable to lock database: {os.strerror(exc.errno or 0)}") from None
    return fd, created


def commit(
    root: Path | str,
    state: DatabaseState,
    steps: Sequence[Step],
    source: PackageSource,
    options: CommitOptions,
    *,
    progress: Callable[[str], None] | None = None,
) -> CommitResult:
    """Apply ``steps`` (apk's change set order) to ``root``: stage, then commit atomically.

    Raises :class:`PackageError` (hostile or corrupt package, file conflict),
    :class:`SignatureError`, :class:`CommitError` (the root could not be changed: disk full,
    permissions...), each naming the package and path; the root, its world and its database
    are then unchanged. ``KeyboardInterrupt`` also leaves them unchanged.
    """
    root_s = os.path.abspath(str(root))
    made_root = False
    if options.initdb and not os.path.lexists(root_s):
        try:
            os.makedirs(root_s)
        except OSError as exc:
            raise CommitError(_os_message(exc, root_s)) from None
        made_root = True
    if not os.path.isdir(root_s):
        raise CommitError(f"{root_s}: the root is not a directory")
    if options.run_scripts and os.geteuid() != 0:
        raise CommitError("running package scripts needs root (they run chrooted)")
    lock = _lock(root_s)
    stage: _Stage | None = None
    ok = False
    try:
        try:
            stage = _Stage(root_s)
        except OSError as exc:
            raise CommitError(_os_message(exc, root_s)) from None
        journal = _Journal(root_s, stage)
        try:
            result = _run(root_s, state, steps, source, options, stage, journal, progress)
        except BaseException as exc:
            journal.rollback()
            if isinstance(exc, OSError):
                raise CommitError(_os_message(exc, root_s)) from None
            raise
        ok = True
        return result
    finally:
        if stage is not None:
            stage.remove()
        if lock is not None:
            os.close(lock[0])
            if not ok and lock[1] is not None:
                _unlink_quietly(lock[1])
        if not ok and made_root:
            with contextlib.suppress(OSError):
                os.rmdir(root_s)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _os_message(exc: OSError, root: str) -> str:
    where = exc.filename if isinstance(exc.filename, str) else root
    if where.startswith(root):
        where = os.path.relpath(where, root)
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return f"{where}: {reason}; the root was left unchanged"


@record
class Operation:
    """One change to the root, in the order :func:`plan_commit` decided.

    ``kind`` is ``mkdir`` (create directory ``path`` unless it exists; ``acl`` for a new
    one, "" = default), ``perms`` (set an existing directory's owner and mode to ``acl``),
    ``place`` (put the ``staged`` file at ``path``), ``remove`` (remove the file at
    ``path``) or ``rmdir`` (remove directory ``path`` if it is empty). Paths are relative
    to the root and resolved inside it as a chrooted process would.
    """

    kind: str
    path: str
    acl: str = ""
    staged: object = None


@record
class Plan:
    """What a commit does: the operations, then the database it leaves."""

    operations: tuple[Operation, ...]
    installed: tuple[InstalledPackage, ...]
    """Database order (the installed file sorts it when written)."""
    scripts: dict[str, list[ScriptRecord]]
    """By package identity."""
    triggers: dict[str, tuple[str, ...]]
    warnings: tuple[str, ...]


def plan_commit(
    state: DatabaseState,
    steps: Sequence[Step],
    source: PackageSource,
    options: CommitOptions,
    *,
    ids: Ids,
    protected: Sequence[Rule],
    local_digest: Callable[[str], str | None],
    write: EntryWriter,
) -> Plan:
    """Fetch, check and stage every package of ``steps`` and decide, by apk's rules, who
    owns each file and directory: the operations that apply ``steps`` to a root holding
    ``state``, and the database afterwards. Nothing but ``write`` stages anything; the
    root is only looked at through ``ids`` (its accounts), ``protected`` (its protected
    paths) and ``local_digest`` (``Q1`` digest of what a relative path holds, None when
    nothing is there, "" when it has no digest).

    Raises :class:`PackageError` (hostile or corrupt package, file conflict),
    :class:`SignatureError` and what ``source`` raises.
    """
    trusted = not options.allow_untrusted
    warnings: list[str] = []
    owned: dict[str, _Owned] = {
        ip.package.name: _Owned.from_installed(ip) for ip in state.installed
    }
    order: list[str] = [ip.package.name for ip in state.installed]
    file_owner: dict[str, str] = {}
    for name, rec in owned.items():
        for path in rec.all_files():
            file_owner.setdefault(path, name)
    dirs_before = _dir_refs(owned.values())
    dir_owner: dict[str, str] = {}
    for name in order:
        for d in owned[name].dirs:
            cur = dir_owner.get(d)
            if cur is None or _replaces_dir(owned[cur].package, owned[name].package, set()):
                dir_owner[d] = name
    scripts: dict[str, list[ScriptRecord]] = {}
    for script in state.scripts:
        scripts.setdefault(script.identity, []).append(script)
    triggers = dict(state.triggers)
    removing = {s.old.name for s in steps if s.new is None and s.old is not None}
    ops: list[Operation] = []

    # -- stage every package and plan the operations, in change-set order
    for step in steps:
        if step.new is None:
            assert step.old is not None
            gone = owned.pop(step.old.name, None)
            if gone is None:
                continue
            for path in gone.all_files():
                if file_owner.get(path) == step.old.name:
                    del file_owner[path]
                    ops.append(Operation("remove", path))
            _drop_dir_owner(gone, owned, dir_owner, removing, ops)
            scripts.pop(step.old.checksum, None)
            triggers.pop(step.old.checksum, None)
            continue
        cand = step.new
        old_rec = owned.get(step.old.name) if step.old is not None else None
        package = cand.package
        staged: StagedPackage | None = None
        needs_files = package.installed_size != 0 and (
            step.old is None or step.old.checksum != package.checksum or step.reinstall
        )
        if needs_files:
            if step.repository is None:
                raise CommitError(
                    f"{cand}: could not find a repository which provides this package "
                    "(check repositories file and run 'apk update')"
                )
            data = source.fetch(cand, step.repository)
            apk = read_package(
                data,
                options.keys,
                source=f"{cand}",
                allow_untrusted=options.allow_untrusted,
                expected_identity=package.checksum or None,
            )
            package = replace(
                package,
                replaces=apk.info.package.replaces,
                replaces_priority=apk.info.package.replaces_priority,
            )
            staged = stage_package(
                apk, package, ids, trusted=trusted, write=write, warnings=warnings
            )
        elif old_rec is not None:
            package = replace(
                package,
                replaces=old_rec.package.replaces,
                replaces_priority=old_rec.package.replaces_priority,
            )
        flags = ""
        if staged is not None and staged.broken_xattr:
            flags = "x"
        package = replace(package, repository_tag=step.tag, flags=flags)
        if staged is None:
            # a pinning update, a virtual package, or a meta package: no files change
            if old_rec is not None:
                old_rec.package = package
            else:
                owned[package.name] = _Owned(package, {}, {})
                order.append(package.name)
            continue
        new_rec = _Owned(package, {}, {})
        for path, acl in staged.dirs:
            new_rec.dirs[path] = acl
            new_rec.files.setdefault(path, {})
        for path, acl in staged.dirs:
            if not path:
                continue
            cur = dir_owner.get(path)
            if cur is None or cur not in owned:
                dir_owner[path] = package.name
                ops.append(Operation("mkdir", path, acl))
            else:
                ops.append(Operation("mkdir", path))
                if _replaces_dir(owned[cur].package, package, removing):
                    dir_owner[path] = package.name
                    if owned[cur].dirs.get(path, "") != acl:
                        ops.append(Operation("perms", path, acl))
        for f in staged.files:
            directory, name = _split(f.path)
            holder = file_owner.get(f.path)
            holder_rec = owned.get(holder) if holder is not None else None
            keep_local = _keeps_local_file(protected, f, holder_rec, local_digest)
            if holder is not None and holder != package.name and holder in owned:
                other = owned[holder].package
                verdict = _replaces_file(other, package, removing)
                if verdict == _NO:
                    continue
                if verdict == _CONFLICT:
                    if not options.force_overwrite:
                        raise PackageError(
                            f"{package}: trying to overwrite {f.path} owned by {other}."
                        )
                    warnings.append(f"{package}: overwriting {f.path} owned by {other}.")
                owned[holder].files.get(directory, {}).pop(name, None)
            file_owner[f.path] = package.name
            new_rec.files[directory][name] = InstalledFile(name, f.acl, f.digest)
            if keep_local is None:
                ops.append(Operation("place", f.path, staged=f.staged))
            elif keep_local and not options.clean_protected:
                # a locally changed configuration file: the package's version goes beside it
                ops.append(Operation("place", f.path + ".apk-new", staged=f.staged))
        if old_rec is not None:
            new_paths = set(new_rec.all_files())
            for path in old_rec.all_files():
                if path not in new_paths and file_owner.get(path) == package.name:
                    del file_owner[path]
                    ops.append(Operation("remove", path))
            if step.old is not None and step.old.checksum != package.checksum:
                scripts.pop(step.old.checksum, None)
                triggers.pop(step.old.checksum, None)
        owned[package.name] = new_rec
        if package.name not in order:
            order.append(package.name)
        scripts[package.checksum] = [
            ScriptRecord(
                package.checksum,
                package.name,
                package.version,
                name.lstrip("."),
                body,
                package.build_time,
            )
            for name, body in staged.scripts
        ]
        triggers.pop(package.checksum, None)
        if staged.triggers:
            triggers[package.checksum] = staged.triggers

    # -- directories nobody owns any more
    dirs_after = _dir_refs(owned.values())
    for path in sorted(dirs_before - dirs_after, key=lambda p: (-p.count("/"), p)):
        ops.append(Operation("rmdir", path))
    installed = tuple(owned[n].record() for n in order if n in owned)
    return Plan(tuple(ops), installed, scripts, triggers, tuple(warnings))


def _apply(journal: _Journal, op: Operation, chown: bool) -> None:
    if op.kind == "mkdir":
        journal.mkdir(op.path, op.acl, chown)
    elif op.kind == "perms":
        journal.set_perms(op.path, op.acl, chown)
    elif op.kind == "place":
        assert isinstance(op.staged, str)
        journal.place(op.staged, op.path)
    elif op.kind == "remove":
        journal.remove(op.path)
    elif op.kind == "rmdir":
        journal.rmdir(op.path)
    else:  # pragma: no cover - plan_commit makes no other kind
        raise ValueError(f"unknown operation {op.kind!r}")


def _run(
    root: str,
    state: DatabaseState,
    steps: Sequence[Step],
    source: PackageSource,
    options: CommitOptions,
    stage: _Stage,
    journal: _Journal,
    progress: Callable[[str], None] | None,
) -> CommitResult:
    chown = options.chown and os.geteuid() == 0
    plan = plan_commit(
        state,
        steps,
        source,
        options,
        ids=Ids.from_root(root),
        protected=_protected_rules(root),
        local_digest=lambda rel: _disk_digest(journal.real(rel)),
        write=_disk_writer(stage, chown),
    )
    installed = plan.installed
    scripts = plan.scripts
    triggers = plan.triggers
    warnings = list(plan.warnings)

    # -- the database files, written into the stage now
    db_files = _database_files(root, state, installed, scripts, triggers, options)
    staged_db: list[tuple[str, str]] = []
    for rel, data in db_files:
        tmp = stage.new_path(".db")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)
        staged_db.append((tmp, rel))

    # -- commit: apply every operation; the database last
    for op in plan.operations:
        _apply(journal, op, chown)
    if options.initdb or not os.path.isdir(resolve_in_root(root, DB_DIR)):
        journal.mkdir(DB_DIR, "", chown)
        journal.mkdir("lib/apk/exec", "", chown)
        journal.mkdir("etc/apk/keys", "", chown)
    journal.mkdir("etc/apk", "", chown)
    if options.create_cache_dir and not os.path.lexists(os.path.join(root, "etc/apk/cache")):
        journal.mkdir("var/cache/apk", "", chown)
    if options.busybox_links and not options.run_scripts:
        from alpenglow.apk.scripts import busybox_links

        for parent, path, mtime in busybox_links(root, resolve_in_root):
            journal.mkdir(parent, "", chown)
            journal.symlink_if_absent("/bin/busybox", path, mtime)
    script_errors: list[str] = []
    if options.run_scripts:
        from alpenglow.apk.scripts import run_package_scripts

        old_scripts: dict[str, list[ScriptRecord]] = {}
        for script in state.scripts:
            old_scripts.setdefault(script.identity, []).append(script)
        script_errors = run_package_scripts(
            root,
            steps,
            old_scripts,
            scripts,
            triggers,
            {ip.package.checksum: [d.path for d in ip.dirs] for ip in installed},
            journal.changed_dirs,
            progress or (lambda _m: None),
        )
        if script_errors:
            broken = {e.split("/")[-1].rsplit(".", 1)[0] for e in script_errors}
            flagged = tuple(
                replace(ip, package=replace(ip.package, flags=ip.package.flags + "s"))
                if str(ip.package) in broken and "s" not in ip.package.flags
                else ip
                for ip in installed
            )
            if flagged != installed:
                installed = flagged
                for tmp, rel in staged_db:
                    if rel.endswith("/installed"):
                        from alpenglow.apk.database import format_installed as _fmt

                        with open(tmp, "wb") as fh:
                            fh.write(_fmt(_sorted_installed(installed)))
    for tmp, rel in staged_db:
        journal.place(tmp, rel)
    if not os.path.exists(os.path.join(resolve_in_root(root, DB_DIR), "lock")):
        lock_path = os.path.join(resolve_in_root(root, DB_DIR), "lock")
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        journal.undo.append(lambda: os.unlink(lock_path))
    return CommitResult(installed, tuple(warnings), tuple(script_errors))


def _protected_rules(root: str) -> tuple[Rule, ...]:
    """apk's built-in protected paths and those of ``etc/apk/protected_paths.d/*.list``."""
    directory = resolve_in_root(root, "etc/apk/protected_paths.d")
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".list"))
    except OSError:
        names = []
    texts = []
    for name in names:
        data = _read_optional(Path(directory) / name)
        if data is not None:
            texts.append(data.decode("utf-8", "replace"))
    return rules_from_files(texts)


def _disk_digest(real: str) -> str | None:
    """``Q1`` SHA-1 of what is at ``real`` (content, or link target); None if nothing is
    there, "" for something that has no digest (a directory, a device)."""
    try:
        st = os.lstat(real)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        data = os.fsencode(os.readlink(real))
    elif stat.S_ISREG(st.st_mode):
        with open(real, "rb") as fh:
            data = fh.read()
    else:
        return ""
    return "Q1" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def _keeps_local_file(
    rules: Sequence[Rule],
    f: StagedFile,
    holder: _Owned | None,
    local_digest: Callable[[str], str | None],
) -> bool | None:
    """apk's rule for a file in a protected directory that already exists in the root.

    None: install the package's file as usual. True: keep the local file and put the
    package's version beside it as ``.apk-new``. False: keep the local file, which is already
    identical to the package's.
    """
    directory, name = _split(f.path)
    if not is_protected(rules, directory, symlink=f.kind == SYMLINK):
        return None
    on_disk = local_digest(f.path)
    if on_disk is None:
        return None
    known = ""
    if holder is not None:
        entry = holder.files.get(directory, {}).get(name)
        known = entry.digest if entry is not None else ""
    if known and on_disk == known:
        return None  # unchanged since it was installed: replace it
    return bool(not f.digest or on_disk != f.digest)


def _dir_refs(records: Iterable[_Owned]) -> set[str]:
    out: set[str] = set()
    for rec in records:
        for d in rec.dirs:
            out.update(_ancestors(d))
    return out


def _drop_dir_owner(
    rec: _Owned,
    owned: dict[str, _Owned],
    dir_owner: dict[str, str],
    removing: set[str],
    ops: list[Operation],
) -> None:
    """A package that owned directories is gone: the next owner's mode applies."""
    name = rec.package.name
    for path in rec.dirs:
        if dir_owner.get(path) != name:
            continue
        best: _Owned | None = None
        for other in owned.values():
            if path in other.dirs and (
                best is None or _replaces_dir(best.package, other.package, removing)
            ):
                best = other
        if best is None:
            dir_owner.pop(path, None)
            continue
        dir_owner[path] = best.package.name
        acl = best.dirs[path]
        if path and acl != rec.dirs[path]:
            ops.append(Operation("perms", path, acl))


def _sorted_installed(installed: Iterable[InstalledPackage]) -> list[InstalledPackage]:
    from functools import cmp_to_key

    from alpenglow.apk.version import compare

    def order(a: InstalledPackage, b: InstalledPackage) -> int:
        ka = (a.package.name.lower(), a.package.name)
        kb = (b.package.name.lower(), b.package.name)
        if ka != kb:
            return -1 if ka < kb else 1
        return compare(a.package.version, b.package.version)

    return sorted(installed, key=cmp_to_key(order))


def _database_files(
    root: str,
    state: DatabaseState,
    installed: Sequence[InstalledPackage],
    scripts: dict[str, list[ScriptRecord]],
    triggers: dict[str, tuple[str, ...]],
    options: CommitOptions,
) -> list[tuple[str, bytes]]:
    arch_exists = os.path.lexists(resolve_in_root(root, "etc/apk/arch"))
    return database_files(state, installed, scripts, triggers, options, arch_exists=arch_exists)


def database_files(
    state: DatabaseState,
    installed: Sequence[InstalledPackage],
    scripts: dict[str, list[ScriptRecord]],
    triggers: dict[str, tuple[str, ...]],
    options: CommitOptions,
    *,
    arch_exists: bool,
) -> list[tuple[str, bytes]]:
    """The files a commit writes last, as (path, bytes): ``lib/apk/db/installed``,
    ``scripts.tar[.gz]`` (as ``state`` has it), ``triggers``, ``etc/apk/world``, and
    ``etc/apk/arch`` when the options ask for it or the root has none (``arch_exists``)."""
    ordered = _sorted_installed(installed)
    rank = {s: i for i, s in enumerate(SCRIPT_TYPES)}
    script_records: list[ScriptRecord] = []
    trigger_lines: list[tuple[str, tuple[str, ...]]] = []
    for ip in ordered:
        pkg = ip.package
        recs = scripts.get(pkg.checksum, [])
        for rec in sorted(recs, key=lambda r: rank.get(r.script, 99)):
            script_records.append(replace(rec, name=pkg.name, version=pkg.version))
        if triggers.get(pkg.checksum):
            trigger_lines.append((pkg.checksum, triggers[pkg.checksum]))
    scripts_file = state.scripts_file
    files = [
        (f"{DB_DIR}/installed", format_installed(ordered)),
        (
            f"{DB_DIR}/{scripts_file}",
            format_scripts(script_records, compress=scripts_file.endswith(".gz")),
        ),
        (f"{DB_DIR}/triggers", format_triggers(trigger_lines)),
        ("etc/apk/world", format_world(options.world)),
    ]
    if options.arches and (options.write_arch or not arch_exists):
        files.append(("etc/apk/arch", "".join(a + "\n" for a in options.arches).encode()))
    return files
