"""Reading a root for apk's read-only applets (the edge: this module touches the disk).

:func:`open_catalog` does what ``apk_db_open`` does for ``info``, ``search``, ``list``,
``policy``, ``version`` and ``why``: it reads the world, the installed database and its
triggers, then each repository's index, in apk's order and as the applet's open flags ask
(:class:`OpenOptions`), and returns a :class:`~alpenglow.apk.catalog.Catalog`. Parsing is
done by the pure modules (:mod:`~alpenglow.apk.database`, :mod:`~alpenglow.apk.repository`,
:mod:`~alpenglow.apk.index`); repositories that cannot be read are reported through
``warn`` with apk's wording, and a root whose database cannot be read raises
:class:`~alpenglow.errors.DatabaseError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from alpenglow._record import record
from alpenglow.apk.catalog import Catalog, RepositoryIndex
from alpenglow.apk.database import InstalledPackage, parse_installed, parse_world
from alpenglow.apk.dependency import Dependency
from alpenglow.apk.index import Package
from alpenglow.apk.pool import Compat, normalize_index_package
from alpenglow.apk.repository import (
    Repository,
    RepositoryError,
    cache_file_name,
    load_index,
    parse_repositories,
    repository_files,
)
from alpenglow.apk.solver import identity_key
from alpenglow.errors import AlpenglowError, DatabaseError

__all__ = ["OpenOptions", "open_catalog", "parse_triggers", "printable_url"]


def __dir__() -> list[str]:
    return __all__


@record
class OpenOptions:
    """What to read from a root, and how (apk's open flags and global options).

    ``world`` and ``installed`` read ``etc/apk/world`` and ``lib/apk/db``;
    ``system_repositories`` the repositories files (or ``repositories_file``);
    ``command_line_repositories`` the ``-X`` lines in ``repositories``.
    """

    root: Path
    arches: tuple[str, ...] = ("x86_64",)
    world: bool = True
    installed: bool = True
    system_repositories: bool = True
    command_line_repositories: bool = True
    repositories: tuple[str, ...] = ()
    repositories_file: str | None = None
    no_network: bool = False
    no_cache: bool = False
    cache_dir: str | None = None
    allow_untrusted: bool = False
    keys_dir: str | None = None
    download_cache: Path | None = None
    """The shared download cache (:mod:`alpenglow.apk.cache`) that ``http(s)`` indexes are
    read from; read-only applets never refresh them. None: such indexes are unavailable."""


def _errno_text(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _read(path: str | os.PathLike[str]) -> bytes | None:
    """The file's bytes, None if it does not exist; other failures raise DatabaseError."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DatabaseError(f"Unable to read database: {path}: {_errno_text(exc)}") from None


def parse_triggers(data: bytes | str) -> dict[bytes, tuple[str, ...]]:
    """``lib/apk/db/triggers``: ``Q1<identity> glob glob...`` per line, by identity key.

    >>> parse_triggers("Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA= /usr/share/man /bin\\n")
    {b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00': ('/usr/share/man', '/bin')}
    """  # noqa: E501
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    found: dict[bytes, tuple[str, ...]] = {}
    for line in text.split("\n"):
        words = line.split()
        if not words:
            continue
        key = identity_key(words[0])
        if key:
            found[key] = found.get(key, ()) + tuple(words[1:])
    return found


_PASSWORD = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*):[^/@]*@")


def printable_url(repo: Repository, arch: str) -> str:
    """The address apk prints for a repository: the base URL of a ``URL/ARCH/APKINDEX``
    repository, the index URL itself otherwise, with any password masked.

    >>> printable_url(Repository("https://u:pw@h/main/x86_64/APKINDEX.tar.gz", "https://u:pw@h/main"), "x86_64")
    'https://u:*@h/main'
    """  # noqa: E501
    url = repo.url
    for index_file in ("APKINDEX.tar.gz", "Packages.adb"):
        if url == f"{repo.base}/{arch}/{index_file}":
            url = repo.base
            break
    return _PASSWORD.sub(r"\1:*@", url)


def _configured(options: OpenOptions, warn: Callable[[str], None]) -> list[Repository]:
    arch = options.arches[0]
    variables: dict[str, str] = {}
    repos: list[Repository] = []

    def add(text: str, source: str, *, keywords: bool = True) -> None:
        found, warnings = parse_repositories(
            text, arch, source=source, allow_keywords=keywords, variables=variables
        )
        for message in warnings:
            warn(message)
        repos.extend(found)

    if options.command_line_repositories:
        for line in options.repositories:
            add(line, "<command line>", keywords=False)
    if not options.system_repositories:
        return repos
    if options.repositories_file:
        try:
            data = Path(options.repositories_file).read_bytes()
        except OSError as exc:
            raise DatabaseError(
                f"failed to read repositories: {options.repositories_file}: {_errno_text(exc)}"
            ) from None
        add(data.decode("utf-8", "replace"), options.repositories_file)
        return repos
    for source, path in repository_files(options.root):
        content = _read(path)
        if content is not None:
            add(content.decode("utf-8", "replace"), source)
    return repos


def _keyring(options: OpenOptions) -> object:
    from alpenglow.apk.signing import Keyring

    root = options.root
    try:
        if options.keys_dir:
            return Keyring.from_directory(root / options.keys_dir)
        return Keyring.from_directory(root / "etc/apk/keys", root / "lib/apk/keys")
    except AlpenglowError:
        return Keyring()


def _load_repositories(
    options: OpenOptions, compat: Compat, warn: Callable[[str], None]
) -> list[RepositoryIndex]:
    repos = _configured(options, warn)
    if not repos:
        return []
    keys = _keyring(options)
    cache_dir = None
    if not options.no_cache:
        cache_dir = options.root / (options.cache_dir or "etc/apk/cache")
        if not cache_dir.is_dir():
            cache_dir = None
    arch = options.arches[0]
    loaded: list[RepositoryIndex] = []
    for repo in repos:
        remote = repo.remote
        path = repo.local_path
        action = "opening"
        if remote and cache_dir is not None:
            action = "opening from cache"
            path = str(cache_dir / cache_file_name(repo.url))
        elif remote:
            action = "fetching"
        description = ""
        packages: list[Package] | None = None
        data: bytes | None = None
        if path is None and options.download_cache is not None and not options.no_cache:
            from alpenglow.apk.cache import Cache

            action = "opening from cache"
            downloads = Cache(options.download_cache)
            data = downloads.read(downloads.index_entry(repo.url))
            if data is None:
                warn(f"{action} {repo.url}: No such file or directory")
        if path is None and data is None:
            if options.download_cache is None or options.no_cache:
                warn(f"{action} {repo.url}: Protocol not supported")
        else:
            try:
                description, found = load_index(
                    path,
                    url=repo.url,
                    keys=keys,
                    allow_untrusted=options.allow_untrusted,
                    data=data,
                )
                packages = []
                for pkg in found:
                    assert isinstance(pkg, Package)
                    packages.append(normalize_index_package(pkg, compat)[0])
            except RepositoryError as exc:
                warn(f"{action} {repo.url}: {exc.reason}")
        loaded.append(
            RepositoryIndex(
                printable_url(repo, arch),
                tuple(packages or ()),
                tag=repo.tag or "",
                description=description,
                loaded=packages is not None,
                available=not (remote and options.no_network),
                index_url=repo.url,
            )
        )
    return loaded


def open_catalog(options: OpenOptions, warn: Callable[[str], None]) -> Catalog:
    """Read the root as apk's open flags in ``options`` ask; see the module docstring."""
    root = options.root
    if not root.is_dir():
        reason = "Not a directory" if root.exists() else "No such file or directory"
        raise DatabaseError(f"Unable to open root: {root}: {reason}")
    compat = Compat()
    world: tuple[Dependency, ...] = ()
    installed: list[InstalledPackage] = []
    triggers: dict[bytes, tuple[str, ...]] = {}
    if options.world or options.installed:
        db_dir = root / "lib/apk/db"
        if not db_dir.is_dir():
            raise DatabaseError(f"Unable to read database: {db_dir}: No such file or directory")
        if options.world:
            world_path = root / "etc/apk/world"
            data = _read(world_path)
            if data is None:
                raise DatabaseError(
                    f"Unable to read database: {world_path}: No such file or directory"
                )
            world = parse_world(data, source=str(world_path))
        if options.installed:
            data = _read(db_dir / "installed")
            if data is not None:
                source = db_dir / "installed"
                for record in parse_installed(data, source=str(source)):
                    if not identity_key(record.package.checksum):
                        raise DatabaseError(
                            f"{source}: package {record.package.name!r} has no valid C: identity"
                        )
                    pkg, _broken = normalize_index_package(record.package, compat)
                    installed.append(InstalledPackage(pkg, record.dirs))
            data = _read(db_dir / "triggers")
            if data is not None:
                triggers = parse_triggers(data)
    repositories = _load_repositories(options, compat, warn)
    for message in compat.warnings():
        warn(message)
    return Catalog(world=world, installed=installed, repositories=repositories, triggers=triggers)
