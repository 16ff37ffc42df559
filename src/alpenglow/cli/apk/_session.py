"""Opening a root the way ``apk_db_open`` does, and committing a solution the way
``apk_solver_commit_changeset`` prints it. Shared by ``add``, ``del``, ``upgrade``, ``fix``.

This is the edge: it reads the root's files, the repositories and the keys, feeds the pure
modules (:mod:`~alpenglow.apk.database`, :mod:`~alpenglow.apk.repository`,
:mod:`~alpenglow.apk.pool`, :mod:`~alpenglow.apk.solver`) in apk's order, and writes apk's
messages. Without ``--simulate`` the change set is applied by :mod:`alpenglow.apk.commit`
(staged, then committed atomically); a package source other than local files can be put in
``Session.extra["package_source"]``.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterable, Mapping, Sequence

from alpenglow._record import field, record
from alpenglow._typing import TYPE_CHECKING, cast
from alpenglow.apk.changeset import (
    Stats,
    Wrapper,
    change_lines,
    human_size,
    summary_line,
)
from alpenglow.apk.index_cache import default_directory
from alpenglow.apk.pool import Pool
from alpenglow.apk.repository import (
    Repository,
    RepositoryError,
    cache_file_name,
    is_network_url,
    open_index,
    parse_repositories,
    repository_files,
)
from alpenglow.apk.solver import Candidate, Change, Solution
from alpenglow.apk.version import compare
from alpenglow.errors import AlpenglowError, DatabaseError

if TYPE_CHECKING:
    from typing import Any, TextIO

    from alpenglow.apk.database import InstalledPackage
    from alpenglow.apk.dependency import Dependency
    from alpenglow.apk.index_table import IndexTable
    from alpenglow.apk.repository import Repository
    from alpenglow.cli.apk import ApkContext
    from alpenglow.cli.apk._remote import NetworkRepositories

__all__ = [
    "Failed",
    "Output",
    "Session",
    "apply_changes",
    "commit",
    "open_session",
    "print_errors",
    "solve_and_commit",
    "solve_session",
]


def __dir__() -> list[str]:
    return __all__


_MACHINE_ARCH = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv7l": "armv7",
    "armv6l": "armhf",
    "i686": "x86",
    "i386": "x86",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loongarch64",
}


def default_arch() -> str:
    """The architecture apk was built for; here: the machine's, in Alpine's spelling."""
    import platform  # only here: importing it compiles a dozen regular expressions

    machine = platform.machine()
    return _MACHINE_ARCH.get(machine, machine or "x86_64")


class Failed(Exception):
    """An applet must stop; the messages were printed. ``status`` is the exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Output:
    """apk's message channels: ``msg`` to stdout, ``ERROR:``/``WARNING:`` to stderr.

    Each write flushes the other stream first, so that stdout and stderr sent to one pipe
    keep apk's order. ``verbosity`` is apk's (1 by default, ``-q`` lowers, ``-v`` raises).
    """

    def __init__(self, stdout: TextIO, stderr: TextIO, verbosity: int) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.verbosity = verbosity
        self.errors = 0

    def msg(self, text: str) -> None:
        if self.verbosity >= 1:
            self.write(text + "\n")

    def write(self, text: str) -> None:
        self.stderr.flush()
        self.stdout.write(text)
        self.stdout.flush()

    def write_err(self, text: str) -> None:
        self.stdout.flush()
        self.stderr.write(text)
        self.stderr.flush()

    def warn(self, text: str) -> None:
        if self.verbosity >= 1:
            self.write_err(f"WARNING: {text}\n")

    def err(self, text: str) -> None:
        self.errors += 1
        self.write_err(f"ERROR: {text}\n")

    @property
    def width(self) -> int:
        """apk's wrapping width: the terminal's columns, or 50 when not a terminal."""
        try:
            if self.stdout.isatty():
                cols = os.get_terminal_size(self.stdout.fileno()).columns
                if cols > 25:
                    return cols
        except (OSError, ValueError):
            pass
        return 50


@record(frozen=False, slots=False)
class Session:
    """An opened root: options, the pool of packages, world and installed database."""

    ctx: ApkContext
    out: Output
    root: str
    pool: Pool
    world: list[Dependency]
    installed: list[InstalledPackage]
    arches: tuple[str, ...]
    simulate: bool
    force_broken_world: bool
    root_set: bool
    cache_active: bool = False
    unavailable: int = 0
    stale: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    universe: tuple[object, ...] | None = None
    """What the pool was made from, for :func:`~alpenglow.apk.index_cache.universe_key`
    (None: something in it cannot be named, so nothing learnt about it is kept)."""

    def available(self, cand: Candidate) -> bool:
        """Whether the package file can be had (apk's ``pkg_available`` in commit.c)."""
        return cand.cached or bool(cand.repos & self.pool.available_repos)

    def stats(self) -> Stats:
        dirs: set[str] = set()
        files: set[tuple[str, str]] = set()
        for ip in self.installed:
            for d in ip.dirs:
                path = d.path
                while True:
                    dirs.add(path)
                    if not path:
                        break
                    path = path.rpartition("/")[0]
                for f in d.files:
                    files.add((d.path, f.name))
        size = sum(c.package.installed_size for c in self.pool.installed())
        return Stats(len(self.pool.installed()), size, len(dirs), len(files))


def _opt(ctx: ApkContext, name: str, default: Any = None) -> Any:
    return getattr(ctx.opts, name, default)


def _at(base: str, rel: str) -> str:
    """``base / rel`` as a string: the paths of a root are joined with :mod:`os.path`, so
    that opening one does not pay for importing :mod:`pathlib`."""
    return os.path.join(base, rel)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return None


def _errno_text(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def open_session(ctx: ApkContext, *, writable: bool = True) -> Session:
    """Open the root named by the global options (``apk_db_open``).

    Prints apk's messages; raises :class:`Failed` when apk would stop.
    """
    verbosity = 1 + int(_opt(ctx, "verbose", 0) or 0) - int(_opt(ctx, "quiet", 0) or 0)
    out = Output(ctx.stdout, ctx.stderr, verbosity)
    root_opt = str(_opt(ctx, "root", "/") or "/")
    root = root_opt
    root_set = root_opt != "/"
    simulate = bool(_opt(ctx, "simulate", False))
    initdb = bool(_opt(ctx, "initdb", False))
    force = bool(_opt(ctx, "force", False))
    force_broken_world = force or bool(_opt(ctx, "force_broken_world", False))
    no_network = bool(_opt(ctx, "no_network", False))
    no_cache = bool(_opt(ctx, "no_cache", False))
    allow_untrusted = bool(_opt(ctx, "allow_untrusted", False))

    # architectures
    arch_opt = list(_opt(ctx, "arch", []) or [])
    arches: list[str] = []
    if arch_opt and root_set:
        for raw in arch_opt:
            a = raw.strip()
            if a and a not in arches:
                arches.append(a)
    else:
        data = _read(_at(root, "etc/apk/arch"))
        if data is not None:
            for line in data.decode("utf-8", "replace").split("\n"):
                a = line.strip()
                if a and a not in arches:
                    arches.append(a)
    if not arches:
        arches.append(default_arch())

    def fail(msg: str, reason: str) -> Failed:
        out.err(f"{msg}: {reason}")
        out.err(f"Failed to open apk database: {reason}")
        return Failed(1)

    db_dir = _at(root, "lib/apk/db")
    if writable and not initdb and not os.path.isdir(db_dir):
        raise fail("Unable to lock database", "No such file or directory")

    # the package cache
    cache_active = False
    cache_dir: str | None = None
    if not no_cache:
        cache_dir = _at(root, str(_opt(ctx, "cache_dir", None) or "etc/apk/cache"))
        cache_active = os.path.isdir(cache_dir)
    root_tmpfs = _opt(ctx, "root_tmpfs", None)
    permanent = not bool(root_tmpfs)

    pool = Pool(arches)
    # everything the pool is made from, for the discovery closures kept between runs
    universe: list[object] | None = ["arch", *arches]

    # world, then the installed database
    world: list[Dependency] = []
    installed: list[InstalledPackage] = []
    if not os.path.isdir(db_dir) and not initdb:
        raise fail("Unable to read database", "No such file or directory")
    world_data = _read(_at(root, "etc/apk/world"))
    if world_data is None and not initdb:
        raise fail("Unable to read database", "No such file or directory")
    try:
        # an empty world or database needs no parsing (nor the parser's import time)
        if world_data:
            from alpenglow.apk.database import parse_world

            world = list(parse_world(world_data, source=_at(root, "etc/apk/world")))
        pool.note_world(world)
        for d in world:
            pool.tag_id(d.tag)
        installed_data = _read(_at(db_dir, "installed"))
        if universe is not None:
            universe += ["installed", installed_data]
        if installed_data:
            from alpenglow.apk.database import parse_installed

            installed = parse_installed(installed_data, source=_at(db_dir, "installed"))
    except DatabaseError as exc:
        out.err(str(exc))
        raise fail("Unable to read database", "v2 database format error") from None
    bad = pool.add_installed(
        [ip.package for ip in installed],
        broken=[(ip.broken_files, ip.broken_script) for ip in installed],
    )
    if bad:
        out.err(f"{_at(db_dir, 'installed')}: package {bad[0]!r} has no valid C: identity")
        raise fail("Unable to read database", "v2 database format error")

    # non-repository packages remembered in the cache
    if cache_active and not permanent and cache_dir is not None:
        data = _read(_at(cache_dir, "installed"))
        if universe is not None:
            universe += ["cached", data]
        if data is not None:
            from alpenglow.apk.index import parse_index

            try:
                pool.add_cached(parse_index(data, source=_at(cache_dir, "installed")))
            except AlpenglowError as exc:
                out.warn(f"opening {_at(cache_dir, 'installed')}: {exc}")

    # repositories: command line, then the configuration files
    arch = arches[0]
    keys = _keyring(ctx, root)
    variables: dict[str, str] = {}
    repos = []
    for line in list(_opt(ctx, "repositories", []) or []):
        found, warnings = parse_repositories(
            line, arch, source="<command line>", allow_keywords=False, variables=variables
        )
        for w in warnings:
            out.warn(w)
        repos += found
    repo_file = _opt(ctx, "repositories_file", None)
    if repo_file:
        try:
            with open(str(repo_file), "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
        except OSError as exc:
            out.err(f"failed to read repositories: {repo_file}: {_errno_text(exc)}")
        else:
            found, warnings = parse_repositories(
                text, arch, source=str(repo_file), variables=variables
            )
            for w in warnings:
                out.warn(w)
            repos += found
    else:
        for source, path in repository_files(root):
            data = _read(path)
            if data is None:
                continue
            found, warnings = parse_repositories(
                data.decode("utf-8", "replace"), arch, source=source, variables=variables
            )
            for w in warnings:
                out.warn(w)
            repos += found

    unavailable = 0
    stale = 0
    # parsed indexes are cached per user; this is not apk's package cache (--no-cache)
    index_cache = default_directory()
    # http(s) repositories go through the shared download cache; the machinery for them is
    # imported only when one is configured (it costs start-up time every local run would pay)
    network: NetworkRepositories | None = None
    if any(is_network_url(repo.url) for repo in repos):
        from alpenglow.cli.apk._remote import NetworkRepositories

        network = NetworkRepositories(
            ctx,
            root,
            out.warn,
            writable=writable,
            keys=keys,
            allow_untrusted=allow_untrusted,
            index_cache=index_cache,
        )
    descriptions: list[tuple[Repository, str | None]] = []
    for repo in repos:
        remote = repo.remote
        index_path = repo.local_path
        action = "opening"
        if remote and not no_cache and cache_dir is not None:
            action = "opening from cache"
            index_path = _at(cache_dir, cache_file_name(repo.url))
        elif remote:
            action = "fetching"
        packages: IndexTable | None = None
        description = None
        digest: str | None = None
        if network is not None and network.handles(repo):  # http(s): apk's warnings
            loaded = network.load(repo)
            if loaded is not None:
                packages = loaded.table
                description = loaded.description
                digest = loaded.digest
        elif index_path is None:
            out.warn(f"{action} {repo.url}: Protocol not supported")
        else:
            try:
                loaded = open_index(
                    index_path,
                    url=repo.url,
                    keys=keys,
                    allow_untrusted=allow_untrusted,
                    cache_dir=index_cache,
                )
            except RepositoryError as exc:
                out.warn(f"{action} {repo.url}: {exc.reason}")
            else:
                packages = loaded.table
                description = loaded.description
                digest = loaded.digest
        if packages is None and remote and not is_network_url(repo.url):
            unavailable += 1
        descriptions.append((repo, description))
        available = not remote or not no_network
        if universe is not None:
            if packages is not None and not digest:
                universe = None  # packages that no digest names
            else:
                universe += ["repo", repo.url, repo.tag, available, not remote, digest]
        pool.add_repository(
            repo.url,
            packages,
            tags=(repo.tag,),
            available=available,
            local=not remote,
        )
    pool.finish()
    # The pool and its records live until the process ends: take them out of the cyclic
    # collector's sight, so that collections during and after the solve stay small.
    gc.freeze()
    for w in pool.compat.warnings():
        out.warn(w)
    if network is not None:
        unavailable += network.unavailable
        stale += network.stale
    extra: dict[str, object] = {"repositories": descriptions}
    if network is not None and network.used:
        extra["package_source"] = network.package_source()
    return Session(
        ctx=ctx,
        out=out,
        root=root,
        pool=pool,
        world=world,
        installed=installed,
        arches=tuple(arches),
        simulate=simulate,
        force_broken_world=force_broken_world,
        root_set=root_set,
        cache_active=cache_active,
        unavailable=unavailable,
        stale=stale,
        extra=extra,
        universe=tuple(universe) if universe is not None else None,
    )


def _keyring(ctx: ApkContext, root: str) -> object:
    from alpenglow.apk.signing import Keyring

    keys_dir = _opt(ctx, "keys_dir", None)
    try:
        if keys_dir:
            return Keyring.from_directory(_at(root, str(keys_dir)))
        return Keyring.from_directory(_at(root, "etc/apk/keys"), _at(root, "lib/apk/keys"))
    except AlpenglowError:
        return Keyring()


# --------------------------------------------------------------------------------------
# committing


def check_world(session: Session, world: Sequence[Dependency]) -> bool:
    """apk_db_check_world: warn about world tags that no repository provides."""
    if session.force_broken_world:
        return True
    bad = 0
    pool = session.pool
    for dep in world:
        if not dep.tag:
            continue
        tag = pool.tag_id(dep.tag)
        if tag < len(pool.tag_repos) and pool.tag_repos[tag]:
            continue
        session.out.warn(
            f"The repository tag for world dependency '{dep.name}@{dep.tag}' does not exist"
        )
        bad += 1
    return bad == 0


def _dump(
    session: Session,
    changes: Sequence[Change],
    keep: object,
    details: bool,
    title: str,
) -> int:
    out = session.out
    match = [c for c in changes if keep(c)]  # type: ignore[operator]
    if not match:
        return 0
    w = Wrapper(out.width)
    w.group(f"{title}:\n", 2)
    text = w.end()
    out.write(text)
    if details:
        for c in match:
            shown = c.new if c.new is not None else c.old
            assert shown is not None
            name = shown.package.name + session.pool.tag_name(c.new_tag)
            if not c.reinstall and c.new is not None and c.old is not None:
                out.write(f"  {name} ({c.old.package.version} -> {c.new.package.version})\n")
            else:
                ver = (c.old if c.old is not None else c.new).package.version  # type: ignore[union-attr]
                out.write(f"  {name} ({ver})\n")
    else:
        w = Wrapper(out.width)
        w.x, w.indent = 0, 2
        for c in match:
            shown = c.new if c.new is not None else c.old
            assert shown is not None
            w.item(shown.package.name)
        out.write(w.end())
    return len(match)


def _name_key(c: Change) -> tuple[str, str]:
    shown = c.old if c.old is not None else c.new
    assert shown is not None
    n = shown.package.name
    return (n.lower(), n)


def commit(
    session: Session,
    solution: Solution,
    *,
    performing_preupgrade: bool = False,
) -> int:
    """Show (and, one day, apply) a solution: apk_solver_commit_changeset. Returns the
    number of errors (negative when apk refuses to go on)."""
    out = session.out
    world = solution.world
    if not check_world(session, world):
        out.err("Not committing changes due to missing repository tags.")
        return -1
    changes = solution.changes
    pool = session.pool
    verbosity = out.verbosity
    interactive = bool(_opt(session.ctx, "interactive", False))
    if verbosity > 1 or interactive:
        details = verbosity >= 2
        ordered = sorted(changes, key=_name_key)

        def non_repo(c: Change) -> bool:
            if c.new is None or pool.has_repository_providers(c.new.package.name):
                return False
            return details or not c.new.package.name.startswith(".")

        _dump(
            session,
            ordered,
            non_repo,
            False,
            "NOTE: Consider running apk upgrade with --prune and/or --available.\n"
            "The following packages are no longer available from a repository",
        )
        r = _dump(
            session,
            ordered,
            lambda c: c.new is None,
            details,
            "The following packages will be REMOVED",
        )
        r += _dump(
            session,
            ordered,
            lambda c: (
                c.new is not None
                and c.old is not None
                and compare(c.new.package.version, c.old.package.version) < 0
            ),
            details,
            "The following packages will be DOWNGRADED",
        )
        if r or interactive or verbosity > 2:
            _dump(
                session,
                ordered,
                lambda c: c.old is None,
                details,
                "The following NEW packages will be installed",
            )
            _dump(
                session,
                ordered,
                lambda c: (
                    c.new is not None
                    and c.old is not None
                    and c.new is not c.old
                    and compare(c.new.package.version, c.old.package.version) >= 0
                ),
                details,
                "The following packages will be upgraded",
            )
            _dump(
                session,
                ordered,
                lambda c: c.reinstall,
                details,
                "The following packages will be reinstalled",
            )
            download = 0
            size_diff = 0
            for c in changes:
                if c.new is not None:
                    size_diff += c.new.package.installed_size
                    if c.new is not c.old and not c.new.repos & pool.local_repos:
                        download += c.new.package.size
                if c.old is not None:
                    size_diff -= c.old.package.installed_size
            if download:
                out.msg(f"Need to download {human_size(download)} of packages.")
            what = (
                "disk space will be freed"
                if size_diff < 0
                else "additional disk space will be used"
            )
            out.msg(f"After this operation, {human_size(abs(size_diff))} of {what}.")
    for line in change_lines(changes, pool.tag_name, session.available):
        out.msg(line)
    errors = 0
    if not session.simulate:
        errors = apply_changes(session, solution)
        if errors < 0:
            return errors
    if not performing_preupgrade:
        stats = session.stats()
        if session.simulate or session.extra.get("committed"):
            stats = stats.after(changes)
        out.msg(summary_line(stats, verbose=verbosity > 1, errors=errors))
    return errors


def _repository_for(session: Session, cand: Candidate) -> Repository | None:
    """apk_db_select_repo: the first available repository listing ``cand``, local ones
    preferred."""
    from alpenglow.apk.repository import Repository

    pool = session.pool
    repos = cand.repos & pool.available_repos
    if repos & pool.local_repos:
        repos &= pool.local_repos
    if not repos:
        return None
    index = (repos & -repos).bit_length() - 1
    url = pool.repositories[index].url
    head, _, last = url.rpartition("/")
    base = head.rpartition("/")[0] if last == "APKINDEX.tar.gz" else head
    return Repository(url, base)


def apply_changes(session: Session, solution: Solution) -> int:
    """Change the root for real (alpenglow.apk.commit); prints apk's errors and returns
    their number (the root is unchanged when it is not 0)."""
    from alpenglow.apk.commit import (
        CommitOptions,
        LocalPackageSource,
        PackageSource,
        Step,
        load_database,
    )
    from alpenglow.apk.commit import commit as commit_root
    from alpenglow.apk.signing import Keyring

    ctx = session.ctx
    out = session.out
    pool = session.pool
    steps = []
    for c in solution.changes:
        if not c.is_change:
            continue
        steps.append(
            Step(
                old=c.old.package if c.old is not None else None,
                new=c.new,
                repository=_repository_for(session, c.new) if c.new is not None else None,
                reinstall=c.reinstall,
                tag=pool.tag_name(c.new_tag).lstrip("@"),
            )
        )
    source = session.extra.get("package_source")
    if source is None:
        source = LocalPackageSource()
    keys = _keyring(ctx, session.root)
    force = bool(_opt(ctx, "force", False))
    options = CommitOptions(
        world=tuple(solution.world),
        arches=session.arches,
        write_arch=bool(_opt(ctx, "arch", [])) and session.root_set,
        initdb=bool(_opt(ctx, "initdb", False)),
        force_overwrite=force or bool(_opt(ctx, "force_overwrite", False)),
        allow_untrusted=bool(_opt(ctx, "allow_untrusted", False)),
        keys=keys if isinstance(keys, Keyring) else None,
        chown=not bool(_opt(ctx, "no_chown", False)),
        run_scripts=bool(_opt(ctx, "scripts", False)) and not bool(_opt(ctx, "no_scripts", False)),
        create_cache_dir=not bool(_opt(ctx, "no_cache", False)),
        clean_protected=bool(_opt(ctx, "clean_protected", False)),
    )
    if options.run_scripts and session.arches[0] != default_arch():
        out.err(
            f"--scripts: cannot run {session.arches[0]} scripts on this {default_arch()} machine"
        )
        return -1
    try:
        prefetch = getattr(source, "prefetch", None)
        if prefetch is not None:  # downloads in parallel before the commit starts
            prefetch(
                [
                    (s.new, s.repository)
                    for s in steps
                    if s.new is not None
                    and s.repository is not None
                    and s.new.package.installed_size != 0
                    and (s.old is None or s.old.checksum != s.new.package.checksum or s.reinstall)
                ]
            )
        state = load_database(session.root)
        result = commit_root(
            session.root,
            state,
            steps,
            cast(PackageSource, source),
            options,
            progress=out.msg,
        )
    except KeyboardInterrupt:
        out.err("interrupted; the root was left unchanged")
        raise Failed(130) from None
    except AlpenglowError as exc:
        out.err(exc.message)
        if exc.hint:
            out.err(exc.hint)
        return 1
    for w in result.warnings:
        out.warn(w)
    for e in result.script_errors:
        out.err(e)
    session.installed = list(result.installed)
    session.extra["committed"] = True
    return len(result.script_errors)


def print_errors(session: Session, solution: Solution) -> None:
    """apk_solver_print_errors: ``ERROR: unable to select packages:`` and the report."""
    from alpenglow.apk.problems import report

    session.out.err("unable to select packages:")
    session.out.write_err(report(session.pool, solution, width=session.out.width))


def solve_session(
    session: Session,
    world: Sequence[Dependency],
    flags: int = 0,
    *,
    name_flags: Mapping[str, tuple[int, int]] | None = None,
    performing_preupgrade: bool = False,
) -> Solution:
    """:func:`alpenglow.apk.solver.solve` over the session's pool, with the discovery
    closures that earlier runs over the same packages kept (and any new ones kept)."""
    from alpenglow.apk.index_cache import load_closures, save_closures, universe_key
    from alpenglow.apk.solver import solve

    parts = session.universe if not session.pool.extended else None
    key = universe_key(parts) if parts is not None else None
    directory = default_directory() if key is not None else None
    closures = load_closures(directory, key) if key is not None else None
    known = len(closures) if closures is not None else 0
    if world:
        # the first root (in the solver's order) is walked with nothing seen: unless its
        # closure is known, that walk reaches most of the packages; make them all at once
        first = min(world, key=lambda d: (d.name.lower(), d.name)).name
        if closures is None or first not in closures:
            session.pool.read_all()
    solution = solve(
        session.pool,
        world,
        flags,
        name_flags=name_flags,
        force_broken_world=session.force_broken_world and not performing_preupgrade,
        performing_preupgrade=performing_preupgrade,
        closures=closures,
    )
    if closures is not None and key is not None and len(closures) != known:
        save_closures(directory, key, closures)
    return solution


def solve_and_commit(
    session: Session,
    world: Sequence[Dependency],
    flags: int = 0,
    *,
    name_flags: dict[str, tuple[int, int]] | None = None,
) -> int:
    """apk_solver_commit: check the world's tags, solve, then commit or report."""
    if not check_world(session, world):
        session.out.err("Not committing changes due to missing repository tags.")
        return -1
    solution = solve_session(session, world, flags, name_flags=name_flags)
    if solution.errors:
        print_errors(session, solution)
        return solution.errors
    return commit(session, solution)


def exit_status(r: int) -> int:
    """apk's exit status for an applet's result."""
    if r < 0:
        return 1
    return min(r, 99)


def names_in_world(deps: Iterable[Dependency]) -> set[str]:
    return {d.name for d in deps}


def stdout_isatty() -> bool:
    return sys.stdout.isatty()
