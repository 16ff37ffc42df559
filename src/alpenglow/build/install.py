"""Installing APK packages into an in-memory tree: ``apk --root DIR --initdb add`` without a
directory, without root and without ``chown``.

:func:`install` does what ``alpenglow apk add`` does for a root, in the same order and with
the same modules:

1. the root's state: a fresh one, or a base image's tree whose ``lib/apk/db`` and
   ``etc/apk/world`` say what is installed;
2. the repositories (local paths, or ``http(s)`` through the shared download cache and the
   parsed-index cache) into a :class:`~alpenglow.apk.pool.Pool`, then apk's solver for the
   world plus the requested atoms (errors: :class:`~alpenglow.errors.Unsatisfiable` with
   apk's "unable to select packages" report);
3. the packages fetched in parallel through the cache, each verified against the signed
   index before it is used (a bad download is never stored);
4. :func:`alpenglow.apk.commit.plan_commit` decides, by the same rules as the disk commit,
   what every file and directory becomes (hostile entries refused, ``replaces`` and file
   conflicts, directory owners and modes, owners mapped through the tree's
   ``etc/passwd``/``etc/group``, protected configuration files); its operations are applied
   to the tree here instead of a directory;
5. the busybox applet links (no scripts run) and the installed database, written into the
   tree byte for byte as the disk commit writes it, with ``etc/apk/repositories`` (the
   request's lines) and ``etc/apk/keys/`` (the request's keys) so that ``apk`` works inside.

Nothing is written anywhere but the shared cache, and nothing is printed (downloads report to
a :class:`~alpenglow.apk.fetch.Progress`). Differences from a disk run: no
``lib/apk/db/lock`` (a volatile file, left out of images); directories and generated files
get the newest package build time as their mtime instead of the clock's.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from alpenglow.apk.commit import (
    DB_DIR,
    CommitOptions,
    DatabaseState,
    Ids,
    Operation,
    PackageSource,
    Step,
    database_files,
    plan_commit,
    read_database,
)
from alpenglow.apk.database import parse_world
from alpenglow.apk.dependency import Dependency, parse
from alpenglow.apk.index import Package
from alpenglow.apk.protected import rules_from_files
from alpenglow.apk.repository import (
    Repository,
    RepositoryError,
    is_network_url,
    open_index,
    parse_repositories,
)
from alpenglow.apk.scripts import BUSYBOX_PATHS, parse_busybox_paths
from alpenglow.apk.signing import Keyring
from alpenglow.apk.solver import Candidate, Solution, identity_key
from alpenglow.errors import AlpenglowError, CommitError, InvalidDependency, Unsatisfiable
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
)

if TYPE_CHECKING:
    from alpenglow.apk.archive import TarEntry
    from alpenglow.apk.fetch import Progress
    from alpenglow.apk.pool import Pool
    from alpenglow.apk.protected import Rule
    from alpenglow.apk.remote import Remote

__all__ = [
    "InstallError",
    "InstallRequest",
    "InstallResult",
    "LockPin",
    "install",
]


def __dir__() -> list[str]:
    return __all__


_DEFAULT_DIR = (0, 0, 0o755)
_TAR_HARDLINK = "1"
_TAR_KINDS = {"0": REGULAR, "7": REGULAR, "2": SYMLINK, "3": CHAR, "4": BLOCK, "6": FIFO}


class InstallError(AlpenglowError):
    """An installation that cannot go ahead: a repository that cannot be read, a bad
    repository line or world atom, a base image of another architecture, or locked
    packages the repositories no longer offer (``missing``)."""

    def __init__(
        self, message: str, hint: str | None = None, *, missing: tuple[LockPin, ...] = ()
    ) -> None:
        super().__init__(message, hint)
        self.missing = missing


@dataclass(frozen=True, slots=True)
class LockPin:
    """One package of a lock file: exactly this name, version and identity (``C:``)."""

    name: str
    version: str
    checksum: str

    def __str__(self) -> str:
        return f"{self.name}-{self.version} ({self.checksum})"


@dataclass(frozen=True, slots=True)
class InstallRequest:
    """What to install, and where from."""

    arch: str
    """Alpine architecture (``x86_64``, ``aarch64``...)."""
    repositories: tuple[str, ...]
    """Repository lines as in ``etc/apk/repositories`` (``@tag URL`` allowed): local paths
    or ``http(s)`` URLs. Written into the tree as they are."""
    keys: tuple[Path, ...]
    """Trusted public key files; the file names are the key names signatures refer to."""
    world: tuple[str, ...]
    """Dependency atoms, as ``apk add`` takes them."""
    cache_dir: Path | None = None
    """The shared download cache (None: ``$XDG_CACHE_HOME/alpenglow``, as the apk CLI)."""
    base: Tree | None = None
    """A base image's filesystem (not changed; the result is a new tree)."""
    locked: tuple[LockPin, ...] | None = None
    """Install exactly these packages (all of them, and nothing else)."""
    build_repositories: tuple[str, ...] = ()
    """More repository lines used for this installation only (apko's
    ``build_repositories``): searched after ``repositories``, not written into the tree."""


@dataclass(frozen=True, slots=True)
class InstallResult:
    """The filesystem after the installation, and what it holds."""

    tree: Tree
    """The full filesystem: the base (if any) plus the changes."""
    installed: tuple[Package, ...]
    """Every installed package as the installed database records it, sorted by name."""
    origins: dict[str, str]
    """Package identity (``C:``) -> URL of the repository it comes from (as configured,
    without the tag); packages no repository offers (kept from the base) are left out."""
    newest_build_time: int
    """The newest build time of the installed packages (0 when there are none): the
    default ``SOURCE_DATE_EPOCH`` of an image, and the mtime of generated files here."""
    warnings: tuple[str, ...] = ()
    """apk's warnings of the run (e.g. an index that could not be refreshed from the
    network and was used from the cache)."""


# --------------------------------------------------------------------------------------------
# the entry point


def install(request: InstallRequest, *, progress: Progress | None = None) -> InstallResult:
    """Solve, fetch and install ``request`` into a new tree (see the module docstring).

    Raises :class:`InstallError`, :class:`~alpenglow.errors.Unsatisfiable`,
    :class:`~alpenglow.apk.fetch.FetchError`, :class:`~alpenglow.errors.PackageError`
    (corrupt or hostile package, file conflict), :class:`~alpenglow.errors.SignatureError`,
    :class:`~alpenglow.errors.DatabaseError` (a base image's database is unreadable) and
    :class:`~alpenglow.errors.CommitError` (a base tree in the way of a package).
    """
    from alpenglow.apk.cache import Cache, default_cache_dir
    from alpenglow.apk.fetch import Fetcher
    from alpenglow.apk.remote import IndexPolicy, Remote, RepositoryPackageSource

    tree = request.base.copy() if request.base is not None else Tree()
    keys = _keyring(request.keys)
    state, world = _installed_state(tree, request.arch)
    cache_dir = request.cache_dir or default_cache_dir(os.environ)
    remote = Remote(Cache(cache_dir), Fetcher(progress=progress), IndexPolicy(autoupdate=True))
    try:
        opened = _open_pool(request, keys, state, world, remote, cache_dir)
        pool = opened.pool
        wanted, name_flags = _requested_world(pool, world, request.world)
        pins = _pin_world(pool, request.locked) if request.locked is not None else ()
        from alpenglow.apk.solver import solve

        solution = solve(pool, [*wanted, *pins], 0, name_flags=name_flags)
        if solution.errors:
            from alpenglow.apk.problems import report

            raise Unsatisfiable(report(pool, solution, width=50))
        if request.locked is not None:
            _check_locked(solution, request.locked)
        pinned = {id(p) for p in pins}
        final_world = tuple(d for d in solution.world if id(d) not in pinned)
        steps = _steps(pool, solution, opened.repositories)
        source = RepositoryPackageSource(remote, keys)
        source.prefetch(
            [
                (s.new, s.repository)
                for s in steps
                if s.new is not None
                and s.repository is not None
                and s.new.package.installed_size != 0
                and (s.old is None or s.old.checksum != s.new.package.checksum or s.reinstall)
            ]
        )
        epoch = max(
            (c.new.package.build_time for c in solution.changes if c.new is not None), default=0
        )
        options = CommitOptions(
            world=final_world,
            arches=(request.arch,),
            write_arch=True,
            initdb=True,
            keys=keys,
        )
        result = _commit(tree, state, steps, source, options, request, epoch)
    finally:
        remote.close()
    installed, warnings = result
    origins: dict[str, str] = {}
    for change in solution.changes:
        if change.new is None:
            continue
        repo = _repository_for(pool, change.new, opened.repositories)
        if repo is not None:
            origins[change.new.package.checksum] = repo.base
    return InstallResult(
        tree=tree,
        installed=tuple(sorted(installed, key=lambda p: p.name)),
        origins=origins,
        newest_build_time=max((p.build_time for p in installed), default=0),
        warnings=(*opened.warnings, *warnings),
    )


# --------------------------------------------------------------------------------------------
# the state of the root and the package universe


def _keyring(paths: Sequence[Path]) -> Keyring:
    keys: dict[str, bytes] = {}
    for path in paths:
        try:
            keys.setdefault(path.name, path.read_bytes())
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise InstallError(f"{path}: cannot read the key: {reason}") from None
    return Keyring(keys, " ".join(str(p) for p in paths) or "the trusted keys")


def _read(tree: Tree, path: str) -> bytes | None:
    """A regular file's content (symlinks followed), None when there is none."""
    try:
        return tree.read(path)
    except TreeError:
        return None


def _installed_state(tree: Tree, arch: str) -> tuple[DatabaseState, list[Dependency]]:
    """The base tree's database and world (empty for a fresh tree)."""
    found = _read(tree, "etc/apk/arch")
    if found is not None:
        lines = found.decode("utf-8", "replace").split()
        if lines and lines[0] != arch:
            raise InstallError(
                f"the base image is for {lines[0]} (its /etc/apk/arch), not {arch}",
                hint="use a base image of the architecture being built",
            )
    state = read_database(lambda name: _read(tree, f"{DB_DIR}/{name}"), f"/{DB_DIR}")
    data = _read(tree, "etc/apk/world")
    world = list(parse_world(data, source="/etc/apk/world")) if data is not None else []
    return state, world


@dataclass(slots=True)
class _Opened:
    pool: Pool
    repositories: dict[int, Repository]
    """Pool repository index -> the configured repository."""
    warnings: list[str]


def _open_pool(
    request: InstallRequest,
    keys: Keyring,
    state: DatabaseState,
    world: Sequence[Dependency],
    remote: Remote,
    cache_dir: Path,
) -> _Opened:
    """The package universe in apk's order: world, installed packages, repositories."""
    from alpenglow.apk.pool import Pool

    pool = Pool((request.arch,))
    pool.note_world(world)
    for dep in world:
        pool.tag_id(dep.tag)
    installed = [ip.package for ip in state.installed]
    bad = pool.add_installed(
        installed, broken=[(ip.broken_files, ip.broken_script) for ip in state.installed]
    )
    if bad:
        raise InstallError(f"/{DB_DIR}/installed: package {bad[0]!r} has no valid C: identity")
    repos, problems = parse_repositories(
        "\n".join((*request.repositories, *request.build_repositories)),
        request.arch,
        source="repositories",
    )
    if problems:
        raise InstallError(problems[0], hint="check the repository lines")
    index_cache = cache_dir / "indexes"
    warnings: list[str] = []
    by_index: dict[int, Repository] = {}
    for repo in repos:
        if is_network_url(repo.url):

            def load(data: bytes, repo: Repository = repo) -> object:
                return open_index(
                    None,
                    data=data,
                    url=repo.url,
                    keys=keys,
                    allow_untrusted=False,
                    cache_dir=index_cache,
                )

            outcome = remote.open_index(repo.url, load)
            if outcome.result is None:
                raise InstallError(
                    outcome.warning or f"{repo.url}: the index cannot be opened",
                    hint="check the repository line, the network and the keys",
                )
            if outcome.warning is not None:
                warnings.append(outcome.warning)
            loaded = outcome.result
        else:
            try:
                loaded = open_index(
                    repo.local_path,
                    url=repo.url,
                    keys=keys,
                    allow_untrusted=False,
                    cache_dir=index_cache,
                )
            except RepositoryError as exc:
                raise InstallError(
                    f"opening {repo.url}: {exc.reason}",
                    hint="check the repository line and the keys",
                ) from None
        from alpenglow.apk.index_cache import LoadedIndex

        assert isinstance(loaded, LoadedIndex)
        index = pool.add_repository(
            repo.url,
            loaded.table,
            tags=(repo.tag,),
            available=True,
            local=not repo.remote,
        )
        by_index.setdefault(index, repo)
    pool.finish()
    pool.read_all()  # a build's solve walks from nothing known: every package, in one pass
    warnings += pool.compat.warnings()
    return _Opened(pool, by_index, warnings)


def _requested_world(
    pool: Pool, world: Sequence[Dependency], atoms: Sequence[str]
) -> tuple[list[Dependency], dict[str, tuple[int, int]]]:
    """``apk add ATOMS``: each atom replaces the world entry of the same name, or is added;
    tags must be those of some repository."""
    wanted = list(world)
    name_flags: dict[str, tuple[int, int]] = {}
    for atom in atoms:
        try:
            dep = parse(atom)
        except InvalidDependency as exc:
            raise InstallError(
                f"'{atom}' is not a valid world dependency, format is name(@tag)([<>~=]version)",
                hint=exc.reason,
            ) from None
        if dep.tag is not None:
            pool.tag_id(dep.tag)
        for i, d in enumerate(wanted):
            if d.name == dep.name:
                wanted[i] = dep
                break
        else:
            wanted.append(dep)
        name_flags.setdefault(dep.name, (0, 0))
    for dep in wanted:
        if not dep.tag:
            continue
        tag = pool.tag_id(dep.tag)
        if tag >= len(pool.tag_repos) or not pool.tag_repos[tag]:
            raise InstallError(
                f"The repository tag for world dependency '{dep.name}@{dep.tag}' does not exist",
                hint=f"no repository line starts with @{dep.tag}",
            )
    return wanted, name_flags


def _pin_world(pool: Pool, pins: Sequence[LockPin]) -> tuple[Dependency, ...]:
    """One ``NAME><IDENTITY`` world entry per pin; every pinned package must be offered (or
    already installed in the base)."""
    missing: list[LockPin] = []
    out: list[Dependency] = []
    for pin in pins:
        key = identity_key(pin.checksum)
        offered = bool(key) and any(
            cand.package.name == pin.name
            and cand.package.version == pin.version
            and cand.identity == key
            and (cand.installed or cand.repos & pool.available_repos)
            for cand, _ in pool.providers(pin.name)
        )
        if not offered:
            missing.append(pin)
            continue
        out.append(parse(f"{pin.name}><{pin.checksum}"))
    if missing:
        raise InstallError(
            f"the repositories no longer offer {len(missing)} locked package"
            f"{'s' if len(missing) != 1 else ''}: " + ", ".join(str(p) for p in missing),
            hint="update the lock file, or add the repositories it was made with",
            missing=tuple(missing),
        )
    return tuple(out)


def _check_locked(solution: Solution, pins: Sequence[LockPin]) -> None:
    """The solution must be exactly the lock's packages."""
    chosen = {c.new.package.name: c.new.package for c in solution.changes if c.new is not None}
    pinned = {p.name for p in pins}
    extra = sorted(n for n in chosen if n not in pinned)
    absent = sorted(n for n in pinned if n not in chosen)
    if extra or absent:
        parts = []
        if extra:
            parts.append("would also install " + ", ".join(str(chosen[n]) for n in extra))
        if absent:
            parts.append("would not install " + ", ".join(absent))
        raise InstallError(
            "the lock file does not match the configuration: " + "; ".join(parts),
            hint="update the lock file",
        )


def _repository_for(
    pool: Pool, cand: Candidate, repositories: dict[int, Repository]
) -> Repository | None:
    """apk_db_select_repo: the first available repository listing ``cand``, local ones
    preferred."""
    repos = cand.repos & pool.available_repos
    if repos & pool.local_repos:
        repos &= pool.local_repos
    if not repos:
        return None
    return repositories.get((repos & -repos).bit_length() - 1)


def _steps(pool: Pool, solution: Solution, repositories: dict[int, Repository]) -> list[Step]:
    return [
        Step(
            old=c.old.package if c.old is not None else None,
            new=c.new,
            repository=(_repository_for(pool, c.new, repositories) if c.new is not None else None),
            reinstall=c.reinstall,
            tag=pool.tag_name(c.new_tag).lstrip("@"),
        )
        for c in solution.changes
        if c.is_change
    ]


# --------------------------------------------------------------------------------------------
# the commit, into the tree


def _commit(
    tree: Tree,
    state: DatabaseState,
    steps: Sequence[Step],
    source: PackageSource,
    options: CommitOptions,
    request: InstallRequest,
    epoch: int,
) -> tuple[list[Package], tuple[str, ...]]:
    root = _TreeRoot(tree, epoch)
    # what apk finds configured in the root before it installs: keys and repositories
    # (a base image's identical files are left as they are, so its layer keeps them)
    root.mkdir("etc/apk/keys", "")
    assert options.keys is not None
    configured = [(f"etc/apk/keys/{name}", data) for name, data in options.keys.keys.items()]
    lines = "".join(line + "\n" for line in request.repositories)
    configured.append(("etc/apk/repositories", lines.encode()))
    for rel, data in sorted(configured):
        node = tree.get(root.real(rel))
        if node is None or node.kind != REGULAR or node.data != data:
            root.place(Node(REGULAR, 0o644, mtime=epoch, data=data), rel)

    plan = plan_commit(
        state,
        steps,
        source,
        options,
        ids=Ids(_read(tree, "etc/passwd"), _read(tree, "etc/group")),
        protected=_protected_rules(tree),
        local_digest=root.digest,
        write=_stage_entry,
    )
    arch_exists = tree.get(root.real("etc/apk/arch")) is not None
    db_files = database_files(
        state, plan.installed, plan.scripts, plan.triggers, options, arch_exists=arch_exists
    )
    for op in plan.operations:
        root.apply(op)
    root.mkdir(DB_DIR, "")
    root.mkdir("lib/apk/exec", "")
    root.mkdir("etc/apk/keys", "")
    root.mkdir("etc/apk", "")
    if tree.get("etc/apk/cache") is None:
        root.mkdir("var/cache/apk", "")
    for parent, path, mtime in _busybox_links(tree):
        root.mkdir(parent, "")
        root.symlink_if_absent("/bin/busybox", path, mtime)
    for rel, data in db_files:
        root.place(Node(REGULAR, 0o644, mtime=epoch, data=data), rel)
    return [ip.package for ip in plan.installed], plan.warnings


def _stage_entry(
    entry: TarEntry, uid: int, gid: int, link_source: object | None
) -> tuple[object, bool]:
    """The :data:`~alpenglow.apk.commit.EntryWriter` of the tree: a node per entry, as the
    disk commit would create the file (symlinks are ``0777``; extended attributes are kept
    on regular files only)."""
    if entry.type == _TAR_HARDLINK:
        assert isinstance(link_source, Node)
        return _Link(link_source), True
    kind = _TAR_KINDS.get(entry.type)
    if kind is None:  # pragma: no cover - check_entries lets no other type through
        raise CommitError(f"{entry.path}: unsupported entry type {entry.type!r}")
    if kind == REGULAR:
        node = Node(
            REGULAR,
            entry.mode & 0o7777,
            uid,
            gid,
            entry.mtime,
            data=entry.data,
            xattrs=tuple(entry.xattrs),
        )
    elif kind == SYMLINK:
        node = Node(SYMLINK, 0o777, uid, gid, entry.mtime, target=entry.linkname)
    else:
        node = Node(
            kind,
            entry.mode & 0o7777,
            uid,
            gid,
            entry.mtime,
            devmajor=entry.devmajor if kind != FIFO else 0,
            devminor=entry.devminor if kind != FIFO else 0,
        )
    return node, True


@dataclass(frozen=True, slots=True, eq=False)
class _Link:
    """A staged hard link: to wherever its target was placed (a copy if it was not)."""

    source: Node


def _acl_fields(acl: str) -> tuple[int, int, int]:
    fields = acl.split(":") if acl else []
    try:
        return int(fields[0]), int(fields[1]), int(fields[2], 8)
    except (IndexError, ValueError):
        return _DEFAULT_DIR


def _split(rel: str) -> tuple[str, str]:
    directory, _, name = rel.rpartition("/")
    return directory, name


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


class _TreeRoot:
    """The disk commit's journal operations, on a tree (nothing to undo: the tree is the
    caller's own copy, dropped on failure)."""

    def __init__(self, tree: Tree, mtime: int) -> None:
        self.tree = tree
        self.mtime = mtime
        self.placed: dict[int, str] = {}  # id(staged node) -> where it was put
        self.links: dict[str, set[str]] = {}  # hard link target -> the links to it
        for path, node in tree.walk():
            if node.kind == HARDLINK:
                self.links.setdefault(node.target, set()).add(path)

    def real(self, rel: str) -> str:
        """Where ``rel`` is, its directory resolved inside the tree (the last component is
        not followed)."""
        directory, name = _split(rel)
        return _join(self._resolve(directory), name)

    def _resolve(self, path: str) -> str:
        """:meth:`Tree.resolve`, quick for an existing directory (every parent of a node is
        a directory, so no symlink lies on its path)."""
        node = self.tree.get(path)
        if node is not None and node.kind == DIRECTORY:
            return path
        return self.tree.resolve(path)

    def digest(self, rel: str) -> str | None:
        """``Q1`` digest of what ``rel`` holds (content or link target); None when
        nothing is there, "" for a directory or device."""
        node = self.tree.get(self.real(rel))
        if node is None:
            return None
        if node.kind == HARDLINK:
            node = self.tree[node.target]
        if node.kind == SYMLINK:
            data = node.target.encode("utf-8", "surrogateescape")
        elif node.kind == REGULAR:
            data = node.data
        else:
            return ""
        return "Q1" + base64.b64encode(hashlib.sha1(data).digest()).decode()

    def apply(self, op: Operation) -> None:
        if op.kind == "mkdir":
            self.mkdir(op.path, op.acl)
        elif op.kind == "perms":
            self.set_perms(op.path, op.acl)
        elif op.kind == "place":
            self.place(op.staged, op.path)
        elif op.kind == "remove":
            self.remove(op.path)
        elif op.kind == "rmdir":
            self.rmdir(op.path)
        else:  # pragma: no cover - plan_commit makes no other kind
            raise ValueError(f"unknown operation {op.kind!r}")

    def mkdir(self, rel: str, acl: str) -> None:
        """Create directory ``rel`` and missing parents (``0755`` root) unless it exists;
        ``acl`` applies to ``rel`` itself when it is created."""
        real = self._resolve(rel)
        found = self.tree.get(real)
        if found is not None and found.kind == DIRECTORY:
            return
        current = ""
        parts = real.split("/") if real else []
        for i, part in enumerate(parts):
            current = _join(current, part)
            node = self.tree.get(current)
            if node is not None:
                if node.kind != DIRECTORY:
                    raise CommitError(f"{current}: exists in the root and is not a directory")
                continue
            uid, gid, mode = _acl_fields(acl) if i == len(parts) - 1 else _DEFAULT_DIR
            self.tree.add(current, Node(DIRECTORY, mode, uid, gid, self.mtime))

    def set_perms(self, rel: str, acl: str) -> None:
        real = self.tree.resolve(rel)
        node = self.tree.get(real)
        if node is None:
            return
        uid, gid, mode = _acl_fields(acl)
        if (node.uid, node.gid, node.mode) != (uid, gid, mode):
            self.tree.set_node(real, replace(node, uid=uid, gid=gid, mode=mode))

    def place(self, staged: object, rel: str) -> None:
        real = self.real(rel)
        old = self.tree.get(real)
        if old is not None:
            if old.kind == DIRECTORY:
                raise CommitError(f"{real}: a directory is in the way")
            self._detach(real, old)
        if isinstance(staged, _Link):
            source = staged.source
            where = self.placed.get(id(source))
            if where is not None and where != real and self.tree.get(where) is source:
                node = Node(
                    HARDLINK, source.mode, source.uid, source.gid, source.mtime, target=where
                )
                self.links.setdefault(where, set()).add(real)
            else:  # the target was not put in place (or was replaced since): a copy
                node = source
        else:
            assert isinstance(staged, Node)
            node = staged
            self.placed[id(staged)] = real
        self.tree.add(real, node)

    def remove(self, rel: str) -> None:
        real = self.real(rel)
        old = self.tree.get(real)
        if old is None:
            return
        if old.kind == DIRECTORY:
            raise CommitError(f"{real}: a directory is in the way")
        self._detach(real, old)
        self.tree.remove(real)

    def rmdir(self, rel: str) -> None:
        real = self.real(rel)
        node = self.tree.get(real)
        if node is None or node.kind != DIRECTORY or self.tree.children(real):
            return
        self.tree.remove(real)

    def symlink_if_absent(self, target: str, rel: str, mtime: int) -> None:
        real = self.real(rel)
        if self.tree.get(real) is None:
            self.tree.add(real, Node(SYMLINK, 0o777, mtime=mtime, target=target))

    def _detach(self, real: str, old: Node) -> None:
        """``real`` is about to be replaced or removed: hard links to it keep the old
        content (the first of them becomes the file), as links to an inode would."""
        if old.kind == HARDLINK:
            self.links.get(old.target, set()).discard(real)
        links = sorted(self.links.pop(real, ()))
        if not links:
            return
        first = links[0]
        self.tree.add(first, replace(self.tree[first], kind=REGULAR, target="", data=old.data))
        for other in links[1:]:
            self.tree.add(other, replace(self.tree[other], target=first))
        if len(links) > 1:
            self.links[first] = set(links[1:])


def _protected_rules(tree: Tree) -> tuple[Rule, ...]:
    """apk's built-in protected paths and those of ``etc/apk/protected_paths.d/*.list``."""
    directory = tree.resolve("etc/apk/protected_paths.d")
    texts = []
    if tree.is_dir(directory):
        for name in tree.children(directory):
            if name.endswith(".list"):
                data = _read(tree, _join(directory, name))
                if data is not None:
                    texts.append(data.decode("utf-8", "replace"))
    return rules_from_files(texts)


def _busybox_links(tree: Tree) -> list[tuple[str, str, int]]:
    """:func:`alpenglow.apk.scripts.busybox_links` for a tree: (parent, link, mtime) for
    every applet of ``etc/busybox-paths.d/busybox`` when the tree has ``bin/busybox``."""
    node = tree.get(tree.resolve("bin/busybox"))
    if node is not None and node.kind == HARDLINK:
        node = tree.get(node.target)
    if node is None or node.kind != REGULAR:
        return []
    data = _read(tree, BUSYBOX_PATHS)
    if data is None:
        return []
    paths = parse_busybox_paths(data.decode("utf-8", "replace"))
    return [(p.rpartition("/")[0], p, node.mtime) for p in paths]
