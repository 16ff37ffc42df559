"""What apk's read-only applets see of a root: names, packages and where they come from.

apk opens a root by reading, in this order, the world, the installed database and then each
repository's index; a package met twice (same identity) is one package that is installed
and/or listed in several repositories. Every name it meets (package names, and the names in
dependencies, provides, install_if and replaces) goes into a table whose walk order decides
the order of reverse dependencies. :class:`Catalog` rebuilds exactly that state from parsed
records, so ``info``, ``search``, ``list``, ``policy``, ``version`` and ``why`` can answer
in apk's order. It is pure: loading the records from a root is :mod:`alpenglow.apk.state`.

:meth:`Catalog.query` is apk-tools 3's package query (``apk_query_matches``), which
``info``, ``search`` and ``policy`` share.

>>> from alpenglow.apk.index import parse_index
>>> text = "C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\\nP:a\\nV:1\\nD:b\\n\\n"
>>> text += "C:Q1BBBBBBBBBBBBBBBBBBBBBBBBBBB=\\nP:b\\nV:2\\n\\n"
>>> repo = RepositoryIndex("test:///r.tar.gz", parse_index(text))
>>> cat = Catalog(repositories=[repo])
>>> [str(e) for e in cat.query(["b"], QuerySpec()).packages]
['b-2']
>>> [str(e) for e, _dep in cat.reverse_dependencies(cat.query(["b"], QuerySpec()).packages[0])]
['a-1']
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum

from alpenglow._record import record
from alpenglow.apk import version
from alpenglow.apk.database import InstalledPackage
from alpenglow.apk.dependency import Dependency
from alpenglow.apk.index import Package
from alpenglow.apk.pool import HASH_BUCKETS, name_hash
from alpenglow.apk.solver import identity_key, version_match
from alpenglow.apk.version import ANY, CHECKSUM, Op

__all__ = [
    "Catalog",
    "Entry",
    "Field",
    "Provider",
    "QueryResult",
    "QuerySpec",
    "RepositoryIndex",
    "RepositoryInfo",
    "compare_display",
    "compile_glob",
    "sort_display",
    "sort_names",
]


def __dir__() -> list[str]:
    return __all__


# --------------------------------------------------------------------------------------
# Inputs


@record
class RepositoryIndex:
    """One repository line and what its index holds, as the catalog needs it.

    ``url`` is the address apk prints for it (the line's URL, passwords masked); ``tag`` the
    pinning tag without ``@`` ("" when untagged). A repository that could not be opened has
    ``loaded=False``; a remote one under ``--no-network`` has ``available=False`` (its
    packages are known, but not installable).
    """

    url: str
    packages: tuple[Package, ...] | list[Package] = ()
    tag: str = ""
    description: str = ""
    loaded: bool = True
    available: bool = True
    index_url: str = ""
    """The index file's URL, which identifies the repository ("" means ``url``)."""


# --------------------------------------------------------------------------------------
# The catalog's own records


@record(eq=False)
class Entry:
    """A package of the catalog (apk merges equal identities into one).

    ``index`` is the load order; ``repos`` has bit ``i`` set when repository ``i`` lists
    the package; ``installed`` is the database record for an installed package. Entries
    compare by identity, as apk compares package pointers.
    """

    package: Package
    index: int
    repos: int = 0
    installed: InstalledPackage | None = None
    repository_tag: int = 0
    """For an installed package, the id of the tag it was installed from (``s:``)."""
    triggers: tuple[str, ...] = ()
    """For an installed package, its trigger globs (``lib/apk/db/triggers``)."""

    @property
    def name(self) -> str:
        return self.package.name

    @property
    def version(self) -> str:
        return self.package.version

    @property
    def is_installed(self) -> bool:
        return self.installed is not None

    def __str__(self) -> str:
        return f"{self.package.name}-{self.package.version}"


@record
class Provider:
    """A package providing a name: itself (at its version) or through ``p:`` (at the
    provided version, None for a virtual provide)."""

    entry: Entry
    version: str | None


@record
class RepositoryInfo:
    """A repository after merging lines with the same URL (apk keeps one, with all tags)."""

    url: str
    description: str
    tag_mask: int
    loaded: bool
    available: bool


class Field(Enum):
    """Package fields a query can match (apk's ``--match``)."""

    NAME = "name"
    PROVIDES = "provides"
    DEPENDS = "depends"
    INSTALL_IF = "install-if"
    DESCRIPTION = "description"
    ORIGIN = "origin"
    LICENSE = "license"
    URL = "url"
    MAINTAINER = "maintainer"
    ARCH = "arch"


@record
class QuerySpec:
    """How :meth:`Catalog.query` matches (apk's ``struct apk_query_spec``).

    ``match`` empty means apk's default (the name only). ``search`` wraps every pattern in
    ``*...*``. Without ``all_matches`` only apk's "best" package per name is kept: walking
    the providers in load order, an installed package or a newer version replaces the
    previous pick. ``empty_matches_all`` makes no patterns list every package.
    """

    match: frozenset[Field] = frozenset()
    search: bool = False
    all_matches: bool = False
    empty_matches_all: bool = False
    installed: bool = False
    available: bool = False
    upgradable: bool = False
    orphaned: bool = False


@record
class QueryResult:
    """Matching packages in display order, and how many exact patterns matched nothing."""

    packages: tuple[Entry, ...]
    unmatched: int


# --------------------------------------------------------------------------------------
# Ordering


def _name_key(name: str) -> tuple[bytes, bytes]:
    raw = name.encode()
    return raw.lower(), raw


def compare_display(a: Entry, b: Entry) -> int:
    """apk's display order: name (case-insensitively, then bytewise), then version."""
    if a.package.name != b.package.name:
        ka, kb = _name_key(a.package.name), _name_key(b.package.name)
        return -1 if ka < kb else 1
    return version.compare(a.package.version, b.package.version)


def sort_display(entries: Iterable[Entry]) -> list[Entry]:
    """``entries`` in apk's display order (stable for equal name and version)."""
    return sorted(entries, key=functools.cmp_to_key(compare_display))


def sort_names(names: Iterable[str]) -> list[str]:
    """Names in apk's display order."""
    return sorted(names, key=_name_key)


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """A shell glob as apk matches names with it: ``fnmatch(..., FNM_CASEFOLD)``."""
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def _has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


# --------------------------------------------------------------------------------------
# The catalog


class _Draft:
    """A package while the catalog is being built (repositories still being added)."""

    __slots__ = ("key", "package", "record", "repos", "tag")

    def __init__(self, package: Package, key: bytes) -> None:
        self.package = package
        self.key = key
        self.repos = 0
        self.record: InstalledPackage | None = None
        self.tag = 0


class Catalog:
    """apk's database as the read-only applets see it (see the module docstring).

    ``world`` is read first, then the ``installed`` records (database order), then each
    repository in order. Any of them may be empty, as for apk's open flags that skip them.
    ``triggers`` maps a package identity (:func:`~alpenglow.apk.solver.identity_key`) to
    its trigger globs. Packages without a valid identity are left out, as apk refuses them.
    """

    def __init__(
        self,
        *,
        world: Sequence[Dependency] = (),
        installed: Sequence[InstalledPackage] = (),
        repositories: Sequence[RepositoryIndex] = (),
        triggers: Mapping[bytes, tuple[str, ...]] | None = None,
    ) -> None:
        self.world: tuple[Dependency, ...] = tuple(world)
        self._names: dict[str, list[Provider]] = {}  # in creation order
        self._repo_provided: set[str] = set()
        self._tags: list[str] = [""]
        self._tag_ids: dict[str, int] = {"": 0}
        self._rdepends: dict[str, set[str]] | None = None
        self._rinstall_if: dict[str, set[str]] = {}
        self._created: dict[str, int] | None = None
        self._contents: dict[int, tuple[tuple[str, tuple[str, ...]], ...]] | None = None
        self._dir_owner: dict[str, Entry] = {}
        self._file_owner: dict[str, Entry] = {}

        names = self._names
        for dep in self.world:
            names.setdefault(dep.name, [])
            if dep.tag:
                self.tag_id(dep.tag)

        drafts: list[_Draft] = []  # in order of first appearance
        by_identity: dict[bytes, int] = {}

        def add(pkg: Package, repo: int, record: InstalledPackage | None) -> None:
            self._touch_names(pkg, installed=record is not None)
            key = identity_key(pkg.checksum)
            if not key:
                return
            index = by_identity.get(key)
            if index is None:
                index = by_identity[key] = len(drafts)
                drafts.append(_Draft(pkg, key))
            draft = drafts[index]
            old_repos = draft.repos
            if repo >= 0:
                draft.repos |= 1 << repo
            if record is not None and draft.record is None:
                draft.record = record
                draft.tag = self.tag_id(pkg.repository_tag) if pkg.repository_tag else 0
            if draft.repos and not old_repos:
                self._repo_provided.add(pkg.name)
                for dep in draft.package.provides:
                    self._repo_provided.add(dep.name)

        for stanza in installed:
            add(stanza.package, -1, stanza)

        merged: list[RepositoryInfo] = []
        repo_numbers: list[int] = []
        by_url: dict[str, int] = {}
        for repo in repositories:
            tag_bit = 1 << self.tag_id(repo.tag)
            number = by_url.get(repo.index_url or repo.url)
            if number is not None:
                old = merged[number]
                merged[number] = RepositoryInfo(
                    old.url, old.description, old.tag_mask | tag_bit, old.loaded, old.available
                )
                repo_numbers.append(-1)
                continue
            by_url[repo.index_url or repo.url] = len(merged)
            repo_numbers.append(len(merged))
            merged.append(
                RepositoryInfo(repo.url, repo.description, tag_bit, repo.loaded, repo.available)
            )
        for repo, number in zip(repositories, repo_numbers, strict=True):
            if number < 0 or not repo.loaded:
                continue
            for pkg in repo.packages:
                add(pkg, number, None)
        self.repositories: tuple[RepositoryInfo, ...] = tuple(merged)

        trig = triggers or {}
        entries = [
            Entry(d.package, i, d.repos, d.record, d.tag, trig.get(d.key, ()) if d.record else ())
            for i, d in enumerate(drafts)
        ]
        self.entries: tuple[Entry, ...] = tuple(entries)
        for entry in entries:
            pkg = entry.package
            names[pkg.name].append(Provider(entry, pkg.version))
            for dep in pkg.provides:
                names[dep.name].append(Provider(entry, dep.version))

        allowed = [0] * len(self._tags)
        available = 0
        for number, info in enumerate(merged):
            if not info.loaded:
                continue
            if info.available:
                available |= 1 << number
            for tag in range(len(self._tags)):
                if info.tag_mask & (1 << tag):
                    allowed[tag] |= 1 << number
        self._allowed: tuple[int, ...] = tuple(allowed)
        self.available_repos: int = available

    # -- building

    def _touch_names(self, pkg: Package, *, installed: bool) -> None:
        """Create names in the order apk's parser meets them in a stanza."""
        names = self._names
        if pkg.name not in names:
            names[pkg.name] = []
        for deps in (pkg.depends, pkg.provides, pkg.install_if):
            for dep in deps:
                if dep.name not in names:
                    names[dep.name] = []
        if installed:
            for dep in pkg.replaces:
                if dep.name not in names:
                    names[dep.name] = []

    # -- tags and repositories

    def tag_id(self, tag: str) -> int:
        """The id of repository tag ``tag`` (without ``@``), created on first use."""
        tag = tag.removeprefix("@")
        number = self._tag_ids.get(tag)
        if number is None:
            number = self._tag_ids[tag] = len(self._tags)
            self._tags.append(tag)
        return number

    @property
    def tags(self) -> tuple[str, ...]:
        """Tag names by id, as apk prints them: "" for id 0, else ``@name``."""
        return tuple("@" + t if t else "" for t in self._tags)

    def allowed_repos(self, tag: int) -> int:
        """Mask of the loaded repositories that tag id ``tag`` allows."""
        return self._allowed[tag] if 0 <= tag < len(self._allowed) else 0

    # -- names and packages

    def names(self) -> list[str]:
        """Every name apk knows, in the order it met them."""
        return list(self._names)

    def sorted_names(self) -> list[str]:
        """Every name, in display order."""
        return sort_names(self._names)

    def has_name(self, name: str) -> bool:
        return name in self._names

    def providers(self, name: str) -> Sequence[Provider]:
        """The packages providing ``name``, in load order (do not modify)."""
        return self._names.get(name, ())

    def has_repository_providers(self, name: str) -> bool:
        """Whether a repository lists a package with this name or providing it."""
        return name in self._repo_provided

    def installed_named(self, name: str) -> Entry | None:
        """The installed package called ``name`` (apk_pkg_get_installed)."""
        for prov in self.providers(name):
            if prov.entry.package.name == name and prov.entry.installed is not None:
                return prov.entry
        return None

    def installed_entries(self) -> list[Entry]:
        """Installed packages in display order."""
        return sort_display(e for e in self.entries if e.installed is not None)

    def is_available(self, entry: Entry) -> bool:
        """Whether a usable repository lists ``entry`` (apk_db_pkg_available)."""
        return bool(entry.repos & self.available_repos)

    def upgradable_from(self, entry: Entry) -> Entry | None:
        """The installed package ``entry`` would upgrade, if it is newer and allowed by the
        installed package's pinning (apk_db_pkg_upgradable)."""
        current = self.installed_named(entry.package.name)
        if current is None:
            return None
        if not entry.repos & self.allowed_repos(current.repository_tag):
            return None
        if version.compare(current.package.version, entry.package.version) < 0:
            return current
        return None

    # -- reverse relations

    def _reverse_sets(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """For each name: the names whose providers depend on it / have it in install_if
        (a package stands for its own name and every name it provides)."""
        if self._rdepends is None:
            rdepends: dict[str, set[str]] = {}
            rinstall_if: dict[str, set[str]] = {}
            for entry in self.entries:
                pkg = entry.package
                if not pkg.depends and not pkg.install_if:
                    continue
                own = [pkg.name, *(p.name for p in pkg.provides)]
                for dep in pkg.depends:
                    rdepends.setdefault(dep.name, set()).update(own)
                for dep in pkg.install_if:
                    rinstall_if.setdefault(dep.name, set()).update(own)
            self._rdepends = rdepends
            self._rinstall_if = rinstall_if
        return self._rdepends, self._rinstall_if

    def _table_order(self, names: Iterable[str]) -> tuple[str, ...]:
        """``names`` in the order apk's name table is walked: by bucket of murmur3(name)
        modulo 20000, the most recently created name first within a bucket."""
        if self._created is None:
            self._created = {name: i for i, name in enumerate(self._names)}
        created = self._created
        keyed = sorted((_bucket(n), -created.get(n, 0), n) for n in names)
        return tuple(n for _b, _c, n in keyed)

    def rdepends(self, name: str) -> tuple[str, ...]:
        """Names whose providers depend on ``name``, in apk's name-table order."""
        return self._table_order(self._reverse_sets()[0].get(name, ()))

    def rinstall_if(self, name: str) -> tuple[str, ...]:
        """Names whose providers have ``name`` in their install_if, in name-table order."""
        return self._table_order(self._reverse_sets()[1].get(name, ()))

    def reverse_dependencies(
        self,
        entry: Entry,
        *,
        installed_only: bool = False,
        seen: set[int] | None = None,
    ) -> list[tuple[Entry, Dependency]]:
        """Packages that depend on ``entry``, each with its first dependency ``entry``
        satisfies (apk_pkg_foreach_reverse_dependency with one dependency per package;
        conflicts skipped). ``seen`` carries apk's "already visited" marks across calls."""
        visited = set() if seen is None else seen
        found: list[tuple[Entry, Dependency]] = []
        names = [entry.package.name, *(dep.name for dep in entry.package.provides)]
        for target in names:
            for name0 in self.rdepends(target):
                for prov in self.providers(name0):
                    pkg0 = prov.entry
                    if installed_only and pkg0.installed is None:
                        continue
                    if pkg0.index in visited:
                        continue
                    visited.add(pkg0.index)
                    for dep in pkg0.package.depends:
                        if dep.conflict:
                            continue
                        if self.satisfies(pkg0, dep, entry):
                            found.append((pkg0, dep))
                            break
        return found

    def satisfies(self, owner: Entry | None, dep: Dependency, entry: Entry) -> bool:
        """Whether ``entry`` satisfies ``dep`` (of package ``owner``), by its name or one of
        its provides (apk_dep_analyze giving APK_DEP_SATISFIES)."""
        pkg = entry.package
        mask = int(dep.op) | (Op.CONFLICT if dep.conflict else 0)
        pin = dep.op == CHECKSUM and not dep.conflict and dep.version is not None
        if dep.name == pkg.name:
            if pin:
                return identity_key(dep.version or "") == identity_key(pkg.checksum)
            return version_match(pkg.version, mask, dep.version)
        for prov in pkg.provides:
            if prov.name != dep.name:
                continue
            if dep.conflict and owner is entry:
                return True
            if pin:
                return identity_key(dep.version or "") == identity_key(pkg.checksum)
            return version_match(prov.version, mask, dep.version)
        return False

    def is_provided(self, dep: Dependency, prov: Provider) -> bool:
        """Whether ``prov`` satisfies ``dep`` (apk_dep_is_provided, no owning package)."""
        if dep.op == CHECKSUM and not dep.conflict and dep.version is not None:
            return identity_key(dep.version) == identity_key(prov.entry.package.checksum)
        mask = int(dep.op) | (Op.CONFLICT if dep.conflict else 0)
        return version_match(prov.version, mask, dep.version)

    # -- installed files

    def _file_tables(self) -> dict[int, tuple[tuple[str, tuple[str, ...]], ...]]:
        if self._contents is None:
            contents: dict[int, tuple[tuple[str, tuple[str, ...]], ...]] = {}
            for entry in self.entries:
                record = entry.installed
                if record is None:
                    continue
                dirs: list[tuple[str, tuple[str, ...]]] = []
                for installed_dir in record.dirs:
                    directory = installed_dir.path
                    files = [f.name for f in installed_dir.files]
                    current = self._dir_owner.get(directory)
                    if current is None or _replaces_dir(current.package, entry.package):
                        self._dir_owner[directory] = entry
                    own: list[str] = []
                    for name in files:
                        path = f"{directory}/{name}" if directory else name
                        if path in self._file_owner:
                            continue
                        self._file_owner[path] = entry
                        own.append(name)
                    dirs.append((directory, tuple(sorted(own, key=str.encode))))
                contents[entry.index] = tuple(dirs)
            self._contents = contents
        return self._contents

    def contents(self, entry: Entry) -> list[str]:
        """Paths (relative to the root) of the files ``entry`` owns, in apk's order."""
        paths: list[str] = []
        for directory, files in self._file_tables().get(entry.index, ()):
            for name in files:
                paths.append(f"{directory}/{name}" if directory else name)
        return paths

    def owner(self, path: str) -> Entry | None:
        """The installed package owning ``path`` (a directory or a file), as apk finds it."""
        self._file_tables()
        key = path.removeprefix("/").rstrip("/")
        entry = self._dir_owner.get(key)
        if entry is not None:
            return entry
        return self._file_owner.get(key.lstrip("/"))

    # -- queries

    def query(self, patterns: Sequence[str], spec: QuerySpec) -> QueryResult:
        """apk's package query: the packages matching ``patterns``, in display order."""
        return _Query(self, spec).run(patterns)


@functools.lru_cache(maxsize=65536)
def _bucket(name: str) -> int:
    return name_hash(name) % HASH_BUCKETS


def _replaces_dir(a: Package, b: Package) -> bool:
    """apk_pkg_replaces_dir: whether ``b`` takes a directory's ownership over ``a``."""
    if a.name == b.name:
        return True
    if a.replaces_priority != b.replaces_priority:
        return a.replaces_priority < b.replaces_priority
    if a.origin and a.origin == b.origin:
        if a.origin == a.name:
            return False
        if b.origin == b.name:
            return True
    return a.name.encode() > b.name.encode()


_STRING_FIELDS = (
    (Field.DESCRIPTION, "description"),
    (Field.ARCH, "arch"),
    (Field.LICENSE, "license"),
    (Field.ORIGIN, "origin"),
    (Field.MAINTAINER, "maintainer"),
    (Field.URL, "url"),
)
_DEP_FIELDS = (
    (Field.DEPENDS, "depends"),
    (Field.PROVIDES, "provides"),
    (Field.INSTALL_IF, "install_if"),
)


class _Query:
    """One run of apk_query_matches + apk_query_packages."""

    def __init__(self, catalog: Catalog, spec: QuerySpec) -> None:
        self.catalog = catalog
        self.spec = spec
        match = spec.match or frozenset({Field.NAME})
        self.name_only = match == {Field.NAME}
        self.by_name = Field.NAME in match
        self.strings = [attr for fld, attr in _STRING_FIELDS if fld in match]
        self.deps = [(attr, fld is Field.PROVIDES) for fld, attr in _DEP_FIELDS if fld in match]
        self.selected: dict[int, Entry] = {}
        self.has_matches = False

    def run(self, patterns: Sequence[str]) -> QueryResult:
        unmatched = 0
        if self.spec.empty_matches_all and not patterns:
            for name in self.catalog.names():
                self._match_name(name, None)
        else:
            for pattern in patterns:
                matcher = _Matcher.build(pattern, self.spec.search)
                self.has_matches = False
                if self.name_only and not matcher.wildcard:
                    if self.catalog.has_name(matcher.name):
                        self._match_name(matcher.name, matcher)
                else:
                    for name in self.catalog.names():
                        self._match_name(name, matcher)
                if not self.has_matches and not matcher.wildcard:
                    unmatched += 1
        return QueryResult(tuple(sort_display(self.selected.values())), unmatched)

    def _select(self, entry: Entry) -> None:
        self.selected.setdefault(entry.index, entry)

    def _match_name(self, name: str, matcher: _Matcher | None) -> None:
        """apk's match_name: ``matcher`` None is the "no pattern, match all" mode."""
        spec, catalog = self.spec, self.catalog
        if spec.orphaned and catalog.has_repository_providers(name):
            return
        name_match = matcher is not None and self.by_name and matcher.string(name)
        other_fields = matcher is not None and bool(self.strings or self.deps)
        if matcher is not None and not name_match and not other_fields:
            return
        best: Entry | None = None
        for prov in catalog.providers(name):
            entry = prov.entry
            if entry.package.name != name:
                continue
            if spec.installed and entry.installed is None:
                continue
            if spec.available and not catalog.is_available(entry):
                continue
            if spec.upgradable and catalog.upgradable_from(entry) is None:
                continue
            if matcher is None:
                self.has_matches = True
                self._select(entry)
                continue
            if name_match and matcher.provided_by(prov):
                self.has_matches = True
                if not spec.all_matches:
                    best = _better(best, entry)
                    continue
                self._select(entry)
            if not other_fields or not self._other_fields(entry, matcher):
                continue
            self.has_matches = True
            if spec.all_matches:
                self._select(entry)
            else:
                best = _better(best, entry)
        if best is not None:
            self._select(best)

    def _other_fields(self, entry: Entry, matcher: _Matcher) -> bool:
        pkg = entry.package
        for attr in self.strings:
            value = getattr(pkg, attr)
            if value and matcher.blob(value):
                return True
        for attr, provides in self.deps:
            deps: tuple[Dependency, ...] = getattr(pkg, attr)
            for dep in deps:
                if not matcher.string(dep.name):
                    continue
                if provides and not matcher.version_ok(dep.version):
                    continue
                return True
        return False


def _better(best: Entry | None, entry: Entry) -> Entry:
    """apk's update_best_match: the installed package wins, else the newest."""
    if best is None or best is entry:
        return entry
    if entry.installed is not None:
        return entry
    if version.compare(entry.package.version, best.package.version) > 0:
        return entry
    return best


@record
class _Matcher:
    """One query pattern, as apk_query_matches prepares it."""

    pattern: str  # what names are compared with (the whole argument)
    name: str  # the name part (what exact string fields are compared with)
    op: int
    version: str | None
    glob: re.Pattern[str] | None  # set for wildcard patterns

    @property
    def wildcard(self) -> bool:
        return self.glob is not None

    @classmethod
    def build(cls, arg: str, search: bool) -> _Matcher:
        if search:
            pattern = f"*{arg}*"
            return cls(pattern, pattern, int(ANY), None, compile_glob(pattern))
        name, op, ver = _split_dependency(arg)
        return cls(arg, name, op, ver, compile_glob(arg) if _has_wildcard(arg) else None)

    def string(self, value: str) -> bool:
        if self.glob is not None:
            return self.glob.match(value) is not None
        return value == self.pattern

    def blob(self, value: str) -> bool:
        if self.glob is not None:
            return self.glob.match(value) is not None
        return value == self.name

    def provided_by(self, prov: Provider) -> bool:
        """apk_dep_is_provided for the pattern's version constraint."""
        if self.op == CHECKSUM and self.version is not None:
            return identity_key(self.version) == identity_key(prov.entry.package.checksum)
        return version_match(prov.version, self.op, self.version)

    def version_ok(self, provided: str | None) -> bool:
        # apk compares the pattern's version against the provided one (in that order).
        return version_match(self.version, self.op, provided)


def _split_dependency(arg: str) -> tuple[str, int, str | None]:
    """apk_dep_parse: ``[!]name[op version]`` without validating the version."""
    op = 0
    text = arg
    if text.startswith("!"):
        op |= Op.CONFLICT
        text = text[1:]
    cut = next((i for i, ch in enumerate(text) if ch in "<>=~"), -1)
    if cut < 0:
        return text, op | ANY, None
    end = cut
    mask = 0
    while end < len(text) and text[end] in "<>=~":
        ch = text[end]
        mask |= {"<": Op.LT, ">": Op.GT, "=": Op.EQ, "~": Op.FUZZY | Op.EQ}[ch]
        end += 1
    if not mask:
        return arg, int(ANY), None
    return text[:cut], op | mask, text[end:]
